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
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from ingest.config import get_settings
from ingest.extract import storage
from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.pipeline.ray_runtime import NAMESPACE
from ingest.vocabulary import FINISHED

OBJECT_STORE = 120 * 1024 * 1024
# The scenario cluster's own Ray temp dir (short: it holds Unix sockets). Ray's "latest cluster"
# lookups inside the cluster (the Jobs API's driver address, a bare ray.init in a job) read
# <temp dir>/ray_current_cluster: with the machine-wide /tmp/ray they joined whichever Ray
# instance started last on this machine, another test's or helper's.
TEMP_DIR = f"/tmp/lfr-{uuid.uuid4().hex[:8]}"


def record(session, user: str, path: Path) -> uuid.UUID:
    job_id = uuid.uuid1()
    uri = storage.upload_uri(get_settings().uploads_uri, user, str(job_id), path.name)
    with open(path, "rb") as src, storage.open_output(uri) as dst:
        shutil.copyfileobj(src, dst)
    jobs.create_job(
        session,
        user_id=user,
        file_uri=uri,
        file_name=path.name,
        job_id=job_id,
        size_bytes=path.stat().st_size,
    )
    return job_id


def wait_job(session, job_id: uuid.UUID, timeout: float = 600.0, on_poll=None) -> jobs.JobRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(session, job_id)
        if job.status in FINISHED:
            return job
        if on_poll:
            on_poll(job)
        time.sleep(0.3)
    raise TimeoutError(
        f"job {job_id} did not finish: {jobs.get_job(session, job_id)}; "
        f"its progress parts: {jobs.progress_parts(session, job_id)}; {where_things_run(job_id)}"
    )


def where_things_run(job_id: uuid.UUID) -> str:
    """What a stuck scenario's cluster runs for the job: the supervisor actor and the job's tasks
    with their states and nodes (for the failure message)."""
    try:
        from ray.util.state import list_actors, list_tasks

        url = ray._private.worker.global_worker.node.address_info.get("webui_url") or ""
        address = url if url.startswith("http") else f"http://{url}"
        actors = [
            (a.class_name, a.state, a.node_id, a.pid)
            for a in list_actors(address=address, limit=1000, raise_on_missing_output=False)
            if a.class_name == "JobSupervisor"
        ]
        tasks = [
            (t.name, t.state, t.node_id, t.attempt_number)
            for t in list_tasks(address=address, limit=10_000, raise_on_missing_output=False)
            if str(job_id) in (t.name or "")
        ]
        alive = [(n["NodeID"], n["Alive"]) for n in ray.nodes()]
        return f"supervisor {actors}; tasks {tasks}; nodes {alive}"
    except Exception as exc:  # the message must not hide the timeout
        return f"(state API: {exc!r})"


def connect(cluster: Cluster) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
    ray.init(
        address=cluster.address,
        namespace=NAMESPACE,
        runtime_env={"env_vars": env},
        log_to_driver=False,
    )


def node_labels() -> dict[str, str]:
    """node id -> the ledgerflow custom resource it offers ('head' for none)."""
    out = {}
    for node in ray.nodes():
        custom = [r for r in node["Resources"] if r.endswith("_node")]
        out[node["NodeID"]] = custom[0] if custom else "head"
    return out


NAMED_STAGES = {"job", "parse", "store", "read", "split", "tax"}


def state_api(args: dict[str, Any]) -> str:
    """The state API of this scenario's cluster, by address: with none, ray.util.state joins the
    latest Ray instance on the machine ("Found multiple active Ray instances ... Connecting to
    latest cluster"), another test's or helper's, and never sees this job's tasks."""
    return f"http://127.0.0.1:{args['dashboard_port']}"


