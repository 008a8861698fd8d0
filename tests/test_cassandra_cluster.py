"""A job on a real 3-node Cassandra cluster (RF 3, LOCAL_QUORUM), run by `ledgerflow backfill` in
its own process with its own local Ray: one node killed mid-job is invisible to the job and
rejoins; two of three down stop the job with the consistency failure noted on its record, and it
resumes by itself once a node returns. Both end with exactly the file's rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from devtools.devstack import local_cluster
from devtools.generate import generate
from ingest.config import PROJECT_ROOT
from ingest.extract.parse import parse_local_file
from ingest.load import jobs
from tests.test_pipeline import published_tx_ids

pytestmark = [pytest.mark.slow, pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]


def start_backfill(cluster3, sim_url: str, user: str, path: Path, **extra: str):
    env = {
        **os.environ,
        **cluster3.env,
        "LEDGERFLOW_RAY_ADDRESS": "local",
        "LEDGERFLOW_COINGECKO_URL": sim_url,
        "LEDGERFLOW_PRICE_RATE": "100",
        "LEDGERFLOW_PRICE_BURST": "20",
        "LEDGERFLOW_PARSE_PARALLELISM": "2",
        "LEDGERFLOW_CHUNK_BYTES": "65536",
        **extra,
    }
    out = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "backfill", "--user", user, str(path)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return proc, Path(out.name)


def job_id_of(log: Path, proc, timeout: float = 120.0) -> uuid.UUID:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("job ") and " recorded for " in line:
                return uuid.UUID(line.split()[1])
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"backfill printed no job id: {log.read_text()[-3000:]}")


def wait_for(predicate, timeout: float = 300.0, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # Cassandra without quorum: keep polling
            value = None
        if value:
            return value
        time.sleep(step)
    return None


def count_at(session, user: str, consistency: str) -> tuple[int, int]:
    """(rows of the user's published history chunks, distinct tx ids), read at `consistency`."""
    ids = published_tx_ids(session, user, consistency=consistency)
    return len(ids), len(set(ids))


@pytest.fixture()
def export(tmp_path) -> Path:
    path = tmp_path / "koinly.csv"
    generate(4000, "koinly", seed=31, out=path, years=1.0, user_values="some")
    return path


def ring_all_up(cluster3) -> bool:
    ring = local_cluster.nodetool(cluster3.settings, 1, "status")
    return all(f"UN  127.0.0.{i}" in ring for i in range(1, 4))


def test_one_node_killed_mid_job_loses_nothing_and_rejoins(cluster3, pricesim_factory, export):
    settings = cluster3.settings
    local_cluster.start(settings, 3)  # all three up (a previous test may have left one down)
    session = cluster3.session()
    user = f"c3-one-{uuid.uuid4().hex[:8]}"
    expected = parse_local_file(export, user_id=user).table.num_rows
    proc, log = start_backfill(cluster3, pricesim_factory().url, user, export)
    try:
        job_id = job_id_of(log, proc)
        assert wait_for(lambda: jobs.get_job(session, job_id).status == "running", step=0.1)
        os.kill(local_cluster.node_pid(settings, 3), signal.SIGKILL)
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    job = jobs.get_job(session, job_id)
    assert job.status == "succeeded", job.error
    assert job.accepted == expected
    assert count_at(session, user, "LOCAL_QUORUM") == (expected, expected)

    local_cluster.start(settings, 3)  # the killed node restarts and rejoins
    assert wait_for(lambda: ring_all_up(cluster3), timeout=180), local_cluster.status(settings)
    # ALL: every replica answers, the rejoined one included; nothing is missing or doubled.
    assert wait_for(lambda: count_at(session, user, "ALL") == (expected, expected), timeout=120)
    session.cluster.shutdown()


def assert_outage_noted(session, job_id: uuid.UUID, proc, log: Path) -> None:
    """The job's record names the coordinator's Unavailable at LOCAL_QUORUM (the first failures
    may be timeouts, replicas not yet marked down: the note follows the reason), and the job
    waits for the cluster rather than end."""

    def note() -> str | None:
        error = jobs.get_job(session, job_id, consistency="ONE", budget_s=0).error
        return error if error and "Unavailable" in error else None

    noted = wait_for(note, timeout=400, step=1.0)
    assert noted, log.read_text()[-3000:]
    assert "consistency" in noted.lower() and "LOCAL_QUORUM" in noted, noted
    assert proc.poll() is None, "the job must wait for the cluster, not end"


def assert_exact_after_outage(cluster3, session, job_id: uuid.UUID, user: str, expected: int):
    """The job succeeded with no note left, exactly the file's rows; all nodes up again."""
    job = jobs.get_job(session, job_id)
    assert job.status == "succeeded" and job.error is None, job.error
    assert job.accepted == expected
    assert count_at(session, user, "LOCAL_QUORUM") == (expected, expected)
    local_cluster.start(cluster3.settings, 3)


def test_two_nodes_down_names_the_consistency_failure_and_resumes(
    cluster3, pricesim_factory, export
):
    settings = cluster3.settings
    local_cluster.start(settings, 3)
    session = cluster3.session()
    user = f"c3-two-{uuid.uuid4().hex[:8]}"
    expected = parse_local_file(export, user_id=user).table.num_rows
    # A short retry budget, so the outage reaches the job in seconds rather than minutes.
    proc, log = start_backfill(
        cluster3, pricesim_factory().url, user, export, LEDGERFLOW_CASSANDRA_RETRY_BUDGET="5"
    )
    try:
        job_id = job_id_of(log, proc)
        assert wait_for(lambda: jobs.get_job(session, job_id).status == "running", step=0.1)
        for index in (3, 2):
            os.kill(local_cluster.node_pid(settings, index), signal.SIGKILL)

        assert_outage_noted(session, job_id, proc, log)
        # The backfill's output shows it too (it polls the record every second).
        assert wait_for(lambda: "Unavailable" in log.read_text(), timeout=60), log.read_text()

        print(local_cluster.start_node(settings, 2, 3, timeout=240))
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_exact_after_outage(cluster3, session, job_id, user, expected)
    assert wait_for(lambda: count_at(session, user, "ALL") == (expected, expected), timeout=180)
    session.cluster.shutdown()


# Records the job with every node up, waits for the test's "go" (two nodes killed meanwhile),
# then hands it to the job supervisor of its own local Ray and watches it to its end.
HAND_OVER_LATER = """
import sys
from pathlib import Path
from ingest.config import get_settings
from ingest.load.cassandra import get_session
from ingest.pipeline.backfill import backfill_file, watch
from ingest.pipeline.runner import submit_job
import ray
settings = get_settings()
session = get_session(settings)
job_id, _ = backfill_file(session, settings, sys.argv[1], Path(sys.argv[2]), hand_over=False)
print(f"job {job_id} recorded for {sys.argv[2]}", flush=True)
sys.stdin.readline()
ray.get(submit_job(job_id), timeout=120)
print("handed over", flush=True)
sys.exit(0 if watch(session, job_id).status == "succeeded" else 1)
"""


def test_a_job_handed_over_while_quorum_is_lost_is_noted_and_runs_once_it_returns(
    cluster3, pricesim_factory, export
):
    """The job supervisor meets the outage before the job's first write (ci-run1 of 2026-12-07:
    a job whose first writes met a lost quorum sat in `running`, unnoted, nothing watching it):
    the consistency failure is on the record while it lasts, and the supervisor's own sweep runs
    the job once a node is back (nothing else asks it to)."""
    settings = cluster3.settings
    local_cluster.start(settings, 3)
    session = cluster3.session()
    user = f"c3-late-{uuid.uuid4().hex[:8]}"
    expected = parse_local_file(export, user_id=user).table.num_rows
    env = {
        **os.environ,
        **cluster3.env,
        "LEDGERFLOW_RAY_ADDRESS": "local",
        "LEDGERFLOW_COINGECKO_URL": pricesim_factory().url,
        "LEDGERFLOW_CASSANDRA_RETRY_BUDGET": "5",
    }
    out = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    log = Path(out.name)
    proc = subprocess.Popen(
        [sys.executable, "-c", HAND_OVER_LATER, user, str(export)],
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        job_id = job_id_of(log, proc)
        for index in (3, 2):
            os.kill(local_cluster.node_pid(settings, index), signal.SIGKILL)
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()

        assert_outage_noted(session, job_id, proc, log)

        print(local_cluster.start_node(settings, 2, 3, timeout=240))
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_exact_after_outage(cluster3, session, job_id, user, expected)
    session.cluster.shutdown()
