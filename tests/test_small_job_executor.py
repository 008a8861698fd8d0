"""Where a job's steps run (runner.executor_for): a small upload's tasks in the job task's own
process, planned for the cluster's CPUs, retrying transient failures as Ray does; everything else
on Ray. Pure: no service is started."""

from __future__ import annotations

import uuid

import pytest
from cassandra import OperationTimedOut

from ingest.config import Settings
from ingest.load.jobs import JobRecord
from ingest.pipeline import executors
from ingest.pipeline.executors import InProcessExecutor, RayExecutor
from ingest.pipeline.results import IngestResult, StageResults
from ingest.pipeline.runner import STEPS, executor_for, runs_inline
from ingest.vocabulary import JobKind, JobStatus

INGEST, TAX = STEPS
SMALL = 900_000  # a 10k-row koinly file
SETTINGS = Settings(inline_job_bytes=2 * 1024**2)


def upload(size: int | None = SMALL, kind: JobKind = JobKind.UPLOAD) -> JobRecord:
    return JobRecord(uuid.uuid4(), "u", kind, JobStatus.RUNNING, size_bytes=size)


def stored(months: list[int] | None) -> StageResults:
    return StageResults(ingest=IngestResult(format="koinly", stored_months=months))


def test_a_small_first_upload_runs_every_step_in_process():
    assert runs_inline(upload(), INGEST, StageResults(), SETTINGS, node_cpus=2)
    assert runs_inline(upload(), TAX, stored([]), SETTINGS, node_cpus=2)


def test_a_later_small_upload_runs_its_tax_stage_on_ray():
    """The user had a history before: its size is not the file's."""
    assert runs_inline(upload(), INGEST, StageResults(), SETTINGS, node_cpus=2)
    assert not runs_inline(upload(), TAX, stored([24300]), SETTINGS, node_cpus=2)
    assert not runs_inline(upload(), TAX, StageResults(), SETTINGS, node_cpus=2)


@pytest.mark.parametrize(
    "job, settings, node_cpus",
    [
        (upload(3 * 1024**2), SETTINGS, 2),  # a big file
        (upload(None), SETTINGS, 2),  # size unknown
        (upload(kind=JobKind.RECOMPUTE), SETTINGS, 2),
        (upload(kind=JobKind.CORRECTION), SETTINGS, 2),
        (upload(), Settings(inline_job_bytes=0), 2),  # turned off
        (upload(), Settings(stage_resources='{"tax": {"tax_node": 1}}'), 2),  # placed stages
        (upload(), SETTINGS, 0),  # a head node kept free of work
    ],
)
def test_other_jobs_run_on_ray(job, settings, node_cpus):
    for step, done in ((INGEST, StageResults()), (TAX, stored([]))):
        assert not runs_inline(job, step, done, settings, node_cpus)
        assert isinstance(executor_for(job, step, done, settings, 4, node_cpus), RayExecutor)


def test_in_process_it_is_planned_for_the_clusters_cpus_and_retries_transient_errors(
    monkeypatch,
):
    monkeypatch.setattr(executors, "RETRY_PAUSE_S", 0.0)
    executor = executor_for(upload(), INGEST, StageResults(), SETTINGS, 4, node_cpus=2)
    assert isinstance(executor, InProcessExecutor) and executor.cpus == 4
    calls: list[int] = []

    def flaky(n: int) -> tuple[int, int]:
        calls.append(n)
        if len(calls) < 3:
            raise OperationTimedOut("busy node")
        return n, n + 1

    assert executor.submit(flaky, 7, name="store:j:0", num_returns=2) == [7, 8]
    assert len(calls) == 3 and executor.submitted["store"] == 1

    def bad_file() -> None:
        calls.append(0)
        raise ValueError("not a CSV")

    calls.clear()
    with pytest.raises(ValueError):  # deterministic: never retried
        executor.submit(bad_file, name="parse:j:0")
    assert calls == [0]

    def always_timing_out() -> None:
        raise OperationTimedOut("down")

    with pytest.raises(OperationTimedOut):  # Ray's retries, then the error
        executor.submit(always_timing_out, name="read:j:0")
