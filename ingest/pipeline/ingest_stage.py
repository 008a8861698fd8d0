"""Parse + store stages of one upload, a map/reduce over the stored file, with the prices stage
running alongside store.

map      parse_chunk x chunks        bytes of one row-aligned range -> legs, split into P
                                     partitions
reduce   finalize_partition x P      legs of one partition from every chunk -> canonical rows
                                     (trades combined, ids assigned) + the (asset, day) pairs
                                     they need priced
         store_partition x P         canonical rows -> history chunks (written, then
                                     published), ingest/load/history_chunks.py
overlap  prices (this process)       once every partition is finalized, the price windows are
                                     known: the pool fetches them while store writes
Rows that must be combined (a Binance trade's rows, a Kraken refid) or compared for identity
(identical rows) share a partition key, so they meet in one reduce task wherever they were parsed.
Memory per task is bounded by the chunk size and P, not the file size. A crash anywhere re-runs
the step: chunk keys are deterministic and only published chunks are read, and fetched windows
are in the price cache, so the re-run rewrites the same chunks and asks the provider only for
what it had not answered.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract import storage
from ingest.extract.chunking import (
    ByteRange,
    FileLayout,
    adaptive_chunk_bytes,
    inspect_file,
    plan_chunks,
    read_range,
)
from ingest.extract.formats.base import SKIPPED_PREFIX, check_timezone
from ingest.extract.formats.mapped import ColumnMapping
from ingest.extract.parse import (
    ParseContext,
    RejectedRow,
    finalize_partition,
    parse_chunk,
    partition_legs,
)
from ingest.load import history_chunks, jobs
from ingest.load.history_compaction import compact_history
from ingest.load.transactions import month_keys, record_user_months, user_months
from ingest.observe import metrics
from ingest.pipeline.context import JobContext
from ingest.pipeline.executors import Executor
from ingest.pipeline.prices_stage import run_prices
from ingest.pipeline.results import IngestResult, StageResults
from ingest.pipeline.test_hooks import STORE_PUBLISH, wait_while_held
from ingest.prices.valuation import price_needs
from ingest.vocabulary import Stage


@dataclass
class RowCounts:
    """Rows left out, by line (an expanded row reports once), and their reasons for the job's
    summary (quoted values folded, so 'bad date '1'' and 'bad date '2'' count as one reason)."""

    rejected: int = 0
    skipped: int = 0
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    skipped_reasons: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, rows: list[RejectedRow]) -> RowCounts:
        lines: dict[int, RejectedRow] = {}
        for r in rows:
            lines.setdefault(r.line, r)
        out = cls()
        for r in lines.values():
            kind = reason_kind(r.reason)
            if r.skipped:
                out.skipped += 1
                out.skipped_reasons[kind] += 1
            else:
                out.rejected += 1
                out.rejected_reasons[kind] += 1
        return out

    def __add__(self, other: RowCounts) -> RowCounts:
        return RowCounts(
            self.rejected + other.rejected,
            self.skipped + other.skipped,
            self.rejected_reasons + other.rejected_reasons,
            self.skipped_reasons + other.skipped_reasons,
        )


_QUOTED = re.compile(r"'[^']*'")
REASON_KINDS = 12  # the most frequent reasons kept in a job's summary; the rest are "other"


def reason_kind(reason: str) -> str:
    """A reason without its row's values: "bad date '…' in column Date"."""
    return _QUOTED.sub("'…'", reason.removeprefix(SKIPPED_PREFIX))


def top_reasons(counts: Counter[str]) -> dict[str, int]:
    top = dict(counts.most_common(REASON_KINDS))
    rest = sum(counts.values()) - sum(top.values())
    return top | ({"other reasons": rest} if rest else {})


@dataclass
class ChunkStats:
    rows: int
    left_out: RowCounts


@dataclass
class PartitionStats:
    accepted: int
    left_out: RowCounts
    wallets: set[str]
    asset_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    price_days: dict[str, set[int]] = field(default_factory=dict)


def store_rejected(ctx: JobContext, rejected: list[RejectedRow]) -> RowCounts:
    """Store rejected rows and deliberately skipped ones (fiat-only rows, internal transfers...:
    their reason reads 'skipped: ...', so nothing leaves silently). Returns their counts."""
    if rejected:
        jobs.write_rejected(
            ctx.session(), ctx.job.job_id, [(r.line, r.reason, r.raw) for r in rejected]
        )
    return RowCounts.of(rejected)


