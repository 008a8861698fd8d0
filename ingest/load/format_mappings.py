"""Each user's saved column mapping of a generic CSV (`?format=mapped`)."""

from __future__ import annotations

from cassandra.cluster import Session

from ingest.extract.formats.mapped import ColumnMapping
from ingest.load.cassandra import execute
from ingest.load.jobs import now


def get_mapping(session: Session, user_id: str) -> ColumnMapping | None:
    row = execute(
        session, "SELECT mapping FROM format_mappings WHERE user_id = ?", (user_id,)
    ).one()
    return ColumnMapping.from_json(row["mapping"]) if row and row["mapping"] else None


def put_mapping(session: Session, user_id: str, mapping: ColumnMapping) -> None:
    problems = mapping.errors()
    if problems:  # never store a mapping every later upload would fail with
        raise ValueError("; ".join(problems))
    execute(
        session,
        "INSERT INTO format_mappings (user_id, mapping, updated_at) VALUES (?, ?, ?)",
        (user_id, mapping.to_json(), now()),
    )
