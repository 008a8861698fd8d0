"""Exchange rules of issue 22 (Bitvavo, Crypto.com App, Binance, Coinbase): amounts that used to be
accepted silently wrong now match the arithmetic the export's own rows state, conversions between
different assets are trades, 1:1 receipts are one holding, and the kinds these exports write are
read (fixtures hand-made from the exchanges' documented layouts, in tests/fixtures/formats/)."""

from __future__ import annotations

from decimal import Decimal as D

from ingest.extract.parse import parse_bytes
from tests.test_formats import rejected
from tests.test_formats_variants import by_name


def by_id(result) -> dict[str, dict]:
    return {r["external_id"]: r for r in result.table.to_pylist()}


def by_line(result) -> dict[int, dict]:
    return {r["source_line"]: r for r in result.table.to_pylist()}


def sides(row: dict) -> tuple:
    return (
        row["type"],
        row["sent_asset"],
        row["sent_amount"],
        row["received_asset"],
        row["received_amount"],
        row["fee_asset"],
        row["fee_amount"],
    )


def test_bitvavo_amounts_include_the_fee_so_it_is_not_charged_twice() -> None:
    result = by_name("bitvavo_fees")
    tx = by_id(result)
    buy, sell, withdrawal = tx["t-buy"], tx["t-sell"], tx["t-wd"]
    # buy 0.0005 BTC at 49,880 = 24.94 EUR; paid -25.00 = 24.94 + the 0.06 fee: cost 25.00
    assert sides(buy) == ("buy", "EUR", D("24.94"), "BTC", D("0.0005"), "EUR", D("0.06"))
    assert buy["sent_amount"] == D("0.0005") * D("49880")
    assert buy["sent_amount"] + buy["fee_amount"] == D("25.00")
    # sell 0.0002 BTC at 50,000 = 10.00 EUR; received 9.975 = 10.00 - the 0.025 fee
    assert sides(sell) == ("sell", "BTC", D("0.0002"), "EUR", D("10.000"), "EUR", D("0.025"))
    assert sell["received_amount"] == D("0.0002") * D("50000")
    assert sell["received_amount"] - sell["fee_amount"] == D("9.975")
    # a withdrawal's Amount includes its network fee: 0.0002 BTC leaves in all
    assert sides(withdrawal) == (
        "withdrawal",
        "BTC",
        D("0.00019"),
        None,
        None,
        "BTC",
        D("0.00001"),
    )
    assert withdrawal["sent_amount"] + withdrawal["fee_amount"] == D("0.0002")
    assert sides(tx["t-dep"])[:5] == ("deposit", None, None, "ETH", D("0.1"))
    assert (tx["t-stk"]["type"], tx["t-stk"]["label"]) == ("income", "staking")
    # a campaign incentive is income (in EUR here: fiat income is kept, see formats.base)
    camp = tx["t-camp"]
    assert (camp["type"], camp["label"], camp["received_asset"], camp["received_amount"]) == (
        "income",
        "reward",
        "EUR",
        D("10"),
    )
    # a row whose Amount x Quote Price is the paid amount itself: its fee is on top, and said so
    top = tx["t-top"]
    assert sides(top) == ("buy", "EUR", D("30.00"), "ETH", D("0.01"), "EUR", D("0.075"))
    assert top["sent_amount"] == D("0.01") * D("3000")
    assert "fee '0.075' charged on top" in top["description"]
    assert rejected(result) == [
        (
            8,
            "fee '0.06' in column Fee amount exceeds the amount it is included in; Amount x Quote "
            "Price does not match Received / Paid Amount (fee excluded) (0.03 vs 0.05): not a "
            "trade row as read",
            False,
        ),
        # 0.001 BTC at 50,000 is 50 EUR, not about 5: the columns do not mean what they say
        (
            10,
            "Amount x Quote Price does not match Received / Paid Amount (fee excluded) (50 vs "
            "5.01): not a trade row as read",
            False,
        ),
    ]


def test_bitvavo_row_without_a_type_is_rejected_as_missing() -> None:
    data = (
        b"Timezone,Date,Time,Type,Currency,Amount,Quote Currency,Quote Price,Received / Paid "
        b"Currency,Received / Paid Amount,Fee currency,Fee amount,Status,Transaction ID\n"
        b"UTC,2024-03-01,10:00:00,,BTC,0.0005,EUR,50000,EUR,-25.00,,,Completed,t-1\n"
    )
    result = parse_bytes(data, user_id="u", fmt="bitvavo")
    assert result.table.num_rows == 0
    assert rejected(result) == [(2, "missing type in column Type", False)]


