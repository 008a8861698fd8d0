"""The real Cassandra node (started or reused) and a throw-away keyspace per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from ingest.config import Settings, get_settings


@pytest.fixture(scope="session")
def cassandra_node() -> str:
    """Ensure a node answers CQL: the configured cluster, or the project's local node."""
    from devtools.devstack import cassandra_node as node

    return node.start()


@pytest.fixture(scope="session")
def test_keyspace(cassandra_node: str) -> Iterator[str]:
    """A fresh keyspace with all migrations applied; LEDGERFLOW_KEYSPACE points at it for this
    process and for every process started later (Ray workers, Serve replicas, CLI subprocesses)."""
    from ingest.load.cassandra import close_all, connect_with_retry
    from ingest.load.migrations import apply_migrations

    keyspace = f"lf_test_{uuid.uuid4().hex[:10]}"
    os.environ["LEDGERFLOW_KEYSPACE"] = keyspace
    get_settings.cache_clear()
    apply_migrations(get_settings(), keyspace)
    yield keyspace
    close_all()
    session = connect_with_retry(get_settings())
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        session.cluster.shutdown()


@pytest.fixture(scope="session")
def settings(test_keyspace: str) -> Settings:
    return get_settings()


@pytest.fixture()
def session(test_keyspace: str):
    from ingest.load.cassandra import get_session

    return get_session(get_settings(), test_keyspace)


@pytest.fixture()
def unwatched_keyspace(test_keyspace: str) -> Iterator[str]:
    """A keyspace of its own, for a job run by another Ray instance than this process's: the
    Serve app other tests started here resumes the active jobs of the test keyspace every few
    seconds and would take such a job over (seen: the autoscaler test's job ran here, on no
    autoscaled worker)."""
    from ingest.load.cassandra import get_session
    from ingest.load.migrations import apply_migrations

    keyspace = f"lf_unwatched_{uuid.uuid4().hex[:8]}"
    apply_migrations(get_settings(), keyspace)
    yield keyspace
    drop = get_session(get_settings(), keyspace)
    drop.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


@pytest.fixture()
def cold_price_cache(session) -> None:
    """Empty the shared price cache: for tests that count requests from a cold start (other
    tests, e.g. the pipeline's, warm the same keyspace's cache)."""
    from ingest.load.cassandra import with_retry

    for table in ("price_window_points", "price_coverage"):
        with_retry(lambda table=table: session.execute(f"TRUNCATE {table}", timeout=120))
