"""Development tooling, outside the product package `ingest`: the price service simulator
(`pricesim`), the export generator (`generate`) and the local stack (`devstack`: Cassandra node,
processes). Tests, the demo and the benchmarks use it; the pipeline never imports it."""
