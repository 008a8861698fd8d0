"""Binance transaction history ("Generate all statements"): User_ID, UTC_Time, Account,
Operation, Coin, Change, Remark. Every row is one signed balance change.

Trades span several rows: rows of one operation family at the same User_ID + UTC_Time + Account
form one transaction (combined after partitioning, so the rows may sit in different chunks).
Families: trade (Buy, Sell, Fee, Transaction Buy/Spend/Fee/Sold/Revenue/Related), convert
(Binance Convert), otc (Large OTC trading), dust (Small Assets Exchange BNB, BNB Fee Deduction),
card (Buy Crypto, Buy Crypto With Card), and the conversions ETH 2.0 Staking, Stablecoins
Auto-Conversion, Leverage Token Redemption. In a group a negative Change is the sent side, a
positive one the received side; Fee / Transaction Fee rows are the fee. Type from the sides
(buy / sell / trade); dust conversions of several coins are split into one trade per coin (see
parse.combine_groups).

1:1 receipts (one rule for every source, ingest/tax/README.md "1:1 receipts"): a token Binance
issues one for one against a coin it holds for the user (LD<coin> of Simple Earn / Savings,
BETH of ETH 2.0 Staking) is that coin (ingest.normalize.assets), so a subscription or
redemption moves one holding: ETH 2.0 Staking (ETH out, BETH in) combines to ETH on both
sides and is skipped, and Savings Distribution rows of one coin and instant (LDBTC in, BTC
out) are one group, skipped alike; a Savings Distribution row alone (only the coin in) is the
interest it pays: income/interest.

One-row operations (case-insensitive):
- Deposit, Fiat Deposit -> deposit; Withdraw, Fiat Withdraw(al), Send -> withdrawal (Binance's
  Change already includes the withdrawal fee); fiat ones are skipped (see base).
- income: staking (Staking Rewards, POS savings interest, ETH 2.0 Staking Rewards, Simple Earn
  Locked Rewards, BNB Vault Rewards, DOT Slot Auction Rewards, Liquid Swap rewards, Swap Farming
  Rewards, Launchpool Earnings Withdrawal), interest (Simple Earn Flexible Interest, Savings
  Interest, Launchpool Interest), mining (Pool Distribution, Super BNB
  Mining), airdrop (Distribution, Airdrop Assets, HODLer Airdrops Distribution, Launchpool
  Airdrop, Simple Earn Flexible Airdrop, Megadrop Rewards, Token Swap - Distribution), reward
  (Commission History, Commission Rebate, Referral Kickback, Referral Commission, Referrer rebates,
  Commission Fee Shared With You, Cashback Voucher, Cash Voucher distribution, Binance Card
  Cashback, Campaign Related Reward); Crypto Box -> deposit labelled gift; Binance Card Spending
  -> spend labelled card; C2C Transfer (to or from another Binance user, P2P escrow) -> deposit
  when positive, withdrawal when negative (a transfer: unmatched, it is flagged, never guessed
  as a sale).
- skipped (moves between the user's own Binance accounts, no disposal): subscriptions and
  redemptions of Savings / Simple Earn / Staking / Launchpool, transfer_in/out, "Transfer Between
  ..." and "... Account Transfer".
- rejected: futures and margin operations or accounts (not supported), unknown operations.
Incoming operations need a positive Change, outgoing ones a negative one. The wallet is "binance"
for every account (Spot, Funding, Earn: one holder). Binance has no transaction id: identity is
the group key for trades, the row content for the rest. UTC_Time is UTC ('2024-01-05 14:03:00',
also the two-digit-year form '24-01-05 14:03:00').
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    amount_with_unit,
    constant,
    draft_table,
    negative,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_asset_amount,
    read_kind,
    require_pair,
    skip_fiat_only,
    split_pair,
    text,
    time_in_header_zone,
    trade_rows,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "binance"
COLUMNS = ("User_ID", "UTC_Time", "Account", "Operation", "Coin", "Change")
OPTIONAL_COLUMNS = ("Remark",)  # often left out of rows whose Remark is empty


def _ops(kind: str, detail: str | None, *names: str) -> dict[str, tuple[str | None, ...]]:
    return {n.lower(): (kind, detail) for n in names}


# operation (lower case) -> (kind, detail): detail is the family of a leg, the label of income /
# spend / deposit, or the reason of a skip / rejection.
OPERATIONS: dict[str, tuple[str | None, ...]] = {
    **_ops("side", "trade", "Transaction Related"),
    **_ops("buy-leg", "trade", "Buy", "Transaction Buy", "Transaction Spend"),
    **_ops("sell-leg", "trade", "Sell", "Transaction Sold", "Transaction Revenue"),
    **_ops("pnl", "futures", "Realized Profit and Loss", "Realize profit and loss", "Funding Fee"),
    **_ops("fee", "trade", "Fee", "Transaction Fee"),
    **_ops("side", "convert", "Binance Convert"),
    **_ops("side", "otc", "Large OTC trading"),
    **_ops("side", "dust", "Small Assets Exchange BNB", "BNB Fee Deduction"),
    **_ops("side", "card", "Buy Crypto", "Buy Crypto With Card"),
    **_ops("side", "eth2-staking", "ETH 2.0 Staking"),
    **_ops("side", "auto-conversion", "Stablecoins Auto-Conversion"),
    **_ops("side", "leverage-token", "Leverage Token Redemption"),
    **_ops("savings", "interest", "Savings Distribution"),
    **_ops("transfer", "c2c", "C2C Transfer"),
    **_ops("deposit", None, "Deposit", "Fiat Deposit"),
    **_ops("deposit", "gift", "Crypto Box"),
    **_ops("withdrawal", None, "Withdraw", "Fiat Withdraw", "Fiat Withdrawal", "Send"),
    **_ops("spend", "card", "Binance Card Spending"),
    **_ops(
        "income",
        "staking",
        "Staking Rewards",
        "POS savings interest",
        "ETH 2.0 Staking Rewards",
        "Simple Earn Locked Rewards",
        "BNB Vault Rewards",
        "DOT Slot Auction Rewards",
        "Liquid Swap rewards",
        "Swap Farming Rewards",
        "Launchpool Earnings Withdrawal",
    ),
    **_ops(
        "income",
        "interest",
        "Simple Earn Flexible Interest",
        "Savings Interest",
        "Launchpool Interest",
    ),
    **_ops("income", "mining", "Pool Distribution", "Super BNB Mining"),
    **_ops(
        "income",
        "airdrop",
        "Distribution",
        "Airdrop Assets",
        "HODLer Airdrops Distribution",
        "Launchpool Airdrop",
        "Simple Earn Flexible Airdrop",
        "Megadrop Rewards",
        "Token Swap - Distribution",
    ),
    **_ops(
        "income",
        "reward",
        "Mission Reward Distribution",
        "Commission History",
        "Commission Rebate",
        "Referral Kickback",
        "Referral Commission",
        "Referrer rebates",
        "Commission Fee Shared With You",
        "Cashback Voucher",
        "Cash Voucher distribution",
        "Binance Card Cashback",
        "Campaign Related Reward",
    ),
    **_ops(
        "skip",
        "move between the user's own Binance accounts (no disposal)",
        "transfer_in",
        "transfer_out",
        "Savings purchase",
        "Savings Principal redemption",
        "POS savings purchase",
        "POS savings redemption",
        "Staking Purchase",
        "Staking Redemption",
        "Simple Earn Flexible Subscription",
        "Simple Earn Flexible Redemption",
        "Simple Earn Locked Subscription",
        "Simple Earn Locked Redemption",
        "Launchpool Subscription/Redemption",
        "Launchpad Subscribe",
        "Transfer Between Main and Funding Wallet",
        "Main and Funding Account Transfer",
        "Transfer Between Spot Account and UM Futures Account",
        "Transfer Between Spot Account and CM Futures Account",
        "Transfer Between Main Account/Futures and Margin Account",
        "Funding Account Transfer",
    ),
    **_ops(
        "unsupported",
        "futures/margin operation '{}' is not supported",
        "Insurance Fund Compensation",
        "Referee Rebate",
        "Margin Loan",
        "Margin Repayment",
        "Isolated Margin Loan",
        "Isolated Margin Repayment",
        "Isolated Margin Liquidation - Fee",
        "Cross Margin Liquidation - Small Assets Takeover",
        "Liquidation Fee",
        "Futures Fee",
        "Margin Fee",
        "Cross Collateral Transfer",
    ),
}
FUTURES_ACCOUNTS = pa.array(
    [
        "usdt-futures",
        "usd-mfutures",
        "usd-m futures",
        "coin-m futures",
        "coin-futures",
        "isolated margin",
        "crossmargin",
        "cross margin",
        "margin",
        "futures",
    ]
)
INCOMING = ("deposit", "income")
OUTGOING = ("withdrawal", "spend")


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "UTC_Time"), "UTC_Time", checks, ctx.tz)
    account = text(table, "Account")
    operation, (kind, detail) = read_kind(table, "Operation", OPERATIONS, 2, checks, "operation")
    is_skip = pc.fill_null(pc.equal(kind, "skip"), False)
    checks.reject(
        pc.equal(kind, "unsupported"), "futures/margin operation '{}' is not supported", operation
    )
    # Realized PnL and funding fees are settled in the futures wallet: read (income or cost)
    is_pnl = pc.fill_null(pc.equal(kind, "pnl"), False)
    futures = pc.and_(
        pc.is_in(pc.utf8_lower(account), value_set=FUTURES_ACCOUNTS),
        pc.invert(pc.or_(is_skip, is_pnl)),
    )
    checks.reject(futures, "futures/margin account '{}' is not supported", account)
    hint = pc.if_else(pc.equal(kind, "buy-leg"), "buy", when(pc.equal(kind, "sell-leg"), "sell"))
    # C2C Transfer: the sign says which way; Savings Distribution: grouped per coin (a lone
    # incoming row is the interest, one in + one out of the coin a subscription, skipped)
    raw_sign = pc.starts_with(pc.utf8_trim_whitespace(text(table, "Change")), "-")
    kind = pc.if_else(
        pc.fill_null(pc.equal(kind, "transfer"), False),
        pc.if_else(pc.fill_null(raw_sign, False), "withdrawal", "deposit"),
        kind,
    )
    savings = pc.fill_null(pc.equal(kind, "savings"), False)
    kind = pc.if_else(savings, "side", kind)
    kind = pc.if_else(pc.is_in(kind, value_set=pa.array(["buy-leg", "sell-leg"])), "side", kind)

    coin, change = read_asset_amount(table, ("Coin", "Change"), checks, NAME)
    raw_change = text(table, "Change")
    checks.skip(is_skip, "{}", detail)

    is_side, is_fee = pc.equal(kind, "side"), pc.equal(kind, "fee")
    incoming = pc.is_in(kind, value_set=pa.array(INCOMING))
    outgoing = pc.is_in(kind, value_set=pa.array(OUTGOING))
    checks.reject(
        pc.and_(incoming, pc.invert(positive(change))),
        "a positive Change is expected for this operation, got '{}'",
        raw_change,
    )
    checks.reject(
        pc.and_(pc.or_(outgoing, is_fee), positive(change)),
        "a negative Change is expected for this operation, got '{}'",
        raw_change,
    )
    checks.skip(
        pc.and_(pc.or_(is_side, is_fee), pc.equal(change, pa.scalar(0, change.type))), "zero Change"
    )

    amount = abs_amount(change)
    pnl_gain = pc.and_(is_pnl, positive(change))
    pnl_loss = pc.and_(is_pnl, negative(change))
    sent = pc.or_(pc.or_(outgoing, pc.and_(is_side, negative(change))), pnl_loss)
    received = pc.or_(pc.or_(incoming, pc.and_(is_side, positive(change))), pnl_gain)
    checks.skip(pc.and_(is_pnl, pc.equal(change, pa.scalar(0, change.type))), "zero Change")
    # A card purchase: a buy even when its fiat leg is not in the file (Binance often leaves it out)
    card = pc.fill_null(pc.equal(detail, "card"), False)
    type_ = pc.case_when(
        pa.StructArray.from_arrays(
            [
                pc.fill_null(m, False)
                for m in (
                    pc.equal(kind, "deposit"),
                    pc.equal(kind, "withdrawal"),
                    pc.or_(pc.equal(kind, "income"), pnl_gain),
                    pc.equal(kind, "spend"),
                    pnl_loss,
                    card,
                )
            ],
            names=["deposit", "withdrawal", "income", "spend", "loss", "card"],
        ),
        TxType.DEPOSIT.value,
        TxType.WITHDRAWAL.value,
        TxType.INCOME.value,
        TxType.SPEND.value,
        TxType.FEE.value,
        TxType.BUY.value,
    )
    sent_asset, received_asset = when(sent, coin), when(received, coin)
    skip_fiat_only(
        checks, pc.if_else(card, pa.scalar(None, pa.string()), type_), sent_asset, received_asset
    )
    grouped = pc.or_(is_side, is_fee)
    # Rows of one family at one instant and account are one transaction (savings: of one
    # coin, whichever account each row names).
    group = pc.binary_join_element_wise(
        text(table, "User_ID"),
        pc.cast(pc.cast(ts, pa.int64()), pa.string()),
        pc.if_else(savings, coin, account),
        detail,
        "|",
        null_handling="replace",
        null_replacement="",
    )
    label = pc.if_else(
        grouped, pc.if_else(pc.equal(detail, "trade"), pa.scalar(None, pa.string()), detail), detail
    )
    # a lone incoming savings row is income; with an outgoing row of its coin it is skipped
    type_ = pc.if_else(
        pc.and_(savings, pc.fill_null(positive(change), False)), TxType.INCOME.value, type_
    )
    label = pc.if_else(pnl_gain, "income", pc.if_else(pnl_loss, operation, label))
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=label,
        sent_asset=sent_asset,
        sent_amount=when(sent, amount, amount.type),
        received_asset=received_asset,
        received_amount=when(received, amount, amount.type),
        fee_asset=when(is_fee, coin),
        fee_amount=when(is_fee, amount, amount.type),
        description=text(table, "Remark"),
        group=when(grouped, group),
        pair_hint=hint,
    )
    return draft, checks


def spot_trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """Spot trade history: Date(UTC), Pair, Side, Price, Executed, Amount, Fee, the unit written
    after each number ("0.01BTC", "420.5USDT", "0.00001BNB")."""
    checks = RowChecks(table.num_rows)
    ts = parse_timestamp(text(table, "Date(UTC)"), "Date(UTC)", checks, ctx.tz)
    side = text(table, "Side")
    return _unit_cell_trades(table, ctx, checks, ts, side, ("Executed", "Amount", "Fee")), checks


def _unit_cell_trades(
    table: pa.Table,
    ctx: ParseContext,
    checks: RowChecks,
    ts: pa.Array,
    side: pa.Array,
    columns: tuple[str, str, str],
) -> pa.Table:
    """One trade per row of a history that writes the unit after each number ("0.01BTC",
    "50 USDT"): `columns` name the base, quote and fee cells; a base or quote cell whose amount
    and unit cannot be read is rejected naming it."""
    (b_amount, base), (q_amount, quote), (f_amount, fee) = (
        amount_with_unit(text(table, c)) for c in columns
    )
    for c, v in ((columns[0], base), (columns[1], quote)):
        checks.reject(
            pc.and_(text(table, c).is_valid(), v.is_null()),
            f"cannot read amount and asset from '{{}}' in column {c}",
            text(table, c),
        )
    return trade_rows(
        NAME,
        table.num_rows,
        ctx,
        checks,
        ts,
        side,
        base,
        b_amount,
        quote,
        q_amount,
        fee,
        f_amount,
        columns,
    )


def old_trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """Trade history before 2021: Date(UTC), Market, Type, Price, Amount, Total, Fee, Fee Coin
    (Market "BTCUSDT": the base, then a known quote)."""
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Date(UTC)"), "Date(UTC)", checks, ctx.tz)
    market = text(table, "Market")
    base, quote = split_pair(market)
    checks.reject(
        pc.and_(market.is_valid(), base.is_null()), "cannot split the market '{}'", market
    )
    draft = trade_rows(
        NAME,
        n,
        ctx,
        checks,
        ts,
        text(table, "Type"),
        base,
        _plain(text(table, "Amount")),
        quote,
        _plain(text(table, "Total")),
        text(table, "Fee Coin"),
        _plain(text(table, "Fee")),
        ("Amount", "Total", "Fee"),
    )
    return draft, checks


def _plain(values: pa.Array) -> pa.Array:
    """Numbers of the old ;-separated export may use a decimal comma."""
    comma = pc.and_(pc.match_substring(values, ","), pc.invert(pc.match_substring(values, ".")))
    return pc.if_else(
        comma, pc.replace_substring(values, ",", "."), pc.replace_substring(values, ",", "")
    )


def orders_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """Order history: one row per order (Date(UTC), OrderNo, Pair, Type, Side, Order Price,
    Order Amount, Time, Executed, Average Price, Trading total, Status), followed by its fills
    nested under it: a sub-header row ",Date(UTC),Trading Price,Filled,Total,Fee" and one row
    per fill with the first field empty. A filled (or partly filled) order is a trade of
    Executed against Trading total; its fills add nothing but their fees, which become fee
    transactions (a fill row does not name its side). Unfilled orders are skipped."""
    n = table.num_rows
    checks = RowChecks(n)
    fill = pc.fill_null(text(table, "Date(UTC)").is_null(), False)
    subheader = pc.and_(fill, pc.equal(pc.utf8_lower(text(table, "OrderNo")), "date(utc)"))
    checks.skip(subheader, "header of an order's fills")
    fill_row = pc.and_(fill, pc.invert(subheader))
    status = pc.utf8_upper(text(table, "Status"))
    filled = pc.is_in(status, value_set=pa.array(["FILLED", "PARTIALLY_FILLED", "PARTIAL_FILL"]))
    checks.skip(
        pc.and_(pc.invert(fill), pc.invert(pc.fill_null(filled, False))),
        "order not filled (status {})",
        status,
    )
    date = pc.if_else(fill_row, text(table, "OrderNo"), text(table, "Date(UTC)"))
    date = pc.if_else(subheader, "1970-01-01 00:00:00", date)  # skipped anyway
    ts = parse_timestamp(date, "Date(UTC)", checks, ctx.tz)
    (b_amount, base), (q_amount, quote) = (
        amount_with_unit(text(table, c)) for c in ("Executed", "Trading total")
    )
    f_amount, fee_asset = amount_with_unit(text(table, "Order Price"))  # a fill's Fee column
    order = pc.and_(pc.invert(fill), pc.fill_null(filled, False))
    nothing = pa.nulls(n, pa.string())
    trade = trade_rows(
        NAME,
        n,
        ctx,
        RowChecks(n),
        ts,
        text(table, "Side"),
        base,
        b_amount,
        quote,
        q_amount,
        nothing,
        nothing,
        ("Executed", "Trading total", "Fee"),
        external_id=text(table, "OrderNo"),
    )
    fee_checks = RowChecks(n)
    fee = parse_asset(fee_asset, "Fee", fee_checks, NAME)
    fee_qty = abs_amount(parse_amount(f_amount, "Fee", fee_checks))
    checks.skip(
        pc.and_(fill_row, pc.invert(pc.fill_null(positive(fee_qty), False))),
        "fill without a fee (its order row is the trade)",
    )
    for c, v in (("Executed", base), ("Trading total", quote)):
        checks.reject(
            pc.and_(order, v.is_null()),
            f"cannot read amount and asset from '{{}}' in column {c}",
            text(table, c),
        )
    checks.reject(
        pc.and_(
            order,
            pc.invert(
                pc.fill_null(
                    pc.is_in(
                        pc.utf8_upper(text(table, "Side")), value_set=pa.array(["BUY", "SELL"])
                    ),
                    False,
                )
            ),
        ),
        "side '{}' is neither BUY nor SELL",
        text(table, "Side"),
    )

    def pick(name: str) -> pa.Array:
        return pc.if_else(
            fill_row,
            pa.scalar(None, trade.schema.field(name).type),
            trade.column(name).combine_chunks(),
        )

    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=pc.if_else(fill_row, TxType.FEE.value, pick("type")),
        label=when(fill_row, "trading fee"),
        sent_asset=pc.if_else(fill_row, fee, pick("sent_asset")),
        sent_amount=pc.if_else(fill_row, fee_qty, pick("sent_amount")),
        received_asset=pick("received_asset"),
        received_amount=pick("received_amount"),
        external_id=pick("external_id"),
    )
    return draft, checks


def auto_invest_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """Auto-Invest history: the date (Time, or Auto-Invest Date(UTC) of the 2022 layout, the zone
    in its name), Holding Coin, Amount Per Period, Units, Trading Fee, Status (From, the wallets
    that paid, is not read: one Binance wallet), the unit written after each number ("50 USDT",
    "0.001BTC", "0.05USDT"). A Success row is a buy of Units with Amount Per Period, the Trading
    Fee charged on top (the period debits amount + fee, as rp2's Binance importer reads this
    export); other statuses (Failed, Pending) are skipped (a file without Status lists completed
    purchases). Time carries no zone: `tz` applies."""
    checks = RowChecks(table.num_rows)
    ts = time_in_header_zone(table, "Time", checks, ctx)
    status = text(table, "Status")
    checks.skip(
        pc.and_(status.is_valid(), pc.not_equal(pc.utf8_lower(status), "success")),
        "status '{}' is not a completed purchase",
        status,
    )
    side = constant(table.num_rows, "BUY")
    columns = ("Units", "Amount Per Period", "Trading Fee")
    return _unit_cell_trades(table, ctx, checks, ts, side, columns), checks


def eth2_staking_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """ETH 2.0 staking history: Date(UTC), Coin, Token, Amount, Status ("2021-03-01 12:00:00,
    ETH,BETH,0.1,Success": 0.1 ETH staked for 0.1 BETH). BETH is Binance's 1:1 receipt for the
    ETH (ingest/tax/README.md "1:1 receipts"), read as ETH: a row moves one holding and is
    skipped as such, explained on the row. A Token that is no 1:1 receipt of the Coin (WBETH
    accrues value) is rejected: the file states only the Coin's amount, and the Token's is not
    guessed. Other statuses than Success are skipped."""
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Date(UTC)"), "Date(UTC)", checks, ctx.tz)
    status = text(table, "Status")
    checks.skip(
        pc.invert(pc.fill_null(pc.equal(pc.utf8_lower(status), "success"), False)),
        "status '{}' is not a completed staking",
        status,
    )
    coin = parse_asset(text(table, "Coin"), "Coin", checks, NAME)
    token = parse_asset(text(table, "Token"), "Token", checks, NAME)
    require_pair(text(table, "Amount"), text(table, "Coin"), checks, "Amount", "Coin")
    checks.reject(text(table, "Token").is_null(), "missing asset in column Token")
    checks.reject(
        pc.fill_null(pc.not_equal(coin, token), False),
        "Token '{}' is no 1:1 receipt of the Coin: the file does not state how much of it was "
        "received",
        text(table, "Token"),
    )
    amount = abs_amount(parse_amount(text(table, "Amount"), "Amount", checks))
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=constant(n, TxType.TRADE.value),
        label=constant(n, "eth2-staking"),
        sent_asset=coin,
        sent_amount=amount,
        received_asset=token,
        received_amount=amount,
    )
    return draft, checks


ORDER_COLUMNS = ("Date(UTC)", "OrderNo", "Pair", "Type", "Side", "Order Price")
VERSIONS = (
    FormatSpec(
        name=NAME,
        columns=COLUMNS,
        optional_columns=OPTIONAL_COLUMNS,
        to_legs=to_legs,
        zoned=True,
        description="transaction history / statement (User_ID, UTC_Time, ...)",
    ),
    FormatSpec(
        name="binance-2025",
        source=NAME,
        columns=("User ID", "Time", "Account", "Operation", "Coin", "Change"),
        optional_columns=OPTIONAL_COLUMNS,
        rename={"User ID": "User_ID", "Time": "UTC_Time"},
        to_legs=to_legs,
        zoned=False,
        description="transaction history 2025 (User ID, Time, two-digit years)",
    ),
    FormatSpec(
        name="binance-spot-trades",
        source=NAME,
        columns=("Date(UTC)", "Pair", "Side", "Price", "Executed", "Amount", "Fee"),
        to_legs=spot_trades_to_legs,
        zoned=True,
        description="spot trade history (units in the cells)",
    ),
    FormatSpec(
        name="binance-trades-2019",
        source=NAME,
        columns=("Date(UTC)", "Market", "Type", "Price", "Amount", "Total", "Fee", "Fee Coin"),
        to_legs=old_trades_to_legs,
        zoned=True,
        description="trade history before 2021 (often ;-separated)",
    ),
    # Only the first six columns are required, so fill rows (six fields) are padded, not rejected.
    FormatSpec(
        name="binance-orders",
        source=NAME,
        columns=ORDER_COLUMNS,
        optional_columns=(
            "Order Amount",
            "Time",
            "Executed",
            "Average Price",
            "Trading total",
            "Status",
        ),
        to_legs=orders_to_legs,
        zoned=True,
        description="order history with nested fill rows",
    ),
    FormatSpec(
        name="binance-auto-invest",
        zoned=False,
        source=NAME,
        columns=("Time", "Holding Coin", "Amount Per Period", "Units", "Trading Fee"),
        optional_columns=("Status",),
        to_legs=auto_invest_to_legs,
        description="Auto-Invest history (recurring buys, units in the cells)",
    ),
    FormatSpec(
        name="binance-auto-invest-2022",
        zoned=True,
        source=NAME,
        columns=(
            "Auto-Invest Date({utc})",
            "Holding Coin",
            "Amount Per Period",  # 'Amount per period' (names match whatever their case)
            "Trading Fee",
            "Units",
        ),
        optional_columns=("From", "Status"),
        rename={"Auto-Invest Date({utc})": "Time"},
        to_legs=auto_invest_to_legs,
        description="Auto-Invest history 2022 (Auto-Invest Date(UTC), units in the cells)",
    ),
    FormatSpec(
        name="binance-eth2-staking",
        zoned=True,
        source=NAME,
        columns=("Date(UTC)", "Coin", "Token", "Amount", "Status"),
        to_legs=eth2_staking_to_legs,
        description="ETH 2.0 staking history (ETH staked for the BETH receipt, 1:1)",
    ),
)
