"""The write path on the local node: rows/s of `execute_batches` (unlogged single-partition
batches under a byte budget) against single-row `execute_concurrent`, in the same run.

    .venv/bin/python -m benchmarks.write_path --rows 30000

One Python process, the configured node, a throw-away keyspace (dropped at the end). The rows are
canonical rows of a generated Koinly file written to raw_transactions, each variant under its own
user id (fresh partitions, no overwrites). Prints one line per variant and the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30000)
    parser.add_argument(
        "--budgets",
        default="4096,16384,32768",
        help="batch byte budgets to measure, comma-separated",
    )
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    keyspace = f"lf_write_{uuid.uuid4().hex[:8]}"
    os.environ["LEDGERFLOW_KEYSPACE"] = keyspace
    from devtools.generate import generate
    from ingest.config import get_settings
    from ingest.extract.parse import parse_local_file
    from ingest.load.cassandra import close_all, execute_batches, execute_many, get_session
    from ingest.load.migrations import apply_migrations
    from ingest.load.transactions import _STORED, INSERT_RAW, month_keys

    get_settings.cache_clear()
    apply_migrations(get_settings(), keyspace)
    session = get_session(get_settings(), keyspace)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rows.csv"
            generate(args.rows, "koinly", 1, path)
            table = parse_local_file(path, user_id="x").table
        months = month_keys(table.column("timestamp")).tolist()
        cols = [table.column(n).to_pylist() for n in _STORED]
        job = uuid.uuid4()

        def rows_of(user: str) -> dict:
            by_partition: dict = defaultdict(list)
            for i, row in enumerate(zip(*cols)):
                by_partition[(user, months[i])].append((user, months[i], *row, job))
            return by_partition

        def timed(label: str, write) -> float:
            by_partition = rows_of(label)
            start = time.perf_counter()
            written = write(by_partition)
            seconds = time.perf_counter() - start
            rate = written / seconds
            print(f"{label:<28} {written:>8} rows {seconds:8.2f} s {rate:10,.0f} rows/s")
            return rate

        execute_many(session, INSERT_RAW, [r for p in rows_of("warmup").values() for r in p][:2000])
        single = timed(
            "single-row concurrent",
            lambda parts: execute_many(
                session,
                INSERT_RAW,
                [r for p in parts.values() for r in p],
                concurrency=args.concurrency,
            ),
        )
        rates = {
            "20 rows per batch (old)": timed(
                "batch 20 rows (old)",
                lambda parts: execute_batches(
                    session,
                    INSERT_RAW,
                    parts,
                    max_rows=20,
                    max_bytes=1 << 30,
                    concurrency=args.concurrency,
                ),
            )
        }
        for budget in (int(b) for b in args.budgets.split(",")):
            label = f"batch {budget // 1024} KiB"
            rates[label] = timed(
                label,
                lambda parts, budget=budget: execute_batches(
                    session, INSERT_RAW, parts, max_bytes=budget, concurrency=args.concurrency
                ),
            )
        for label, rate in rates.items():
            print(f"{label:<28} {rate / single:5.2f}x single-row execute_concurrent")
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        close_all()


if __name__ == "__main__":
    main()
