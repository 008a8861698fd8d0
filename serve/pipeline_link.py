"""The API's two calls into the pipeline (imported lazily: Ray's job machinery and the stages load
only when a job is handed over, not when a replica starts)."""
from __future__ import annotations

import logging
import uuid

log = logging.getLogger("ray.serve")  # lands in the replica's log file


def hand_to_pipeline(job_id: uuid.UUID) -> None:
    """Give a recorded job to the job supervisor. A failure is logged, not raised: the job is
    recorded and listed active, and the supervisor resumes active jobs when it (re)starts."""
    try:
        from ingest.pipeline.runner import submit_job
        submit_job(job_id)
    except Exception:
        log.exception("job %s recorded but not submitted; it resumes when the supervisor "
                      "(re)starts", job_id)


def resume_unfinished_jobs() -> list[uuid.UUID]:
    """Resubmit jobs left queued/running (idempotent: the supervisor skips jobs it runs)."""
    from ingest.pipeline.runner import resume_active_jobs
    resumed = resume_active_jobs()
    log.info("resumed %d unfinished job(s)", len(resumed))
    return resumed
