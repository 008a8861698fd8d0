"""The pipeline's tax stage (Ray tasks per asset, results written to Cassandra) produces the same
numbers as the offline `ledgerflow tax` CLI for the same transactions, crypto fees included (a fee
in an asset the row trades is valued at the row's own rate on both paths: ingest/prices/
valuation.py)."""

from __future__ import annotations

import csv
import json
import uuid
from decimal import ROUND_HALF_UP, Decimal

import pytest

from devtools.generate import generate
from ingest.cli import main as cli
from ingest.load.cassandra import execute
from ingest.load.queries import iter_disposals
from tests.test_pipeline import upload, wait

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]
CENT = Decimal("0.01")


def cents(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def test_pipeline_numbers_equal_the_offline_cli(ray_local, session, tmp_path):
    user = f"same-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "koinly.csv"
    generate(1500, "koinly", seed=8, out=path, years=2.0, user_values="all")

    job = wait(session, upload(session, user, path, fmt="koinly"))
    assert job.status == "succeeded", job.error

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
                "USD",
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
            assert cents(online[year][key]) == cents(figures[key]), (year, key)

    with open(out / "disposals.csv") as f:
        offline_lines = sum(1 for _ in csv.DictReader(f))
    online_lines = sum(1 for year in offline for _ in iter_disposals(session, user, year))
    assert online_lines == offline_lines

    with open(out / "balances.csv") as f:
        offline_balances = {
            (r["wallet"], r["asset"]): Decimal(r["quantity"]) for r in csv.DictReader(f)
        }
    online_balances = {
        (r["wallet"], r["asset"]): r["quantity"]
        for r in execute(
            session, "SELECT wallet, asset, quantity FROM balances WHERE user_id = ?", (user,)
        )
    }
    assert online_balances == offline_balances
