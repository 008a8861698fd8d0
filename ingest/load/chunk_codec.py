"""A chunk of a user's raw history as stored bytes (pure: no Cassandra).

A chunk body is one Arrow IPC stream of canonical rows (CANONICAL_SCHEMA: decimals stay
decimal128, exact; timestamps UTC microseconds), its buffers compressed with zstd. The format
version is stored beside each body (history_chunks.format); a body of any other version is
refused, so a reader never guesses at bytes it does not know.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from ingest.normalize.canonical import CANONICAL_COLUMNS, CANONICAL_SCHEMA

CHUNK_FORMAT = 1  # 1: Arrow IPC stream of CANONICAL_SCHEMA, zstd-compressed buffers
_WRITE_OPTIONS = ipc.IpcWriteOptions(compression="zstd")
# A chunk's rows in the order a history is read in: time, then the stable id.
ROW_ORDER = [("timestamp", "ascending"), ("tx_id", "ascending")]


def canonical_rows(rows: pa.Table) -> pa.Table:
    """`rows` as CANONICAL_SCHEMA exactly (columns in its order, its types); ValueError naming
    what is missing or does not cast."""
    missing = [c for c in CANONICAL_COLUMNS if c not in rows.column_names]
    if missing:
        raise ValueError(f"a chunk needs the canonical columns; missing {missing}")
    selected = rows.select(list(CANONICAL_COLUMNS))
    if selected.schema.equals(CANONICAL_SCHEMA):
        return selected
    try:
        return selected.cast(CANONICAL_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"chunk rows do not cast to the canonical schema: {exc}") from exc


def encode_chunk(rows: pa.Table) -> bytes:
    """Canonical rows -> a chunk body (format CHUNK_FORMAT). The same rows give the same bytes."""
    table = canonical_rows(rows).combine_chunks()
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, CANONICAL_SCHEMA, options=_WRITE_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_chunk(body: bytes, fmt: int) -> pa.Table:
    """A chunk body of format `fmt` -> its canonical rows. ValueError for a format this code
    does not know, for bytes that are not an Arrow stream, and for a stream of other columns."""
    if fmt != CHUNK_FORMAT:
        raise ValueError(f"chunk format {fmt} is not known here (this code reads {CHUNK_FORMAT})")
    try:
        table = ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"chunk body is not an Arrow IPC stream: {exc}") from exc
    if not table.schema.equals(CANONICAL_SCHEMA):
        raise ValueError(f"chunk body has schema {table.schema}, not the canonical schema")
    return table


def merge_chunks(tables: Sequence[pa.Table]) -> pa.Table:
    """One row per tx_id, sorted by (timestamp, tx_id). The same row held by several chunks
    (overlapping uploads, a re-upload) is kept once: the one of the latest table in `tables`
    (readers pass chunks oldest upload first, so a re-export's newer text wins, as an upsert
    did). Rows with distinct ids all stay: two identical rows of one export have distinct ids
    (normalize.identity: the occurrence is part of the id)."""
    if not tables:
        return CANONICAL_SCHEMA.empty_table()
    table = pa.concat_tables([canonical_rows(t) for t in tables]).combine_chunks()
    if table.num_rows == 0:
        return table
    order = pa.array(np.arange(table.num_rows, dtype=np.int64))
    latest = (
        pa.table({"tx_id": table.column("tx_id"), "at": order})
        .group_by("tx_id", use_threads=False)
        .aggregate([("at", "max")])
        .column("at_max")
    )
    if len(latest) < table.num_rows:
        table = table.take(latest)
    return table.take(pc.sort_indices(table, sort_keys=ROW_ORDER))
