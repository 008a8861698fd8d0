"""Checkpoints of the tax walk, per asset and tax year: pure (no Ray, no Cassandra).

An upload that adds rows changes an asset's results only from some point on. A checkpoint of
asset A at a *period start* S (the first instant of a tax year in the method's calendar) holds
everything the rest of A's computation needs from before S, so a recompute can read, value,
reconcile and walk only A's rows from S on:

- ``walk``: the engine's walk state at S (``engine.WalkState``: pools and their lots, wallet
  ledgers, holdings, negative-balance episodes, lots in flight, the lot counter);
- ``transfers``: A's transfer matches that cross S (withdrawn before S, deposited from S on),
  so the deposits resolve and reconciliation from S on skips the deposits already taken;
  ``near_misses``: A's near misses that cross S, so the deposits' findings name them;
- ``carried``: the UK 30-day matches of disposals before S into acquisition days from S on;
- ``years`` and ``findings``: A's tax-year totals and findings of the period that ends at S (the
  tax year before it; for A's first checkpoint, everything before), which the resumed run no
  longer produces. Each period's are stored once, in the checkpoint that ends it.

Valid when (``resume_point``):
- same settings (``fingerprint``: method, pooling, currency, transfer window and fee share, and
  CHECKPOINT_VERSION, raised whenever the engine's results change; how the state is stored has
  its own version, checkpoint_codec.FORMAT_VERSION);
- same rows: the rows naming A before S + *reach* (the transfer window, plus the UK 30-day
  look-ahead) are the ones the checkpoint was made from (``Digest``: their count and the sum of
  their tx ids' hashes). The greedy transfer matching and the UK rules decide an event before S
  from rows at most that much later, so rows added after S + reach cannot change the state at
  S. The digest is checked against the stored history itself, so rows stored by a job whose tax
  stage never finished invalidate checkpoints exactly like this job's rows do;
- made from the prices there are now: not while the provider left some asset unpriced, not for
  a period start closer than PRICE_SETTLE to the moment it was made (the cached window holding
  "now" fills in later), and not when a price window beginning before S + reach was fetched
  after it was made (``prices_changed``: a "no price" marker asked again and answered, a window
  a failed job fetched, another user's fetch; the cache is shared and any asset's price can value
  a trade's row).

A shard resumes at the latest period start at which every asset it owns has valid checkpoints
there and at every earlier period start (their years and findings), and the assets it only
reconciles (shards.Shard.context) have a valid one there. An asset with no rows before S needs
none: its state there is the empty one. Results equal a full run (tests/test_tax_checkpoints.py).

Stored as plain versioned data, never pickled: ingest/tax/checkpoint_codec.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.canonical import ASSET_COLUMNS
from ingest.tax.engine import WalkStart, WalkState, sort_findings, summarize
from ingest.tax.methods import get_method
from ingest.tax.methods.base import CarriedMatches
from ingest.tax.reconcile import NearMiss, TransferMatch
from ingest.tax.records import AssetResult, Finding, YearSummary
from ingest.tax.years import (
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    datetime_from_micros,
    micros_from_datetime,
)

CHECKPOINT_VERSION = 3  # 2: near misses (findings name them, checkpoints carry them); 3: a
# per-wallet transfer's fee column leaves before the transferred units
NO_ASSET = ""  # the key of rows naming no asset (their findings belong to shard 0)
PRICE_SETTLE_US = 3 * MICROS_PER_DAY  # valuation reads points up to 2 days around a row
_INT64 = 1 << 63


@dataclass(frozen=True, slots=True)
class Digest:
    """The rows naming one key before a period start (``rows_before``) and before the start plus
    the reach (``rows_reach``, ``hash_reach``: wrapping 64-bit sum of tx id hashes, signed)."""

    rows_before: int
    rows_reach: int
    hash_reach: int


@dataclass(slots=True)
class AssetCheckpoint:
    key: str  # an asset, or NO_ASSET
    start_us: int
    walk: WalkState | None  # None: nothing was walked (NO_ASSET, or rows that made no event)
    transfers: list[TransferMatch] = field(default_factory=list)
    carried: CarriedMatches = field(default_factory=dict)
    years: dict[str, YearSummary] = field(default_factory=dict)  # of the period ending here
    findings: list[Finding] = field(default_factory=list)  # of the period ending here
    near_misses: list[NearMiss] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CheckpointMeta:
    """A stored checkpoint's index entry: enough to decide validity without its body."""

    key: str
    start_us: int
    fingerprint: str
    usable: bool
    digest: Digest
    written_us: int
    parts: int


