"""Faults during a job: a worker killed, Cassandra restarting, Ray stopped and started again.
Each time the job completes with exactly the rows of the file: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from devtools.generate import GenerateStats, generate
from ingest.config import get_settings
from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.load.queries import utc
from tests.test_pipeline import (
    assert_balances_as_generated,
    assert_landed_as_generated,
    upload,
    wait,
)

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]


def kill_task_worker(task_name: str, timeout: float = 120.0) -> int | None:
    """SIGKILL the first Ray worker process running a task whose name starts with `task_name`
    (Ray titles the process ray::<task name>; the pipeline names tasks stage:job:part)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if cmd.startswith(f"ray::{task_name}"):
                os.kill(proc.info["pid"], signal.SIGKILL)
                return proc.info["pid"]
        time.sleep(0.05)
    return None


def wait_for(predicate, timeout: float = 120.0, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.fixture()
def big_file(tmp_path) -> Path:
    path = tmp_path / "big.csv"
    GENERATED[path] = generate(40_000, "koinly", seed=21, out=path, years=2.0, user_values="some")
    return path


GENERATED: dict[Path, GenerateStats] = {}  # file -> what the generator says it holds


def assert_exactly_landed(session, user, path, job):
    """Exactly the generator's transactions (ids once, holdings per asset), not the parser's."""
    stats = GENERATED[path]
    assert job.accepted == sum(stats.by_type.values())
    assert_landed_as_generated(session, user, stats, job)
    # the tax stage's own output: balances per wallet and asset are the generator's holdings
    assert_balances_as_generated(session, user, stats)


def test_killed_store_worker_and_orchestrator_lose_nothing(
    serve_app, api_client_for, session, big_file
):
    """Uploaded over real HTTP to the running Serve app, then workers are killed under it."""
    user = f"kill-{uuid.uuid4().hex[:8]}"
    client = api_client_for(user)
    with open(big_file, "rb") as body:
        resp = client.post(
            "/v1/uploads?format=koinly&name=big.csv",
            content=body,
            headers={"Content-Type": "text/csv"},
        )
    assert resp.status_code == 202, resp.text
    job_id = uuid.UUID(resp.json()["job_id"])
    assert kill_task_worker(f"store:{job_id}"), "no store task was seen running"
    assert wait_for(lambda: jobs.progress(session, job_id)["store"]["done"] > 0)
    assert kill_task_worker(f"job:{job_id}"), "the job's orchestrator was not seen running"
    job = wait(session, job_id, timeout=400)
    assert_exactly_landed(session, user, big_file, job)


def test_killed_tax_shard_worker_loses_nothing(ray_local, session, big_file):
    """SIGKILL inside the sharded tax stage: the worker running a `tax:<job>:<shard>` task dies,
    Ray retries the shard, and the job still ends with exactly the generator's rows and figures.
    (Found by its process title: ray.util.state picks the latest of the several Ray instances
    this shared machine runs, not necessarily the test's.)"""
    user = f"taxkill-{uuid.uuid4().hex[:8]}"
    job_id = upload(session, user, big_file)
    assert kill_task_worker(f"tax:{job_id}:", timeout=300), "no tax shard task was seen running"
    job = wait(session, job_id, timeout=400)
    assert_exactly_landed(session, user, big_file, job)


def test_killed_worker_of_a_resuming_tax_shard_loses_nothing(ray_local, session, big_file):
    """The file's last months as a second upload: its shards resume from checkpoints, one of
    their workers is killed, and the job still ends with exactly the generator's rows and
    holdings, and with the tables a full recompute writes."""
    from tests.test_pipeline_consistency import (
        form8949_lines,
        recompute,
        split_by_date,
        user_state,
    )

    early, late = split_by_date(big_file, "2023-09-01")
    user = f"taxkill-resume-{uuid.uuid4().hex[:8]}"
    assert wait(session, upload(session, user, early), timeout=400).status == "succeeded"
    job_id = upload(session, user, late)
    assert kill_task_worker(f"tax:{job_id}:", timeout=300), "no tax shard task was seen running"
    job = wait(session, job_id, timeout=400)
    assert job.summary["tax"]["shards_resumed"] >= 1, job.summary["tax"]
    stats = GENERATED[big_file]
    assert_landed_as_generated(session, user, stats, job)
    assert_balances_as_generated(session, user, stats)
    after_kill = {**user_state(session, user), "form8949": form8949_lines(session, user)}
    recompute(session, user)
    assert {**user_state(session, user), "form8949": form8949_lines(session, user)} == after_kill


@pytest.mark.skipif(
    bool(os.environ.get("LEDGERFLOW_CASSANDRA_HOSTS")),
    reason="an external Cassandra cluster is configured: not ours to restart",
)
def test_cassandra_restart_mid_job_loses_nothing(ray_local, session, big_file):
    from devtools.devstack import cassandra_node

    settings = get_settings()
    paths = cassandra_node.node_paths(settings)
    before = cassandra_node.read_pid(paths)
    if before is None:
        pytest.skip(
            f"the node on 127.0.0.1:{settings.cassandra_port} was not started by this "
            f"checkout (no live pid in {paths.pid}): it is shared, so it is not restarted"
        )
    user = f"restart-{uuid.uuid4().hex[:8]}"
    job_id = upload(session, user, big_file)
    assert wait_for(lambda: jobs.progress(session, job_id)["store"]["done"] > 0)
    assert jobs.get_job(session, job_id).status == "running"
    assert cassandra_node.stop().startswith("stopped Cassandra")
    # The outage is real: CQL refuses while the job runs.
    assert not cassandra_node.cql_answers(port=settings.cassandra_port)
    down_at = datetime.now(timezone.utc)
    cassandra_node.start()
    after = cassandra_node.read_pid(paths)
    assert after is not None and after != before, (before, after)
    job = wait(session, job_id, timeout=400)
    assert_exactly_landed(session, user, big_file, job)
    assert utc(job.finished_at) > down_at  # it ended after the outage, not before it


def run_driver(code: str, timeout: float = 300.0, keyspace: str | None = None) -> dict:
    """Run `code` in a fresh Python process with its own local Ray; returns its last JSON line."""
    env = dict(os.environ)
    if keyspace:
        env["LEDGERFLOW_KEYSPACE"] = keyspace
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


START_RAY = """
    import json, os, time, uuid, ray
    from ingest.load import jobs
    from ingest.config import get_settings
    from ingest.load.cassandra import get_session
    env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="ledgerflow",
             runtime_env={"env_vars": env}, log_to_driver=False)
    session = get_session(get_settings())
    job_id = uuid.UUID(os.environ["JOB_ID"])
"""


def recorded_job(session, user: str, path: Path) -> uuid.UUID:
    """An upload job recorded as the upload deployment records one (its file in storage), for
    a driver's own Ray to run."""
    import shutil

    from ingest.extract import storage

    job_id = uuid.uuid1()
    uri = storage.upload_uri(get_settings().uploads_uri, user, str(job_id), path.name)
    with open(path, "rb") as src, storage.open_output(uri) as dst:
        shutil.copyfileobj(src, dst)
    jobs.create_job(session, user_id=user, file_uri=uri, file_name=path.name, job_id=job_id)
    return job_id


def test_job_interrupted_by_stopping_ray_resumes_after_restart(
    unwatched_keyspace, big_file, ray_local
):
    session = get_session(get_settings(), unwatched_keyspace)
    user = f"resume-{uuid.uuid4().hex[:8]}"
    # The job is recorded as the upload deployment would, but run by separate Ray clusters.
    job_id = recorded_job(session, user, big_file)
    os.environ["JOB_ID"] = str(job_id)
    try:
        first = run_driver(
            START_RAY
            + """
    from ingest.pipeline.runner import submit_job
    submit_job(job_id)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = jobs.get_job(session, job_id)
        if "store" in job.completed_stages or job.status in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    ray.shutdown()   # Ray stops while the job runs its later stages
    job = jobs.get_job(session, job_id)
    print(json.dumps({"status": job.status, "stages": sorted(job.completed_stages),
                      "timings": job.stage_timings}))
""",
            keyspace=unwatched_keyspace,
        )
        assert first["status"] == "running", first
        assert "store" in first["stages"] and "tax" not in first["stages"]

        second = run_driver(
            START_RAY
            + """
    from ingest.pipeline.runner import resume_active_jobs
    resumed = resume_active_jobs()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = jobs.get_job(session, job_id)
        if job.status in ("succeeded", "failed"):
            break
        time.sleep(0.3)
    print(json.dumps({"resumed": [str(j) for j in resumed], "status": job.status,
                      "timings": job.stage_timings}))
    ray.shutdown()
""",
            keyspace=unwatched_keyspace,
        )
    finally:
        os.environ.pop("JOB_ID", None)
    assert str(job_id) in second["resumed"], (first, second)
    assert second["status"] == "succeeded"
    # Resumed from the last completed stage: parse and store did not run again.
    assert second["timings"]["store"] == first["timings"]["store"]
    assert_exactly_landed(session, user, big_file, jobs.get_job(session, job_id))


KILL_BEFORE_PUBLISH = """
    import psutil, signal
    from ingest.load.cassandra import execute
    from ingest.load.history_chunks import history_months, published, read_history
    from ingest.load.transactions import user_months
    from ingest.pipeline.runner import submit_job
    from ingest.pipeline.test_hooks import HOOKS_NAME, STORE_PUBLISH, StageHolds
    user = os.environ["USER_ID"]
    holds = StageHolds.options(name=HOOKS_NAME, namespace="ledgerflow").remote()
    ray.get(holds.hold.remote(user, STORE_PUBLISH))
    submit_job(job_id)
    deadline = time.monotonic() + 240
    while not ray.get(holds.arrivals.remote(user, STORE_PUBLISH)):
        assert time.monotonic() < deadline, "no store task came to publishing its chunks"
        time.sleep(0.1)
    # A store task has written its chunks and waits to publish them.
    written = sum(
        r["rows"]
        for month in user_months(session, user)
        for r in execute(session, "SELECT rows FROM history_chunks WHERE user_id = ? AND month = ?",
                         (user, month))
    )
    seen = {"chunks": len(published(session, user)),
            "rows": read_history(session, user, history_months(session, user)).num_rows}
    killed = None
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if " ".join(proc.info["cmdline"] or []).startswith(f"ray::store:{job_id}"):
            killed = proc.info["pid"]
            os.kill(killed, signal.SIGKILL)
            break
    # Ray retries the killed task: it rewrites the same chunks and, released, publishes them.
    ray.get(holds.release.remote(user, STORE_PUBLISH))
    deadline = time.monotonic() + 300
    while jobs.get_job(session, job_id).status not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.3)
    print(json.dumps({"written_rows": written, "visible": seen, "killed": killed,
                      "status": jobs.get_job(session, job_id).status}))
    ray.shutdown()
"""


def test_store_task_killed_between_writing_and_publishing_its_chunks_leaves_nothing_half_visible(
    unwatched_keyspace, big_file, ray_local, monkeypatch
):
    """A store task is held after writing its chunks and before publishing them (the test hook
    in the store stage); then its worker is SIGKILLed. While held, the written rows are in
    history_chunks and nothing reads them (no published chunk, an empty history); Ray retries
    the task, which rewrites the same chunks and publishes them; the job ends with exactly the
    generator's rows, each stored once, none counted as already present. Its own Ray (in a
    fresh process) runs with LEDGERFLOW_TEST_HOOKS on; the job is in a keyspace of its own."""
    session = get_session(get_settings(), unwatched_keyspace)
    user = f"publish-{uuid.uuid4().hex[:8]}"
    job_id = recorded_job(session, user, big_file)
    monkeypatch.setenv("JOB_ID", str(job_id))
    monkeypatch.setenv("USER_ID", user)
    monkeypatch.setenv("LEDGERFLOW_TEST_HOOKS", "1")
    facts = run_driver(START_RAY + KILL_BEFORE_PUBLISH, timeout=600, keyspace=unwatched_keyspace)
    assert facts["written_rows"] > 0, facts
    assert facts["visible"] == {"chunks": 0, "rows": 0}, facts
    assert facts["killed"], "no store task was seen running"
    assert facts["status"] == "succeeded", facts
    job = jobs.get_job(session, job_id)
    assert job.summary["ingest"]["already_present"] == 0
    assert_exactly_landed(session, user, big_file, job)
