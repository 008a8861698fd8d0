"""One file, one set of options: the same bytes (SHA-256) from the same user are the same upload.

Uploaded again with the same options, a file adds no rows (its transaction ids are the same), so
that is allowed. With another wallet, tz or format its rows would get new ids and the history
would double: `claim` tells the caller which earlier job holds the file, to refuse the upload. The
claim is a lightweight transaction, so two concurrent uploads of one file cannot both take it. An
earlier job that failed (or was never recorded) does not hold its file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cassandra.cluster import Session

from ingest.load import jobs
from ingest.load.cassandra import execute

CLAIM = (
    "INSERT INTO uploads_by_sha (user_id, file_sha256, job_id, format, wallet, tz) "
    "VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
)
TAKE_OVER = (
    "UPDATE uploads_by_sha SET job_id = ?, format = ?, wallet = ?, tz = ? "
    "WHERE user_id = ? AND file_sha256 = ? IF job_id = ?"
)


@dataclass(frozen=True)
class UploadOptions:
    format: str | None
    wallet: str | None
    tz: str | None

    def stored(self) -> tuple[str, str, str]:
        return self.format or "", self.wallet or "", self.tz or ""

    @classmethod
    def from_row(cls, row: dict) -> UploadOptions:
        return cls(row["format"] or None, row["wallet"] or None, row["tz"] or None)

    def describe(self) -> str:
        return (
            f"format={self.format or 'detected'}, wallet={self.wallet or 'default'}, "
            f"tz={self.tz or 'UTC'}"
        )


@dataclass(frozen=True)
class EarlierUpload:
    job_id: uuid.UUID
    options: UploadOptions


def claim(
    session: Session, user_id: str, sha256: str, job_id: uuid.UUID, options: UploadOptions
) -> EarlierUpload | None:
    """Take the file for `job_id`; returns the earlier upload holding it with other options
    (None: taken, or held with the same options)."""
    for _ in range(3):  # a failed holder handed over under a race: look again
        row = execute(session, CLAIM, (user_id, sha256, job_id, *options.stored())).one()
        if row["[applied]"]:
            return None
        earlier = EarlierUpload(row["job_id"], UploadOptions.from_row(row))
        if earlier.options == options:
            return None
        holder = jobs.get_job(session, earlier.job_id)
        if holder is not None and holder.status != jobs.JobStatus.FAILED:
            return earlier
        taken = execute(
            session, TAKE_OVER, (job_id, *options.stored(), user_id, sha256, earlier.job_id)
        ).one()
        if taken["[applied]"]:
            return None
    return earlier
