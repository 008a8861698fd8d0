"""The API's calls into the pipeline (imported lazily: Ray's job machinery and the stages load
only when a job is handed over, not when a replica starts).

A job recorded is a job that runs: the upload waits for the supervisor's acknowledgement, retrying
with a fresh handle (a supervisor killed or unreachable at submit time is replaced), and each
upload replica also has the supervisor start every active job periodically, which catches a
hand-off that failed every attempt."""

from __future__ import annotations

import logging
import threading
import uuid

from ingest.corrections.kinds import Change, Correction, TxFacts
from serve.deps import db, settings

log = logging.getLogger("ray.serve")  # lands in the replica's log file


def hand_to_pipeline(job_id: uuid.UUID) -> bool:
    """Give a recorded job to the job supervisor (ingest/pipeline/record_upload.py hand_off)."""
    from ingest.pipeline.record_upload import hand_off

    return hand_off(job_id, settings(), log)


def resume_unfinished_jobs() -> list[uuid.UUID]:
    """Resubmit jobs left queued/running (idempotent: the supervisor skips jobs it runs)."""
    from ingest.pipeline.runner import resume_active_jobs

    resumed = resume_active_jobs(timeout_s=settings().job_handoff_timeout)
    log.info("%d unfinished job(s) running", len(resumed))
    return resumed


def keep_resuming(stop: threading.Event) -> None:
    """Resume now, then every job_resume_interval seconds until `stop` (a replica's thread)."""
    interval = settings().job_resume_interval
    while True:
        try:
            resume_unfinished_jobs()
        except Exception:
            log.warning(
                "resuming unfinished jobs failed; trying again in %.0f s", interval, exc_info=True
            )
        if stop.wait(interval):
            return


def corrected_facts(user_id: str) -> dict[str, TxFacts]:
    """What each transaction of the user's corrected history is (the whole history is read)."""
    from ingest.pipeline.recompute import history_facts

    return history_facts(settings(), user_id)


def record_correction(user_id: str, change: Change) -> tuple[Correction, uuid.UUID]:
    """Store a checked correction and start the job that recomputes what it changes."""
    from ingest.pipeline.recompute import record_and_recompute

    return record_and_recompute(db(), settings(), user_id, change, by=user_id)


def record_undo(user_id: str, correction_id: uuid.UUID) -> tuple[Correction, uuid.UUID]:
    """Store an undo of one of the user's corrections and start its job."""
    from ingest.pipeline.recompute import undo_and_recompute

    return undo_and_recompute(db(), settings(), user_id, correction_id, by=user_id)
