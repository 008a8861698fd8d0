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

One-row operations (case-insensitive):
- Deposit, Fiat Deposit -> deposit; Withdraw, Fiat Withdraw(al), Send -> withdrawal (Binance's
  Change already includes the withdrawal fee); fiat ones are skipped (see base).
- income: staking (Staking Rewards, POS savings interest, ETH 2.0 Staking Rewards, Simple Earn
  Locked Rewards, BNB Vault Rewards, DOT Slot Auction Rewards, Liquid Swap rewards, Swap Farming
  Rewards, Launchpool Earnings Withdrawal), interest (Simple Earn Flexible Interest, Savings
  Interest, Savings Distribution, Launchpool Interest), mining (Pool Distribution, Super BNB
  Mining), airdrop (Distribution, Airdrop Assets, HODLer Airdrops Distribution, Launchpool
  Airdrop, Simple Earn Flexible Airdrop, Megadrop Rewards, Token Swap - Distribution), reward
  (Commission History, Commission Rebate, Referral Kickback, Referral Commission, Referrer rebates,
  Commission Fee Shared With You, Cashback Voucher, Cash Voucher distribution, Binance Card
  Cashback, Campaign Related Reward); Crypto Box -> deposit labelled gift; Binance Card Spending
  -> spend labelled card.
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
    FormatSpec, ParseContext, RowChecks, abs_amount, constant, draft_table, lookup, negative,
    parse_amount, parse_asset, parse_timestamp, positive, skip_fiat_only, text, when,
)
from ingest.normalize.canonical import TxType

NAME = "binance"
COLUMNS = ("User_ID", "UTC_Time", "Account", "Operation", "Coin", "Change", "Remark")


def _ops(kind: str, detail: str | None, *names: str) -> dict[str, tuple[str | None, ...]]:
    return {n.lower(): (kind, detail) for n in names}


# operation (lower case) -> (kind, detail): detail is the family of a leg, the label of income /
# spend / deposit, or the reason of a skip / rejection.
OPERATIONS: dict[str, tuple[str | None, ...]] = {
    **_ops("side", "trade", "Buy", "Sell", "Transaction Buy", "Transaction Spend", "Transaction Sold",
           "Transaction Revenue", "Transaction Related"),
    **_ops("fee", "trade", "Fee", "Transaction Fee"),
    **_ops("side", "convert", "Binance Convert"),
    **_ops("side", "otc", "Large OTC trading"),
    **_ops("side", "dust", "Small Assets Exchange BNB", "BNB Fee Deduction"),
    **_ops("side", "card", "Buy Crypto", "Buy Crypto With Card"),
    **_ops("side", "eth2-staking", "ETH 2.0 Staking"),
    **_ops("side", "auto-conversion", "Stablecoins Auto-Conversion"),
    **_ops("side", "leverage-token", "Leverage Token Redemption"),
    **_ops("deposit", None, "Deposit", "Fiat Deposit"),
    **_ops("deposit", "gift", "Crypto Box"),
    **_ops("withdrawal", None, "Withdraw", "Fiat Withdraw", "Fiat Withdrawal", "Send"),
    **_ops("spend", "card", "Binance Card Spending"),
    **_ops("income", "staking", "Staking Rewards", "POS savings interest", "ETH 2.0 Staking Rewards",
           "Simple Earn Locked Rewards", "BNB Vault Rewards", "DOT Slot Auction Rewards",
           "Liquid Swap rewards", "Swap Farming Rewards", "Launchpool Earnings Withdrawal"),
    **_ops("income", "interest", "Simple Earn Flexible Interest", "Savings Interest",
           "Savings Distribution", "Launchpool Interest"),
    **_ops("income", "mining", "Pool Distribution", "Super BNB Mining"),
    **_ops("income", "airdrop", "Distribution", "Airdrop Assets", "HODLer Airdrops Distribution",
           "Launchpool Airdrop", "Simple Earn Flexible Airdrop", "Megadrop Rewards",
           "Token Swap - Distribution"),
    **_ops("income", "reward", "Commission History", "Commission Rebate", "Referral Kickback",
           "Referral Commission", "Referrer rebates", "Commission Fee Shared With You",
           "Cashback Voucher", "Cash Voucher distribution", "Binance Card Cashback",
           "Campaign Related Reward"),
    **_ops("skip", "move between the user's own Binance accounts (no disposal)",
           "transfer_in", "transfer_out", "Savings purchase", "Savings Principal redemption",
           "POS savings purchase", "POS savings redemption", "Staking Purchase", "Staking Redemption",
           "Simple Earn Flexible Subscription", "Simple Earn Flexible Redemption",
           "Simple Earn Locked Subscription", "Simple Earn Locked Redemption",
           "Launchpool Subscription/Redemption", "Launchpad Subscribe",
           "Transfer Between Main and Funding Wallet", "Main and Funding Account Transfer",
           "Transfer Between Spot Account and UM Futures Account",
           "Transfer Between Spot Account and CM Futures Account",
           "Transfer Between Main Account/Futures and Margin Account", "Funding Account Transfer"),
    **_ops("unsupported", "futures/margin operation '{}' is not supported",
           "Realize profit and loss", "Funding Fee", "Insurance Fund Compensation", "Referee Rebate",
           "Margin Loan", "Margin Repayment", "Isolated Margin Loan", "Isolated Margin Repayment",
           "Isolated Margin Liquidation - Fee", "Cross Margin Liquidation - Small Assets Takeover",
           "Liquidation Fee", "Futures Fee", "Margin Fee", "Cross Collateral Transfer"),
}
FUTURES_ACCOUNTS = pa.array(["usdt-futures", "usd-mfutures", "usd-m futures", "coin-m futures",
                             "coin-futures", "isolated margin", "crossmargin", "cross margin",
                             "margin", "futures"])
