"""`ledgerflow tax`: the offline report. The parser is stubbed with canonical tables (the
valuation is the real one), so the CLI's own contract is tested whatever the state of
ingest.extract.parse; the end-to-end test on a real Koinly file runs once the parser exists."""
from __future__ import annotations

import csv
import importlib.util
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.cli import main
from ingest.normalize.canonical import CANONICAL_COLUMNS
from tests.fixtures.tax.builders import valued_table

FIXTURES = Path(__file__).parent / "fixtures" / "tax"


@dataclass
class FakeParseResult:
    table: pa.Table
    rejected: list
    format: str
    rows: int


def canonical(rows: list[dict], source_file: str) -> pa.Table:
    for line, row in enumerate(rows, start=2):
        row.setdefault("source_file", source_file)
        row.setdefault("source_line", line)
        row.setdefault("tx_id", f"{source_file}-{line}")
        row.setdefault("wallet", "koinly")
        row.setdefault("source", "koinly")
    return valued_table(rows).select(list(CANONICAL_COLUMNS))


def koinly_rows() -> list[dict]:
    """What koinly_universal.csv holds, as canonical rows (values come from the valuation)."""
    return [
        dict(timestamp="2023-01-10T10:00", type="buy", sent_asset="USD", sent_amount=10000,
             received_asset="BTC", received_amount=1, fee_asset="USD", fee_amount=10),
        dict(timestamp="2023-06-01T09:00", type="income", label="staking", received_asset="SOL",
             received_amount=50, fiat_value=1000, fiat_currency="USD"),
        dict(timestamp="2024-03-01T12:00", type="sell", sent_asset="BTC", sent_amount="0.5",
             received_asset="USD", received_amount=30000),
        dict(timestamp="2024-03-05T12:00", type="trade", sent_asset="BTC", sent_amount="0.1",
             received_asset="ETH", received_amount=2, fiat_value=6000, fiat_currency="USD"),
        dict(timestamp="2024-04-01T08:00", type="withdrawal", sent_asset="BTC", sent_amount="0.2",
             fiat_value=13000, fiat_currency="USD", tx_hash="0xfeed"),
    ]


