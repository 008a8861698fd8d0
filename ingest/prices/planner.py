"""The price planner, pure: which (asset, window) series to fetch for a job.

Windows: [k * WINDOW_SECONDS, (k + 1) * WINDOW_SECONDS) for integer k, aligned to the Unix epoch, so
every job (and every user) maps a given hour to the same window and the cache is shared. A window is
88 days: CoinGecko answers a 2-90 day range hourly, and the 2-day margin keeps every request well
inside that band whatever the provider does at its boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.canonical import FIAT
from ingest.prices.providers.base import Window

DAY = 86400
WINDOW_DAYS = 88
WINDOW_SECONDS = WINDOW_DAYS * DAY

COVERED_STATUSES = frozenset({"ok", "no_data"})
NO_PRICE_STATUSES = frozenset({"no_data", "unlisted"})  # markers that are asked again when old


def window_of(ts: int) -> Window:
    start = (ts // WINDOW_SECONDS) * WINDOW_SECONDS
    return Window(start, start + WINDOW_SECONDS)


@dataclass(frozen=True)
class CoverageRecord:
    """One row of price_coverage (times in unix seconds)."""

    asset: str
    window_start: int
    window_end: int
    covered_until: int  # == window_end unless the window held "now" when it was fetched
    status: str  # ok | no_data | unlisted
    # when its answer was stored, to the millisecond (None: unknown, never stale)
    fetched_at: float | None = None


@dataclass(frozen=True)
class WindowRequest:
    asset: str
    coin_id: str
    window: Window


@dataclass(frozen=True)
class PricePlan:
    requests: list[WindowRequest]
    windows_needed: int  # distinct (asset, window) pairs of priceable needs
    windows_cached: int  # of those, already covered
    assets_unlisted: list[str]  # no provider id, or the provider said "unknown coin"


def seconds_of(ts: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Unix seconds (floor) of a timestamp column, any unit."""
    unit = ts.type.unit if pa.types.is_timestamp(ts.type) else "s"
    per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    raw = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False)
    return np.floor_divide(raw, per_second)


def distinct_windows(needs: pa.Table, *, now: int) -> dict[str, dict[int, int]]:
    """{asset: {window_start: latest needed second in it}} over the rows that can be priced
    (asset set and not fiat, time set and not after `now`)."""
    if needs.num_rows == 0:
        return {}
    asset = needs.column("asset").combine_chunks()
    ts = needs.column("ts")
    valid = pc.and_(pc.is_valid(asset), pc.is_valid(ts))
    valid = pc.and_(valid, pc.invert(pc.is_in(asset, value_set=pa.array(sorted(FIAT)))))
    valid = pc.fill_null(valid, False)
    asset = pc.filter(asset, valid)
    seconds = seconds_of(pc.filter(ts, valid))
    keep = seconds <= now
    if not keep.all():
        asset = pc.filter(asset, pa.array(keep))
        seconds = seconds[keep]
    if len(seconds) == 0:
        return {}
    encoded = pc.dictionary_encode(asset).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = encoded.dictionary.to_pylist()
    window_index = seconds // WINDOW_SECONDS
    # One int64 key per (asset, window): window indexes stay far below 2**32 until year 2.5e9.
    keys = codes * (1 << 32) + window_index
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    latest = np.full(len(unique_keys), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, inverse, seconds)
    out: dict[str, dict[int, int]] = {}
    for key, last in zip(unique_keys.tolist(), latest.tolist()):
        code, index = divmod(key, 1 << 32)
        out.setdefault(names[code], {})[index * WINDOW_SECONDS] = last
    return out


def is_stale(record: CoverageRecord, *, now: int, recheck_after: float) -> bool:
    """A "no price" marker older than `recheck_after` seconds (0: markers never go stale)."""
    return (
        record.status in NO_PRICE_STATUSES
        and recheck_after > 0
        and record.fetched_at is not None
        and now - record.fetched_at >= recheck_after
    )


def plan_fetches(
    needs: pa.Table,
    coverage: Iterable[CoverageRecord],
    coin_ids: Mapping[str, str],
    *,
    now: int,
    recheck_after: float = 0,
) -> PricePlan:
    """The fewest requests (one per uncovered (asset, window)) that price every need.

    needs: columns asset (string), ts (timestamp); duplicates welcome. A window is covered when the
    cache recorded it ok/no_data up to past the latest time needed in it (windows that held "now"
    when fetched are covered only until that fetch). Assets the provider does not know (a durable
    'unlisted' row) or that have no provider id are dropped and listed in assets_unlisted.
    no_data/unlisted markers older than `recheck_after` seconds count as absent: asked again.
    """
    by_asset = distinct_windows(needs, now=now)
    covered: dict[tuple[str, int], CoverageRecord] = {}
    unlisted: set[str] = set()
    for record in coverage:
        if is_stale(record, now=now, recheck_after=recheck_after):
            continue
        if record.status == "unlisted":
            unlisted.add(record.asset)
        elif record.status in COVERED_STATUSES:
            covered[(record.asset, record.window_start)] = record
    requests: list[WindowRequest] = []
    needed = cached = 0
    for asset in sorted(by_asset):
        coin = coin_ids.get(asset.upper())
        if coin is None or asset in unlisted:
            unlisted.add(asset)
            continue
        for start, latest in sorted(by_asset[asset].items()):
            needed += 1
            known = covered.get((asset, start))
            if known is not None and latest < known.covered_until:
                cached += 1
                continue
            requests.append(WindowRequest(asset, coin, Window(start, start + WINDOW_SECONDS)))
    wanted_unlisted = sorted(a for a in unlisted if a in by_asset)
    return PricePlan(requests, needed, cached, wanted_unlisted)
