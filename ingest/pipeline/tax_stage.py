"""Tax stage: reconcile the user's whole history (all uploads), run the engine per asset in
parallel tasks, then write the read-optimized tables.

A short sequence of named steps (see `run_tax`): read the history, make sure its prices are
cached, value it, compute (pipeline/tax_compute.py, the composition `ledgerflow tax` shares),
write. Writes are incremental for uploads: transactions_view rows are rewritten only from the
earliest transaction this job added for each asset it touched, less the transfer window (a new
deposit can re-classify an older withdrawal) and, for the UK method, 30 more days (its
bed-and-breakfast rule looks forward), and from the start of any price window fetched now for
the first time; a recompute job (settings changed) rewrites all.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.load import views
from ingest.load.price_cache import load_prices
from ingest.load.transactions import month_keys, read_transactions, user_months
from ingest.pipeline.context import JobContext
from ingest.pipeline.executors import Executor
from ingest.pipeline.packing import pack, unpack
from ingest.pipeline.results import StageResults, TaxStageResult
from ingest.pipeline.tax_compute import TaxOptions, compute_tax
from ingest.prices.pool import fetch_prices
from ingest.prices.report import PriceFetchReport
from ingest.prices.valuation import price_needs, value_transactions
from ingest.tax.records import TaxResult
from ingest.vocabulary import JobKind, Method, Stage

UK_LOOKAHEAD = timedelta(days=30)
VIEW_SLICE_ROWS = 20_000


class StepTimer:
    """Seconds per named step, for the job summary."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.started = self._last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.steps[name] = round(now - self._last, 3)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.monotonic() - self.started, 3)


def read_history_task(ctx: JobContext, months: list[int]) -> pa.Table:
    return read_transactions(ctx.session(), ctx.job.user_id, months)


def write_view_task(ctx: JobContext, part: int, valued: pa.Table, metrics: bytes) -> int:
    written = views.write_transactions_view(ctx.session(), view_rows(valued, unpack(metrics)))
    ctx.progress.report(Stage.TAX, part, written, written)
    return written


def write_disposals_task(ctx: JobContext, years: list[str], lines: bytes) -> int:
    """Replace whole tax years: delete and insert from one session, so the inserts' client
    timestamps follow the delete's even where VM clocks disagree."""
    session = ctx.session()
    views.delete_disposal_years(session, ctx.job.user_id, years)
    return views.write_disposals(session, ctx.job.user_id, unpack(lines))