@dataclass(slots=True)
class ShardResume:
    """A shard's start: the period start and, per key, its checkpoints up to there (owned keys:
    every one, oldest first, the last at ``start_us``; context assets: the one at start_us)."""

    start_us: int
    checkpoints: dict[str, list[AssetCheckpoint]]

    def at_start(self, key: str) -> AssetCheckpoint | None:
        found = self.checkpoints.get(key)
        if found and found[-1].start_us == self.start_us:
            return found[-1]
        return None

    def walk_start(self, asset: str) -> WalkStart | None:
        checkpoint = self.at_start(asset)
        if checkpoint is None or checkpoint.walk is None:
            return None
        return WalkStart(self.start_us, checkpoint.walk, checkpoint.carried)

    def walked(self) -> set[str]:
        return {k for k in self.checkpoints if self.walk_start(k) is not None}

    def _at_starts(self, keys: Iterable[str]) -> list[AssetCheckpoint]:
        return [c for key in sorted(set(keys)) if (c := self.at_start(key)) is not None]

    def transfers(self, keys: Iterable[str]) -> list[TransferMatch]:
        return [m for c in self._at_starts(keys) for m in c.transfers]

    def near_misses(self, keys: Iterable[str]) -> list[NearMiss]:
        return [n for c in self._at_starts(keys) for n in c.near_misses]

    def years(self, key: str) -> dict[str, YearSummary]:
        return {y: s for c in self.checkpoints.get(key, ()) for y, s in c.years.items()}

    def findings(self, keys: Iterable[str]) -> list[Finding]:
        return [f for key in keys for c in self.checkpoints.get(key, ()) for f in c.findings]


# --- periods and settings ------------------------------------------------------------------------
def period_starts(method: str, first_us: int, last_us: int) -> list[int]:
    """The method's tax-year starts S with first_us < S <= last_us, ascending."""
    accounting = get_method(method)
    first_year, last_year = datetime_from_micros(first_us).year, datetime_from_micros(last_us).year
    starts = (accounting.year_start_us(year) for year in range(first_year, last_year + 1))
    return [s for s in starts if first_us < s <= last_us]


def reach_us(method: str, transfer_window_hours: float) -> int:
    """How far after a period start rows can still change the state at it."""
    lookahead = get_method(method).match_lookahead_days * MICROS_PER_DAY
    return round(transfer_window_hours * MICROS_PER_HOUR) + lookahead


def fingerprint(
    method: str,
    pooling: str,
    currency: str,
    transfer_window_hours: float,
    transfer_max_fee_share: float,
) -> str:
    return (
        f"v{CHECKPOINT_VERSION}|{method}|{pooling}|{currency.upper()}|"
        f"{transfer_window_hours!r}|{transfer_max_fee_share!r}"
    )


