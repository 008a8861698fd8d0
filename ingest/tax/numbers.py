"""Exact money arithmetic for the engine.

Amounts are Decimals with at most 18 fractional digits (the canonical decimal128(38, 18) scale).
Additions and subtractions of such numbers are exact in a 60-digit context. The one inexact step,
a proportional share (part of a lot, of a pool, of proceeds), is rounded to 18 places
(ROUND_HALF_EVEN) and the remainder stays with the rest, so totals are conserved exactly and
results are identical run to run.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

TAX_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)
QUANTUM = Decimal("1e-18")
ZERO = Decimal(0)


def tax_context():
    """``with tax_context():`` around engine arithmetic."""
    return localcontext(TAX_CONTEXT)


def share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """amount x part / whole, rounded to the canonical scale; exactly amount when part == whole."""
    if part == whole:
        return amount
    return (amount * part / whole).quantize(QUANTUM)


def split(amount: Decimal, parts: list[Decimal]) -> list[Decimal]:
    """amount split in proportion to parts; the last share takes the remainder (sum is exact)."""
    whole = sum(parts, ZERO)
    if len(parts) == 1:
        return [amount]
    shares: list[Decimal] = []
    left = amount
    for part in parts[:-1]:
        piece = share(amount, part, whole) if whole else ZERO
        shares.append(piece)
        left -= piece
    shares.append(left)
    return shares
