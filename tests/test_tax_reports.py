"""The report files read back against their specifications (pure): Form 8949 lines add up as
printed, (h) = (d) - (e) + (g); the box by tax year; Schedule D totals are the sums of the printed
lines; TXF parsed by the v042 grammar totals to the 8949; income and SA108 add up as printed."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ingest.tax.records import DisposalLine
from ingest.tax.report import (
    FORM_8949_COLUMNS,
    INCOME_REPORT_COLUMNS,
    SA108_COLUMNS,
    SCHEDULE_D_COLUMNS,
    IncomeItem,
    box_totals,
    form8949_box,
    form8949_lines,
    form8949_rows,
    income_report_rows,
    sa108_rows,
    schedule_d_rows,
    txf_text,
)
from serve.reports import csv_pieces

D = Decimal
CENT = D("0.01")


def line(
    proceeds: str,
    cost: str,
    *,
    term: str = "short",
    year: str = "2023",
    sold: datetime = datetime(2023, 5, 1, 12, tzinfo=timezone.utc),
    acquired: date | None = date(2023, 1, 2),
    asset: str = "BTC",
    n: int = 0,
) -> DisposalLine:
    p, c = D(proceeds), D(cost)
    return DisposalLine(
        line_id=f"t{n}:{asset}:0:0",
        tx_id=f"t{n}",
        wallet="w",
        asset=asset,
        quantity=D("0.5"),
        date_acquired=acquired,
        date_sold=sold.date(),
        sold_at=sold,
        proceeds=p,
        cost_basis=c,
        gain=p - c,
        term=term,
        rule="lot",
        purpose="sell",
        tax_year=year,
    )


def read_csv(rows: list[list[str]]) -> list[dict[str, str]]:
    """The rows written as the API writes them, read back by a CSV reader."""
    return list(csv.DictReader(io.StringIO("".join(csv_pieces(rows)))))


def random_lines(count: int, year: str = "2023", seed: int = 7) -> list[DisposalLine]:
    rng = random.Random(seed)
    start = datetime(int(year[:4]), 1, 1, tzinfo=timezone.utc)
    out = []
    for n in range(count):
        proceeds = D(rng.randrange(0, 10**9)) / D(10 ** rng.randrange(2, 8))
        cost = D(rng.randrange(0, 10**9)) / D(10 ** rng.randrange(2, 8))
        sold = start + timedelta(minutes=rng.randrange(0, 360 * 24 * 60))
        out.append(
            line(
                str(proceeds),
                str(cost),
                term=rng.choice(["short", "long"]),
                year=year,
                sold=sold,
                acquired=None if n % 7 == 0 else date(int(year[:4]) - 2, 3, 4),
                n=n,
            )
        )
    return out


def money(text: str) -> Decimal:
    value = D(text)
    assert value == value.quantize(CENT), f"{text} is not in cents"
    return value


# --- Form 8949 ----------------------------------------------------------------------------------
def test_the_issue_line_prints_a_gain_derived_from_its_printed_figures():
    # 759.40 - 849.45 was printed as -90.04 (each figure rounded on its own).
    (row,) = read_csv(form8949_rows(form8949_lines([line("759.404", "849.4449")])))
    assert (row["proceeds"], row["cost_basis"], row["gain_or_loss"]) == (
        "759.40",
        "849.44",
        "-90.04",
    )
    (row,) = read_csv(form8949_rows(form8949_lines([line("759.4049", "849.4451")])))
    assert (row["proceeds"], row["cost_basis"], row["gain_or_loss"]) == (
        "759.40",
        "849.45",
        "-90.05",
    )


def test_every_printed_line_adds_up_column_h_is_d_minus_e_plus_g():
    rows = read_csv(form8949_rows(form8949_lines(random_lines(3000))))
    assert list(rows[0]) == FORM_8949_COLUMNS and len(rows) == 3000
    for row in rows:
        adjustment = money(row["adjustment"]) if row["adjustment"] else D(0)
        assert money(row["gain_or_loss"]) == (
            money(row["proceeds"]) - money(row["cost_basis"]) + adjustment
        ), row
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4}|VARIOUS", row["date_acquired"])
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", row["date_sold"])
        assert row["gain_or_loss"] != "-0.00"


def test_part_one_short_term_comes_before_part_two_each_by_date_sold():
    rows = read_csv(form8949_rows(form8949_lines(random_lines(500))))
    parts = [r["part"] for r in rows]
    assert parts == sorted(parts, key=len) and set(parts) == {"I", "II"}
    for part in ("I", "II"):
        sold = [datetime.strptime(r["date_sold"], "%m/%d/%Y") for r in rows if r["part"] == part]
        assert sold == sorted(sold)


@pytest.mark.parametrize(
    ("year", "short", "long"),
    [("2023", "C", "F"), ("2024", "C", "F"), ("2025", "I", "L"), ("2026", "I", "L")],
)
def test_the_box_is_no_1099_c_f_before_2025_and_digital_asset_i_l_from_2025(year, short, long):
    assert (form8949_box("short", year), form8949_box("long", year)) == (short, long)
    rows = read_csv(form8949_rows(form8949_lines(random_lines(50, year))))
    assert {(r["part"], r["box"]) for r in rows} == {("I", short), ("II", long)}


def test_lines_without_a_holding_period_are_not_8949_lines():
    uk = line("10", "5", term="n/a", year="2023/24")
    assert form8949_lines([uk, line("10", "5")])[0].part == "I"
    assert len(form8949_lines([uk])) == 0


# --- Schedule D ---------------------------------------------------------------------------------
@pytest.mark.parametrize("year", ["2024", "2025"])
def test_schedule_d_totals_equal_the_sums_of_the_printed_lines(year):
    printed = read_csv(form8949_rows(form8949_lines(random_lines(2000, year))))
    summary = read_csv(schedule_d_rows(box_totals(form8949_lines(random_lines(2000, year)))))
    assert list(summary[0]) == SCHEDULE_D_COLUMNS
    expected_line = {"C": "3", "F": "10", "I": "3", "L": "10"}
    boxes = sorted({(r["part"], r["box"]) for r in printed}, key=lambda pb: len(pb[0]))
    assert [(r["form"], r["line"], r["part"], r["box"]) for r in summary] == [
        ("8949", "2", part, box) for part, box in boxes
    ] + [("Schedule D", expected_line[box], part, box) for part, box in boxes]
    for total in summary:
        mine = [r for r in printed if r["box"] == total["box"]]
        assert int(total["lines"]) == len(mine)
        for column in ("proceeds", "cost_basis", "gain_or_loss"):
            assert money(total[column]) == sum(money(r[column]) for r in mine), column
        assert money(total["adjustment"]) == 0
        assert money(total["gain_or_loss"]) == (
            money(total["proceeds"]) - money(total["cost_basis"]) + money(total["adjustment"])
        )


# --- TXF ----------------------------------------------------------------------------------------
TXF_DATE = r"\d{2}/\d{2}/\d{4}"
TXF_AMOUNT = r"-?\d+\.\d{2}"


def parse_txf(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A TXF v042 file by the spec's grammar: header lines V, A, D then "^"; records of field
    lines (one character, then the value), each ended by a "^" line; the record format 4 sale:
    T(D|S), N refnum, C copy, L line, P security, D acquired, D sold, $ cost, $ sales net."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    blocks = text[: -len("\r\n")].split("\r\n")
    records: list[list[str]] = [[]]
    for field in blocks:
        if field == "^":
            records.append([])
        else:
            records[-1].append(field)
    assert records.pop() == [], "the file ends with a record's ^"
    header, *sales = records
    assert [h[0] for h in header] == ["V", "A", "D"]
    assert header[0] == "V042" and re.fullmatch(r"D" + TXF_DATE, header[2])
    parsed = []
    for record in sales:
        assert [f[0] for f in record] == ["T", "N", "C", "L", "P", "D", "D", "$", "$"], record
        assert record[0] == "TD" and re.fullmatch(r"N\d{3}", record[1])
        assert record[2] == "C1" and record[3] == "L1"
        assert re.fullmatch(r"D(" + TXF_DATE + ")?", record[5])
        assert re.fullmatch(r"D" + TXF_DATE, record[6])
        assert re.fullmatch(r"\$" + TXF_AMOUNT, record[7])
        assert re.fullmatch(r"\$" + TXF_AMOUNT, record[8])
        parsed.append(
            {
                "refnum": record[1][1:],
                "security": record[4][1:],
                "acquired": record[5][1:],
                "sold": record[6][1:],
                "cost": record[7][1:],
                "sales": record[8][1:],
            }
        )
    return {"version": header[0][1:], "program": header[1][1:]}, parsed


@pytest.mark.parametrize(("year", "refnums"), [("2024", ("712", "714")), ("2025", ("712", "714"))])
def test_txf_reads_back_by_the_v042_grammar_and_totals_equal_the_8949(year, refnums):
    lines = form8949_lines(random_lines(800, year))
    header, sales = parse_txf(txf_text(lines, exported=date(2026, 2, 1), program="ledgerflow"))
    assert header == {"version": "042", "program": "ledgerflow"}
    assert len(sales) == len(lines)
    totals = {t.box: t for t in box_totals(lines)}
    short, long = refnums  # Copy C (no 1099): 712 Part I, 714 Part II
    for refnum, part in ((short, "I"), (long, "II")):
        (total,) = [t for t in totals.values() if t.part == part]
        mine = [s for s in sales if s["refnum"] == refnum]
        assert len(mine) == total.lines
        assert sum(money(s["cost"]) for s in mine) == total.cost_basis
        assert sum(money(s["sales"]) for s in mine) == total.proceeds
    printed = read_csv(form8949_rows(lines))
    for sale, row in zip(sales, printed):
        assert (sale["security"], sale["sold"], sale["sales"], sale["cost"]) == (
            row["description"],
            row["date_sold"],
            row["proceeds"],
            row["cost_basis"],
        )
        assert sale["acquired"] == (
            "" if row["date_acquired"] == "VARIOUS" else row["date_acquired"]
        )


# --- income -------------------------------------------------------------------------------------
def test_income_by_month_and_kind_adds_up_as_printed():
    items = [
        IncomeItem("2024-01", "staking", D("0.004")),
        IncomeItem("2024-01", "staking", D("0.004")),
        IncomeItem("2024-01", "interest", D("10.105")),
        IncomeItem("2024-02", "staking", D("1.333")),
        IncomeItem("2024-02", "staking", None),
        IncomeItem("2024-02", "airdrop", D("50")),
    ]
    rows = read_csv(income_report_rows(items))
    assert list(rows[0]) == INCOME_REPORT_COLUMNS
    assert [list(r.values()) for r in rows] == [
        ["2024-01", "interest", "1", "10.11", "0"],
        ["2024-01", "staking", "2", "0.01", "0"],
        ["2024-02", "airdrop", "1", "50.00", "0"],
        ["2024-02", "staking", "2", "1.33", "1"],
        ["total", "airdrop", "1", "50.00", "0"],
        ["total", "interest", "1", "10.11", "0"],
        ["total", "staking", "4", "1.34", "1"],
        ["total", "all", "6", "61.45", "1"],
    ]
    cells = [r for r in rows if r["month"] != "total"]
    for kind_total in (r for r in rows if r["month"] == "total" and r["kind"] != "all"):
        assert money(kind_total["value"]) == sum(
            money(r["value"]) for r in cells if r["kind"] == kind_total["kind"]
        )
    assert money(rows[-1]["value"]) == sum(money(r["value"]) for r in cells)


# --- SA108 --------------------------------------------------------------------------------------
def test_sa108_counts_same_day_disposals_once_and_adds_up_as_printed():
    day = datetime(2024, 6, 1, 9, tzinfo=timezone.utc)
    lines = [
        # one BTC disposal on 1 June matched twice (same day, then the pool)
        line("1000.004", "400.004", term="n/a", year="2024/25", sold=day, n=1),
        line("500.004", "200.004", term="n/a", year="2024/25", sold=day, n=1),
        # a second BTC sale the same day: the same disposal (TCGA92 s105)
        line("10", "20", term="n/a", year="2024/25", sold=day + timedelta(hours=5), n=2),
        # an ETH loss another day
        line(
            "100", "350.505", term="n/a", year="2024/25", sold=day + timedelta(days=3), asset="ETH"
        ),
    ]
    rows = read_csv(sa108_rows(lines, "2024/25"))
    assert list(rows[0]) == SA108_COLUMNS
    assert [(r["box"], r["value"]) for r in rows] == [
        ("13.1", "2"),
        ("13.2", "1610.01"),
        ("13.3", "970.52"),
        ("13.4", "890.00"),
        ("13.5", "250.51"),
    ]
    value = {r["box"]: money(r["value"]) for r in rows if r["box"] != "13.1"}
    assert value["13.2"] - value["13.3"] == value["13.4"] - value["13.5"]


def test_sa108_names_the_cryptoassets_boxes_only_from_2024_25():
    lines = [line("10", "5", term="n/a", year="2023/24")]
    rows = read_csv(sa108_rows(lines, "2023/24"))
    assert [r["box"] for r in rows] == [""] * 5
    assert rows[0]["description"] == "Number of disposals"
