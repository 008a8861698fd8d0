"""`ledgerflow backfill` submitted as a Ray job through the Jobs API (JobSubmissionClient against
a local head with its dashboard; what `ray job submit -- ledgerflow backfill ...` does): the Ray
job succeeds, is listed, and its ledgerflow job ends with exactly the file's rows."""

from __future__ import annotations

import uuid

import pytest

from devtools.generate import generate
from tests.plugins.pricesim import free_port
from tests.test_ray_cluster import assert_exact, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]


def test_backfill_as_a_ray_job(session, pipeline_pricesim, tmp_path):
    path = tmp_path / "kraken.csv"
    generate(2000, "kraken", seed=61, out=path, years=1.0)
    user = f"backfill-{uuid.uuid4().hex[:8]}"
    facts = run_scenario("ray_job", user=user, file=path, dashboard_port=free_port())
    assert facts["ray_job_status"] == "SUCCEEDED", facts["logs"]
    assert facts["listed"]
    assert f"succeeded: {path.name} accepted" in facts["logs"]
    assert_exact(session, user, path, facts)
