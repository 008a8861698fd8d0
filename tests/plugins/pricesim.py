"""The price simulator as a separate process (owned by the prices work; see ingest/prices/simulator)."""
