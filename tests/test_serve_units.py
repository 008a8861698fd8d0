"""The API's pure parts: upload stream checks, multipart streaming, page tokens, decimal output,
token cache, Form 8949 lines, the client's progress bars. No services needed."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.load import queries
from ingest.load.queries import TxCursor
from ingest.normalize.canonical import plain_decimal
from ingest.tax.report import FORM_8949_COLUMNS
from serve.auth import TokenCache
from serve.client import (
    change_lines,
    format_result,
    human_bytes,
    human_count,
    stage_views,
)
from serve.errors import ApiError
from serve.page_tokens import (
    decode_paging_state,
    decode_tx_cursor,
    encode_paging_state,
    encode_tx_cursor,
    list_scope,
)
from serve.query_api import time_bound
from serve.reports import checked_year, form8949_csv
from serve.upload_stream import (
    SNIFF_BYTES,
    CsvSink,
    MultipartFileReader,
    UploadRejected,
    multipart_boundary,
)

CSV = b"Koinly Date,Amount,Currency\n2024-01-02 10:00:00,1.5,BTC\n"  # a known header


def multipart_body(
    boundary: str,
    file_bytes: bytes,
    file_name: str = "export.csv",
    extra_fields: dict[str, str] | None = None,
) -> bytes:
    parts = []
    for name, value in (extra_fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{file_name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + file_bytes
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


# --- content types ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "text/csv",
        "text/csv; charset=utf-8",
        "application/csv",
        "text/plain",
        "application/octet-stream",
        "TEXT/CSV",
        "application/vnd.ms-excel",
    ],
)
def test_raw_csv_content_types_are_accepted(header):
    assert multipart_boundary(header) is None


def test_multipart_gives_its_boundary():
    assert multipart_boundary("multipart/form-data; boundary=abc123") == b"abc123"


@pytest.mark.parametrize(
    "header", [None, "", "application/json", "image/png", "application/x-www-form-urlencoded"]
)
def test_other_content_types_are_415(header):
    with pytest.raises(UploadRejected) as info:
        multipart_boundary(header)
    assert info.value.status == 415


# --- the sink -----------------------------------------------------------------------------------
def test_sink_writes_hashes_and_counts():
    import hashlib

    out = io.BytesIO()
    sink = CsvSink(out, max_bytes=1000)
    for piece in (CSV[:7], CSV[7:20], CSV[20:]):
        sink.write(piece)
    sink.finish()
    assert out.getvalue() == CSV and sink.size == len(CSV)
    assert sink.sha256 == hashlib.sha256(CSV).hexdigest()


def test_sink_enforces_the_cap_while_streaming():
    sink = CsvSink(io.BytesIO(), max_bytes=10)
    sink.write(b"a,b\n12345")
    with pytest.raises(UploadRejected) as info:
        sink.write(b"67")
    assert info.value.status == 413


@pytest.mark.parametrize(
    "body,code",
    [
        (b"", "empty_file"),
        (b"a,b\n1,\x002\n", "not_csv"),
        (b"just one line without delimiters\n", "not_csv"),
    ],
)
def test_sink_rejects_what_is_not_csv(body, code):
    sink = CsvSink(io.BytesIO(), max_bytes=1000)
    with pytest.raises(UploadRejected) as info:
        sink.write(body)
        sink.finish()
    assert (info.value.status, info.value.code) == (400, code)


def test_sink_accepts_a_preamble_line_without_delimiter():
    # Coinbase reports open with a title line; the header follows.
    sink = CsvSink(io.BytesIO(), max_bytes=1000)
    sink.write(
        b"Transactions\nUser,Jane,1\nTimestamp,Transaction Type,Asset,Quantity Transacted,"
        b"Spot Price Currency,Spot Price at Transaction,Subtotal,"
        b"Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n"
    )
    sink.finish()
    assert sink.layout is not None and sink.layout.version == "coinbase-2023"


def test_sink_answers_415_for_an_unknown_header_naming_formats_and_the_nearest():
    sink = CsvSink(io.BytesIO(), max_bytes=10 * SNIFF_BYTES)
    with pytest.raises(UploadRejected) as info:  # judged once 64 KiB arrived, not at the end
        sink.write(b"Date,Amount,Asset,Kind\n" + b"2024-01-01,1,BTC,buy\n" * (SNIFF_BYTES // 20))
    assert (info.value.status, info.value.code) == (415, "unrecognized_format")
    assert info.value.message.startswith("unrecognized file: no known header in the first ")
    assert info.value.message.endswith(
        'lines; closest: line 1 ("Date, Amount, Asset, Kind") lacks Koinly Date, Currency of '
        "koinly-simple; known headers: GET /v1/formats"
    )
    small = CsvSink(io.BytesIO(), max_bytes=1000, fmt="kraken")
    small.write(CSV)
    with pytest.raises(UploadRejected) as info:
        small.finish()
    assert info.value.status == 415 and "no kraken header" in info.value.message


def test_sink_accepts_utf16_with_a_bom():
    sink = CsvSink(io.BytesIO(), max_bytes=10_000)
    sink.write(b"\xff\xfe" + CSV.decode().encode("utf-16-le"))
    sink.finish()
    assert sink.layout.encoding == "utf-16-le"


def test_sink_keeps_a_few_nul_bytes_of_a_text_file_and_judges_the_head_early():
    sink = CsvSink(io.BytesIO(), max_bytes=10 * SNIFF_BYTES)
    sink.write(CSV + b"x" * SNIFF_BYTES)
    sink.write(b"\n1,\x002\n")  # a bad row later in a text file: the parser rejects that row
    sink.finish()
    text_with_one_bad_row = CSV + b"2024-01-02 10:00:00,1.5,BTC\n" * 20_000 + b"\x00junk\x00\n"
    kept = CsvSink(io.BytesIO(), max_bytes=10 * SNIFF_BYTES)
    kept.write(text_with_one_bad_row[: SNIFF_BYTES + 10])
    for wide in ("a,b\n1,2\n" * 5000).encode("utf-16-le"), b"PK\x03\x04" + b"\x00" * SNIFF_BYTES:
        with pytest.raises(UploadRejected):  # UTF-16 without a BOM, a zip: dense NULs
            CsvSink(io.BytesIO(), max_bytes=10 * SNIFF_BYTES).write(wide)
    no_delimiter = CsvSink(io.BytesIO(), max_bytes=10 * SNIFF_BYTES)
    with pytest.raises(UploadRejected):  # judged once 64 KiB arrived, not at the end
        no_delimiter.write(b"x" * SNIFF_BYTES)


# --- multipart streaming ------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    file_bytes=st.binary(min_size=0, max_size=3000).map(lambda b: b.replace(b"\x00", b"")),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_multipart_reader_extracts_the_file_across_any_chunking(file_bytes, cuts):
    body = multipart_body("XyZb0und", file_bytes, extra_fields={"note": "hi"})
    points = sorted({c for c in cuts if c < len(body)} | {0, len(body)})
    reader = MultipartFileReader(b"XyZb0und")
    got = b"".join(b"".join(reader.feed(body[a:b])) for a, b in zip(points, points[1:]))
    reader.finish()
    assert got == file_bytes and reader.file_name == "export.csv"


def test_multipart_without_a_file_field_or_truncated_is_400():
    reader = MultipartFileReader(b"b")
    reader.feed(b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n')
    with pytest.raises(UploadRejected):
        reader.finish()
    body = multipart_body("b", CSV)
    truncated = MultipartFileReader(b"b")
    truncated.feed(body[:-10])
    with pytest.raises(UploadRejected):
        truncated.finish()


# --- page tokens --------------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="module")
def page_token_key_configured() -> Iterator[None]:
    """A configured key: the deployment's stored one needs Cassandra (tests/test_serve_query)."""
    import os

    from ingest.config import get_settings

    before = os.environ.get("LEDGERFLOW_PAGE_TOKEN_KEY")
    os.environ["LEDGERFLOW_PAGE_TOKEN_KEY"] = "unit-test-key"
    get_settings.cache_clear()
    yield
    if before is None:
        del os.environ["LEDGERFLOW_PAGE_TOKEN_KEY"]
    else:
        os.environ["LEDGERFLOW_PAGE_TOKEN_KEY"] = before
    get_settings.cache_clear()


