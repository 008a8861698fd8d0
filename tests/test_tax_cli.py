"""`ledgerflow tax`: the offline report, from real export files in tests/fixtures/tax through
the real parser and valuation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ingest.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "tax"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def check_koinly_report(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == [
        "balances.csv",
        "disposals.csv",
        "form8949-2024.csv",
        "income.csv",
        "issues.csv",
        "schedule-d-2024.csv",
        "summary.json",
        "turbotax-2024.txf",
    ]
    assert [
        (f["part"], f["box"], f["proceeds"], f["cost_basis"], f["gain_or_loss"])
        for f in read_csv(out / "form8949-2024.csv")
    ] == [
        ("II", "F", "30000.00", "5005.00", "24995.00"),
        ("II", "F", "6000.00", "1001.00", "4999.00"),
    ]
    assert [
        (s["form"], s["line"], s["box"], s["proceeds"], s["gain_or_loss"])
        for s in read_csv(out / "schedule-d-2024.csv")
    ] == [
        ("8949", "2", "F", "36000.00", "29994.00"),
        ("Schedule D", "10", "F", "36000.00", "29994.00"),
    ]
    assert (out / "turbotax-2024.txf").read_text().count("N714") == 2
    disposals = read_csv(out / "disposals.csv")
    assert [
        (
            d["asset"],
            d["quantity"],
            d["date_acquired"],
            d["date_sold"],
            d["proceeds"],
            d["cost_basis"],
            d["gain"],
            d["term"],
        )
        for d in disposals
    ] == [
        ("BTC", "0.5", "2023-01-10", "2024-03-01", "30000.00", "5005.00", "24995.00", "long"),
        ("BTC", "0.1", "2023-01-10", "2024-03-05", "6000.00", "1001.00", "4999.00", "long"),
    ]
    income = read_csv(out / "income.csv")
    assert [(i["asset"], i["quantity"], i["date"], i["value"], i["label"]) for i in income] == [
        ("SOL", "50", "2023-06-01", "1000.00", "staking")
    ]
    balances = {
        b["asset"]: (b["quantity"], b["cost_basis"]) for b in read_csv(out / "balances.csv")
    }
    assert balances == {
        "BTC": ("0.2", "2002.00"),
        "ETH": ("2", "6000.00"),
        "SOL": ("50", "1000.00"),
    }
    issues = read_csv(out / "issues.csv")
    assert [(i["kind"], i["asset"], i["source"].rsplit(":", 1)[-1]) for i in issues] == [
        ("unmatched_withdrawal", "BTC", "6")
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["currency"] == "USD" and summary["method"] == "fifo"
    assert summary["years"]["2023"]["income"] == "1000.00"
    assert summary["years"]["2024"] == {
        "proceeds": "36000.00",
        "cost_basis": "6006.00",
        "short_term_gain": "0.00",
        "long_term_gain": "29994.00",
        "gain": "29994.00",
        "income": "0.00",
    }


def test_cli_reconciles_across_files(tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        main(
            [
                "tax",
                str(FIXTURES / "koinly_universal.csv"),
                str(FIXTURES / "koinly_ledger.csv"),
                "--out",
                str(out),
                "--method",
                "hifo",
                "--pooling",
                "per-wallet",
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert read_csv(out / "issues.csv") == []
    fee = read_csv(out / "disposals.csv")[-1]
    # 0.001 BTC lost in the transfer, at the withdrawal's 65,000 / BTC
    assert (fee["quantity"], fee["proceeds"], fee["cost_basis"]) == ("0.001", "65.00", "10.01")
    balances = {
        b["wallet"]: b["quantity"] for b in read_csv(out / "balances.csv") if b["asset"] == "BTC"
    }
    assert balances == {"koinly": "0.2", "ledger": "0.199"}


def test_cli_rejects_rows_without_value_naming_file_and_line(tmp_path, capsys):
    lines = (FIXTURES / "koinly_universal.csv").read_text().splitlines()
    swap = lines[4].split(",")
    assert swap[10] == "swap"
    swap[7] = swap[8] = ""  # a crypto-to-crypto trade with no Net Worth
    lines[4] = ",".join(swap)
    (tmp_path / "koinly.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "report"
    assert main(["tax", str(tmp_path / "koinly.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "koinly.csv:5" in err and "no value" in err
    assert not out.exists()


def test_cli_uk_defaults_to_universal_and_refuses_per_wallet(tmp_path, capsys):
    src = FIXTURES / "koinly_universal.csv"
    out = tmp_path / "uk"
    assert main(["tax", str(src), "--method", "uk", "--currency", "USD", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["years"]) == ["2023/24"]  # 6 Apr 2023 - 5 Apr 2024
    assert summary["pooling"] == "universal"
    assert summary["years"]["2023/24"]["short_term_gain"] is None
    sa108 = read_csv(out / "sa108-2023-24.csv")
    assert [r["description"] for r in sa108][0] == "Number of disposals"
    assert not list(out.glob("form8949-*.csv"))  # no holding period: no 8949 lines
    assert (
        main(["tax", str(src), "--method", "uk", "--pooling", "per-wallet", "--out", str(out)]) == 2
    )
    assert "universal" in capsys.readouterr().err


def test_cli_missing_file_is_an_error(tmp_path, capsys):
    assert main(["tax", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_end_to_end_on_a_koinly_file(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "tax",
            str(FIXTURES / "koinly_universal.csv"),
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
    assert code == 0, capsys.readouterr().err
    check_koinly_report(out)


def test_cli_fails_when_every_row_was_rejected(tmp_path, capsys):
    src = tmp_path / "all_bad.csv"
    src.write_text(
        "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
        "Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
        "not a date,,,1,BTC,,,,,,,\n2024-01-01 00:00:00 UTC,,,x,BTC,,,,,,,\n"
    )
    out = tmp_path / "out"
    assert main(["tax", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "every row was rejected (2 rows)" in err and "all_bad.csv:2: rejected" in err
    assert not (out / "summary.json").exists()