def placements(job: jobs.JobRecord, address: str, timeout: float = 120.0) -> dict[str, list]:
    """stage -> labels of the nodes its tasks (and the PriceFetcher actors) ran on, from the state
    API (task events reach it asynchronously: poll until the tasks of every stage the job
    submitted are listed, then once more after a few seconds)."""
    from ray.util.state import list_actors, list_tasks

    job_id = job.job_id
    # a small job has no split task (one shard): waiting for one would only wait out the timeout
    submitted = {kind for kind, n in (job.summary.get("tasks") or {}).items() if n}
    expected = {"job"} | (NAMED_STAGES & submitted)
    labels = node_labels()
    settled = False
    deadline = time.monotonic() + timeout
    while True:
        tasks = [
            t
            for t in list_tasks(
                address=address, limit=10_000, detail=True, raise_on_missing_output=False
            )
            if str(job_id) in (t.name or "")
        ]
        # Any attempt that reported its node counts (a lost FINISHED event leaves RUNNING's).
        done = [t for t in tasks if t.node_id]
        if {t.name.split(":")[0] for t in done} >= expected or time.monotonic() > deadline:
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
    fetchers = list_actors(
        address=address,
        filters=[("class_name", "=", "PriceFetcher")],
        limit=100,
        raise_on_missing_output=False,
    )
    out["prices"] = {labels.get(a.node_id, a.node_id) for a in fetchers if a.node_id}
    return {k: sorted(v) for k, v in out.items()}


def job_facts(job: jobs.JobRecord) -> dict[str, Any]:
    return {
        "job_id": str(job.job_id),
        "status": job.status,
        "error": job.error,
        "accepted": job.accepted,
        "rejected": job.rejected,
        "stages": sorted(job.completed_stages),
        "tasks": job.summary.get("tasks") or {},  # Ray tasks submitted, by kind
    }


def scenario_spread(args: dict[str, Any]) -> dict[str, Any]:
    """Head + 3 workers; each stage pinned by LEDGERFLOW_STAGE_RESOURCES (set by the test) to the
    node offering its resource: prices on the head, parse/store/tax on one worker each."""
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "temp_dir": TEMP_DIR,
            "num_cpus": 0,
            "resources": {"prices_node": 10},
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": True,
            "dashboard_port": args["dashboard_port"],
        },
    )
    for resource in ("parse_node", "store_node", "tax_node"):
        cluster.add_node(num_cpus=1, resources={resource: 10}, object_store_memory=OBJECT_STORE)
    try:
        connect(cluster)
        from ingest.pipeline.runner import submit_job

        session = get_session(get_settings())
        job_id = record(session, args["user"], Path(args["file"]))
        submit_job(job_id)
        job = wait_job(session, job_id)
        facts = job_facts(job)
        facts["nodes"] = sorted(node_labels().values())
        facts["placements"] = placements(job, state_api(args))
        return facts
    finally:
        ray.shutdown()
        cluster.shutdown()


def scenario_remove_node(args: dict[str, Any]) -> dict[str, Any]:
    """Head (no CPUs) + 2 workers; the worker running a store task (else another stage task, else
    the job task when it runs the stages itself, runner.runs_inline) is removed without grace
    mid-job and a fresh one joins."""
    from ray.util.state import list_tasks

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "temp_dir": TEMP_DIR,
            "num_cpus": 0,
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": True,
            "dashboard_port": args["dashboard_port"],
        },
    )
    workers = {}
    for _ in range(2):
        node = cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        workers[node.node_id] = node
    removed: list[str] = []
    try:
        connect(cluster)
        from ingest.pipeline.runner import submit_job

        session = get_session(get_settings())
        job_id = record(session, args["user"], Path(args["file"]))
        submit_job(job_id)

        notes: list[str] = []
        lost_with_it: list[str] = []

        def on_node(node_id: str, job_id: uuid.UUID) -> list[str]:
            """The job supervisor and the job's orchestrator, if they run on that node."""
            from ray.util.state import list_actors

            actors = list_actors(
                address=state_api(args),
                filters=[("class_name", "=", "JobSupervisor"), ("state", "=", "ALIVE")],
                raise_on_missing_output=False,
            )
            orchestrators = list_tasks(
                address=state_api(args),
                filters=[("name", "=", f"job:{job_id}"), ("state", "=", "RUNNING")],
                raise_on_missing_output=False,
            )
            return [f"supervisor (pid {a.pid})" for a in actors if a.node_id == node_id] + [
                t.name for t in orchestrators if t.node_id == node_id
            ]

        def remove_a_busy_worker(job: jobs.JobRecord) -> None:
            if job.error and job.error not in notes:  # the watchdog's, if it had to step in
                notes.append(job.error)
            if removed:
                return
            running = [
                t
                for t in list_tasks(
                    address=state_api(args),
                    filters=[("state", "=", "RUNNING")],
                    limit=1000,
                    raise_on_missing_output=False,
                )
                if (t.name or "").startswith(
                    tuple(
                        f"{kind}:{job_id}"
                        for kind in ("store", "parse", "read", "split", "tax", "job")
                    )
                )
                and t.node_id in workers
            ]
            # A small file's parse, store and first tax stage run inside the job task itself
            # (runner.runs_inline) when it landed on a worker: then that task is the busy one.
            stores = [t for t in running if t.name.startswith("store:")]
            stages = [t for t in running if not t.name.startswith("job:")]
            if stores or running:
                victim = (stores or stages or running)[0]
                lost_with_it.extend(on_node(victim.node_id, job_id))
                cluster.remove_node(workers.pop(victim.node_id), allow_graceful=False)
                removed.append(victim.name)
                cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)

        job = wait_job(session, job_id, on_poll=remove_a_busy_worker)
        facts = job_facts(job)
        facts["removed_while_running"] = removed
        facts["notes"] = notes
        facts["lost_with_the_node"] = lost_with_it
        facts["alive_nodes"] = sum(1 for n in ray.nodes() if n["Alive"])
        return facts
    finally:
        ray.shutdown()
        cluster.shutdown()


