"""The job record: status, per-stage progress, counts, timings, errors, rejected rows.

Every write here is an idempotent upsert, so a retried task or a resumed job rewrites the same
cells instead of double counting: progress is stored per (stage, part) and summed on read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cassandra.cluster import Session

from ingest.load.cassandra import execute, execute_many
from ingest.observe import metrics
from ingest.vocabulary import STAGES, JobKind, JobStatus

ACTIVE_SHARDS = 16


@dataclass
class JobRecord:
    job_id: uuid.UUID
    user_id: str
    kind: JobKind
    status: JobStatus
    file_uri: str | None = None
    file_name: str | None = None
    file_sha256: str | None = None
    size_bytes: int | None = None
    format: str | None = None
    detected_format: str | None = None
    format_mapping: str | None = None  # the user's column mapping (JSON) of a `mapped` upload
    wallet: str | None = None
    tz: str | None = None
    completed_stages: set[str] = field(default_factory=set)
    accepted: int = 0
    rejected: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_code: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stage_timings: dict[str, float] = field(default_factory=dict)


def now() -> datetime:
    return datetime.now(timezone.utc)


def _shard(job_id: uuid.UUID) -> int:
    return job_id.int % ACTIVE_SHARDS


def create_job(
    session: Session,
    *,
    user_id: str,
    kind: JobKind = JobKind.UPLOAD,
    file_uri: str | None = None,
    file_name: str | None = None,
    file_sha256: str | None = None,
    size_bytes: int | None = None,
    format: str | None = None,
    wallet: str | None = None,
    tz: str | None = None,
    job_id: uuid.UUID | None = None,
    format_mapping: str | None = None,
    summary: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Record a queued job and list it as active (so an app restart resumes it). ``summary``:
    the job's input besides the file (a correction job's corrections), there before it runs."""
    job_id = job_id or uuid.uuid1()  # time-based: jobs_by_user clusters newest first
    ts = now()
    execute(
        session,
        "INSERT INTO jobs (job_id, user_id, kind, status, file_uri, file_name, "
        "file_sha256, size_bytes, format, format_mapping, wallet, tz, accepted, rejected, "
        "summary, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
        (
            job_id,
            user_id,
            kind,
            JobStatus.QUEUED,
            file_uri,
            file_name,
            file_sha256,
            size_bytes,
            format,
            format_mapping,
            wallet,
            tz,
            json.dumps(summary) if summary else None,
            ts,
            ts,
        ),
    )
    execute(
        session,
        "INSERT INTO jobs_by_user (user_id, job_id, status) VALUES (?, ?, ?)",
        (user_id, job_id, JobStatus.QUEUED),
    )
    execute(
        session, "INSERT INTO active_jobs (shard, job_id) VALUES (?, ?)", (_shard(job_id), job_id)
    )
    return job_id


def get_job(
    session: Session,
    job_id: uuid.UUID,
    *,
    consistency: str | None = None,
    budget_s: float | None = None,
) -> JobRecord | None:
    """The job record; `consistency` ONE reads it while quorum is lost (an outage note)."""
    row = execute(
        session,
        "SELECT * FROM jobs WHERE job_id = ?",
        (job_id,),
        consistency=consistency,
        budget_s=budget_s,
    ).one()
    return None if row is None else _record(row)


def _record(row: dict[str, Any]) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        user_id=row["user_id"],
        kind=JobKind(row["kind"]),
        status=JobStatus(row["status"]),
        file_uri=row["file_uri"],
        file_name=row["file_name"],
        file_sha256=row["file_sha256"],
        size_bytes=row["size_bytes"],
        format=row["format"],
        detected_format=row["detected_format"],
        format_mapping=row.get("format_mapping"),
        wallet=row["wallet"],
        tz=row["tz"],
        completed_stages=set(row["completed_stages"] or ()),
        accepted=row["accepted"] or 0,
        rejected=row["rejected"] or 0,
        summary=json.loads(row["summary"]) if row["summary"] else {},
        error=row["error"],
        error_code=row.get("error_code"),
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        started_at=_utc(row["started_at"]),
        finished_at=_utc(row["finished_at"]),
        stage_timings=dict(row["stage_timings"] or {}),
    )


