"""A small job stays small on the real services (Ray, Cassandra, price simulator): its fan-out
follows its rows, and its first upload leaves no tombstone in the view. Task counts come from the
job record (`summary.tasks`, what the job submitted to Ray), never from timings."""

from __future__ import annotations

import uuid

import pytest

from benchmarks.tombstones import traced_view_read
from devtools.generate import generate
from ingest.load.transactions import user_months
from tests.test_pipeline import upload, wait

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