JOBS = list_scope("/v1/jobs", "alice")
TXS = list_scope("/v1/transactions", "alice")


def test_page_tokens_round_trip():
    assert (
        decode_paging_state(encode_paging_state(b"\x00\xffstate", JOBS), JOBS) == b"\x00\xffstate"
    )
    assert encode_paging_state(None, JOBS) is None and decode_paging_state(None, JOBS) is None
    for cursor in (TxCursor(202403), TxCursor(202312, b"\x01\x02", 7)):
        token = encode_tx_cursor(cursor, TXS)
        assert token.replace("-", "").replace("_", "").replace(".", "").isalnum()  # url-safe
        assert decode_tx_cursor(token, TXS) == cursor


@pytest.mark.parametrize(
    "token_of",
    [
        lambda: "???",
        lambda: "bm90IGpzb24",
        lambda: encode_paging_state(b"x", TXS)[:-3] + "!!",
        lambda: encode_tx_cursor(TxCursor(202413), TXS),
    ],
)
def test_bad_page_tokens_are_400(token_of):
    with pytest.raises(ApiError) as info:
        decode_tx_cursor(token_of(), TXS)
    assert info.value.status == 400


def test_crafted_or_tampered_page_tokens_are_400():
    import base64
    import json

    def unsigned(fields):  # what a client can forge: the cursor without this API's signature
        return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")

    issued = encode_tx_cursor(TxCursor(202403, b"\x01", 2), TXS)
    body, _, mac = issued.partition(".")
    tampered = unsigned({"m": 202403, "k": 10**30, "s": "AQ"}) + "." + mac
    for token in (
        unsigned({"m": 202403, "k": 10**30}),
        unsigned({"m": 202403, "k": 5_000_000}),
        tampered,
        body,
        body + ".",
        issued[:-2],
        issued + "x",
    ):
        with pytest.raises(ApiError) as info:
            decode_tx_cursor(token, TXS)
        assert info.value.status == 400 and info.value.code == "invalid_page_token"
    with pytest.raises(ApiError):
        decode_paging_state(unsigned({"s": "AQ"}), JOBS)


