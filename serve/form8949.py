"""Form 8949 CSV from `disposals` rows, through the tax report's own line builder
(ingest.tax.report.form8949_rows), so the API and the offline report print the same lines."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from ingest.load.queries import utc
from ingest.tax.records import DisposalLine
from ingest.tax.report import form8949_rows

PIECE_CHARS = 64 * 1024


def disposal_line(row: dict[str, Any], year: str) -> DisposalLine:
    """A stored line back as the engine's record. The table keeps the sale's exact time and the
    acquisition's tax-calendar date at midnight UTC; Form 8949 years are calendar years on the
    UTC date, so the sale's date is its UTC date."""
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
        date_sold=sold_at.date(),
        sold_at=sold_at,
        proceeds=row["proceeds"],
        cost_basis=row["cost_basis"],
        gain=row["gain"],
        term=row["term"] or "",
        rule="",
        purpose="",
        tax_year=year,
    )


def form8949_csv(rows: Iterable[dict[str, Any]], year: str) -> Iterator[str]:
    """The CSV text in pieces of about 64 KiB. The report orders Part I before Part II, so the
    year's lines are gathered first (one disposals partition)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for line in form8949_rows(disposal_line(row, year) for row in rows):
        writer.writerow(line)
        if buffer.tell() >= PIECE_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
