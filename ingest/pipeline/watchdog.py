"""The job watchdog's rules (pure): when a running job has stalled, and what its record says.

A running job heartbeats through its progress: every task's report (`job_progress`, whose cells'
write times are read back), every stage marked done and every note on the record (`updated_at`).
A job whose newest heartbeat is older than LEDGERFLOW_JOB_STALL_LIMIT has stalled: the job
supervisor (runner.JobSupervisor) notes on its record which stage and which tasks it waits for,
cancels its task graph and starts it again from its last completed stage; after
LEDGERFLOW_JOB_STALL_RESTARTS restarts it ends as failed with that message. A job waiting out a
Cassandra outage (noted by outage.py) is waiting, not stalled. The supervisor also sweeps the
active jobs and starts those it does not run; `start_note` is what such a job's record says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ingest.load.jobs import JobRecord, ProgressPart
from ingest.vocabulary import JobStatus

# How outage.py's note begins: such a job waits for the cluster with the reason on its record.
OUTAGE_NOTE = "Cassandra consistency failure"
# On the record of a running job the supervisor starts again (its earlier run was lost with a
# restarted supervisor, or its end could not be recorded); the job's end replaces it.
RESUMED_NOTE = "resumed by the job supervisor: its earlier run was lost"
STALL_CODE = "stalled"
TASKS_NAMED = 5  # at most this many task names in a note (then "and N more")


@dataclass(frozen=True)
class Stall:
    idle_s: float
    stage: str | None  # the first stage not done (None: all done, the job is finishing)
    waiting_for: tuple[str, ...]  # Ray task names of its unfinished parts


def last_heartbeat(job: JobRecord, parts: Sequence[ProgressPart]) -> datetime | None:
    moments = [p.reported_at for p in parts if p.reported_at is not None]
    moments += [t for t in (job.updated_at, job.started_at) if t is not None]
    return max(moments, default=None)


def find_stall(
    job: JobRecord,
    parts: Sequence[ProgressPart],
    pending_stages: Sequence[str],
    now: datetime,
    limit_s: float,
) -> Stall | None:
    """The stall of a running job, or None while it progresses (or waits out an outage, or the
    watchdog is off: limit 0). `pending_stages`: the job's stages not done yet, in order."""
    if limit_s <= 0 or OUTAGE_NOTE in (job.error or ""):
        return None
    heartbeat = last_heartbeat(job, parts)
    if heartbeat is None:
        return None
    idle = (now - heartbeat).total_seconds()
    if idle <= limit_s:
        return None
    stage = pending_stages[0] if pending_stages else None
    waiting = tuple(
        f"{p.stage}:{job.job_id}:{p.part}"
        for p in sorted(parts, key=lambda p: p.part)
        if p.stage == stage and p.done < p.total
    )
    return Stall(idle, stage, waiting)


def stall_message(job: JobRecord, stall: Stall, restarts: int, max_restarts: int) -> str:
    """One line for the job record: how long nothing moved, where, what it waits for, and what
    the supervisor does about it."""
    where = f"in stage {stall.stage}" if stall.stage else "after its last stage"
    if stall.waiting_for:
        shown = ", ".join(stall.waiting_for[:TASKS_NAMED])
        more = len(stall.waiting_for) - TASKS_NAMED
        waits = f"waiting for tasks {shown}" + (f" and {more} more" if more > 0 else "")
    else:
        waits = f"waiting for its orchestrator job:{job.job_id} (no task of the stage reported)"
    head = f"no progress for {stall.idle_s:.0f} s {where}, {waits}"
    if restarts > max_restarts:
        return f"{head}; stalled {restarts} times, given up"
    return f"{head}; restarted from its last completed stage ({restarts} of {max_restarts})"


def start_note(job: JobRecord) -> str | None:
    """What the record of a job the supervisor starts says: RESUMED_NOTE when it was running (its
    earlier run was lost); no outage note, since its record was just read at quorum (the outage
    noted while it waited is over); else what it says."""
    if job.status == JobStatus.RUNNING:
        return RESUMED_NOTE
    if OUTAGE_NOTE in (job.error or ""):
        return None
    return job.error
