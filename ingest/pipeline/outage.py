"""A job that loses Cassandra quorum waits for it instead of failing.

With RF 3 and LOCAL_QUORUM, one node down is invisible to a job; with two down every request
fails with Unavailable (too few replicas alive for the consistency level). Retrying inside each
request (ingest/load/cassandra.py) covers a restart; past that budget the error reaches the job.
Then the job notes the error on its record at consistency ONE (the one live replica takes it),
polls until a quorum read of its record answers, and runs again: its stages resume from the
record's completed ones, and every write is an idempotent upsert, so nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from ingest.config import Settings
from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.pipeline.job_errors import user_text
from ingest.pipeline.watchdog import OUTAGE_NOTE

log = logging.getLogger(__name__)
T = TypeVar("T")

# Too few replicas alive (Unavailable), or not answering in time while the coordinator has not yet
# marked them down (WriteTimeout / ReadTimeout: "received only 1 responses"), or no node at all.
QUORUM_LOST = (
    "Unavailable",
    "WriteTimeout",
    "ReadTimeout",
    "WriteFailure",
    "ReadFailure",
    "NoHostAvailable",
)
POLL_S = 2.0


def _chain(exc: BaseException):
    """The exception, what it wraps (RayTaskError.cause) and its __cause__/__context__ chain."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]


def quorum_lost(exc: BaseException) -> str | None:
    """The Cassandra consistency failure behind `exc` (possibly inside Ray task errors), as one
    line naming it; None when `exc` is something else."""
    for e in _chain(exc):
        if type(e).__name__ in QUORUM_LOST:
            return f"{type(e).__name__}: {e}".replace("\n", " ")[:1000]
    text = repr(exc)
    if "consistency" in text:  # the cause did not survive pickling: find its name in the text
        for name in QUORUM_LOST:
            if name in text:
                at = text.index(name)
                return text[at : at + 400].replace("\n", " ")
    return None


def note(settings: Settings, job_id: uuid.UUID, reason: str) -> None:
    """Put the outage on the job record at consistency ONE (the live replica takes it): one
    short line naming the consistency failure (job_errors.user_text), the detail in the log."""
    message = user_text(f"{OUTAGE_NOTE}, waiting for replicas to return: {reason}")
    log.warning("job %s: %s", job_id, reason)
    try:
        jobs.set_error(get_session(settings), job_id, message, consistency="ONE", budget_s=10)
    except Exception as exc:  # no replica at all: the log line above must do
        log.warning("job %s: could not note the outage: %r", job_id, exc)


def wait_for_quorum(settings: Settings, job_id: uuid.UUID, reason: str, timeout: float) -> bool:
    """Poll a quorum read of the job's record until it answers (True) or `timeout` passes; the
    note on the record follows the reason (a first timeout becomes Unavailable once the
    coordinator has marked the replicas down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            jobs.get_job(get_session(settings), job_id, budget_s=0)
            return True
        except Exception as exc:  # still without quorum: keep waiting
            now = quorum_lost(exc) or f"{type(exc).__name__}: {exc}"[:1000]
            if now.split(":")[0] != reason.split(":")[0]:
                reason = now
                note(settings, job_id, reason)
        time.sleep(POLL_S)
    return False


def run_through_outages(settings: Settings, job_id: uuid.UUID, run: Callable[[], T]) -> T:
    """run(), again after each quorum outage it meets (noted on the job record meanwhile)."""
    while True:
        try:
            return run()
        except Exception as exc:
            reason = quorum_lost(exc)
            if reason is None:
                raise
            note(settings, job_id, reason)
            if not wait_for_quorum(settings, job_id, reason, settings.cassandra_outage_wait):
                raise
            jobs.set_error(get_session(settings), job_id, None)
            log.warning("job %s: Cassandra quorum is back; resuming", job_id)
