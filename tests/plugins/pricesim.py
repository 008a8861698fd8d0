"""The price simulator as a separate process (owned by the prices work; see
devtools/pricesim).

`pricesim_factory(**options)` starts `ledgerflow pricesim` on a free port with CLI options
(`rate=5, outage=["0:600"]` -> `--rate 5 --outage 0:600`), waits until it answers and returns a
handle (base URL, /stats, /admin/config); every process it started is terminated at teardown.
`pricesim` is one healthy, unlimited simulator.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ingest.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, payload: dict | None = None, timeout: float = 5.0) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class PriceSim:
    url: str
    process: subprocess.Popen

    def stats(self) -> dict[str, Any]:
        return _http(f"{self.url}/stats")

    def reset_stats(self) -> None:
        _http(f"{self.url}/stats/reset", {})

    def configure(self, **changes: Any) -> dict[str, Any]:
        """POST /admin/config; returns the config in force plus `uptime_s`."""
        return _http(f"{self.url}/admin/config", changes)

    def outage_from_now(self, duration: float) -> None:
        uptime = self.stats()["uptime_s"]
        self.configure(outages=[[uptime, duration]])

    def when(
        self,
        condition: Callable[[dict[str, Any]], bool],
        action: Callable[[], Any],
        timeout: float = 300.0,
    ) -> threading.Thread:
        """Run `action` once /stats satisfies `condition` (polled from a background thread), so a
        fault lands at a point of the run, not at a wall-clock instant. Join the thread to wait;
        `fired` on it says whether the condition was met before `timeout`."""

        def watch() -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if condition(self.stats()):
                    action()
                    thread.fired = True  # type: ignore[attr-defined]
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=watch, daemon=True)
        thread.fired = False  # type: ignore[attr-defined]
        thread.start()
        return thread

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_pricesim(**options: Any) -> PriceSim:
    port = free_port()
    argv = [sys.executable, "-m", "ingest.cli", "pricesim", "--port", str(port)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        for item in value if isinstance(value, (list, tuple)) else [value]:
            argv += [flag, str(item)]
    # stderr to a file, not a pipe: a full pipe would block the server.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=log)
    sim = PriceSim(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"pricesim exited: {log.read().decode()[-2000:]}")
        try:
            sim.stats()
            return sim
        except OSError:
            time.sleep(0.1)
    sim.stop()
    raise RuntimeError("pricesim did not answer within 30 s")


@pytest.fixture()
def pricesim_factory() -> Iterator[Callable[..., PriceSim]]:
    started: list[PriceSim] = []

    def start(**options: Any) -> PriceSim:
        sim = start_pricesim(**options)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture()
def pricesim(pricesim_factory: Callable[..., PriceSim]) -> PriceSim:
    return pricesim_factory()


@pytest.fixture()
def pricesim_url(pricesim: PriceSim) -> str:
    """Base URL of a healthy simulator (what LEDGERFLOW_COINGECKO_URL should be)."""
    return pricesim.url


@pytest.fixture(scope="session")
def pipeline_pricesim() -> Iterator[PriceSim]:
    """One simulator for the whole session that the pipeline's Ray workers talk to: its URL is put
    in LEDGERFLOW_COINGECKO_URL before Ray starts, so every worker's settings point at it."""
    import os

    from ingest.config import get_settings

    sim = start_pricesim(rate=200, burst=50, latency_ms=5)
    os.environ["LEDGERFLOW_COINGECKO_URL"] = sim.url
    os.environ["LEDGERFLOW_PRICE_RATE"] = "100"
    os.environ["LEDGERFLOW_PRICE_BURST"] = "20"
    get_settings.cache_clear()
    yield sim
    sim.stop()
