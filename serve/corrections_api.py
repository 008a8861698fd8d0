"""Corrections over HTTP (issue 21): record one (POST /v1/corrections), undo one
(POST /v1/corrections/{id}/undo), the audit list (GET /v1/corrections) on the query application;
the uploads list and deleting an upload (GET /v1/uploads, DELETE /v1/uploads/{job_id}) on the
upload application, whose routes live under /v1/uploads (serve_config.yaml).

Every accepted correction is recorded (ingest/corrections/store.py) and starts the job that
recomputes what it changes. Checked first on its own (422 naming each field), then against the
user's history as it is now (ingest/corrections/current.py): a transaction the history does not
hold, another user's included, is a 404 naming the field; what does not fit the transaction is a
422; undoing a correction that is undone already is a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from cassandra.cluster import Session
from fastapi import APIRouter, Depends, Path

from ingest.corrections import store
from ingest.corrections.current import (
    CurrentHistory,
    conflicts,
    current_of,
    missing_targets,
    targets,
)
from ingest.corrections.describe import summary
from ingest.corrections.kinds import (
    Change,
    Correction,
    DeleteUpload,
    Problem,
    Undo,
    problems,
    problems_in_history,
    recorded_change,
)
from ingest.corrections.overlay import active, cancelled
from ingest.load import jobs, queries
from ingest.vocabulary import JobKind
from serve.auth import current_user
from serve.deps import db
from serve.errors import ApiError
from serve.models import (
    ERROR_RESPONSES,
    CorrectionAccepted,
    CorrectionItem,
    CorrectionRequest,
    ErrorBody,
    Page,
    UploadItem,
    change_of,
)
from serve.page_tokens import (
    Limit,
    PageToken,
    decode_paging_state,
    encode_paging_state,
    invalid_token,
    list_scope,
)
from serve.pipeline_link import corrected_facts, record_correction, record_undo

router = APIRouter()  # the query application's; the upload routes are in upload_api.py

REFUSED = {
    **ERROR_RESPONSES,
    404: {"model": ErrorBody, "description": "A transaction or correction you do not have"},
    422: {
        "model": ErrorBody,
        "description": "The correction is refused: `fields` lists [{field, message}] beside "
        "`error`, one per problem",
    },
}


def refused(status: int, code: str, found: Sequence[Problem]) -> ApiError:
    return ApiError(
        status,
        code,
        "; ".join(str(p) for p in found),
        fields=[{"field": p.field, "message": p.message} for p in found],
    )


def accept(user_id: str, change: Change) -> CorrectionAccepted:
    """Record the (checked) change and start the job that recomputes what it changes."""
    correction, job_id = record_correction(user_id, change)
    return CorrectionAccepted(correction_id=correction.correction_id, job_id=job_id)


def checked(
    change: Change,
    now: CurrentHistory,
    recorded: Sequence[Correction],
    uploads: frozenset[str] = frozenset(),
) -> None:
    """Raise the answer to a change that cannot be recorded (module docstring)."""
    found = problems(change)
    if found:
        raise refused(422, "invalid_request", found)
    missing = missing_targets(change, now)
    if missing:
        raise refused(404, "not_found", missing)
    found = conflicts(change, now) or problems_in_history(
        change, now.facts, recorded, uploads=uploads
    )
    if found:
        raise refused(422, "invalid_request", found)


@router.post(
    "/v1/corrections",
    status_code=202,
    response_model=CorrectionAccepted,
    responses=REFUSED,
    summary="Record a correction of your history; answers with the job that recomputes it",
    description="The body is one kind's fields with its `kind`: edit (type, label, fiat value "
    "of a transaction), cost_basis (of a deposit from outside your wallets), ignore (or "
    "un-ignore with ignored=false), mark_transfer / unmark_transfer (a withdrawal and a deposit "
    "are / are not one transfer between your wallets), add (a transaction by hand), "
    "delete_added (one added by hand), rename_wallet (also merges two names of one account). "
    "Transactions are named by their tx_id (GET /v1/transactions).",
)
def post_correction(
    body: CorrectionRequest,
    user_id: str = Depends(current_user),
) -> CorrectionAccepted:
    change = change_of(body)
    session = db()
    found = problems(change)
    if found:  # before reading the history
        raise refused(422, "invalid_request", found)
    recorded = store.list_corrections(session, user_id)
    checked(change, current_of(corrected_facts(user_id), recorded), recorded)
    return accept(user_id, change)


def parsed_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, "not_found", f"no {what} {value}") from None


@router.post(
    "/v1/corrections/{correction_id}/undo",
    status_code=202,
    response_model=CorrectionAccepted,
    responses={
        **REFUSED,
        409: {"model": ErrorBody, "description": "The correction is undone already"},
    },
    summary="Undo a correction (undoing an undo restores what it undid)",
)
def undo_correction(
    correction_id: str = Path(description="correction_id of the audit list"),
    user_id: str = Depends(current_user),
) -> CorrectionAccepted:
    key = parsed_id(correction_id, "correction")
    session = db()
    recorded = store.list_corrections(session, user_id)
    if not any(c.correction_id == key for c in recorded):
        raise ApiError(404, "not_found", f"no correction {correction_id}")
    if key in cancelled(recorded):
        raise ApiError(409, "already_undone", f"correction {correction_id} is undone already")
    undo, job_id = record_undo(user_id, key)
    return CorrectionAccepted(correction_id=undo.correction_id, job_id=job_id)


def unapplied_now(session: Session, user_id: str) -> dict[str, str]:
    """Corrections in effect that changed nothing, as the user's latest finished tax stage
    found them (correction id -> why; the job's tax result `corrections_unapplied`)."""
    for row in queries.user_jobs_page(session, user_id, 20, None).rows:
        job = jobs.get_job(session, row["job_id"])
        tax = (job.summary.get("tax") or {}) if job is not None else {}
        if job is not None and job.status == "succeeded" and tax:
            return dict(tax.get("corrections_unapplied") or {})
    return {}


def corrections_page(
    entries: Sequence[store.AuditEntry], limit: int, after: uuid.UUID | None
) -> tuple[list[store.AuditEntry], uuid.UUID | None]:
    """A page of the audit list (newest first) after correction `after`, and the last id shown
    when more follow."""
    start = 0
    if after is not None:
        start = next(
            (i + 1 for i, e in enumerate(entries) if e.correction.correction_id == after), None
        )  # type: ignore[assignment]
        if start is None:  # a token's correction is never deleted: not one of this list
            raise invalid_token()
    page = list(entries[start : start + limit])
    more = start + limit < len(entries)
    return page, page[-1].correction.correction_id if more and page else None


@router.get(
    "/v1/corrections",
    response_model=Page[CorrectionItem],
    summary="Your corrections, newest first (the audit list), each with who, when and a summary",
)
def list_corrections(
    user_id: str = Depends(current_user), limit: int = Limit, page_token: str | None = PageToken
) -> Page[CorrectionItem]:
    session = db()
    scope = list_scope("/v1/corrections", user_id)
    state = decode_paging_state(page_token, scope)
    after = uuid.UUID(bytes=state) if state is not None and len(state) == 16 else None
    if state is not None and after is None:
        raise invalid_token()
    entries = store.audit(session, user_id)
    page, last = corrections_page(entries, limit, after)
    recorded = {e.correction.correction_id: e.correction for e in entries}
    named = any(targets(e.correction.change) or isinstance(e.correction.change, Undo) for e in page)
    facts = corrected_facts(user_id) if named else {}
    unapplied = unapplied_now(session, user_id)
    return Page[CorrectionItem](
        items=[
            CorrectionItem(
                correction_id=e.correction.correction_id,
                kind=e.correction.change.kind,
                change=recorded_change(e.correction),
                summary=summary(e.correction.change, facts, recorded),
                recorded_by=e.correction.recorded_by,
                recorded_at=e.correction.recorded_at,
                undone=not e.in_effect,
                unapplied=unapplied.get(str(e.correction.correction_id)) if e.in_effect else None,
            )
            for e in page
        ],
        next_page_token=encode_paging_state(last.bytes if last else None, scope),
    )


# --- what the upload application's /v1/uploads routes use (upload_api.py) -----------------------
def deleted_uploads(recorded: Sequence[Correction]) -> set[str]:
    return {c.change.upload_id for c in active(recorded) if isinstance(c.change, DeleteUpload)}


def upload_item(job: jobs.JobRecord, deleted: set[str]) -> UploadItem:
    ingest = job.summary.get("ingest") or {}
    return UploadItem(
        job_id=job.job_id,
        filename=job.file_name,
        source_format=ingest.get("format") or job.detected_format or job.format,
        rows_accepted=job.accepted,
        rows_rejected=job.rejected,
        uploaded_at=job.created_at,
        status=job.status,
        deleted=str(job.job_id) in deleted,
    )


def delete_upload_of(session: Session, user_id: str, job_id: str) -> CorrectionAccepted:
    """Record a delete_upload correction of the user's upload `job_id` (404: not theirs; 409:
    deleted already) and start its job."""
    key = parsed_id(job_id, "upload")
    job = jobs.get_job(session, key)
    if job is None or job.user_id != user_id or job.kind != JobKind.UPLOAD:
        raise ApiError(404, "not_found", f"no upload {job_id}")
    recorded = store.list_corrections(session, user_id)
    if str(key) in deleted_uploads(recorded):
        raise ApiError(409, "already_deleted", f"upload {job_id} is deleted already")
    change = DeleteUpload(str(key))
    checked(change, CurrentHistory({}, frozenset()), recorded, frozenset({str(key)}))
    return accept(user_id, change)
