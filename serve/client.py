"""`ledgerflow upload FILE [--format F] [--wallet W] [--tz Z] [--watch] [--api URL] [--token T]`

Streams the file to POST /v1/uploads (never read whole into memory) and prints the job id; with
--watch, redraws a progress bar per stage until the job ends, then prints the counts and where
the rejected rows are. The token comes from --token or LEDGERFLOW_API_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import httpx

from ingest.vocabulary import FINISHED, STAGES, JobStatus

DEFAULT_API = "http://127.0.0.1:8000"
TOKEN_ENV = "LEDGERFLOW_API_TOKEN"
CHUNK_BYTES = 1024 * 1024
POLL_SECONDS = 1.0
BAR_WIDTH = 30


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="CSV export to upload")
    parser.add_argument("--format", help="koinly | coinbase | binance | kraken (default: detect)")
    parser.add_argument("--wallet", help="wallet/account name for the rows")
    parser.add_argument("--tz", help="IANA time zone of timestamps without an offset")
    parser.add_argument("--watch", action="store_true", help="show progress until the job ends")
    parser.add_argument("--api", default=DEFAULT_API, help=f"API base URL (default {DEFAULT_API})")
    parser.add_argument("--token", help=f"API token (default: ${TOKEN_ENV})")


# --- pure formatting ---------------------------------------------------------------------------
def human_count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def progress_bar(done: int, total: int, width: int = BAR_WIDTH, complete: bool = False) -> str:
    """`[#######-------]  47%`; a completed stage is full whatever its counts say."""
    fraction = 1.0 if complete else (min(max(done / total, 0.0), 1.0) if total > 0 else 0.0)
    filled = int(round(fraction * width))
    return f"[{'#' * filled}{'-' * (width - filled)}] {int(fraction * 100):3d}%"


def format_progress(job: dict[str, Any], width: int = BAR_WIDTH) -> str:
    """The job's status line and one bar per stage (parse counts bytes, the others rows)."""
    completed = set(job.get("completed_stages") or ())
    finished_ok = job.get("status") == JobStatus.SUCCEEDED
    lines = [f"job {job['job_id']}  {job['status']}"]
    stages = job.get("stages") or {}
    for stage in STAGES:
        counts = stages.get(stage) or {"done": 0, "total": 0}
        done, total = int(counts.get("done", 0)), int(counts.get("total", 0))
        bar = progress_bar(done, total, width, complete=finished_ok or stage in completed)
        lines.append(f"  {stage:<7}{bar}  {human_count(done)}/{human_count(total)}")
    return "\n".join(lines)


def format_result(job: dict[str, Any], api: str) -> str:
    lines = [f"{job['status']}: {job['accepted']} rows accepted, {job['rejected']} rejected"]
    if job.get("rejected"):
        lines.append(f"rejected rows: {api.rstrip('/')}{job['errors_url']}")
    if job.get("error"):
        lines.append(f"error: {job['error']}")
    lines += [f"note: {note}" for note in job.get("notes") or ()]
    return "\n".join(lines)


# --- shell -------------------------------------------------------------------------------------
def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def error_text(resp: httpx.Response) -> str:
    try:
        err = resp.json()["error"]
        return f"{resp.status_code} {err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{resp.status_code}: {resp.text[:200]}"


def upload(client: httpx.Client, path: Path, params: dict[str, str]) -> str:
    """POST the file as a raw text/csv body, streamed; returns the job id."""
    headers = {"Content-Type": "text/csv", "Content-Length": str(path.stat().st_size)}
    resp = client.post(
        "/v1/uploads",
        params={**params, "name": path.name},
        headers=headers,
        content=file_chunks(path),
        timeout=httpx.Timeout(30.0, write=None),
    )
    if resp.status_code != 202:
        raise RuntimeError(f"upload refused: {error_text(resp)}")
    return resp.json()["job_id"]


def watch(client: httpx.Client, job_id: str, out: TextIO) -> dict[str, Any]:
    """Redraw the bars until the job ends (in place on a terminal, on change otherwise)."""
    shown, lines_shown = "", 0
    while True:
        resp = client.get(f"/v1/jobs/{job_id}")
        if resp.status_code != 200:
            raise RuntimeError(f"job status: {error_text(resp)}")
        job = resp.json()
        text = format_progress(job)
        if text != shown:
            if out.isatty() and lines_shown:
                out.write(f"\x1b[{lines_shown}F\x1b[J")  # back to the block's first line, clear
            out.write(text + "\n")
            out.flush()
            shown, lines_shown = text, text.count("\n") + 1
        if job["status"] in FINISHED:
            return job
        time.sleep(POLL_SECONDS)


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(
            f"no API token: pass --token or set {TOKEN_ENV} (`ledgerflow token create USER`)",
            file=sys.stderr,
        )
        return 2
    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    params = {
        k: v for k, v in (("format", args.format), ("wallet", args.wallet), ("tz", args.tz)) if v
    }
    with httpx.Client(
        base_url=args.api, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    ) as client:
        job_id: str | None = None
        try:
            job_id = upload(client, args.file, params)
            print(f"job {job_id}")
            if not args.watch:
                return 0
            job = watch(client, job_id, sys.stdout)
        except KeyboardInterrupt:
            print(
                "stopped watching; the job goes on" if job_id else "upload interrupted",
                file=sys.stderr,
            )
            return 130
        except (RuntimeError, httpx.HTTPError) as exc:
            print(str(exc) or type(exc).__name__, file=sys.stderr)
            return 1
    print(format_result(job, args.api))
    return 0 if job["status"] == JobStatus.SUCCEEDED else 1
