"""The one way an upload becomes a job, for every entry point (POST /v1/uploads, `ledgerflow
backfill`): the file, already in upload storage, is claimed by its SHA-256 (the same file with
other options would count its transactions twice: refused), the queued job is recorded, and it is
handed to the job supervisor with retries.

A job recorded is a job that runs: the hand-off waits for the supervisor's acknowledgement,
retrying with a fresh handle (a supervisor killed or unreachable at submit time is replaced);
after the last failed attempt the job stays recorded and active, and the upload replicas' periodic
resume starts it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from cassandra.cluster import Session

from ingest.config import Settings
from ingest.load import jobs
from ingest.load.cassandra import time_left
from ingest.load.uploads import EarlierUpload, UploadOptions, claim
from ingest.vocabulary import JobKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file in upload storage."""

    uri: str
    name: str
    sha256: str
    size: int


class DuplicateUpload(Exception):
    """The same file was uploaded before with other options."""

    def __init__(self, file: StoredFile, earlier: EarlierUpload, options: UploadOptions) -> None:
        self.earlier = earlier
        super().__init__(
            f"this file (sha256 {file.sha256[:12]}...) was uploaded before as job "
            f"{earlier.job_id} with {earlier.options.describe()}; uploading it again with "
            f"{options.describe()} would count its transactions twice. Upload it with the "
            "same options (adds nothing) or change the file"
        )


def record_upload(
    session: Session,
    settings: Settings,
    *,
    job_id: uuid.UUID,
    user_id: str,
    file: StoredFile,
    options: UploadOptions,
    format_mapping: str | None = None,
    logger: logging.Logger = log,
    hand_over: bool = True,
) -> bool:
    """Claim the file, record its queued upload job and hand it to the supervisor. Raises
    DuplicateUpload (nothing recorded); returns whether the supervisor acknowledged the job.
    ``hand_over=False``: the caller runs the job itself (a benchmark choosing its environment)."""
    earlier = claim(session, user_id, file.sha256, job_id, options)
    if earlier is not None:
        raise DuplicateUpload(file, earlier, options)
    jobs.create_job(
        session,
        job_id=job_id,
        user_id=user_id,
        kind=JobKind.UPLOAD,
        file_uri=file.uri,
        file_name=file.name,
        file_sha256=file.sha256,
        size_bytes=file.size,
        format=options.format,
        wallet=options.wallet,
        tz=options.tz,
        format_mapping=format_mapping,
    )
    return hand_off(job_id, settings, logger) if hand_over else False


def hand_off(job_id: uuid.UUID, settings: Settings, logger: logging.Logger = log) -> bool:
    """Give a recorded job to the job supervisor; True once it acknowledged. After the last failed
    attempt the job stays recorded and active, for the periodic resume (False). ``logger``: where
    failed attempts are told (a Serve replica's own log)."""
    import ray

    from ingest.pipeline.runner import submit_job

    for attempt in range(1, settings.job_handoff_attempts + 1):
        left = time_left()  # an HTTP request's deadline: the periodic resume takes over then
        if left is not None and left <= 0:
            break
        timeout = (
            settings.job_handoff_timeout
            if left is None
            else min(settings.job_handoff_timeout, left)
        )
        try:
            ray.get(submit_job(job_id), timeout=timeout)
            return True
        except Exception:  # the actor died, is unreachable, or its Cassandra read failed
            logger.warning("job %s: hand-off attempt %d failed", job_id, attempt, exc_info=True)
            pause = min(0.5 * 2 ** (attempt - 1), 5.0)
            time.sleep(pause if left is None else max(0.0, min(pause, time_left() or 0.0)))
    logger.error(
        "job %s recorded but not acknowledged; the periodic resume (every %.0f s) starts it",
        job_id,
        settings.job_resume_interval,
    )
    return False
