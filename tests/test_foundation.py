"""Foundation: the real node answers, migrations are idempotent, the storage layer round-trips."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from ingest.load.cassandra import execute, execute_many
from ingest.load.migrations import apply_migrations, migration_files


def test_migrations_twice_is_a_no_op(test_keyspace, settings, session):
    assert apply_migrations(settings, test_keyspace) == []
    rows = list(execute(session, "SELECT version FROM schema_migrations"))
    assert sorted(r["version"] for r in rows) == [v for v, _, _ in migration_files()]


def test_row_round_trip_through_storage_layer(session):
    ts = datetime(2024, 3, 1, 12, tzinfo=timezone.utc)
    cql = (
        "INSERT INTO balances (user_id, wallet, asset, quantity, cost_basis, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    written = execute_many(
        session,
        cql,
        [
            ("u-round", "kraken", a, Decimal("1.000000000000000001"), Decimal("42.5"), ts)
            for a in ("BTC", "ETH")
        ],
    )
    assert written == 2
    rows = list(
        execute(
            session,
            "SELECT asset, quantity, cost_basis FROM balances WHERE user_id=?",
            ("u-round",),
        )
    )
    assert [(r["asset"], r["quantity"], r["cost_basis"]) for r in rows] == [
        ("BTC", Decimal("1.000000000000000001"), Decimal("42.5")),
        ("ETH", Decimal("1.000000000000000001"), Decimal("42.5")),
    ]


def test_start_reuses_the_running_node(cassandra_node):
    from devtools.devstack import cassandra_node as node
    from ingest.config import get_settings

    if not get_settings().uses_local_node:
        pytest.skip(
            "LEDGERFLOW_CASSANDRA_HOSTS names an existing cluster: nothing is started "
            "here, nothing to reuse"
        )
    assert "already up" in node.start()
    assert "local node: up" in node.status()
