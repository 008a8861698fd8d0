"""A user's raw history as columnar chunks in Cassandra (migration 015): the store stage's writes,
the tax stage's reads, and which uploads hold each row.

history_chunks    ((user_id, month), upload_id, part) -> format, rows, body     the bodies
history_manifest  ((user_id), month, upload_id, part) -> rows                   what is published

Write, then publish: a store task writes its chunks (deterministic keys: a retried task
overwrites the same ones), then lists them in the manifest in one single-partition batch.
Readers go through the manifest only, so a task killed in between leaves nothing visible, and
its retry publishes what it rewrote. A chunk holds one upload's rows; a row several uploads hold
is in a chunk of each and read once (chunk_codec.merge_chunks).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType

from ingest.load.cassandra import execute, execute_many, prepared, with_retry
from ingest.load.chunk_codec import (
    CHUNK_FORMAT,
    ROW_ORDER,
    decode_chunk,
    encode_chunk,
    merge_chunks,
)
from ingest.load.transactions import month_keys

# Rows per chunk at most: a body of ~1-2 MB compressed, well under the node's mutation limit
# (half its commit log segment, 16 MB by default), and few enough rows that a month of a
# 600k-row history is a handful of chunks.
CHUNK_ROWS = 20_000
# Arrow bytes per chunk at most (before compression): a row of long text (descriptions up to
# several MB are accepted) must not make a body the node refuses.
CHUNK_BYTES = 8 * 1024 * 1024
# A chunk's `part`: the store partition's number times this, plus the chunk's piece of that
# partition's month (pieces of CHUNK_ROWS rows).
PIECES_PER_PART = 1_000
# Manifest reads again when a listed chunk's body is gone (a compaction retired it meanwhile).
RELISTS = 3
CHUNKS_IN_FLIGHT = 8  # chunk bodies written or read at once per caller (each up to a few MB)

INSERT_CHUNK = (
    "INSERT INTO history_chunks (user_id, month, upload_id, part, format, rows, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SELECT_CHUNK = (
    "SELECT format, body FROM history_chunks "
    "WHERE user_id = ? AND month = ? AND upload_id = ? AND part = ?"
)
DELETE_MANIFEST = (
    "DELETE FROM history_manifest WHERE user_id = ? AND month = ? AND upload_id = ? AND part = ?"
)
INSERT_MANIFEST = (
    "INSERT INTO history_manifest (user_id, month, upload_id, part, rows) VALUES (?, ?, ?, ?, ?)"
)
SELECT_MANIFEST = "SELECT month, upload_id, part, rows FROM history_manifest WHERE user_id = ?"


@dataclass(frozen=True, slots=True, order=True)
class ChunkKey:
    """One chunk of a user's history (the user is the caller's)."""

    month: int  # yyyymm
    upload_id: uuid.UUID
    part: int
    rows: int = 0


def chunk_part(partition: int, piece: int) -> int:
    """The `part` of piece `piece` of store partition `partition`'s rows in one month."""
    if not 0 <= piece < PIECES_PER_PART:
        raise ValueError(f"piece {piece} of partition {partition}: at most {PIECES_PER_PART}")
    return partition * PIECES_PER_PART + piece


def row_bytes(rows: pa.Table) -> np.ndarray:
    """Each row's bytes in Arrow, roughly: its text (the variable part) plus 8 per other
    column."""
    sizes = np.zeros(rows.num_rows, dtype=np.int64)
    for field in rows.schema:
        if pa.types.is_string(field.type):
            lengths = pc.fill_null(pc.binary_length(rows.column(field.name)), 0)
            sizes += lengths.to_numpy(zero_copy_only=False)
        else:
            sizes += 16 if pa.types.is_decimal(field.type) else 8
    return sizes


def month_pieces(
    rows: pa.Table, max_rows: int = CHUNK_ROWS, max_bytes: int = CHUNK_BYTES
) -> list[tuple[int, int, pa.Table]]:
    """(month, piece, rows) of `rows` cut by month and then into pieces of at most `max_rows`
    rows and `max_bytes` bytes (a larger row goes alone), each sorted by (timestamp, tx_id): the
    same rows always give the same pieces."""
    if rows.num_rows == 0:
        return []
    months = month_keys(rows.column("timestamp"))
    out = []
    for month in np.unique(months).tolist():
        of_month = rows.filter(pa.array(months == month))
        of_month = of_month.take(pc.sort_indices(of_month, sort_keys=ROW_ORDER))
        ends = np.cumsum(row_bytes(of_month))  # bytes of rows [0, i]
        start, piece = 0, 0
        while start < of_month.num_rows:
            before = ends[start - 1] if start else 0
            fits = int(np.searchsorted(ends, before + max_bytes, side="right"))
            stop = min(start + max_rows, max(fits, start + 1))
            out.append((int(month), piece, of_month.slice(start, stop - start)))
            start, piece = stop, piece + 1
    return out


def write_chunks(
    session: Session, user_id: str, upload_id: uuid.UUID, part: int, rows: pa.Table
) -> list[ChunkKey]:
    """Write upload `upload_id`'s store partition `part` (canonical rows of `user_id`) as chunks,
    unpublished: readers see none of them until `publish`. Returns their keys."""
    keys, params = [], []
    for month, piece, piece_rows in month_pieces(rows):
        key = ChunkKey(month, upload_id, chunk_part(part, piece), piece_rows.num_rows)
        keys.append(key)
        params.append(
            (user_id, month, upload_id, key.part, CHUNK_FORMAT, key.rows, encode_chunk(piece_rows))
        )
    execute_many(session, INSERT_CHUNK, params, concurrency=CHUNKS_IN_FLIGHT)
    return keys


