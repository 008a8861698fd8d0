"""A user's corrections in Cassandra (table `corrections`, migration 012): record, list in
recorded order, undo (itself a recorded correction), the audit list; and which uploads hold each
stored row (from the history chunks, ingest/load/history_chunks.py), which deleting an upload
needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timezone

from cassandra.cluster import Session

from ingest.corrections.kinds import (
    FORMAT_VERSION,
    Correction,
    CorrectionError,
    DeleteUpload,
    Problem,
    Undo,
    change_from_json,
    change_to_json,
    problems,
    record,
)
from ingest.corrections.overlay import cancelled
from ingest.load import history_chunks
from ingest.load.cassandra import execute

INSERT = (
    "INSERT INTO corrections (user_id, correction_id, kind, version, body, recorded_by, "
    "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SELECT = (
    "SELECT correction_id, kind, version, body, recorded_by, recorded_at FROM corrections "
    "WHERE user_id = ?"
)


def put(session: Session, correction: Correction) -> None:
    """Record a correction; CorrectionError (naming the field) when it is not well formed.
    Checking it against the history (`kinds.problems_in_history`) is the caller's: it has it."""
    found = problems(correction.change)
    if found:
        raise CorrectionError(found)
    execute(
        session,
        INSERT,
        (
            correction.user_id,
            correction.correction_id,
            correction.change.kind,
            FORMAT_VERSION,
            change_to_json(correction.change),
            correction.recorded_by,
            correction.recorded_at,
        ),
    )


def list_corrections(session: Session, user_id: str) -> list[Correction]:
    """Every correction of the user (undos included) in recorded order: the overlay's input.
    A stored body that does not decode raises ValueError naming the correction: a correction is
    never skipped silently (the history would be wrong without saying so)."""
    out = []
    for row in execute(session, SELECT, (user_id,), fetch_size=1000):
        try:
            change = change_from_json(row["kind"], row["body"], row["version"])
        except ValueError as exc:
            raise ValueError(f"correction {row['correction_id']}: {exc}") from exc
        out.append(
            Correction(
                row["correction_id"],
                user_id,
                row["recorded_by"],
                row["recorded_at"].replace(tzinfo=timezone.utc),
                change,
            )
        )
    return out


def undo(session: Session, user_id: str, correction_id: uuid.UUID, *, by: str) -> Correction:
    """Record an Undo of one of the user's corrections (an Undo of an Undo restores its target);
    CorrectionError when the user has no such correction."""
    if not any(c.correction_id == correction_id for c in list_corrections(session, user_id)):
        raise CorrectionError([Problem("correction_id", f"no correction {correction_id}")])
    recorded = record(user_id, Undo(correction_id), by=by)
    put(session, recorded)
    return recorded


@dataclass(frozen=True, slots=True)
class AuditEntry:
    correction: Correction
    in_effect: bool  # False: undone (or an Undo that was itself undone)


def audit(session: Session, user_id: str) -> list[AuditEntry]:
    """The user's audit list, newest first: every correction with who and when, and whether it
    is in effect now."""
    recorded = list_corrections(session, user_id)
    gone = cancelled(recorded)
    return [AuditEntry(c, c.correction_id not in gone) for c in reversed(recorded)]


def uploads_of(
    session: Session, user_id: str, job_ids: Iterable[uuid.UUID]
) -> dict[str, frozenset[str]]:
    """tx_id -> ids (text) of the given uploads that hold it: `apply_corrections`' uploads_of.
    From the published history chunks (a chunk holds one upload's rows)."""
    wanted = {str(j) for j in job_ids}
    return {
        tx: held
        for tx, uploads in history_chunks.upload_holders(session, user_id).items()
        if (held := uploads & wanted)
    }


def deleted_upload_holders(
    session: Session, user_id: str, corrections: Sequence[Correction]
) -> dict[str, frozenset[str]]:
    """`apply_corrections`' uploads_of, for the rows of the uploads any of the corrections
    delete ({} when none does): tx_id -> every upload of the user holding it, so a row another
    upload also holds stays. Undone deletes count too: a correction job also applies the
    corrections in effect before it (CorrectedHistory: an undo's job compares the history with
    the delete to the one without), and without its rows' holders the delete took nothing out
    there, so the undo changed nothing and its rows' view rows were never written again."""
    deleted = {
        str(uuid.UUID(c.change.upload_id))
        for c in corrections
        if isinstance(c.change, DeleteUpload)
    }
    if not deleted:
        return {}
    return {
        tx: uploads
        for tx, uploads in history_chunks.upload_holders(session, user_id).items()
        if uploads & deleted
    }
