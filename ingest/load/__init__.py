"""Load: the shared Cassandra layer (session, migrations, jobs, raw transactions, uploads, users,
the query API's view tables). A consumer's own storage lives beside it: the price cache in
ingest/prices/cache_store.py, tax checkpoints in ingest/pipeline/tax/checkpoint_store.py."""
