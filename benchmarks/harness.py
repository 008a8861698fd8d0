"""One benchmark run, step by step. Each step records what it measured in `results`; a step that
cannot run (a colleague's module missing, a service failing) is recorded under `failures` with its
reason, the steps that depend on it are skipped, and nothing is filled in for them."""

from __future__ import annotations

import http.client
import os
import platform
import statistics
import subprocess
import threading
import time
import traceback
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks import copy_from, dsbulk, loaded_rows, report, targets, tombstones
from benchmarks.baseline import PriceClient
from benchmarks.facts import FileFacts, file_facts
from benchmarks.http_client import (
    api_latency,
    get_json,
    post_json,
    threaded_latency,
    timed_upload,
)
from benchmarks.sampling import Sampler, ray_worker_rss
from benchmarks.stack import HOST, SIM_LATENCY_MS, BenchError, Knobs, Stack, require
from ingest.config import get_settings

KEYSPACE = "lf_bench"
STAGES = ("parse", "store", "prices", "tax")
SEED = 20240601
WARMUP_ROWS = 200
MAX_FAILED_POLLS = 30
FAILED = object()  # what `Harness.step` returns for a step that failed
# Steps `--skip` may leave out (each a measurement nothing else depends on).
OPTIONAL_STEPS = (
    "warm",
    "tombstones",
    "history-read",
    "concurrent",
    "copy-from",
    "dsbulk",
    "read-latency",
    "naive",
    "baseline",
)


@dataclass
class BenchConfig:
    sizes: list[int]
    baseline_size: int
    knobs: Knobs
    out_dir: Path
    results_md: Path
    command: str
    quick: bool = False
    skip: frozenset[str] = frozenset()
    concurrent_users: int = 8
    concurrent_rows: int = 50000
    bare_repeats: int = 3
    read_requests: int = 400
    read_concurrency: int = 16
    read_warmup: int = 32
    filtered_requests: int = 100  # a filtered page scans up to TX_SCAN_BUDGET rows: fewer
    naive_cap: int = 2000
    poll_interval_s: float = 0.2
    job_timeout_s: float = 4 * 3600
    baseline_timeout_s: float = 4 * 3600


