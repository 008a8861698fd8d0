"""Internal errors never reach users: a failed job's `error` is a short stable message with an
error code (ingest/pipeline/job_errors.py); deterministic errors are not retried."""

from __future__ import annotations

import inspect
import os
import uuid
from collections import Counter

import pytest
import ray
from ray.exceptions import UnserializableException

from ingest.config import get_settings
from ingest.load import jobs
from ingest.load.cassandra import execute
from ingest.pipeline import ingest_stage, prices_stage
from ingest.pipeline.executors import RayExecutor
from ingest.pipeline.job_errors import CATALOGUE, TRANSIENT_ERRORS, describe
from ingest.pipeline.runner import submit_job
from ingest.pipeline.tax import options as tax_options
from ingest.pipeline.tax import stage as tax_stage
from tests.test_job_handoff import EXPORT, wait_status

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]


def double(value: int) -> int:
    return 2 * value


def leaks(text: str) -> list[str]:
    return [
        marker
        for marker in ("Traceback", "\x1b[", ".py", 'File "', "ray::", "pid=", "ip=")
        if marker in text
    ]


@ray.remote(max_retries=0)
def failing(exc: BaseException) -> None:
    raise exc


def test_a_ray_task_error_is_described_without_its_traceback(ray_local):
    with pytest.raises(Exception) as bad_file:
        ray.get(failing.remote(ValueError("line 7: 'abc' is not a number")))
    assert leaks(str(bad_file.value))  # what the job stored before
    failure = describe(bad_file.value)
    assert (failure.code, failure.message) == ("invalid_input", "line 7: 'abc' is not a number")
    with pytest.raises(Exception) as bug:
        ray.get(failing.remote(KeyError("sent_amount")))
    failure = describe(bug.value)
    assert (failure.code, failure.message) == ("internal", CATALOGUE["internal"])
    assert not leaks(failure.message)


@ray.remote
class Attempts:
    def __init__(self) -> None:
        self.n = 0

    def count(self) -> int:
        self.n += 1
        return self.n


@ray.remote(max_retries=4, retry_exceptions=TRANSIENT_ERRORS)
def fails_with(counter, exc: BaseException, times: int) -> int:
    attempt = ray.get(counter.count.remote())
    if attempt <= times:
        raise exc
    return attempt


def test_deterministic_errors_are_not_retried_transient_ones_are(ray_local):
    counter = Attempts.remote()
    with pytest.raises(ValueError):
        ray.get(fails_with.remote(counter, ValueError("bad settings"), 10))
    assert ray.get(counter.count.remote()) == 2  # one attempt, then this call
    counter = Attempts.remote()
    assert ray.get(fails_with.remote(counter, ConnectionResetError("reset"), 1)) == 2
    # ...and every stage task runs through the Ray executor, which applies this policy (the
    # stage modules declare no Ray tasks of their own).
    executor = RayExecutor(cpus=1)
    assert ray.get(executor.submit(double, 21, name="probe")) == 42
    assert (
        executor._remote[(double, False)]._default_options["retry_exceptions"] == TRANSIENT_ERRORS
    )
    for module in (ingest_stage, prices_stage, tax_stage, tax_options):
        assert "ray.remote" not in inspect.getsource(module), module.__name__


def test_a_job_failing_on_bad_settings_shows_a_short_message_and_code(ray_local, session, tmp_path):
    from ingest.extract import storage

    user = f"errors-{uuid.uuid4().hex[:8]}"
    job_id = uuid.uuid1()
    uri = storage.upload_uri(get_settings().uploads_uri, user, str(job_id), "export.csv")
    with storage.open_output(uri) as out:
        out.write(EXPORT)
    jobs.create_job(
        session,
        job_id=job_id,
        user_id=user,
        file_uri=uri,
        file_name="export.csv",
        format="koinly",
        size_bytes=len(EXPORT),
    )
    # Stored before the API refused such settings (the API answers 422 now): the job must fail
    # with the engine's reason, once, in words.
    execute(
        session,
        "INSERT INTO user_settings (user_id, method, pooling, currency) VALUES (?, ?, ?, ?)",
        (user, "uk", "per-wallet", "USD"),
    )
    submit_job(job_id)
    job = wait_status(session, job_id)
    assert job.status == "failed"
    assert job.error_code == "invalid_input"
    assert "universal" in job.error and len(job.error) < 200 and "\n" not in job.error
    assert not leaks(job.error), job.error


