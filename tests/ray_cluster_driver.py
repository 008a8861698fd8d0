"""Multi-node Ray scenarios, each run in a fresh process by tests/test_ray_cluster.py:

    python -m tests.ray_cluster_driver <scenario> '<json args>'

A process can join only one Ray cluster, and the test session's own local Ray (ray_local) is
already up, so every scenario builds its cluster (ray.cluster_utils.Cluster: several raylets on
this machine, each a real node) in its own process, runs a recorded job through the job
supervisor as the upload API would, and prints one JSON line of facts for the test to assert on.
The Cassandra keyspace and price simulator come from the LEDGERFLOW_* environment.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from ingest.extract import storage
from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.pipeline.ray_runtime import NAMESPACE

OBJECT_STORE = 120 * 1024 * 1024


def record(session, user: str, path: Path) -> uuid.UUID:
    job_id = uuid.uuid1()
    uri = storage.upload_uri(user, str(job_id), path.name)
    with open(path, "rb") as src, storage.open_output(uri) as dst:
        shutil.copyfileobj(src, dst)
    jobs.create_job(session, user_id=user, file_uri=uri, file_name=path.name, job_id=job_id,
                    size_bytes=path.stat().st_size)
    return job_id


def wait_job(session, job_id: uuid.UUID, timeout: float = 600.0, on_poll=None) -> jobs.JobRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(session, job_id)
        if job.status in jobs.JobStatus.FINISHED:
            return job
        if on_poll:
            on_poll(job)
        time.sleep(0.3)
    raise TimeoutError(f"job {job_id} did not finish: {jobs.get_job(session, job_id)}")


def connect(cluster: Cluster) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
    ray.init(address=cluster.address, namespace=NAMESPACE, runtime_env={"env_vars": env},
             log_to_driver=False)


def node_labels() -> dict[str, str]:
    """node id -> the ledgerflow custom resource it offers ('head' for none)."""
    out = {}
    for node in ray.nodes():
        custom = [r for r in node["Resources"] if r.endswith("_node")]
        out[node["NodeID"]] = custom[0] if custom else "head"
    return out


NAMED_STAGES = {"job", "parse", "store", "tax", "view"}


def placements(job_id: uuid.UUID, timeout: float = 120.0) -> dict[str, list]:
    """stage -> labels of the nodes its tasks (and the PriceFetcher actors) ran on, from the state
    API (task events reach it asynchronously: poll until every stage's tasks are listed, then
    once more after a few seconds)."""
    from ray.util.state import list_actors, list_tasks

    labels = node_labels()
    settled = False
    deadline = time.monotonic() + timeout
    while True:
        tasks = [t for t in list_tasks(limit=10_000, detail=True, raise_on_missing_output=False)
                 if str(job_id) in (t.name or "")]
        done = [t for t in tasks if t.state == "FINISHED" and t.node_id]
        if {t.name.split(":")[0] for t in done} >= NAMED_STAGES or time.monotonic() > deadline:
            if settled:
                break
            settled = True
            time.sleep(3.0)
            continue
        time.sleep(1.0)
    out: dict[str, set] = {}
    for t in done:
        stage = t.name.split(":")[0]
        out.setdefault(stage, set()).add(labels.get(t.node_id, t.node_id))
    fetchers = list_actors(filters=[("class_name", "=", "PriceFetcher")], limit=100,
                           raise_on_missing_output=False)
    out["prices"] = {labels.get(a.node_id, a.node_id) for a in fetchers if a.node_id}
    return {k: sorted(v) for k, v in out.items()}


def job_facts(job: jobs.JobRecord) -> dict[str, Any]:
    return {"job_id": str(job.job_id), "status": job.status, "error": job.error,
            "accepted": job.accepted, "rejected": job.rejected,
            "stages": sorted(job.completed_stages)}


def scenario_spread(args: dict[str, Any]) -> dict[str, Any]:
    """Head + 3 workers; each stage pinned by LEDGERFLOW_STAGE_RESOURCES (set by the test) to the
    node offering its resource: prices on the head, parse/store/tax on one worker each."""
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "resources": {"prices_node": 10}, "object_store_memory": OBJECT_STORE,
        "include_dashboard": True, "dashboard_port": args["dashboard_port"]})
    for resource in ("parse_node", "store_node", "tax_node"):
        cluster.add_node(num_cpus=1, resources={resource: 10}, object_store_memory=OBJECT_STORE)
    try:
        connect(cluster)
        from ingest.pipeline.runner import submit_job
        session = get_session()
        job_id = record(session, args["user"], Path(args["file"]))
        submit_job(job_id)
        job = wait_job(session, job_id)
        facts = job_facts(job)
        facts["nodes"] = sorted(node_labels().values())
        facts["placements"] = placements(job_id)
        return facts
    finally:
        ray.shutdown()
        cluster.shutdown()


def scenario_remove_node(args: dict[str, Any]) -> dict[str, Any]:
    """Head (no CPUs: only the supervisor and the job's orchestrator) + 2 workers; the worker
    running a store task is removed without grace mid-job and a fresh one joins."""
    from ray.util.state import list_tasks

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": OBJECT_STORE,
        "include_dashboard": True, "dashboard_port": args["dashboard_port"]})
    workers = {}
    for _ in range(2):
        node = cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        workers[node.node_id] = node
    removed: list[str] = []
    try:
        connect(cluster)
        from ingest.pipeline.runner import submit_job
        session = get_session()
        job_id = record(session, args["user"], Path(args["file"]))
        submit_job(job_id)

        def remove_a_busy_worker(job: jobs.JobRecord) -> None:
            if removed:
                return
            running = [t for t in list_tasks(filters=[("state", "=", "RUNNING")], limit=1000,
                                             raise_on_missing_output=False)
                       if (t.name or "").startswith((f"store:{job_id}", f"parse:{job_id}"))
                       and t.node_id in workers]
            stores = [t for t in running if t.name.startswith("store:")]
            if stores or (running and jobs.progress(session, job_id)["parse"]["done"] > 0):
                victim = (stores or running)[0]
                cluster.remove_node(workers.pop(victim.node_id), allow_graceful=False)
                removed.append(victim.name)
                cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)

        job = wait_job(session, job_id, on_poll=remove_a_busy_worker)
        facts = job_facts(job)
        facts["removed_while_running"] = removed
        facts["alive_nodes"] = sum(1 for n in ray.nodes() if n["Alive"])
        return facts
    finally:
        ray.shutdown()
        cluster.shutdown()


def scenario_ray_job(args: dict[str, Any]) -> dict[str, Any]:
    """`ledgerflow backfill` submitted through the Ray Jobs API (JobSubmissionClient against the
    head's dashboard, as `ray job submit` does); the job lands on the dashboard's Jobs page."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "object_store_memory": OBJECT_STORE,
        "include_dashboard": True, "dashboard_port": args["dashboard_port"]})
    try:
        client = JobSubmissionClient(f"http://127.0.0.1:{args['dashboard_port']}")
        env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
        submission = client.submit_job(
            entrypoint=f"{sys.executable} -m ingest.cli backfill --user {args['user']} "
                       f"{args['file']}",
            runtime_env={"env_vars": env}, submission_id=f"backfill-{uuid.uuid4().hex[:8]}")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = client.get_job_status(submission)
            if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                break
            time.sleep(1.0)
        logs = client.get_job_logs(submission)
        listed = [j.submission_id for j in client.list_jobs()]
        job_ids = [line.split()[1] for line in logs.splitlines()
                   if line.startswith("job ") and " recorded for " in line]
        facts: dict[str, Any] = {"ray_job_status": str(status), "listed": submission in listed,
                                 "logs": logs[-3000:]}
        if job_ids:
            facts.update(job_facts(jobs.get_job(get_session(), uuid.UUID(job_ids[0]))))
        return facts
    finally:
        cluster.shutdown()


SCENARIOS = {"spread": scenario_spread, "remove_node": scenario_remove_node,
             "ray_job": scenario_ray_job}


def main() -> None:
    name, args = sys.argv[1], json.loads(sys.argv[2])
    # Cluster() points /tmp/ray/ray_current_cluster (what a bare ray.init() joins) at itself;
    # put back what was there, so other Ray users on this machine are not redirected.
    address_file = Path("/tmp/ray/ray_current_cluster")
    before = address_file.read_text() if address_file.exists() else None
    try:
        facts = SCENARIOS[name](args)
    finally:
        if before is None:
            address_file.unlink(missing_ok=True)
        else:
            address_file.write_text(before)
    print(json.dumps(facts, default=str))


if __name__ == "__main__":
    main()
