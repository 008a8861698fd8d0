"""Tax: transfer reconciliation, cost-basis methods (FIFO, LIFO, HIFO, ACB, UK pooling) and
reports. Pure: Arrow / plain data in, plain dataclasses out (no Ray, no Cassandra, no network).

Entry points live in ``ingest.tax.engine``: ``prepare`` -> ``compute_asset`` per asset (independent,
parallelisable) -> ``merge``; ``compute`` does all three.
"""
