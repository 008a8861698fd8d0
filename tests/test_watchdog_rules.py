"""The job watchdog's rules (ingest/pipeline/watchdog.py): when a running job has stalled and
what its record then says. Pure; the supervisor acting on them is proven on a real Ray cluster
(tests/test_ray_cluster.py::test_a_frozen_job_is_noted_restarted_and_then_failed)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from ingest.load.jobs import JobRecord, ProgressPart
from ingest.pipeline.watchdog import (
    OUTAGE_NOTE,
    RESUMED_NOTE,
    find_stall,
    stall_message,
    start_note,
)
from ingest.vocabulary import JobKind, JobStatus

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
JOB_ID = uuid.UUID("00000000-0000-1000-8000-000000000001")


def running_job(**fields) -> JobRecord:
    return JobRecord(
        job_id=JOB_ID,
        user_id="u",
        kind=JobKind.UPLOAD,
        status=JobStatus.RUNNING,
        started_at=T0,
        updated_at=T0,
        **fields,
    )


def part(index: int, done: int, total: int, at: datetime, stage: str = "parse") -> ProgressPart:
    return ProgressPart(stage, index, done, total, at)


PARTS = [part(0, 10, 10, T0 + timedelta(seconds=5)), part(1, 0, 10, T0), part(2, 0, 10, T0)]


def test_a_job_whose_last_heartbeat_is_within_the_limit_is_progressing():
    now = T0 + timedelta(seconds=60)
    assert find_stall(running_job(), PARTS, ["parse", "store"], now, limit_s=60) is None


def test_a_job_without_progress_past_the_limit_names_its_stage_and_unfinished_tasks():
    now = T0 + timedelta(seconds=100)
    stall = find_stall(running_job(), PARTS, ["parse", "store"], now, limit_s=60)
    assert stall is not None and stall.stage == "parse" and stall.idle_s == 95
    assert stall.waiting_for == (f"parse:{JOB_ID}:1", f"parse:{JOB_ID}:2")
    note = stall_message(running_job(), stall, restarts=1, max_restarts=2)
    assert note.startswith("no progress for 95 s in stage parse, waiting for tasks parse:")
    assert note.endswith("restarted from its last completed stage (1 of 2)")
    assert "given up" in stall_message(running_job(), stall, restarts=3, max_restarts=2)


def test_any_part_reported_recently_is_a_heartbeat():
    parts = [*PARTS, part(0, 3, 9, T0 + timedelta(seconds=90), stage="store")]
    now = T0 + timedelta(seconds=100)
    assert find_stall(running_job(), parts, ["store"], now, limit_s=60) is None


def test_a_job_waiting_out_a_cassandra_outage_or_with_the_watchdog_off_is_not_stalled():
    now = T0 + timedelta(hours=2)
    waiting = running_job(
        error="Cassandra consistency failure, waiting for replicas to return: Unavailable"
    )
    assert find_stall(waiting, PARTS, ["parse"], now, limit_s=60) is None
    assert find_stall(running_job(), PARTS, ["parse"], now, limit_s=0) is None


def test_a_stall_with_no_task_reported_names_the_orchestrator():
    now = T0 + timedelta(seconds=100)
    stall = find_stall(running_job(), [], ["tax"], now, limit_s=60)
    assert stall is not None and stall.waiting_for == ()
    assert f"orchestrator job:{JOB_ID}" in stall_message(running_job(), stall, 1, 2)


def test_a_job_started_again_says_its_earlier_run_was_lost_and_an_outage_note_ends():
    assert start_note(running_job()) == RESUMED_NOTE
    queued = replace(running_job(), status=JobStatus.QUEUED)
    noted = replace(queued, error=f"{OUTAGE_NOTE}, waiting for replicas to return: Unavailable")
    assert start_note(noted) is None  # its record was just read at quorum: the outage is over
    assert start_note(queued) is None
