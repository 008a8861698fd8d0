"""Derived rows written per input row, counted from the writers' own packing functions (no
Cassandra needed): the lean layout (price windows, packed Form 8949 lines and findings) against
the one-row-per-item layout it replaces.

    .venv/bin/python -m benchmarks.derived_rows --rows 50000

The file is generated (devtools.generate, Koinly universal format) and valued offline from its
own values (ingest.pipeline.tax.cli.load_valued); the tax is the single-process engine (FIFO per wallet),
whose output the sharded core reproduces exactly. Price windows are the (asset, 88-day window)
pairs the price stage would fetch; a window held ~2,112 hourly point rows before.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

HOURS_PER_WINDOW = 88 * 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--method", default="fifo")
    parser.add_argument("--pooling", default="per-wallet")
    args = parser.parse_args()

    from devtools.generate import generate
    from ingest.load.views import disposal_chunk_rows, disposal_line_row, finding_chunk_rows
    from ingest.pipeline.tax.cli import load_valued
    from ingest.prices.planner import distinct_windows
    from ingest.prices.valuation import price_needs
    from ingest.tax.engine import compute

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        generate(args.rows, "koinly", args.seed, path)
        valued = load_valued([path], currency="USD")
    started = time.perf_counter()
    result = compute(valued, method=args.method, pooling=args.pooling)
    lines = [disposal_line_row(d) for d in result.disposals]
    findings = [(f.kind, f.asset, f.timestamp, f.tx_id, f.detail) for f in result.findings]
    chunks = len(disposal_chunk_rows("u", lines))
    finding_chunks = len(finding_chunk_rows("u", findings))
    windows = sum(len(w) for w in distinct_windows(price_needs(valued), now=2**40).values())
    summary = len(result.years) + len(result.years_by_asset)
    n = valued.num_rows
    common = n + len(result.balances) + summary  # view rows, balances, yearly_summary
    before = common + len(lines) + len(findings) + windows * HOURS_PER_WINDOW
    after = common + chunks + finding_chunks + windows
    print(
        f"input rows {n:,} (tax {time.perf_counter() - started:.1f} s, {args.method}, "
        f"{args.pooling})"
    )
    print(f"  transactions_view rows        {n:>10,}")
    print(f"  balances + yearly_summary     {len(result.balances) + summary:>10,}")
    print(f"  Form 8949 lines {len(lines):>9,} -> disposal_chunks rows {chunks:>8,}")
    print(f"  findings        {len(findings):>9,} -> finding_chunks rows  {finding_chunks:>8,}")
    print(
        f"  price points   ~{windows * HOURS_PER_WINDOW:>9,} -> price_window_points rows   {windows:>8,}"
    )
    print(
        f"derived rows per input row: before {before / n:.2f}, now {after / n:.2f} "
        f"(without the view rows: {(after - n) / n:.3f})"
    )


if __name__ == "__main__":
    main()
