"""Local development stack: a real single-node Cassandra and the price simulator, as processes."""
