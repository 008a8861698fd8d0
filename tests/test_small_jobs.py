"""A small job stays small on the real services (Ray, Cassandra, price simulator): its fan-out
follows its rows, and its first upload leaves no tombstone in the view. Task counts come from the
job record (`summary.tasks`, what the job submitted to Ray), never from timings."""

from __future__ import annotations

import os
import uuid

import pytest

from benchmarks.tombstones import traced_view_read
from devtools.generate import generate
from ingest.config import get_settings
from ingest.corrections.kinds import SetIgnored
from ingest.load.transactions import user_months
from ingest.pipeline.executors import RayExecutor
from ingest.pipeline.recompute import record_and_recompute
from tests.test_pipeline import stored_rows, upload, wait

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]


def test_a_10k_row_first_upload_runs_a_handful_of_tasks_and_writes_no_tombstone(
    ray_local, session, tmp_path
):
    user = f"small-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "binance.csv"
    generate(10_000, "binance", seed=24, out=path, years=3.0)
    job = wait(session, upload(session, user, path))
    assert job.status == "succeeded", job.error
    tasks = job.summary["tasks"]
    # one read task and one shard for the whole history, no split; parse/store per chunk
    assert tasks["read"] == 1 and tasks["tax"] == 1 and "split" not in tasks, tasks
    assert tasks["parse"] == tasks["finalize"] == tasks["store"] <= 2, tasks
    assert job.summary["tax"]["shards"] == 1

    months = sorted(user_months(session, user))
    assert len(months) > 30  # three years: the month rule alone would give 12 read tasks
    count = traced_view_read(session, user, months)
    assert count.live_rows == job.summary["tax"]["view_rows_written"] > 0
    assert count.tombstone_cells == 0


def session_of_this_process() -> tuple[int, int, int]:
    """(pid, the process's session, its prepared statement of one query), as object ids."""
    from ingest.load.cassandra import get_session, prepared

    session = get_session(get_settings())
    statement = prepared(session, "SELECT status FROM jobs WHERE job_id = ?")
    return os.getpid(), id(session), id(statement)


def test_tasks_on_one_worker_process_share_its_session_and_prepared_statements(ray_local):
    """Each task opens the session through get_session and prepares through prepared: a worker
    process runs many tasks, and they find its one session and its statements (one connection
    set-up and one PREPARE per process, not per task)."""
    executor = RayExecutor(cpus=2)
    seen = [
        executor.get([executor.submit(session_of_this_process, name=f"read:probe:{i}")])[0]
        for i in range(8)
    ]
    per_process: dict[int, set[tuple[int, int]]] = {}
    for pid, session_id, statement_id in seen:
        per_process.setdefault(pid, set()).add((session_id, statement_id))
    assert all(len(ids) == 1 for ids in per_process.values()), per_process
    assert len(per_process) < len(seen)  # tasks one after another reuse an idle worker


def test_a_later_upload_and_a_correction_job_run_a_handful_of_tasks(ray_local, session, tmp_path):
    """The fan-out of a later job follows the history's rows too (the last tax run's plus the
    upload's new ones), not its months: a three-year history of a few thousand rows gave 12
    read tasks, 12 split tasks and up to 4 shard tasks to every later upload and correction."""
    user = f"later-{uuid.uuid4().hex[:8]}"
    first, later = tmp_path / "binance.csv", tmp_path / "koinly.csv"
    generate(4_000, "binance", seed=31, out=first, years=3.0)
    generate(40, "koinly", seed=32, out=later, start="2024-11-01", years=0.1)
    history = wait(session, upload(session, user, first))
    assert history.status == "succeeded", history.error
    assert len(user_months(session, user)) > 30  # the month rule: 12 read tasks

    job = wait(session, upload(session, user, later, fmt="koinly"))
    assert job.status == "succeeded", job.error
    tasks = job.summary["tasks"]
    assert tasks["read"] == 1 and tasks["tax"] == 1 and "split" not in tasks, tasks
    assert job.summary["tax"]["history_rows"] > history.summary["tax"]["history_rows"]

    tx_id = stored_rows(session, user, "transactions_view")[0]["tx_id"]
    _, job_id = record_and_recompute(session, get_settings(), user, SetIgnored(tx_id), by="t")
    correction = wait(session, job_id)
    assert correction.status == "succeeded", correction.error
    assert correction.summary["tasks"] == {"read": 1, "tax": 1}, correction.summary["tasks"]
    assert correction.summary["tax"]["history_rows"] == job.summary["tax"]["history_rows"] - 1


def view_fees(session, user: str) -> dict[str, tuple]:
    """tx_id -> (fee_asset, fee_amount) of every view row of the user."""
    from ingest.load.cassandra import execute

    return {
        r["tx_id"]: (r["fee_asset"], r["fee_amount"])
        for m in user_months(session, user)
        for r in execute(
            session,
            "SELECT tx_id, fee_asset, fee_amount FROM transactions_view "
            "WHERE user_id = ? AND month = ?",
            (user, m),
        )
    }


def test_a_re_export_that_drops_a_fee_clears_it_from_the_view(ray_local, session, tmp_path):
    """Coinbase rows keep their ids (the exchange's ID) when a re-export changes them: the
    second upload's rows without a fee must not keep the first one's fee cells."""
    user = f"reexport-{uuid.uuid4().hex[:8]}"
    first = tmp_path / "coinbase.csv"
    generate(300, "coinbase", seed=5, out=first, years=1.0)
    lines = first.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("ID,"))
    again = lines[: at + 1]
    for line in lines[at + 1 :]:
        cells = line.split(",")
        if len(cells) == 11 and cells[2] == "Buy":  # no fee: the total is the subtotal
            cells[8], cells[9] = cells[7], "$0.00"
        again.append(",".join(cells))
    second = tmp_path / "coinbase-again.csv"
    second.write_text("\n".join(again) + "\n")

    assert wait(session, upload(session, user, first)).status == "succeeded"
    before = view_fees(session, user)
    with_fee = {tx for tx, (asset, _) in before.items() if asset is not None}
    assert with_fee

    job = wait(session, upload(session, user, second))
    assert job.status == "succeeded", job.error
    after = view_fees(session, user)
    assert set(after) == set(before)  # the same transactions, rewritten in place
    assert {tx for tx, (asset, _) in after.items() if asset is not None} < with_fee
    # what stays is a fee the second file still states (rows other than buys)
    assert all(after[tx] == before[tx] for tx in after if after[tx][0] is not None)
