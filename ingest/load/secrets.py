"""Secrets shared by every replica of a deployment, kept in its keyspace (`deployment_secrets`):
made at random by the first process that asks, with a lightweight transaction, so concurrent first
askers agree on one value."""

from __future__ import annotations

import secrets

from cassandra.cluster import Session

from ingest.load.cassandra import execute

SECRET_BYTES = 32


def shared_secret(session: Session, name: str) -> bytes:
    row = execute(session, "SELECT value FROM deployment_secrets WHERE name = ?", (name,)).one()
    if row is not None:
        return bytes(row["value"])
    proposed = secrets.token_bytes(SECRET_BYTES)
    execute(
        session,
        "INSERT INTO deployment_secrets (name, value) VALUES (?, ?) IF NOT EXISTS",
        (name, proposed),
    )
    # Whoever's insert won, the stored value is the one (read at SERIAL: it sees the LWT's).
    row = execute(
        session,
        "SELECT value FROM deployment_secrets WHERE name = ?",
        (name,),
        consistency="SERIAL",
    ).one()
    return bytes(row["value"])
