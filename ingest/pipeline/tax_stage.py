"""Tax stage: reconcile the user's whole history (all uploads) and run the engine per asset in
parallel tasks, then write the read-optimized tables.

Reads are the user's whole history (months in parallel tasks); the engine is cheap next to I/O, so
it recomputes every asset in memory. Writes are incremental for uploads: transactions_view rows are
rewritten only from the earliest transaction this job added for each asset it touched (30 days
earlier for the UK method, whose bed-and-breakfast rule looks forward), and from the start of any
price window fetched now for the first time; a recompute job (settings changed) rewrites all.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from ingest.config import get_settings
from ingest.load import jobs, views
from ingest.load.cassandra import get_session
from ingest.load.price_cache import load_prices
from ingest.load.transactions import month_keys, read_transactions, user_months
from ingest.load.users import get_user_settings
from ingest.pipeline.packing import pack, unpack
from ingest.observe import metrics
from ingest.pipeline.placement import stage_options
from ingest.pipeline.ray_runtime import cluster_cpus
from ingest.prices.fetcher import fetch_prices
from ingest.prices.valuation import price_needs, value_transactions
from ingest.tax.engine import compute_asset, merge, prepare
from ingest.tax.records import TaxResult

UK_LOOKAHEAD = timedelta(days=30)
VIEW_SLICE_ROWS = 20_000


@ray.remote(num_cpus=1, max_retries=4, retry_exceptions=True)
def read_history_task(user_id: str, months: list[int]) -> pa.Table:
    return read_transactions(get_session(), user_id, months)


@ray.remote(num_cpus=1, max_retries=4, retry_exceptions=True)
@metrics.in_flight("tax")
def compute_asset_task(asset: str, events: bytes, method: str, pooling: str,
                       currency: str) -> bytes:
    """events and the AssetResult travel packed (see packing.py)."""
    metrics.tax_asset_computed()
    return pack(compute_asset(asset, unpack(events), method=method, pooling=pooling,
                              currency=currency))


@ray.remote(num_cpus=1, max_retries=4, retry_exceptions=True)
@metrics.in_flight("view")
def write_view_task(job_id, part: int, valued: pa.Table, metrics: bytes) -> int:
    session = get_session()
    rows = view_rows(valued, unpack(metrics))
    written = views.write_transactions_view(session, rows)
    jobs.set_progress(session, job_id, "tax", 1000 + part, written, written)
    return written


@ray.remote(num_cpus=1, max_retries=4, retry_exceptions=True)
def write_disposals_task(user_id: str, years: list[str], lines: bytes) -> int:
    """Replace whole tax years: delete and insert from one session, so the inserts' client
    timestamps follow the delete's even where VM clocks disagree."""
    session = get_session()
    views.delete_disposal_years(session, user_id, years)
    return views.write_disposals(session, user_id, unpack(lines))


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


def _cutoffs(job: jobs.JobRecord, method: str, fetched_windows: list) -> dict[str, datetime] | None:
    if job.kind != "upload":
        return None
    lookback = UK_LOOKAHEAD if method == "uk" else timedelta(0)
    cutoffs: dict[str, datetime] = {}
    for asset, (lo, _hi) in job.summary.get("asset_ranges", {}).items():
        cutoffs[asset] = datetime.fromtimestamp(lo, tz=timezone.utc) - lookback
    for asset, window_start in fetched_windows:
        start = window_start if isinstance(window_start, datetime) else datetime.fromtimestamp(
            window_start, tz=timezone.utc)
        cutoffs[asset] = min(cutoffs.get(asset, start), start)
    return cutoffs


