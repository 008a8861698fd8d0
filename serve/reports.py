"""The tax-year reports the query API serves (serve.reports_api), from stored rows through the
tax report's own builders (ingest.tax.report), so the API and the offline report print the same
figures: Form 8949 CSV, its Schedule D summary, TXF, SA108, income by kind and month, and the
counts the gains screen shows."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ingest.load.queries import utc
from ingest.tax.records import DisposalLine
from ingest.tax.report import (
    BoxTotals,
    IncomeItem,
    box_totals,
    form8949_lines,
    form8949_rows,
    income_kind,
    income_report_rows,
    sa108_rows,
    schedule_d_rows,
    txf_text,
)
from ingest.tax.years import (
    calendar_year_start_us,
    datetime_from_micros,
    london_date,
    micros_from_datetime,
    uk_tax_year_start_us,
)
from serve.errors import ApiError

PIECE_CHARS = 64 * 1024
TXF_PROGRAM = "ledgerflow"


YEAR_RE = re.compile(r"[0-9]{4}(/[0-9]{2})?")  # fullmatch ("$" matches before a final newline)


def checked_year(year: str) -> str:
    """A tax year as the API takes it: 2024, or 2024/25 for the UK method; else a 400."""
    if not YEAR_RE.fullmatch(year):
        raise ApiError(
            400, "bad_request", "year must look like 2024 (or 2024/25 for the UK method)"
        )
    return year


def is_uk_year(year: str) -> bool:
    """UK tax years are written 2024/25; US (calendar) years 2024."""
    return "/" in year


def tax_date(moment: datetime, year: str) -> date:
    """The tax-calendar date of a UTC time: London's for UK years, the UTC date otherwise
    (Form 8949 years are calendar years on the UTC date)."""
    return london_date(micros_from_datetime(moment)) if is_uk_year(year) else moment.date()


def disposal_line(row: dict[str, Any], year: str) -> DisposalLine:
    """A stored line back as the engine's record. The table keeps the sale's exact time and the
    acquisition's tax-calendar date at midnight UTC."""
    sold_at = utc(row["date_sold"])
    assert sold_at is not None, "every stored line has its sale time"
    acquired = utc(row["date_acquired"])
    return DisposalLine(
        line_id=row["line_id"],
        tx_id=row["tx_id"] or "",
        wallet=row["wallet"] or "",
        asset=row["asset"],
        quantity=row["quantity"],
        date_acquired=acquired.date() if acquired is not None else None,
        date_sold=tax_date(sold_at, year),
        sold_at=sold_at,
        proceeds=row["proceeds"],
        cost_basis=row["cost_basis"],
        gain=row["gain"],
        term=row["term"] or "",
        rule=row.get("rule") or "",
        purpose="",
        tax_year=year,
        disposal_costs=row.get("disposal_costs", Decimal(0)),
        acquired_us=row.get("acquired_us"),
        from_tx_id=row.get("from_tx_id") or "",
    )


def disposal_lines(rows: Iterable[dict[str, Any]], year: str) -> list[DisposalLine]:
    return [disposal_line(row, year) for row in rows]


def csv_pieces(rows: Iterable[list[str]]) -> Iterator[str]:
    """CSV text (CRLF lines) in pieces of about 64 KiB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= PIECE_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def form8949_csv(rows: Iterable[dict[str, Any]], year: str) -> Iterator[str]:
    """Form 8949 lines as CSV. The report orders Part I before Part II, so the year's lines are
    gathered first (one disposals partition)."""
    return csv_pieces(form8949_rows(form8949_lines(disposal_lines(rows, year))))


def schedule_d_csv(rows: Iterable[dict[str, Any]], year: str) -> Iterator[str]:
    return csv_pieces(schedule_d_rows(box_totals(form8949_lines(disposal_lines(rows, year)))))


def txf(rows: Iterable[dict[str, Any]], year: str, exported: date) -> str:
    lines = form8949_lines(disposal_lines(rows, year))
    return txf_text(lines, exported=exported, program=TXF_PROGRAM)


def sa108_csv(rows: Iterable[dict[str, Any]], year: str) -> Iterator[str]:
    return csv_pieces(sa108_rows(disposal_lines(rows, year), year))


def income_csv(rows: Iterable[dict[str, Any]], year: str) -> Iterator[str]:
    """rows: income view rows (timestamp, label, value) of the tax year."""
    items = (
        IncomeItem(
            month=tax_date(utc(row["timestamp"]) or row["timestamp"], year).strftime("%Y-%m"),
            kind=income_kind(row["label"]),
            value=row["value"],
        )
        for row in rows
    )
    return csv_pieces(income_report_rows(items))


def report_summary(rows: Iterable[dict[str, Any]], year: str) -> tuple[int, int, list[BoxTotals]]:
    """(stored lines, lines with zero cost basis, Form 8949 totals per part and box)."""
    lines = disposal_lines(rows, year)
    zero_basis = sum(1 for line in lines if line.cost_basis.is_zero())
    return len(lines), zero_basis, box_totals(form8949_lines(lines))


def year_bounds(year: str) -> tuple[datetime, datetime]:
    """[start, end) of a tax year in UTC: 1 January for a US year, 6 April London time for a
    UK one."""
    first = int(year[:4])
    start_of = uk_tax_year_start_us if is_uk_year(year) else calendar_year_start_us
    return datetime_from_micros(start_of(first)), datetime_from_micros(start_of(first + 1))
