"""One reporting currency per job, end to end: prices are fetched, cached, read back and valued in
the user's currency (EUR, GBP), and a job equals `ledgerflow tax` under that currency."""

from __future__ import annotations

import csv
import json
import uuid
from datetime import timezone
from decimal import Decimal

import pytest

from devtools.generate import generate
from devtools.pricesim import paths
from ingest.cli import main as cli
from ingest.load import queries
from ingest.load.cassandra import execute
from ingest.load.users import UserSettings, put_user_settings
from ingest.vocabulary import Method, Pooling
from tests.test_pipeline import upload, view_count, wait
from tests.test_pipeline_vs_cli import cents

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]
FIAT_COLUMNS = ("Sent Currency", "Received Currency", "Fee Currency", "Net Worth Currency")


def relabel_fiat(path, currency: str) -> None:
    """The generated file's USD amounts, stated in `currency` instead."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    columns = [header.index(c) for c in FIAT_COLUMNS]
    for row in rows[1:]:
        for i in columns:
            if row[i] == "USD":
                row[i] = currency
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def view_rows(session, user: str) -> list[dict]:
    months = {
        r["month"]
        for r in execute(session, "SELECT month FROM user_months WHERE user_id = ?", (user,))
    }
    return [
        queries.with_metrics(r)
        for m in months
        for r in execute(
            session, "SELECT * FROM transactions_view WHERE user_id = ? AND month = ?", (user, m)
        )
    ]


@pytest.mark.parametrize("currency", ["EUR", "GBP"])
def test_job_and_cli_agree_in_the_users_currency(ray_local, session, tmp_path, currency):
    user = f"fx-{currency.lower()}-{uuid.uuid4().hex[:8]}"
    put_user_settings(session, user, UserSettings(Method.FIFO, Pooling.PER_WALLET, currency))
    path = tmp_path / "koinly.csv"
    generate(1200, "koinly", seed=21, out=path, years=2.0, user_values="all")
    relabel_fiat(path, currency)

    job = wait(session, upload(session, user, path, fmt="koinly"))
    assert job.status == "succeeded", job.error
    rows = view_rows(session, user)
    assert len(rows) == view_count(session, user) > 0
    assert all(
        r["value"] is not None and r["value"] > 0
        for r in rows
        if r["type"] in ("buy", "sell", "trade")
    )

    out = tmp_path / "report"
    assert (
        cli(
            [
                "tax",
                str(path),
                "--method",
                "fifo",
                "--pooling",
                "per-wallet",
                "--currency",
                currency,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    offline = json.loads((out / "summary.json").read_text())["years"]
    online = {
        r["year"]: r
        for r in execute(session, "SELECT * FROM yearly_summary WHERE user_id = ?", (user,))
        if r["asset"] == "*"
    }
    assert sorted(online) == sorted(offline)
    for year, figures in offline.items():
        for key in ("proceeds", "cost_basis", "short_term_gain", "long_term_gain", "income"):
            assert cents(online[year][key]) == cents(figures[key]), (currency, year, key)


@pytest.mark.parametrize("currency", ["EUR", "GBP"])
def test_fetched_prices_are_in_the_users_currency(ray_local, session, tmp_path, currency):
    """Binance crypto-for-crypto trades have no fiat side: their value comes from the price
    service, asked, cached and read back in the user's currency. A row's price is its asset's
    fetched point, or, when the other side (a stablecoin first) valued the row, the unit price
    that value implies (value / amount)."""
    user = f"fxp-{currency.lower()}-{uuid.uuid4().hex[:8]}"
    put_user_settings(session, user, UserSettings(Method.FIFO, Pooling.PER_WALLET, currency))
    path = tmp_path / "binance.csv"
    generate(1500, "binance", seed=5, out=path, years=1.0)

    job = wait(session, upload(session, user, path))
    assert job.status == "succeeded", job.error
    fetched = [r for r in view_rows(session, user) if r["price_source"] == "hour"]
    assert fetched, "the file should need fetched prices"
    for row in fetched:
        assert row["price"] is not None and row["price"] > 0, row
        ts = row["timestamp"].replace(tzinfo=timezone.utc)
        expected = {
            a: paths.price_at(a, ts, currency)
            for a in (row["sent_asset"], row["received_asset"])
            if a
        }
        amounts = {
            row["sent_asset"]: row["sent_amount"],
            row["received_asset"]: row["received_amount"],
        }
        implied = {
            a: float(amounts[b]) * p_b / float(amounts[a])
            for a in expected
            for b, p_b in expected.items()
            if b != a and p_b and amounts.get(a) and amounts.get(b)
        }
        got = float(row["price"])
        assert any(p and abs(got - p) <= 1e-9 * p + 1e-12 for p in expected.values()) or any(
            abs(got - p) <= 1e-6 * p for p in implied.values()
        ), (row["tx_id"], got, expected, implied)
        usd = {a: paths.price_at(a, ts) for a in expected}
        assert not any(p and abs(got - p) <= 1e-9 * p for p in usd.values()), "priced in USD"
        assert Decimal(row["value"]) > 0