def _utc(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=timezone.utc) if ts is not None and ts.tzinfo is None else ts


def mark_running(session: Session, job: JobRecord) -> None:
    ts = now()
    execute(
        session,
        "UPDATE jobs SET status = ?, started_at = ?, updated_at = ? WHERE job_id = ?",
        (JobStatus.RUNNING, job.started_at or ts, ts, job.job_id),
    )
    execute(
        session,
        "UPDATE jobs_by_user SET status = ? WHERE user_id = ? AND job_id = ?",
        (JobStatus.RUNNING, job.user_id, job.job_id),
    )


def mark_stage_done(session: Session, job_id: uuid.UUID, stage: str, seconds: float) -> None:
    execute(
        session,
        "UPDATE jobs SET completed_stages = completed_stages + ?, "
        "stage_timings[?] = ?, updated_at = ? WHERE job_id = ?",
        ({stage}, stage, float(seconds), now(), job_id),
    )
    metrics.stage_done(stage, seconds)


def set_detected_format(session: Session, job_id: uuid.UUID, fmt: str) -> None:
    execute(
        session,
        "UPDATE jobs SET detected_format = ?, updated_at = ? WHERE job_id = ?",
        (fmt, now(), job_id),
    )


def set_counts(session: Session, job_id: uuid.UUID, accepted: int, rejected: int) -> None:
    execute(
        session,
        "UPDATE jobs SET accepted = ?, rejected = ?, updated_at = ? WHERE job_id = ?",
        (accepted, rejected, now(), job_id),
    )


def save_summary(session: Session, job_id: uuid.UUID, summary: dict[str, Any]) -> None:
    execute(
        session,
        "UPDATE jobs SET summary = ?, updated_at = ? WHERE job_id = ?",
        (json.dumps(summary, sort_keys=True, default=str), now(), job_id),
    )


def finish(
    session: Session,
    job: JobRecord,
    status: JobStatus,
    error: str | None = None,
    error_code: str | None = None,
) -> None:
    """End the job: final status (a failure's user-facing message and code: job_errors.py),
    and off the active list."""
    ts = now()
    execute(
        session,
        "UPDATE jobs SET status = ?, error = ?, error_code = ?, finished_at = ?, "
        "updated_at = ? WHERE job_id = ?",
        (status, error, error_code, ts, ts, job.job_id),
    )
    execute(
        session,
        "UPDATE jobs_by_user SET status = ? WHERE user_id = ? AND job_id = ?",
        (status, job.user_id, job.job_id),
    )
    execute(
        session,
        "DELETE FROM active_jobs WHERE shard = ? AND job_id = ?",
        (_shard(job.job_id), job.job_id),
    )
    metrics.job_finished(status)


def set_error(
    session: Session,
    job_id: uuid.UUID,
    error: str | None,
    *,
    consistency: str | None = None,
    budget_s: float | None = None,
) -> None:
    """Note (or clear, with None) an error on a job that keeps running, e.g. while it waits out a
    Cassandra outage; `consistency` ONE lets that note land while quorum is lost."""
    execute(
        session,
        "UPDATE jobs SET error = ?, updated_at = ? WHERE job_id = ?",
        (error, now(), job_id),
        consistency=consistency,
        budget_s=budget_s,
    )


def active_job_ids(session: Session) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for shard in range(ACTIVE_SHARDS):
        ids.extend(
            r["job_id"]
            for r in execute(session, "SELECT job_id FROM active_jobs WHERE shard = ?", (shard,))
        )
    return sorted(ids, key=lambda j: j.time if j.version == 1 else 0)


# --- progress ------------------------------------------------------------------------------------
def set_progress(
    session: Session, job_id: uuid.UUID, stage: str, part: int, done: int, total: int
) -> None:
    execute(
        session,
        "INSERT INTO job_progress (job_id, stage, part, done, total) VALUES (?, ?, ?, ?, ?)",
        (job_id, stage, part, done, total),
    )


