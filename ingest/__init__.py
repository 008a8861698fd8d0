"""ledgerflow: transaction exports in, priced, reconciled, tax-ready data out.

The pipeline reads like its folders: ``extract`` (stored file -> chunks -> per-format parsing),
``normalize`` (canonical rows, assets, identity), ``load`` (Cassandra), ``prices``, ``tax`` and
``pipeline`` (the Ray task graph that strings the stages together for one job).
"""