INCOMING = ("deposit", "income")
OUTGOING = ("withdrawal", "spend")


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "UTC_Time"), "UTC_Time", checks, ctx.tz)
    account = text(table, "Account")
    operation = text(table, "Operation")
    kind, detail = lookup(operation, OPERATIONS, 2)
    checks.reject(operation.is_null(), "missing operation in column Operation")
    checks.reject(pc.and_(operation.is_valid(), kind.is_null()), "unknown operation '{}'", operation)
    is_skip = pc.fill_null(pc.equal(kind, "skip"), False)
    checks.reject(pc.equal(kind, "unsupported"), "futures/margin operation '{}' is not supported",
                  operation)
    futures = pc.and_(pc.is_in(pc.utf8_lower(account), value_set=FUTURES_ACCOUNTS), pc.invert(is_skip))
    checks.reject(futures, "futures/margin account '{}' is not supported", account)

    raw_coin = text(table, "Coin")
    coin = parse_asset(raw_coin, "Coin", checks, NAME)
    checks.reject(raw_coin.is_null(), "missing asset in column Coin")
    raw_change = text(table, "Change")
    change = parse_amount(raw_change, "Change", checks)
    checks.reject(raw_change.is_null(), "missing amount in column Change")
    checks.skip(is_skip, "{}", detail)

    is_side, is_fee = pc.equal(kind, "side"), pc.equal(kind, "fee")
    incoming = pc.is_in(kind, value_set=pa.array(INCOMING))
    outgoing = pc.is_in(kind, value_set=pa.array(OUTGOING))
    checks.reject(pc.and_(incoming, pc.invert(positive(change))),
                  "a positive Change is expected for this operation, got '{}'", raw_change)
    checks.reject(pc.and_(pc.or_(outgoing, is_fee), positive(change)),
                  "a negative Change is expected for this operation, got '{}'", raw_change)
    checks.skip(pc.and_(pc.or_(is_side, is_fee), pc.equal(change, pa.scalar(0, change.type))),
                "zero Change")

    amount = abs_amount(change)
    sent = pc.or_(outgoing, pc.and_(is_side, negative(change)))
    received = pc.or_(incoming, pc.and_(is_side, positive(change)))
    type_ = pc.case_when(
        pa.StructArray.from_arrays([pc.fill_null(pc.equal(kind, k), False) for k in
                                    ("deposit", "withdrawal", "income", "spend")],
                                   names=["deposit", "withdrawal", "income", "spend"]),
        TxType.DEPOSIT.value, TxType.WITHDRAWAL.value, TxType.INCOME.value, TxType.SPEND.value)
    sent_asset, received_asset = when(sent, coin), when(received, coin)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    grouped = pc.or_(is_side, is_fee)
    # Rows of one family at one instant and account are one transaction.
    group = pc.binary_join_element_wise(
        text(table, "User_ID"), pc.cast(pc.cast(ts, pa.int64()), pa.string()), account, detail, "|",
        null_handling="replace", null_replacement="")
    label = pc.if_else(grouped, pc.if_else(pc.equal(detail, "trade"), pa.scalar(None, pa.string()),
                                           detail), detail)
    draft = draft_table(
        n, timestamp=ts, wallet=constant(n, ctx.wallet or NAME), type=type_, label=label,
        sent_asset=sent_asset, sent_amount=when(sent, amount, amount.type),
        received_asset=received_asset, received_amount=when(received, amount, amount.type),
        fee_asset=when(is_fee, coin), fee_amount=when(is_fee, amount, amount.type),
        description=text(table, "Remark"), group=when(grouped, group))
    return draft, checks


FORMAT = FormatSpec(name=NAME, columns=COLUMNS, to_legs=to_legs)
