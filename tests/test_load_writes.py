"""execute_batches against the real node: every row lands whatever the byte budget."""

from __future__ import annotations

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import RoundRobinPolicy

from ingest.load.cassandra import execute, execute_batches, execute_many

INSERT = "INSERT INTO job_progress (job_id, stage, part, done, total) VALUES (?, ?, ?, ?, ?)"


def test_byte_budget_splits_batches_and_writes_every_row(session):
    import uuid

    jobs = [uuid.uuid4() for _ in range(3)]
    parts = {
        job: [
            (job, "s" * size, part, part, 0)
            for part, size in enumerate([10, 3000, 5, 9000, 1, 40000, 2] * 5)
        ]
        for job in jobs
    }
    # 40 KB rows exceed a 4 KiB budget: they go alone, nothing is dropped
    assert execute_batches(session, INSERT, parts, max_bytes=4096, concurrency=2) == 3 * 35
    for job in jobs:
        rows = list(
            execute(session, "SELECT part, done FROM job_progress WHERE job_id = ?", (job,))
        )
        assert sorted(r["part"] for r in rows) == list(range(35))
    assert execute_batches(session, INSERT, {}, max_rows=3) == 0


class HostsGone(RoundRobinPolicy):
    """The driver's view when its only node died: every request's query plan is empty, so each
    fails at once with NoHostAvailable (what the local node's heap exhaustion did mid-job)."""

    gone = False

    def make_query_plan(self, working_keyspace=None, query=None):
        return iter(()) if self.gone else super().make_query_plan(working_keyspace, query)


@pytest.fixture()
def session_losing_its_node(test_keyspace, settings):
    policy = HostsGone()
    cluster = Cluster(
        settings.contact_points,
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=policy)},
    )
    session = cluster.connect(test_keyspace)
    yield session, policy
    cluster.shutdown()


def test_writes_with_no_host_left_fail_as_no_host_available_and_land_once_it_is_back(
    session_losing_its_node,
):
    import uuid

    session, policy = session_losing_its_node
    job = uuid.uuid4()
    rows = [(job, "s", part, part, 0) for part in range(3000)]
    execute_many(session, INSERT, rows[:1])  # prepared while the node is there
    policy.gone = True
    # Thousands of requests failing at once broke the driver's own executor (RecursionError,
    # then a TypeError sorting its results), which no retry policy knew; now it is NoHostAvailable,
    # which the writes retry, Ray's task retry covers and the job's outage handling waits out.
    with pytest.raises(NoHostAvailable):
        execute_many(session, INSERT, rows, budget_s=0.5)
    with pytest.raises(NoHostAvailable):
        execute_batches(session, INSERT, {job: rows}, max_rows=1, budget_s=0.5)
    policy.gone = False
    assert execute_batches(session, INSERT, {job: rows}, max_rows=1) == len(rows)
    landed = execute(session, "SELECT part FROM job_progress WHERE job_id = ?", (job,))
    assert sorted(part for (part,) in landed) == list(range(3000))
