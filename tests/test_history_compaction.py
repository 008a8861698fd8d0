"""Compacting a user's history chunks and converting an old keyspace's rows, the pure parts (no
Cassandra): over any pile of chunks (uploads overlapping, store tasks' parts, a retried task's
rows twice, months spread), each compaction step, swapped in alone, leaves the history read the
same rows once and every row held by the same uploads; a month over the threshold ends with one
chunk per upload; the plan is deterministic and a later compaction takes the next generation;
the conversion puts each raw row in the chunks of every upload holding it, and names a row no
upload holds."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.load.chunk_codec import merge_chunks
from ingest.load.history_chunks import ChunkKey, chunk_part, month_pieces
from ingest.load.history_compaction import (
    COMPACTED_PARTITION,
    Compaction,
    compacted_rows,
    compaction_plan,
    generation,
)
from ingest.load.history_conversion import CONVERTED_PARTITION, converted_months, rows_by_upload
from ingest.normalize.canonical import CANONICAL_SCHEMA

USER = "compaction-user"
START = datetime(2022, 1, 1, tzinfo=timezone.utc)
Chunks = dict[ChunkKey, pa.Table]


def tx_row(tx: int, upload: int) -> dict[str, Any]:
    """Transaction `tx` as upload `upload`'s file has it: the same id and time in every upload
    (the id is made from them), its text the upload's own (a re-export may differ)."""
    return {
        "tx_id": f"tx{tx:04d}",
        "user_id": USER,
        "wallet": "w",
        "timestamp": START + timedelta(days=11 * tx, hours=tx % 7),
        "type": "deposit",
        "received_asset": "BTC",
        "description": f"upload {upload}",
        "source": "koinly",
        "source_file": f"file{upload}.csv",
        "source_line": tx + 2,
    }


def upload_ids(n: int) -> list[uuid.UUID]:
    """Time-based ids in upload order (readers order chunks by them)."""
    return [uuid.UUID(fields=(i + 1, 0, 0x1000, 0x80, 0, 1)) for i in range(n)]


@st.composite
def chunk_piles(draw: Any) -> Chunks:
    """An upload's rows cut into store partitions (a retried task can repeat rows in another
    partition's chunk), each partition written month by month as the store stage does."""
    uploads = upload_ids(draw(st.integers(1, 4)))
    chunks: Chunks = {}
    for n, upload in enumerate(uploads):
        txs = draw(st.lists(st.integers(0, 60), min_size=1, max_size=40, unique=True))
        parts = draw(st.integers(1, 5))
        cut: dict[int, list[int]] = defaultdict(list)
        for tx in txs:
            cut[draw(st.integers(0, parts - 1))].append(tx)
        for tx in draw(st.lists(st.sampled_from(txs), max_size=3)):
            cut[draw(st.integers(0, parts - 1))].append(tx)
        for part, of_part in cut.items():
            rows = pa.Table.from_pylist([tx_row(t, n) for t in of_part], schema=CANONICAL_SCHEMA)
            for month, piece, piece_rows in month_pieces(rows):
                key = ChunkKey(month, upload, chunk_part(part, piece), piece_rows.num_rows)
                chunks[key] = piece_rows
    return chunks


def reader_order(keys: Iterable[ChunkKey]) -> list[ChunkKey]:
    """history_chunks.published's order: oldest upload first, then month and part."""
    return sorted(keys, key=lambda k: (k.upload_id.time, k))


def history(chunks: Chunks) -> list[dict[str, Any]]:
    return merge_chunks([chunks[k] for k in reader_order(chunks)]).to_pylist()


def holders(chunks: Chunks) -> dict[str, frozenset[uuid.UUID]]:
    held: dict[str, set[uuid.UUID]] = defaultdict(set)
    for key, table in chunks.items():
        for tx in table.column("tx_id").to_pylist():
            held[tx].add(key.upload_id)
    return {tx: frozenset(uploads) for tx, uploads in held.items()}


