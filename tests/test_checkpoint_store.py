"""Tax checkpoints in the real Cassandra node: bodies in parts, the index written after them, a
newer body replacing an older one, and a missing part refused rather than half read."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import pytest

from ingest.load.cassandra import execute
from ingest.pipeline.tax import checkpoint_store as store
from ingest.tax.checkpoints import AssetCheckpoint, Digest
from ingest.tax.records import Finding, YearSummary
from ingest.tax.years import datetime_from_micros

pytestmark = pytest.mark.cassandra
START = 1_735_689_600_000_000  # 2025-01-01
FP = "v1|fifo|per-wallet|USD|24.0|0.05"


def checkpoint(key: str, size: int) -> AssetCheckpoint:
    return AssetCheckpoint(
        key=key,
        start_us=START,
        walk=random.Random(size).randbytes(size),  # incompressible: it needs several parts
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
            "SELECT written_us FROM tax_checkpoint_parts WHERE user_id = ? AND asset = ? "
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
        "DELETE FROM tax_checkpoint_parts WHERE user_id = ? AND asset = ? AND period_start = ? "
        "AND written_us = ? AND part = ?",
        (user, "ETH", datetime_from_micros(START), 7, 1),
    )
    with pytest.raises(store.UnreadableCheckpoint):
        store.read_checkpoints(session, user, [meta])
