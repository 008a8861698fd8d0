"""HTTP measurements: a streamed upload timed from its last byte to the answer, job polling, and
read latency under concurrent clients (through the API, and straight through the driver)."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import numpy as np

UPLOAD_BLOCK_BYTES = 1 << 20


@dataclass
class UploadTiming:
    status: int
    body: Any
    send_s: float  # first byte of the body to last byte handed to the socket
    answer_s: float  # last byte sent -> response status line received
    total_s: float  # connection open -> answer
    started_wall: float  # time.time() when sending began


def _host(parts: SplitResult) -> str:
    if parts.hostname is None:
        raise ValueError(f"no host in URL {parts.geturl()!r}")
    return parts.hostname


def timed_upload(
    url: str, path: Path, headers: dict[str, str], timeout: float = 1800.0
) -> UploadTiming:
    """POST the file as a raw body (Content-Length, 1 MiB writes) and time the answer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(_host(parts), parts.port, timeout=timeout)
    size = path.stat().st_size
    try:
        t_open = time.perf_counter()
        conn.putrequest("POST", parts.path + (f"?{parts.query}" if parts.query else ""))
        for name, value in {
            "Content-Type": "text/csv",
            **headers,
            "Content-Length": str(size),
        }.items():
            conn.putheader(name, value)
        conn.endheaders()
        started_wall = time.time()
        t_first = time.perf_counter()
        try:
            with open(path, "rb") as f:
                while block := f.read(UPLOAD_BLOCK_BYTES):
                    conn.send(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (e.g. 4xx); its answer is read below
        t_last = time.perf_counter()
        resp = conn.getresponse()
        t_answer = time.perf_counter()
        raw = resp.read()
    finally:
        conn.close()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")[:2000]
    return UploadTiming(
        resp.status, body, t_last - t_first, t_answer - t_last, t_answer - t_open, started_wall
    )


def get_json(
    url: str, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(_host(parts), parts.port, timeout=timeout)
    try:
        conn.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {}
        )
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def post_json(url: str, payload: dict, timeout: float = 30.0) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(_host(parts), parts.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            parts.path,
            body=json.dumps(payload),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


# --- latency under concurrency ------------------------------------------------------------------
@dataclass
class LatencyResult:
    requests: int
    concurrency: int
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    wall_s: float


def summarize(
    latencies_s: list[float], errors: int, concurrency: int, wall_s: float
) -> LatencyResult:
    ms = np.array(latencies_s) * 1000 if latencies_s else np.array([np.nan])
    return LatencyResult(
        len(latencies_s),
        concurrency,
        errors,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        float(ms.mean()),
        float(ms.max()),
        wall_s,
    )


def api_latency(
    url: str,
    headers: dict[str, str],
    total: int,
    concurrency: int,
    check: Callable[[int, Any], bool],
) -> LatencyResult:
    """`total` GETs of `url` by `concurrency` keep-alive aiohttp clients; `check(status, body)`
    says whether an answer is a success (failures are counted, not timed)."""
    import aiohttp

    async def run() -> LatencyResult:
        latencies: list[float] = []
        errors = 0
        remaining = total

        async def client(session: aiohttp.ClientSession) -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with session.get(url, headers=headers) as resp:
                    body = await resp.json(content_type=None)
                    elapsed = time.perf_counter() - t0
                if check(resp.status, body):
                    latencies.append(elapsed)
                else:
                    errors += 1

        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return summarize(latencies, errors, concurrency, time.perf_counter() - started)

    return asyncio.run(run())


def threaded_latency(call: Callable[[], Any], total: int, concurrency: int) -> LatencyResult:
    """`total` calls of `call` by `concurrency` threads (e.g. driver reads on one shared
    Session)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            t0 = time.perf_counter()
            try:
                call()
            except Exception:
                with lock:
                    errors += 1
                continue
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return summarize(latencies, errors, concurrency, time.perf_counter() - started)