def test_cryptocom_conversions_between_assets_are_trades_and_same_asset_moves_skipped() -> None:
    result = by_name("cryptocom_conversions")
    tx = by_line(result)
    # USDT -> USDC (crypto_wallet_swap): a disposal of USDT and an acquisition of USDC, valued at
    # what was given (the debited row's Native Amount)
    swap = tx[2]
    assert sides(swap) == ("trade", "USDT", D("100"), "USDC", D("99.9"), None, None)
    assert (swap["label"], swap["fiat_value"], swap["fiat_currency"]) == ("swap", D("92.5"), "EUR")
    assert sides(tx[4]) == ("trade", "MCO", D("10"), "CRO", D("400"), None, None)
    assert tx[4]["fiat_value"] == D("40")
    # CRO -> CRO (a lockup moved): one holding, skipped
    assert (
        6,
        "skipped: CRO on both sides: a rename or migration of one asset, no disposal",
        True,
    ) in rejected(result)
    assert 7 not in tx


def test_cryptocom_dust_is_split_by_each_coins_stated_value() -> None:
    tx = by_line(by_name("cryptocom_conversions"))
    doge, shib = tx[8], tx[9]
    # 80 CRO for DOGE worth 6.00 EUR and SHIB worth 2.00: 60 and 20, each trade at its value
    assert sides(doge) == ("trade", "DOGE", D("100"), "CRO", D("60"), None, None)
    assert sides(shib) == ("trade", "SHIB", D("200000"), "CRO", D("20"), None, None)
    assert (doge["fiat_value"], shib["fiat_value"]) == (D("6"), D("2"))
    assert doge["fiat_currency"] == shib["fiat_currency"] == "EUR"
    assert doge["received_amount"] + shib["received_amount"] == D("80")
    assert (
        doge["fiat_value"] / shib["fiat_value"] == doge["received_amount"] / shib["received_amount"]
    )


def test_cryptocom_reverted_reward_is_income_given_back_not_spending() -> None:
    tx = by_line(by_name("cryptocom_conversions"))
    cashback, reverted = tx[11], tx[12]
    assert (cashback["type"], cashback["received_amount"]) == ("income", D("5"))
    # the reversal is an income row whose units leave: negative income of the same label
    assert (reverted["type"], reverted["label"]) == ("income", "reward")
    assert (reverted["sent_asset"], reverted["sent_amount"], reverted["received_asset"]) == (
        "CRO",
        D("5"),
        None,
    )
    assert reverted["fiat_value"] == cashback["fiat_value"] == D("0.5")


def test_cryptocom_kinds_of_the_newer_app_exports() -> None:
    result = by_name("cryptocom_conversions")
    tx = by_line(result)
    assert (tx[13]["type"], tx[13]["label"], tx[13]["received_amount"]) == (
        "income",
        "reward",
        D("3"),
    )
    assert (tx[14]["type"], tx[14]["label"]) == ("income", "reward")  # lockup_swap_rebate
    # a payment refund: the CRO comes back at its stated value (an acquisition, not income)
    assert sides(tx[15])[:5] == ("buy", "EUR", D("2"), "CRO", D("20"))
    assert sides(tx[16])[:3] == ("withdrawal", "ATOM", D("1"))  # airdrop to the Exchange
    assert sides(tx[17])[:3] == ("withdrawal", "USDC", D("50"))  # invest_deposit
    assert sides(tx[18])[:5] == ("deposit", None, None, "USDC", D("50"))  # invest_withdrawal
    assert sides(tx[21])[:5] == ("buy", "EUR", D("100"), "CRO", D("1102.2"))
    reasons = {line: (reason, skipped) for line, reason, skipped in rejected(result)}
    assert reasons[19] == (
        "skipped: airdrop_locked: the airdrop cannot be claimed yet (not in the user's control: "
        "no holding, no income until it is)",
        True,
    )
    assert reasons[20][1] is True and "finance.lockup.dpos_unlock" in reasons[20][0]
    assert reasons[22] == (
        "unknown transaction kind 'brand_new_kind' in column Transaction Kind",
        False,
    )


