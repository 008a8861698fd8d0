"""Byte-range planning and chunked parsing: any chunking gives the single-chunk result."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pytest

from devtools.generate import generate
from ingest.extract import chunking
from ingest.extract.chunking import (
    ByteRange,
    FileLayout,
    adaptive_chunk_bytes,
    inspect_file,
    plan_chunks,
    read_range,
)
from ingest.extract.parse import (
    ParseContext,
    finalize_partition,
    parse_bytes,
    parse_chunk,
    partition_legs,
    read_rows,
)

KOINLY_HEADER = (
    b"Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
    b"Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash"
)


def koinly_file(n: int, newline: bytes = b"\n") -> bytes:
    """n rows, some with quoted commas, quotes and newlines in the Description."""
    notes = [
        b"",
        b'"a, b"',
        b'"say ""hi"""',
        b'"two' + newline + b'lines"',
        b'"x' + newline + newline + b'y"',
    ]
    rows = [KOINLY_HEADER]
    for i in range(n):
        rows.append(
            b"2024-01-%02d 10:%02d:00 UTC,,,%d.5,ETH,,,,,staking,%s,0x%04x"
            % (1 + i % 28, i % 60, i, notes[i % len(notes)], i)
        )
    return newline.join(rows) + newline


def layout_of(data: bytes) -> FileLayout:
    return inspect_file(io.BytesIO(data), len(data))


def plan(data: bytes, target: int) -> list[ByteRange]:
    return plan_chunks(io.BytesIO(data), layout_of(data), target)


def physical_line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


@pytest.mark.parametrize("target", [1, 50, 333, 10**9])
def test_ranges_cover_the_data_and_end_on_row_ends(target: int) -> None:
    data = koinly_file(120)
    layout = layout_of(data)
    ranges = plan(data, target)
    assert ranges[0].start == layout.data_start and ranges[-1].end == len(data)
    for a, b in zip(ranges, ranges[1:]):
        assert a.end == b.start
    for i, r in enumerate(ranges):
        assert r.index == i
        assert r.first_line == physical_line(data, r.start)
        chunk = data[r.start : r.end]
        assert chunk.endswith(b"\n") and chunk.count(b'"') % 2 == 0  # never inside quotes
    if target == 1:
        # one range per row: rows with a quoted newline stay whole
        assert len(ranges) == 120


def test_plan_is_independent_of_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    data = koinly_file(200)
    expected = plan(data, 700)
    monkeypatch.setattr(chunking, "BLOCK_BYTES", 7)
    assert plan(data, 700) == expected
    monkeypatch.setattr(chunking, "BLOCK_BYTES", 1)
    assert plan(data, 700) == expected


def test_read_range_and_last_row_without_newline() -> None:
    data = koinly_file(10).rstrip(b"\n")
    ranges = plan(data, 100)
    assert (
        b"".join(read_range(io.BytesIO(data), r) for r in ranges)
        == data[layout_of(data).data_start :]
    )


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("chunk_bytes", [1, 500])
def test_chunked_parse_equals_single_chunk(newline: bytes, chunk_bytes: int) -> None:
    data = koinly_file(100, newline)
    whole = parse_bytes(data, user_id="u", chunk_bytes=10**9)
    chunked = parse_bytes(data, user_id="u", chunk_bytes=chunk_bytes)
    assert whole.table.num_rows == 100 and not whole.rejected
    assert chunked.table.equals(whole.table)
    lines = whole.table.column("source_line").to_pylist()
    assert lines == [
        physical_line(data, data.index(b"0x%04x" % i)) - (i % 5 == 3) - 2 * (i % 5 == 4)
        for i in range(100)
    ]
    assert whole.table.column("description").to_pylist()[3] == "two" + newline.decode() + "lines"


