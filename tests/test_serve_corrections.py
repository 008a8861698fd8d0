"""Corrections through the running API (Serve, Ray, the pipeline, Cassandra): two real uploads,
then every correction kind accepted (202 with its job), listed in the audit list newest first with
a summary, undone (and undoing it again is a 409); a bad field is a 422 naming it, another user's
transaction a 404; the uploads list and deleting an upload."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from ingest.config import get_settings
from ingest.corrections.kinds import manual_tx_id
from ingest.load.cassandra import get_session
from ingest.load.users import create_token

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]
JOB_TIMEOUT_S = 300
HEADER = (
    "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,"
    "Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
)
# kraken: a buy, a withdrawal to the ledger, a sell; ledger: the deposit of that withdrawal and
# an ETH deposit from outside (unmatched: zero cost basis until one is stated).
KRAKEN = HEADER + (
    "2024-01-05 10:00:00 UTC,1000,USD,0.025,BTC,1.5,USD,1000,USD,,buy,\n"
    "2024-02-01 09:00:00 UTC,0.01,BTC,,,,,450,USD,,to ledger,\n"
    "2024-03-10 12:00:00 UTC,0.005,BTC,250,USD,,,250,USD,,sell,\n"
)
LEDGER = HEADER + (
    "2024-02-01 12:00:00 UTC,,,0.0099,BTC,,,445,USD,,from kraken,\n"
    "2024-04-01 08:00:00 UTC,,,1,ETH,,,3000,USD,,from a friend,\n"
)


@dataclass(frozen=True)
class Uploaded:
    user: str
    client: httpx.Client
    uploads: dict[str, str]  # wallet -> upload job id
    tx: dict[str, str]  # what a row is (buy, withdrawal, sell, btc_deposit, eth_deposit) -> tx_id


def wait_finished(client: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished after {JOB_TIMEOUT_S}s: {job}")


def upload(client: httpx.Client, body: str, wallet: str) -> str:
    resp = client.post(
        "/v1/uploads",
        params={"format": "koinly", "wallet": wallet, "name": f"{wallet}.csv"},
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    assert wait_finished(client, job_id)["status"] == "succeeded"
    return job_id


def client_of(base_url: str, user: str, session) -> httpx.Client:
    token = create_token(session, user)
    return httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def uploaded(serve_app, test_keyspace: str) -> Iterator[Uploaded]:
    session = get_session(get_settings(), test_keyspace)
    user = f"corr-api-{uuid.uuid4().hex[:8]}"
    client = client_of(serve_app.base_url, user, session)
    uploads = {
        "kraken": upload(client, KRAKEN, "kraken"),
        "ledger": upload(client, LEDGER, "ledger"),
    }
    by_what = {}
    for t in client.get("/v1/transactions").json()["items"]:
        asset = t["received_asset"] or t["sent_asset"]
        what = t["type"] if t["type"] != "deposit" else f"{asset.lower()}_deposit"
        by_what[what] = t["tx_id"]
    assert set(by_what) == {"buy", "withdrawal", "sell", "btc_deposit", "eth_deposit"}, by_what
    yield Uploaded(user, client, uploads, by_what)
    client.close()


def accepted(resp: httpx.Response) -> dict:
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert set(body) == {"correction_id", "job_id"}
    return body


def test_every_kind_is_accepted_listed_with_a_summary_and_undone(uploaded: Uploaded):
    client, tx = uploaded.client, uploaded.tx
    bodies = [
        {"kind": "edit", "tx_id": tx["eth_deposit"], "type": "income", "label": "gift"},
        {
            "kind": "cost_basis",
            "tx_id": tx["btc_deposit"],
            "cost_basis": "440.00",
            "currency": "USD",
        },
        {"kind": "ignore", "tx_id": tx["sell"], "ignored": True},
        {
            "kind": "mark_transfer",
            "withdrawal_tx_id": tx["withdrawal"],
            "deposit_tx_id": tx["btc_deposit"],
        },
        {
            "kind": "unmark_transfer",
            "withdrawal_tx_id": tx["withdrawal"],
            "deposit_tx_id": tx["btc_deposit"],
        },
        {
            "kind": "add",
            "wallet": "cold",
            "timestamp": "2024-05-01T10:00:00Z",
            "type": "buy",
            "sent_asset": "USD",
            "sent_amount": "500",
            "received_asset": "BTC",
            "received_amount": "0.008",
        },
        {"kind": "rename_wallet", "old": "ledger", "new": "Ledger Nano"},
    ]
    recorded = []
    for body in bodies:
        recorded.append(accepted(client.post("/v1/corrections", json=body)))
    added = manual_tx_id(uploaded.user, uuid.UUID(recorded[5]["correction_id"]))
    recorded.append(
        accepted(client.post("/v1/corrections", json={"kind": "delete_added", "tx_id": added}))
    )
    kinds = [b["kind"] for b in bodies] + ["delete_added"]

    audit = client.get("/v1/corrections", params={"limit": 100}).json()
    assert audit["next_page_token"] is None
    assert [i["kind"] for i in audit["items"]] == kinds[::-1]  # newest first
    assert [i["correction_id"] for i in audit["items"]] == [r["correction_id"] for r in recorded][
        ::-1
    ]
    for item in audit["items"]:
        assert item["recorded_by"] == uploaded.user and not item["undone"]
        assert item["summary"] and "\n" not in item["summary"]
    by_kind = {i["kind"]: i for i in audit["items"]}
    # transactions named as the history has them now (the ledger renamed); amounts exact
    assert by_kind["cost_basis"]["summary"] == (
        "Cost basis of the deposit of 0.0099 BTC in Ledger Nano set to 440 USD"
    )
    assert by_kind["cost_basis"]["change"] == {
        "tx_id": tx["btc_deposit"],
        "cost_basis": "440",
        "currency": "USD",
    }
    assert by_kind["rename_wallet"]["summary"] == "Rename wallet 'ledger' to 'Ledger Nano'"

    # every job is visible in the jobs list, like an upload's
    listed = {j["job_id"] for j in client.get("/v1/jobs", params={"limit": 100}).json()["items"]}
    assert {r["job_id"] for r in recorded} <= listed

    undos = [accepted(client.post(f"/v1/corrections/{r['correction_id']}/undo")) for r in recorded]
    again = client.post(f"/v1/corrections/{recorded[0]['correction_id']}/undo")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_undone"
    audit = client.get("/v1/corrections", params={"limit": 100}).json()["items"]
    state = {i["correction_id"]: (i["kind"], i["undone"]) for i in audit}
    assert all(state[r["correction_id"]][1] for r in recorded)
    assert all(state[u["correction_id"]] == ("undo", False) for u in undos)
    assert audit[0]["summary"].startswith("Undo: ")

    # an undo of an undo restores its target
    restore = accepted(client.post(f"/v1/corrections/{undos[2]['correction_id']}/undo"))
    audit = {i["correction_id"]: i for i in client.get("/v1/corrections").json()["items"]}
    assert not audit[recorded[2]["correction_id"]]["undone"]
    assert audit[undos[2]["correction_id"]]["undone"]

    # the jobs run one after another: the last one's end is all of theirs
    job = wait_finished(client, restore["job_id"])
    assert job["status"] == "succeeded", job


def refusal(resp: httpx.Response, status: int) -> list[dict]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body["error"]) == {"code", "message"}
    return body.get("fields") or []


def test_a_bad_field_is_a_422_naming_it(uploaded: Uploaded):
    client, tx = uploaded.client, uploaded.tx
    fields = refusal(
        client.post(
            "/v1/corrections",
            json={
                "kind": "cost_basis",
                "tx_id": tx["eth_deposit"],
                "cost_basis": "x",
                "currency": "USD",
            },
        ),
        422,
    )
    assert [f["field"] for f in fields] == ["cost_basis"]
    # what does not fit the transaction: a cost basis is stated on a deposit, not on a buy
    fields = refusal(
        client.post(
            "/v1/corrections",
            json={"kind": "cost_basis", "tx_id": tx["buy"], "cost_basis": "1", "currency": "USD"},
        ),
        422,
    )
    assert fields == [{"field": "tx_id", "message": "is a buy: a cost basis is set on a deposit"}]
    fields = refusal(
        client.post(
            "/v1/corrections",
            json={"kind": "edit", "tx_id": tx["buy"], "fiat_value": "-5", "fiat_currency": "USD"},
        ),
        422,
    )
    assert fields == [{"field": "fiat_value", "message": "must not be negative"}]
    fields = refusal(client.post("/v1/corrections", json={"kind": "delete_upload"}), 422)
    assert [f["field"] for f in fields] == ["kind"]  # deleting an upload: DELETE /v1/uploads/{id}


def test_another_users_transaction_or_correction_is_a_404(uploaded: Uploaded, serve_app, session):
    bob = client_of(serve_app.base_url, f"bob-{uuid.uuid4().hex[:8]}", session)
    fields = refusal(
        bob.post("/v1/corrections", json={"kind": "ignore", "tx_id": uploaded.tx["buy"]}), 404
    )
    assert fields == [
        {"field": "tx_id", "message": f"no transaction {uploaded.tx['buy']} in your history"}
    ]
    mine = accepted(
        uploaded.client.post(
            "/v1/corrections",
            json={"kind": "edit", "tx_id": uploaded.tx["buy"], "label": "first buy"},
        )
    )
    assert refusal(bob.post(f"/v1/corrections/{mine['correction_id']}/undo"), 404) == []
    assert refusal(bob.post("/v1/corrections/not-an-id/undo"), 404) == []
    assert bob.get("/v1/corrections").json() == {"items": [], "next_page_token": None}
    refusal(bob.delete(f"/v1/uploads/{uploaded.uploads['kraken']}"), 404)
    assert bob.get("/v1/uploads").json() == {"items": [], "next_page_token": None}
    bob.close()


def test_uploads_are_listed_and_one_is_deleted_once(uploaded: Uploaded):
    client = uploaded.client
    items = client.get("/v1/uploads").json()["items"]
    assert [i["job_id"] for i in items] == [uploaded.uploads["ledger"], uploaded.uploads["kraken"]]
    ledger = items[0]
    assert ledger == {
        **ledger,
        "filename": "ledger.csv",
        "source_format": "koinly",
        "rows_accepted": 2,
        "rows_rejected": 0,
        "status": "succeeded",
        "deleted": False,
    }
    deleted = accepted(client.delete(f"/v1/uploads/{uploaded.uploads['ledger']}"))
    again = client.delete(f"/v1/uploads/{uploaded.uploads['ledger']}")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_deleted"
    items = {i["job_id"]: i["deleted"] for i in client.get("/v1/uploads").json()["items"]}
    assert items == {uploaded.uploads["ledger"]: True, uploaded.uploads["kraken"]: False}
    audit = client.get("/v1/corrections").json()["items"]
    assert (audit[0]["correction_id"], audit[0]["kind"]) == (
        deleted["correction_id"],
        "delete_upload",
    )
    # undoable like any other
    accepted(client.post(f"/v1/corrections/{deleted['correction_id']}/undo"))
    items = {i["job_id"]: i["deleted"] for i in client.get("/v1/uploads").json()["items"]}
    assert items[uploaded.uploads["ledger"]] is False
    refusal(client.delete(f"/v1/uploads/{uuid.uuid4()}"), 404)
    assert wait_finished(client, deleted["job_id"])["status"] == "succeeded"


# --- the figures: a correction's incremental job equals a full recompute ------------------------
def figures(client: httpx.Client) -> dict:
    """What the user sees, without the times a job stamps: every year's gains and each year's
    per-asset lines, balances, transactions with their metrics, findings."""
    years = client.get("/v1/gains").json()["items"]
    per_year = {
        y["year"]: client.get("/v1/gains", params={"year": y["year"], "limit": 1000}).json()
        for y in years
    }
    balances = client.get("/v1/balances", params={"limit": 1000}).json()["items"]
    txs = client.get("/v1/transactions", params={"limit": 1000}).json()["items"]
    findings = client.get("/v1/reconciliation", params={"limit": 1000}).json()["items"]
    return {
        "years": years,
        "per_year": per_year,
        "balances": sorted(
            ({k: v for k, v in b.items() if k not in ("updated_at", "price_at")} for b in balances),
            key=lambda b: (b["wallet"], b["asset"]),
        ),
        "transactions": txs,
        "findings": sorted(
            findings, key=lambda f: (f["kind"], f["tx_id"] or "", f["detail"] or "")
        ),
    }


def full_recompute(client: httpx.Client) -> None:
    """A settings recompute with the same settings: the tax stage over the whole history."""
    settings = client.get("/v1/settings").json()
    resp = client.put("/v1/settings", json=settings)
    assert resp.status_code == 202, resp.text
    assert wait_finished(client, resp.json()["job_id"])["status"] == "succeeded"


def fresh_uploads(serve_app, session, label: str) -> tuple[httpx.Client, dict[str, str], dict]:
    user = f"{label}-{uuid.uuid4().hex[:8]}"
    client = client_of(serve_app.base_url, user, session)
    uploads = {w: upload(client, body, w) for w, body in (("kraken", KRAKEN), ("ledger", LEDGER))}
    by_type = {t["type"]: t["tx_id"] for t in client.get("/v1/transactions").json()["items"]}
    return client, uploads, by_type


def test_ignoring_a_buy_changes_the_gains_as_a_full_recompute_does(serve_app, session):
    client, _, tx = fresh_uploads(serve_app, session, "ignore-buy")
    before = figures(client)
    recorded = accepted(client.post("/v1/corrections", json={"kind": "ignore", "tx_id": tx["buy"]}))
    job = wait_finished(client, recorded["job_id"])
    assert job["status"] == "succeeded" and job["kind"] == "correction", job
    assert job["corrections"] == [recorded["correction_id"]]
    assert "BTC" in job["recomputed_assets"] and "ETH" not in job["recomputed_assets"]
    assert job["corrections_touched"]["BTC"] == "2024-01-05T10:00:00Z"  # the buy's time
    assert "ETH" not in job["corrections_touched"]
    after = figures(client)
    # the sell's units now come from nowhere: a zero basis, so a larger gain
    assert Decimal(after["years"][0]["gain"]) > Decimal(before["years"][0]["gain"])
    assert tx["buy"] not in {t["tx_id"] for t in after["transactions"]}

    full_recompute(client)
    assert figures(client) == after

    undo = accepted(client.post(f"/v1/corrections/{recorded['correction_id']}/undo"))
    assert wait_finished(client, undo["job_id"])["status"] == "succeeded"
    assert figures(client) == before
    client.close()


def test_an_upload_deleted_and_uploaded_again_gives_the_same_tables(serve_app, session):
    client, uploads, _ = fresh_uploads(serve_app, session, "delete-again")
    eth = next(
        t["tx_id"]
        for t in client.get("/v1/transactions").json()["items"]
        if t["received_asset"] == "ETH"
    )
    based = accepted(
        client.post(
            "/v1/corrections",
            json={"kind": "cost_basis", "tx_id": eth, "cost_basis": "2500", "currency": "USD"},
        )
    )
    assert wait_finished(client, based["job_id"])["status"] == "succeeded"
    before = figures(client)
    deleted = accepted(client.delete(f"/v1/uploads/{uploads['ledger']}"))
    assert wait_finished(client, deleted["job_id"])["status"] == "succeeded"
    gone = figures(client)
    assert {t["wallet"] for t in gone["transactions"]} == {"kraken"}
    # the basis names a row of the deleted upload: shown as not applied, with why
    listed = {i["correction_id"]: i for i in client.get("/v1/corrections").json()["items"]}
    assert listed[based["correction_id"]]["unapplied"] == f"no transaction {eth} in the history"
    full_recompute(client)
    assert figures(client) == gone

    again = upload(client, LEDGER, "ledger")
    assert figures(client) == before
    audit = {i["correction_id"]: i for i in client.get("/v1/corrections").json()["items"]}
    assert audit[based["correction_id"]]["unapplied"] is None  # the basis applies again
    items = {i["job_id"]: i["deleted"] for i in client.get("/v1/uploads").json()["items"]}
    assert items == {uploads["ledger"]: True, uploads["kraken"]: False, again: False}
    client.close()


def test_each_kind_changes_the_figures_as_a_full_recompute_does(serve_app, session):
    """Each kind in turn (the undo of an edit included), on top of the ones before it: the
    correction job's incremental figures change, and equal a full recompute's."""
    user = f"each-kind-{uuid.uuid4().hex[:8]}"
    client = client_of(serve_app.base_url, user, session)
    uploads = {w: upload(client, body, w) for w, body in (("kraken", KRAKEN), ("ledger", LEDGER))}
    tx = {}
    for t in client.get("/v1/transactions").json()["items"]:
        asset = t["received_asset"] or t["sent_asset"]
        tx[t["type"] if t["type"] != "deposit" else f"{asset.lower()}_deposit"] = t["tx_id"]
    transfer = {"withdrawal_tx_id": tx["withdrawal"], "deposit_tx_id": tx["btc_deposit"]}
    edit_id: list[str] = []
    added_id: list[str] = []
    steps = [
        ("edit", lambda: {"kind": "edit", "tx_id": tx["eth_deposit"], "type": "income"}),
        ("undo", lambda: None),
        (
            "cost_basis",
            lambda: {
                "kind": "cost_basis",
                "tx_id": tx["eth_deposit"],
                "cost_basis": "2500",
                "currency": "USD",
            },
        ),  # fmt: skip
        ("unmark_transfer", lambda: {"kind": "unmark_transfer", **transfer}),
        ("mark_transfer", lambda: {"kind": "mark_transfer", **transfer}),
        ("ignore", lambda: {"kind": "ignore", "tx_id": tx["sell"]}),
        (
            "add",
            lambda: {
                "kind": "add",
                "wallet": "kraken",
                "timestamp": "2024-05-01T10:00:00Z",
                "type": "sell",
                "sent_asset": "BTC",
                "sent_amount": "0.004",
                "received_asset": "USD",
                "received_amount": "200",
            },
        ),  # fmt: skip
        ("delete_added", lambda: {"kind": "delete_added", "tx_id": added_id[0]}),
        ("rename_wallet", lambda: {"kind": "rename_wallet", "old": "ledger", "new": "cold"}),
        ("delete_upload", lambda: None),
    ]
    before = figures(client)
    for kind, body in steps:
        if kind == "undo":
            resp = client.post(f"/v1/corrections/{edit_id[0]}/undo")
        elif kind == "delete_upload":
            resp = client.delete(f"/v1/uploads/{uploads['ledger']}")
        else:
            resp = client.post("/v1/corrections", json=body())
        recorded = accepted(resp)
        if kind == "edit":
            edit_id.append(recorded["correction_id"])
        if kind == "add":
            added_id.append(manual_tx_id(user, uuid.UUID(recorded["correction_id"])))
        job = wait_finished(client, recorded["job_id"])
        assert job["status"] == "succeeded" and job["kind"] == "correction", (kind, job)
        after = figures(client)
        assert after != before, f"{kind} changed nothing"
        full_recompute(client)
        assert figures(client) == after, (
            f"{kind}: the incremental figures are not a full recompute's"
        )
        before = after
    client.close()