# --- digests of the stored history ----------------------------------------------------------------
def row_digests(tx: pa.Table, starts: Sequence[int], reach: int) -> dict[tuple[str, int], Digest]:
    """Per (key, period start), the Digest of ``tx``'s rows naming the key (a row counts once per
    distinct asset it names; NO_ASSET for a row naming none). Additive over disjoint row sets
    (``merge_digests``), so read tasks compute it over their months."""
    n = tx.num_rows
    if not n or not starts:
        return {}
    stamps = pc.cast(tx.column("timestamp"), pa.int64()).to_numpy(zero_copy_only=False)
    hashes = np.fromiter(
        (_id_hash(t) for t in tx.column("tx_id").to_pylist()), dtype=np.uint64, count=n
    )
    names = sorted(
        {a for c in ASSET_COLUMNS for a in pc.unique(tx.column(c)).to_pylist() if a is not None}
    )
    keys = [NO_ASSET, *names]
    value_set = pa.array(names, pa.string())
    codes = []
    for name in ASSET_COLUMNS:
        found = pc.index_in(tx.column(name), value_set=value_set)
        codes.append(pc.fill_null(found, -2).to_numpy(zero_copy_only=False).astype(np.int64) + 1)
    first, second, third = codes  # 0 = NO_ASSET, -1 = none
    second = np.where(second == first, -1, second)
    third = np.where((third == first) | (third == second), -1, third)
    none = (first < 0) & (second < 0) & (third < 0)
    per_row = [first, second, third, np.where(none, 0, -1)]
    out: dict[tuple[str, int], Digest] = {}
    for start in starts:
        before, within = stamps < start, stamps < start + reach
        count_before = np.zeros(len(keys), np.int64)
        count_reach = np.zeros(len(keys), np.int64)
        hash_reach = np.zeros(len(keys), np.uint64)
        for column in per_row:
            named = column >= 0
            np.add.at(count_before, column[named & before], 1)
            hit = named & within
            np.add.at(count_reach, column[hit], 1)
            np.add.at(hash_reach, column[hit], hashes[hit])
        signed = hash_reach.view(np.int64)
        for code in np.flatnonzero(count_reach):
            out[(keys[code], start)] = Digest(
                int(count_before[code]), int(count_reach[code]), int(signed[code])
            )
    return out


def _id_hash(tx_id: str) -> int:
    """64 bits of a tx id: ids are blake2b hex digests (ingest.normalize.identity), so their first
    16 digits already are a hash; any other id is hashed."""
    try:
        return int(tx_id[:16], 16)
    except ValueError:
        return int.from_bytes(blake2b(tx_id.encode(), digest_size=8).digest(), "little")


def merge_digests(
    parts: Iterable[Mapping[tuple[str, int], Digest]],
) -> dict[tuple[str, int], Digest]:
    out: dict[tuple[str, int], Digest] = {}
    for part in parts:
        for key, d in part.items():
            known = out.get(key)
            if known is None:
                out[key] = d
            else:
                total = (known.hash_reach + d.hash_reach) % (1 << 64)
                out[key] = Digest(
                    known.rows_before + d.rows_before,
                    known.rows_reach + d.rows_reach,
                    total - (1 << 64) if total >= _INT64 else total,
                )
    return out


# --- choosing where a shard resumes --------------------------------------------------------------
def prices_changed(
    fetches: Iterable[tuple[int, int | None]], starts: Sequence[int], reach: int
) -> dict[int, int]:
    """Per period start, the latest time (us) a price window beginning before start + reach was
    fetched; ``fetches``: (window start, fetched at), both us (None: long ago)."""
    out = dict.fromkeys(starts, 0)
    for window_start, fetched_at in fetches:
        if fetched_at is None:
            continue
        for start in starts:
            if window_start < start + reach and fetched_at > out[start]:
                out[start] = fetched_at
    return out


def resume_point(
    owned: Iterable[str],
    context: Iterable[str],
    starts: Sequence[int],
    digests: Mapping[tuple[str, int], Digest],
    index: Mapping[tuple[str, int], CheckpointMeta],
    fingerprint_: str,
    priced_since: Mapping[int, int] | None = None,
) -> int | None:
    """The latest period start a shard can resume at (see the module docstring); None: none.
    ``priced_since``: prices_changed of the price cache now."""
    owned, context = sorted(set(owned)), sorted(set(context) - set(owned))
    changed = priced_since or {}

    def valid_at(key: str, start: int) -> bool:
        digest = digests.get((key, start))
        if digest is None or digest.rows_before == 0:
            return True  # nothing before it: the empty state
        meta = index.get((key, start))
        return (
            meta is not None
            and meta.usable
            and meta.fingerprint == fingerprint_
            and meta.digest == digest
            and meta.written_us >= changed.get(start, 0)
        )

    ordered = sorted(starts)
    for at, start in reversed(list(enumerate(ordered))):
        if all(valid_at(key, s) for key in owned for s in ordered[: at + 1]) and all(
            valid_at(key, start) for key in context
        ):
            return start
    return None