def assigned_cpus() -> float:
    return ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)


def test_tasks_waiting_on_cassandra_ask_for_a_part_of_a_cpu(ray_local):
    # More store, read and tax-shard writers than cores (LEDGERFLOW_IO_TASK_CPUS); parse and
    # finalize tasks, pure CPU, keep one core each.
    executor = RayExecutor(cpus=2, io_task_cpus=0.5)
    asked = {
        kind: ray.get(executor.submit(assigned_cpus, name=f"{kind}:job:0"))
        for kind in ("parse", "finalize", "store", "read", "split", "tax")
    }
    assert asked == {
        "parse": 1.0,
        "finalize": 1.0,
        "store": 0.5,
        "read": 0.5,
        "split": 1.0,
        "tax": 0.5,
    }


def assigned_memory() -> float:
    return ray.get_runtime_context().get_assigned_resources().get("memory", 0.0)


def test_a_shard_task_asks_for_its_memory_capped_by_the_smallest_node(ray_local):
    # Shard tasks say their peak (ingest/pipeline/tax/options.py shard_memory), so Ray runs no more of them at once
    # than a node holds (the 3M-row benchmark had its shards killed by Ray's memory monitor).
    executor = RayExecutor(cpus=2)
    assert ray.get(executor.submit(assigned_memory, name="tax:job:0", memory=10**8)) == 10**8
    assert ray.get(executor.submit(assigned_memory, name="tax:job:1")) == 0.0
    huge = ray.get(executor.submit(assigned_memory, name="tax:job:2", memory=10**15))
    assert 0 < huge == executor.smallest_node_memory() < 10**15


def worker_pid() -> int:
    return os.getpid()


def test_a_fresh_worker_task_runs_in_a_worker_of_its_own_that_exits_after_it(ray_local):
    # A big shard task (options.py FRESH_WORKER_PLANNED_ROWS) must not inherit the object store
    # pages a split task touched, nor leave its heap to the next task.
    executor = RayExecutor(cpus=2)
    pooled = set(
        executor.get([executor.submit(worker_pid, name=f"split:job:{i}") for i in range(4)])
    )
    fresh = [
        executor.get([executor.submit(worker_pid, name=f"tax:job:{i}", fresh_worker=True)])[0]
        for i in range(2)
    ]
    assert fresh[0] != fresh[1] and not pooled & set(fresh)
    assert executor.get([executor.submit(worker_pid, name="split:job:9")])[0] not in fresh


def test_a_pooled_worker_runs_at_most_tasks_per_worker_of_a_map_kind(ray_local):
    # A big file's parse tasks must not all pile their object store pages and heap into one
    # worker (a 3M run's largest worker had run 20 of them): each worker exits after its limit.
    executor = RayExecutor(cpus=2, tasks_per_worker=2)
    parse_pids = [
        executor.get([executor.submit(worker_pid, name=f"parse:job:{i}")])[0] for i in range(6)
    ]
    assert max(Counter(parse_pids).values()) <= 2
    assert len(set(parse_pids)) >= 3


def test_a_cassandra_error_ray_could_not_unpickle_is_still_storage_unavailable():
    """What the job supervisor got in the CI run of 2026-12-07 when a job's write met a lost
    quorum: the driver's WriteTimeout as text inside Ray's UnserializableException."""
    text = (
        "ray.exceptions.RayTaskError: ray::job:101d62fc()\n"
        '  File "ingest/load/jobs.py", line 170, in mark_running\n'
        "cassandra.WriteTimeout: Error from server: code=1100 [Coordinator node timed out "
        "waiting for replica nodes' responses] info={'consistency': 'LOCAL_QUORUM'}"
    )
    assert describe(UnserializableException(text)).code == "storage_unavailable"
    assert describe(UnserializableException("ValueError: boom")).code == "internal"
