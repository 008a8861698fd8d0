"""End to end through the API: `ledgerflow upload --watch` streams a file to the running Serve
app, the real pipeline runs the job to its end, the API shows the counts, the rejected rows and
the priced transactions. Needs the pipeline (ingest.pipeline.*)."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import httpx
import pytest

from devtools.generate import generate
from ingest.cli import main as cli
from ingest.load.users import create_token
from tests.test_pipeline_vs_cli import cents

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


def test_upload_watch_until_succeeded_with_exact_counts(
    serve_app, session, tmp_path, capsys, fresh_user
):
    user = fresh_user("e2e")
    token = create_token(session, user)
    export = tmp_path / "koinly-2024.csv"
    export.write_text(KOINLY_EXPORT)

    code = cli(
        [
            "upload",
            str(export),
            "--format",
            "koinly",
            "--wallet",
            "ledger",
            "--watch",
            "--api",
            serve_app.base_url,
            "--token",
            token,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    job_id = re.search(r"^job ([0-9a-f-]{36})$", out, re.M).group(1)
    assert f"succeeded: {GOOD_ROWS} new transactions, 0 already stored" in out
    assert f"  {len(BAD_LINES)} rows rejected: " in out
    assert f"rejected and skipped rows: {serve_app.base_url}/v1/jobs/{job_id}/errors" in out

    client = httpx.Client(
        base_url=serve_app.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    job = wait_finished(client, job_id)
    assert (job["status"], job["accepted"], job["rejected"]) == (
        "succeeded",
        GOOD_ROWS,
        len(BAD_LINES),
    )
    assert job["detected_format"] in (None, "koinly") and job["wallet"] == "ledger"
    errors = client.get(job["errors_url"]).json()["items"]
    assert [e["line"] for e in errors] == BAD_LINES and all(e["reason"] for e in errors)
    txs = client.get("/v1/transactions").json()["items"]
    assert [t["timestamp"] for t in txs] == [
        "2024-03-01T09:30:00Z",
        "2024-02-10T12:00:00Z",
        "2024-01-05T10:00:00Z",
    ]
    assert {t["wallet"] for t in txs} == {"ledger"}


def gains_by_year(client: httpx.Client) -> dict[str, dict]:
    return {r["year"]: r for r in client.get("/v1/gains").json()["items"]}


def offline_totals(path, method: str, out) -> dict[str, dict]:
    """`ledgerflow tax` with `method` on the same file: its years' totals."""
    assert (
        cli(
            [
                "tax",
                str(path),
                "--method",
                method,
                "--pooling",
                "per-wallet",
                "--currency",
                "USD",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return json.loads((out / "summary.json").read_text())["years"]


def test_settings_change_recomputes_real_data_as_the_method_says(
    serve_app, api_client_for, fresh_user, tmp_path
):
    """A recompute of a user with history: FIFO then HIFO gains differ (HIFO sells the dearest
    lots first), and each equals `ledgerflow tax` with that method on the same file."""
    client = api_client_for(fresh_user("recompute"))
    path = tmp_path / "koinly.csv"
    generate(1500, "koinly", seed=8, out=path, years=2.0, user_values="all")
    resp = client.post(
        "/v1/uploads?format=koinly&name=koinly.csv",
        content=path.read_bytes(),
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 202, resp.text
    assert wait_finished(client, resp.json()["job_id"])["status"] == "succeeded"
    fifo = gains_by_year(client)

    resp = client.put("/v1/settings", json={"method": "hifo", "pooling": "per-wallet"})
    assert resp.status_code == 202
    job = wait_finished(client, resp.json()["job_id"])
    assert job["status"] == "succeeded" and job["kind"] == "recompute", job
    hifo = gains_by_year(client)

    assert sorted(fifo) == sorted(hifo) and fifo
    for method, online in (("fifo", fifo), ("hifo", hifo)):
        offline = offline_totals(path, method, tmp_path / method)
        assert sorted(offline) == sorted(online)
        for year, figures in offline.items():
            for key in ("proceeds", "cost_basis", "gain", "income"):
                assert cents(online[year][key]) == cents(figures[key]), (method, year, key)
    # Same disposals, other lots: proceeds and income stay, cost basis and gain move.
    assert {y: fifo[y]["proceeds"] for y in fifo} == {y: hifo[y]["proceeds"] for y in hifo}
    assert any(Decimal(fifo[y]["gain"]) != Decimal(hifo[y]["gain"]) for y in fifo)


def test_a_job_says_how_it_read_ambiguous_dates_and_keeps_utc_columns_utc(
    serve_app, session, fresh_user
):
    # Koinly's universal template after Excel: every day <= 12, so the order is Koinly's
    # convention (month first), said on the job; Koinly dates are UTC, so tz moves nothing
    token = create_token(session, fresh_user("dates"))
    client = httpx.Client(
        base_url=serve_app.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    body = (
        "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
        "Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
        "04/06/2022 11:03:00,1000,USD,0.025,BTC,,,1000,USD,,,\n"
        "05/07/2022 9:15,400,USD,0.01,BTC,,,400,USD,,,\n"
    )
    resp = client.post(
        "/v1/uploads",
        params={"format": "koinly", "tz": "Europe/Berlin"},
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 202, resp.text
    job = wait_finished(client, resp.json()["job_id"])
    assert (job["status"], job["accepted"], job["rejected"]) == ("succeeded", 2, 0)
    assert job["notes"] == [
        "slashed dates read month first (M/D/Y), the convention of koinly: no day above 12 in "
        "the file tells the order; check a date you know"
    ]
    txs = client.get("/v1/transactions").json()["items"]
    assert [t["timestamp"] for t in txs] == ["2022-05-07T09:15:00Z", "2022-04-06T11:03:00Z"]