def applied(chunks: Chunks, step: Compaction) -> Chunks:
    """`chunks` after one compaction step's write and swap, as compact_history does them."""
    merged = compacted_rows([chunks[k] for k in step.retired])
    after = {k: t for k, t in chunks.items() if k not in step.retired}
    for month, piece, rows in month_pieces(merged):
        key = ChunkKey(month, step.upload_id, chunk_part(step.partition, piece), rows.num_rows)
        assert key not in chunks, "a compaction never overwrites a published chunk"
        after[key] = rows
    return after


@settings(max_examples=150, deadline=None)
@given(chunk_piles(), st.integers(1, 6))
def test_every_compaction_step_keeps_each_row_once_and_its_holders(chunks, max_chunks):
    before_rows, before_holders = history(chunks), holders(chunks)
    plan = compaction_plan(chunks, max_chunks)
    state = chunks
    for step in plan:  # a reader at any moment sees one of these states
        state = applied(state, step)
        assert history(state) == before_rows
        assert holders(state) == before_holders
    per_month: dict[int, dict[uuid.UUID, int]] = defaultdict(lambda: defaultdict(int))
    for key in state:
        per_month[key.month][key.upload_id] += 1
    for month, uploads in per_month.items():
        was = sum(1 for k in chunks if k.month == month)
        if was > max_chunks:  # compacted: one chunk per upload (all fit one chunk's rows)
            assert set(uploads.values()) == {1}, month
        else:
            assert sum(uploads.values()) == was
    assert compaction_plan(state, max_chunks) == []


@settings(max_examples=50, deadline=None)
@given(chunk_piles())
def test_the_plan_is_the_same_for_the_same_manifest(chunks):
    keys = list(chunks)
    assert compaction_plan(keys, 1) == compaction_plan(reversed(keys), 1)


def test_a_later_compaction_takes_the_next_generation_and_zero_compacts_nothing():
    [upload] = upload_ids(1)
    rows = pa.Table.from_pylist([tx_row(t, 0) for t in range(3)], schema=CANONICAL_SCHEMA)
    month = month_pieces(rows)[0][0]
    first = [ChunkKey(month, upload, chunk_part(p, 0), 1) for p in range(3)]
    [step] = compaction_plan(first, 2)
    assert step.partition == COMPACTED_PARTITION
    compacted = ChunkKey(month, upload, chunk_part(step.partition, 0), 3)
    assert generation(compacted.part) == 1 and generation(first[0].part) == 0
    later = [compacted, ChunkKey(month, upload, chunk_part(0, 0), 1)]
    [again] = compaction_plan(later, 1)
    assert again.partition == COMPACTED_PARTITION + 1
    assert generation(chunk_part(again.partition, 0)) == 2
    assert compaction_plan(first, 0) == []
    assert compaction_plan(first, 3) == []  # at the threshold, not over it


def test_conversion_puts_each_row_in_every_holding_upload_and_the_job_that_stored_it():
    a, b, c = upload_ids(3)
    rows = pa.Table.from_pylist([tx_row(t, 0) for t in range(4)], schema=CANONICAL_SCHEMA)
    held = {"tx0000": {a, b}, "tx0001": {b}}
    # tx0001 was stored by c before upload_rows existed, then uploaded again by b
    stored_by = {"tx0000": a, "tx0001": c, "tx0002": c, "tx0003": a}
    out = {
        u: t.column("tx_id").to_pylist() for u, t in rows_by_upload(rows, held, stored_by).items()
    }
    assert out == {a: ["tx0000", "tx0003"], b: ["tx0000", "tx0001"], c: ["tx0001", "tx0002"]}


def test_conversion_names_a_row_no_upload_holds():
    rows = pa.Table.from_pylist([tx_row(7, 0)], schema=CANONICAL_SCHEMA)
    with pytest.raises(ValueError, match="tx0007: no upload holds it"):
        rows_by_upload(rows, {}, {"tx0007": None})


def test_converted_months_are_those_with_converted_chunks_published():
    [upload] = upload_ids(1)
    keys = [
        ChunkKey(202201, upload, chunk_part(CONVERTED_PARTITION, 0), 5),
        ChunkKey(202202, upload, chunk_part(3, 0), 5),
        ChunkKey(202203, upload, chunk_part(COMPACTED_PARTITION, 0), 5),
    ]
    assert converted_months(keys) == {202201}