def needed_checkpoints(
    owned: Iterable[str],
    context: Iterable[str],
    start: int,
    starts: Sequence[int],
    digests: Mapping[tuple[str, int], Digest],
) -> list[tuple[str, int]]:
    """The (key, period start) checkpoints a shard resuming at ``start`` loads."""
    owned_set = set(owned)
    wanted = [(k, s) for k in sorted(owned_set) for s in sorted(starts) if s <= start]
    wanted += [(k, start) for k in sorted(set(context) - owned_set)]
    return [
        (k, s) for k, s in wanted if (d := digests.get((k, s))) is not None and d.rows_before > 0
    ]


def settled(start_us: int, reach: int, now_us: int) -> bool:
    """Whether prices of the rows before start + reach were final when valued at ``now_us``."""
    return start_us + reach + PRICE_SETTLE_US <= now_us


# --- making the checkpoints of a computed shard ------------------------------------------------------
def make_checkpoints(
    *,
    keys: Iterable[str],
    starts: Sequence[int],
    has_rows_before: Mapping[str, int | None],
    results: Mapping[str, AssetResult],
    matches: Sequence[TransferMatch],
    findings: Sequence[Finding],
    holding_term: bool,
    resumed_at: int | None,
    near_misses: Sequence[NearMiss] = (),
) -> list[AssetCheckpoint]:
    """The checkpoints at ``starts`` (all later than ``resumed_at``) of each key: a key gets one
    at S when it has rows before S (``has_rows_before``: the key's earliest row time, or a time
    before every start when the run resumed past its first rows). ``findings``: every finding
    the shard owns, of any key; ``results``: the walk of each asset."""
    by_key_findings: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_key_findings[f.asset or NO_ASSET].append(f)
    by_key_matches: dict[str, list[TransferMatch]] = defaultdict(list)
    for m in matches:
        by_key_matches[m.asset].append(m)
    out: list[AssetCheckpoint] = []
    for key in sorted(set(keys)):
        first_row = has_rows_before.get(key)
        if first_row is None:
            continue
        result = results.get(key)
        previous = resumed_at
        for start in sorted(starts):
            if first_row >= start:
                continue
            low = previous
            lines = result.disposals if result is not None else []
            income = result.income if result is not None else []
            years, _ = summarize(
                [d for d in lines if _within(micros_from_datetime(d.sold_at), low, start)],
                [r for r in income if _within(micros_from_datetime(r.received_at), low, start)],
                holding_term=holding_term,
            )
            out.append(
                AssetCheckpoint(
                    key=key,
                    start_us=start,
                    walk=result.snapshots.get(start) if result is not None else None,
                    transfers=[
                        m
                        for m in by_key_matches.get(key, ())
                        if m.withdrawn_us < start <= m.deposited_us
                    ],
                    carried=result.carried_matches.get(start, {}) if result is not None else {},
                    years=years,
                    findings=sort_findings(
                        [
                            f
                            for f in by_key_findings.get(key, ())
                            if f.timestamp is not None
                            and _within(micros_from_datetime(f.timestamp), low, start)
                        ]
                    ),
                    near_misses=[
                        n
                        for n in near_misses
                        if n.asset == key and n.withdrawn_us < start <= n.deposited_us
                    ],
                )
            )
            previous = start
    return out


def _within(time_us: int, low: int | None, high: int) -> bool:
    return (low is None or time_us >= low) and time_us < high
