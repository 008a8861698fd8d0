"""What a benchmark run needs, started in order and stopped in reverse: the Cassandra node (reused
when it already answers, and then left running), a fresh `lf_bench` keyspace, the price simulator
process, a local Ray instance, the ledgerflow Serve app plus the bare upload endpoint, and the
baseline server process. LEDGERFLOW_* variables are set before anything that reads them starts."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import get_settings

HOST = "127.0.0.1"
SIM_LATENCY_MS = 20


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message names the step and the cause."""


def require(module: str, attribute: str | None = None, step: str = ""):
    """Import a (colleague's) module or attribute, or fail with a message that says which."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise BenchError(
            f"step '{step or module}': cannot import {module} "
            f"({type(exc).__name__}: {exc}); that part of ledgerflow is not ready, "
            "so this benchmark cannot run it (nothing is faked)."
        ) from exc
    if attribute is None:
        return mod
    if not hasattr(mod, attribute):
        raise BenchError(
            f"step '{step or module}': {module} has no `{attribute}` yet; that part "
            "of ledgerflow is not ready, so this benchmark cannot run it."
        )
    return getattr(mod, attribute)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def venv_bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


@dataclass
class Knobs:
    price_rate: float
    chunk_bytes: int | None = None
    parse_parallelism: int | None = None
    price_pool_size: int | None = None
    write_concurrency: int | None = None


@dataclass
class Stack:
    keyspace: str
    out_dir: Path
    knobs: Knobs
    sim_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    baseline_port: int = field(default_factory=free_port)
    log: Callable[[str], None] = print
    _stops: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    @property
    def sim_url(self) -> str:
        return f"http://{HOST}:{self.sim_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def baseline_url(self) -> str:
        return f"http://{HOST}:{self.baseline_port}"

    @property
    def uploads_dir(self) -> Path:
        return self.out_dir / "uploads"

    def env(self) -> dict[str, str]:
        """The LEDGERFLOW_* settings of this run (for this process, Ray workers, subprocesses)."""
        k = self.knobs
        env = {
            "LEDGERFLOW_KEYSPACE": self.keyspace,
            "LEDGERFLOW_COINGECKO_URL": self.sim_url,
            "LEDGERFLOW_PRICE_PROVIDER": "coingecko",  # loopback only: no public fallback
            "LEDGERFLOW_PRICE_RATE": str(k.price_rate),
            "LEDGERFLOW_PRICE_BURST": str(max(1, int(k.price_rate))),
            "LEDGERFLOW_API_HOST": HOST,
            "LEDGERFLOW_API_PORT": str(self.api_port),
            "LEDGERFLOW_RAY_ADDRESS": "",  # our own local Ray instance
            "LEDGERFLOW_STORAGE_URI": str(self.uploads_dir),
        }
        for name, value in (
            ("CHUNK_BYTES", k.chunk_bytes),
            ("PARSE_PARALLELISM", k.parse_parallelism),
            ("PRICE_POOL_SIZE", k.price_pool_size),
            ("WRITE_CONCURRENCY", k.write_concurrency),
        ):
            if value is not None:
                env[f"LEDGERFLOW_{name}"] = str(value)
        return env

    def _on_stop(self, name: str, fn: Callable[[], object]) -> None:
        self._stops.append((name, fn))

    # --- start ---------------------------------------------------------------------------------
    def start_storage(self) -> None:
        """Cassandra node and a freshly created benchmark keyspace with all migrations."""
        os.environ.update(self.env())
        get_settings.cache_clear()
        from devtools.devstack import cassandra_node
        from ingest.load.cassandra import close_all, connect_with_retry
        from ingest.load.migrations import apply_migrations

        status = cassandra_node.start()
        self.log(status)
        if "already up" not in status and "configured cluster" not in status:
            self._on_stop("cassandra", cassandra_node.stop)  # we started it: we stop it
        self._on_stop("driver sessions", close_all)
        self._on_stop("uploaded files", lambda: shutil.rmtree(self.uploads_dir, ignore_errors=True))
        session = connect_with_retry(get_settings())
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {self.keyspace}", timeout=180)
        finally:
            session.cluster.shutdown()
        applied = apply_migrations(get_settings(), self.keyspace)
        self.log(f"keyspace {self.keyspace} recreated, migrations {applied}")

    def start_price_simulator(self) -> None:
        from devtools.devstack.processes import start_background, stop_background

        rate = self.knobs.price_rate
        self.log(
            start_background(
                "bench-pricesim",
                [
                    venv_bin("ledgerflow"),
                    "pricesim",
                    "--port",
                    str(self.sim_port),
                    "--rate",
                    str(rate),
                    "--burst",
                    str(max(1, int(rate))),
                    "--latency-ms",
                    str(SIM_LATENCY_MS),
                ],
                self.sim_port,
            )
        )
        self._on_stop("price simulator", lambda: stop_background("bench-pricesim"))

    def start_baseline_server(self) -> None:
        from devtools.devstack.processes import start_background, stop_background

        self.log(
            start_background(
                "bench-baseline",
                [sys.executable, "-m", "benchmarks.baseline", "--port", str(self.baseline_port)],
                self.baseline_port,
            )
        )
        self._on_stop("baseline server", lambda: stop_background("bench-baseline"))

    def start_ray(self) -> None:
        """A local Ray instance of this machine's CPUs, every LEDGERFLOW_* setting in its workers."""
        namespace = require("ingest.pipeline.ray_runtime", "NAMESPACE", step="start Ray")
        import ray

        env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
        ray.init(
            address="local",
            num_cpus=os.cpu_count() or 2,
            namespace=namespace,
            runtime_env={"env_vars": env},
            include_dashboard=False,
            log_to_driver=False,
        )
        self._on_stop("ray", ray.shutdown)
        self.log(f"local Ray up ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)")

    def start_ray_and_serve(self) -> None:
        run_local = require("serve.app", "run_local", step="start the Serve app")
        from ray import serve

        from benchmarks import bare_endpoint

        self.start_ray()
        run_local(HOST, self.api_port, blocking=False)
        self._on_stop("serve", serve.shutdown)
        bare_endpoint.deploy()
        self.log(
            f"Serve up: ledgerflow {self.api_url}, bare endpoint {self.api_url}"
            f"{bare_endpoint.ROUTE_PREFIX}"
        )

    # --- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        while self._stops:
            name, fn = self._stops.pop()
            try:
                fn()
            except Exception as exc:  # keep stopping the rest
                self.log(f"stopping {name}: {type(exc).__name__}: {exc}")
        get_settings.cache_clear()
