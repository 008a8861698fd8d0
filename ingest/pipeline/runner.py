"""Jobs that survive: a detached supervisor actor owns every job's task graph.

`submit_job` (called by the upload deployment) hands a recorded job to the supervisor and returns at
once. The supervisor runs `run_job` as a Ray task per job; `run_job` walks the stages, skipping
those the job record lists as completed, so a retried or resumed job continues where it stopped.
Ray retries the task if its worker dies; the supervisor itself restarts (max_restarts=-1) and, on
(re)start, resumes every job still listed in `active_jobs` — also after the whole cluster went down
and the app started again.
"""
from __future__ import annotations

import asyncio
import logging
import time
import traceback
import uuid

import ray

from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.pipeline.outage import run_through_outages
from ingest.pipeline.ray_runtime import NAMESPACE, cluster_cpus, ensure_ray

log = logging.getLogger(__name__)
SUPERVISOR_NAME = "ledgerflow-job-supervisor"


@ray.remote(num_cpus=0, max_retries=3, retry_exceptions=False)
def run_job(job_id: uuid.UUID) -> str:
    """Run (or resume) one job to its end; returns the final status."""
    return run_through_outages(job_id, lambda: _run_job(job_id))  # issue 14: waits out lost quorum


def _run_job(job_id: uuid.UUID) -> str:
    from ingest.config import get_settings
    from ingest.pipeline.ingest_stage import run_ingest
    from ingest.pipeline.prices_stage import run_prices
    from ingest.pipeline.tax_stage import run_tax

    session = get_session()
    job = jobs.get_job(session, job_id)
    if job is None:
        return "missing"
    if job.status in jobs.JobStatus.FINISHED:
        return job.status
    jobs.mark_running(session, job)
    parallelism = get_settings().parse_parallelism or cluster_cpus()
    try:
        if job.kind == "upload" and "store" not in job.completed_stages:
            started = time.monotonic()
            summary = run_ingest(job, parallelism)
            jobs.set_counts(session, job_id, summary.accepted, summary.rejected)
            jobs.save_summary(session, job_id, {"format": summary.format, "rows": summary.rows,
                                                "skipped": summary.skipped,
                                                "asset_ranges": summary.asset_ranges,
                                                "price_days": summary.price_days})
            jobs.mark_stage_done(session, job_id, "store", time.monotonic() - started)
            job = jobs.get_job(session, job_id)
        if job.kind == "upload" and "prices" not in job.completed_stages:
            started = time.monotonic()
            run_prices(job)
            jobs.mark_stage_done(session, job_id, "prices", time.monotonic() - started)
            job = jobs.get_job(session, job_id)
        if "tax" not in job.completed_stages:
            started = time.monotonic()
            run_tax(job)
            jobs.mark_stage_done(session, job_id, "tax", time.monotonic() - started)
    except ValueError as exc:  # FormatError, a bad tz...: the file or its options are wrong, no retry helps
        jobs.finish(session, job, jobs.JobStatus.FAILED, str(exc))
        return jobs.JobStatus.FAILED
    jobs.finish(session, job, jobs.JobStatus.SUCCEEDED)
    return jobs.JobStatus.SUCCEEDED


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class JobSupervisor:
    """Owns the job tasks (a detached owner keeps them alive when the Serve replica that submitted
    them goes away). All state that matters is in Cassandra; this only tracks what runs now."""

    def __init__(self) -> None:
        self._running: dict[uuid.UUID, asyncio.Task] = {}
        self._resume_on_start = True

    async def submit(self, job_id: uuid.UUID) -> bool:
        """Idempotent: a job already running here is not started twice."""
        await self._resume_once()
        return self._start(job_id)

    async def resume(self) -> list[uuid.UUID]:
        await self._resume_once()
        return list(self._running)

    async def running(self) -> list[str]:
        return [str(j) for j in self._running]

    async def _resume_once(self) -> None:
        if not self._resume_on_start:
            return
        self._resume_on_start = False
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(None, lambda: jobs.active_job_ids(get_session()))
        for job_id in ids:
            self._start(job_id)

    def _start(self, job_id: uuid.UUID) -> bool:
        if job_id in self._running:
            return False
        self._running[job_id] = asyncio.get_running_loop().create_task(self._watch(job_id))
        return True

    async def _watch(self, job_id: uuid.UUID) -> None:
        try:
            await run_job.options(name=f"job:{job_id}").remote(job_id)
        except Exception as exc:  # retries exhausted: the job fails with the reason
            log.error("job %s failed: %s", job_id, exc)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._fail, job_id, exc)
        finally:
            self._running.pop(job_id, None)

    @staticmethod
    def _fail(job_id: uuid.UUID, exc: BaseException) -> None:
        session = get_session()
        job = jobs.get_job(session, job_id)
        if job is not None and job.status not in jobs.JobStatus.FINISHED:
            cause = getattr(exc, "cause", None) or exc
            message = f"{type(cause).__name__}: {cause}".strip()
            jobs.finish(session, job, jobs.JobStatus.FAILED, message[:2000])
            log.debug("%s", traceback.format_exception(exc))


def supervisor():
    ensure_ray()
    return JobSupervisor.options(name=SUPERVISOR_NAME, namespace=NAMESPACE, lifetime="detached",
                                 get_if_exists=True).remote()


def submit_job(job_id: uuid.UUID) -> None:
    """Hand a recorded job to the supervisor; returns at once (the actor call is not awaited)."""
    supervisor().submit.remote(job_id)


def resume_active_jobs() -> list[uuid.UUID]:
    """Resubmit the jobs left unfinished (called once when the app starts)."""
    return ray.get(supervisor().resume.remote())