@dataclass
class Harness:
    config: BenchConfig
    results: dict[str, Any] = field(default_factory=dict)
    sampler: Sampler = field(default_factory=Sampler)
    files: dict[int, Path] = field(default_factory=dict)
    facts: dict[int, FileFacts] = field(default_factory=dict)
    exported: dict[int, int] = field(default_factory=dict)  # size -> canonical CSV rows
    stack: Stack | None = None

    @property
    def live_stack(self) -> Stack:
        """The stack `run` started: every step runs inside `run`."""
        assert self.stack is not None, "benchmark steps run inside Harness.run"
        return self.stack

    def log(self, message: str) -> None:
        print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)

    def step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one step; on failure record it (with the reason) and return FAILED."""
        self.log(f"{name} ...")
        started = time.perf_counter()
        try:
            value = fn(*args)
        except Exception as exc:
            message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            self.results["failures"].append(
                {"step": name, "error": message, "trace": traceback.format_exc()[-3000:]}
            )
            self.log(f"{name} FAILED: {message}")
            return FAILED
        self.log(f"{name} done in {time.perf_counter() - started:.1f}s")
        return value

    def skipped(self, name: str, because: str) -> None:
        self.results["skipped"].append({"step": name, "because": because})
        self.log(f"{name} skipped: {because}")

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        cfg = self.config
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        self.results.update(
            {
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": cfg.command,
                "machine": machine_description(),
                "config": {
                    "sizes": cfg.sizes,
                    "baseline_size": cfg.baseline_size,
                    "quick": cfg.quick,
                    "price_rate": cfg.knobs.price_rate,
                    "simulator_latency_ms": SIM_LATENCY_MS,
                    "bare_repeats": cfg.bare_repeats,
                    "read_requests": cfg.read_requests,
                    "read_concurrency": cfg.read_concurrency,
                    "filtered_requests": cfg.filtered_requests,
                    "concurrent_users": cfg.concurrent_users,
                    "concurrent_rows": cfg.concurrent_rows,
                    "skipped_steps": sorted(cfg.skip),
                    "naive_cap": cfg.naive_cap,
                    "poll_interval_s": cfg.poll_interval_s,
                    "seed": SEED,
                },
                "runs": [],
                "failures": [],
                "skipped": [],
            }
        )
        self.stack = Stack(KEYSPACE, cfg.out_dir, cfg.knobs, log=self.log)
        self.sampler.start()
        try:
            self.run_steps()
        finally:
            self.sampler.stop()
            self.step("stop what the benchmark started", self.stack.stop)
            self.results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.results["targets"] = targets.evaluate(self.results)
            paths = report.write_all(self.results, cfg.out_dir, cfg.results_md)
            self.log("wrote " + ", ".join(str(p) for p in paths))
        return 1 if self.results["failures"] else 0

    def run_steps(self) -> None:
        cfg, stack = self.config, self.live_stack
        for name, fn in (
            ("start Cassandra and a fresh lf_bench keyspace", stack.start_storage),
            ("start the price simulator", stack.start_price_simulator),
            ("generate the files", self.generate_files),
        ):
            if self.step(name, fn) is FAILED:
                return  # everything below needs these
            self.results["settings"] = effective_settings()
        baseline_ok = self.wanted("baseline") and (
            self.step("start the baseline server", stack.start_baseline_server) is not FAILED
        )
        serve_ok = (
            self.step("start Ray and the Serve apps", stack.start_ray_and_serve) is not FAILED
        )

        runs_by_size: dict[int, dict] = {}
        if not serve_ok:
            self.skipped("ledgerflow runs", "Ray/Serve did not start")
        elif self.step("warm-up upload (not measured)", self.warm_up) is FAILED:
            self.skipped("ledgerflow runs", "the warm-up upload did not succeed (see failures)")
        else:
            for size in cfg.sizes:
                run = self.step(f"ledgerflow end to end, {size} rows", self.run_ledgerflow, size)
                if run is not FAILED:
                    self.results["runs"].append(run)
                    runs_by_size[size] = run
            # The price cache is shared by every user and job, so a production upload usually
            # finds most windows cached: the baseline-sized file once more, warm, as a second
            # figure.
            if cfg.baseline_size in runs_by_size and self.wanted("warm"):
                warm = self.step(
                    f"ledgerflow end to end, {cfg.baseline_size} rows, warm price cache",
                    self.run_ledgerflow,
                    cfg.baseline_size,
                    False,
                )
                if warm is not FAILED:
                    self.results["warm_runs"] = [warm]
        largest = max(cfg.sizes)
        largest_run = runs_by_size.get(largest)
        no_largest = f"no successful ledgerflow run of {largest} rows"

        for key, name, measure in (
            ("tombstones", "tombstones per live view row (traced read)", self.run_view_tombstones),
            ("history-read", "whole history read: rows vs chunks", self.run_history_read),
        ):
            if not self.wanted(key):
                continue
            if largest_run is None:
                self.skipped(name, no_largest)
                continue
            value = self.step(name, measure, largest_run)
            if value is not FAILED:
                self.results[key.replace("-", "_")] = value

        if self.wanted("concurrent"):
            n, rows = cfg.concurrent_users, cfg.concurrent_rows
            name = f"{n} users at once, {rows} rows each"
            if not serve_ok or rows not in runs_by_size:
                self.skipped(name, f"no successful single-user ledgerflow run of {rows} rows")
            else:
                together = self.step(name, self.run_concurrent_users, runs_by_size[rows])
                if together is not FAILED:
                    self.results["concurrent_users"] = together

        if self.wanted("copy-from"):
            copy = self.step(f"cqlsh COPY FROM, {largest} rows", self.run_copy_from, largest)
            if copy is not FAILED:
                self.results["copy_from"] = copy
        if self.wanted("dsbulk"):
            loaded = self.step(f"DSBulk load, {largest} rows", self.run_dsbulk, largest)
            if loaded is not FAILED:
                self.results["dsbulk"] = loaded

        if not self.wanted("read-latency"):
            pass
        elif largest_run is not None:
            latency = self.step("read API latency", self.run_read_latency, largest_run)
            if latency is not FAILED:
                self.results["read_latency"] = latency
        else:
            self.skipped("read API latency", no_largest)

        if self.wanted("naive"):
            naive = self.step(
                f"naive price fetcher, {largest}-row file", self.run_naive_fetcher, largest
            )
            if naive is not FAILED:
                self.results["naive_fetcher"] = naive

        if not self.wanted("baseline"):
            pass
        elif baseline_ok:
            base = self.step(
                f"baseline, {cfg.baseline_size} rows", self.run_baseline, cfg.baseline_size
            )
            if base is not FAILED:
                self.results["baseline"] = base
        else:
            self.skipped("baseline", "the baseline server did not start")

    def wanted(self, step: str) -> bool:
        return step not in self.config.skip

    # --- steps -----------------------------------------------------------------------------------
    def generate_files(self) -> dict:
        generate = require("devtools.generate", "generate", step="generate the files")
        window_seconds = require(
            "ingest.prices.planner", "WINDOW_SECONDS", step="generate the files"
        )
        data_dir = self.config.out_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        out = {}
        for size in sorted(set(self.config.sizes) | {self.config.baseline_size}):
            path = data_dir / f"koinly-{size}.csv"
            started = time.perf_counter()
            self.sampler.set_tag(f"generate:{size}")
            stats = generate(size, "koinly", SEED + size, path)
            self.sampler.set_tag("idle")
            self.files[size] = path
            self.facts[size] = file_facts(path, int(window_seconds), self.config.naive_cap)
            out[size] = {
                **self.facts[size].summary(),
                "generate_s": time.perf_counter() - started,
                "generator_stats": _jsonable(stats),
            }
            self.log(
                f"  {path.name}: {self.facts[size].rows} rows, "
                f"{self.facts[size].bytes / 1e6:.1f} MB"
            )
        self.results["files"] = out
        return out

    def warm_up(self) -> dict:
        """One small upload through the whole pipeline before anything is measured, so the job
        supervisor actor, worker processes and prepared statements exist (a first upload pays for
        them once; a running service has them)."""
        from ingest.load.cassandra import get_session
        from ingest.load.users import create_token

        source = self.files[min(self.files)]
        path = self.config.out_dir / "data" / f"warmup-{WARMUP_ROWS}.csv"
        with open(source) as f, open(path, "w") as out:
            for i, line in enumerate(f):
                if i > WARMUP_ROWS:
                    break
                out.write(line)
        token = create_token(get_session(get_settings()), "bench-warmup")
        auth = {"Authorization": f"Bearer {token}"}
        self.sampler.set_tag("warmup")
        api_url = self.live_stack.api_url
        upload = timed_upload(f"{api_url}/v1/uploads?format=koinly&name={path.name}", path, auth)
        if upload.status != 202:
            raise BenchError(f"POST /v1/uploads answered {upload.status}: {upload.body}")
        job = self.wait_for_job(upload.body["job_id"], auth, "warmup", [])
        self.sampler.set_tag("idle")
        if job.get("status") != "succeeded":
            raise BenchError(f"warm-up job ended {job.get('status')}: {job.get('error')}")
        return {"rows": WARMUP_ROWS, "status": job.get("status")}

    def truncate_price_cache(self) -> None:
        from ingest.load.cassandra import get_session

        session = get_session(get_settings())
        for table in ("price_window_points", "price_coverage"):
            session.execute(f"TRUNCATE {table}", timeout=120)

    def run_ledgerflow(self, size: int, cold: bool = True) -> dict:
        from benchmarks.bare_endpoint import ROUTE_PREFIX
        from ingest.load.cassandra import get_session
        from ingest.load.users import create_token

        cfg, stack, path = self.config, self.live_stack, self.files[size]
        if cold:
            self.truncate_price_cache()  # cold price cache for every size
        user = f"bench-{size}" if cold else f"bench-{size}-warm"
        token = create_token(get_session(get_settings()), user)
        auth = {"Authorization": f"Bearer {token}"}

        self.sampler.set_tag(f"bare:{size}")
        bare = [
            timed_upload(f"{stack.api_url}{ROUTE_PREFIX}", path, {})
            for _ in range(cfg.bare_repeats)
        ]
        if any(b.status != 202 for b in bare):
            raise BenchError(f"bare endpoint answered {[b.status for b in bare]}: {bare[0].body}")

        post_json(f"{stack.sim_url}/stats/reset", {})
        loadavg_before = os.getloadavg()
        self.sampler.reset_memory_peak()
        idle_rss = ray_worker_rss()
        self.sampler.set_tag(f"lf:{size}:upload")
        t_start = time.perf_counter()
        upload = timed_upload(
            f"{stack.api_url}/v1/uploads?format=koinly&name={quote(path.name)}", path, auth
        )
        if upload.status != 202:
            raise BenchError(f"POST /v1/uploads answered {upload.status}: {upload.body}")
        job_id = upload.body["job_id"]
        transitions: list[tuple[float, str]] = [(upload.started_wall, "upload")]
        job = self.wait_for_job(job_id, auth, size, transitions)
        t_end, end_wall = time.perf_counter(), time.time()
        self.sampler.set_tag("idle")
        memory = self.sampler.memory_peak()
        if job.get("status") != "succeeded":
            raise BenchError(f"job {job_id} ended {job.get('status')}: {job.get('error')}")
        _, sim = get_json(f"{stack.sim_url}/stats")

        timings = {k: float(v) for k, v in (job.get("stage_timings") or {}).items()}
        stages = stage_figures(timings, job.get("accepted") or 0)
        for stage, figures in stages.items():
            figures["cpu"] = self.sampler.cpu_over(f"lf:{size}:{stage}")
        requests_by_stage = attribute_requests(sim.get("request_log", []), transitions, end_wall)
        finished_at = job.get("finished_at")
        e2e_record = (
            datetime.fromisoformat(finished_at).timestamp() - upload.started_wall
            if finished_at
            else None
        )
        return {
            "size": size,
            "user": user,
            "job_id": job_id,
            "file_bytes": path.stat().st_size,
            "accepted": job.get("accepted"),
            "rejected": job.get("rejected"),
            "upload": {
                "answer_s": upload.answer_s,
                "send_s": upload.send_s,
                "status": upload.status,
            },
            "bare_upload": {
                "answer_s": [b.answer_s for b in bare],
                "answer_s_median": statistics.median(b.answer_s for b in bare),
                "send_s": [b.send_s for b in bare],
            },
            "e2e_s": t_end - t_start,
            "e2e_record_s": e2e_record,
            "stage_timings_recorded": timings,
            "stages": stages,
            "transitions_observed": [
                (round(t - upload.started_wall, 3), s) for t, s in transitions
            ],
            "price_requests": {
                "total": sim.get("requests"),
                "ok": sim.get("ok"),
                "throttled_429": sim.get("throttled_429"),
                "errors_5xx": sim.get("errors_5xx"),
                "max_rate_1s": sim.get("max_rate_1s"),
                "by_stage_observed": requests_by_stage,
                "price_stage": price_stage_requests(requests_by_stage),
                "request_log_complete": len(sim.get("request_log", [])) == sim.get("requests"),
            },
            "price_window_pairs_in_file": self.facts[size].window_pairs,
            "cpu_whole_run": self.sampler.cpu_over(f"lf:{size}:"),
            "memory": {**memory, "ray_workers_sum_before_upload_bytes": idle_rss.rss_sum},
            "price_cache": (
                "cold (price_window_points and price_coverage truncated before the upload)"
                if cold
                else "warm (windows cached by the earlier run of the same rows)"
            ),
            "loadavg_before": loadavg_before,
            "derived_rows": derived_rows(get_session(get_settings()), user),
        }

    def wait_for_job(
        self,
        job_id: str,
        auth: dict,
        size: int | str,
        transitions: list[tuple[float, str]],
        tag: bool = True,
    ) -> dict:
        """Poll the job until it ends; with `tag`, the sampler's tag follows its stage (one job
        at a time: jobs polled together leave the tag alone)."""
        url = f"{self.live_stack.api_url}/v1/jobs/{job_id}"
        deadline = time.monotonic() + self.config.job_timeout_s
        stage = "upload"
        failed_polls = 0
        while time.monotonic() < deadline:
            try:
                status, job = get_json(url, auth)
            except (OSError, http.client.HTTPException) as exc:  # a busy API: poll again
                failed_polls += 1
                if failed_polls > MAX_FAILED_POLLS:
                    raise BenchError(
                        f"GET /v1/jobs/{job_id} failed {failed_polls} times in a row; last: {exc!r}"
                    ) from exc
                time.sleep(1.0)
                continue
            failed_polls = 0
            if status != 200:
                raise BenchError(f"GET /v1/jobs/{job_id} answered {status}: {job}")
            if job.get("status") in ("succeeded", "failed"):
                return job
            now_stage = current_stage(job)
            if now_stage != stage:
                stage = now_stage
                transitions.append((time.time(), stage))
                if tag:
                    self.sampler.set_tag(f"lf:{size}:{stage}")
            time.sleep(self.config.poll_interval_s)
        raise BenchError(f"job {job_id} not finished after {self.config.job_timeout_s:.0f}s")

    def canonical_csv(self, size: int) -> tuple[Path, int]:
        """The `size`-row file as canonical-column CSV (both load anchors load it), exported once
        outside any timing; (path, rows)."""
        if size not in self.files:
            raise BenchError(f"no generated {size}-row file")
        csv_path = self.config.out_dir / "data" / f"copy-{size}.csv"
        if size not in self.exported:
            self.exported[size] = copy_from.export_canonical_csv(
                self.files[size], csv_path, f"copy-{size}"
            )
        return csv_path, self.exported[size]

    def check_load(self, table: str, csv_path: Path) -> dict:
        """The loaded table against the file (count + sampled rows, quoted descriptions among
        them); a mismatch fails the step loudly (a wrong load's rows/s is not an anchor)."""
        from ingest.load.cassandra import get_session

        try:
            check = loaded_rows.check_loaded(get_session(get_settings()), table, csv_path)
        except ValueError as exc:
            raise BenchError(f"the load is wrong: {exc}") from exc
        return asdict(check)

    def run_copy_from(self, size: int) -> dict:
        from ingest.load.cassandra import get_session

        csv_path, exported = self.canonical_csv(size)
        self.sampler.set_tag(f"copy:{size}")
        result = copy_from.run_copy_from(
            get_session(get_settings()), KEYSPACE, csv_path, HOST, get_settings().cassandra_port
        )
        self.sampler.set_tag("idle")
        return {
            "size": size,
            "exported_rows": exported,
            **copy_from.as_dict(result),
            "cpu": self.sampler.cpu_over(f"copy:{size}"),
            "check": self.check_load(copy_from.COPY_TABLE, csv_path),
        }

    def run_dsbulk(self, size: int) -> dict:
        from ingest.load.cassandra import get_session

        csv_path, exported = self.canonical_csv(size)
        dsbulk.fetch_dsbulk()  # a first fetch is not timed
        self.sampler.set_tag(f"dsbulk:{size}")
        result = dsbulk.run_dsbulk(
            get_session(get_settings()),
            KEYSPACE,
            csv_path,
            HOST,
            get_settings().cassandra_port,
            self.config.out_dir / "dsbulk-logs",
        )
        self.sampler.set_tag("idle")
        return {
            "size": size,
            "exported_rows": exported,
            **dsbulk.as_dict(result),
            "cpu": self.sampler.cpu_over(f"dsbulk:{size}"),
            "check": self.check_load(dsbulk.TABLE, csv_path),
        }

    def run_view_tombstones(self, run: dict) -> dict:
        """The node's own count of tombstone cells met while reading the whole view of a user
        whose only upload was `run`'s (a first upload)."""
        from ingest.load.cassandra import get_session
        from ingest.load.transactions import user_months

        session = get_session(get_settings())
        months = user_months(session, run["user"])
        self.sampler.set_tag("tombstones")
        count = tombstones.traced_view_read(session, run["user"], months)
        self.sampler.set_tag("idle")
        if count.live_rows != run.get("accepted"):
            raise BenchError(
                f"the traced read of {run['user']}'s view met {count.live_rows:,} live rows, "
                f"the job accepted {run.get('accepted')}"
            )
        return {
            "user": run["user"],
            "months": len(months),
            "method": "query tracing: the node's 'Read N live rows and M tombstone cells' per "
            f"page of SELECT * over every month partition, pages of {tombstones.PAGE_ROWS} rows",
            **tombstones.as_dict(count),
        }

    def run_history_read(self, run: dict) -> dict:
        """The largest file's history loaded both ways (raw_transactions rows, published
        chunks as the store stage writes and compacts them) and read whole by each reader in
        the same run: today's row read (read_transactions) vs the chunk read (read_history);
        benchmarks/history_read.py."""
        from benchmarks import history_read
        from ingest.extract.parse import parse_local_file
        from ingest.load.cassandra import get_session

        settings = get_settings()
        session = get_session(settings)
        rows = parse_local_file(self.files[run["size"]], user_id="bench-history").table
        if rows.num_rows != run.get("accepted"):
            raise BenchError(
                f"the file parsed here gave {rows.num_rows:,} rows, its job accepted "
                f"{run.get('accepted')}"
            )
        self.sampler.set_tag("history-read")
        try:
            return history_read.measure(
                session, rows, compact_chunks=settings.history_compact_chunks
            )
        finally:
            self.sampler.set_tag("idle")

    def run_concurrent_users(self, single: dict) -> dict:
        """`concurrent_users` users each upload the `single` run's file at the same moment
        through the upload API (cold price cache, like the single-user run); each job timed
        from its first byte to `succeeded`."""
        from ingest.load.cassandra import get_session
        from ingest.load.users import create_token

        cfg, stack = self.config, self.live_stack
        path = self.files[single["size"]]
        session = get_session(get_settings())
        users = [f"bench-together-{i}" for i in range(cfg.concurrent_users)]
        auths = [{"Authorization": f"Bearer {create_token(session, u)}"} for u in users]
        self.truncate_price_cache()
        url = f"{stack.api_url}/v1/uploads?format=koinly&name={quote(path.name)}"
        barrier = threading.Barrier(len(users))

        def one_user(auth: dict) -> dict:
            barrier.wait()
            started = time.perf_counter()
            upload = timed_upload(url, path, auth)
            if upload.status != 202:
                raise BenchError(f"POST /v1/uploads answered {upload.status}: {upload.body}")
            job = self.wait_for_job(upload.body["job_id"], auth, "together", [], tag=False)
            return {
                "job_id": upload.body["job_id"],
                "status": job.get("status"),
                "error": job.get("error"),
                "accepted": job.get("accepted"),
                "started_s": started,
                "ended_s": time.perf_counter(),
                "answer_s": upload.answer_s,
                "stage_timings_recorded": job.get("stage_timings"),
            }

        self.sampler.reset_memory_peak()
        self.sampler.set_tag("together")
        with ThreadPoolExecutor(len(users)) as pool:
            jobs = list(pool.map(one_user, auths))
        self.sampler.set_tag("idle")
        failed = [j for j in jobs if j["status"] != "succeeded"]
        if failed:
            raise BenchError(
                f"{len(failed)} of {len(jobs)} concurrent jobs did not succeed: "
                + "; ".join(f"{j['job_id']} {j['status']}: {j['error']}" for j in failed[:3])
            )
        first, last = min(j["started_s"] for j in jobs), max(j["ended_s"] for j in jobs)
        rows = sum(j["accepted"] or 0 for j in jobs)
        for user, job in zip(users, jobs):
            job["user"] = user
            job["e2e_s"] = job["ended_s"] - job["started_s"]
            job["vs_single"] = job["e2e_s"] / single["e2e_s"]
        return {
            "users": len(users),
            "rows_each": single["size"],
            "file": path.name,
            "rows": rows,
            "wall_s": last - first,
            "rows_per_s": rows / (last - first),
            "single_user_e2e_s": single["e2e_s"],
            "slowest_e2e_s": max(j["e2e_s"] for j in jobs),
            "slowest_vs_single": max(j["vs_single"] for j in jobs),
            "jobs": [
                {k: v for k, v in j.items() if k not in ("started_s", "ended_s")} for j in jobs
            ],
            "cpu": self.sampler.cpu_over("together"),
            "memory": self.sampler.memory_peak(),
            "price_cache": "cold (truncated before the uploads); every user uploads the same "
            "file, so the jobs share its price windows",
        }

    def run_read_latency(self, run: dict) -> dict:
        """p50/p99 of the first transactions page through the API and through the driver, for
        the unfiltered page and for a filtered one (the file's rare asset, in the wallet holding
        most of its rows)."""
        queries = require("ingest.load.queries", step="read API latency")

        cfg, user = self.config, run["user"]
        unfiltered = self.page_latency(
            user, {}, queries.TxFilter(), cfg.read_requests, require_rows=True
        )
        out = {
            "user": user,
            "history_rows": run.get("accepted"),
            "page_rows": unfiltered["page_rows"],
            "api": unfiltered["api"],
            "driver": unfiltered["driver"],
            "warmup_requests_each": cfg.read_warmup,
            "driver_call": "ingest.load.queries.transactions_page(session, user, TxFilter(), "
            "100) on one Session shared by the client threads",
        }
        pick = self.facts[run["size"]].rare_asset_wallet()
        if pick is None:
            raise BenchError(f"no crypto asset in the {run['size']}-row file to filter on")
        asset, wallet = pick
        flt = queries.TxFilter(asset=asset, wallet=wallet)
        filtered = self.page_latency(
            user, {"asset": asset, "wallet": wallet}, flt, cfg.filtered_requests
        )
        out["filtered"] = {
            **filtered,
            "asset": asset,
            "wallet": wallet,
            "asset_rows_in_file": sum(
                n for (a, _), n in self.facts[run["size"]].asset_wallet_rows.items() if a == asset
            ),
            "driver_call": f"ingest.load.queries.transactions_page(session, user, "
            f"TxFilter(asset={asset!r}, wallet={wallet!r}), 100)",
        }
        return out

    def page_latency(
        self, user: str, params: dict[str, str], flt: Any, requests: int, require_rows: bool = False
    ) -> dict:
        """The first page of `user`'s transactions (limit 100) under `flt`: `requests` times
        through GET /v1/transactions with `params`, then as many driver calls, after warm-ups."""
        from ingest.load.cassandra import get_session
        from ingest.load.queries import transactions_page
        from ingest.load.users import create_token

        cfg = self.config
        session = get_session(get_settings())
        auth = {"Authorization": f"Bearer {create_token(session, user)}"}
        query = "".join(f"&{k}={quote(v)}" for k, v in params.items())
        url = f"{self.live_stack.api_url}/v1/transactions?limit=100{query}"

        def good_page(status: int, body: Any) -> bool:
            return (
                status == 200
                and isinstance(body, dict)
                and isinstance(body.get("items"), list)
                and (len(body["items"]) > 0 or not require_rows)
            )

        def driver_page() -> None:
            rows, _ = transactions_page(session, user, flt, 100)
            if require_rows and not rows:
                raise RuntimeError("empty page")

        status, first = get_json(url, auth, timeout=120)
        if not good_page(status, first):
            raise BenchError(f"GET {url} answered {status}: {str(first)[:300]}")
        driver_rows, _ = transactions_page(session, user, flt, 100)
        label = "filtered" if params else "unfiltered"
        warmup = min(cfg.read_warmup, requests)
        self.sampler.set_tag(f"read:{label}:warmup")
        api_latency(url, auth, warmup, cfg.read_concurrency, good_page)
        threaded_latency(driver_page, warmup, cfg.read_concurrency)
        self.sampler.set_tag(f"read:{label}:api")
        api = api_latency(url, auth, requests, cfg.read_concurrency, good_page)
        self.sampler.set_tag(f"read:{label}:driver")
        driver = threaded_latency(driver_page, requests, cfg.read_concurrency)
        self.sampler.set_tag("idle")
        return {
            "page_rows": len(first["items"]),
            "driver_page_rows": len(driver_rows),
            "api": asdict(api),
            "driver": asdict(driver),
        }

    def run_naive_fetcher(self, size: int) -> dict:
        facts = self.facts.get(size)
        if facts is None:
            raise BenchError(f"no facts for the {size}-row file")
        sample = facts.naive_sample
        post_json(f"{self.live_stack.sim_url}/stats/reset", {})
        client = PriceClient(self.live_stack.sim_url)
        self.sampler.set_tag("naive")
        started = time.perf_counter()
        try:
            for asset, ts in sample:
                client.price_at(asset, ts)
        finally:
            client.close()
        seconds = time.perf_counter() - started
        self.sampler.set_tag("idle")
        per_tx = seconds / len(sample) if sample else 0.0
        return {
            "file_rows": facts.rows,
            "priceable_transactions": facts.priceable_transactions,
            "transactions_fetched": len(sample),
            "requests": client.requests,
            "throttled_429": client.rate_limited,
            "seconds": seconds,
            "seconds_per_transaction": per_tx,
            "extrapolated_seconds_all_transactions": per_tx * facts.priceable_transactions,
            "extrapolation": f"measured on the first {len(sample)} priceable transactions, "
            f"scaled linearly to all {facts.priceable_transactions}",
        }

    def run_baseline(self, size: int) -> dict:
        path, stack = self.files[size], self.live_stack
        post_json(f"{stack.sim_url}/stats/reset", {})
        self.sampler.set_tag("baseline")
        answer = timed_upload(
            f"{stack.baseline_url}/upload?user=baseline-{size}",
            path,
            {},
            timeout=self.config.baseline_timeout_s,
        )
        self.sampler.set_tag("idle")
        if answer.status != 200:
            raise BenchError(f"baseline answered {answer.status}: {str(answer.body)[:500]}")
        _, sim = get_json(f"{stack.sim_url}/stats")
        return {
            "size": size,
            "e2e_s": answer.total_s,
            "answer": answer.body,
            "simulator": {k: sim.get(k) for k in ("requests", "ok", "throttled_429")},
            "cpu": self.sampler.cpu_over("baseline"),
        }


# --- helpers -----------------------------------------------------------------------------------
def current_stage(job: dict) -> str:
    """The stage a running job is in: the first not yet completed ('queued' before it starts)."""
    if job.get("status") == "queued":
        return "queued"
    done = set(job.get("completed_stages") or ())
    return next((s for s in STAGES if s not in done), "finishing")


def stage_figures(timings: dict[str, float], rows: int) -> dict[str, dict]:
    """Per stage: seconds as the job recorded them and exclusive seconds. The runner times `store`
    over the whole parse+store map/reduce (store tasks need every chunk's output), so store's
    exclusive time is store - parse."""
    out: dict[str, dict] = {}
    for stage in STAGES:
        if stage not in timings:
            continue
        seconds = timings[stage]
        if stage == "store" and "parse" in timings:
            seconds = max(0.0, seconds - timings["parse"])
        out[stage] = {
            "recorded_s": timings[stage],
            "seconds": seconds,
            "rows_per_s": rows / seconds if seconds > 0 else None,
        }
    return out


def attribute_requests(
    request_log: list[float], transitions: list[tuple[float, str]], end_wall: float
) -> dict[str, int]:
    """Simulator chart requests per observed stage (by arrival time vs polled transitions)."""
    times = [t for t, _ in transitions]
    counts: Counter[str] = Counter()
    for ts in request_log:
        if ts < times[0] or ts > end_wall:
            counts["outside_job"] += 1
            continue
        counts[transitions[bisect_right(times, ts) - 1][1]] += 1
    return dict(counts)


def price_stage_requests(by_stage: dict[str, int]) -> int:
    """Requests of the prices stage: every chart request of the job except those seen while tax
    ran (parse and store fetch no prices, so early arrivals that polling attributed to them, up to
    one poll interval, are the prices stage's)."""
    return sum(
        n for stage, n in by_stage.items() if stage not in ("tax", "finishing", "outside_job")
    )


def effective_settings() -> dict:
    from ingest.config import get_settings

    s = get_settings()
    names = (
        "keyspace",
        "write_concurrency",
        "parse_parallelism",
        "chunk_bytes",
        "price_rate",
        "price_burst",
        "price_pool_size",
        "price_concurrency",
        "coingecko_url",
        "price_provider",
        "consistency",
        "storage_uri",
    )
    return {n: getattr(s, n) for n in names}


def machine_description() -> dict:
    model, cores = "unknown", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cores += 1
    except OSError:
        pass
    try:
        free = subprocess.run(["free", "-m"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        free = ""
    return {
        "cpu_model": model,
        "logical_cpus": cores or os.cpu_count(),
        "free_m": free.strip("\n"),
        "loadavg_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    return str(value)


def derived_rows(session: Any, user: str) -> dict[str, int]:
    """Rows the tax and price stages left in Cassandra for `user` (counted after the job): the
    read tables, plus the price cache rows (truncated before a cold run, so written by it).
    transactions_view's per-asset metrics are map-element updates of the same rows."""
    from ingest.load.cassandra import execute

    def count(cql: str, *params: Any) -> int:
        return int(execute(session, cql, params).one()["n"])

    months = sorted(
        {
            r["month"]
            for r in execute(session, "SELECT month FROM user_months WHERE user_id = ?", (user,))
        }
    )
    years = sorted(
        {
            r["year"]
            for r in execute(session, "SELECT year FROM yearly_summary WHERE user_id = ?", (user,))
        }
    )
    out = {
        "transactions_view": sum(
            count(
                "SELECT count(*) AS n FROM transactions_view WHERE user_id = ? AND month = ?",
                user,
                m,
            )
            for m in months
        ),
        "disposal_chunks": sum(
            count(
                "SELECT count(*) AS n FROM disposal_chunks WHERE user_id = ? AND year = ?", user, y
            )
            for y in years
        ),
        "finding_chunks": count("SELECT count(*) AS n FROM finding_chunks WHERE user_id = ?", user),
        "balances": count("SELECT count(*) AS n FROM balances WHERE user_id = ?", user),
        "yearly_summary": count("SELECT count(*) AS n FROM yearly_summary WHERE user_id = ?", user),
        "price_window_points": count("SELECT count(*) AS n FROM price_window_points"),
        "price_coverage": count("SELECT count(*) AS n FROM price_coverage"),
    }
    out["total"] = sum(out.values())
    return out