def clear_progress(session: Session, job_id: uuid.UUID, stage: str) -> None:
    """Forget a stage's parts before it reruns with a different partitioning."""
    execute(session, "DELETE FROM job_progress WHERE job_id = ? AND stage = ?", (job_id, stage))


def progress(session: Session, job_id: uuid.UUID) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {stage: {"done": 0, "total": 0} for stage in STAGES}
    for row in execute(
        session, "SELECT stage, done, total FROM job_progress WHERE job_id = ?", (job_id,)
    ):
        agg = out.setdefault(row["stage"], {"done": 0, "total": 0})
        agg["done"] += row["done"] or 0
        agg["total"] += row["total"] or 0
    return out


@dataclass(frozen=True)
class ProgressPart:
    """One part (task) of a stage as last reported, and when (the cell's write time): the
    heartbeat the job watchdog reads."""

    stage: str
    part: int
    done: int
    total: int
    reported_at: datetime | None


def progress_parts(session: Session, job_id: uuid.UUID) -> list[ProgressPart]:
    rows = execute(
        session,
        "SELECT stage, part, done, total, writetime(done) AS at FROM job_progress WHERE job_id = ?",
        (job_id,),
    )
    return [
        ProgressPart(
            r["stage"],
            r["part"],
            r["done"] or 0,
            r["total"] or 0,
            datetime.fromtimestamp(r["at"] / 1e6, timezone.utc) if r["at"] else None,
        )
        for r in rows
    ]


# --- rejected rows ---------------------------------------------------------------------------------
# What of a rejected row is stored: its reason and raw text up to these many characters, then
# their length. One CSV line over 16 MiB stored whole made Cassandra refuse the write (its
# native-transport frame limit) and failed the job with 0 accepted: a bad row costs only itself.
RAW_KEEP_CHARS = 4096
REASON_KEEP_CHARS = 1024


def bounded_text(text: str, keep: int) -> str:
    """`text`, or its first `keep` characters and how long it was in all."""
    if len(text) <= keep:
        return text
    return f"{text[:keep]}... [{len(text):,} characters in all; the first {keep:,} kept]"


def write_rejected(
    session: Session, job_id: uuid.UUID, rows: Iterable[tuple[int, str, str]]
) -> int:
    """Store (line, reason, raw) rows, each text bounded; keyed by line, so a retry
    overwrites."""
    return execute_many(
        session,
        "INSERT INTO rejected_rows (job_id, line, reason, raw) VALUES (?, ?, ?, ?)",
        [
            (
                job_id,
                line,
                bounded_text(reason, REASON_KEEP_CHARS),
                bounded_text(raw, RAW_KEEP_CHARS),
            )
            for line, reason, raw in rows
        ],
    )


def list_rejected(
    session: Session, job_id: uuid.UUID, limit: int, paging_state: bytes | None = None
) -> tuple[list[dict[str, Any]], bytes | None]:
    """One page of rejected rows by line; returns (rows, paging state of the next page)."""
    result = execute(
        session,
        "SELECT line, reason, raw FROM rejected_rows WHERE job_id = ?",
        (job_id,),
        paging_state=paging_state,
        fetch_size=limit,
    )
    rows = list(result.current_rows)
    return rows, result.paging_state


# Jobs looked at, newest first, for the user's last tax run (a few at most: a user's jobs run
# one at a time, and every finished upload, correction and recompute runs the tax stage).
LAST_TAX_RUN_LOOKBACK = 20


def last_history_rows(session: Session, user_id: str, before: uuid.UUID) -> int | None:
    """The history rows the user's latest succeeded tax run read (its job record's
    `summary.tax.history_rows`), among the jobs created before ``before``; None: none found."""
    rows = execute(
        session,
        "SELECT job_id, status FROM jobs_by_user WHERE user_id = ? AND job_id < ? LIMIT ?",
        (user_id, before, LAST_TAX_RUN_LOOKBACK),
    )
    for row in rows:
        if row["status"] != JobStatus.SUCCEEDED:
            continue
        job = get_job(session, row["job_id"])
        tax = (job.summary if job else {}).get("tax")
        if isinstance(tax, dict) and isinstance(tax.get("history_rows"), int):
            return tax["history_rows"]
    return None
