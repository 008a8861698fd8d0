"""Jobs that survive: a detached supervisor actor owns every job's task graph.

`submit_job` (called by the upload deployment) hands a recorded job to the supervisor; the caller
waits for its acknowledgement (serve/pipeline_link.py), and active jobs are resumed periodically.
The supervisor runs `run_job` as a Ray task per job; `run_job` walks the stage table, skipping the
steps the job record lists as completed, so a retried or resumed job continues where it stopped.
Ray retries the task if its worker dies; the supervisor itself restarts (max_restarts=-1) and, on
(re)start, resumes every job still listed in `active_jobs` — also after the whole cluster went down
and the app started again.

The stage table (`STEPS`) is the only place that marks stages done, times them and keeps their
typed results (results.py) in the job record; stages only compute and report progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import ray

from ingest.config import Settings, get_settings
from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.pipeline import job_errors, outage
from ingest.pipeline.context import JobContext, job_context
from ingest.pipeline.executors import TASK_RETRIES, Executor, InProcessExecutor, RayExecutor
from ingest.pipeline.ingest_stage import run_ingest
from ingest.pipeline.outage import quorum_lost, run_through_outages
from ingest.pipeline.placement import stage_placement
from ingest.pipeline.ray_runtime import NAMESPACE, cluster_cpus, ensure_ray, this_node_cpus
from ingest.pipeline.results import IngestResult, StageResults
from ingest.pipeline.tax.stage import run_tax
from ingest.pipeline.watchdog import (
    STALL_CODE,
    Stall,
    find_stall,
    stall_message,
    start_note,
)
from ingest.vocabulary import FINISHED, JobKind, JobStatus, Stage

log = logging.getLogger(__name__)
SUPERVISOR_NAME = "ledgerflow-job-supervisor"

# A step returns the StageResults fields it produced (the others left None).
StepFn = Callable[[JobContext, Executor, StageResults], StageResults]


def same_seconds(
    produced: StageResults, stages: tuple[Stage, ...], seconds: float
) -> dict[Stage, float]:
    return {stage: seconds for stage in stages}


def ingest_seconds(
    produced: StageResults, stages: tuple[Stage, ...], seconds: float
) -> dict[Stage, float]:
    """Parse: until the last parse task ended; store: the whole map/reduce (store tasks need
    every chunk's output, so they end last); prices: the fetch's own time (it overlaps store)."""
    assert produced.ingest is not None
    fetch = produced.prices.elapsed_s if produced.prices else 0.0
    return {
        Stage.PARSE: min(seconds, produced.ingest.parse_seconds),
        Stage.STORE: seconds,
        Stage.PRICES: min(seconds, fetch),
    }


@dataclass(frozen=True)
class Step:
    stages: tuple[Stage, ...]  # marked done (in the job record) when the step ends
    kinds: frozenset[JobKind]  # job kinds that run it
    run: StepFn
    # seconds per stage, from the step's results and its wall time
    timings: Callable[[StageResults, tuple[Stage, ...], float], dict[Stage, float]] = same_seconds


UPLOAD_ONLY, EVERY_JOB = frozenset({JobKind.UPLOAD}), frozenset(JobKind)
STEPS: tuple[Step, ...] = (
    # parse and store are one map/reduce (parse tasks feed store tasks directly); the price
    # windows are fetched while store writes
    Step((Stage.PARSE, Stage.STORE, Stage.PRICES), UPLOAD_ONLY, run_ingest, ingest_seconds),
    Step((Stage.TAX,), EVERY_JOB, run_tax),
)


def pending_stages(job: jobs.JobRecord) -> list[str]:
    """The job's stages not done yet, in the order the steps run them."""
    return [
        stage
        for step in STEPS
        if job.kind in step.kinds
        for stage in step.stages
        if stage not in job.completed_stages
    ]


@dataclass(frozen=True)
class StalledJob:
    job: jobs.JobRecord
    stall: Stall


def runs_inline(
    job: jobs.JobRecord, step: Step, done: StageResults, settings: Settings, node_cpus: float
) -> bool:
    """Whether a step's tasks run in the job task's own process (settings.inline_job_bytes): an
    upload of a small file, its parse and store; its tax stage only when its history is that
    file's rows (the user had none before: a later upload's history may be any size). Never when
    stages are placed on node types (LEDGERFLOW_STAGE_RESOURCES), nor on a node offering no CPUs
    (`node_cpus`, the job task's node: a cluster's head kept free of work)."""
    limit = settings.inline_job_bytes
    if not limit or settings.stage_resources.strip() or job.kind != JobKind.UPLOAD:
        return False
    if node_cpus <= 0:
        return False
    if job.size_bytes is None or job.size_bytes > limit:
        return False
    if Stage.PARSE in step.stages:
        return True
    return done.ingest is not None and done.ingest.stored_months == []


def executor_for(
    job: jobs.JobRecord,
    step: Step,
    done: StageResults,
    settings: Settings,
    cpus: int,
    node_cpus: float,
) -> Executor:
    """The step's executor: Ray tasks, or this process for a small job (runs_inline), planned for
    the same `cpus` (the cluster's) either way and retrying transient failures as Ray does."""
    if runs_inline(job, step, done, settings, node_cpus):
        return InProcessExecutor(cpus, retries=TASK_RETRIES)
    return RayExecutor(
        cpus,
        placement=stage_placement(settings),
        io_task_cpus=settings.io_task_cpus,
        tasks_per_worker=settings.map_tasks_per_worker,
    )


def run_steps(ctx: JobContext, cpus: int, node_cpus: float) -> StageResults:
    """Run the job's pending steps in order, recording each one's results as it ends. ``cpus``:
    the cluster's; ``node_cpus``: those of the node running this job task (executor_for)."""
    session, job = ctx.session(), ctx.job
    done = StageResults.model_validate(job.summary)
    for step in STEPS:
        if job.kind not in step.kinds or set(step.stages) <= job.completed_stages:
            continue
        executor = executor_for(job, step, done, ctx.settings, cpus, node_cpus)
        started = time.monotonic()
        produced = step.run(ctx, executor, done)
        done = done.model_copy(update={k: v for k, v in produced if v is not None})
        done.tasks = {**(done.tasks or {}), **executor.submitted}
        jobs.save_summary(session, job.job_id, done.model_dump(mode="json"))
        if produced.ingest is not None:
            jobs.set_counts(session, job.job_id, produced.ingest.accepted, produced.ingest.rejected)
        seconds = time.monotonic() - started
        for stage, stage_seconds in step.timings(produced, step.stages, seconds).items():
            jobs.mark_stage_done(session, job.job_id, stage, stage_seconds)
        job.completed_stages |= set(step.stages)
        if produced.ingest is not None and nothing_imported(produced.ingest):
            raise ValueError(nothing_imported_text(produced.ingest))
    return done


def nothing_imported(ingest: IngestResult) -> bool:
    """Every row of a non-empty file was refused: the job fails (the rows say why) rather
    than succeed with nothing to show."""
    return ingest.accepted == 0 and ingest.rejected > 0


def nothing_imported_text(ingest: IngestResult) -> str:
    skipped = f", {ingest.skipped:,} skipped" if ingest.skipped else ""
    return (
        f"nothing imported: of the file's {ingest.rows:,} rows, {ingest.rejected:,} were "
        f"rejected{skipped} and none stored; the rejected rows list each line and its reason"
    )


@ray.remote(num_cpus=0, max_retries=3, retry_exceptions=False)
def run_job(job_id: uuid.UUID) -> str:
    """Run (or resume) one job to its end; returns the final status. The job's entry point:
    configuration is read here, once, and handed to the stages in the job context. Every
    Cassandra call of the job, its first ("running") and last writes included, waits out a lost
    quorum (noted on the record): with only the steps covered, a quorum lost between the
    record's two "running" writes failed the task, and the job sat in `running` unnoted."""
    settings = get_settings()
    return run_through_outages(settings, job_id, lambda: _run_job_once(settings, job_id))


def _run_job_once(settings: Settings, job_id: uuid.UUID) -> str:
    session = get_session(settings)
    job = jobs.get_job(session, job_id)
    if job is None:
        return "missing"
    if job.status in FINISHED:
        return job.status
    jobs.mark_running(session, job)
    try:
        run_steps(job_context(job, settings), cluster_cpus(), this_node_cpus())
    except (
        ValueError
    ) as exc:  # FormatError, a bad tz...: the file or its options are wrong, no retry helps
        failure = job_errors.record(job_id, exc)
        jobs.finish(session, job, JobStatus.FAILED, failure.message, failure.code)
        return JobStatus.FAILED
    jobs.finish(session, job, JobStatus.SUCCEEDED)
    return JobStatus.SUCCEEDED


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class JobSupervisor:
    """Owns the job tasks (a detached owner keeps them alive when the Serve replica that submitted
    them goes away). All state that matters is in Cassandra; this only tracks what runs now."""

    def __init__(self) -> None:
        self._running: dict[uuid.UUID, asyncio.Task] = {}
        self._resume_on_start = True
        # One job per user at a time, in submission order (asyncio.Lock is FIFO): each tax stage
        # computes from the history as it is and replaces the user's tables, so two at once
        # could let the one that read the older history finish last.
        self._user_turns: dict[str, asyncio.Lock] = {}
        # The supervisor resumes its active jobs by itself, every job_resume_interval: a restarted
        # supervisor (its node lost) or a job whose watch ended without recording an end (its
        # failure could not be written) is otherwise started again only when a caller asks
        # (the upload app's periodic resume; a backfill or a plain driver never does), and the
        # job sits in `running` with nothing watching it.
        interval = get_settings().job_resume_interval
        me = ray.get_runtime_context().current_actor
        threading.Thread(
            target=_sweep_forever, args=(me, interval), name="job-sweep", daemon=True
        ).start()

    async def submit(self, job_id: uuid.UUID) -> bool:
        """Idempotent: a job already running here is not started twice."""
        try:
            await self._resume_once()
        except Exception as exc:  # Cassandra not answering: the job's own watch notes it
            log.warning("resuming the active jobs failed (%r); the next sweep does", exc)
        return self._start(job_id)

    async def resume(self) -> list[uuid.UUID]:
        """Start every active job not running here (the app calls it at start and periodically,
        so a job whose hand-off was lost still runs)."""
        await self._start_active()
        self._resume_on_start = False
        return list(self._running)

    async def running(self) -> list[str]:
        return [str(j) for j in self._running]

    async def _resume_once(self) -> None:
        if self._resume_on_start:
            await self._start_active()
            self._resume_on_start = False  # only once the read succeeded: a failed one is redone

    async def _start_active(self) -> None:
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(
            None, lambda: jobs.active_job_ids(get_session(get_settings()))
        )
        for job_id in ids:
            self._start(job_id)

    def _start(self, job_id: uuid.UUID) -> bool:
        if job_id in self._running:
            return False
        self._running[job_id] = asyncio.get_running_loop().create_task(self._watch(job_id))
        return True

    async def _watch(self, job_id: uuid.UUID) -> None:
        loop = asyncio.get_running_loop()
        try:
            job = await loop.run_in_executor(None, self._read_job, job_id)
            if job is None:
                return
            turn = self._user_turns.setdefault(job.user_id, asyncio.Lock())
            async with turn:
                note = start_note(job)
                if note != job.error:
                    await loop.run_in_executor(None, self._note, job_id, note)
                await self._run_watched(job_id)
        except Exception as exc:  # retries exhausted: the job fails with the reason
            try:
                await loop.run_in_executor(None, self._fail, job_id, exc)
            except Exception as unrecorded:  # Cassandra not answering: the next sweep retries
                log.warning(
                    "job %s ended with %r and its end could not be recorded (%r); it stays "
                    "active and the next sweep starts it again",
                    job_id,
                    exc,
                    unrecorded,
                )
                reason = quorum_lost(unrecorded)
                if reason is not None:  # on its record (at ONE) while it waits for the sweep
                    await loop.run_in_executor(None, outage.note, get_settings(), job_id, reason)
        finally:
            self._running.pop(job_id, None)

    async def _run_watched(self, job_id: uuid.UUID) -> None:
        """Run the job's task graph; while it runs, check its heartbeat every few seconds. A
        stalled graph is noted on the record, cancelled and started again (it resumes from its
        last completed stage), at most job_stall_restarts times; then the job fails."""
        settings = get_settings()
        loop = asyncio.get_running_loop()
        interval = watch_interval(settings)
        restarts = 0
        while True:
            ref = run_job.options(name=f"job:{job_id}").remote(job_id)
            outcome = asyncio.wrap_future(ref.future())
            stall = None
            while stall is None:
                done, _ = await asyncio.wait({outcome}, timeout=interval)
                if done:
                    outcome.result()  # its exception, if any, fails the job
                    return
                stall = await loop.run_in_executor(None, self._stalled, job_id, settings)
            restarts += 1
            ray.cancel(ref, force=True, recursive=True)
            message = stall_message(stall.job, stall.stall, restarts, settings.job_stall_restarts)
            log.warning("job %s: %s", job_id, message)
            await loop.run_in_executor(
                None, self._note_stall, job_id, message, restarts > settings.job_stall_restarts
            )
            if restarts > settings.job_stall_restarts:
                return
            try:  # the cancelled graph's end, before its successor starts
                await asyncio.wait_for(outcome, timeout=60)
            except Exception:  # cancelled (or failed on its own): expected
                pass

    @staticmethod
    def _stalled(job_id: uuid.UUID, settings: Settings) -> StalledJob | None:
        """The job's stall now, or None (progressing, finished, or its record unreadable, as in
        an outage, which the job itself waits out)."""
        try:
            session = get_session(settings)
            job = jobs.get_job(session, job_id, budget_s=0)
            if job is None or job.status != JobStatus.RUNNING:
                return None
            parts = jobs.progress_parts(session, job_id)
        except Exception:  # Cassandra not answering: no verdict
            return None
        stall = find_stall(
            job, parts, pending_stages(job), datetime.now(timezone.utc), settings.job_stall_limit
        )
        return None if stall is None else StalledJob(job, stall)

    @staticmethod
    def _note_stall(job_id: uuid.UUID, message: str, give_up: bool) -> None:
        session = get_session(get_settings())
        job = jobs.get_job(session, job_id)
        if job is None or job.status in FINISHED:
            return
        if give_up:
            jobs.finish(session, job, JobStatus.FAILED, message, STALL_CODE)
        else:
            jobs.set_error(session, job_id, message)

    @staticmethod
    def _read_job(job_id: uuid.UUID) -> jobs.JobRecord | None:
        """The job's record; a lost quorum is waited out and noted on it, as the job does (the
        job's first read, so a job handed over during an outage says so)."""
        settings = get_settings()
        return run_through_outages(
            settings, job_id, lambda: jobs.get_job(get_session(settings), job_id)
        )

    @staticmethod
    def _note(job_id: uuid.UUID, note: str | None) -> None:
        jobs.set_error(get_session(get_settings()), job_id, note)

    @staticmethod
    def _fail(job_id: uuid.UUID, exc: BaseException) -> None:
        session = get_session(get_settings())
        job = jobs.get_job(session, job_id)
        if job is not None and job.status not in FINISHED:
            failure = job_errors.record(job_id, exc)
            jobs.finish(session, job, JobStatus.FAILED, failure.message, failure.code)


def watch_interval(settings: Settings) -> float:
    """Seconds between the supervisor's checks of a running job's heartbeat."""
    return min(30.0, max(0.5, settings.job_stall_limit / 4 if settings.job_stall_limit else 30.0))


def _sweep_forever(me: ray.actor.ActorHandle, interval: float) -> None:
    """The supervisor's own resume, every `interval` (a thread of the actor: the actor's event
    loop is not running yet in __init__)."""
    while True:
        time.sleep(interval)
        try:
            ray.get(me.resume.remote(), timeout=max(60.0, interval))
        except Exception as exc:  # Cassandra not answering: the next sweep tries again
            log.warning("job sweep: %r", exc)


def supervisor():
    ensure_ray(get_settings().ray_address)
    return JobSupervisor.options(
        name=SUPERVISOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote()


def submit_job(job_id: uuid.UUID) -> ray.ObjectRef:
    """Hand a recorded job to the supervisor; the ref resolves when it acknowledged the job
    (serve/pipeline_link.py waits for it, with retries)."""
    return supervisor().submit.remote(job_id)


def resume_active_jobs(timeout_s: float | None = None) -> list[uuid.UUID]:
    """Resubmit the jobs left unfinished (when the app starts, then periodically)."""
    return ray.get(supervisor().resume.remote(), timeout=timeout_s)
