"""execute_batches against the real node: every row lands whatever the byte budget."""

from __future__ import annotations

from ingest.load.cassandra import execute, execute_batches

INSERT = "INSERT INTO job_progress (job_id, stage, part, done, total) VALUES (?, ?, ?, ?, ?)"


def test_byte_budget_splits_batches_and_writes_every_row(session):
    import uuid

    jobs = [uuid.uuid4() for _ in range(3)]
    parts = {
        job: [
            (job, "s" * size, part, part, 0)
            for part, size in enumerate([10, 3000, 5, 9000, 1, 40000, 2] * 5)
        ]
        for job in jobs
    }
    # 40 KB rows exceed a 4 KiB budget: they go alone, nothing is dropped
    assert execute_batches(session, INSERT, parts, max_bytes=4096, concurrency=2) == 3 * 35
    for job in jobs:
        rows = list(
            execute(session, "SELECT part, done FROM job_progress WHERE job_id = ?", (job,))
        )
        assert sorted(r["part"] for r in rows) == list(range(35))
    assert execute_batches(session, INSERT, {}, max_rows=3) == 0
