"""Tax checkpoints in the real Cassandra node: bodies in parts, the index written after them, a
newer body replacing an older one, and a missing part, a body of an older format or a corrupted
one refused (UnreadableCheckpoint: the shard computes from its first row) rather than read."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import pytest

from ingest.load.cassandra import execute
from ingest.pipeline.tax import checkpoint_store as store
from ingest.tax.checkpoint_codec import encode_checkpoint
from ingest.tax.checkpoints import AssetCheckpoint, Digest
from ingest.tax.engine import WalkState
from ingest.tax.methods.base import Lot, PoolState
from ingest.tax.records import Finding, YearSummary
from ingest.tax.years import datetime_from_micros

pytestmark = pytest.mark.cassandra
START = 1_735_689_600_000_000  # 2025-01-01
FP = "v1|fifo|per-wallet|USD|24.0|0.05"


def walk_of(lots: int) -> WalkState:
    """A pool of ``lots`` random lots: little to compress, so its body needs several parts."""
    rng = random.Random(lots)
    pool = [
        Lot(
            Decimal(rng.randrange(10**20)) / 10**18,
            Decimal(rng.randrange(10**20)) / 10**18,
            rng.randrange(10**15),
            rng.random() < 0.9,
            n,
            f"{rng.getrandbits(128):032x}",
        )
        for n in range(lots)
    ]
    state = PoolState(
        "heap",
        sum((lot.quantity for lot in pool), Decimal(0)),
        sum((lot.cost for lot in pool), Decimal(0)),
        lots=pool,
        order_keys=[(lot.acquired_us, lot.seq) for lot in pool],
        added=list(range(lots)),
        next_added=lots,
    )
    return WalkState({"w": state}, {"w": state.quantity}, state.quantity, [], {}, {}, lots)


def checkpoint(key: str, size: int) -> AssetCheckpoint:
    return AssetCheckpoint(
        key=key,
        start_us=START,
        walk=walk_of(size // 100),
        years={"2024": YearSummary(gain=Decimal("1.5"))},
        findings=[Finding("missing_price", key, "w", None, "t1", "no price")],
    )


def test_a_checkpoint_round_trips_in_parts_and_a_newer_one_replaces_it(session, monkeypatch):
    monkeypatch.setattr(store, "PART_BYTES", 4096)
    user = f"ckpt-{uuid.uuid4().hex[:8]}"
    digest = Digest(3, 5, -42)
    first = checkpoint("BTC", 50_000)
    written = store.write_checkpoints(
        session,
        user,
        [first],
        digests={("BTC", START): digest},
        fingerprint=FP,
        usable={START: True},
        written_us=1,
    )
    assert written == 1
    [meta] = store.read_index(session, user).values()
    assert (meta.key, meta.start_us, meta.digest, meta.usable, meta.written_us) == (
        "BTC",
        START,
        digest,
        True,
        1,
    )
    assert meta.parts > 1
    assert store.read_checkpoints(session, user, [meta]) == {"BTC": [first]}

    second = checkpoint("BTC", 1000)
    store.write_checkpoints(
        session,
        user,
        [second],
        digests={},  # not in this run's history: written, never usable
        fingerprint=FP,
        usable={START: True},
        written_us=2,
    )
    [meta] = store.read_index(session, user).values()
    assert meta.written_us == 2 and not meta.usable
    assert store.read_checkpoints(session, user, [meta]) == {"BTC": [second]}
    bodies = list(
        execute(
            session,
            "SELECT written_us FROM tax_checkpoint_bodies WHERE user_id = ? AND asset = ? "
            "AND period_start = ?",
            (user, "BTC", datetime_from_micros(START)),
        )
    )
    assert {r["written_us"] for r in bodies} == {2}  # the older body is gone


def test_a_missing_part_is_refused(session, monkeypatch):
    monkeypatch.setattr(store, "PART_BYTES", 4096)
    user = f"ckpt-{uuid.uuid4().hex[:8]}"
    store.write_checkpoints(
        session,
        user,
        [checkpoint("ETH", 20_000)],
        digests={("ETH", START): Digest(1, 1, 1)},
        fingerprint=FP,
        usable={START: True},
        written_us=7,
    )
    [meta] = store.read_index(session, user).values()
    execute(
        session,
        "DELETE FROM tax_checkpoint_bodies WHERE user_id = ? AND asset = ? AND period_start = ? "
        "AND written_us = ? AND part = ?",
        (user, "ETH", datetime_from_micros(START), 7, 1),
    )
    with pytest.raises(store.UnreadableCheckpoint):
        store.read_checkpoints(session, user, [meta])


def replace_body(session, user: str, key: str, written_us: int, body: bytes) -> None:
    execute(
        session,
        "DELETE FROM tax_checkpoint_bodies WHERE user_id = ? AND asset = ? AND period_start = ?",
        (user, key, datetime_from_micros(START)),
    )
    execute(
        session,
        "INSERT INTO tax_checkpoint_bodies (user_id, asset, period_start, written_us, part, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (user, key, datetime_from_micros(START), written_us, 0, body),
    )


def older_format(body: bytes) -> bytes:
    return body[:4] + (1).to_bytes(2, "little") + body[6:]


def corrupted(body: bytes) -> bytes:
    return body[:20] + bytes(40) + body[60:]


@pytest.mark.parametrize("damage", [older_format, corrupted])
def test_a_stored_body_of_an_older_format_or_corrupted_is_unreadable(session, damage):
    user = f"ckpt-{uuid.uuid4().hex[:8]}"
    stored = checkpoint("SOL", 5000)
    store.write_checkpoints(
        session,
        user,
        [stored],
        digests={("SOL", START): Digest(1, 1, 1)},
        fingerprint=FP,
        usable={START: True},
        written_us=3,
    )
    [meta] = store.read_index(session, user).values()
    assert meta.parts == 1 and store.read_checkpoints(session, user, [meta]) == {"SOL": [stored]}
    replace_body(session, user, "SOL", 3, damage(encode_checkpoint(stored)))
    with pytest.raises(store.UnreadableCheckpoint):
        store.read_checkpoints(session, user, [meta])
