"""Drift v2 size rules and liquidation sizing: size-premium weights, deposit-scaled initial asset
weight, and the amounts that cover a margin shortage.

Weights and rates are fractions; ``size`` is in base units; ``imf`` is the market's
``imf_factor`` as a fraction (on chain: / 1e6).

    liability weight (or perp margin ratio) at size s   max(w, 0.8 w + imf sqrt(s))
    asset weight at size s                              min(w, 1.1 / (1 + imf sqrt(s)))
    initial asset weight at total deposits V            w x start / V   when V > start
    base to close for a shortage S (perp)               S / (P q (MR - liquidator fee - IF fee))
    liability to transfer for S (spot)                  S / (P_L (LW - AW m_A / m_L) - P_L IF LW)
    IF fee rate of a perp liquidation                   min(max IF, 0.95 (MR - fee - S / (base P)))

``q`` is the quote asset's price (USDC in USD), ``m_A = 1 + asset liquidation fee`` and
``m_L = 1 - liability liquidation fee``. Where a unit closed or transferred frees no margin
(the denominator is not positive) no amount covers the shortage: ``inf``.

Source: drift-labs/protocol-v2, programs/drift/src/math/margin.rs and math/liquidation.rs with
their unit tests (engines.md 2(b)-(d)); on chain the square root is taken in fixed point, so its
results differ from these in the fifth significant digit at most.
"""

from __future__ import annotations

import math

__all__ = [
    "liability_transfer_for_shortage",
    "perp_insurance_fee",
    "scaled_initial_asset_weight",
    "shortage_cover_qty",
    "size_discount_asset_weight",
    "size_premium_liability_weight",
]


def size_premium_liability_weight(weight: float, imf: float, size: float) -> float:
    """Liability weight (or perp margin ratio) of a position of ``size``: grows with sqrt(size)
    past the point where it overtakes ``weight``."""
    return max(weight, 0.8 * weight + imf * math.sqrt(abs(size)))


def size_discount_asset_weight(weight: float, imf: float, size: float) -> float:
    """Asset weight of a deposit of ``size``: shrinks as 1.1 / (1 + imf sqrt(size))."""
    return min(weight, 1.1 / (1.0 + imf * math.sqrt(abs(size))))


def scaled_initial_asset_weight(weight: float, deposits_value: float, start: float) -> float:
    """Initial asset weight once the market's total deposits (value) pass ``start``."""
    if deposits_value > start > 0:
        return weight * start / deposits_value
    return weight


def shortage_cover_qty(
    shortage: float,
    price: float,
    margin_ratio: float,
    liquidator_fee: float = 0.0,
    insurance_fee: float = 0.0,
    quote_price: float = 1.0,
) -> float:
    """Base units of a perp position to close so that the freed margin, less the liquidator and
    insurance fees, covers ``shortage`` (quote value); ``inf`` when nothing is freed."""
    freed = price * quote_price * (margin_ratio - liquidator_fee - insurance_fee)
    return shortage / freed if freed > 0 else math.inf


def liability_transfer_for_shortage(
    shortage: float,
    liability_price: float,
    asset_weight: float,
    liability_weight: float,
    asset_fee_multiplier: float = 1.0,
    liability_fee_multiplier: float = 1.0,
    insurance_fee: float = 0.0,
) -> float:
    """Liability units to transfer against the asset so that ``shortage`` is covered (spot
    liquidation); ``inf`` when the transfer does not raise the margin."""
    ratio = asset_weight * asset_fee_multiplier / liability_fee_multiplier
    per_unit = liability_price * (liability_weight - ratio)
    per_unit -= liability_price * insurance_fee * liability_weight
    return shortage / per_unit if per_unit > 0 else math.inf


def perp_insurance_fee(
    shortage: float,
    base: float,
    price: float,
    margin_ratio: float,
    liquidator_fee: float,
    max_insurance_fee: float,
) -> float:
    """Insurance-fund fee rate of a perp liquidation, kept 5% short of what would leave the
    account bankrupt and floored at 0."""
    room = margin_ratio - liquidator_fee - shortage / (abs(base) * price)
    return max(min(max_insurance_fee, 0.95 * room), 0.0)
