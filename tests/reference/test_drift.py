"""Drift v2: size-premium and size-discounted weights, deposit-scaled initial asset weight, and
the amounts that cover a margin shortage.

Vectors from drift-labs/protocol-v2 unit tests (engines.md 2(d)):
programs/drift/src/math/margin/tests.rs (weights in 1e4 precision) and
programs/drift/src/math/liquidation/tests.rs. Drift's fixed-point square root and divisions
truncate, so the checks allow the last printed digit.
"""

from __future__ import annotations

import math

import pytest

from crossmargin.maths.drift import (
    liability_transfer_for_shortage,
    perp_insurance_fee,
    scaled_initial_asset_weight,
    shortage_cover_qty,
    size_discount_asset_weight,
    size_premium_liability_weight,
)


@pytest.mark.parametrize(
    ("weight", "imf", "size", "expected"),
    [(1.1, 0.01, 1_000, 1.1962), (1.1, 0.1, 1_000, 4.0422), (0.0, 0.1, 1_000, 3.1622)],
)
def test_size_premium_liability_weight(
    weight: float, imf: float, size: float, expected: float
) -> None:
    """spot_market_asset_weight: 0.88 + 0.01 x sqrt(1000) = 1.1962 (11962); with imf 0.1 the
    initial and maintenance (weight 0) liability weights are 40422 and 31622."""
    assert size_premium_liability_weight(weight, imf, size) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    ("weight", "imf", "size", "expected"),
    [
        (0.9, 0.01, 1_000, 0.8357),
        (0.9, 0.00001, 1e9, 0.8357),
        (0.9, 0.1, 1_000, 0.2642),
        (0.45, 0.1, 100_000, 0.0337),
    ],
)
def test_size_discount_asset_weight(
    weight: float, imf: float, size: float, expected: float
) -> None:
    """1.1 / (1 + 0.01 x sqrt(1000)) = 0.8357; market 2 at 100,000 with imf 0.1: 337 for every
    requirement type (its fill weight (0.15 + 0.75) / 2 = 0.45 is the cap)."""
    assert math.floor(size_discount_asset_weight(weight, imf, size) * 1e4) / 1e4 == expected


@pytest.mark.parametrize(("sol", "expected"), [(20_000, 0.9), (40_000, 0.45), (60_000, 0.3)])
def test_scaled_initial_asset_weight(sol: float, expected: float) -> None:
    """spot_market_scale_initial_asset_weight: SOL at $25, start $500k, weight 0.9."""
    assert scaled_initial_asset_weight(0.9, sol * 25.0, 500_000.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("liquidator_fee", "insurance_fee", "quote_price", "expected"),
    [
        (0.0, 0.0, 1.0, 1.0),
        (0.01, 0.0, 1.0, 10 / 9),
        (0.01, 0.01, 1.0, 1.25),
        (0.0, 0.0, 0.99, 1.010101010),
        (0.0, 0.0, 1.01, 0.990099009),
    ],
)
def test_base_to_cover_margin_shortage(
    liquidator_fee: float, insurance_fee: float, quote_price: float, expected: float
) -> None:
    """calculate_base_asset_amount_to_cover_margin_shortage: $10 short, margin ratio 10%,
    price $100."""
    qty = shortage_cover_qty(10.0, 100.0, 0.10, liquidator_fee, insurance_fee, quote_price)
    assert qty == pytest.approx(expected, rel=1e-9)


def test_nothing_freed_needs_no_finite_amount() -> None:
    assert shortage_cover_qty(10.0, 100.0, 0.01, 0.01) == math.inf


@pytest.mark.parametrize(
    ("asset_fee", "liability_fee", "insurance_fee", "expected"),
    [
        (1.0, 1.0, 0.0, 0.25),
        (1.1, 0.9, 0.0, 0.449984250),
        (1.0, 1.0, 0.01, 0.257731958),
        (1.1, 0.9, 0.01, 0.475669504),
    ],
)
def test_liability_transfer_to_cover_margin_shortage(
    asset_fee: float, liability_fee: float, insurance_fee: float, expected: float
) -> None:
    """calculate_liability_transfer_to_cover_margin_shortage: $10, asset weight 0.8, liability
    weight 1.2, $100 (on chain the fee ratio is truncated: 4e-5 relative)."""
    amount = liability_transfer_for_shortage(
        10.0, 100.0, 0.8, 1.2, asset_fee, liability_fee, insurance_fee
    )
    assert amount == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("shortage", "liquidator_fee", "expected"),
    [(20.0, 0.01, 0.019), (1.0, 0.01, 0.03705), (1_000.0, 0.01, 0.0), (20.0, 0.10, 0.0)],
)
def test_perp_insurance_fee(shortage: float, liquidator_fee: float, expected: float) -> None:
    """calculate_perp_if_fee: 10 base at $100, margin ratio 5%, max IF fee 5%."""
    fee = perp_insurance_fee(shortage, 10.0, 100.0, 0.05, liquidator_fee, 0.05)
    assert fee == pytest.approx(expected, abs=1e-12)
