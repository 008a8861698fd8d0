"""Properties: parsing never crashes on arbitrary bytes and never loses a valid row."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.generate import generate
from ingest.extract.chunking import (
    adaptive_chunk_bytes,
    inspect_file,
    plan_chunks,
    read_range,
    read_sample,
)
from ingest.extract.formats import FORMATS
from ingest.extract.parse import FormatError, ParseResult, parse_bytes, parse_chunk

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADERS = [",".join(f.columns).replace("{ccy}", "EUR").encode() for f in FORMATS.values()]
KOINLY_HEADER = HEADERS[0]


def parse_or_format_error(data: bytes, **kw: object) -> None:
    try:
        result = parse_bytes(data, user_id="u", **kw)  # type: ignore[arg-type]
    except FormatError as e:
        assert str(e)
        return
    # every data row is a transaction (or part of one) or reported, never silently dropped
    assert_every_row_accounted_for(data, result, kw.get("chunk_bytes"))  # type: ignore[arg-type]
    if result.format in ("koinly", "coinbase"):
        assert result.table.num_rows + len(result.rejected) == result.rows
    assert all(r.line >= 1 and r.reason for r in result.rejected)


def assert_every_row_accounted_for(
    data: bytes, result: ParseResult, chunk_bytes: int | None
) -> None:
    """Each data row's line is a transaction's source_line, a rejected (or skipped) row's line,
    or the line of a leg grouped (same partition key) with a leg that became a transaction:
    the multi-row formats (Binance statements, Kraken ledgers) combine several rows into one.
    The legs come from the parser's own chunk step, which parse_bytes runs the same way."""
    f = io.BytesIO(data)
    layout = inspect_file(f, len(data), None)
    target = chunk_bytes or adaptive_chunk_bytes(layout, read_sample(f, layout), parallelism=1)
    chunks = [
        parse_chunk(read_range(f, r), layout, r.first_line, _ctx())
        for r in plan_chunks(f, layout, target)
    ]
    legs = pa.concat_tables([c.legs for c in chunks]) if chunks else None
    leg_lines = legs.column("line").to_pylist() if legs is not None else []
    keys = legs.column("partition_key").to_pylist() if legs is not None else []
    rejected = {r.line for r in result.rejected}
    sources = set(result.table.column("source_line").to_pylist())
    landed_keys = {k for k, line in zip(keys, leg_lines) if line in sources}
    # rows seen = rows that became legs + rows the chunk step rejected (no row is both)
    chunk_rejected = {r.line for c in chunks for r in c.rejected}
    assert len(set(leg_lines) | chunk_rejected) == result.rows == sum(c.rows for c in chunks)
    lost = sorted(
        {
            line
            for line, key in zip(leg_lines, keys)
            if line not in sources and line not in rejected and key not in landed_keys
        }
    )
    assert not lost, f"{result.format}: rows silently dropped at lines {lost[:10]}"
    assert sources <= set(leg_lines)


def _ctx():
    from ingest.extract.formats.base import ParseContext

    return ParseContext(user_id="u", source_file="<bytes>", wallet=None, tz=None)


@SETTINGS
@given(st.binary(max_size=3000))
def test_arbitrary_bytes(data: bytes) -> None:
    parse_or_format_error(data)


CELL = st.one_of(
    st.sampled_from(
        [
            "",
            "BTC",
            "1.5",
            "-2",
            "x",
            "2024-01-01 00:00:00 UTC",
            "trade",
            "Deposit",
            '"q,"',
            '"a\nb"',
            "\u00e9",
            "1e400",
        ]
    ),
    st.text(max_size=8),
)


