"""The upload application (served under /v1/uploads; its OpenAPI page is /v1/uploads/docs).

POST /v1/uploads streams the request body to storage chunk by chunk (raw CSV body, or the field
`file` of a multipart/form-data body through a streaming parser), hashing and counting it on the
way, then records the job and hands it to the pipeline's job supervisor.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import Depends, FastAPI, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ingest.corrections import store
from ingest.extract import storage
from ingest.extract.formats import FORMATS, SOURCES
from ingest.extract.formats.base import check_timezone
from ingest.extract.formats.mapped import NAME as MAPPED
from ingest.extract.formats.mapped import ColumnMapping
from ingest.load import jobs, queries
from ingest.load.cassandra import restart_deadline
from ingest.load.format_mappings import get_mapping
from ingest.load.uploads import UploadOptions
from ingest.pipeline.record_upload import DuplicateUpload, StoredFile, record_upload
from ingest.vocabulary import JobKind, JobStatus
from serve.auth import current_user
from serve.corrections_api import REFUSED, delete_upload_of, deleted_uploads, upload_item
from serve.deps import db, settings
from serve.errors import ApiError, install_error_handlers
from serve.models import (
    ERROR_RESPONSES,
    CorrectionAccepted,
    ErrorBody,
    Page,
    UploadAccepted,
    UploadItem,
)
from serve.page_tokens import (
    Limit,
    PageToken,
    decode_paging_state,
    encode_paging_state,
    list_scope,
    paged,
)
from serve.pages import install_local_docs
from serve.upload_stream import (
    CsvSink,
    MultipartFileReader,
    UploadRejected,
    body_limit,
    multipart_boundary,
    too_large,
)

log = logging.getLogger("ray.serve")  # lands in the replica's log file

# a source, one of its versions, or the user's own column mapping
FORMAT_NAMES = tuple(dict.fromkeys([*SOURCES, *FORMATS, MAPPED]))
DEFAULT_FILE_NAME = "upload.csv"
# Storage writes happen off the event loop, batched so a thread hop carries ~1 MiB, not 64 KiB.
WRITE_BATCH_BYTES = 1024 * 1024

UPLOAD_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "The CSV export: the raw body (Content-Type text/csv, application/csv, "
        "text/plain, application/octet-stream or application/vnd.ms-excel) or "
        "the form field `file` of a multipart/form-data body.",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    },
}

app = FastAPI(
    title="ledgerflow upload API",
    version="1",
    description="Upload exchange CSV exports. Every call needs "
    "`Authorization: Bearer <token>`. Jobs, data and reports: the query "
    "API's page at /docs.",
    docs_url=None,
    redoc_url=None,
)
install_error_handlers(app)
install_local_docs(app, "ledgerflow upload API")


def rejected(exc: UploadRejected) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def checked_format(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in FORMAT_NAMES:
        raise ApiError(
            400,
            "unknown_format",
            f"format must be one of {', '.join(FORMAT_NAMES)} (or omitted to detect it)",
        )
    return value


def checked_tz(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        check_timezone(value)  # the parser's own check: a zone accepted here parses
    except ValueError:
        raise ApiError(
            400, "unknown_tz", f"tz {value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)"
        ) from None
    return value


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


class StoredUpload:
    """The storage side of one upload: opens the output when the file's name is known, writes in
    batches off the event loop, deletes what it wrote if the upload does not complete."""

    def __init__(
        self,
        user_id: str,
        job_id: uuid.UUID,
        max_bytes: int,
        fmt: str | None = None,
        mapping: ColumnMapping | None = None,
    ) -> None:
        self.user_id = user_id
        self.fmt = fmt
        self.mapping = mapping
        self.job_id = job_id
        self.max_bytes = max_bytes
        self.file_name = DEFAULT_FILE_NAME
        self.uri: str | None = None
        self.sink: CsvSink | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    async def open(self, file_name: str | None) -> None:
        self.file_name = file_name or DEFAULT_FILE_NAME
        self.uri = storage.upload_uri(
            settings().uploads_uri, self.user_id, str(self.job_id), self.file_name
        )
        out = await run_in_threadpool(storage.open_output, self.uri)
        self.sink = CsvSink(out, self.max_bytes, self.fmt, self.mapping)

    async def add(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self._pending.append(piece)
            self._pending_bytes += len(piece)
        if self._pending_bytes >= WRITE_BATCH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._pending and self.sink is not None:
            data = b"".join(self._pending)
            self._pending, self._pending_bytes = [], 0
            await run_in_threadpool(self.sink.write, data)

    async def complete(self) -> CsvSink:
        if self.sink is None:
            raise UploadRejected(400, "empty_file", "the file is empty")
        await self.flush()
        self.sink.finish()
        await run_in_threadpool(self.sink.out.close)
        return self.sink

    async def discard(self) -> None:
        if self.sink is None or self.uri is None:
            return
        sink, uri = self.sink, self.uri

        def close_and_delete() -> None:
            try:
                sink.out.close()
            finally:
                storage.delete(uri)

        try:
            await run_in_threadpool(close_and_delete)
        except Exception:  # already gone, or storage down: leave it, log it
            log.warning("could not delete the partial upload %s", uri, exc_info=True)


async def receive_file(
    request: Request, upload: StoredUpload, boundary: bytes | None, raw_name: str | None
) -> CsvSink:
    """Stream the body into `upload`; returns the completed sink."""
    limit = body_limit(upload.max_bytes, boundary is not None)
    reader = MultipartFileReader(boundary) if boundary is not None else None
    if reader is None:
        await upload.open(raw_name)
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large(upload.max_bytes)
        if reader is None:
            await upload.add([chunk])
            continue
        pieces = reader.feed(chunk)
        if upload.sink is None and reader.found:
            await upload.open(reader.file_name or raw_name)
        await upload.add(pieces)
    if reader is not None:
        reader.finish()
    restart_deadline(settings().request_deadline)  # recording and hand-off: from the last byte
    return await upload.complete()


@app.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    openapi_extra=UPLOAD_BODY_DOC,
    summary="Upload a CSV export; answers with the job that processes it",
    responses={
        **ERROR_RESPONSES,
        413: {"model": ErrorBody, "description": "Too large"},
        409: {
            "model": ErrorBody,
            "description": "The same file was uploaded "
            "before with other options (the message names that job)",
        },
        415: {
            "model": ErrorBody,
            "description": "Unsupported content type, or no "
            "known header in the first 64 KiB (the message lists the formats "
            "known and the nearest match)",
        },
    },
)
@app.post("/", status_code=202, response_model=UploadAccepted, include_in_schema=False)
async def create_upload(
    request: Request,
    user_id: str = Depends(current_user),
    format: str | None = Query(
        None, description=f"One of {', '.join(FORMAT_NAMES)}; omitted: detected from the header row"
    ),
    wallet: str | None = Query(
        None,
        max_length=200,
        description="Wallet/account name for the rows (default: the exchange's name)",
    ),
    tz: str | None = Query(
        None,
        max_length=64,
        description="IANA time zone of zone-less timestamps (default UTC); a column that is UTC by "
        "its name or the exchange's documentation is never moved (GET /v1/formats: zoned)",
    ),
    name: str | None = Query(
        None,
        max_length=200,
        description="File name of a raw body (multipart bodies carry their own)",
    ),
) -> UploadAccepted:
    fmt, zone = checked_format(format), checked_tz(tz)
    max_bytes = settings().max_upload_bytes
    try:
        boundary = multipart_boundary(request.headers.get("content-type"))
        length = declared_length(request)
        if length is not None and length > body_limit(max_bytes, boundary is not None):
            raise too_large(max_bytes)  # before reading a byte
    except UploadRejected as exc:
        raise rejected(exc) from None

    job_id = uuid.uuid1()  # time-based, as create_job would choose: jobs_by_user sorts by it
    mapping = None
    if fmt == MAPPED:  # read with the mapping as saved now; the job keeps this copy
        mapping = await run_in_threadpool(get_mapping, db(), user_id)
        if mapping is None:
            raise ApiError(
                400,
                "no_mapping",
                "format 'mapped' needs your column mapping: save "
                "it first with PUT /v1/formats/mapping",
            )
    upload = StoredUpload(user_id, job_id, max_bytes, fmt, mapping)
    try:
        sink = await receive_file(request, upload, boundary, name)
        options = UploadOptions(fmt, wallet or None, zone)
        stored = StoredFile(upload.uri or "", upload.file_name, sink.sha256, sink.size)
        await run_in_threadpool(  # claims the file, records the job, hands it over
            record_upload,
            db(),
            settings(),
            job_id=job_id,
            user_id=user_id,
            file=stored,
            options=options,
            format_mapping=mapping.to_json() if mapping is not None else None,
            logger=log,
        )
    except DuplicateUpload as exc:
        await upload.discard()
        raise ApiError(409, "duplicate_file", str(exc)) from None
    except UploadRejected as exc:
        await upload.discard()
        raise rejected(exc) from None
    except ClientDisconnect:
        await upload.discard()
        raise ApiError(
            400, "client_disconnected", "the upload ended before its last byte"
        ) from None
    except BaseException:
        await upload.discard()
        raise
    return UploadAccepted(
        job_id=job_id,
        status=JobStatus.QUEUED,
        file_name=upload.file_name,
        size_bytes=sink.size,
        sha256=sink.sha256,
    )


# --- the uploads list and deleting one (issue 21: a delete_upload correction) -------------------
@app.get(
    "",
    response_model=Page[UploadItem],
    responses=ERROR_RESPONSES,
    summary="Your uploads, newest first, each with its counts and whether it is deleted",
    description="Lists your upload jobs (a page may hold fewer items than the limit: other "
    "jobs, recomputes and corrections, are read past).",
)
@app.get("/", response_model=Page[UploadItem], include_in_schema=False)
def list_uploads(
    user_id: str = Depends(current_user), limit: int = Limit, page_token: str | None = PageToken
) -> Page[UploadItem]:
    session = db()
    scope = list_scope("/v1/uploads", user_id)
    state = decode_paging_state(page_token, scope)
    page = paged(lambda: queries.user_jobs_page(session, user_id, limit, state), page_token)
    deleted = deleted_uploads(store.list_corrections(session, user_id))
    found = (jobs.get_job(session, row["job_id"]) for row in page.rows)
    return Page[UploadItem](
        items=[
            upload_item(job, deleted)
            for job in found
            if job is not None and job.kind == JobKind.UPLOAD
        ],
        next_page_token=encode_paging_state(page.paging_state, scope),
    )


@app.delete(
    "/{job_id}",
    status_code=202,
    response_model=CorrectionAccepted,
    responses={
        **REFUSED,
        409: {"model": ErrorBody, "description": "The upload is deleted already"},
    },
    summary="Delete an upload: its transactions leave your history, except those another "
    "upload also holds (a delete_upload correction, undoable like any other)",
)
def delete_upload(
    job_id: str = Path(description="The upload's job_id"), user_id: str = Depends(current_user)
) -> CorrectionAccepted:
    return delete_upload_of(db(), user_id, job_id)
