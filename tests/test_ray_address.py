"""Which Ray instance a ledgerflow process joins: the one its settings name, never "the latest".

With no address, ray.init joins whichever instance last wrote <Ray temp dir>/ray_current_cluster
(`ray start`, a test's cluster): on a machine running several Ray instances a backfill, a Serve
app or a scenario's driver ran its jobs on another program's cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ingest.config import PROJECT_ROOT
from ingest.pipeline.ray_runtime import ray_init_address
from tests.plugins.pricesim import free_port


def test_an_empty_address_starts_a_local_instance_unless_ray_names_one():
    assert ray_init_address("", {}) == "local"
    # A Ray job's driver: Ray sets RAY_ADDRESS to its cluster.
    assert ray_init_address("", {"RAY_ADDRESS": "10.0.0.5:6379"}) == "10.0.0.5:6379"
    assert ray_init_address("10.0.0.7:6379", {"RAY_ADDRESS": "10.0.0.5:6379"}) == "10.0.0.7:6379"
    assert ray_init_address("auto", {}) == "auto"


JOINED = """
import json, ray
from ingest.pipeline.ray_runtime import ensure_ray
ensure_ray("")
print(json.dumps({"gcs": ray.get_runtime_context().gcs_address}))
ray.shutdown()
"""


@pytest.mark.ray
def test_ensure_ray_never_joins_another_instance_on_the_machine():
    """A second Ray instance, started by `ray start` with its own temp dir (so its
    ray_current_cluster names it, and no other program on this machine is redirected): a process
    with that temp dir and no address starts its own instance instead of joining it."""
    temp = Path(tempfile.mkdtemp(prefix="lfa-", dir="/tmp"))  # short: Ray puts sockets in it
    env = {
        k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "LEDGERFLOW_RAY_ADDRESS")
    }
    env["RAY_TMPDIR"] = str(temp)
    port = free_port()
    ray_bin = str(Path(sys.executable).parent / "ray")
    other = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            f"--temp-dir={temp / 'ray'}",
            "--num-cpus=0",
            "--include-dashboard=false",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        address_file = temp / "ray" / "ray_current_cluster"
        deadline = time.monotonic() + 120
        while not address_file.exists():
            assert other.poll() is None, "ray start ended"
            assert time.monotonic() < deadline, "ray start wrote no ray_current_cluster"
            time.sleep(0.5)
        latest = address_file.read_text().strip()
        assert latest.endswith(f":{port}"), latest
        joined = subprocess.run(
            [sys.executable, "-c", JOINED],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert joined.returncode == 0, joined.stderr[-3000:]
        gcs = json.loads(joined.stdout.strip().splitlines()[-1])["gcs"]
        assert gcs != latest, joined.stderr[-3000:]
        assert "Connecting to latest cluster" not in joined.stderr
        assert "Connecting to existing Ray cluster" not in joined.stderr
    finally:
        other.send_signal(signal.SIGTERM)
        try:
            other.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(other.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