def test_binance_savings_and_staking_receipts_are_one_holding_only_rewards_income() -> None:
    result = by_name("binance_receipts")
    tx = by_line(result)
    reasons = {line: (reason, skipped) for line, reason, skipped in rejected(result)}
    same = "skipped: {} on both sides: a rename or migration of one asset, no disposal"
    # Savings Distribution LDBTC +0.5 / BTC -0.5 in one second: a subscription, no income
    assert reasons[2] == reasons[3] == (same.format("BTC"), True)
    # alone, it pays the interest
    assert (tx[4]["type"], tx[4]["label"], tx[4]["received_asset"]) == ("income", "interest", "BTC")
    assert tx[4]["received_amount"] == D("0.0001")
    # ETH -> BETH (1:1 receipt): one holding, no trade; the BETH rewards are ETH income
    assert reasons[5] == reasons[6] == (same.format("ETH"), True)
    assert (tx[7]["type"], tx[7]["label"], tx[7]["received_asset"]) == ("income", "staking", "ETH")
    # C2C Transfer: out is a withdrawal, in a deposit
    assert sides(tx[8])[:3] == ("withdrawal", "USDT", D("100"))
    assert sides(tx[9])[:5] == ("deposit", None, None, "USDT", D("250"))
    assert reasons[10][1] is True  # Simple Earn subscription: a move
    assert (tx[11]["type"], tx[11]["label"]) == ("income", "interest")
    assert not [r for r in rejected(result) if not r[2]]


COINBASE_ETH2 = (
    b"ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,"
    b"Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,"
    b"Notes\n"
    b"cb-1,2021-03-01 10:00:00 UTC,Convert,ETH,1,USD,1500,$1500,$1500,$0,"
    b"Converted 1 ETH to 1 ETH2\n"
)


def test_coinbase_eth_to_eth2_follows_the_same_one_holding_rule() -> None:
    result = parse_bytes(COINBASE_ETH2, user_id="u", fmt="coinbase")
    assert result.table.num_rows == 0
    assert [(line, skipped) for line, _, skipped in rejected(result)] == [(2, True)]


def test_coinbase_tax_report_2019_amount_transacted_includes_the_fee() -> None:
    # three preamble lines, then the header; US dates without a time
    result = by_name("coinbase_2019")
    assert result.version == "coinbase-2019"
    tx = by_line(result)
    # bought 1 BTC for $4,399.73 inclusive of fees: that is the cost
    assert sides(tx[5]) == ("buy", "USD", D("4399.73"), "BTC", D("1"), None, None)
    assert sides(tx[6]) == ("sell", "BTC", D("0.5"), "USD", D("9309.22"), None, None)
    assert sides(tx[7])[:3] == ("withdrawal", "BTC", D("0.1"))
    assert sides(tx[8])[:5] == ("deposit", None, None, "ETH", D("2"))
    assert str(tx[5]["timestamp"]) == "2017-10-06 00:00:00+00:00"
    assert rejected(result) == []


def test_coinbase_pro_fills_total_is_size_times_price_and_the_fee() -> None:
    result = by_name("coinbase_pro_fills")
    assert result.version == "coinbase-pro-fills"
    tx = by_line(result)
    buy, sell, trade = tx[2], tx[3], tx[4]
    assert sides(buy) == ("buy", "USD", D("300"), "BTC", D("0.01"), "USD", D("1.5"))
    # total -301.5 = -(0.01 x 30,000) - 1.5
    assert buy["sent_amount"] == D("0.01") * D("30000")
    assert buy["sent_amount"] + buy["fee_amount"] == D("301.5")
    # total 159.2 = 0.004 x 40,000 - 0.8
    assert sides(sell) == ("sell", "BTC", D("0.004"), "USD", D("160"), "USD", D("0.8"))
    assert sell["received_amount"] - sell["fee_amount"] == D("159.2")
    assert sides(trade) == ("trade", "BTC", D("0.045"), "ETH", D("1.5"), "BTC", D("0.000225"))
    assert (buy["wallet"], buy["external_id"]) == ("coinbase-pro", "BTC-USD:1001")
    assert rejected(result) == [(5, "side 'HOLD' is neither BUY nor SELL", False)]


def test_coinbase_pro_account_statement_combines_a_trades_rows() -> None:
    result = by_name("coinbase_pro_account")
    assert result.version == "coinbase-pro-account"
    tx = by_line(result)
    # the two match rows and the fee row of trade 1001 are one buy
    assert sides(tx[3]) == ("buy", "USD", D("300"), "BTC", D("0.01"), "USD", D("1.5"))
    assert sides(tx[6]) == ("buy", "USD", D("100"), "USDC", D("100"), None, None)  # conversion
    assert sides(tx[8])[:3] == ("withdrawal", "BTC", D("0.01"))
    assert tx[8]["wallet"] == "coinbase-pro"
    assert rejected(result) == [
        (2, "skipped: fiat deposit is not a crypto movement (no tax effect)", True),
        (9, "unknown type 'rebate' in column type", False),
    ]


