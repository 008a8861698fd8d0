"""Benchmarks: ledgerflow end to end against the synchronous design it replaces, `cqlsh COPY FROM`,
a bare Serve upload endpoint, the driver itself and a naive one-request-per-transaction price
fetcher. `python -m benchmarks --help`; results in benchmarks/RESULTS.md and benchmarks/out/."""
