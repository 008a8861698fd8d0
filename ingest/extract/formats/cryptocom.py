"""Crypto.com App: the crypto wallet transactions export (Accounts > Crypto Wallet > Export):
Timestamp (UTC), Transaction Description, Currency, Amount, To Currency, To Amount, Native
Currency, Native Amount, Native Amount (in USD), Transaction Kind [, Transaction Hash].

Timestamp (UTC) is UTC (the zone in the column name), written YYYY-MM-DD HH:MM:SS.

Mapping (Transaction Kind):
- exchanges Currency (|Amount|) -> To Currency (To Amount): crypto_exchange, viban_purchase,
  van_purchase, crypto_viban_exchange, crypto_to_van_sell_order, recurring_buy_order,
  trading.limit_order.fiat_wallet.sell_commit, trading.limit_order.fiat_wallet.purchase_commit,
  trading.limit_order.cash_account.purchase_commit; crypto_purchase (a card purchase) and
  crypto_payment_refund (a merchant refund: the units come back at their value): Native
  Currency (Native Amount) -> Currency (Amount). Type from the sides (buy / sell / trade).
- conversions written as a debited and a credited row of one instant: the rows of one kind
  family and instant are one transaction, combined after partitioning: dust_conversion_*
  (several coins -> CRO, label dust), crypto_wallet_swap_*, dynamic_coin_swap_*,
  lockup_swap_*, interest_swap_* (MCO -> CRO, USDT -> USDC: label swap). Different assets are a
  trade (a disposal and an acquisition); the same asset on both sides is a move of one holding,
  skipped when combined. The value is the debited rows' Native Amount; a dust conversion of
  several coins splits the CRO by each coin's Native Amount and carries that value (see
  parse.combine_groups).
- income (a positive Amount): interest (crypto_earn_interest_paid, crypto_earn_extra_interest_
  paid, supercharger_reward_to_app_credited), staking (mco_stake_reward, finance.lockup.dpos_
  compound_interest.crypto_wallet, finance.dpos.(non_)compound_interest.crypto_wallet), reward
  (referral_bonus, referral_gift, referral_card_cashback, transfer_cashback, reimbursement,
  gift_card_reward, admin_wallet_credited, campaign_reward, rewards_platform_deposit_credited,
  pay_checkout_reward, lockup_swap_rebate).
- reversals of income: card_cashback_reverted, reimbursement_reverted take back a reward
  earlier booked as income: an income row (label reward) whose units are on the sent side, the
  canonical form of negative income (ingest/tax/README.md, "Income reversal").
- spend: crypto_payment, card_top_up.
- crypto_deposit, exchange_to_crypto_transfer, invest_withdrawal -> deposit; crypto_withdrawal,
  crypto_to_exchange_transfer, airdrop_to_exchange_transfer, invest_deposit -> withdrawal (the
  Crypto.com Exchange and Invest accounts are wallets of their own); crypto_transfer (to/from
  another app user): a deposit labelled gift when positive, a spend labelled gift when negative.
- skipped, moves within the user's own account: Earn and lockup programs, staking (crypto_earn_
  program_created/withdrawn, lockup_lock/unlock/upgrade, supercharger_deposit/withdrawal,
  council_node_deposit_created, trading.limit_order.*_lock/unlock, finance.dpos.(un)staking.
  crypto_wallet, finance.lockup.dpos_lock/dpos_unlock.crypto_wallet,
  dynamic_coin_swap_bonus_exchange_deposit); airdrop_locked (an airdrop not yet claimable: not
  in the user's control, so neither held nor income yet).
- anything else is rejected, naming the kind. Native Amount / Native Currency is the stated
  value.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    classify_sides,
    constant,
    draft_table,
    negative,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_asset_amount,
    read_kind,
    skip_fiat_only,
    text,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "cryptocom"


def _kinds(kind: str, label: str | None, *names: str) -> dict[str, tuple[str | None, ...]]:
    return {n: (kind, label) for n in names}


KINDS: dict[str, tuple[str | None, ...]] = {
    **_kinds(
        "exchange",
        None,
        "crypto_exchange",
        "viban_purchase",
        "van_purchase",
        "crypto_viban_exchange",
        "crypto_to_van_sell_order",
        "recurring_buy_order",
        "trading.limit_order.fiat_wallet.sell_commit",
        "trading.limit_order.fiat_wallet.purchase_commit",
        "trading.limit_order.cash_account.purchase_commit",
    ),
    **_kinds("purchase", None, "crypto_purchase"),
    **_kinds("purchase", "refund", "crypto_payment_refund"),
    **_kinds("dust", "dust", "dust_conversion_debited", "dust_conversion_credited"),
    **_kinds(
        "swap",
        "swap",
        "crypto_wallet_swap_credited",
        "crypto_wallet_swap_debited",
        "dynamic_coin_swap_credited",
        "dynamic_coin_swap_debited",
        "lockup_swap_credited",
        "lockup_swap_debited",
        "interest_swap_credited",
        "interest_swap_debited",
    ),
    **_kinds(
        "income",
        "interest",
        "crypto_earn_interest_paid",
        "crypto_earn_extra_interest_paid",
        "supercharger_reward_to_app_credited",
    ),
    **_kinds(
        "income",
        "staking",
        "mco_stake_reward",
        "finance.lockup.dpos_compound_interest.crypto_wallet",
        "finance.dpos.non_compound_interest.crypto_wallet",
        "finance.dpos.compound_interest.crypto_wallet",
    ),
    **_kinds(
        "income",
        "reward",
        "referral_bonus",
        "referral_gift",
        "referral_card_cashback",
        "transfer_cashback",
        "reimbursement",
        "gift_card_reward",
        "admin_wallet_credited",
        "campaign_reward",
        "rewards_platform_deposit_credited",
        "pay_checkout_reward",
        "lockup_swap_rebate",
    ),
    **_kinds("reversal", "reward", "card_cashback_reverted", "reimbursement_reverted"),
    **_kinds("spend", None, "crypto_payment", "card_top_up"),
    **_kinds("deposit", None, "crypto_deposit", "exchange_to_crypto_transfer", "invest_withdrawal"),
    **_kinds(
        "withdrawal",
        None,
        "crypto_withdrawal",
        "crypto_to_exchange_transfer",
        "airdrop_to_exchange_transfer",
        "invest_deposit",
    ),
    **_kinds("gift", "gift", "crypto_transfer"),
    **_kinds(
        "skip",
        None,
        "crypto_earn_program_created",
        "crypto_earn_program_withdrawn",
        "lockup_lock",
        "lockup_unlock",
        "lockup_upgrade",
        "dynamic_coin_swap_bonus_exchange_deposit",
        "supercharger_deposit",
        "supercharger_withdrawal",
        "council_node_deposit_created",
        "trading.limit_order.fiat_wallet.purchase_lock",
        "trading.limit_order.fiat_wallet.purchase_unlock",
        "trading.limit_order.fiat_wallet.sell_lock",
        "trading.limit_order.cash_account.purchase_lock",
        "trading.limit_order.cash_account.purchase_unlock",
        "finance.lockup.dpos_lock.crypto_wallet",
        "finance.lockup.dpos_unlock.crypto_wallet",
        "finance.dpos.staking.crypto_wallet",
        "finance.dpos.unstaking.crypto_wallet",
        "airdrop_locked",
    ),
}


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Timestamp (UTC)"), "Timestamp (UTC)", checks, ctx.tz)
    kind_text, (kind, label) = read_kind(
        table, "Transaction Kind", KINDS, 2, checks, "transaction kind"
    )
    checks.skip(
        pc.and_(pc.equal(kind, "skip"), pc.not_equal(kind_text, "airdrop_locked")),
        "{} is a move within the user's own Crypto.com account (no disposal)",
        kind_text,
    )
    checks.skip(
        pc.equal(kind_text, "airdrop_locked"),
        "airdrop_locked: the airdrop cannot be claimed yet (not in the user's control: no "
        "holding, no income until it is)",
    )
    currency, signed = read_asset_amount(table, ("Currency", "Amount"), checks, NAME)
    amount = abs_amount(signed)
    to_currency = parse_asset(text(table, "To Currency"), "To Currency", checks, NAME)
    to_amount = abs_amount(parse_amount(text(table, "To Amount"), "To Amount", checks))
    native_ccy = parse_asset(text(table, "Native Currency"), "Native Currency", checks, NAME)
    native = abs_amount(parse_amount(text(table, "Native Amount"), "Native Amount", checks))

    def is_(k: str) -> pa.Array:
        return pc.fill_null(pc.equal(kind, k), False)

    exchange, purchase, gift = is_("exchange"), is_("purchase"), is_("gift")
    # debited + credited rows of one instant, combined after partitioning
    paired = pc.or_(is_("dust"), is_("swap"))
    reversal = is_("reversal")
    checks.reject(
        pc.and_(exchange, pc.or_(to_currency.is_null(), to_amount.is_null())),
        "missing To Currency or To Amount of an exchange",
    )
    checks.reject(
        pc.and_(purchase, pc.or_(native_ccy.is_null(), native.is_null())),
        "missing Native Currency or Native Amount of a purchase",
    )
    out_sign = pc.fill_null(negative(signed), False)
    in_sign = pc.fill_null(positive(signed), False)
    checks.reject(
        pc.and_(pc.or_(is_("income"), purchase), out_sign),
        "a positive Amount is expected for {}",
        kind_text,
    )
    sends = pc.or_(
        pc.or_(exchange, pc.or_(is_("spend"), is_("withdrawal"))),
        pc.or_(pc.and_(pc.or_(paired, gift), out_sign), reversal),
    )
    receives = pc.or_(
        pc.or_(purchase, pc.or_(is_("income"), is_("deposit"))),
        pc.and_(pc.or_(paired, gift), in_sign),
    )
    sent_asset = pc.if_else(purchase, native_ccy, when(sends, currency))
    sent_amount = pc.if_else(purchase, native, when(sends, amount, amount.type))
    received_asset = pc.if_else(exchange, to_currency, when(receives, currency))
    received_amount = pc.if_else(exchange, to_amount, when(receives, amount, amount.type))
    by_sides = classify_sides(sent_asset, received_asset)
    type_ = pc.case_when(
        pa.StructArray.from_arrays(
            [pc.or_(is_("income"), reversal), is_("spend"), pc.and_(gift, out_sign), paired],
            names=["income", "spend", "gift_out", "paired"],
        ),
        TxType.INCOME.value,
        TxType.SPEND.value,
        TxType.SPEND.value,
        pa.scalar(None, pa.string()),
        by_sides,
    )
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    # One group per conversion family and instant ("cryptocom-swap|crypto_wallet_swap|...").
    family = pc.replace_substring_regex(kind_text, r"_(credited|debited)$", "")
    group = when(
        paired,
        pc.binary_join_element_wise(
            "cryptocom", family, pc.cast(pc.cast(ts, pa.int64()), pa.string()), "|"
        ),
    )
    # A conversion's value is what was given: the debited rows' Native Amount (the group's
    # values are summed, and a dust conversion is split by them).
    valued = pc.or_(pc.invert(paired), out_sign)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=label,
        sent_asset=sent_asset,
        sent_amount=sent_amount,
        received_asset=received_asset,
        received_amount=received_amount,
        fiat_value=when(valued, native, native.type),
        fiat_currency=when(pc.and_(valued, native.is_valid()), native_ccy),
        tx_hash=text(table, "Transaction Hash"),
        description=text(table, "Transaction Description"),
        group=group,
    )
    return draft, checks


VERSIONS = (
    FormatSpec(
        name=NAME,
        columns=(
            "Timestamp (UTC)",
            "Transaction Description",
            "Currency",
            "Amount",
            "To Currency",
            "To Amount",
            "Native Currency",
            "Native Amount",
            "Native Amount (in USD)",
            "Transaction Kind",
        ),
        optional_columns=("Transaction Hash",),
        to_legs=to_legs,
        zoned=True,
        description="Crypto.com App crypto wallet transactions",
    ),
)