def publish(
    session: Session,
    user_id: str,
    keys: Sequence[ChunkKey],
    retire: Sequence[ChunkKey] = (),
) -> None:
    """Make written chunks visible, all at once, and take `retire` (chunks a compaction merged)
    out of view in the same step: one batch of the user's manifest partition (a single-partition
    batch is applied whole and isolated: no reader sees a row twice or not at all). Idempotent."""
    if not keys and not retire:
        return
    insert, delete = prepared(session, INSERT_MANIFEST), prepared(session, DELETE_MANIFEST)

    def run() -> None:
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for k in keys:
            batch.add(insert, (user_id, k.month, k.upload_id, k.part, k.rows))
        for k in retire:
            batch.add(delete, (user_id, k.month, k.upload_id, k.part))
        session.execute(batch)

    with_retry(run)


def published(
    session: Session, user_id: str, months: Iterable[int] | None = None
) -> list[ChunkKey]:
    """The user's published chunks (of `months`; None: all), oldest upload first (upload ids
    are time-based), then by month and part: the order merge_chunks wants."""
    wanted = None if months is None else set(months)
    keys = [
        ChunkKey(r["month"], r["upload_id"], r["part"], r["rows"])
        for r in execute(session, SELECT_MANIFEST, (user_id,), fetch_size=5000)
        if wanted is None or r["month"] in wanted
    ]
    return sorted(keys, key=lambda k: (_upload_time(k.upload_id), k))


def _upload_time(upload_id: uuid.UUID) -> int:
    return upload_id.time if upload_id.version == 1 else 0


def history_months(session: Session, user_id: str) -> list[int]:
    """The months (yyyymm) holding published chunks of the user, ascending."""
    return sorted({k.month for k in published(session, user_id)})


def read_chunks(session: Session, user_id: str, keys: Sequence[ChunkKey]) -> list[pa.Table]:
    """The rows of each chunk of `keys`, in their order. A published chunk always has its body
    (written first); a missing one is an error, not an empty chunk."""
    if not keys:
        return []
    stmt = prepared(session, SELECT_CHUNK)
    params = [(user_id, k.month, k.upload_id, k.part) for k in keys]

    def run() -> list[tuple[int, bytes]]:
        found = []
        for key, (ok, result) in zip(
            keys,
            execute_concurrent_with_args(
                session, stmt, params, concurrency=CHUNKS_IN_FLIGHT, results_generator=True
            ),
        ):
            if not ok:
                raise result
            row = result.one()
            if row is None:
                raise LookupError(f"published chunk {key} of user {user_id} has no body")
            found.append((row["format"], row["body"]))
        return found

    return [decode_chunk(body, fmt) for fmt, body in with_retry(run)]


def read_published(
    session: Session, user_id: str, months: Iterable[int] | None = None
) -> list[tuple[ChunkKey, pa.Table]]:
    """The user's published chunks (of `months`; None: all) and their rows, in `published`'s
    order. A compaction (history_compaction) may retire a listed chunk and delete its body
    between the manifest read and the body's: the manifest is then read again (it lists the
    chunk that replaced it, swapped in by one batch), so each row is read once."""
    wanted = None if months is None else list(months)
    for _ in range(RELISTS):
        keys = published(session, user_id, wanted)
        try:
            return list(zip(keys, read_chunks(session, user_id, keys)))
        except LookupError:
            continue
    keys = published(session, user_id, wanted)  # still a body missing: no race, it raises
    return list(zip(keys, read_chunks(session, user_id, keys)))


def read_history(session: Session, user_id: str, months: Iterable[int]) -> pa.Table:
    """The user's canonical rows in `months` (CANONICAL_SCHEMA), from published chunks only,
    one row per tx_id, sorted by (timestamp, tx_id)."""
    return merge_chunks([table for _key, table in read_published(session, user_id, months)])


def upload_holders(
    session: Session, user_id: str, months: Iterable[int] | None = None
) -> dict[str, frozenset[str]]:
    """tx_id -> ids (text) of the uploads whose published chunks (of `months`; None: all) hold
    it."""
    holders: dict[str, set[str]] = defaultdict(set)
    for key, table in read_published(session, user_id, months):
        upload = str(key.upload_id)
        for tx in table.column("tx_id").to_pylist():
            holders[tx].add(upload)
    return {tx: frozenset(uploads) for tx, uploads in holders.items()}


def count_present(
    session: Session, rows: pa.Table, upload_id: uuid.UUID, stored_months: Iterable[int]
) -> int:
    """Rows of `rows` (one user's) that another upload's published chunks already hold (a file
    uploaded again adds nothing): what the upload's summary shows as already present. This
    upload's own chunks do not count (a retried store task's rows are still new). Only the
    rows' months among `stored_months` (the user's months when the store began) are read: no
    other upload's rows can be in the others."""
    if rows.num_rows == 0:
        return 0
    months = set(np.unique(month_keys(rows.column("timestamp"))).tolist()) & set(stored_months)
    if not months:
        return 0
    user_id = rows.column("user_id")[0].as_py()
    others = [k for k in published(session, user_id, months) if k.upload_id != upload_id]
    held = [c for t in read_chunks(session, user_id, others) for c in t.column("tx_id").chunks]
    if not held:
        return 0
    found = pc.is_in(rows.column("tx_id"), value_set=pa.concat_arrays(held))
    return int(pc.sum(found).as_py() or 0)


def count_history(session: Session, user_id: str) -> int:
    """Transactions in the user's published history (each tx_id once)."""
    return read_history(session, user_id, history_months(session, user_id)).num_rows
