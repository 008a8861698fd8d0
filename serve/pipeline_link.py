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


def start_correction_job(user_id: str, correction_id: uuid.UUID) -> uuid.UUID:
    """The job that recomputes what a recorded correction (an undo is one) changes, handed to
    the job supervisor; visible in GET /v1/jobs like an upload's."""
    from ingest.load import jobs
    from ingest.vocabulary import JobKind

    # Until the correction job (ingest/pipeline/recompute.py) lands: a full recompute.
    job_id = jobs.create_job(db(), user_id=user_id, kind=JobKind.RECOMPUTE)
    hand_to_pipeline(job_id)
    return job_id
