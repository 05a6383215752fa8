"""Bybit: classic isolated liquidation price, tiered maintenance margin, tiered collateral value."""

from __future__ import annotations

import dataclasses
import math

import pytest
from tests.helpers import inverse_perp, linear_perp

from crossmargin import (
    Account,
    CollateralRule,
    MarginMode,
    MarginSchedule,
    Market,
    Position,
    evaluate,
)


@pytest.mark.parametrize(("qty", "expected"), [(1.0, 19_700.0), (-1.0, 20_300.0)])
def test_isolated_liquidation_price_vector_y2(qty: float, expected: float) -> None:
    """1 BTC @ 20,000 at 50x, MMR 0.5%: IM 400, MM 100, LP = EP -/+ (IM - MM) / size.

    Source: Bybit help center "Liquidation Price (USDT Contract)", classic isolated margin, where
    IM and MM are fixed at the entry-price value (venues.md 2.4: long 19,700 [SEEN]).
    """
    flat = MarginSchedule.brackets([0.0], [0.005], [100.0])
    schedule = dataclasses.replace(flat, isolated_at_entry=True)
    market = Market({"BTCUSDT": linear_perp("BTCUSDT", schedule)}, {"BTCUSDT": 20_000.0}, "USDT")
    position = Position("BTCUSDT", qty, 20_000.0, MarginMode.ISOLATED, 400.0, leverage=50)
    row = evaluate(Account("y2", {}, [position]), market).positions[0]
    assert row.initial_margin == pytest.approx(400.0)
    assert row.maintenance_margin == pytest.approx(100.0)
    assert row.liquidation_price == pytest.approx(expected, rel=1e-12)


def test_tiered_maintenance_margin_vector_y1_linear() -> None:
    """XYZUSDT tiers 0-1k 2%, 1-2k 2.5%, 2-3k 3%, 3-4k 3.5%, 4-5k 4%: 100 @ 35 at 10x.

    Position value 3,500 [SEEN]; IM = 3,500 / 10 = 350; the excess above each tier is charged at
    the next tier's rate: 1,000*2% + 1,000*2.5% + 1,000*3% + 500*3.5% = 92.5 (venues.md 2.3).
    """
    schedule = MarginSchedule.brackets(
        [0, 1_000, 2_000, 3_000, 4_000, 5_000],
        [0.02, 0.025, 0.03, 0.035, 0.04, 0.045],
        [50, 40, 33, 28, 25, 22],
    )
    market = Market({"XYZUSDT": linear_perp("XYZUSDT", schedule)}, {"XYZUSDT": 35.0}, "USDT")
    row = evaluate(
        Account("y1", {"USDT": 1_000.0}, [Position("XYZUSDT", 100, 35.0, leverage=10)]), market
    ).positions[0]
    assert row.notional == pytest.approx(3_500.0)
    assert row.initial_margin == pytest.approx(350.0)
    assert row.maintenance_margin == pytest.approx(92.5)


def test_tiered_maintenance_margin_vector_y1_inverse() -> None:
    """XYZUSD inverse, tiers 1%/2%/3% per 10 XYZ: 10,000 contracts (1 USD) @ 400 at 10x.

    Position value 10,000 / 400 = 25 XYZ [SEEN]; IM 2.5 XYZ [SEEN];
    MM = 10*1% + 10*2% + 5*3% = 0.45 XYZ (venues.md 2.3).
    """
    schedule = MarginSchedule.brackets([0, 10, 20], [0.01, 0.02, 0.03], [100, 50, 33])
    instrument = inverse_perp("XYZUSD", schedule, contract_size=1.0)
    market = Market({"XYZUSD": instrument}, {"XYZUSD": 400.0, "XYZ": 400.0}, "XYZ")
    account = Account("y1i", {"XYZ": 10.0}, [Position("XYZUSD", 10_000, 400.0, leverage=10)])
    row = evaluate(account, market).positions[0]
    assert row.notional == pytest.approx(25.0)
    assert row.initial_margin == pytest.approx(2.5)
    assert row.maintenance_margin == pytest.approx(0.45)


def test_tiered_collateral_value_vector_y4() -> None:
    """25 BTC @ 50,000 under BTC tiers 0-10 0.98, 10-20 0.95, 20-30 0.90, ...: 1,190,000 USD.

    Source: Bybit "Assets Collateral Value Ratio List (UTA)" (venues.md 2.5).
    """
    btc = CollateralRule("BTC", (10, 20, 30, 40, 50, math.inf), (0.98, 0.95, 0.90, 0.85, 0.80, 0.0))
    market = Market({}, {"BTC": 50_000.0}, "USDT", {"BTC": btc})
    health = evaluate(Account("y4", {"BTC": 25.0}), market)
    assert health.collateral_value == pytest.approx(1_190_000.0)
    assert health.wallet_balance == pytest.approx(1_250_000.0)


def test_negative_balance_counts_in_full() -> None:
    """A liability is not haircut: -1 BTC counts -50,000 however the tiers are set."""
    btc = CollateralRule("BTC", (10, math.inf), (0.5, 0.0))
    market = Market({}, {"BTC": 50_000.0}, "USDT", {"BTC": btc})
    health = evaluate(Account("neg", {"BTC": -1.0, "USDT": 80_000.0}), market)
    assert health.collateral_value == pytest.approx(30_000.0)