@pytest.fixture
def stub_parser(monkeypatch):
    tables: dict[str, pa.Table] = {}
    module = types.ModuleType("ingest.extract.parse")

    def parse_local_file(path, *, user_id, fmt=None, wallet=None, tz=None):
        table = tables[Path(path).name]
        return FakeParseResult(table=table, rejected=[], format="koinly", rows=table.num_rows)

    module.parse_local_file = parse_local_file
    monkeypatch.setitem(sys.modules, "ingest.extract.parse", module)
    return tables


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def check_koinly_report(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == [
        "balances.csv", "disposals.csv", "income.csv", "issues.csv", "summary.json"]
    disposals = read_csv(out / "disposals.csv")
    assert [(d["asset"], d["quantity"], d["date_acquired"], d["date_sold"], d["proceeds"],
             d["cost_basis"], d["gain"], d["term"]) for d in disposals] == [
        ("BTC", "0.5", "2023-01-10", "2024-03-01", "30000.00", "5005.00", "24995.00", "long"),
        ("BTC", "0.1", "2023-01-10", "2024-03-05", "6000.00", "1001.00", "4999.00", "long")]
    income = read_csv(out / "income.csv")
    assert [(i["asset"], i["quantity"], i["date"], i["value"], i["label"]) for i in income] == [
        ("SOL", "50", "2023-06-01", "1000.00", "staking")]
    balances = {b["asset"]: (b["quantity"], b["cost_basis"])
                for b in read_csv(out / "balances.csv")}
    assert balances == {"BTC": ("0.2", "2002.00"), "ETH": ("2", "6000.00"),
                        "SOL": ("50", "1000.00")}
    issues = read_csv(out / "issues.csv")
    assert [(i["kind"], i["asset"], i["source"].rsplit(":", 1)[-1]) for i in issues] == [
        ("unmatched_withdrawal", "BTC", "6")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["currency"] == "USD" and summary["method"] == "fifo"
    assert summary["years"]["2023"]["income"] == "1000.00"
    assert summary["years"]["2024"] == {
        "proceeds": "36000.00", "cost_basis": "6006.00", "short_term_gain": "0.00",
        "long_term_gain": "29994.00", "gain": "29994.00", "income": "0.00"}


def test_cli_writes_the_report(stub_parser, tmp_path, capsys):
    stub_parser["koinly.csv"] = canonical(koinly_rows(), "koinly.csv")
    (tmp_path / "koinly.csv").write_text("stub")
    out = tmp_path / "report"
    code = main(["tax", str(tmp_path / "koinly.csv"), "--method", "fifo", "--pooling",
                 "per-wallet", "--currency", "USD", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    check_koinly_report(out)


def test_cli_reconciles_across_files(stub_parser, tmp_path, capsys):
    stub_parser["exchange.csv"] = canonical(koinly_rows(), "exchange.csv")
    stub_parser["ledger.csv"] = canonical([dict(
        timestamp="2024-04-01T09:00", type="deposit", wallet="ledger", received_asset="BTC",
        received_amount="0.199", tx_hash="FEED")], "ledger.csv")
    for name in stub_parser:
        (tmp_path / name).write_text("stub")
    out = tmp_path / "report"
    assert main(["tax", str(tmp_path / "exchange.csv"), str(tmp_path / "ledger.csv"),
                 "--out", str(out), "--method", "hifo", "--pooling", "per-wallet"]) == 0
    assert read_csv(out / "issues.csv") == []
    fee = read_csv(out / "disposals.csv")[-1]
    # 0.001 BTC lost in the transfer, at the withdrawal's 65,000 / BTC
    assert (fee["quantity"], fee["proceeds"], fee["cost_basis"]) == ("0.001", "65.00", "10.01")
    balances = {b["wallet"]: b["quantity"] for b in read_csv(out / "balances.csv")
                if b["asset"] == "BTC"}
    assert balances == {"koinly": "0.2", "ledger": "0.199"}


def test_cli_rejects_rows_without_value_naming_file_and_line(stub_parser, tmp_path, capsys):
    rows = koinly_rows()
    rows[3].pop("fiat_value")     # a crypto-to-crypto trade with no Net Worth
    stub_parser["koinly.csv"] = canonical(rows, "koinly.csv")
    (tmp_path / "koinly.csv").write_text("stub")
    out = tmp_path / "report"
    assert main(["tax", str(tmp_path / "koinly.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "koinly.csv:5" in err and "no value" in err
    assert not out.exists()


def test_cli_uk_defaults_to_universal_and_refuses_per_wallet(stub_parser, tmp_path, capsys):
    stub_parser["koinly.csv"] = canonical(koinly_rows(), "koinly.csv")
    (tmp_path / "koinly.csv").write_text("stub")
    out = tmp_path / "uk"
    assert main(["tax", str(tmp_path / "koinly.csv"), "--method", "uk", "--currency", "USD",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["years"]) == ["2023/24"]   # 6 Apr 2023 - 5 Apr 2024
    assert summary["pooling"] == "universal"
    assert summary["years"]["2023/24"]["short_term_gain"] is None
    assert main(["tax", str(tmp_path / "koinly.csv"), "--method", "uk", "--pooling",
                 "per-wallet", "--out", str(out)]) == 2
    assert "universal" in capsys.readouterr().err


def test_cli_missing_file_is_an_error(tmp_path, capsys):
    assert main(["tax", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("ingest.extract.parse") is None,
                    reason="ingest.extract.parse (the local file parser) is not written yet")
def test_cli_end_to_end_on_a_koinly_file(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["tax", str(FIXTURES / "koinly_universal.csv"), "--method", "fifo",
                 "--pooling", "per-wallet", "--currency", "USD", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    check_koinly_report(out)


def test_cli_fails_when_every_row_was_rejected(tmp_path, capsys):
    src = tmp_path / "all_bad.csv"
    src.write_text("Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
                   "Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
                   "not a date,,,1,BTC,,,,,,,\n2024-01-01 00:00:00 UTC,,,x,BTC,,,,,,,\n")
    out = tmp_path / "out"
    assert main(["tax", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "every row was rejected (2 rows)" in err and "all_bad.csv:2: rejected" in err
    assert not (out / "summary.json").exists()
