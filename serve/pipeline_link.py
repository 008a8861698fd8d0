"""The API's calls into the pipeline (imported lazily: Ray's job machinery and the stages load
only when a job is handed over, not when a replica starts).

A job recorded is a job that runs: the upload waits for the supervisor's acknowledgement, retrying
with a fresh handle (a supervisor killed or unreachable at submit time is replaced), and each
upload replica also has the supervisor start every active job periodically, which catches a
hand-off that failed every attempt."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from ingest.load.cassandra import time_left
from serve.deps import settings

log = logging.getLogger("ray.serve")  # lands in the replica's log file


def hand_to_pipeline(job_id: uuid.UUID) -> bool:
    """Give a recorded job to the job supervisor; True once it acknowledged. After the last failed
    attempt the job stays recorded and active, for the periodic resume (False)."""
    import ray

    from ingest.pipeline.runner import submit_job

    cfg = settings()
    for attempt in range(1, cfg.job_handoff_attempts + 1):
        left = time_left()  # an HTTP request's deadline: the periodic resume takes over then
        if left is not None and left <= 0:
            break
        timeout = cfg.job_handoff_timeout if left is None else min(cfg.job_handoff_timeout, left)
        try:
            ray.get(submit_job(job_id), timeout=timeout)
            return True
        except Exception:  # the actor died, is unreachable, or its Cassandra read failed
            log.warning("job %s: hand-off attempt %d failed", job_id, attempt, exc_info=True)
            pause = min(0.5 * 2 ** (attempt - 1), 5.0)
            time.sleep(pause if left is None else max(0.0, min(pause, time_left() or 0.0)))
    log.error(
        "job %s recorded but not acknowledged; the periodic resume (every %.0f s) starts it",
        job_id,
        cfg.job_resume_interval,
    )
    return False


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