def parse_chunk_task(
    ctx: JobContext,
    layout: FileLayout,
    byte_range: ByteRange,
    parse_ctx: ParseContext,
    n_parts: int,
) -> tuple:
    assert ctx.job.file_uri is not None
    wait_while_held(ctx, Stage.PARSE)
    with storage.open_input(ctx.job.file_uri) as f:
        data = read_range(f, byte_range)
    result = parse_chunk(data, layout, byte_range.first_line, parse_ctx)
    left_out = store_rejected(ctx, result.rejected)
    metrics.rows(parsed=result.rows, rejected=left_out.rejected)
    size = byte_range.end - byte_range.start
    ctx.progress.report(Stage.PARSE, byte_range.index, size, size)
    parts = partition_legs(result.legs, n_parts)
    return (ChunkStats(result.rows, left_out), *parts)


def asset_ranges(table: pa.Table) -> dict[str, tuple[float, float]]:
    """asset -> (earliest, latest) timestamp (epoch seconds) of the rows touching it."""
    out: dict[str, tuple[float, float]] = {}
    ts = pc.divide(table.column("timestamp").cast(pa.int64()), 1_000_000)
    for col in ("sent_asset", "received_asset", "fee_asset"):
        t = pa.table({"asset": table.column(col), "ts": ts}).filter(pc.is_valid(table.column(col)))
        if t.num_rows == 0:
            continue
        agg = t.group_by("asset").aggregate([("ts", "min"), ("ts", "max")])
        for asset, lo, hi in zip(
            agg["asset"].to_pylist(), agg["ts_min"].to_pylist(), agg["ts_max"].to_pylist()
        ):
            old = out.get(asset)
            out[asset] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    return out


def price_days(table: pa.Table, currency: str) -> dict[str, set[int]]:
    """asset -> distinct days (epoch day numbers) with rows needing a fetched price."""
    needs = price_needs(table, currency=currency)
    if needs.num_rows == 0:
        return {}
    days = pc.divide(needs.column("ts").cast(pa.int64()), 86_400_000_000)
    agg = (
        pa.table({"asset": needs.column("asset"), "day": days})
        .group_by(["asset", "day"])
        .aggregate([])
    )
    out: dict[str, set[int]] = {}
    for asset, day in zip(agg["asset"].to_pylist(), agg["day"].to_pylist()):
        out.setdefault(asset, set()).add(int(day))
    return out


def finalize_partition_task(
    ctx: JobContext, part: int, layout: FileLayout, parse_ctx: ParseContext, *legs: pa.Table
) -> tuple[PartitionStats, pa.Table]:
    """Legs of one partition -> canonical rows (kept in the object store for its store task)
    and their stats, price days included: what lets prices start before store ends."""
    table, rejected = finalize_partition(pa.concat_tables(legs), layout, parse_ctx)
    left_out = store_rejected(ctx, rejected)
    metrics.rows(rejected=left_out.rejected)
    ctx.progress.report(Stage.STORE, part, 0, table.num_rows)
    stats = PartitionStats(
        accepted=table.num_rows,
        left_out=left_out,
        wallets={w for w in pc.unique(table.column("wallet")).to_pylist() if w},
        asset_ranges=asset_ranges(table),
        price_days=price_days(table, ctx.currency),
    )
    return stats, table


def store_partition_task(
    ctx: JobContext, part: int, table: pa.Table, stored_months: frozenset[int]
) -> int:
    """Store one partition's rows as history chunks: write them, then publish them (readers see
    none until then: a task killed in between leaves nothing visible, and its retry rewrites
    the same chunks and publishes them). Returns how many of the rows another upload's
    published chunks already held (the same file uploaded again), in the months the user had
    when the store began (`stored_months`)."""
    session, job = ctx.session(), ctx.job
    present = history_chunks.count_present(session, table, job.job_id, stored_months)
    # the months (and their assets) before the chunks: the query API lists the view by them
    record_user_months(session, table, month_keys(table.column("timestamp")).tolist())
    keys = history_chunks.write_chunks(session, job.user_id, job.job_id, part, table)
    wait_while_held(ctx, STORE_PUBLISH)
    history_chunks.publish(session, job.user_id, keys)
    ctx.progress.report(Stage.STORE, part, table.num_rows, table.num_rows)
    metrics.rows(stored=table.num_rows)
    return present


