"""The HTTP API on Ray Serve: an upload application (POST /v1/uploads, streaming to storage) and a
query application (everything else under /v1, reading only precomputed tables), plus the
`ledgerflow token` and `ledgerflow upload` commands."""
