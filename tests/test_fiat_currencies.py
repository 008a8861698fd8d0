"""Which currency codes are fiat (ISO 4217 through pycountry, see ingest/normalize/canonical.py),
and a file in a currency a hand list would have missed."""

from __future__ import annotations

import csv
from pathlib import Path

from ingest.cli import main
from ingest.normalize.assets import PROVIDER_IDS
from ingest.normalize.canonical import FIAT

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def test_every_iso_4217_currency_is_fiat_and_no_known_crypto_is() -> None:
    assert {"CZK", "HUF", "RON", "CNY", "ILS", "USD", "EUR", "XOF", "ZWG"} <= FIAT
    assert {"HRK", "LTL", "VEF"} <= FIAT  # withdrawn, still in the exports of their years
    # metals, the SDR, the testing and no-currency codes are no money a wallet holds
    assert not {"XAU", "XAG", "XPT", "XPD", "XDR", "XTS", "XXX", "CLF", "USN"} & FIAT
    # ISO codes that are crypto tickers at the supported exchanges stay crypto
    assert not {"MNT", "ERN"} & FIAT
    assert not set(PROVIDER_IDS) & FIAT
    assert not {"BTC", "XBT", "XRP", "XLM", "XMR", "XTZ", "XCH", "XEC", "USDT", "USDC"} & FIAT


def test_czk_coinbase_export_has_no_czk_disposals_and_the_gain_of_its_rows(tmp_path, capsys):
    out = tmp_path / "report"
    args = [str(FIXTURES / "coinbase_czk.csv"), "--currency", "CZK", "--out", str(out)]
    assert main(["tax", *args, "--method", "fifo", "--pooling", "per-wallet"]) == 0, (
        capsys.readouterr().err
    )
    with (out / "disposals.csv").open(newline="") as f:
        disposals = [
            (d["asset"], d["quantity"], d["proceeds"], d["cost_basis"], d["gain"])
            for d in csv.DictReader(f)
        ]
    # bought 0.01 BTC for 10,000 CZK + 150 fee, sold it for 15,000 CZK - 200 fee: the bank
    # deposit and withdrawal in CZK move no crypto, and CZK is never a lot
    assert disposals == [("BTC", "0.01", "14800.00", "10150.00", "4650.00")]
