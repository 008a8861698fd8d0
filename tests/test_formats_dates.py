"""Dates the way exchanges and Excel write them (M/D/YYYY, D/M/YY, with or without seconds, 12-hour
clocks): the order is decided once per file from its values (any day above 12), else the
format's convention, which the job notes; every chunk reads the file's one order."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.extract.chunking import HEAD_BYTES, date_order_evidence, inspect_file
from ingest.extract.formats.base import DAY_FIRST, MONTH_FIRST, slashed_dates_to_iso
from ingest.extract.parse import parse_bytes, parse_local_file
from tests.test_formats import rejected

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def times(result) -> list[datetime]:
    return result.table.column("timestamp").to_pylist()


def test_slashed_dates_become_iso_text_in_the_given_order() -> None:
    values = pa.array(
        ["1/22/2023 4:32", "8/8/08", "04/06/2022 11:03:00", "12/1/2023 1:05:09.5 PM", "x", None]
    )
    assert slashed_dates_to_iso(values, MONTH_FIRST).to_pylist() == [
        "2023-01-22 04:32:00",
        "2008-08-08",  # a date alone stays a date (Gemini's time has a column of its own)
        "2022-04-06 11:03:00",
        "2023-12-01 13:05:09.5",
        "x",
        None,
    ]
    assert slashed_dates_to_iso(values, DAY_FIRST).to_pylist() == [
        "1/22/2023 4:32",  # no month 22: left as written, the format's parse rejects it
        "2008-08-08",
        "2022-06-04 11:03:00",
        "2023-01-12 13:05:09.5",
        "x",
        None,
    ]


def test_gemini_date_and_time_in_one_cell() -> None:
    values = pa.array(["8/8/08 06:27:56.140", "8/13/08 6:27"])
    assert slashed_dates_to_iso(values, MONTH_FIRST).to_pylist() == [
        "2008-08-08 06:27:56.140",
        "2008-08-13 06:27:00",
    ]


def test_the_first_unambiguous_value_decides_the_order() -> None:
    assert date_order_evidence("a,04/06/2022,x\nb,15/06/2022,y") == (DAY_FIRST, "15/06/2022")
    assert date_order_evidence("1/22/2023 4:32,BTC") == (MONTH_FIRST, "1/22/2023")
    assert date_order_evidence("04/06/2022 and 2022/04/13 and 1.5/13/2") is None


def test_cryptocom_after_an_excel_round_trip() -> None:
    result = parse_local_file(FIXTURES / "cryptocom_excel.csv", user_id="u")
    # 1/22 can only be month first: so is 2/3 (3 February), in the file's one order
    assert times(result) == [utc(2023, 1, 22, 4, 32), utc(2023, 2, 3, 16, 5)]
    assert result.notes == [
        "slashed dates read month first (M/D/Y), as '1/22/2023' in the file shows"
    ]
    rows = result.table.select(["sent_amount", "received_asset", "received_amount"]).to_pylist()
    assert rows[0] == {
        "sent_amount": D("210"),
        "received_asset": "BTC",
        "received_amount": D("0.01"),
    }
    assert not result.errors


def test_gemini_two_digit_years_follow_the_convention_and_say_so() -> None:
    result = parse_local_file(FIXTURES / "gemini_excel.csv", user_id="u")
    # 8/8/23 and 8/9/23 read both ways: Gemini's (US) month-first convention, noted on the job
    assert times(result) == [utc(2023, 8, 9, 10, 15, 30, 250000)]
    assert result.notes == [
        "slashed dates read month first (M/D/Y), the convention of gemini: no day above 12 in "
        "the file tells the order; check a date you know"
    ]
    assert result.table.column("received_amount").to_pylist() == [D("0.02")]


@pytest.mark.parametrize("chunk_bytes", [None, 1])
def test_koinly_universal_day_first_is_decided_by_a_later_row(chunk_bytes: int | None) -> None:
    result = parse_local_file(
        FIXTURES / "koinly_day_first.csv", user_id="u", chunk_bytes=chunk_bytes
    )
    # 15/06 decides day first: 04/06/2022 is 4 June, not 6 April
    assert times(result) == [utc(2022, 6, 4, 11, 3), utc(2022, 6, 15, 9)]
    assert not result.rejected


def koinly_rows(dates: list[str]) -> bytes:
    header = "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash"
    rows = [f"{d},,,0.001,BTC,,,20,EUR,,row {i} {'x' * 40},\n" for i, d in enumerate(dates)]
    return (header + "\n" + "".join(rows)).encode()


def test_a_deciding_value_beyond_the_head_decides_for_every_chunk() -> None:
    ambiguous = [f"{m}/{d}/2023 10:00" for m in range(1, 13) for d in range(1, 13)] * 12
    data = koinly_rows(ambiguous + ["20/12/2023 10:00"])
    assert len(data) > 2 * HEAD_BYTES
    layout = inspect_file(io.BytesIO(data), len(data))
    assert (layout.date_order, layout.date_order_shown_by) == (DAY_FIRST, "20/12/2023")
    result = parse_bytes(data, user_id="u", chunk_bytes=4096)
    assert not result.rejected
    assert times(result)[:2] == [utc(2023, 1, 1, 10), utc(2023, 2, 1, 10)]  # 1/2/2023: 1 February
    assert times(result)[-1] == utc(2023, 12, 20, 10)


def test_a_value_against_the_files_order_is_rejected_as_written() -> None:
    result = parse_bytes(koinly_rows(["1/22/2023 4:32", "25/01/2023 10:00"]), user_id="u")
    assert times(result) == [utc(2023, 1, 22, 4, 32)]
    assert rejected(result) == [(3, "bad date '25/01/2023 10:00' in column Date", False)]


def test_files_without_slashed_dates_have_no_order_and_no_note() -> None:
    result = parse_local_file(FIXTURES / "koinly.csv", user_id="u")
    assert result.notes == []
