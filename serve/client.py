"""`ledgerflow upload FILE [--format F] [--wallet W] [--tz Z] [--watch] [--api URL] [--token T]`

Streams the file to POST /v1/uploads (never read whole into memory) and prints the job id; with
--watch, follows the job to its end (rich's live bars on a terminal, one line per change
otherwise), then prints what the file gave and where the rejected rows are. The token comes from --token or LEDGERFLOW_API_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from ingest.vocabulary import FINISHED, STAGES, JobStatus

DEFAULT_API = "http://127.0.0.1:8000"
TOKEN_ENV = "LEDGERFLOW_API_TOKEN"
CHUNK_BYTES = 1024 * 1024
POLL_SECONDS = 1.0


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


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


# What each stage counts (the web page says the same): parse the file's bytes, store the
# transactions written, prices the price windows, tax the transaction rows it writes.
STAGE_UNITS = {"parse": "bytes", "store": "rows", "prices": "price windows", "tax": "rows written"}


def amount_text(stage: str, done: int, total: int) -> str:
    if STAGE_UNITS.get(stage) == "bytes":
        return f"{human_bytes(done)} / {human_bytes(total)}"
    return f"{done:,} / {total:,} {STAGE_UNITS.get(stage, '')}".rstrip()


@dataclass(frozen=True)
class StageView:
    stage: str
    percent: int  # never lower than shown before; below 100 until the stage is done
    text: str  # "1.2 MB / 3.4 MB", "2,000 / 5,000 rows"


def stage_views(job: dict[str, Any], before: dict[str, int] | None = None) -> list[StageView]:
    """Each stage's share and counts with units. A stage's total grows as its parts start (the
    tax shards), so its share holds the highest seen (`before`) and stays below 100 until the
    stage is done: a bar that never goes back."""
    completed = set(job.get("completed_stages") or ())
    finished_ok = job.get("status") == JobStatus.SUCCEEDED
    stages = job.get("stages") or {}
    out = []
    for stage in STAGES:
        counts = stages.get(stage) or {}
        done, total = int(counts.get("done", 0)), int(counts.get("total", 0))
        if finished_ok or stage in completed:
            percent = 100
        else:
            share = min(99, int(100 * min(max(done / total, 0.0), 1.0))) if total > 0 else 0
            percent = max(share, (before or {}).get(stage, 0))
        out.append(StageView(stage, percent, amount_text(stage, done, total)))
    return out


def change_lines(job: dict[str, Any], views: list[StageView], shown: dict[str, str]) -> list[str]:
    """The lines to print on a plain output (not a terminal): one per stage or status that
    changed since `shown` (updated in place)."""
    lines = []
    status = f"job {job['job_id']} {job['status']}"
    if shown.get("status") != status:
        shown["status"] = status
        lines.append(status)
    for v in views:
        text = f"  {v.stage:<7}{v.percent:3d}%  {v.text}"
        if shown.get(v.stage) != text:
            shown[v.stage] = text
            lines.append(text)
    return lines


def _reasons(reasons: dict[str, int], limit: int = 3) -> str:
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:limit]
    more = len(reasons) - len(top)
    return "; ".join(f"{n:,} {r}" for r, n in top) + (f"; {more} more reasons" if more else "")


def format_result(job: dict[str, Any], api: str) -> str:
    """What the job did, in the words of the web page's upload summary."""
    s = job.get("import_summary")
    if s:
        label = "wallets" if len(s["wallets"]) > 1 else "wallet"
        wallets = f", {label} {', '.join(s['wallets'])}" if s["wallets"] else ""
        combined = (
            " (an export lists one trade as two or more rows: they make one transaction)"
            if s["rows_used"] > s["transactions"]
            else ""
        )
        lines = [
            f"{job['status']}: {s['new_transactions']:,} new transactions, "
            f"{s['already_present']:,} already stored",
            f"  {s['rows_read']:,} rows read as {s['format']}{wallets}",
            f"  {s['rows_used']:,} rows used, making {s['transactions']:,} transactions{combined}",
            f"  {s['skipped']:,} rows skipped (no tax effect)"
            + (f": {_reasons(s['skipped_reasons'])}" if s["skipped"] else ""),
            f"  {s['rejected']:,} rows rejected"
            + (f": {_reasons(s['rejected_reasons'])}" if s["rejected"] else ""),
        ]
    elif job.get("kind") == "recompute":
        lines = [
            f"{job['status']}: recomputed from {job.get('history_transactions') or 0:,} "
            "transactions"
        ]
    else:
        lines = [f"{job['status']}"]
    if job.get("rejected") or (s and s["skipped"]):
        lines.append(f"rejected and skipped rows: {api.rstrip('/')}{job['errors_url']}")
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
    """Follow the job to its end: a live display of one bar per stage on a terminal, one line
    per change otherwise (a log, a pipe: no redrawn blocks)."""
    if not out.isatty():
        return poll(client, job_id, lambda job, views: _print_changes(job, views, out, {}))
    console = Console(file=out)
    with Progress(
        TextColumn("{task.description:<7}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[text]}"),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    ) as bars:
        tasks = {str(s): bars.add_task(s, total=100, text="", status="") for s in STAGES}

        def show(job: dict[str, Any], views: list[StageView]) -> None:
            for v in views:
                status = job["status"] if v.stage == STAGES[0] else ""
                bars.update(tasks[v.stage], completed=v.percent, text=v.text, status=status)

        return poll(client, job_id, show)


def _print_changes(
    job: dict[str, Any], views: list[StageView], out: TextIO, shown: dict[str, str]
) -> None:
    for line in change_lines(job, views, shown):
        out.write(line + "\n")
    out.flush()


def poll(
    client: httpx.Client,
    job_id: str,
    show: Callable[[dict[str, Any], list[StageView]], None],
) -> dict[str, Any]:
    """GET the job every POLL_SECONDS until it ends, handing each state to `show`."""
    before: dict[str, int] = {}
    while True:
        resp = client.get(f"/v1/jobs/{job_id}")
        if resp.status_code != 200:
            raise RuntimeError(f"job status: {error_text(resp)}")
        job = resp.json()
        views = stage_views(job, before)
        before = {v.stage: v.percent for v in views}
        show(job, views)
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