def test_a_plain_token_is_not_a_transactions_token():
    with pytest.raises(ApiError):
        decode_tx_cursor(encode_paging_state(b"state", TXS), TXS)


@pytest.mark.parametrize(
    "issued_for,used_for",
    [
        (JOBS, list_scope("/v1/balances", "alice")),  # a jobs token on balances
        (list_scope("/v1/balances", "alice"), JOBS),  # and back: not an empty jobs page
        (JOBS, list_scope("/v1/gains", "alice", "2024")),
        (list_scope("/v1/gains", "alice", "2023"), list_scope("/v1/gains", "alice", "2024")),
        (JOBS, list_scope("/v1/jobs", "bob")),  # another user's
        (
            list_scope("/v1/jobs/errors", "alice", "job-1"),
            list_scope("/v1/jobs/errors", "alice", "job-2"),
        ),
        (list_scope("/v1/balances", "alice", "kraken"), list_scope("/v1/balances", "alice")),
    ],
)
def test_a_page_token_is_valid_only_for_its_list_and_user(issued_for, used_for):
    token = encode_paging_state(b"\x00\x01state", issued_for)
    assert decode_paging_state(token, issued_for) == b"\x00\x01state"
    with pytest.raises(ApiError) as info:
        decode_paging_state(token, used_for)
    assert info.value.status == 400 and info.value.code == "invalid_page_token"


def test_a_transactions_token_is_valid_only_for_its_user():
    token = encode_tx_cursor(TxCursor(202403, b"\x01", 2), TXS)
    with pytest.raises(ApiError):
        decode_tx_cursor(token, list_scope("/v1/transactions", "bob"))


# --- time bounds and years ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,end,expected",
    [
        ("9999-12-31", True, queries.LATEST),
        ("9999-12-31", False, datetime(9999, 12, 31, tzinfo=timezone.utc)),
        ("0001-01-01", False, queries.EARLIEST),
        ("0001-01-01T00:00:00+01:00", False, queries.EARLIEST),
        ("9999-12-31T23:59:59-05:00", True, queries.LATEST),
        ("0001-01-01T00:00:00-05:00", True, queries.EARLIEST),
        ("2024-03-01", True, datetime(2024, 3, 1, 23, 59, 59, 999000, tzinfo=timezone.utc)),
        ("2024-03-01T12:00:00+01:00", False, datetime(2024, 3, 1, 11, tzinfo=timezone.utc)),
    ],
)
def test_time_bounds_at_the_calendars_ends_are_the_searchable_ends(value, end, expected):
    assert time_bound(value, "to", end=end) == expected


@pytest.mark.parametrize(
    "year", ["2024\n", "2024/25\n", "\u0662\u0660\u0662\u0664", "24", "2024/2025"]
)
def test_a_year_with_a_trailing_newline_or_other_digits_is_400(year):
    with pytest.raises(ApiError) as info:
        checked_year(year)
    assert info.value.status == 400


def test_years_of_both_shapes_are_accepted():
    assert checked_year("2024") == "2024" and checked_year("2024/25") == "2024/25"


# --- output formats -----------------------------------------------------------------------------
BIG = "12345678901234567890.123456789012345678"  # 38 digits: beyond a default Decimal context


