"""Corrections on the real services (Ray, Cassandra, price simulator), without HTTP: a deleted
upload's rows leave every table, and uploading the file again gives the same tables as before."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from devtools.generate import generate
from ingest.config import get_settings
from ingest.corrections import store
from ingest.corrections.kinds import DeleteUpload
from ingest.load.cassandra import execute
from ingest.load.transactions import user_months
from ingest.pipeline.recompute import record_and_recompute
from ingest.vocabulary import JobKind
from tests.test_pipeline import upload, wait

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]


def tables(session, user: str) -> dict[str, Any]:
    """Every derived row of the user: what the query API reads (not when it was written)."""

    def rows(cql: str, *params: Any) -> list[tuple]:
        found = execute(session, cql, (user, *params), fetch_size=5000)
        return sorted(
            tuple(sorted((k, repr(v)) for k, v in r.items() if k != "updated_at")) for r in found
        )

    years = sorted(
        {
            r["year"]
            for r in execute(session, "SELECT year FROM yearly_summary WHERE user_id = ?", (user,))
        }  # fmt: skip
    )
    view = []
    for month in sorted(user_months(session, user)):
        view += rows("SELECT * FROM transactions_view WHERE user_id = ? AND month = ?", month)
    return {
        "summary": rows("SELECT * FROM yearly_summary WHERE user_id = ?"),
        "balances": rows("SELECT * FROM balances WHERE user_id = ?"),
        "disposals": [
            rows("SELECT * FROM disposal_chunks WHERE user_id = ? AND year = ?", year)
            for year in years
        ],
        "findings": rows("SELECT * FROM finding_chunks WHERE user_id = ?"),
        "view": view,
    }


def test_a_deleted_upload_uploaded_again_gives_the_same_tables(ray_local, session, tmp_path):
    user = f"corr-{uuid.uuid4().hex[:8]}"
    path, peer = tmp_path / "binance.csv", tmp_path / "peer.csv"
    generate(3000, "binance", seed=7, out=path, peer_out=peer, years=2.0)
    first = wait(session, upload(session, user, path))
    alone = tables(session, user)
    peer_job = wait(session, upload(session, user, peer, fmt="koinly"))
    assert (first.status, peer_job.status) == ("succeeded", "succeeded")
    both = tables(session, user)
    assert both != alone

    correction, job_id = record_and_recompute(
        session, get_settings(), user, DeleteUpload(str(peer_job.job_id)), by="tester"
    )
    job = wait(session, job_id)
    assert (job.kind, job.status) == (JobKind.CORRECTION, "succeeded")
    assert job.summary["corrections"] == [str(correction.correction_id)]
    assert job.summary["tax"]["recomputed_assets"]  # the peer file's assets, named
    assert job.completed_stages == {"tax"}
    assert tables(session, user)["view"] == alone["view"]
    assert tables(session, user) == alone

    again = wait(session, upload(session, user, peer, fmt="koinly"))
    assert again.status == "succeeded"
    assert tables(session, user) == both
    # the correction stays recorded (and undoable): the rows are back through the new upload
    assert [c.correction_id for c in store.list_corrections(session, user)] == [
        correction.correction_id
    ]
