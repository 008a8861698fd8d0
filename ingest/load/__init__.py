"""Load: everything that talks to Cassandra. Thin: callers pass plain data or Arrow tables."""
