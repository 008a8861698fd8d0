"""The tax-year report endpoints of the query application (/v1/reports/...): Form 8949 CSV,
Schedule D summary CSV, TXF, income CSV, SA108 CSV and a JSON summary for the gains screen. Each
reads one disposals partition (income: the year's view months) and hands the rows to the report
builders (serve.reports over ingest.tax.report)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ingest.load import queries
from serve.auth import current_user
from serve.deps import db
from serve.errors import ApiError
from serve.models import BoxTotal, ReportSummary
from serve.reports import (
    checked_year,
    form8949_csv,
    income_csv,
    is_uk_year,
    report_summary,
    sa108_csv,
    schedule_d_csv,
    txf,
    year_bounds,
)

router = APIRouter()


def download(body: Iterator[str] | str, file_name: str, media_type: str) -> StreamingResponse:
    return StreamingResponse(
        iter([body]) if isinstance(body, str) else body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )


def year_file(name: str, year: str, ext: str) -> str:
    return f"{name}-{year.replace('/', '-')}.{ext}"


CSV = "text/csv; charset=utf-8"
ROUNDING = (
    "Proceeds and cost basis are rounded to cents (half up) and the gain is derived from the "
    "rounded figures, so (h) = (d) - (e) + (g) on every printed line; totals are sums of "
    "printed lines."
)
REPORTS = {
    "form8949": "/v1/reports/form8949.csv",
    "schedule_d": "/v1/reports/schedule-d.csv",
    "turbotax": "/v1/reports/turbotax.txf",
    "income": "/v1/reports/income.csv",
    "sa108": "/v1/reports/sa108.csv",
}


def disposals_of(user_id: str, year: str) -> Iterator[dict]:
    return queries.iter_disposals(db(), user_id, checked_year(year))


def csv_doc(description: str) -> dict:
    return {200: {"content": {"text/csv": {}}, "description": description}}


@router.get(
    "/v1/reports/form8949.csv",
    response_class=StreamingResponse,
    summary="Form 8949 lines of a tax year as CSV",
    responses=csv_doc(
        "Part I (short term) then Part II (long term), each by date sold, with the box "
        "checked (C/F before 2025, I/L from 2025: no 1099); lines of methods without a "
        "holding period (uk, acb) are not 8949 lines. " + ROUNDING
    ),
)
def form8949(
    year: str = Query(description="Tax year, e.g. 2024"), user_id: str = Depends(current_user)
) -> StreamingResponse:
    rows = disposals_of(user_id, year)
    return download(form8949_csv(rows, year), year_file("form8949", year, "csv"), CSV)


@router.get(
    "/v1/reports/schedule-d.csv",
    response_class=StreamingResponse,
    summary="Form 8949 totals per part and box, and the Schedule D lines they go to, as CSV",
    responses=csv_doc(
        "Rows (form, line, part, box, lines, proceeds, cost_basis, adjustment, "
        "gain_or_loss): Form 8949 line 2 per part and box, then Schedule D line 3 "
        "(box C or I) and 10 (box F or L); the sums of the printed 8949 lines."
    ),
)
def schedule_d(
    year: str = Query(description="Tax year, e.g. 2024"), user_id: str = Depends(current_user)
) -> StreamingResponse:
    rows = disposals_of(user_id, year)
    return download(schedule_d_csv(rows, year), year_file("schedule-d", year, "csv"), CSV)


@router.get(
    "/v1/reports/turbotax.txf",
    response_class=StreamingResponse,
    summary="Form 8949 lines as a TXF v042 file (TurboTax import)",
    responses={
        200: {
            "content": {"application/vnd.intu.txf": {}},
            "description": "Record format 4 detail records, refnum 712 (short) / 714 "
            "(long): Form 8949 with no 1099 (box C/F; I/L from 2025)",
        }
    },
)
def turbotax_txf(
    year: str = Query(description="Tax year, e.g. 2024"), user_id: str = Depends(current_user)
) -> StreamingResponse:
    rows = disposals_of(user_id, year)
    body = txf(rows, year, datetime.now(timezone.utc).date())
    return download(body, year_file("turbotax", year, "txf"), "application/vnd.intu.txf")


@router.get(
    "/v1/reports/income.csv",
    response_class=StreamingResponse,
    summary="Income of a tax year by month and kind (staking, mining, ...) as CSV",
    responses=csv_doc(
        "Rows (month, kind, transactions, value, missing_value) by month then kind, then a "
        "'total' row per kind and ('total', 'all'); values in cents, totals add the printed "
        "cells; missing_value counts income without a price (valued 0)."
    ),
)
def income_report(
    year: str = Query(description="Tax year: 2024, or 2024/25 for the UK method"),
    user_id: str = Depends(current_user),
) -> StreamingResponse:
    start, end = year_bounds(checked_year(year))
    rows = queries.iter_income(db(), user_id, start, end)
    return download(income_csv(rows, year), year_file("income", year, "csv"), CSV)


@router.get(
    "/v1/reports/sa108.csv",
    response_class=StreamingResponse,
    summary="UK SA108 cryptoassets summary of a UK tax year as CSV (boxes 13.1-13.5)",
    responses=csv_doc(
        "Rows (box, description, value): number of disposals, disposal proceeds, allowable "
        "costs, gains in the year before losses, losses in the year; 13.2 - 13.3 = 13.4 - "
        "13.5 as printed. Box numbers are named from 2024/25 (the cryptoassets section)."
    ),
)
def sa108(
    year: str = Query(description="UK tax year, e.g. 2024/25"),
    user_id: str = Depends(current_user),
) -> StreamingResponse:
    if not is_uk_year(checked_year(year)):
        raise ApiError(400, "bad_request", "SA108 is for a UK tax year, e.g. 2024/25")
    rows = disposals_of(user_id, year)
    return download(sa108_csv(rows, year), year_file("sa108", year, "csv"), CSV)


@router.get(
    "/v1/reports/summary",
    response_model=ReportSummary,
    summary="A tax year's report counts and Form 8949 totals, with the report downloads",
)
def reports_summary(
    year: str = Query(description="Tax year: 2024, or 2024/25 for the UK method"),
    user_id: str = Depends(current_user),
) -> ReportSummary:
    lines, zero_basis, totals = report_summary(disposals_of(user_id, year), year)
    uk = is_uk_year(year)
    names = ["income", "sa108"] if uk else ["form8949", "schedule_d", "turbotax", "income"]
    return ReportSummary(
        year=year,
        disposal_lines=lines,
        zero_cost_basis_lines=zero_basis,
        form8949=[
            BoxTotal(
                part=t.part,
                box=t.box,
                schedule_d_line=t.schedule_d_line,
                lines=t.lines,
                proceeds=str(t.proceeds),
                cost_basis=str(t.cost_basis),
                adjustment=str(t.adjustment),
                gain_or_loss=str(t.gain),
            )
            for t in totals
        ],
        downloads={name: f"{REPORTS[name]}?{urlencode({'year': year})}" for name in names},
    )