def scenario_ray_job(args: dict[str, Any]) -> dict[str, Any]:
    """`ledgerflow backfill` submitted through the Ray Jobs API (JobSubmissionClient against the
    head's dashboard, as `ray job submit` does); the job lands on the dashboard's Jobs page."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    # The job agent's HTTP port defaults to 52365, which another Ray on this machine may hold.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "temp_dir": TEMP_DIR,
            "num_cpus": 2,
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": True,
            "dashboard_port": args["dashboard_port"],
            "dashboard_agent_listen_port": _free_port(),
        },
    )
    try:
        client = JobSubmissionClient(f"http://127.0.0.1:{args['dashboard_port']}")
        env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
        submission_id = f"backfill-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + 120
        while True:  # the head's job agent takes a moment to come up after the dashboard
            try:
                submission = client.submit_job(
                    entrypoint=f"{sys.executable} -m ingest.cli backfill --user {args['user']} "
                    f"{args['file']}",
                    runtime_env={"env_vars": env},
                    submission_id=submission_id,
                )
                break
            except RuntimeError as exc:
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2.0)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = client.get_job_status(submission)
            if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                break
            time.sleep(1.0)
        logs = client.get_job_logs(submission)
        listed = [j.submission_id for j in client.list_jobs()]
        job_ids = [
            line.split()[1]
            for line in logs.splitlines()
            if line.startswith("job ") and " recorded for " in line
        ]
        facts: dict[str, Any] = {
            "ray_job_status": str(status),
            "listed": submission in listed,
            "logs": logs[-3000:],
        }
        if job_ids:
            facts.update(
                job_facts(jobs.get_job(get_session(get_settings()), uuid.UUID(job_ids[0])))
            )
        return facts
    finally:
        cluster.shutdown()


def cluster_yaml_node_types(max_workers: int = 2, cpus: int = 2) -> dict[str, dict]:
    """cluster.yaml's worker node types for Ray's fake (local) autoscaler: same names and custom
    resources, CPUs this machine can pretend to have, min_workers 0 (so scaling up is visible)."""
    import yaml

    from ingest.config import PROJECT_ROOT

    config = yaml.safe_load((PROJECT_ROOT / "cluster.yaml").read_text())
    return {
        name: {
            "resources": {**(spec.get("resources") or {}), "CPU": cpus},
            "node_config": {},
            "min_workers": 0,
            "max_workers": min(max_workers, spec.get("max_workers", max_workers)),
        }
        for name, spec in config["available_node_types"].items()
        if name != config["head_node_type"]
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _processes_of_session(session_dir: str) -> list[int]:
    """Pids of this scenario's own Ray processes: their command lines name its session folder."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if session_dir in " ".join(proc.info["cmdline"] or []) and proc.pid != os.getpid():
                pids.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pids


