"""What a failed job tells its user: a short, stable message and an error code, never internals.

A job's `error` is read by the user through GET /v1/jobs/{id}; it must not hold a traceback, file
paths, a worker's address or terminal colour codes. `describe` maps an exception to one entry of
the catalogue below; `record` logs the full traceback (worker log, so the Ray dashboard shows it)
and returns what is stored. Deterministic errors (a ValueError: the file or the options are wrong)
are not worth a retry; `TRANSIENT_ERRORS` is the retry policy of the pipeline's Ray tasks.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from cassandra import OperationTimedOut, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from ray.exceptions import UnserializableException

from ingest.pipeline.watchdog import STALL_CODE

log = logging.getLogger(__name__)

# Worth a retry: the network, Cassandra timeouts/unavailability, storage. A ValueError (a bad file,
# bad settings) or a rejected query is not. (Ray retries crashed workers whatever this says.)
TRANSIENT_ERRORS: list[type[BaseException]] = [
    OSError,
    RequestExecutionException,
    OperationTimedOut,
    NoHostAvailable,
    ConnectionException,
]

MESSAGE_CHARS = 500
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class JobFailure:
    code: str
    message: str


# the fixed messages
STORAGE_UNAVAILABLE = (
    "the database or the file storage was unavailable; the job stopped and can "
    "be started again by uploading the file again"
)
INTERNAL = (
    "internal error while processing the job; the operators can find it in the server logs "
    "under the job id"
)
# code -> fixed message (None: the message is the error's own, written for the user)
CATALOGUE: dict[str, str | None] = {
    "invalid_input": None,  # ValueError/FormatError: the file or its options (tz, settings)
    "storage_unavailable": STORAGE_UNAVAILABLE,
    "internal": INTERNAL,
    STALL_CODE: None,  # no progress past the watchdog's limit, restarts exhausted (watchdog.py)
}


def root_cause(exc: BaseException) -> BaseException:
    """The exception a Ray task raised, through RayTaskError wrappers (ray.get re-raises a task's
    error wrapped; its str() holds the remote traceback)."""
    seen = 0
    while (cause := getattr(exc, "cause", None)) is not None and seen < 10:
        exc, seen = cause, seen + 1
    return exc


def user_text(text: str) -> str:
    """One clean line: no colour codes, nothing past the first line, bounded."""
    line = _ANSI.sub("", text).strip().splitlines()[0] if text.strip() else ""
    return line[:MESSAGE_CHARS]


def describe(exc: BaseException) -> JobFailure:
    cause = root_cause(exc)
    if isinstance(cause, ValueError) and not _looks_internal(str(cause)):
        return JobFailure(
            "invalid_input", user_text(str(cause)) or "the file or its options are invalid"
        )
    if isinstance(cause, tuple(TRANSIENT_ERRORS)) or _transient_in_text(cause):
        return JobFailure("storage_unavailable", STORAGE_UNAVAILABLE)
    return JobFailure("internal", INTERNAL)


# The Cassandra driver's errors do not survive Ray's pickling: the job supervisor gets
# ray.exceptions.UnserializableException, which keeps only the original's text (seen: a job's
# WriteTimeout at LOCAL_QUORUM reached it so). The text names the driver's class.
_TRANSIENT_NAMED = re.compile(
    r"\bcassandra\.(?:\w+\.)*(?:Unavailable|ReadTimeout|WriteTimeout|ReadFailure|WriteFailure|"
    r"OperationTimedOut|NoHostAvailable|ConnectionException)\b"
)


def _transient_in_text(cause: BaseException) -> bool:
    return isinstance(cause, UnserializableException) and bool(_TRANSIENT_NAMED.search(str(cause)))


def _looks_internal(text: str) -> bool:
    return "Traceback" in text or 'File "' in text


def record(job_id: uuid.UUID, exc: BaseException) -> JobFailure:
    """Log the whole failure for the operators; return what the user sees."""
    failure = describe(exc)
    log.error("job %s failed (%s)", job_id, failure.code, exc_info=exc)
    return failure
