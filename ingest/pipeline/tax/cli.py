"""`ledgerflow tax INPUT.csv [INPUT2.csv ...]`: an offline tax report, no services needed.

Files are parsed (``ingest.extract.parse.parse_local_file``) and run through the tax stage a job
runs (stage.py ``compose_tax``), in process over in-memory ports (memory.py): no price service,
so rows are valued from their own fiat sides and stated values only. A row whose value the tax needs but cannot be determined from the files is
an error naming it (file:line): exit code 2 and nothing is written. Output in --out:
disposals.csv, income.csv, balances.csv, issues.csv, summary.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa

from ingest.tax.records import Flag
from ingest.vocabulary import Method, Pooling

LOCAL_USER = "local"
SHOWN_ERRORS = 20


def configure(parser: argparse.ArgumentParser) -> None:
    from ingest.config import get_settings

    settings = get_settings()
    parser.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="INPUT.csv",
        help="universal-format (Koinly) exports; all files form one history",
    )
    parser.add_argument(
        "--method",
        choices=[m.value for m in Method],
        default=settings.default_method,
        help="cost basis method (default: %(default)s)",
    )
    parser.add_argument(
        "--pooling",
        choices=[p.value for p in Pooling],
        default=None,
        help=f"lot pooling (default: {settings.default_pooling}; "
        "universal for uk, whose pools are per person)",
    )
    parser.add_argument(
        "--currency",
        default=settings.fiat_currency,
        help="reporting currency the files' values are in (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("tax-report"), help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--window-hours",
        type=float,
        default=settings.transfer_window_hours,
        help="a deposit must follow its withdrawal within this (default: %(default)s)",
    )
    parser.add_argument(
        "--max-fee-share",
        type=float,
        default=settings.transfer_max_fee_share,
        help="largest share of a withdrawal lost as transfer fee (default: %(default)s)",
    )
    parser.add_argument(
        "--format",
        dest="fmt",
        default=None,
        help="force the input format (default: detected from the header)",
    )
    parser.add_argument("--wallet", default=None, help="wallet name for files without one")
    parser.add_argument(
        "--tz",
        default=None,
        help="IANA zone of zone-less timestamps (columns UTC by name or documentation stay UTC)",
    )


def run(args: argparse.Namespace) -> int:
    from ingest.config import get_settings
    from ingest.pipeline.executors import InProcessExecutor
    from ingest.pipeline.tax.memory import MemoryViews, memory_ports
    from ingest.pipeline.tax.options import TaxOptions
    from ingest.pipeline.tax.stage import TaxRun, compose_tax
    from ingest.tax.report import write_report

    pooling = args.pooling or (
        Pooling.UNIVERSAL if args.method == Method.UK else get_settings().default_pooling
    )
    try:
        options = TaxOptions(
            Method(args.method),
            Pooling(pooling),
            args.currency.upper(),
            args.window_hours,
            args.max_fee_share,
        )
    except ValueError as exc:
        print(f"ledgerflow tax: {exc}", file=sys.stderr)
        return 2
    missing = [str(path) for path in args.inputs if not path.is_file()]
    if missing:
        print(f"ledgerflow tax: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2

    try:
        table = load_parsed(args.inputs, fmt=args.fmt, wallet=args.wallet, tz=args.tz)
    except ValueError as exc:  # the parser's FormatError is a ValueError
        print(f"ledgerflow tax: {exc}", file=sys.stderr)
        return 2
    sources = source_locations(table)

    # The same stage a job runs on Ray, here in process over the files.
    ports = memory_ports(table)
    compose_tax(ports, InProcessExecutor(), TaxRun(options, label=LOCAL_USER))
    assert isinstance(ports.views, MemoryViews)
    result = ports.views.tax_result(
        method=options.method, pooling=options.pooling, currency=options.currency
    )
    unvalued = [f for f in result.findings if f.kind == Flag.MISSING_PRICE]
    if unvalued:
        print(
            f"ledgerflow tax: {len(unvalued)} row(s) have no value in {args.currency} "
            "(no Net Worth and no fiat side); add it to the file:",
            file=sys.stderr,
        )
        for finding in unvalued[:SHOWN_ERRORS]:
            print(f"  {sources.get(finding.tx_id or '', '?')}: {finding.detail}", file=sys.stderr)
        if len(unvalued) > SHOWN_ERRORS:
            print(f"  ... and {len(unvalued) - SHOWN_ERRORS} more", file=sys.stderr)
        return 2

    written = write_report(result, args.out, sources=sources)
    print(
        f"{table.num_rows} transactions, {len(result.disposals)} disposal lines, "
        f"{len(result.income)} income records, {len(result.findings)} issues "
        f"({args.method}, {pooling}, {args.currency}) -> {args.out}"
    )
    for path in written:
        print(f"  {path}")
    return 0


def load_parsed(
    paths: list[Path],
    *,
    fmt: str | None = None,
    wallet: str | None = None,
    tz: str | None = None,
) -> pa.Table:
    """Parse every file. Rejected rows are reported on stderr (they never reach the tax) and do
    not stop the report, unless a file has no row left (ValueError: exit code 2)."""
    from ingest.extract.parse import parse_local_file

    tables = []
    for path in paths:
        parsed = parse_local_file(path, user_id=LOCAL_USER, fmt=fmt, wallet=wallet, tz=tz)
        for note in parsed.notes:
            print(f"ledgerflow tax: {path}: {note}", file=sys.stderr)
        rejected = [r for r in parsed.rejected if not getattr(r, "skipped", False)]
        for row in rejected[:SHOWN_ERRORS]:
            print(f"ledgerflow tax: {path}:{row.line}: rejected: {row.reason}", file=sys.stderr)
        if len(rejected) > SHOWN_ERRORS:
            print(
                f"ledgerflow tax: {path}: ... and {len(rejected) - SHOWN_ERRORS} more rejected",
                file=sys.stderr,
            )
        if parsed.table.num_rows == 0 and rejected:
            # an empty report would look like "no tax due": refuse instead
            raise ValueError(
                f"{path}: every row was rejected ({len(rejected)} rows); nothing to report"
            )
        tables.append(parsed.table)
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def load_valued(
    paths: list[Path],
    *,
    currency: str,
    fmt: str | None = None,
    wallet: str | None = None,
    tz: str | None = None,
) -> pa.Table:
    """The files' rows valued from the files alone (for the single-process engine)."""
    from ingest.prices.valuation import value_transactions

    table = load_parsed(paths, fmt=fmt, wallet=wallet, tz=tz)
    return value_transactions(table, None, currency=currency)


def source_locations(table: pa.Table) -> dict[str, str]:
    """tx_id -> "file:line" of the row it came from."""
    return {
        tx_id: f"{file}:{line}"
        for tx_id, file, line in zip(
            table.column("tx_id").to_pylist(),
            table.column("source_file").to_pylist(),
            table.column("source_line").to_pylist(),
        )
    }