def fake_autoscaler_config(node_types: dict[str, dict], idle_minutes: float) -> dict[str, Any]:
    """A cluster config for Ray's fake multi-node provider (the one AutoscalingCluster writes;
    its template file is not in the ray wheel): worker nodes are raylets on this machine."""
    workers = {
        name: {**spec, "resources": {**spec["resources"], "object_store_memory": OBJECT_STORE}}
        for name, spec in node_types.items()
    }
    return {
        "cluster_name": "ledgerflow-fake",
        "max_workers": 4,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_minutes,
        "head_node_type": "ray.head.default",
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            **workers,
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
        },
        "auth": {},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def scenario_autoscale(args: dict[str, Any]) -> dict[str, Any]:
    """A head without CPUs under Ray's fake multi-node autoscaler (what AutoscalingCluster sets
    up, started here by hand: its start() runs `ray stop --force`, which would end every Ray
    instance on this shared machine):
    the job's pending parse/store/tax tasks make it launch cluster.yaml's worker type, which it
    removes again once idle. Runs with RAY_AUTH_MODE=token (the test sets it): `ray start` turns
    token auth on when ~/.ray/auth_token exists, and a driver joining must say so too (Ray 2.60
    reads the mode once, at import)."""
    import signal
    import subprocess
    import tempfile

    import psutil

    ip = ray._private.services.get_node_ip_address()
    port = _free_port()
    node_types = cluster_yaml_node_types()
    config = fake_autoscaler_config(node_types, idle_minutes=args.get("idle_minutes", 0.25))
    config["provider"]["gcs_address"] = f"{ip}:{port}"
    config_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(config, config_file)
    config_file.close()
    env = {**os.environ, "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_FAKE_CLUSTER": "1"}
    head_log = tempfile.NamedTemporaryFile("w", suffix=".log", prefix="lf-autoscale-", delete=False)
    print(f"ray start log: {head_log.name}", file=sys.stderr)
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            f"--temp-dir={TEMP_DIR}",
            f"--port={port}",
            "--num-cpus=0",
            f"--autoscaling-config={config_file.name}",
            "--include-dashboard=true",
            f"--dashboard-port={args['dashboard_port']}",
            f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            "--disable-usage-stats",
            "--object-store-memory",
            str(OBJECT_STORE),
        ],
        env=env,
        stdout=head_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    session_dir = ""
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                envs = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
                ray.init(
                    address=f"{ip}:{port}",
                    namespace=NAMESPACE,
                    log_to_driver=False,
                    runtime_env={"env_vars": envs},
                )
                break
            except Exception:
                if time.monotonic() > deadline or head.poll() is not None:
                    raise
                time.sleep(1.0)
        session_dir = ray._private.worker.global_worker.node.get_session_dir_path()

        def workers() -> list[dict]:
            return [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]

        from ingest.pipeline.runner import submit_job

        session = get_session(get_settings())
        assert not workers()
        job_id = record(session, args["user"], Path(args["file"]))
        submit_job(job_id)
        peak: list[int] = [0]
        job = wait_job(
            session,
            job_id,
            timeout=900,
            on_poll=lambda _j: peak.__setitem__(0, max(peak[0], len(workers()))),
        )
        facts = job_facts(job)
        facts["peak_workers"] = peak[0]
        facts["worker_types"] = sorted(node_types)
        deadline = time.monotonic() + 300  # idle workers go after idle_timeout_minutes
        while workers() and time.monotonic() < deadline:
            time.sleep(2.0)
        facts["workers_after_idle"] = len(workers())
        return facts
    finally:
        ray.shutdown()
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        if session_dir:  # fake worker nodes the monitor started, if any outlived it
            for pid in _processes_of_session(session_dir):
                try:
                    psutil.Process(pid).kill()
                except psutil.NoSuchProcess:
                    pass
        os.unlink(config_file.name)