def _split_evenly(items: list, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    return [items[i::n] for i in range(n)]


def view_rows(valued: pa.Table, metrics: list) -> list[tuple]:
    """transactions_view rows (views.VIEW_COLUMNS order) from valued rows and their metrics."""
    months = month_keys(valued.column("timestamp")).tolist()
    cols = {n: valued.column(n).to_pylist() for n in (
        "user_id", "timestamp", "tx_id", "wallet", "type", "label", "sent_asset", "sent_amount",
        "received_asset", "received_amount", "fee_asset", "fee_amount", "price", "price_source",
        "value", "tx_hash")}
    out = []
    for i, m in enumerate(metrics):
        out.append((cols["user_id"][i], months[i], cols["timestamp"][i], cols["tx_id"][i],
                    cols["wallet"][i], cols["type"][i], cols["label"][i], cols["sent_asset"][i],
                    cols["sent_amount"][i], cols["received_asset"][i], cols["received_amount"][i],
                    cols["fee_asset"][i], cols["fee_amount"][i], cols["price"][i],
                    cols["price_source"][i], cols["value"][i],
                    m.cost_basis if m else None, m.gain if m else None, m.term if m else None,
                    dict(m.balance_after) if m else None, set(m.flags) if m and m.flags else None,
                    cols["tx_hash"][i]))
    return out


def rewrite_mask(valued: pa.Table, cutoffs: dict[str, datetime] | None) -> np.ndarray:
    """Which rows to (re)write: all when cutoffs is None, else rows touching an asset at or after
    that asset's cutoff."""
    n = valued.num_rows
    if cutoffs is None:
        return np.ones(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    ts = valued.column("timestamp")
    for col in ("sent_asset", "received_asset", "fee_asset"):
        assets = valued.column(col)
        for asset, cutoff in cutoffs.items():
            hit = pc.and_(pc.equal(assets, asset), pc.greater_equal(ts, pa.scalar(cutoff, ts.type)))
            mask |= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
    return mask


def cutoffs_of(ctx: JobContext, done: StageResults, fetched_windows: list
               ) -> dict[str, datetime] | None:
    """Per asset, the time from which view rows may have changed; None: all of them."""
    if ctx.job.kind != JobKind.UPLOAD:
        return None
    # A new deposit can turn a withdrawal up to the transfer window before it into a matched
    # transfer (its flags and gain change); the UK's bed-and-breakfast rule looks 30 days ahead.
    lookback = timedelta(hours=ctx.settings.transfer_window_hours)
    if ctx.user.method == Method.UK:
        lookback += UK_LOOKAHEAD
    cutoffs: dict[str, datetime] = {}
    ranges = done.ingest.asset_ranges if done.ingest else {}
    for asset, (lo, _hi) in ranges.items():
        cutoffs[asset] = datetime.fromtimestamp(lo, tz=timezone.utc) - lookback
    for asset, start in fetched_windows:
        cutoffs[asset] = min(cutoffs.get(asset, start), start)
    return cutoffs


def read_history(ctx: JobContext, executor: Executor, months: list[int]) -> pa.Table:
    groups = _split_evenly(months, executor.cpus * 2)
    return pa.concat_tables(executor.get([
        executor.submit(read_history_task, ctx, group, name=f"read:{ctx.job.job_id}:{i}")
        for i, group in enumerate(groups)]))


def price_history(ctx: JobContext, history: pa.Table) -> tuple[pa.Table, PriceFetchReport]:
    """Value the history in the job's currency, fetching the windows not cached yet."""
    needs = price_needs(history, currency=ctx.currency)
    report = fetch_prices(needs, settings=ctx.settings, currency=ctx.currency)
    prices = None
    if needs.num_rows:
        ts = needs.column("ts")
        prices = load_prices(ctx.session(), sorted(set(needs.column("asset").to_pylist())),
                             pc.min(ts).as_py() - timedelta(days=2), pc.max(ts).as_py(),
                             currency=ctx.currency.lower())
    valued = value_transactions(history, prices, currency=ctx.currency,
                                unavailable_assets=report.unavailable_assets)
    return valued, report


def write_views(ctx: JobContext, executor: Executor, valued: pa.Table, result: TaxResult,
                cutoffs: dict[str, datetime] | None) -> tuple[int, list]:
    """Submit the transactions_view slices to rewrite; returns (rows, handles)."""
    to_write = valued.take(pa.array(np.flatnonzero(rewrite_mask(valued, cutoffs))))
    metrics = [result.per_tx.get(t) for t in to_write.column("tx_id").to_pylist()]
    ctx.progress.reset(Stage.TAX)
    handles = []
    for part, start in enumerate(range(0, to_write.num_rows, VIEW_SLICE_ROWS)):
        rows = min(VIEW_SLICE_ROWS, to_write.num_rows - start)
        ctx.progress.report(Stage.TAX, part, 0, rows)
        handles.append(executor.submit(write_view_task, ctx, part,
                                       to_write.slice(start, VIEW_SLICE_ROWS),
                                       pack(metrics[start:start + VIEW_SLICE_ROWS]),
                                       name=f"view:{ctx.job.job_id}:{part}"))
    return to_write.num_rows, handles


def run_tax(ctx: JobContext, executor: Executor, done: StageResults) -> TaxStageResult:
    # Bad settings fail here, once, not in every asset's task.
    options = TaxOptions.of(ctx.user.method, ctx.user.pooling, ctx.currency, ctx.settings)
    months = sorted(user_months(ctx.session(), ctx.job.user_id))
    if not months:
        return TaxStageResult()
    timer = StepTimer()
    history = read_history(ctx, executor, months)
    timer.done("read_history")
    ctx.progress.report(Stage.TAX, 0, 0, history.num_rows)
    valued, report = price_history(ctx, history)
    timer.done("value")
    prepared, result = compute_tax(valued, options, executor, label=str(ctx.job.job_id))
    timer.done("compute")
    cutoffs = cutoffs_of(ctx, done, report.fetched_windows)
    view_rows_written, handles = write_views(ctx, executor, valued, result, cutoffs)
    handles += write_user_tables(ctx, executor, result, cutoffs)
    executor.get(handles)
    timer.done("write")
    return TaxStageResult(assets=len(prepared.assets), history_rows=history.num_rows,
                          view_rows_written=view_rows_written, seconds=timer.total,
                          steps=timer.steps)


def _midnight(d: date | None) -> datetime | None:
    return None if d is None else datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def years_to_rewrite(result: TaxResult, cutoffs: dict[str, datetime] | None) -> set[str]:
    """Tax years whose Form 8949 lines may have changed: all for a recompute, else the years of
    lines sold at or after the earliest cutoff (lines before it are unchanged)."""
    years = {d.tax_year for d in result.disposals} | set(result.years)
    if cutoffs is None or not cutoffs:
        return years
    earliest = min(cutoffs.values())
    return {d.tax_year for d in result.disposals if d.sold_at >= earliest}


def write_user_tables(ctx: JobContext, executor: Executor, result: TaxResult,
                      cutoffs: dict[str, datetime] | None) -> list:
    """Balances, summaries and findings (small) here; Form 8949 lines of the years that changed
    in parallel tasks. Returns the handles of those tasks."""
    session, user_id = ctx.session(), ctx.job.user_id
    views.replace_balances(session, user_id, [(b.wallet, b.asset, b.quantity, b.cost_basis)
                                              for b in result.balances])
    rows = [(year, "*", s.proceeds, s.cost_basis, s.short_term_gain, s.long_term_gain, s.gain,
             s.income) for year, s in result.years.items()]
    rows += [(year, asset, s.proceeds, s.cost_basis, s.short_term_gain, s.long_term_gain, s.gain,
              s.income) for (year, asset), s in result.years_by_asset.items()]
    views.replace_yearly_summary(session, user_id, rows)
    views.replace_reconciliation(session, user_id, [(f.kind, f.asset, f.timestamp, f.tx_id, f.detail)
                                                    for f in result.findings])
    lines_by_year: dict[str, list[tuple]] = {year: [] for year in years_to_rewrite(result, cutoffs)}
    for d in result.disposals:
        if d.tax_year in lines_by_year:
            lines_by_year[d.tax_year].append(
                (d.tax_year, d.sold_at, d.line_id, d.asset, d.wallet, d.quantity,
                 _midnight(d.date_acquired), d.proceeds, d.cost_basis, d.gain, d.term, d.tx_id))
    refs = []
    for i, years in enumerate(_split_evenly(sorted(lines_by_year),
                                            max(executor.cpus, len(lines_by_year)))):
        lines = [line for year in years for line in lines_by_year[year]]
        refs.append(executor.submit(write_disposals_task, ctx, years, pack(lines),
                                    name=f"disposals:{ctx.job.job_id}:{i}"))
    return refs
