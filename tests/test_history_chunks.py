"""A user's raw history as chunks in the real Cassandra node (migration 015): written chunks are
invisible until published, a retried write changes nothing, a re-upload adds nothing to the
history and counts as already present, overlapping exports merge by id while true duplicates
stay two, and each row names the uploads holding it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from ingest.load.cassandra import execute
from ingest.load.history_chunks import (
    count_present,
    history_months,
    publish,
    published,
    read_history,
    upload_holders,
    write_chunks,
)
from ingest.normalize.canonical import CANONICAL_SCHEMA
from ingest.normalize.identity import tx_id

pytestmark = pytest.mark.cassandra
START = datetime(2024, 1, 30, 12, tzinfo=timezone.utc)


def rows_of(user: str, keys: list[str], *, days_apart: int = 1) -> pa.Table:
    """One deposit per key, on 2024-01-30 plus `days_apart` days per letter its key starts
    after "a" (so the rows span months); a key given twice is two identical rows (two ids, by
    occurrence)."""
    seen: dict[str, int] = {}
    out = []
    for n, key in enumerate(keys):
        occurrence = seen[key] = seen.get(key, -1) + 1
        out.append(
            {
                "tx_id": tx_id(user, "koinly", f"c:{key}", occurrence),
                "user_id": user,
                "wallet": "ledger",
                "timestamp": START + timedelta(days=days_apart * (ord(key[0]) - ord("a"))),
                "type": "deposit",
                "received_asset": "ETH",
                "received_amount": Decimal("0.000000000000000001") * (n + 1),
                "source": "koinly",
                "source_file": "a.csv",
                "source_line": n + 2,
            }
        )
    return pa.Table.from_pylist(out, schema=CANONICAL_SCHEMA)


def store(session, user: str, upload: uuid.UUID, rows: pa.Table, part: int = 0) -> None:
    publish(session, user, write_chunks(session, user, upload, part, rows))


def history(session, user: str) -> pa.Table:
    return read_history(session, user, history_months(session, user))


def test_written_chunks_are_invisible_until_published(session):
    user = f"hc-{uuid.uuid4().hex[:8]}"
    upload = uuid.uuid1()
    rows = rows_of(user, ["a", "b", "c"])
    keys = write_chunks(session, user, upload, 0, rows)
    assert {k.month for k in keys} == {202401, 202402}
    stored = execute(
        session,
        "SELECT rows FROM history_chunks WHERE user_id = ? AND month = ?",
        (user, 202401),
    ).all()
    assert sum(r["rows"] for r in stored) == 2  # the bodies are there...
    assert history_months(session, user) == []  # ...and nothing reads them
    assert history(session, user).num_rows == 0
    assert upload_holders(session, user) == {}
    publish(session, user, keys)
    assert history_months(session, user) == [202401, 202402]
    assert history(session, user).equals(
        rows.sort_by([("timestamp", "ascending"), ("tx_id", "ascending")])
    )


def test_a_retried_store_rewrites_the_same_chunks(session):
    user = f"hc-{uuid.uuid4().hex[:8]}"
    upload = uuid.uuid1()
    rows = rows_of(user, ["a", "b", "c", "d"])
    store(session, user, upload, rows)
    before = published(session, user)
    store(session, user, upload, rows.take(pa.array([3, 1, 0, 2])))  # its rows in another order
    assert published(session, user) == before
    assert history(session, user).num_rows == 4


def test_a_reupload_adds_nothing_and_counts_as_already_present(session):
    user = f"hc-{uuid.uuid4().hex[:8]}"
    first, again = uuid.uuid1(), uuid.uuid1()
    rows = rows_of(user, ["a", "b", "c"])
    months = {202401, 202402}
    assert count_present(session, rows, first, set()) == 0  # a first upload: nothing read
    store(session, user, first, rows)
    assert count_present(session, rows, first, months) == 0  # its own retry: still new
    assert count_present(session, rows, again, months) == 3
    store(session, user, again, rows)
    assert history(session, user).num_rows == 3
    assert count_present(session, rows, first, months) == 3  # now `again` holds them too
    holders = upload_holders(session, user)
    assert set(holders.values()) == {frozenset({str(first), str(again)})}


def test_overlapping_exports_merge_by_id_and_true_duplicates_stay_two(session):
    user = f"hc-{uuid.uuid4().hex[:8]}"
    early, late = uuid.uuid1(), uuid.uuid1()
    store(session, user, early, rows_of(user, ["a", "b", "same", "same"]))
    store(session, user, late, rows_of(user, ["b", "same", "same", "c"]), part=1)
    merged = history(session, user)
    assert merged.num_rows == 5  # a, b, c and the two identical rows
    assert len(set(merged.column("tx_id").to_pylist())) == 5
    holders = upload_holders(session, user)
    assert sorted(len(h) for h in holders.values()) == [1, 1, 2, 2, 2]
    only_early = upload_holders(session, user, [202401])
    assert set(only_early) <= set(holders)


def test_reading_some_months_reads_only_theirs(session):
    user = f"hc-{uuid.uuid4().hex[:8]}"
    rows = rows_of(user, ["a", "b", "c", "d", "e"], days_apart=20)
    store(session, user, uuid.uuid1(), rows)
    months = history_months(session, user)
    assert months == [202401, 202402, 202403, 202404]
    got = read_history(session, user, [202402])
    assert {t.month for t in got.column("timestamp").to_pylist()} == {2}
    assert got.column("received_amount").to_pylist() == [
        Decimal("0.000000000000000002")
    ]  # 18 places, exact
