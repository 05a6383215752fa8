"""Liquidation prices of inverse (coin-settled) positions, checked against the published inverse
formulas and an independent plain solve.

Sources:
- Bybit's inverse liquidation price (help center, "Liquidation Price Calculation under
  Isolated Mode"), ``LP_long = size (MMR + 1) / (size/EP + size/EP/lev + extra/(1 + taker) +
  MM deduction)`` and ``LP_short = size (1 - MMR) / (size/EP - size/EP/lev - extra/(1 - taker)
  - MM deduction)``: without fees or deduction, with ``C = size/EP/lev + extra`` the margin in
  coins and ``Q`` the size in USD, ``LP = Q (1 + side MMR) / (Q/EP + side C)``. A short's
  liquidation price is above its entry, and a short with ``C >= Q/EP`` (1x or less) has none.
- Deribit's inverse futures (support.deribit.com article 25944826427293, "11 January 2022"):
  ETH MM rate = 1% + 0.0004% x size in ETH, size = USD / mark, bundled as ``deribit-inverse``
  ETH-PERPETUAL (1 USD contracts).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings, strategies as st

from crossmargin import Account, AccountHealth, Position, evaluate
from crossmargin.rules import load_rulebook

ETH = 2_000.0
SLOPE = 0.000004


def _health(eth: float, contracts: float, per_size: float | None = None) -> AccountHealth:
    """A one-position ETH account: ``eth`` ETH of collateral, ``contracts`` ETH-PERPETUAL
    entered at 2,000, mark 2,000, in ETH (everything settles in ETH)."""
    rules = load_rulebook("deribit-inverse")
    override = []
    if per_size is not None:
        override = [{"symbol": "ETH-PERPETUAL", "maintenance_margin_rate_per_size": per_size}]
    market = rules.market({"ETH-PERPETUAL": ETH, "ETH": ETH}, override, currency="ETH")
    return evaluate(Account("e", {"ETH": eth}, [Position("ETH-PERPETUAL", contracts, ETH)]), market)


def _plain_short_liquidation(collateral: float, usd: float, entry: float) -> float:
    """First price above the entry where C + Q (1/p - 1/EP) < (Q/p) (1% + slope x Q/p), found
    by stepping up 0.1% at a time and bisecting the step that crosses; NaN if none to 1000x."""

    def surplus(p: float) -> float:
        coins = usd / p
        return collateral + usd * (1.0 / p - 1.0 / entry) - coins * (0.01 + SLOPE * coins)

    lo = entry
    while lo < 1000.0 * entry:
        hi = lo * 1.001
        if surplus(hi) < 0:
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if surplus(mid) >= 0 else (lo, mid)
            return 0.5 * (lo + hi)
        lo = hi
    return math.nan


@pytest.mark.parametrize(("collateral", "side"), [(0.1, -1), (0.5, -1), (0.9, -1), (0.5, 1)])
def test_constant_mmr_matches_the_published_inverse_formula(collateral: float, side: int) -> None:
    """1 ETH (2,000 USD) long or short with a flat 1% MMR (the per-size term set to 0)."""
    q = 2_000.0
    (row,) = _health(collateral, side * q, per_size=0.0).positions
    expected = q * (1 + side * 0.01) / (q / ETH + side * collateral)
    assert row.liquidation_price == pytest.approx(expected, rel=1e-12)
    assert (row.liquidation_price > ETH) == (side < 0)


@pytest.mark.parametrize("collateral", [0.05, 0.1, 0.5, 0.9, 0.99])
def test_short_eth_perpetual_liquidates_above_its_entry(collateral: float) -> None:
    """The bundled per-size ramp: the liquidation price is the plain solve's, above the entry.
    (The ramp's other root, near 0.008 where the short's size in coins makes its MM rate about
    100%, was reported before as the nearer one for the less leveraged shorts.)"""
    (row,) = _health(collateral, -2_000.0).positions
    expected = _plain_short_liquidation(collateral, 2_000.0, ETH)
    assert row.liquidation_price == pytest.approx(expected, rel=1e-9)
    assert row.liquidation_price > ETH


def test_a_fully_backed_short_has_no_liquidation_price() -> None:
    """1 ETH of collateral behind a short of 1 ETH notional: equity = Q / p stays above its MM
    at every price above the entry, so there is none (and no bankruptcy price), and the crash
    search upwards finds none either."""
    health = _health(1.0, -2_000.0)
    (row,) = health.positions
    assert math.isnan(_plain_short_liquidation(1.0, 2_000.0, ETH))
    assert row.liquidation_price is None
    assert row.bankruptcy_price is None
    assert health.crash_move_up is None


@settings(max_examples=40, deadline=None)
@given(
    collateral=st.floats(0.01, 2.0),
    contracts=st.floats(100.0, 2_000_000.0),
)
def test_any_short_eth_perpetual_matches_the_plain_solve(
    collateral: float, contracts: float
) -> None:
    """Random collateral and size (up to 1,000 ETH, where the ramp adds 0.4% to the MM rate):
    the liquidation price is the plain solve's first price above the entry, or none."""
    coins = contracts / ETH
    assume(collateral > coins * (0.01 + SLOPE * coins))
    (row,) = _health(collateral, -contracts).positions
    expected = _plain_short_liquidation(collateral, contracts, ETH)
    if math.isnan(expected):
        assert row.liquidation_price is None or row.liquidation_price > 1000.0 * ETH
    else:
        assert row.liquidation_price == pytest.approx(expected, rel=1e-9)
