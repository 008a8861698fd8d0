"""Background service processes of the local stack, tracked by pid files under the state folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ingest.config import get_settings


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_file(name: str) -> Path:
    return get_settings().state_dir / f"{name}.pid"


def log_file(name: str) -> Path:
    return get_settings().state_dir / f"{name}.log"


def start_background(name: str, cmd: list[str], port: int, timeout: float = 60.0) -> str:
    """Start `cmd` unless something already listens on `port`; wait until the port answers."""
    if port_open(port):
        return f"{name} already up on 127.0.0.1:{port}"
    get_settings().state_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_file(name), "ab")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    pid_file(name).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return f"{name} up on 127.0.0.1:{port} (pid {proc.pid}, log {log_file(name)})"
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_file(name)}")
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not open port {port} in {timeout:.0f}s; see {log_file(name)}")


def stop_background(name: str) -> str:
    path = pid_file(name)
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return f"{name}: not started by ledgerflow"
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        pass
    path.unlink(missing_ok=True)
    return f"stopped {name} (pid {pid})"
