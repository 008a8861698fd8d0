"""The generic mapped CSV over real HTTP through Serve: the column mapping saved per user (PUT /
GET /v1/formats/mapping, 422 on an invalid one), listed by GET /v1/formats, and an upload with
?format=mapped parsed by the job with that mapping."""

from __future__ import annotations

import pytest

from tests.test_serve_pipeline import wait_finished

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]

MAPPING = {
    "timestamp": "When",
    "type": "Kind",
    "sent_amount": "Out",
    "sent_asset": "Out Coin",
    "received_amount": "In",
    "received_asset": "In Coin",
    "fee_amount": "Fee",
    "fee_asset": "Fee Coin",
    "timestamp_format": "%d/%m/%Y %H:%M",
}
# Every row has a fiat side, so valuing it needs no price provider.
BODY = """\
When;Kind;Out;Out Coin;In;In Coin;Fee;Fee Coin
05/01/2024 14:03;buy;1000;USD;0.025;BTC;2.5;USD
10/02/2024 12:00;sell;0.01;BTC;450;USD;;
30/02/2024 09:00;;0.1;BTC;5;USD;;
"""


def test_mapping_saved_per_user_and_used_by_an_upload(api_client_for, fresh_user):
    client = api_client_for(fresh_user("mapped"))
    assert client.get("/v1/formats/mapping").status_code == 404
    # refused: an amount without its asset column (nothing is stored)
    resp = client.put("/v1/formats/mapping", json={"timestamp": "When", "sent_amount": "Out"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid_mapping"
    assert "sent_amount and sent_asset go together" in resp.json()["error"]["message"]
    assert client.put("/v1/formats/mapping", json={"sent_amount": "Out"}).status_code == 422
    # refused: a timestamp format the parser cannot read a sample back with (was saved, 200)
    resp = client.put("/v1/formats/mapping", json={**MAPPING, "timestamp_format": "%Q%Y"})
    assert resp.status_code == 422, resp.text
    assert "%Q%Y" in resp.json()["error"]["message"]
    assert client.get("/v1/formats/mapping").status_code == 404
    # no mapping yet: an upload with format=mapped is refused before any byte is stored
    resp = client.post(
        "/v1/uploads",
        params={"format": "mapped"},
        content=BODY.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "no_mapping"

    resp = client.put("/v1/formats/mapping", json=MAPPING)
    assert resp.status_code == 200, resp.text
    saved = client.get("/v1/formats/mapping").json()
    assert {k: v for k, v in saved.items() if v is not None} == MAPPING
    listed = {f["name"]: f for f in client.get("/v1/formats").json()["items"]}
    assert listed["mapped"]["columns"] == ["When", "Out", "Out Coin", "In", "In Coin"]
    assert {
        "bybit-spot-trades",
        "okx-trades",
        "kucoin-trades",
        "gemini",
        "bitstamp",
        "cryptocom",
        "bitvavo",
    } <= set(listed)

    # a file without the mapped columns: 415 at once
    resp = client.post(
        "/v1/uploads",
        params={"format": "mapped"},
        content=b"a,b\n1,2\n",
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 415, resp.text
    resp = client.post(
        "/v1/uploads",
        params={"format": "mapped", "wallet": "sheet"},
        content=BODY.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 202, resp.text
    job = wait_finished(client, resp.json()["job_id"])
    assert (job["status"], job["accepted"], job["rejected"]) == ("succeeded", 2, 1), job
    errors = client.get(job["errors_url"]).json()["items"]
    assert [(e["line"], e["reason"]) for e in errors] == [
        (4, "bad date '30/02/2024 09:00' in column When")
    ]
    txs = client.get("/v1/transactions").json()["items"]
    assert [(t["timestamp"], t["type"], t["wallet"]) for t in txs] == [
        ("2024-02-10T12:00:00Z", "sell", "sheet"),
        ("2024-01-05T14:03:00Z", "buy", "sheet"),
    ]
