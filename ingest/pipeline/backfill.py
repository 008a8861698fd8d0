"""`ledgerflow backfill --user U FILE...`: the upload pipeline without HTTP, e.g. as a Ray job.

Each file is copied to upload storage and recorded as an upload job the one way every upload
is (record_upload.py: the duplicate-file claim, the job, the hand-off to the supervisor with
retries), and watched to its end, one file after another (each job's tax stage then sees the files before it). As a Ray job, so it shows on the
dashboard's Jobs page with its driver log:

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        ledgerflow backfill --user alice exports/*.csv

Prints `job <id> recorded for <file>` first, a status line whenever it changes, and one final
line per job; exits 0 when every job succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import uuid
from pathlib import Path

from ingest.config import Settings, get_settings
from ingest.extract import storage
from ingest.load import jobs
from ingest.load.cassandra import close_all, get_session
from ingest.load.uploads import UploadOptions
from ingest.pipeline.record_upload import DuplicateUpload, StoredFile, record_upload
from ingest.vocabulary import FINISHED, STAGES, JobStatus

COPY_BYTES = 1024 * 1024
POLL_S = 1.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", type=Path, nargs="+", help="CSV exports, processed in order")
    parser.add_argument("--user", required=True, help="user id the rows belong to")
    parser.add_argument("--format", help="koinly | coinbase | binance | kraken (default: detect)")
    parser.add_argument("--wallet", help="wallet/account name for the rows")
    parser.add_argument("--tz", help="IANA time zone of timestamps without an offset")


def store_file(uploads_uri: str, user_id: str, job_id: uuid.UUID, path: Path) -> StoredFile:
    """Copy the file where uploads go, hashing and counting it."""
    uri = storage.upload_uri(uploads_uri, user_id, str(job_id), path.name)
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as src, storage.open_output(uri) as dst:
        while block := src.read(COPY_BYTES):
            digest.update(block)
            size += len(block)
            dst.write(block)
    return StoredFile(uri, path.name, digest.hexdigest(), size)


def backfill_file(
    session,
    settings: Settings,
    user_id: str,
    path: Path,
    *,
    fmt: str | None = None,
    wallet: str | None = None,
    tz: str | None = None,
    hand_over: bool = True,
) -> tuple[uuid.UUID, bool]:
    """Store the file and record its upload job (record_upload: DuplicateUpload when the same
    file was uploaded with other options; its copy is then deleted). Returns the job id and
    whether the supervisor acknowledged it."""
    job_id = uuid.uuid1()  # time-based, as create_job would choose: jobs_by_user sorts by it
    stored = store_file(settings.uploads_uri, user_id, job_id, path)
    try:
        acknowledged = record_upload(
            session,
            settings,
            job_id=job_id,
            user_id=user_id,
            file=stored,
            options=UploadOptions(fmt, wallet, tz),
            hand_over=hand_over,
        )
    except DuplicateUpload:
        storage.delete(stored.uri)
        raise
    return job_id, acknowledged


def status_line(job: jobs.JobRecord) -> str:
    stages = ",".join(s for s in STAGES if s in job.completed_stages) or "-"
    line = f"job {job.job_id} {job.status} stages done: {stages}"
    return f"{line}; error: {job.error}" if job.error else line


def watch(session, job_id: uuid.UUID, out=sys.stdout) -> jobs.JobRecord:
    """Poll the job record until the job ends, printing its status line when it changes. While
    Cassandra has lost quorum the record is read at ONE (the job notes the outage there)."""
    last = ""
    while True:
        try:
            job = jobs.get_job(session, job_id, budget_s=0)
        except Exception as exc:
            try:
                job = jobs.get_job(session, job_id, consistency="ONE", budget_s=0)
            except Exception:
                job = None
            if job is None:
                line = f"job {job_id}: Cassandra not answering ({type(exc).__name__}); waiting"
        if job is not None:
            line = status_line(job)
            if job.status in FINISHED:
                return job
        if line != last:
            print(line, file=out, flush=True)
            last = line
        time.sleep(POLL_S)


def run(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        print(f"ledgerflow backfill: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    settings = get_settings()  # the command's entry point
    session = get_session(settings)
    ok = True
    try:
        for path in args.files:
            try:
                job_id, acknowledged = backfill_file(
                    session,
                    settings,
                    args.user,
                    path,
                    fmt=args.format,
                    wallet=args.wallet,
                    tz=args.tz,
                )
            except DuplicateUpload as exc:
                print(f"ledgerflow backfill: {path}: {exc}", file=sys.stderr, flush=True)
                ok = False
                continue
            print(f"job {job_id} recorded for {path}", flush=True)
            if not acknowledged:
                print(
                    f"job {job_id}: the job supervisor did not acknowledge it; an upload "
                    "replica's periodic resume starts it",
                    flush=True,
                )
            job = watch(session, job_id)
            print(
                f"job {job_id} {job.status}: {path.name} accepted {job.accepted} rejected "
                f"{job.rejected}" + (f"; error: {job.error}" if job.error else ""),
                flush=True,
            )
            ok = ok and job.status == JobStatus.SUCCEEDED
    finally:
        close_all()  # before interpreter exit, or the driver's scheduler thread complains
    return 0 if ok else 1