def plan_file(ctx: JobContext, parallelism: int) -> tuple[FileLayout, list[ByteRange]]:
    """Detect the format and cut the file into row-aligned byte ranges. Raises FormatError for
    a file that is not a known CSV."""
    uri = ctx.job.file_uri
    assert uri is not None, "an upload job names its file"
    if ctx.job.tz:
        check_timezone(ctx.job.tz)  # one clear error instead of one per chunk
    size = storage.size_of(uri)
    with storage.open_input(uri) as f:
        mapping = (
            ColumnMapping.from_json(ctx.job.format_mapping) if ctx.job.format_mapping else None
        )
        layout = inspect_file(f, size, ctx.job.format, mapping)
        jobs.set_detected_format(ctx.session(), ctx.job.job_id, layout.format)
        f.seek(layout.data_start)
        sample = f.read(256 * 1024)
        target = ctx.settings.chunk_bytes or adaptive_chunk_bytes(layout, sample, parallelism)
        f.seek(0)
        return layout, plan_chunks(f, layout, target)


def run_ingest(ctx: JobContext, executor: Executor, done: StageResults) -> StageResults:
    """Parse and store one uploaded file, fetching its prices while store writes."""
    job = ctx.job
    parallelism = ctx.settings.parse_parallelism or executor.cpus
    layout, ranges = plan_file(ctx, parallelism)
    parse_ctx = ParseContext(
        user_id=job.user_id, source_file=job.file_name or "upload.csv", wallet=job.wallet, tz=job.tz
    )
    if not ranges:  # a header and nothing else: a valid, empty upload
        return StageResults(ingest=IngestResult(format=layout.format, notes=layout.notes))
    n_parts = len(ranges)
    for stage in (Stage.PARSE, Stage.STORE):
        ctx.progress.reset(stage)
    for r in ranges:
        ctx.progress.report(Stage.PARSE, r.index, 0, r.end - r.start)

    started = time.monotonic()
    chunk_outputs = [
        executor.submit(
            parse_chunk_task,
            ctx,
            layout,
            r,
            parse_ctx,
            n_parts,
            name=f"parse:{job.job_id}:{r.index}",
            num_returns=n_parts + 1,
        )
        for r in ranges
    ]
    finalized = [
        executor.submit(
            finalize_partition_task,
            ctx,
            p,
            layout,
            parse_ctx,
            *[out[p + 1] for out in chunk_outputs],
            name=f"finalize:{job.job_id}:{p}",
            num_returns=2,
        )
        for p in range(n_parts)
    ]
    chunk_stats: list[ChunkStats] = executor.get([out[0] for out in chunk_outputs])
    parse_seconds = time.monotonic() - started
    part_stats: list[PartitionStats] = executor.get([stats for stats, _table in finalized])
    ingest = summarize(layout.format, parse_seconds, chunk_stats, part_stats)
    ingest.notes = layout.notes
    with ThreadPoolExecutor(1, thread_name_prefix="prices") as prices:
        # the price windows are known: fetched from here on, before the store tasks are
        # submitted (an in-process executor runs them at submit: they then overlap the fetch)
        fetch = prices.submit(run_prices, ctx, ingest.price_days)
        # Read once, before any store task writes: where another job's rows can already be.
        stored_months = frozenset(user_months(ctx.session(), job.user_id))
        ingest.stored_months = sorted(stored_months)
        stores = [
            executor.submit(
                store_partition_task, ctx, p, table, stored_months, name=f"store:{job.job_id}:{p}"
            )
            for p, (_stats, table) in enumerate(finalized)
        ]
        ingest.already_present = sum(executor.get(stores))
        # every store task has published: the months its partitions piled chunks into are
        # compacted here, the one writer of this user's chunks (while prices still fetch)
        compact_history(ctx.session(), job.user_id, ctx.settings.history_compact_chunks)
        report = fetch.result()
    return StageResults(ingest=ingest, prices=report)


def summarize(
    fmt: str, parse_seconds: float, chunk_stats: list[ChunkStats], part_stats: list[PartitionStats]
) -> IngestResult:
    ranges: dict[str, tuple[float, float]] = {}
    days: dict[str, set[int]] = {}
    for ps in part_stats:
        for a, (lo, hi) in ps.asset_ranges.items():
            old = ranges.get(a)
            ranges[a] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        for a, d in ps.price_days.items():
            days.setdefault(a, set()).update(d)
    left_out = sum(
        [c.left_out for c in chunk_stats] + [p.left_out for p in part_stats], RowCounts()
    )
    return IngestResult(
        format=fmt,
        rows=sum(c.rows for c in chunk_stats),
        accepted=sum(p.accepted for p in part_stats),
        rejected=left_out.rejected,
        skipped=left_out.skipped,
        wallets=sorted(set().union(*(p.wallets for p in part_stats))),
        rejected_reasons=top_reasons(left_out.rejected_reasons),
        skipped_reasons=top_reasons(left_out.skipped_reasons),
        asset_ranges=ranges,
        price_days={a: sorted(d) for a, d in days.items()},
        parse_seconds=round(parse_seconds, 3),
    )