@pytest.mark.parametrize("fmt", ["binance", "kraken", "coinbase"])
def test_chunked_parse_equals_single_chunk_for_grouped_formats(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"{fmt}.csv"
    generate(150, fmt, 3, path)
    data = path.read_bytes()
    whole = parse_bytes(data, user_id="u", chunk_bytes=10**9)
    for chunk_bytes in (1, 2000):
        chunked = parse_bytes(data, user_id="u", chunk_bytes=chunk_bytes)
        assert chunked.table.equals(whole.table)
        assert chunked.rejected == whole.rejected


def test_fast_and_exact_paths_agree() -> None:
    data = (
        koinly_file(60, b"\r\n")
        + b"too,few\r\n\r\n"
        + b"2024-13-01 00:00:00 UTC,,,1,ETH,,,,,,,\r\n"
    )
    layout = layout_of(data)
    body = data[layout.data_start :]
    fast, exact = read_rows(body, layout, 2), read_rows(body, layout, 2, exact=True)
    assert fast.table.equals(exact.table)
    assert fast.lines.tolist() == exact.lines.tolist()
    assert (
        fast.raw.cast(pa.string()).to_pylist() == exact.raw.cast(pa.string()).to_pylist()
        or [r.rstrip("\r\n") for r in fast.raw.to_pylist()] == exact.raw.to_pylist()
    )
    assert fast.rejected == exact.rejected and fast.rows == exact.rows == 62


def test_irregular_quotes_take_the_exact_path_with_right_lines() -> None:
    # a quote in the middle of an unquoted field is literal text in CSV, not a quoted section
    data = (
        KOINLY_HEADER
        + b"\n"
        + b'2024-01-01 00:00:00 UTC,,,1,ETH,,,,,,he said "hi,0x1\n'
        + b'2024-01-02 00:00:00 UTC,,,2,ETH,,,,,,"multi\nline",0x2\n'
        + b"2024-01-03 00:00:00 UTC,,,3,ETH,,,,,,,0x3\n"
    )
    result = parse_bytes(data, user_id="u")
    assert result.table.column("source_line").to_pylist() == [2, 3, 5]
    assert result.table.column("description").to_pylist()[:2] == ['he said "hi', "multi\nline"]
    assert not result.rejected


def test_windows_1252_file_is_read_and_bare_cr_only_costs_its_row() -> None:
    data = (
        KOINLY_HEADER
        + b"\n"
        + b"2024-01-01 00:00:00 UTC,,,1,ETH,,,,,,caf\xe9 \x80,0x1\n"
        + b"2024-01-02 00:00:00 UTC,,,2,ETH,,,,,,a\rb,0x2\n"
        + b"2024-01-03 00:00:00 UTC,,,3,ETH,,,,,,,0x3\n"
    )
    for chunk_bytes in (None, 1):
        result = parse_bytes(data, user_id="u", chunk_bytes=chunk_bytes)
        assert result.table.column("source_line").to_pylist() == [2, 4]
        assert result.table.column("description").to_pylist()[0] == "caf\u00e9 \u20ac"
        assert [r.line for r in result.rejected] == [3]


def test_adaptive_chunk_bytes() -> None:
    sample = b"x" * 99 + b"\n"
    small = FileLayout("koinly", b"h", 2, 2, 10_000)  # too small to split: one chunk
    assert adaptive_chunk_bytes(small, sample, 8) >= small.size
    big = FileLayout("koinly", b"h", 2, 2, 10**9)
    assert adaptive_chunk_bytes(big, sample, 1) == 100 * chunking.ROWS_PER_CHUNK
    mid = FileLayout("koinly", b"h", 2, 2, 8 * 1024 * 1024)  # 84k rows: one chunk's worth
    assert adaptive_chunk_bytes(mid, sample, 4) == 2 * 1024 * 1024  # but 4 workers: 4 chunks
    huge_rows = b"y" * 9999 + b"\n"
    assert adaptive_chunk_bytes(big, huge_rows, 1) == chunking.MAX_CHUNK_BYTES


def test_partitions_keep_groups_together_and_finalize_the_same(tmp_path: Path) -> None:
    path = tmp_path / "binance.csv"
    generate(600, "binance", 5, path)
    data = path.read_bytes()
    layout = layout_of(data)
    ctx = ParseContext(user_id="u", source_file="binance.csv")
    f = io.BytesIO(data)
    chunks = [
        parse_chunk(read_range(f, r), layout, r.first_line, ctx)
        for r in plan_chunks(f, layout, 4000)
    ]
    legs = pa.concat_tables([c.legs for c in chunks])
    parts = partition_legs(legs, 4)
    assert parts == partition_legs(legs, 4) and sum(p.num_rows for p in parts) == legs.num_rows
    seen: dict[str, int] = {}
    for i, part in enumerate(parts):
        for key in part.column("partition_key").to_pylist():
            assert seen.setdefault(key, i) == i
    combined = pa.concat_tables([finalize_partition(p, layout, ctx)[0] for p in parts])
    single = finalize_partition(legs, layout, ctx)[0]
    assert combined.sort_by("tx_id").equals(single.sort_by("tx_id"))
    assert partition_legs(legs, 1) == [legs]
