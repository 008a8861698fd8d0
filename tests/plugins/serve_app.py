"""Both Serve applications (serve.app.run_local) on the test session's Ray, HTTP on a free port.

The replicas get the session's LEDGERFLOW_* settings plus a small upload cap and a throw-away
storage folder. `api_client_for(user)` makes an httpx client holding a fresh token of `user`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.plugins.pricesim import free_port

TEST_MAX_UPLOAD_BYTES = 4 * 1024 * 1024
RESUME_INTERVAL_S = 2.0


@dataclass(frozen=True)
class ServeApp:
    base_url: str
    max_upload_bytes: int
    storage_dir: Path


def wait_until_healthy(base_url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{base_url}/healthz", timeout=5.0)
            if resp.status_code == 200:
                return
            last = f"{resp.status_code} {resp.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise RuntimeError(f"Serve app not healthy after {timeout_s}s: {last}")


@pytest.fixture(scope="session")
def serve_app(
    ray_local: None, test_keyspace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeApp]:
    from ray import serve as ray_serve

    from serve.app import run_local

    storage_dir = tmp_path_factory.mktemp("uploads")
    port = free_port()
    run_local(
        "127.0.0.1",
        port,
        env_vars={
            "LEDGERFLOW_MAX_UPLOAD_BYTES": str(TEST_MAX_UPLOAD_BYTES),
            "LEDGERFLOW_STORAGE_URI": str(storage_dir),
            # Small, so the tests of lost hand-offs see the periodic resume within their deadline.
            "LEDGERFLOW_JOB_RESUME_INTERVAL": str(RESUME_INTERVAL_S),
            "LEDGERFLOW_JOB_HANDOFF_TIMEOUT": "5",
        },
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url)
        yield ServeApp(base_url, TEST_MAX_UPLOAD_BYTES, storage_dir)
    finally:
        ray_serve.shutdown()


@pytest.fixture()
def api_client_for(serve_app: ServeApp, session) -> Iterator[Callable[[str], httpx.Client]]:
    """user id -> a client sending a new token of that user."""
    from ingest.load.users import create_token

    clients: list[httpx.Client] = []

    def make(user_id: str) -> httpx.Client:
        token = create_token(session, user_id)
        client = httpx.Client(
            base_url=serve_app.base_url, timeout=30.0, headers={"Authorization": f"Bearer {token}"}
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture()
def fresh_user() -> Callable[[str], str]:
    """A user id no other test uses (the keyspace is shared by the whole session)."""
    return lambda label: f"{label}-{uuid.uuid4().hex[:8]}"
