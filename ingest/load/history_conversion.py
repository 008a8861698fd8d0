"""Migration 015's backfill: a keyspace stored before it (raw history one row per transaction in
raw_transactions, which uploads hold each row in upload_rows) converted to published chunks.

Each (user, month) of raw_transactions is read with today's row read (read_transactions) and
written as chunks of every upload holding its rows: the uploads upload_rows names for a row plus
the job raw_transactions names (the job that stored it holds it too: a row stored before
migration 012 has no upload_rows at all, and one re-uploaded after it names only the later
upload there). A row several uploads hold goes into a chunk of each, as the store stage writes
it; readers merge them (chunk_codec.merge_chunks), and the chunks' uploads are its holders.

Resumable and idempotent: a month's chunks have deterministic keys (partition
CONVERTED_PARTITION) and are published in one batch of the user's manifest partition, after
they are written; a month whose converted chunks are published is skipped, so a conversion
killed part way resumes at the first month it had not published, and a month killed between
writing and publishing is written again over the same keys. raw_transactions and upload_rows are
left as they were (the conversion only reads them).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pyarrow as pa
from cassandra.cluster import Session

from ingest.load.cassandra import execute
from ingest.load.history_chunks import (
    PIECES_PER_PART,
    ChunkKey,
    publish,
    published,
    write_chunks,
)
from ingest.load.transactions import read_transactions, user_months

# The store partition number of converted chunks: history_chunks.chunk_part(CONVERTED_PARTITION,
# piece). Never a store task's (one per parse chunk of a file) nor a compaction's
# (history_compaction.COMPACTED_PARTITION and up).
CONVERTED_PARTITION = 999_999

SELECT_USERS = "SELECT DISTINCT user_id FROM user_months"
SELECT_STORED_BY = "SELECT tx_id, job_id FROM raw_transactions WHERE user_id = ? AND month = ?"
SELECT_USER_JOBS = "SELECT job_id FROM jobs_by_user WHERE user_id = ?"
SELECT_UPLOAD_ROWS = "SELECT tx_id FROM upload_rows WHERE user_id = ? AND job_id = ?"


@dataclass(frozen=True, slots=True)
class ConversionReport:
    users: int
    months: int  # months converted now (months converted before are skipped)
    rows: int  # raw_transactions rows read in them
    chunks: int  # chunks written and published


def rows_by_upload(
    rows: pa.Table,
    holders: Mapping[str, Collection[uuid.UUID]],
    stored_by: Mapping[str, uuid.UUID | None],
) -> dict[uuid.UUID, pa.Table]:
    """Each of `rows` in the table of every upload holding it: the uploads `holders` names for
    its tx_id (upload_rows) and the job that stored it (`stored_by`, raw_transactions.job_id).
    ValueError naming the row when neither names one (its holders could not be told). Pure."""
    indices: dict[uuid.UUID, list[int]] = defaultdict(list)
    for i, tx in enumerate(rows.column("tx_id").to_pylist()):
        uploads = set(holders.get(tx, ()))
        if (job := stored_by.get(tx)) is not None:
            uploads.add(job)
        if not uploads:
            raise ValueError(
                f"raw_transactions row {tx}: no upload holds it (no upload_rows, no job_id)"
            )
        for upload in uploads:
            indices[upload].append(i)
    return {upload: rows.take(pa.array(ix)) for upload, ix in sorted(indices.items())}


def converted_months(keys: Collection[ChunkKey]) -> set[int]:
    """Months whose converted chunks are published (a month's are published all at once)."""
    return {k.month for k in keys if k.part // PIECES_PER_PART == CONVERTED_PARTITION}


def legacy_holders(session: Session, user_id: str) -> dict[str, set[uuid.UUID]]:
    """tx_id -> the user's uploads that upload_rows says hold it (migration 012's table)."""
    holders: dict[str, set[uuid.UUID]] = defaultdict(set)
    for job in execute(session, SELECT_USER_JOBS, (user_id,), fetch_size=1000):
        for row in execute(session, SELECT_UPLOAD_ROWS, (user_id, job["job_id"]), fetch_size=5000):
            holders[row["tx_id"]].add(job["job_id"])
    return holders


def convert_user(session: Session, user_id: str) -> ConversionReport:
    """Convert one user's raw_transactions months not converted yet (module doc)."""
    done = converted_months(published(session, user_id))
    todo = sorted(set(user_months(session, user_id)) - done)
    if not todo:
        return ConversionReport(1, 0, 0, 0)
    holders = legacy_holders(session, user_id)
    months = rows_read = chunks = 0
    for month in todo:
        rows = read_transactions(session, user_id, [month])
        if rows.num_rows == 0:  # a month of view rows only (nothing stored there)
            continue
        stored_by = {
            r["tx_id"]: r["job_id"]
            for r in execute(session, SELECT_STORED_BY, (user_id, month), fetch_size=5000)
        }
        keys: list[ChunkKey] = []
        for upload, held in rows_by_upload(rows, holders, stored_by).items():
            keys += write_chunks(session, user_id, upload, CONVERTED_PARTITION, held)
        publish(session, user_id, keys)
        months += 1
        rows_read += rows.num_rows
        chunks += len(keys)
    return ConversionReport(1, months, rows_read, chunks)


def convert_raw_history(session: Session) -> ConversionReport:
    """Migration 015's backfill (ingest/load/migrations.py BACKFILLS): every user's raw history
    as published chunks. Safe to run again (module doc)."""
    users = sorted(r["user_id"] for r in execute(session, SELECT_USERS, fetch_size=1000))
    months = rows = chunks = 0
    for user_id in users:
        report = convert_user(session, user_id)
        months += report.months
        rows += report.rows
        chunks += report.chunks
    return ConversionReport(len(users), months, rows, chunks)
