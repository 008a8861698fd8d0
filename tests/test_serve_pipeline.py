"""End to end through the API: `ledgerflow upload --watch` streams a file to the running Serve
app, the real pipeline runs the job to its end, the API shows the counts, the rejected rows and
the priced transactions. Needs the pipeline (ingest.pipeline.*)."""
from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from ingest.cli import main as cli
from ingest.load.users import create_token

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]

# Every row has a fiat side, so valuing it needs no price provider.
KOINLY_EXPORT = """\
Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash
2024-01-05 10:00:00 UTC,1000,USD,0.025,BTC,1.5,USD,1000,USD,,first buy,
2024-02-10 12:00:00 UTC,0.01,BTC,450,USD,,,450,USD,,partial sell,
2024-03-01 09:30:00 UTC,2300.10,USD,1,ETH,,,2300.10,USD,,eth buy,
yesterday,10,USD,0.001,BTC,,,10,USD,,bad date,
2024-03-02 09:30:00 UTC,5,USD,-0.001,BTC,,,5,USD,,negative received,
"""
GOOD_ROWS, BAD_LINES = 3, [5, 6]
JOB_TIMEOUT_S = 180


def wait_finished(client: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished after {JOB_TIMEOUT_S}s: {job}")


def test_upload_watch_until_succeeded_with_exact_counts(serve_app, session, tmp_path, capsys,
                                                        fresh_user):
    user = fresh_user("e2e")
    token = create_token(session, user)
    export = tmp_path / "koinly-2024.csv"
    export.write_text(KOINLY_EXPORT)

    code = cli(["upload", str(export), "--format", "koinly", "--wallet", "ledger", "--watch",
                "--api", serve_app.base_url, "--token", token])
    out = capsys.readouterr().out
    assert code == 0, out
    job_id = re.search(r"^job ([0-9a-f-]{36})$", out, re.M).group(1)
    assert f"succeeded: {GOOD_ROWS} rows accepted, {len(BAD_LINES)} rejected" in out
    assert f"rejected rows: {serve_app.base_url}/v1/jobs/{job_id}/errors" in out

    client = httpx.Client(base_url=serve_app.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})
    job = wait_finished(client, job_id)
    assert (job["status"], job["accepted"], job["rejected"]) == ("succeeded", GOOD_ROWS,
                                                                 len(BAD_LINES))
    assert job["detected_format"] in (None, "koinly") and job["wallet"] == "ledger"
    errors = client.get(job["errors_url"]).json()["items"]
    assert [e["line"] for e in errors] == BAD_LINES and all(e["reason"] for e in errors)
    txs = client.get("/v1/transactions").json()["items"]
    assert [t["timestamp"] for t in txs] == ["2024-03-01T09:30:00Z", "2024-02-10T12:00:00Z",
                                             "2024-01-05T10:00:00Z"]
    assert {t["wallet"] for t in txs} == {"ledger"}


def test_settings_change_recompute_job_succeeds(serve_app, api_client_for, fresh_user):
    client = api_client_for(fresh_user("recompute"))
    resp = client.put("/v1/settings", json={"method": "lifo", "pooling": "universal"})
    assert resp.status_code == 202
    job = wait_finished(client, resp.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert uuid.UUID(job["job_id"])
