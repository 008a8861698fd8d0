"""Parse + store stages of one upload: a map/reduce over the stored file.

map    parse_chunk_task x chunks     bytes of one row-aligned range -> legs, split into P partitions
reduce store_partition_task x P      legs of one partition from every chunk -> canonical rows
                                     (trades combined, ids assigned) -> raw_transactions
Rows that must be combined (a Binance trade's rows, a Kraken refid) or compared for identity
(identical rows) share a partition key, so they meet in one reduce task wherever they were parsed.
Memory per task is bounded by the chunk size and P, not the file size.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import ray

from ingest.config import get_settings
from ingest.extract import storage
from ingest.extract.chunking import (ByteRange, FileLayout, adaptive_chunk_bytes, inspect_file,
                                     plan_chunks, read_range)
from ingest.extract.formats.base import check_timezone
from ingest.extract.parse import ParseContext, RejectedRow, finalize_partition, parse_chunk, partition_legs
from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.load.transactions import store_transactions
from ingest.observe import metrics
from ingest.pipeline.placement import stage_options
from ingest.prices.valuation import price_needs

STORE_SLICE_ROWS = 5000   # progress is reported after each slice


@dataclass
class ChunkStats:
    rows: int
    rejected: int
    skipped: int


@dataclass
class PartitionStats:
    accepted: int
    rejected: int
    skipped: int
    # asset -> (earliest, latest) timestamp (epoch seconds) among this partition's rows
    asset_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # asset -> distinct days (epoch day numbers) with rows needing a fetched price
    price_days: dict[str, set[int]] = field(default_factory=dict)


def _store_rejected(session, job_id: uuid.UUID, rejected: list[RejectedRow]) -> int:
    """Store rejected rows and deliberately skipped ones (fiat-only rows, internal transfers...:
    reason prefixed 'skipped: ', so nothing leaves silently). Returns the count of real errors."""
    if rejected:
        jobs.write_rejected(session, job_id, [
            (r.line, f"skipped: {r.reason}" if r.skipped else r.reason, r.raw) for r in rejected])
    return sum(1 for r in rejected if not r.skipped)


@ray.remote(num_cpus=1, max_retries=4, retry_exceptions=True)
@metrics.in_flight("parse")
def parse_chunk_task(job_id: uuid.UUID, file_uri: str, layout: FileLayout, byte_range: ByteRange,
                     ctx: ParseContext, n_parts: int):
    with storage.open_input(file_uri) as f:
        data = read_range(f, byte_range)
    result = parse_chunk(data, layout, byte_range.first_line, ctx)
    session = get_session()
    errors = _store_rejected(session, job_id, result.rejected)
    jobs.set_progress(session, job_id, "parse", byte_range.index, byte_range.end - byte_range.start,
                      byte_range.end - byte_range.start)
    parts = partition_legs(result.legs, n_parts)
    metrics.rows(parsed=result.rows, rejected=errors)
    return (ChunkStats(result.rows, errors, len(result.rejected) - errors), *parts)


def _asset_ranges(table: pa.Table) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    ts = pc.divide(table.column("timestamp").cast(pa.int64()), 1_000_000)
    for col in ("sent_asset", "received_asset", "fee_asset"):
        t = pa.table({"asset": table.column(col), "ts": ts}).filter(pc.is_valid(table.column(col)))
        if t.num_rows == 0:
            continue
        agg = t.group_by("asset").aggregate([("ts", "min"), ("ts", "max")])
        for asset, lo, hi in zip(agg["asset"].to_pylist(), agg["ts_min"].to_pylist(),
                                 agg["ts_max"].to_pylist()):
            old = out.get(asset)
            out[asset] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    return out


def _price_days(table: pa.Table) -> dict[str, set[int]]:
    needs = price_needs(table, currency=get_settings().fiat_currency)
    if needs.num_rows == 0:
        return {}
    days = pc.divide(needs.column("ts").cast(pa.int64()), 86_400_000_000)
    agg = pa.table({"asset": needs.column("asset"), "day": days}).group_by(["asset", "day"]).aggregate([])
    out: dict[str, set[int]] = {}
    for asset, day in zip(agg["asset"].to_pylist(), agg["day"].to_pylist()):
        out.setdefault(asset, set()).add(int(day))
    return out


@ray.remote(num_cpus=1, max_retries=4, retry_exceptions=True)
@metrics.in_flight("store")
def store_partition_task(job_id: uuid.UUID, part: int, layout: FileLayout, ctx: ParseContext,
                         *legs: pa.Table) -> PartitionStats:
    table, rejected = finalize_partition(pa.concat_tables(legs), layout, ctx)
    session = get_session()
    errors = _store_rejected(session, job_id, rejected)
    total = table.num_rows
    jobs.set_progress(session, job_id, "store", part, 0, total)
    for start in range(0, total, STORE_SLICE_ROWS):
        store_transactions(session, table.slice(start, STORE_SLICE_ROWS), job_id)
        jobs.set_progress(session, job_id, "store", part, min(total, start + STORE_SLICE_ROWS), total)
    metrics.rows(stored=total, rejected=errors)
    return PartitionStats(accepted=total, rejected=errors, skipped=len(rejected) - errors,
                          asset_ranges=_asset_ranges(table),
                          price_days=_price_days(table))


@dataclass
class IngestSummary:
    format: str
    rows: int
    accepted: int
    rejected: int
    skipped: int
    asset_ranges: dict[str, tuple[float, float]]
    price_days: dict[str, list[int]]


def run_ingest(job: jobs.JobRecord, parallelism: int) -> IngestSummary:
    """Parse and store one uploaded file. Raises FormatError for a file that is not a known CSV."""
    settings = get_settings()
    session = get_session()
    if job.tz:
        check_timezone(job.tz)  # one clear error instead of one per chunk
    size = storage.size_of(job.file_uri)
    with storage.open_input(job.file_uri) as f:
        layout = inspect_file(f, size, job.format)
        jobs.set_detected_format(session, job.job_id, layout.format)
        f.seek(layout.data_start)
        sample = f.read(256 * 1024)
        target = settings.chunk_bytes or adaptive_chunk_bytes(layout, sample, parallelism)
        f.seek(0)
        ranges = plan_chunks(f, layout, target)
    ctx = ParseContext(user_id=job.user_id, source_file=job.file_name or "upload.csv",
                       wallet=job.wallet, tz=job.tz)
    if not ranges:  # a header and nothing else: a valid, empty upload
        jobs.mark_stage_done(session, job.job_id, "parse", 0.0)
        return IngestSummary(layout.format, 0, 0, 0, 0, {}, {})
    n_parts = len(ranges)
    for stage in ("parse", "store"):
        jobs.clear_progress(session, job.job_id, stage)
    for r in ranges:
        jobs.set_progress(session, job.job_id, "parse", r.index, 0, r.end - r.start)

    started = time.monotonic()
    chunk_outputs = [parse_chunk_task.options(num_returns=n_parts + 1,
                                              name=f"parse:{job.job_id}:{r.index}",
                                              **stage_options("parse")).remote(
        job.job_id, job.file_uri, layout, r, ctx, n_parts) for r in ranges]
    stats_refs = [out[0] for out in chunk_outputs]
    store_refs = [store_partition_task.options(name=f"store:{job.job_id}:{p}",
                                               **stage_options("store")).remote(
        job.job_id, p, layout, ctx, *[out[p + 1] for out in chunk_outputs])
        for p in range(n_parts)]
    chunk_stats: list[ChunkStats] = ray.get(stats_refs)
    jobs.mark_stage_done(session, job.job_id, "parse", time.monotonic() - started)
    part_stats: list[PartitionStats] = ray.get(store_refs)

    asset_ranges: dict[str, tuple[float, float]] = {}
    price_days: dict[str, set[int]] = {}
    for ps in part_stats:
        for a, (lo, hi) in ps.asset_ranges.items():
            old = asset_ranges.get(a)
            asset_ranges[a] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        for a, days in ps.price_days.items():
            price_days.setdefault(a, set()).update(days)
    accepted = sum(p.accepted for p in part_stats)
    rejected = sum(c.rejected for c in chunk_stats) + sum(p.rejected for p in part_stats)
    skipped = sum(c.skipped for c in chunk_stats) + sum(p.skipped for p in part_stats)
    return IngestSummary(format=layout.format, rows=sum(c.rows for c in chunk_stats),
                         accepted=accepted, rejected=rejected, skipped=skipped, asset_ranges=asset_ranges,
                         price_days={a: sorted(d) for a, d in price_days.items()})
