"""Report writers: pure functions from engine records to rows / strings, plus one thin function
that writes the offline report folder. The query API reuses the row builders (Form 8949 CSV,
Schedule D summary, TXF, income by kind and month, SA108).

Money is rounded to cents only here, ROUND_HALF_UP (the usual rounding of tax forms: 0.005 ->
0.01). Every printed figure adds up as printed:
- Form 8949 (and TXF): proceeds (d) and cost basis (e) are rounded to cents each and the gain (h)
  is derived from the rounded figures, (h) = (d) - (e) + (g), as the IRS instructions define the
  column (cents are allowed). No rounding adjustment is carried in (g): column (g) takes amounts
  with an IRS code (f) only, and there is no code for rounding. A line's printed gain so differs
  from its unrounded gain by at most one cent; the part and Schedule D totals are the sums of
  the printed lines, never the rounded sums of unrounded figures.
- The income report and SA108 total their own rounded cells the same way.
Quantities are written unrounded (no exponent, no trailing zeros). Dates are ISO (YYYY-MM-DD) in
the method's tax calendar; Form 8949 and TXF use MM/DD/YYYY and Form 8949 "VARIOUS" for pooled
acquisitions.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ingest.normalize.canonical import INCOME_LABELS, plain_decimal
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
    "box",
    "description",
    "date_acquired",
    "date_sold",
    "proceeds",
    "cost_basis",
    "code",
    "adjustment",
    "gain_or_loss",
]


def cents(amount: Decimal) -> Decimal:
    """``amount`` rounded half up to cents (pence), never -0.00."""
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def money(amount: Decimal | None) -> str:
    return "" if amount is None else str(cents(amount))


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


# --- Form 8949, Schedule D, TXF ------------------------------------------------------------------
# Tax years from which digital assets have boxes of their own (Form 1099-DA): G/H/I short term,
# J/K/L long term; before, they shared A/B/C and D/E/F with other capital assets.
DIGITAL_ASSET_BOXES_FROM = 2025
# Schedule D line of each Form 8949 box (the 2025 form puts G-L on the lines of A-F).
SCHEDULE_D_LINE = {
    **dict.fromkeys("AG", "1b"),
    **dict.fromkeys("BH", "2"),
    **dict.fromkeys("CI", "3"),
    **dict.fromkeys("DJ", "8b"),
    **dict.fromkeys("EK", "9"),
    **dict.fromkeys("FL", "10"),
}


NO_ADJUSTMENT = Decimal("0.00")


def form8949_box(term: str, tax_year: str) -> str:
    """The box of a line ledgerflow computes from the user's own records: no 1099-B or 1099-DA
    reported it, so C (short) / F (long) before tax year 2025 and I / L from 2025 (the 2025
    instructions: do not use box C or F for digital assets)."""
    short = term == Term.SHORT
    if int(tax_year[:4]) >= DIGITAL_ASSET_BOXES_FROM:
        return "I" if short else "L"
    return "C" if short else "F"


@dataclass(frozen=True, slots=True)
class Form8949Line:
    """One printed line; money in cents, gain = proceeds - cost_basis + adjustment exactly."""

    part: str  # "I" short term, "II" long term
    box: str
    description: str
    date_acquired: date | None  # None: pooled or unknown ("VARIOUS")
    date_sold: date
    proceeds: Decimal
    cost_basis: Decimal
    code: str
    adjustment: Decimal
    gain: Decimal


def form8949_lines(disposals: Iterable[DisposalLine]) -> list[Form8949Line]:
    """Form 8949 lines: Part I (short term) then Part II (long term), each by date sold. Lines
    without a holding period (UK, ACB) are not 8949 lines and are skipped. Proceeds and cost
    basis are rounded to cents, the gain is derived from them (the module docstring says why)."""
    held = [d for d in disposals if d.term in (Term.SHORT, Term.LONG)]
    held.sort(key=lambda d: (d.term != Term.SHORT, d.sold_at, d.tx_id, d.line_id))
    lines = []
    for d in held:
        proceeds, cost = cents(d.proceeds), cents(d.cost_basis)
        lines.append(
            Form8949Line(
                part="I" if d.term == Term.SHORT else "II",
                box=form8949_box(d.term, d.tax_year),
                description=f"{quantity(d.quantity)} {d.asset}",
                date_acquired=d.date_acquired,
                date_sold=d.date_sold,
                proceeds=proceeds,
                cost_basis=cost,
                code="",
                adjustment=NO_ADJUSTMENT,
                gain=cents(proceeds - cost),
            )
        )
    return lines


def us_date(day: date | None) -> str:
    return day.strftime("%m/%d/%Y") if day is not None else "VARIOUS"


def form8949_rows(lines: Iterable[Form8949Line]) -> list[list[str]]:
    """Columns (a) description, (b) date acquired, (c) date sold, (d) proceeds, (e) cost basis,
    (f) code, (g) adjustment, (h) gain or loss, after the part and the box checked."""
    return [FORM_8949_COLUMNS] + [
        [
            line.part,
            line.box,
            line.description,
            us_date(line.date_acquired),
            us_date(line.date_sold),
            str(line.proceeds),
            str(line.cost_basis),
            line.code,
            str(line.adjustment) if line.code else "",
            str(line.gain),
        ]
        for line in lines
    ]


@dataclass(frozen=True, slots=True)
class BoxTotals:
    """Form 8949 line 2 of one part and box, which Schedule D carries on `schedule_d_line`."""

    part: str
    box: str
    schedule_d_line: str
    lines: int
    proceeds: Decimal
    cost_basis: Decimal
    adjustment: Decimal
    gain: Decimal


def box_totals(lines: Iterable[Form8949Line]) -> list[BoxTotals]:
    """Per part and box (Part I first), the sums of the printed lines: (h) = (d) - (e) + (g)
    holds for the totals because it holds for every line."""
    sums: dict[tuple[str, str], list] = {}
    for line in lines:
        entry = sums.setdefault((line.part, line.box), [0, CENT * 0, CENT * 0, NO_ADJUSTMENT])
        entry[0] += 1
        entry[1] += line.proceeds
        entry[2] += line.cost_basis
        entry[3] += line.adjustment
    return [
        BoxTotals(part, box, SCHEDULE_D_LINE[box], count, p, c, a, p - c + a)
        for (part, box), (count, p, c, a) in sorted(
            sums.items(), key=lambda item: (len(item[0][0]), item[0][1])
        )
    ]


SCHEDULE_D_COLUMNS = [
    "form",
    "line",
    "part",
    "box",
    "lines",
    "proceeds",
    "cost_basis",
    "adjustment",
    "gain_or_loss",
]


def schedule_d_rows(totals: Iterable[BoxTotals]) -> list[list[str]]:
    """Form 8949 line 2 (each part's totals per box) and the Schedule D line each goes to (3 for
    box C or I, 10 for F or L): columns (d), (e), (g), (h). Schedule D lines that need facts the
    records do not hold (carryovers, lines 4-6, 11-14, 16 onward) are left to the preparer."""
    totals = list(totals)
    rows = [SCHEDULE_D_COLUMNS]
    for form, line_of in (("8949", lambda t: "2"), ("Schedule D", lambda t: t.schedule_d_line)):
        for t in totals:
            rows.append(
                [
                    form,
                    line_of(t),
                    t.part,
                    t.box,
                    str(t.lines),
                    str(t.proceeds),
                    str(t.cost_basis),
                    str(t.adjustment),
                    str(t.gain),
                ]
            )
    return rows


# TXF v042 reference numbers of Form 8949 sales (record format 4): Copy A/B/C of Part I (short)
# and Part II (long). v042 predates the 2025 digital-asset boxes: G/H/I and J/K/L take the refnum
# of the copy with the same meaning (basis reported / not reported / no 1099).
TXF_VERSION = "042"
TXF_REFNUM = {
    **dict.fromkeys("AG", 321),
    **dict.fromkeys("BH", 711),
    **dict.fromkeys("CI", 712),
    **dict.fromkeys("DJ", 323),
    **dict.fromkeys("EK", 713),
    **dict.fromkeys("FL", 714),
}


def txf_text(lines: Iterable[Form8949Line], *, exported: date, program: str) -> str:
    """A TXF v042 file: the header (V version, A program, D export date), then one detail record
    (TD) per Form 8949 line in record format 4: N refnum, C copy 1, L line 1, P description,
    D date acquired (empty when pooled: the spec's Example 2B), D date sold, $ cost basis,
    $ sales net; records end with a "^" line. Dates MM/DD/YYYY, amounts with cents."""
    out = [f"V{TXF_VERSION}", f"A{program}", f"D{exported:%m/%d/%Y}", "^"]
    for line in lines:
        acquired = "" if line.date_acquired is None else f"{line.date_acquired:%m/%d/%Y}"
        out += [
            "TD",
            f"N{TXF_REFNUM[line.box]}",
            "C1",
            "L1",
            f"P{line.description}",
            f"D{acquired}",
            f"D{line.date_sold:%m/%d/%Y}",
            f"${line.cost_basis}",
            f"${line.proceeds}",
            "^",
        ]
    return "\r\n".join(out) + "\r\n"


# --- income by kind and month ------------------------------------------------------------------
INCOME_REPORT_COLUMNS = ["month", "kind", "transactions", "value", "missing_value"]


def income_kind(label: str | None) -> str:
    """The engine's income kind of a row's label (ingest.tax.events): a known label, else
    "income"."""
    kind = (label or "").strip().lower()
    return kind if kind in INCOME_LABELS else "income"


@dataclass(frozen=True, slots=True)
class IncomeItem:
    month: str  # YYYY-MM in the tax calendar
    kind: str
    value: Decimal | None  # None: no price (the engine counted 0 and flagged it)


def income_report_rows(items: Iterable[IncomeItem]) -> list[list[str]]:
    """One row per month and kind (by month, then kind), then one "total" row per kind and the
    year's ("total", "all"). A cell's value is the sum of its transactions rounded to cents;
    totals add the printed cells. ``missing_value`` counts transactions without a value."""
    cells: dict[tuple[str, str], list] = defaultdict(lambda: [0, Decimal(0), 0])
    for item in items:
        cell = cells[(item.month, item.kind)]
        cell[0] += 1
        if item.value is None:
            cell[2] += 1
        else:
            cell[1] += item.value
    rows = [INCOME_REPORT_COLUMNS]
    kinds: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0])
    for (month, kind), (count, value, missing) in sorted(cells.items()):
        printed = cents(value)
        rows.append([month, kind, str(count), str(printed), str(missing)])
        for key in (kind, ""):
            total = kinds[key]
            total[0] += count
            total[1] += printed
            total[2] += missing
    for kind, (count, value, missing) in sorted(kinds.items(), key=lambda kv: (kv[0] == "", kv[0])):
        rows.append(["total", kind or "all", str(count), str(value), str(missing)])
    return rows


# --- UK: SA108 --------------------------------------------------------------------------------
SA108_COLUMNS = ["box", "description", "value"]
# The cryptoassets section of SA108 (from tax year 2024/25); before, crypto went under "Other
# property, assets and gains", whose box numbers this report does not name.
SA108_CRYPTO_FROM = 2024
SA108_BOXES = (
    ("13.1", "Number of disposals"),
    ("13.2", "Disposal proceeds"),
    ("13.3", "Allowable costs (including purchase price)"),
    ("13.4", "Gains in the year, before losses"),
    ("13.5", "Losses in the year"),
)


def sa108_rows(disposals: Iterable[DisposalLine], tax_year: str) -> list[list[str]]:
    """The SA108 cryptoassets summary of a UK tax year ("2024/25"). A disposal is one token's
    disposals of one day (same-day disposals are one disposal, TCGA92 s105 / CRYPTO22250); its
    matched lines (same day, 30 days, Section 104 pool) add up to its proceeds and costs. The
    engine states UK proceeds gross and the selling fee among the costs, as SA108 wants.
    Proceeds and costs are rounded to pence per disposal and its gain or loss derived from them,
    so 13.2 - 13.3 = 13.4 - 13.5 as printed."""
    per_disposal: dict[tuple[str, date], list[Decimal]] = {}
    for d in disposals:
        entry = per_disposal.setdefault((d.asset, d.date_sold), [Decimal(0), Decimal(0)])
        entry[0] += d.proceeds
        entry[1] += d.cost_basis
    proceeds = costs = gains = losses = CENT * 0
    for p, c in per_disposal.values():
        printed_p, printed_c = cents(p), cents(c)
        proceeds += printed_p
        costs += printed_c
        gain = printed_p - printed_c
        if gain > 0:
            gains += gain
        else:
            losses -= gain
    values = [str(len(per_disposal)), str(proceeds), str(costs), str(gains), str(losses)]
    named = int(tax_year[:4]) >= SA108_CRYPTO_FROM
    return [SA108_COLUMNS] + [
        [box if named else "", label, value] for (box, label), value in zip(SA108_BOXES, values)
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


def year_reports(result: TaxResult, exported: date) -> dict[str, str]:
    """The per-year files of the offline report: for each US tax year with Form 8949 lines
    form8949-YYYY.csv, schedule-d-YYYY.csv and turbotax-YYYY.txf; for each UK tax year
    sa108-YYYY-YY.csv. The same builders the API's /v1/reports use."""
    by_year: dict[str, list[DisposalLine]] = defaultdict(list)
    for d in result.disposals:
        by_year[d.tax_year].append(d)
    files: dict[str, str] = {}
    for year, disposals in sorted(by_year.items()):
        if "/" in year:
            files[f"sa108-{year.replace('/', '-')}.csv"] = to_csv(sa108_rows(disposals, year))
            continue
        lines = form8949_lines(disposals)
        if lines:
            files[f"form8949-{year}.csv"] = to_csv(form8949_rows(lines))
            files[f"schedule-d-{year}.csv"] = to_csv(schedule_d_rows(box_totals(lines)))
            files[f"turbotax-{year}.txf"] = txf_text(lines, exported=exported, program="ledgerflow")
    return files


def write_report(
    result: TaxResult,
    out_dir: Path | str,
    *,
    sources: Mapping[str, str] | None = None,
    exported: date | None = None,
) -> list[Path]:
    """Write disposals.csv, income.csv, balances.csv, issues.csv, summary.json and the per-year
    reports (``year_reports``; TXF dated ``exported``, default today) into out_dir."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "disposals.csv": to_csv(disposal_rows(result.disposals)),
        "income.csv": to_csv(income_rows(result.income)),
        "balances.csv": to_csv(balance_rows(result.balances)),
        "issues.csv": to_csv(finding_rows(result.findings, sources)),
        "summary.json": summary_json(result),
        **year_reports(result, exported or date.today()),
    }
    written = []
    for name, text in contents.items():
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    return written
