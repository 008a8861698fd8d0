"""Report writers: pure functions from engine records to rows / strings, plus one thin function
that writes the offline report folder. The query API reuses the row builders (Form 8949 CSV).

Money is rounded to cents only here, ROUND_HALF_UP (the usual rounding of tax forms: 0.005 ->
0.01); every line is rounded on its own, so a column's rounded lines may differ from the rounded
total by a cent. Quantities are written unrounded (no exponent, no trailing zeros). Dates are ISO
(YYYY-MM-DD) in the method's tax calendar; Form 8949 uses MM/DD/YYYY and "VARIOUS" for pooled
acquisitions.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ingest.normalize.canonical import plain_decimal
from ingest.tax.records import (
    BalanceRecord,
    DisposalLine,
    Finding,
    IncomeRecord,
    TaxResult,
    Term,
    YearSummary,
)

CENT = Decimal("0.01")
DISPOSAL_COLUMNS = [
    "wallet",
    "asset",
    "quantity",
    "date_acquired",
    "date_sold",
    "proceeds",
    "cost_basis",
    "gain",
    "term",
]
INCOME_COLUMNS = ["wallet", "asset", "quantity", "date", "value", "label"]
BALANCE_COLUMNS = ["wallet", "asset", "quantity", "cost_basis"]
FINDING_COLUMNS = ["kind", "asset", "wallet", "timestamp", "tx_id", "source", "detail"]
FORM_8949_COLUMNS = [
    "part",
    "description",
    "date_acquired",
    "date_sold",
    "proceeds",
    "cost_basis",
    "code",
    "adjustment",
    "gain_or_loss",
]


def money(amount: Decimal | None) -> str:
    if amount is None:
        return ""
    cents = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    return str(cents.copy_abs() if cents.is_zero() else cents)  # never "-0.00"


def quantity(amount: Decimal) -> str:
    return plain_decimal(amount)


def iso(day: date | None) -> str:
    return day.isoformat() if day is not None else ""


def disposal_rows(disposals: Iterable[DisposalLine]) -> list[list[str]]:
    return [DISPOSAL_COLUMNS] + [
        [
            d.wallet,
            d.asset,
            quantity(d.quantity),
            iso(d.date_acquired),
            iso(d.date_sold),
            money(d.proceeds),
            money(d.cost_basis),
            money(d.gain),
            d.term,
        ]
        for d in disposals
    ]


def income_rows(income: Iterable[IncomeRecord]) -> list[list[str]]:
    return [INCOME_COLUMNS] + [
        [i.wallet, i.asset, quantity(i.quantity), iso(i.date), money(i.value), i.label]
        for i in income
    ]


def balance_rows(balances: Iterable[BalanceRecord]) -> list[list[str]]:
    return [BALANCE_COLUMNS] + [
        [b.wallet, b.asset, quantity(b.quantity), money(b.cost_basis)] for b in balances
    ]


def finding_rows(
    findings: Iterable[Finding], sources: Mapping[str, str] | None = None
) -> list[list[str]]:
    """``sources``: tx_id -> where the row came from ("file.csv:12"), when the caller knows."""
    sources = sources or {}
    return [FINDING_COLUMNS] + [
        [
            f.kind,
            f.asset or "",
            f.wallet or "",
            f.timestamp.isoformat() if f.timestamp is not None else "",
            f.tx_id or "",
            sources.get(f.tx_id or "", ""),
            f.detail,
        ]
        for f in findings
    ]


def form8949_rows(disposals: Iterable[DisposalLine]) -> list[list[str]]:
    """Form 8949 lines: Part I (short term) then Part II (long term), each by date sold.
    Columns (a) description, (b) date acquired, (c) date sold, (d) proceeds, (e) cost basis,
    (f) code, (g) adjustment, (h) gain or loss. Lines without a holding period (UK, ACB) are
    not 8949 lines and are skipped."""

    def us_date(day: date | None) -> str:
        return day.strftime("%m/%d/%Y") if day is not None else "VARIOUS"

    lines = [d for d in disposals if d.term in (Term.SHORT, Term.LONG)]
    lines.sort(key=lambda d: (d.term != Term.SHORT, d.sold_at, d.tx_id, d.line_id))
    return [FORM_8949_COLUMNS] + [
        [
            "I" if d.term == Term.SHORT else "II",
            f"{quantity(d.quantity)} {d.asset}",
            us_date(d.date_acquired),
            us_date(d.date_sold),
            money(d.proceeds),
            money(d.cost_basis),
            "",
            "",
            money(d.gain),
        ]
        for d in lines
    ]


def year_summary_dict(summary: YearSummary) -> dict[str, str | None]:
    return {
        "proceeds": money(summary.proceeds),
        "cost_basis": money(summary.cost_basis),
        "short_term_gain": money(summary.short_term_gain),
        "long_term_gain": money(summary.long_term_gain),
        "gain": money(summary.gain),
        "income": money(summary.income),
    }


def summary_dict(result: TaxResult) -> dict:
    """short/long term gains are null for methods with no holding-period split (uk, acb)."""

    def nullable(entry: dict[str, str | None]) -> dict[str, str | None]:
        return {key: (value if value != "" else None) for key, value in entry.items()}

    return {
        "currency": result.currency,
        "method": result.method,
        "pooling": result.pooling,
        "years": {
            year: nullable(year_summary_dict(summary)) for year, summary in result.years.items()
        },
    }


def summary_json(result: TaxResult) -> str:
    return json.dumps(summary_dict(result), indent=2) + "\n"


def to_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_report(
    result: TaxResult, out_dir: Path | str, *, sources: Mapping[str, str] | None = None
) -> list[Path]:
    """Write disposals.csv, income.csv, balances.csv, issues.csv and summary.json into out_dir."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "disposals.csv": to_csv(disposal_rows(result.disposals)),
        "income.csv": to_csv(income_rows(result.income)),
        "balances.csv": to_csv(balance_rows(result.balances)),
        "issues.csv": to_csv(finding_rows(result.findings, sources)),
        "summary.json": summary_json(result),
    }
    written = []
    for name, text in contents.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