@SETTINGS
@given(
    st.sampled_from(HEADERS),
    st.lists(
        st.one_of(st.lists(CELL, min_size=1, max_size=14).map(",".join), st.text(max_size=40)),
        max_size=30,
    ),
    st.sampled_from([None, 1, 64]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_known_header_with_garbage_rows(
    header: bytes, lines: list[str], chunk_bytes: int | None, newline: str
) -> None:
    data = header + newline.encode() + newline.join(lines).encode("utf-8", "surrogatepass")
    parse_or_format_error(data, chunk_bytes=chunk_bytes)


# --- valid rows survive any garbage around them ------------------------------------------------
ASSETS = ["BTC", "ETH", "SOL", "ADA", "USDC"]
amounts = st.decimals(
    min_value=Decimal("0.000000000000000001"),
    max_value=Decimal("10") ** 12,
    places=18,
    allow_nan=False,
    allow_infinity=False,
)
notes = st.sampled_from(["", "plain", '"with, comma"', '"say ""hi"""', '"two\nlines"'])


@st.composite
def valid_row(draw: st.DrawFn) -> tuple[str, dict]:
    ts = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=draw(st.integers(0, 10**8)))
    sent, received = draw(st.sampled_from([(True, True), (False, True), (True, False)]))
    s_asset = draw(st.sampled_from(ASSETS))  # a same-asset row is a rename: skipped by design
    r_asset = draw(st.sampled_from([a for a in ASSETS if a != s_asset]))
    s_amount, r_amount = draw(amounts), draw(amounts)
    note = draw(notes)
    cells = [
        ts.strftime("%Y-%m-%d %H:%M:%S UTC"),
        f"{s_amount:f}" if sent else "",
        s_asset if sent else "",
        f"{r_amount:f}" if received else "",
        r_asset if received else "",
        "",
        "",
        "",
        "",
        "",
        note,
        "",
    ]
    expected = {
        "timestamp": ts,
        "sent_amount": s_amount if sent else None,
        "received_amount": r_amount if received else None,
    }
    return ",".join(cells), expected


# Garbage without quotes: an unbalanced quote makes CSV itself continue the field over the
# following lines (no parser can tell), which is the one way a bad row can take others along.
garbage = st.text(
    st.characters(blacklist_characters='"\r\n', blacklist_categories=("Cs",)), max_size=60
)


@settings(SETTINGS, max_examples=30)
@given(
    st.lists(
        st.one_of(valid_row().map(lambda r: ("valid", r)), garbage.map(lambda g: ("junk", g))),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from([1, 50, 10**9]),
)
def test_valid_rows_survive_garbage(items: list[tuple[str, object]], chunk_bytes: int) -> None:
    lines, expected = [KOINLY_HEADER.decode()], {}
    for kind, item in items:
        line_no = sum(line.count("\n") + 1 for line in lines) + 1
        if kind == "valid":
            text, values = item  # type: ignore[misc]
            expected[line_no] = values
            lines.append(text)
        else:
            lines.append(item)  # type: ignore[arg-type]
    data = "\n".join(lines).encode()
    result = parse_bytes(data, user_id="u", chunk_bytes=chunk_bytes)
    by_line = {r["source_line"]: r for r in result.table.to_pylist()}
    for line_no, values in expected.items():
        assert line_no in by_line, (line_no, result.rejected)
        got = by_line[line_no]
        assert {k: got[k] for k in values} == values
    assert not {r.line for r in result.rejected} & set(expected)
    assert result.table.equals(parse_bytes(data, user_id="u").table)  # chunking changes nothing


def test_three_broken_rows_among_a_thousand(tmp_path) -> None:
    path = tmp_path / "k.csv"
    generate(1000, "koinly", 11, path, user_values="all")
    lines = path.read_text().split("\n")
    # rows with a received side and no quoted field, so the edits below are simple
    simple = [
        i
        for i, line in enumerate(lines[1:], start=1)
        if line and '"' not in line and line.split(",")[3]
    ]
    broken = {
        simple[50]: "2024-13-01 10:00:00 UTC" + lines[simple[50]][23:],
        simple[300]: ",".join(
            ["abc" if i == 3 else c for i, c in enumerate(lines[simple[300]].split(","))]
        ),
        simple[600]: "2024-01-01 00:00:00 UTC,1,BTC,2,ETH",
    }
    for i, text in broken.items():
        lines[i] = text
    path.write_text("\n".join(lines))
    result = parse_bytes(path.read_bytes(), user_id="u", chunk_bytes=4096)
    assert result.rows == 1000 and result.table.num_rows == 997
    physical = {i: i + 1 for i in broken}  # list index -> 1-based line (one line per row)
    reasons = {r.line: r.reason for r in result.rejected}
    a, b, c = (physical[i] for i in sorted(broken))
    assert reasons[a] == "bad date '2024-13-01 10:00:00 UTC' in column Date"
    assert reasons[b] == "non-numeric amount 'abc' in column Received Amount"
    assert reasons[c] == "wrong number of columns: expected 13, got 5"
    assert len(reasons) == 3
    assert [r.raw for r in result.rejected][2] == "2024-01-01 00:00:00 UTC,1,BTC,2,ETH"


@settings(SETTINGS, max_examples=8)
@given(
    st.sampled_from(["binance", "kraken", "koinly", "coinbase"]),
    st.integers(0, 10**6),
    st.lists(st.integers(1, 400), max_size=6),
    st.sampled_from([None, 2048]),
)
def test_generated_multi_row_exports_drop_no_row(
    tmp_path_factory, fmt: str, seed: int, cut: list[int], chunk_bytes: int | None
) -> None:
    """Binance statements and Kraken ledgers combine several rows into one transaction: each
    row still lands in one, or is reported (some rows are cut off their partners here)."""
    path = tmp_path_factory.mktemp("gen") / f"{fmt}.csv"
    stats = generate(400, fmt, seed, path, years=0.5)
    lines = path.read_bytes().split(b"\n")
    first = (
        next(i for i, line in enumerate(lines) if line.strip())
        + 1
        + (3 if fmt == "coinbase" else 0)
    )
    keep = [line for i, line in enumerate(lines) if i < first or i - first + 1 not in set(cut)]
    data = b"\n".join(keep)
    try:
        result = parse_bytes(data, user_id="u", chunk_bytes=chunk_bytes)
    except FormatError as e:
        raise AssertionError(f"a generated {fmt} file is not read: {e}") from e
    assert_every_row_accounted_for(data, result, chunk_bytes)
    if not cut:  # untouched: exactly the generator's transactions and skipped rows
        assert result.table.num_rows == sum(stats.by_type.values())
        assert len(result.skipped) == stats.skipped and not result.errors
