"""ledgerflow's metrics (ingest/observe/metrics.py) on Ray's Prometheus endpoint: scraped before,
during and after a real job, they move by exactly what the job did."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections import defaultdict

import pytest

from devtools.generate import generate
from ingest.extract.parse import parse_local_file
from ingest.vocabulary import FINISHED
from tests.test_pipeline import upload, wait

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]

SAMPLE = re.compile(r"^(?:ray_)?(ledgerflow_\w+?)(?:\{(.*)\})? ([0-9.eE+-]+|NaN)$")


def scrape() -> dict[tuple[str, str], float]:
    """(metric, 'k=v,...' of the ledgerflow tags) -> value summed over processes and nodes."""
    import ray

    totals: dict[tuple[str, str], float] = defaultdict(float)
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if not match or match.group(3) == "NaN":
                continue
            name, labels, value = match.groups()
            tags = dict(re.findall(r'(\w+)="([^"]*)"', labels or ""))
            ours = ",".join(
                f"{k}={tags[k]}"
                for k in ("stage", "outcome", "provider", "status", "result")
                if k in tags
            )
            totals[(name, ours)] += float(value)
    return totals


def total(sample: dict, name: str, tags: str | None = None) -> float:
    return sum(v for (n, t), v in sample.items() if n == name and (tags is None or t == tags))


def test_metrics_move_during_a_job(ray_local, session, cold_price_cache, tmp_path):
    path = tmp_path / "koinly.csv"
    generate(20_000, "koinly", seed=51, out=path, years=2.0, user_values="some")
    user = f"metrics-{uuid.uuid4().hex[:8]}"
    expected = parse_local_file(path, user_id=user)
    before = scrape()
    job_id = upload(session, user, path)

    # During the job: rows parsed rise before it ends, with tasks counted in flight.
    deadline = time.monotonic() + 300
    seen_in_flight = moved_while_running = False
    from ingest.load import jobs

    while time.monotonic() < deadline:
        now = scrape()
        running = jobs.get_job(session, job_id).status == "running"
        seen_in_flight |= total(now, "ledgerflow_tasks_in_flight") > 0
        if running and total(now, "ledgerflow_rows_parsed_total") > total(
            before, "ledgerflow_rows_parsed_total"
        ):
            moved_while_running = True
        if not running and jobs.get_job(session, job_id).status in FINISHED:
            break
        time.sleep(0.5)
    job = wait(session, job_id)
    assert job.status == "succeeded", job.error
    assert moved_while_running, "rows parsed did not move while the job ran"

    def delta(name: str, tags: str | None = None) -> float:
        return total(scrape(), name, tags) - total(before, name, tags)

    def settled(check) -> bool:  # exported every second or so: poll, never sleep a fixed time
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if check():
                return True
            time.sleep(1.0)
        return False

    rows = expected.table.num_rows
    assert settled(lambda: delta("ledgerflow_rows_stored_total") == rows)
    assert settled(lambda: delta("ledgerflow_rows_parsed_total") >= rows)
    assert settled(lambda: delta("ledgerflow_jobs_total", "outcome=succeeded") == 1)
    for stage in ("parse", "store", "prices", "tax"):
        assert settled(
            lambda stage=stage: delta("ledgerflow_stage_seconds_count", f"stage={stage}") == 1
        ), stage
    assert settled(lambda: delta("ledgerflow_tax_assets_computed_total") >= 1)
    assert settled(
        lambda: delta("ledgerflow_price_requests_total", "provider=coingecko,status=ok") >= 1
    )
    assert settled(lambda: delta("ledgerflow_price_cache_windows_total", "result=miss") >= 1)
    assert settled(lambda: total(scrape(), "ledgerflow_tasks_in_flight") == 0)
    assert seen_in_flight, "no task was ever counted in flight"
