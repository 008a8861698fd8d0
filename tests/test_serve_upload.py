"""POST /v1/uploads over real HTTP through Serve: streamed to storage byte for byte, the job
recorded, and every refusal in the error shape. Plus auth and the OpenAPI pages."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from ingest.config import PROJECT_ROOT
from ingest.extract import storage
from ingest.load import jobs
from ingest.load.queries import user_jobs_page
from ingest.vocabulary import JobStatus

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]

HEADER = (
    "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
    "Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
)


def koinly_csv(rows: int) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        lines.append(
            f"2024-01-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00 UTC,{100 + i}.25,USD,"
            f"0.00{i % 9 + 1}2345,BTC,0.5,USD,{100 + i}.25,USD,,buy {i},\n"
        )
    return "".join(lines).encode()


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def stored_bytes(uri: str) -> bytes:
    with storage.open_input(uri) as f:
        return f.read()


def stored_files(serve_app) -> set[Path]:
    return {p for p in serve_app.storage_dir.rglob("*") if p.is_file()}


def test_raw_upload_is_accepted_before_processing_and_stored_byte_for_byte(
    serve_app, api_client_for, fresh_user, session
):
    user = fresh_user("up")
    client = api_client_for(user)
    body = koinly_csv(30_000)  # ~3 MB: many chunks through the proxy
    assert 2_000_000 < len(body) < serve_app.max_upload_bytes
    resp = client.post(
        "/v1/uploads",
        params={
            "format": "koinly",
            "wallet": "my koinly",
            "tz": "Europe/Berlin",
            "name": "export 2024.csv",
        },
        content=body,
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert answer["status"] == "queued" and answer["size_bytes"] == len(body)
    assert answer["sha256"] == hashlib.sha256(body).hexdigest()
    # Answered before the job ran (no wall-clock bound: upload speed is a benchmark's).
    job = jobs.get_job(session, uuid.UUID(answer["job_id"]))
    assert job is not None and job.user_id == user and job.kind == "upload"
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert (job.format, job.wallet, job.tz, job.file_name) == (
        "koinly",
        "my koinly",
        "Europe/Berlin",
        "export 2024.csv",
    )
    assert job.size_bytes == len(body) and job.file_sha256 == answer["sha256"]
    assert job.file_uri.startswith(str(serve_app.storage_dir))
    assert stored_bytes(job.file_uri) == body


def test_multipart_upload_streams_the_file_field(serve_app, api_client_for, fresh_user, session):
    client = api_client_for(fresh_user("mp"))
    body = koinly_csv(2000)
    resp = client.post(
        "/v1/uploads",
        files={"file": ("binance.csv", body, "text/csv")},
        data={"comment": "ignored"},
    )
    assert resp.status_code == 202, resp.text
    job = jobs.get_job(session, uuid.UUID(resp.json()["job_id"]))
    assert job.file_name == "binance.csv" and job.format is None
    assert stored_bytes(job.file_uri) == body and job.size_bytes == len(body)


def test_too_large_is_413_with_or_without_content_length(
    serve_app, api_client_for, fresh_user, session
):
    user = fresh_user("big")
    client = api_client_for(user)
    files_before = stored_files(serve_app)
    too_big = b"Koinly Date,Amount,Currency\n" + b"1,2,3\n" * (serve_app.max_upload_bytes // 6)
    assert_error(
        client.post("/v1/uploads", content=too_big, headers={"Content-Type": "text/csv"}),
        413,
        "payload_too_large",
    )

    def chunked():  # no Content-Length: refused once the stream passes the cap
        for i in range(0, len(too_big), 256 * 1024):
            yield too_big[i : i + 256 * 1024]

    try:
        resp = client.post("/v1/uploads", content=chunked(), headers={"Content-Type": "text/csv"})
    except httpx.TransportError:  # the server may close before the client finished sending
        pass
    else:
        assert_error(resp, 413, "payload_too_large")
    assert user_jobs_page(session, user, 10, None).rows == []
    assert stored_files(serve_app) == files_before  # the partial file was deleted


@pytest.mark.parametrize("content_type", ["application/json", "image/png", None])
def test_wrong_content_type_is_415(serve_app, api_client_for, fresh_user, content_type):
    client = api_client_for(fresh_user("ct"))
    headers = {"Content-Type": content_type} if content_type else {}
    err = assert_error(
        client.post("/v1/uploads", content=b"a,b\n1,2\n", headers=headers),
        415,
        "unsupported_media_type",
    )
    assert "text/csv" in err["message"]


@pytest.mark.parametrize(
    "body,code",
    [
        (b"", "empty_file"),
        (b"a,b\n1,\x002\n", "not_csv"),
        (b"\xff\xfeD\x00a\x00t\x00e\x00", "not_csv"),  # UTF-16
        (b"PK\x03\x04" + b"\x00" * 64, "not_csv"),  # an .xlsx (zip)
        (b"<html><body>nothing to see</body></html>\n", "not_csv"),
    ],
)
def test_empty_or_non_csv_is_400(serve_app, api_client_for, fresh_user, session, body, code):
    user = fresh_user("bad")
    client = api_client_for(user)
    files_before = stored_files(serve_app)
    assert_error(
        client.post("/v1/uploads", content=body, headers={"Content-Type": "text/csv"}), 400, code
    )
    assert user_jobs_page(session, user, 10, None).rows == []
    assert stored_files(serve_app) == files_before


def test_unknown_header_is_415_before_any_job(serve_app, api_client_for, fresh_user, session):
    user = fresh_user("unknown")
    client = api_client_for(user)
    files_before = stored_files(serve_app)
    err = assert_error(
        client.post(
            "/v1/uploads",
            content=b"Date,Amount,Asset\n2024-01-01,1,BTC\n",
            headers={"Content-Type": "text/csv"},
        ),
        415,
        "unrecognized_format",
    )
    assert "closest: line 1" in err["message"] and "GET /v1/formats" in err["message"]
    assert user_jobs_page(session, user, 10, None).rows == []
    assert stored_files(serve_app) == files_before


def test_formats_are_listed_with_their_headers(serve_app, api_client_for, fresh_user):
    resp = api_client_for(fresh_user("formats")).get("/v1/formats")
    assert resp.status_code == 200
    items = {f["name"]: f for f in resp.json()["items"]}
    assert items["coinbase-2020"]["source"] == "coinbase"
    assert "{ccy} Subtotal" in items["coinbase-2020"]["columns"]
    assert items["binance"]["optional_columns"] == ["Remark"]
    assert items["bybit-spot-trades-2024"]["columns"][-1] == "Timestamp (UTC+0)"
    assert (items["binance"]["zoned"], items["binance-2025"]["zoned"]) == (True, False)
    assert items["gemini"]["date_order"] == "mdy"
    assert httpx.get(f"{serve_app.base_url}/v1/formats", timeout=30).status_code == 401


@pytest.mark.parametrize(
    "params,code",
    [
        ({"format": "excel"}, "unknown_format"),
        ({"tz": "Mars/Olympus"}, "unknown_tz"),
        # zoneinfo knows these, the parser (Arrow) does not: they were 202, then a failed job
        ({"tz": "Factory"}, "unknown_tz"),
        ({"tz": "right/UTC"}, "unknown_tz"),
        ({"tz": "posixrules"}, "unknown_tz"),
    ],
)
def test_bad_parameters_are_400(serve_app, api_client_for, fresh_user, params, code):
    client = api_client_for(fresh_user("param"))
    assert_error(
        client.post(
            "/v1/uploads",
            params=params,
            content=b"a,b\n1,2\n",
            headers={"Content-Type": "text/csv"},
        ),
        400,
        code,
    )


def test_a_second_file_in_a_multipart_body_is_400_naming_the_rule(
    serve_app, api_client_for, fresh_user, session
):
    user = fresh_user("twofiles")
    client = api_client_for(user)
    files = [
        ("file", ("a.csv", koinly_csv(3), "text/csv")),
        ("file", ("b.csv", koinly_csv(4), "text/csv")),
    ]
    error = assert_error(client.post("/v1/uploads", files=files), 400, "one_file_per_upload")
    assert "one file per upload" in error["message"]
    assert user_jobs_page(session, user, 10, None).rows == []


def test_multipart_without_file_field_is_400(serve_app, api_client_for, fresh_user):
    client = api_client_for(fresh_user("nofile"))
    assert_error(client.post("/v1/uploads", files={"other": ("a.csv", b"a,b\n", "text/csv")}), 400)


@pytest.mark.parametrize(
    "path,method",
    [
        ("/v1/uploads", "POST"),
        ("/v1/transactions", "GET"),
        ("/v1/jobs/00000000-0000-0000-0000-000000000000", "GET"),
        ("/v1/settings", "PUT"),
    ],
)
def test_missing_or_wrong_token_is_401(serve_app, path, method):
    for headers in (
        {},
        {"Authorization": "Bearer lf_not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        resp = httpx.request(
            method,
            serve_app.base_url + path,
            headers={**headers, "Content-Type": "text/csv"},
            content=b"a,b\n",
            timeout=30,
        )
        assert_error(resp, 401, "unauthorized")
        assert resp.headers.get("www-authenticate") == "Bearer"


def test_health_and_openapi_pages(serve_app):
    assert httpx.get(f"{serve_app.base_url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{serve_app.base_url}/docs").status_code == 200
    query_paths = httpx.get(f"{serve_app.base_url}/openapi.json").json()["paths"]
    assert {
        "/v1/jobs/{job_id}",
        "/v1/transactions",
        "/v1/balances",
        "/v1/gains",
        "/v1/reports/form8949.csv",
        "/v1/reconciliation",
        "/v1/settings",
    } <= set(query_paths)
    assert httpx.get(f"{serve_app.base_url}/v1/uploads/docs").status_code == 200
    upload_doc = httpx.get(f"{serve_app.base_url}/v1/uploads/openapi.json").json()
    assert upload_doc["servers"] == [{"url": "/v1/uploads"}]
    assert "multipart/form-data" in upload_doc["paths"][""]["post"]["requestBody"]["content"]


def test_unknown_route_is_404_in_the_error_shape(serve_app):
    assert_error(httpx.get(f"{serve_app.base_url}/v1/nothing-here"), 404, "not_found")


def test_token_cli_prints_a_working_token_last(serve_app, fresh_user):
    user = fresh_user("cli")
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "token", "create", user],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.split()[-1]
    resp = httpx.get(
        f"{serve_app.base_url}/v1/settings",
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 200, resp.text


def test_the_same_file_with_other_options_is_409_naming_the_earlier_job(
    serve_app, api_client_for, fresh_user, session
):
    from ingest.load.history_chunks import count_history
    from tests.test_job_handoff import wait_status

    user = fresh_user("dup")
    client = api_client_for(user)
    body = koinly_csv(5)
    first = client.post(
        "/v1/uploads",
        params={"format": "koinly", "wallet": "ledger"},
        content=body,
        headers={"content-type": "text/csv"},
    )
    assert first.status_code == 202, first.text
    first_id = first.json()["job_id"]
    for other in ({"wallet": "trezor"}, {"wallet": "ledger", "tz": "Europe/Berlin"}, {}):
        resp = client.post(
            "/v1/uploads",
            params={"format": "koinly", **other},
            content=body,
            headers={"content-type": "text/csv"},
        )
        error = assert_error(resp, 409, "duplicate_file")
        assert first_id in error["message"] and "wallet=ledger" in error["message"]
    # The same options: the same upload, which adds no rows.
    again = client.post(
        "/v1/uploads",
        params={"format": "koinly", "wallet": "ledger"},
        content=body,
        headers={"content-type": "text/csv"},
    )
    assert again.status_code == 202, again.text
    for job_id in (first_id, again.json()["job_id"]):
        assert wait_status(session, uuid.UUID(job_id)).status == "succeeded"
    assert count_history(session, user) == 5
    assert len(user_jobs_page(session, user, 100, None).rows) == 2
    # Another user's identical file is their own upload.
    other_user = api_client_for(fresh_user("dup-other"))
    assert (
        other_user.post(
            "/v1/uploads",
            params={"wallet": "trezor"},
            content=body,
            headers={"content-type": "text/csv"},
        ).status_code
        == 202
    )


def test_one_row_with_nul_bytes_is_a_rejected_row_and_the_rest_is_kept(
    serve_app, api_client_for, fresh_user, session
):
    from tests.test_job_handoff import wait_status

    client = api_client_for(fresh_user("nul"))
    lines = koinly_csv(2000).split(b"\n")
    lines[1500] = b"\x00\x00binary\x00junk\x00"  # file line 1501
    resp = client.post(
        "/v1/uploads",
        params={"format": "koinly"},
        content=b"\n".join(lines),
        headers={"content-type": "text/csv"},
    )
    assert resp.status_code == 202, resp.text
    job = wait_status(session, uuid.UUID(resp.json()["job_id"]))
    assert (job.status, job.accepted, job.rejected) == ("succeeded", 1999, 1), job.error
    rows = client.get(f"/v1/jobs/{job.job_id}/errors").json()["items"]
    assert [(r["line"], r["reason"]) for r in rows] == [
        (1501, "the row contains NUL bytes (binary data, not text)")
    ]
