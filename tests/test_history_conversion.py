"""Against the real node: a keyspace stored before migration 015 (rows in raw_transactions, their
uploads in upload_rows, older rows with none) migrated by `apply_migrations` reads the same
history from chunks as the row read did, each row held by the same uploads; the conversion
resumes after a kill between writing and publishing a month and is a no-op run again; a month's
piled-up chunks compacted read the same rows once with the same holders, the old bodies gone, and
a reader that listed the old chunks before the swap still reads the history once; the
benchmark's history-read step loads a history both ways and reads the same rows back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from benchmarks import history_read
from devtools.generate import generate
from ingest.config import Settings
from ingest.extract.parse import parse_local_file
from ingest.load import history_chunks
from ingest.load.cassandra import execute, get_session
from ingest.load.history_chunks import (
    history_months,
    publish,
    published,
    read_chunks,
    read_history,
    upload_holders,
    write_chunks,
)
from ingest.load.history_compaction import compact_history
from ingest.load.history_conversion import convert_raw_history
from ingest.load.migrations import apply_migrations
from ingest.load.transactions import (
    month_keys,
    read_transactions,
    store_transactions,
    user_months,
)

pytestmark = pytest.mark.cassandra


@pytest.fixture()
def old_keyspace(settings: Settings) -> Iterator[str]:
    """A keyspace of its own: the conversion visits every user of a keyspace."""
    keyspace = f"lf_convert_{uuid.uuid4().hex[:8]}"
    apply_migrations(settings, keyspace)
    yield keyspace
    get_session(settings, keyspace).execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


def canonical_file(tmp_path: Path, user: str, rows: int = 900) -> pa.Table:
    path = tmp_path / "kraken.csv"
    generate(rows, "kraken", seed=24, out=path, years=2.0)
    return parse_local_file(path, user_id=user).table


def by_id(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: r["tx_id"])


def store_old_style(session, user: str, table: pa.Table) -> dict[str, frozenset[str]]:
    """Two overlapping uploads stored the way the store stage did before migration 015; the
    first's earliest rows predate upload_rows (none there). Returns each row's holders."""
    first, second = uuid.uuid1(), uuid.uuid1()
    n = table.num_rows
    a, b = table.slice(0, 2 * n // 3), table.slice(n // 3)
    for job, rows in ((first, a), (second, b)):
        execute(
            session,
            "INSERT INTO jobs_by_user (user_id, job_id, status) VALUES (?, ?, 'succeeded')",
            (user, job),
        )
        store_transactions(session, rows, job)
    recorded = {first: a.slice(n // 6).column("tx_id").to_pylist(), second: b["tx_id"].to_pylist()}
    for job, ids in recorded.items():
        for tx in ids:
            execute(
                session,
                "INSERT INTO upload_rows (user_id, job_id, tx_id) VALUES (?, ?, ?)",
                (user, job, tx),
            )
    holders: dict[str, set[str]] = {}
    for job, rows in ((first, a), (second, b)):
        for tx in rows.column("tx_id").to_pylist():
            holders.setdefault(tx, set()).add(str(job))
    return {tx: frozenset(jobs) for tx, jobs in holders.items()}


def test_migrating_an_old_keyspace_reads_the_same_history_from_chunks(
    settings, old_keyspace, tmp_path
):
    session = get_session(settings, old_keyspace)
    user = f"old-{uuid.uuid4().hex[:8]}"
    table = canonical_file(tmp_path, user)
    expected_holders = store_old_style(session, user, table)
    months = user_months(session, user)
    row_read = read_transactions(session, user, months)
    assert row_read.num_rows == table.num_rows

    # the keyspace as it was before version 15, migrated by the real entry point
    session.execute("DELETE FROM schema_migrations WHERE version = 15")
    assert apply_migrations(settings, old_keyspace) == [15]

    assert sorted(history_months(session, user)) == sorted(months)
    assert by_id(read_history(session, user, months)) == by_id(row_read)
    assert upload_holders(session, user) == expected_holders

    # killed after writing a month's chunks, before publishing them: the rerun publishes it
    manifest = published(session, user)
    last = max(k.month for k in manifest)
    for key in (k for k in manifest if k.month == last):
        session.execute(
            "DELETE FROM history_manifest WHERE user_id = %s AND month = %s AND upload_id = %s "
            "AND part = %s",
            (user, key.month, key.upload_id, key.part),
        )
    assert last not in history_months(session, user)
    resumed = convert_raw_history(session)
    in_last = int((month_keys(row_read.column("timestamp")) == last).sum())
    assert (resumed.months, resumed.rows) == (1, in_last)
    assert published(session, user) == manifest
    again = convert_raw_history(session)
    assert (again.months, again.rows, again.chunks) == (0, 0, 0)
    assert published(session, user) == manifest
    assert by_id(read_history(session, user, months)) == by_id(row_read)


def test_compacting_piled_up_chunks_keeps_rows_once_and_their_holders(
    session, tmp_path, monkeypatch
):
    user = f"piles-{uuid.uuid4().hex[:8]}"
    table = canonical_file(tmp_path, user)
    first, second = uuid.uuid1(), uuid.uuid1()
    n = table.num_rows
    for upload, rows, parts in ((first, table.slice(0, 2 * n // 3), 5), (second, table, 3)):
        for part in range(parts):  # store partitions, as the store stage cuts them
            keys = write_chunks(
                session,
                user,
                upload,
                part,
                rows.filter(pa.array([i % parts == part for i in range(rows.num_rows)])),
            )
            publish(session, user, keys)
    months = history_months(session, user)
    before_keys = published(session, user)
    before, before_holders = read_history(session, user, months), upload_holders(session, user)
    assert before.num_rows == n

    report = compact_history(session, user, max_chunks=4)
    after_keys = published(session, user)
    assert report.retired > report.written > 0
    assert len(after_keys) == len(before_keys) - report.retired + report.written
    per_month = {m: sum(1 for k in after_keys if k.month == m) for m in months}
    assert max(per_month.values()) <= 4  # two uploads: at most one chunk each per month
    assert read_history(session, user, months).to_pylist() == before.to_pylist()
    assert upload_holders(session, user) == before_holders
    retired = [k for k in before_keys if k not in set(after_keys)]
    with pytest.raises(LookupError):  # their bodies are gone
        read_chunks(session, user, retired[:1])
    assert compact_history(session, user, max_chunks=4).retired == 0

    # a reader that listed the manifest before the swap and reads the bodies after the delete
    listings = iter([before_keys])

    def listed_before_the_swap(session, user_id, months=None):
        return next(listings, None) or published(session, user_id, months)

    monkeypatch.setattr(history_chunks, "published", listed_before_the_swap)
    assert history_chunks.read_history(session, user, months).to_pylist() == before.to_pylist()


def test_the_history_read_bench_loads_a_history_both_ways_and_reads_the_same_rows(
    session, tmp_path
):
    table = canonical_file(tmp_path, "bench-history")
    figures = history_read.measure(session, table, compact_chunks=2, partitions=4, rounds=1)
    assert figures["rows"] == table.num_rows  # both reads gave them, equal (else BenchError)
    assert figures["chunks_written"] > figures["chunks_read"] == figures["months"]
    assert figures["speedup"] == figures["seconds"] / figures["chunk_seconds"]
