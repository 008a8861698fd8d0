"""Versioned CQL migrations, applied idempotently at start-up.

Files `migrations/NNN_name.cql` run in order; `schema_migrations` records each version once it ran.
Every statement is `IF NOT EXISTS`, so a migration interrupted half-way is safe to run again. A
version whose new column must be filled for the rows already stored names an idempotent backfill
in BACKFILLS, run after its statements and before the version is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import resources

from cassandra.cluster import Session

from ingest.config import Settings
from ingest.load.cassandra import connect_with_retry, prepared
from ingest.load.history_conversion import convert_raw_history
from ingest.load.views import backfill_view_assets

_KEYSPACE_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9_]{0,47}"
)  # fullmatch ("$" matches before a final newline)


# version -> what fills the rows stored before it (idempotent: a re-run after a crash is safe)
BACKFILLS: dict[int, Callable[[Session], object]] = {
    14: backfill_view_assets,
    15: convert_raw_history,  # raw_transactions + upload_rows -> published history chunks
}


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, cql text) of every bundled migration, in version order."""
    found = []
    for entry in resources.files("ingest.load").joinpath("migrations").iterdir():
        m = re.fullmatch(r"(\d+)_(\w+)\.cql", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text()))
    return sorted(found)


def split_statements(cql: str) -> list[str]:
    body = "\n".join(line for line in cql.splitlines() if not line.strip().startswith("--"))
    body = re.sub(r"--[^\n]*", "", body)
    return [s.strip() for s in body.split(";") if s.strip()]


def ensure_keyspace(session: Session, keyspace: str, replication: str) -> None:
    # DDL cannot take bind markers; the name is validated and the replication comes from config.
    if not _KEYSPACE_RE.fullmatch(keyspace):
        raise ValueError(f"invalid keyspace name {keyspace!r}")
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}")


def apply_migrations(settings: Settings, keyspace: str | None = None) -> list[int]:
    """Create the keyspace and apply pending migrations. Returns the versions applied now."""
    keyspace = keyspace or settings.keyspace
    session = connect_with_retry(settings)
    try:
        ensure_keyspace(session, keyspace, settings.replication)
        session.set_keyspace(keyspace)
        session.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version int PRIMARY KEY, name text, applied_at timestamp)"
        )
        done = {row["version"] for row in session.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, cql in migration_files():
            if version in done:
                continue
            for statement in split_statements(cql):
                session.execute(statement, timeout=60)
            if version in BACKFILLS:
                BACKFILLS[version](session)
            session.execute(
                prepared(
                    session,
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                ),
                (version, name, datetime.now(timezone.utc)),
            )
            applied.append(version)
        return applied
    finally:
        session.cluster.shutdown()