@pytest.mark.parametrize(
    "value,text",
    [
        ("0E-18", "0"),
        ("1.500000000000000000", "1.5"),
        ("-0.000000000000000001", "-0.000000000000000001"),
        ("1E+3", "1000"),
        (BIG, BIG),
        ("-0.0", "0"),
    ],
)
def test_decimals_are_exact_plain_strings(value, text):
    assert plain_decimal(Decimal(value)) == text


def test_token_cache_expires():
    cache = TokenCache(ttl_s=60)
    cache.put("h", "alice", now=100.0)
    assert cache.get("h", now=159.0) == "alice"
    assert cache.get("h", now=160.0) is None and cache.get("other", now=100.0) is None


def test_form8949_csv_from_table_rows_uses_the_report_lines():
    row = {
        "line_id": "t1:BTC:0:0",
        "asset": "BTC",
        "quantity": Decimal("0.250000000000000000"),
        "date_acquired": datetime(2023, 1, 5),
        "date_sold": datetime(2024, 2, 1, 15, 30),
        "proceeds": Decimal("10000.005"),
        "cost_basis": Decimal("4000.004"),
        "gain": Decimal("6000.001"),
        "term": "long",
        "wallet": "kraken",
        "tx_id": "t1",
    }
    short = {
        **row,
        "line_id": "t2:BTC:0:0",
        "tx_id": "t2",
        "date_acquired": None,
        "date_sold": datetime(2024, 3, 1),
        "term": "short",
    }
    pooled_uk = {**row, "line_id": "t3:BTC:0:0", "tx_id": "t3", "term": "n/a"}
    lines = list(csv.reader(io.StringIO("".join(form8949_csv([row, short, pooled_uk], "2024")))))
    assert lines == [
        FORM_8949_COLUMNS,
        # The gain is derived from the rounded figures: 10000.01 - 4000.00 (6000.001 unrounded).
        ["I", "C", "0.25 BTC", "VARIOUS", "03/01/2024", "10000.01", "4000.00", "", "", "6000.01"],
        [
            "II",
            "F",
            "0.25 BTC",
            "01/05/2023",
            "02/01/2024",
            "10000.01",
            "4000.00",
            "",
            "",
            "6000.01",
        ],
    ]


# --- client progress ----------------------------------------------------------------------------
def test_counts_read_as_people_write_them():
    assert human_count(999) == "999" and human_count(1500) == "1.5k"
    assert human_count(2_600_000) == "2.6M"
    assert human_bytes(512) == "512 B" and human_bytes(3 << 20) == "3.0 MB"


def running_job(**stages: tuple[int, int]) -> dict:
    return {
        "job_id": str(uuid.UUID(int=1)),
        "kind": "upload",
        "status": "running",
        "completed_stages": ["store"],
        "stages": {s: {"done": d, "total": t} for s, (d, t) in stages.items()},
        "accepted": 10,
        "rejected": 2,
        "errors_url": "/v1/jobs/x/errors",
        "error": None,
    }


def test_stage_bars_carry_units_and_never_go_back():
    job = running_job(parse=(1 << 20, 2 << 20), store=(0, 0), prices=(3, 4), tax=(10, 10))
    views = stage_views(job)
    assert [(v.stage, v.percent, v.text) for v in views] == [
        ("parse", 50, "1.0 MB / 2.0 MB"),
        ("store", 100, "0 / 0 rows"),  # done: full whatever its counts
        ("prices", 75, "3 / 4 price windows"),
        ("tax", 99, "10 / 10 rows written"),  # not done: below 100
    ]
    # the tax total grows as shards start: the bar keeps the highest share shown
    grown = stage_views(running_job(tax=(10, 40)), {v.stage: v.percent for v in views})
    assert grown[3].percent == 99


def test_plain_output_prints_one_line_per_change():
    shown: dict[str, str] = {}
    job = running_job(parse=(5, 10))
    first = change_lines(job, stage_views(job), shown)
    assert first[0] == f"job {job['job_id']} running" and len(first) == 5
    assert change_lines(job, stage_views(job), shown) == []
    job = running_job(parse=(10, 10))
    assert change_lines(job, stage_views(job), shown) == ["  parse   99%  10 B / 10 B"]