def test_an_income_reversal_cancels_the_income_and_its_units() -> None:
    from ingest.tax.engine import compute
    from tests.fixtures.tax.builders import income, valued_table

    reversal = dict(
        timestamp="2024-02-06",
        type="income",
        label="reward",
        sent_asset="CRO",
        sent_amount="5",
        value="0.5",
    )
    table = valued_table([income("2024-02-05", "CRO", "5", "0.5", label="reward"), reversal])
    for method, pooling in (("fifo", "per-wallet"), ("uk", "universal")):
        result = compute(table, method=method, pooling=pooling)
        assert [(i.label, i.quantity, i.value) for i in result.income] == [
            ("reward", D("5"), D("0.5")),
            ("reward", D("-5"), D("-0.5")),
        ]
        year = "2024" if method == "fifo" else "2023/24"
        assert result.years[year].income == D(0)
        assert result.disposals == []
        assert all(b.quantity == 0 for b in result.balances)  # nothing left held
        assert not result.findings


def test_binance_auto_invest_buys_units_with_the_amount_per_period_fee_on_top() -> None:
    result = by_name("binance_auto_invest")
    assert result.version == "binance-auto-invest"
    tx = by_line(result)
    assert sides(tx[2]) == ("trade", "USDT", D("50"), "BTC", D("0.00072857"), "USDT", D("0.05"))
    assert sides(tx[3])[3:5] == ("ETH", D("0.015233"))
    assert rejected(result) == [(4, "skipped: status 'Failed' is not a completed purchase", True)]


def test_binance_auto_invest_2022_layout_zone_in_the_date_column_name() -> None:
    # Auto-Invest Date(UTC), Holding Coin, Amount per period, Trading Fee, Units, From, Status
    result = by_name("binance_auto_invest_2022")
    assert result.version == "binance-auto-invest-2022"
    tx = by_line(result)
    # 20 USDT bought 0.00066 BTC; the 0.005 USDT fee on top: the period debited 20.005 USDT
    assert sides(tx[2]) == ("trade", "USDT", D("20"), "BTC", D("0.00066"), "USDT", D("0.005"))
    assert tx[2]["sent_amount"] + tx[2]["fee_amount"] == D("20.005")
    assert str(tx[2]["timestamp"]) == "2022-06-01 07:00:00+00:00"
    assert sides(tx[3]) == ("trade", "BUSD", D("10"), "ETH", D("0.0055"), "BUSD", D("0.0025"))
    assert rejected(result) == [(4, "skipped: status 'Failed' is not a completed purchase", True)]
    # the zone is the column's: tz does not move it
    moved = by_name("binance_auto_invest_2022", tz="Asia/Tokyo")
    assert (
        moved.table.column("timestamp").to_pylist() == result.table.column("timestamp").to_pylist()
    )


def test_binance_auto_invest_2022_saved_by_excel_reads_its_slashed_dates() -> None:
    # Binance gives this history as .xlsx; Excel's CSV writes '6/13/2022 7:00' (month first)
    data = (
        b"Auto-Invest Date(UTC),Holding Coin,Amount per period,Trading Fee,Units,From,Status\n"
        b"6/13/2022 7:00,BTC,20.00000000 USDT,0.00500000 USDT,0.00090000 BTC,Spot Wallet,Success\n"
    )
    result = parse_bytes(data, user_id="u")
    assert result.version == "binance-auto-invest-2022"
    (row,) = result.table.to_pylist()
    assert str(row["timestamp"]) == "2022-06-13 07:00:00+00:00"
    assert sides(row) == ("trade", "USDT", D("20"), "BTC", D("0.0009"), "USDT", D("0.005"))


def test_binance_eth2_staking_history_is_one_holding_and_wbeth_is_not_guessed() -> None:
    # Date(UTC), Coin, Token, Amount, Status: ETH staked for the BETH receipt, one for one
    result = by_name("binance_eth2_staking")
    assert result.version == "binance-eth2-staking"
    assert result.table.num_rows == 0  # no disposal, no acquisition: the ETH stays held
    same = "skipped: ETH on both sides: a rename or migration of one asset, no disposal"
    assert rejected(result) == [
        (2, same, True),
        (3, same, True),
        (4, "skipped: status 'Failed' is not a completed staking", True),
        (
            5,
            "Token 'WBETH' is no 1:1 receipt of the Coin: the file does not state how much of it "
            "was received",
            False,
        ),
    ]


def test_every_registered_version_is_listed_in_the_readme_table() -> None:
    from pathlib import Path

    from ingest.extract.formats import FORMATS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    # GET /v1/formats lists FORMATS; the README's Supported sources table must list the same
    missing = [
        name for name, spec in FORMATS.items() if f"| {spec.source_name} | `{name}` |" not in readme
    ]
    assert missing == []
    assert FORMATS["binance-eth2-staking"].source_name == "binance"
    assert FORMATS["binance-auto-invest-2022"].source_name == "binance"
