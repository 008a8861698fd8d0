"""Tax checkpoints in Cassandra (migrations 009 and 010; the tax stage's CheckpointStore adapter
is cassandra.py): the index the stage plans with, and the bodies a shard resumes from. The
checkpoint itself and its validity rules: ingest/tax/checkpoints.py; its body (plain versioned
data): ingest/tax/checkpoint_codec.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from ingest.load.cassandra import execute, execute_many, prepared, with_retry
from ingest.pipeline.tax.ports import UnreadableCheckpoint
from ingest.tax.checkpoint_codec import decode_checkpoint, encode_checkpoint
from ingest.tax.checkpoints import AssetCheckpoint, CheckpointMeta, Digest
from ingest.tax.years import datetime_from_micros, micros_from_datetime

PART_BYTES = 2 * 1024 * 1024  # per row: far below the 16 MB mutation limit of a default node
READ_CONCURRENCY = 16

SELECT_INDEX = (
    "SELECT asset, period_start, fingerprint, usable, rows_before, rows_reach, hash_reach, "
    "written_us, parts FROM tax_checkpoints WHERE user_id = ?"
)
SELECT_BODY = (
    "SELECT part, body FROM tax_checkpoint_bodies WHERE user_id = ? AND asset = ? AND "
    "period_start = ? AND written_us = ?"
)
INSERT_PART = (
    "INSERT INTO tax_checkpoint_bodies (user_id, asset, period_start, written_us, part, body) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_INDEX = (
    "INSERT INTO tax_checkpoints (user_id, asset, period_start, fingerprint, usable, "
    "rows_before, rows_reach, hash_reach, written_us, parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
DELETE_OLDER_BODIES = (
    "DELETE FROM tax_checkpoint_bodies WHERE user_id = ? AND asset = ? AND period_start = ? "
    "AND written_us < ?"
)


def read_index(session: Session, user_id: str) -> dict[tuple[str, int], CheckpointMeta]:
    out = {}
    for row in execute(session, SELECT_INDEX, (user_id,)):
        start = micros_from_datetime(row["period_start"])
        out[(row["asset"], start)] = CheckpointMeta(
            key=row["asset"],
            start_us=start,
            fingerprint=row["fingerprint"] or "",
            usable=bool(row["usable"]),
            digest=Digest(row["rows_before"] or 0, row["rows_reach"] or 0, row["hash_reach"] or 0),
            written_us=row["written_us"] or 0,
            parts=row["parts"] or 0,
        )
    return out


def read_checkpoints(
    session: Session, user_id: str, metas: Sequence[CheckpointMeta]
) -> dict[str, list[AssetCheckpoint]]:
    """The bodies of ``metas``, per key, oldest start first. Raises UnreadableCheckpoint."""
    stmt = prepared(session, SELECT_BODY)
    params = [(user_id, m.key, datetime_from_micros(m.start_us), m.written_us) for m in metas]

    def run() -> list:
        return list(
            execute_concurrent_with_args(
                session, stmt, params, concurrency=READ_CONCURRENCY, raise_on_first_error=True
            )
        )

    out: dict[str, list[AssetCheckpoint]] = {}
    for meta, (_ok, rows) in zip(metas, with_retry(run)):
        parts = sorted((r["part"], r["body"]) for r in rows)
        if [p for p, _ in parts] != list(range(meta.parts)) or not parts:
            raise UnreadableCheckpoint(f"checkpoint {meta.key}@{meta.start_us}: parts missing")
        try:
            checkpoint = decode_checkpoint(b"".join(body for _, body in parts))
        except Exception as exc:  # whatever the bytes are, the shard recomputes
            raise UnreadableCheckpoint(f"checkpoint {meta.key}@{meta.start_us}: {exc!r}") from exc
        out.setdefault(meta.key, []).append(checkpoint)
    for found in out.values():
        found.sort(key=lambda c: c.start_us)
    return out


def write_checkpoints(
    session: Session,
    user_id: str,
    checkpoints: Iterable[AssetCheckpoint],
    *,
    digests: Mapping[tuple[str, int], Digest],
    fingerprint: str,
    usable: Mapping[int, bool],
    written_us: int,
) -> int:
    """Bodies first, then the index rows pointing at them, then the bodies they replace.
    ``usable``: per period start, whether checkpoints there may be resumed from. Returns the
    checkpoints written."""
    parts: list[tuple] = []
    index: list[tuple] = []
    cleanup: list[tuple] = []
    for checkpoint in checkpoints:
        digest = digests.get((checkpoint.key, checkpoint.start_us))
        if digest is None:  # the history changed under this run: never resume from it
            digest, is_usable = Digest(-1, -1, 0), False
        else:
            is_usable = usable.get(checkpoint.start_us, False)
        start = datetime_from_micros(checkpoint.start_us)
        body = encode_checkpoint(checkpoint)
        pieces = [body[i : i + PART_BYTES] for i in range(0, len(body), PART_BYTES)] or [b""]
        parts += [
            (user_id, checkpoint.key, start, written_us, number, piece)
            for number, piece in enumerate(pieces)
        ]
        index.append(
            (
                user_id,
                checkpoint.key,
                start,
                fingerprint,
                is_usable,
                digest.rows_before,
                digest.rows_reach,
                digest.hash_reach,
                written_us,
                len(pieces),
            )
        )
        cleanup.append((user_id, checkpoint.key, start, written_us))
    execute_many(session, INSERT_PART, parts, concurrency=8)  # MB-sized rows: few in flight
    execute_many(session, INSERT_INDEX, index)
    execute_many(session, DELETE_OLDER_BODIES, cleanup)
    return len(index)
