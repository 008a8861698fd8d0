"""A correction's recompute job (issue 21): the one way a recorded correction (or its undo)
reaches the figures, for every entry point (the corrections API, tests).

    correction, job_id = record_and_recompute(session, settings, user_id, change, by=user)
    undo, job_id = undo_and_recompute(session, settings, user_id, correction_id, by=user)

A correction job (JobKind.CORRECTION) is recorded like an upload's (GET /v1/jobs lists it) with
the ids of the corrections it applies in its record (`StageResults.corrections`), then handed to
the job supervisor (the runner's one path: retries, resume, a user's jobs one at a time). It runs
the tax stage only, incrementally: the corrections count as new rows of the assets they change at
the earliest time they change them (ingest/pipeline/tax/corrected.py), so only those assets
recompute, from the last valid checkpoint before then. When it ends, its record's
`summary.tax` names them: `recomputed_assets`, `corrections_touched` (asset -> earliest time),
`recompute_from` (the tax-year start it resumed from; null: the first row) and
`corrections_unapplied` (corrections in effect that changed nothing, with why).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pyarrow as pa
from cassandra.cluster import Session

from ingest.config import Settings
from ingest.corrections import store
from ingest.corrections.kinds import Change, Correction, TxFacts, facts_of, record
from ingest.load import jobs
from ingest.pipeline.context import SessionFactory
from ingest.pipeline.record_upload import hand_off
from ingest.pipeline.results import StageResults
from ingest.pipeline.tax.cassandra import corrected_history
from ingest.vocabulary import JobKind


def start_recompute(
    session: Session,
    settings: Settings,
    user_id: str,
    correction_ids: Sequence[uuid.UUID],
    *,
    hand_over: bool = True,
) -> uuid.UUID:
    """Record the correction job applying ``correction_ids`` (already stored) and hand it to the
    supervisor (``hand_over=False``: the caller runs it). Returns its job id."""
    summary = StageResults(corrections=list(correction_ids)).model_dump(
        mode="json", exclude_none=True
    )
    job_id = jobs.create_job(session, user_id=user_id, kind=JobKind.CORRECTION, summary=summary)
    if hand_over:
        hand_off(job_id, settings)
    return job_id


def record_and_recompute(
    session: Session,
    settings: Settings,
    user_id: str,
    change: Change,
    *,
    by: str,
    hand_over: bool = True,
) -> tuple[Correction, uuid.UUID]:
    """Store a correction (CorrectionError naming each bad field when it is not well formed)
    and start its job. Checking it against the history first is the caller's
    (`kinds.require_valid(change, history_facts(...), ...)`)."""
    correction = record(user_id, change, by=by)
    store.put(session, correction)
    return correction, start_recompute(
        session, settings, user_id, [correction.correction_id], hand_over=hand_over
    )


def undo_and_recompute(
    session: Session,
    settings: Settings,
    user_id: str,
    correction_id: uuid.UUID,
    *,
    by: str,
    hand_over: bool = True,
) -> tuple[Correction, uuid.UUID]:
    """Record an Undo of one of the user's corrections (CorrectionError when there is no such
    correction) and start its job."""
    undo = store.undo(session, user_id, correction_id, by=by)
    return undo, start_recompute(
        session, settings, user_id, [undo.correction_id], hand_over=hand_over
    )


def corrected_rows(settings: Settings, user_id: str) -> pa.Table:
    """The user's whole history as the tax stage sees it (corrections applied)."""
    history = corrected_history(SessionFactory(settings), user_id)
    return history.read(history.months())


def history_facts(settings: Settings, user_id: str) -> dict[str, TxFacts]:
    """tx_id -> TxFacts of the corrected history: what `kinds.problems_in_history` checks a new
    correction against (reads the whole history: one correction at a time)."""
    return facts_of(corrected_rows(settings, user_id))