def scenario_stalled_job(args: dict[str, Any]) -> dict[str, Any]:
    """One node; LEDGERFLOW_TEST_HOOKS and a short LEDGERFLOW_JOB_STALL_LIMIT (set by the test).
    Job A's parse tasks are held until the watchdog noted the stall (then released: the restarted
    job must finish); job B's are held for good (it must end failed with the watchdog's
    message)."""
    from ingest.pipeline.runner import submit_job
    from ingest.pipeline.test_hooks import HOOKS_NAME, StageHolds

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"temp_dir": TEMP_DIR, "num_cpus": 2, "object_store_memory": OBJECT_STORE},
    )
    try:
        connect(cluster)
        holds = StageHolds.options(name=HOOKS_NAME, namespace=NAMESPACE).remote()
        session = get_session(get_settings())
        facts: dict[str, Any] = {}
        for key, user, release in (
            ("released", args["user"] + "-a", True),
            ("held", args["user"] + "-b", False),
        ):
            ray.get(holds.hold.remote(user, "parse"))
            job_id = record(session, user, Path(args["file"]))
            submit_job(job_id)
            notes: list[str] = []

            def watch(job: jobs.JobRecord, notes=notes, user=user, release=release) -> None:
                if job.error and job.error not in notes:
                    notes.append(job.error)
                    if release:
                        ray.get(holds.release.remote(user, "parse"))

            job = wait_job(session, job_id, timeout=600, on_poll=watch)
            facts[key] = {**job_facts(job), "notes": notes, "error_code": job.error_code}
        facts["orphaned"] = orphaned_job(session, holds, args["user"] + "-c", Path(args["file"]))
        return facts
    finally:
        ray.shutdown()
        cluster.shutdown()


def orphaned_job(session, holds, user: str, path: Path) -> dict[str, Any]:
    """Job C's parse tasks are held while it runs; its supervisor is killed (Ray restarts it, a
    new actor that knows of no job) and the hold released once the job is noted again: the
    restarted supervisor must find the job by itself (nothing here asks it to resume), note it
    and run it to its end."""
    from ingest.pipeline.runner import SUPERVISOR_NAME, submit_job

    ray.get(holds.hold.remote(user, "parse"))
    job_id = record(session, user, path)
    ray.get(submit_job(job_id))
    deadline = time.monotonic() + 120
    while jobs.get_job(session, job_id).status != "running":
        assert time.monotonic() < deadline, "job C never ran"
        time.sleep(0.2)
    ray.kill(ray.get_actor(SUPERVISOR_NAME, namespace=NAMESPACE), no_restart=False)
    notes: list[str] = []

    def watch(job: jobs.JobRecord) -> None:
        if job.error and job.error not in notes:
            notes.append(job.error)
            ray.get(holds.release.remote(user, "parse"))

    job = wait_job(session, job_id, timeout=600, on_poll=watch)
    return {**job_facts(job), "notes": notes, "error_code": job.error_code}


SCENARIOS = {
    "stalled_job": scenario_stalled_job,
    "spread": scenario_spread,
    "remove_node": scenario_remove_node,
    "ray_job": scenario_ray_job,
    "autoscale": scenario_autoscale,
}


def main() -> None:
    name, args = sys.argv[1], json.loads(sys.argv[2])
    # The test stops a scenario past its timeout with SIGTERM: unwind, so the `finally` clauses
    # shut down the cluster this process started (SIGKILL would leave its raylets running).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Cluster() points /tmp/ray/ray_current_cluster (what a bare ray.init() joins) at itself;
    # put back what was there, so other Ray users on this machine are not redirected.
    address_file = Path("/tmp/ray/ray_current_cluster")
    before = address_file.read_text() if address_file.exists() else None
    # On a machine where Ray never ran, Cluster() would fail writing that file.
    address_file.parent.mkdir(parents=True, exist_ok=True)
    kept = False
    try:
        facts = SCENARIOS[name](args)
    except BaseException:
        kept = True  # its Ray logs say what the cluster did
        print(f"scenario {name} failed; its Ray logs are kept in {TEMP_DIR}", file=sys.stderr)
        raise
    finally:
        if not kept:
            shutil.rmtree(TEMP_DIR, ignore_errors=True)
        if before is None:
            address_file.unlink(missing_ok=True)
        else:
            address_file.write_text(before)
    print(json.dumps(facts, default=str))


if __name__ == "__main__":
    main()