def run_tax(job: jobs.JobRecord) -> None:
    session = get_session()
    cfg = get_settings()
    user = get_user_settings(session, job.user_id)
    cpus = cluster_cpus()
    jobs.clear_progress(session, job.job_id, "tax")
    months = sorted(user_months(session, job.user_id))
    if not months:
        return
    t0 = time.monotonic()
    steps: dict[str, float] = {}

    def lap(name: str, since: list[float] = [t0]) -> None:
        now = time.monotonic()
        steps[name] = round(now - since[0], 3)
        since[0] = now

    history = pa.concat_tables(ray.get([read_history_task.options(**stage_options("tax")).remote(
                                            job.user_id, group)
                                        for group in _split_evenly(months, cpus * 2)]))
    lap("read_history")
    needs = price_needs(history, currency=user.currency)
    report = fetch_prices(needs)
    lap("fetch_prices")
    prices = None
    if needs.num_rows:
        ts = needs.column("ts")
        prices = load_prices(session, sorted(set(needs.column("asset").to_pylist())),
                             pc.min(ts).as_py() - timedelta(days=2), pc.max(ts).as_py())
    lap("load_prices")
    valued = value_transactions(history, prices, currency=user.currency,
                                unavailable_assets=report.unavailable_assets)
    lap("value")
    prepared = prepare(valued, pooling=user.pooling, transfer_window_hours=cfg.transfer_window_hours,
                       transfer_max_fee_share=cfg.transfer_max_fee_share)
    lap("prepare")
    assets = sorted(prepared.assets)
    # Progress is in transactions: rows to write, known once the engine has run; until then the
    # history stands in as the total.
    jobs.set_progress(session, job.job_id, "tax", 0, 0, history.num_rows)
    results = [unpack(blob) for blob in ray.get([
        compute_asset_task.options(name=f"tax:{job.job_id}:{a}", **stage_options("tax")).remote(
            a, pack(prepared.assets[a]), user.method, user.pooling, user.currency)
        for a in assets])]
    lap("compute_assets")
    result = merge(prepared, results, method=user.method, currency=user.currency)
    lap("merge")

    cutoffs = _cutoffs(job, user.method, report.fetched_windows)
    mask = rewrite_mask(valued, cutoffs)
    indices = np.flatnonzero(mask)
    to_write = valued.take(pa.array(indices))
    tx_ids = to_write.column("tx_id").to_pylist()
    metrics = [result.per_tx.get(t) for t in tx_ids]
    refs = []
    for part, start in enumerate(range(0, len(tx_ids), VIEW_SLICE_ROWS)):
        refs.append(write_view_task.options(name=f"view:{job.job_id}:{part}",
                                            **stage_options("tax")).remote(
            job.job_id, part, to_write.slice(start, VIEW_SLICE_ROWS),
            pack(metrics[start:start + VIEW_SLICE_ROWS])))
        jobs.set_progress(session, job.job_id, "tax", 1000 + part, 0,
                          min(VIEW_SLICE_ROWS, len(tx_ids) - start))
    jobs.set_progress(session, job.job_id, "tax", 0, 0, 0)
    lap("submit_views")
    refs += write_user_tables(session, job.user_id, result, cutoffs, cpus)
    ray.get(refs)
    lap("write_views_and_tables")
    summary = dict(job.summary)
    summary["tax"] = {"assets": len(assets), "view_rows_written": len(tx_ids),
                      "history_rows": history.num_rows, "seconds": round(time.monotonic() - t0, 3),
                      "steps": steps}
    jobs.save_summary(session, job.job_id, summary)


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


def write_user_tables(session, user_id: str, result: TaxResult,
                      cutoffs: dict[str, datetime] | None, parallelism: int) -> list:
    """Balances, summaries and findings (small) here; Form 8949 lines of the years that changed
    in parallel tasks. Returns the refs of those tasks."""
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
    for years in _split_evenly(sorted(lines_by_year), max(parallelism, len(lines_by_year))):
        lines = [line for year in years for line in lines_by_year[year]]
        refs.append(write_disposals_task.options(**stage_options("tax")).remote(
            user_id, years, pack(lines)))
    return refs
