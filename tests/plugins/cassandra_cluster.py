"""A real 3-node Cassandra cluster on 127.0.0.1-3 (devtools/devstack/local_cluster.py) beside the
shared single node: its own state folder and ports (CQL 9142, storage 7100, JMX 7300-7302), so
both run at once. Started once per module that asks for it, stopped at its end.

`cluster3.env` holds the LEDGERFLOW_* settings that point a process (a `ledgerflow backfill`
subprocess with its own local Ray) at the cluster and at a fresh RF 3 keyspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ingest.config import PROJECT_ROOT, Settings

NODES = 3
PORTS = {
    "LEDGERFLOW_CASSANDRA_PORT": "9142",
    "LEDGERFLOW_CASSANDRA_STORAGE_PORT": "7100",
    "LEDGERFLOW_CASSANDRA_JMX_PORT": "7300",
}


@dataclass
class Cluster3:
    settings: Settings
    env: dict[str, str]

    def session(self):
        from ingest.load.cassandra import connect_with_retry

        session = connect_with_retry(self.settings)
        session.set_keyspace(self.settings.keyspace)
        return session


def cluster_env(keyspace: str) -> dict[str, str]:
    from devtools.devstack.local_cluster import contact_points

    return {
        **PORTS,
        "LEDGERFLOW_STATE_DIR": str(PROJECT_ROOT / ".ledgerflow" / "test-cluster"),
        "LEDGERFLOW_CASSANDRA_HOSTS": contact_points(NODES),
        "LEDGERFLOW_REPLICATION": "{'class': 'SimpleStrategy', 'replication_factor': 3}",
        "LEDGERFLOW_CONSISTENCY": "LOCAL_QUORUM",
        "LEDGERFLOW_KEYSPACE": keyspace,
    }


@pytest.fixture(scope="module")
def cluster3() -> Iterator[Cluster3]:
    from devtools.devstack import local_cluster

    env = cluster_env(f"lf_c3_{uuid.uuid4().hex[:10]}")
    settings = Settings(**{k[len("LEDGERFLOW_") :].lower(): v for k, v in env.items()})
    try:
        print(local_cluster.start(settings, NODES))
        migrate = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "migrate"],
            env={**os.environ, **env},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        yield Cluster3(settings, env)
    finally:
        print("\n".join(local_cluster.stop(settings)))