def test_result_reads_like_the_upload_summary():
    job = {
        **running_job(),
        "status": "succeeded",
        "import_summary": {
            "rows_read": 100,
            "rows_used": 90,
            "transactions": 45,
            "new_transactions": 40,
            "already_present": 5,
            "skipped": 6,
            "rejected": 4,
            "skipped_reasons": {"fiat deposit is not a crypto movement (no tax effect)": 6},
            "rejected_reasons": {"bad date '…' in column Date": 3, "missing amount": 1},
            "format": "binance",
            "wallets": ["binance"],
        },
    }
    assert format_result(job, "http://h:1/").splitlines() == [
        "succeeded: 40 new transactions, 5 already stored",
        "  100 rows read as binance, wallet binance",
        "  90 rows used, making 45 transactions (an export lists one trade as two or more rows: "
        "they make one transaction)",
        "  6 rows skipped (no tax effect): 6 fiat deposit is not a crypto movement (no tax effect)",
        "  4 rows rejected: 3 bad date '…' in column Date; 1 missing amount",
        "rejected and skipped rows: http://h:1/v1/jobs/x/errors",
    ]
    noted = format_result({**job, "status": "succeeded", "notes": ["dates read day first"]}, "h")
    assert noted.splitlines()[-1] == "note: dates read day first"


def test_balances_are_valued_at_the_latest_price_to_the_cent():
    from serve.query_api import valued_balances

    at = datetime(2026, 1, 2)
    rows = [
        {
            "wallet": "w",
            "asset": a,
            "quantity": Decimal(q),
            "cost_basis": Decimal(c),
            "updated_at": None,
        }
        for a, q, c in (
            ("BTC", "0.123456789", "1000.004"),
            ("USD", "12.5", "12.5"),
            ("NOPRICE", "3", "9"),
        )
    ]
    items = valued_balances(rows, {"BTC": (at, Decimal("40000.005"))}, "USD")
    btc, usd, none = (i.model_dump(mode="json") for i in items)
    assert (btc["market_value"], btc["unrealized_gain"], btc["price"]) == (
        "4938.27",
        "3938.27",
        "40000.005",
    )
    assert (usd["market_value"], usd["unrealized_gain"], usd["price"]) == ("12.5", "0", "1")
    assert (none["market_value"], none["unrealized_gain"], none["price"]) == (None, None, None)
    assert [i.negative for i in items] == [False, False, False]


def test_a_balance_below_zero_is_marked_negative():
    from serve.query_api import valued_balances

    rows = [
        {
            "wallet": "w",
            "asset": a,
            "quantity": Decimal(q),
            "cost_basis": Decimal(0),
            "updated_at": None,
        }
        for a, q in (("BTC", "-0.5"), ("ETH", "0"), ("SOL", "2"))
    ]
    items = [i.model_dump(mode="json") for i in valued_balances(rows, {}, "USD")]
    assert [(i["asset"], i["negative"]) for i in items] == [
        ("BTC", True),
        ("ETH", False),
        ("SOL", False),
    ]


# --- zones: checked once, by the parser's own zone handling ---------------------------------------
@pytest.mark.parametrize("zone", ["Factory", "right/UTC", "posixrules", "Nowhere/Else"])
def test_a_zone_the_parser_cannot_use_is_400_at_upload(zone):
    from serve.upload_api import checked_tz

    with pytest.raises(ApiError) as info:
        checked_tz(zone)
    assert info.value.status == 400 and info.value.code == "unknown_tz"


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Etc/GMT+5"])
def test_a_zone_accepted_at_upload_parses_timestamps(zone):
    import pyarrow as pa

    from ingest.extract.formats.base import RowChecks, parse_timestamp
    from serve.upload_api import checked_tz

    assert checked_tz(zone) == zone
    checks = RowChecks(1)
    parsed = parse_timestamp(pa.array(["2024-03-05 14:07:09"]), "Date", checks, zone)
    assert parsed.null_count == 0


# --- one file per upload ----------------------------------------------------------------------------
def file_part(boundary: str, name: str, file_name: str, data: bytes) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{file_name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )


@pytest.mark.parametrize("second_field", ["file", "other"])
def test_a_second_file_part_is_400_naming_the_rule(second_field):
    boundary = "b0und"
    body = (
        file_part(boundary, "file", "a.csv", CSV)
        + file_part(boundary, second_field, "b.csv", CSV)
        + f"--{boundary}--\r\n".encode()
    )
    reader = MultipartFileReader(boundary.encode())
    with pytest.raises(UploadRejected) as info:
        for start in range(0, len(body), 7):  # streamed in small chunks
            reader.feed(body[start : start + 7])
        reader.finish()
    assert info.value.status == 400 and info.value.code == "one_file_per_upload"
    assert "one file per upload" in info.value.message


def test_plain_fields_beside_the_file_are_still_skipped():
    body = multipart_body("b0und", CSV, extra_fields={"note": "hello"})
    reader = MultipartFileReader(b"b0und")
    assert b"".join(reader.feed(body)) == CSV
    reader.finish()
