"""Observability: ledgerflow's metrics on Ray's Prometheus endpoint."""
