"""`python -m benchmarks` (`make bench`): ledgerflow measured end to end against its baselines.

Starts what the benchmark needs, measures, writes benchmarks/RESULTS.md, benchmarks/out/results-<timestamp>.json and benchmarks/out/stage_timings.png,
stop what it started. Exit code 1 when a step failed (the report lists which and why)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmarks.harness import OPTIONAL_STEPS, BenchConfig, Harness
from benchmarks.stack import Knobs

HERE = Path(__file__).resolve().parent
QUICK_SIZES = [2000, 10000]
QUICK_BASELINE = 2000
HUGE_SIZE = 3_000_000


def sizes(text: str) -> list[int]:
    values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("sizes: comma-separated positive row counts")
    return values


def steps(text: str) -> frozenset[str]:
    names = frozenset(v.strip() for v in text.split(",") if v.strip())
    unknown = names - set(OPTIONAL_STEPS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown steps {sorted(unknown)}; known: {', '.join(OPTIONAL_STEPS)}"
        )
    return names


def python_as_typed() -> str:
    """The interpreter, relative to the project root when it is the project's venv."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(HERE.parent))
    except ValueError:
        return str(exe)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes",
        type=sizes,
        default=[10000, 50000, 600000],
        help="rows per generated file (default 10000,50000,600000)",
    )
    p.add_argument(
        "--baseline-size",
        type=int,
        default=10000,
        help="rows of the file the synchronous baseline processes (default 10000)",
    )
    p.add_argument(
        "--price-rate",
        type=float,
        default=50.0,
        help="simulator rate limit and ledgerflow's price rate, req/s (default 50)",
    )
    p.add_argument("--chunk-bytes", type=int, help="LEDGERFLOW_CHUNK_BYTES (default: adaptive)")
    p.add_argument("--parse-parallelism", type=int, help="LEDGERFLOW_PARSE_PARALLELISM")
    p.add_argument("--price-pool-size", type=int, help="LEDGERFLOW_PRICE_POOL_SIZE")
    p.add_argument("--write-concurrency", type=int, help="LEDGERFLOW_WRITE_CONCURRENCY")
    p.add_argument(
        "--concurrent-users",
        type=int,
        default=8,
        help="users uploading at the same moment in the many-users step (default 8)",
    )
    p.add_argument(
        "--concurrent-rows",
        type=int,
        default=50000,
        help="rows of each concurrent user's file; also run single-user (default 50000)",
    )
    p.add_argument(
        "--read-requests",
        type=int,
        default=400,
        help="timed requests of the unfiltered page, API and driver each (default 400)",
    )
    p.add_argument(
        "--filtered-requests",
        type=int,
        default=100,
        help="timed requests of the filtered page, API and driver each (default 100)",
    )
    p.add_argument(
        "--skip",
        type=steps,
        default=frozenset(),
        help=f"comma-separated steps to leave out (a small check of one instrument): "
        f"{', '.join(OPTIONAL_STEPS)}",
    )
    p.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
    p.add_argument("--results-md", type=Path, default=HERE / "RESULTS.md")
    p.add_argument(
        "--huge",
        action="store_true",
        help="also run a 3,000,000-row file (memory flat in file size: run once)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: sizes {','.join(map(str, QUICK_SIZES))}, baseline {QUICK_BASELINE}, "
        f"concurrent users' files of {QUICK_SIZES[-1]} rows",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.quick:
        args.sizes, args.baseline_size = QUICK_SIZES, QUICK_BASELINE
        args.concurrent_rows = QUICK_SIZES[-1]
    if args.huge:
        args.sizes = [*args.sizes, HUGE_SIZE]
    if args.baseline_size not in args.sizes:  # the ratio needs ledgerflow on the same size
        args.sizes = sorted([*args.sizes, args.baseline_size])
    if "concurrent" not in args.skip and args.concurrent_rows not in args.sizes:
        args.sizes = sorted([*args.sizes, args.concurrent_rows])  # the single-user job to compare
    config = BenchConfig(
        sizes=sorted(set(args.sizes)),
        baseline_size=args.baseline_size,
        knobs=Knobs(
            price_rate=args.price_rate,
            chunk_bytes=args.chunk_bytes,
            parse_parallelism=args.parse_parallelism,
            price_pool_size=args.price_pool_size,
            write_concurrency=args.write_concurrency,
        ),
        out_dir=args.out.resolve(),
        results_md=args.results_md.resolve(),
        quick=args.quick,
        skip=args.skip,
        concurrent_users=args.concurrent_users,
        concurrent_rows=args.concurrent_rows,
        read_requests=args.read_requests,
        filtered_requests=args.filtered_requests,
        command=shlex.join([python_as_typed(), "-m", "benchmarks", *argv]),
    )
    return Harness(config).run()


if __name__ == "__main__":
    raise SystemExit(main())
