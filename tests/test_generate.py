"""The generator: deterministic, exact row counts, coherent (balances never negative), and
what it says it wrote is what the parsers read back."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.generate import GenerateStats, generate
from devtools.pricesim.paths import MODELS, price_at
from ingest.cli import main
from ingest.extract.parse import parse_local_file
from ingest.normalize.canonical import FIAT

FORMATS = ["koinly", "coinbase", "binance", "kraken"]


def parsed(path: Path) -> list[dict]:
    result = parse_local_file(path, user_id="u")
    assert not result.errors, result.errors[:3]
    return result.table.to_pylist()


@pytest.fixture(scope="module")
def histories(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[GenerateStats, Path, Path | None]]:
    out = {}
    for fmt in FORMATS:
        d = tmp_path_factory.mktemp(fmt)
        peer = None if fmt == "koinly" else d / "peer.csv"  # koinly: both wallets in one file
        stats = generate(2500, fmt, 42, d / "main.csv", peer_out=peer)
        out[fmt] = (stats, d / "main.csv", peer)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_parse_matches_what_the_generator_reports(histories: dict, fmt: str) -> None:
    stats, main_path, peer_path = histories[fmt]
    results = [parse_local_file(main_path, user_id="u")] + (
        [parse_local_file(peer_path, user_id="u")] if peer_path else []
    )
    assert all(not r.errors for r in results)
    assert results[0].rows == stats.rows == 2500
    types = Counter(t for r in results for t in r.table.column("type").to_pylist())
    assert dict(types) == stats.by_type
    assert sum(len(r.skipped) for r in results) == stats.skipped
    assert len(stats.assets) >= 20 and set(stats.assets) <= set(MODELS)
    assert stats.transfers > 0 and stats.first and stats.last
    assert stats.first >= datetime(2022, 1, 1, tzinfo=timezone.utc)
    assert (stats.last - stats.first).days > 3 * 365 - 30


@pytest.mark.parametrize("fmt", FORMATS)
def test_balances_never_negative(histories: dict, fmt: str) -> None:
    _, main_path, peer_path = histories[fmt]
    txs = parsed(main_path) + (parsed(peer_path) if peer_path else [])
    balance: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    wallets = set()
    for tx in sorted(txs, key=lambda t: (t["timestamp"], t["source"] != fmt, t["source_line"])):
        w = tx["wallet"]
        wallets.add(w)
        for side, sign in (("sent", -1), ("received", 1), ("fee", -1)):
            asset, amount = tx[f"{side}_asset"], tx[f"{side}_amount"]
            if asset and asset not in FIAT:
                balance[w, asset] += sign * amount
        for key in [(w, tx["sent_asset"]), (w, tx["fee_asset"])]:
            assert balance.get(key, Decimal(0)) >= 0, (key, tx)
    assert len(wallets) == 2  # the exchange and the own second wallet


def test_transfers_pair_a_withdrawal_with_a_later_deposit(histories: dict) -> None:
    _, path, _ = histories["koinly"]
    txs = parsed(path)
    deposits = {t["tx_hash"]: t for t in txs if t["type"] == "deposit" and t["tx_hash"]}
    pairs = [
        (w, deposits[w["tx_hash"]])
        for w in txs
        if w["type"] == "withdrawal" and w["tx_hash"] in deposits
    ]
    assert len(pairs) > 50
    for w, d in pairs:
        assert w["wallet"] != d["wallet"] and w["sent_asset"] == d["received_asset"]
        assert w["sent_amount"] == d["received_amount"] and d["timestamp"] > w["timestamp"]


def test_assets_only_after_listing_and_prices_follow_the_paths(histories: dict) -> None:
    _, path, _ = histories["koinly"]
    for tx in parsed(path):
        for asset in (tx["sent_asset"], tx["received_asset"]):
            if asset in MODELS:
                listed = datetime.fromisoformat(MODELS[asset].listed).replace(tzinfo=timezone.utc)
                assert tx["timestamp"] >= listed
        if tx["type"] == "buy":
            implied = float(tx["sent_amount"] / tx["received_amount"])
            model = price_at(tx["received_asset"], tx["timestamp"])
            assert model and abs(implied / model - 1) < 0.02 + 0.02 * (tx["sent_amount"] < 50)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rows", [0, 1, 7, 120])
def test_row_count_is_exact(tmp_path: Path, fmt: str, rows: int) -> None:
    path = tmp_path / "out.csv"
    stats = generate(rows, fmt, 3, path, peer_out=tmp_path / "peer.csv")
    result = parse_local_file(path, user_id="u")
    assert stats.rows == rows == result.rows
    assert not result.errors
    preamble_and_header = {"coinbase": 4}.get(fmt, 1)
    assert path.read_bytes().count(b"\n") == preamble_and_header + rows


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a.csv", "b.csv", "c.csv"))
    sa, sb = (
        generate(800, "binance", 9, a, peer_out=tmp_path / "pa.csv"),
        generate(800, "binance", 9, b, peer_out=tmp_path / "pb.csv"),
    )
    generate(800, "binance", 10, c)
    assert a.read_bytes() == b.read_bytes() and sa.by_type == sb.by_type
    assert (tmp_path / "pa.csv").read_bytes() == (tmp_path / "pb.csv").read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("user_values", ["all", "some", "none"])
def test_user_values(tmp_path: Path, user_values: str) -> None:
    path = tmp_path / "k.csv"
    generate(400, "koinly", 5, path, user_values=user_values)
    txs = parsed(path)
    valued = {t["type"] for t in txs if t["fiat_value"] is not None}
    if user_values == "all":
        assert all(t["fiat_value"] is not None and t["fiat_currency"] == "USD" for t in txs)
    elif user_values == "some":
        assert valued == {"trade", "income"}
    else:
        assert not valued


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cb.csv"
    assert (
        main(
            [
                "generate",
                "--rows",
                "50",
                "--format",
                "coinbase",
                "--seed",
                "1",
                "--out",
                str(out),
                "--peer-out",
                str(tmp_path / "peer.csv"),
                "--start",
                "2021-06-01",
                "--years",
                "1",
            ]
        )
        == 0
    )
    assert "wrote 50 coinbase rows" in capsys.readouterr().out
    assert parse_local_file(out, user_id="u").rows == 50
