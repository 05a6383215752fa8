"""Binance USDⓈ-M: bracket continuity rule, liquidation-price formula, Multi-Assets haircuts."""

from __future__ import annotations

import pytest
from tests.helpers import (
    BINANCE_BTC_FLOORS,
    BINANCE_BTC_RATES,
    BINANCE_ETH_FLOORS,
    BINANCE_ETH_RATES,
    binance_btc,
    binance_eth,
    linear_perp,
)

from crossmargin import Account, CollateralRule, MarginMode, Market, Position, evaluate
from crossmargin.model import continuity_amounts


def test_continuity_rule_reproduces_published_cum() -> None:
    """BTCUSDT and ETHUSDT ``cum`` columns of GET /fapi/v1/leverageBracket (~2021 snapshot).

    Source: venues.md 1.2 (public TypeScript ``calculateLiquidationPrice`` snapshot).
    """
    btc = continuity_amounts(BINANCE_BTC_FLOORS, BINANCE_BTC_RATES)
    assert btc == pytest.approx(
        [0, 50, 1_300, 16_300, 141_300, 1_141_300, 2_391_300, 4_891_300, 24_891_300, 99_891_300]
    )
    eth = continuity_amounts(BINANCE_ETH_FLOORS, BINANCE_ETH_RATES)
    assert eth == pytest.approx([0, 15, 365, 5_365, 35_365, 135_365, 260_365, 510_365, 2_510_365])


def binance_liquidation_price(
    wb: float, tmm1: float, upnl1: float, side: int, size: float, entry: float
) -> float:
    """Binance's published one-way formula, iterating brackets until LP * size is inside one.

    LP = (WB - TMM1 + UPNL1 + cumB - side * P * EP) / (P * MMR_B - side * P)
    Source: Binance FAQ b3c689c1f50a44cabb3a84e663b81d93 (venues.md 1.3).
    """
    cums = continuity_amounts(BINANCE_BTC_FLOORS, BINANCE_BTC_RATES)
    caps = [*BINANCE_BTC_FLOORS[1:], float("inf")]
    for floor, cap, mmr, cum in zip(BINANCE_BTC_FLOORS, caps, BINANCE_BTC_RATES, cums, strict=True):
        lp = (wb - tmm1 + upnl1 + cum - side * size * entry) / (size * mmr - side * size)
        if floor <= lp * size < cap:
            return lp
    raise AssertionError("no bracket holds the liquidation price")


def _market(prices: dict[str, float]) -> Market:
    instruments = {
        "BTCUSDT": linear_perp("BTCUSDT", binance_btc()),
        "ETHUSDT": linear_perp("ETHUSDT", binance_eth()),
    }
    return Market(instruments, prices, "USDT")


@pytest.mark.parametrize(("qty", "expected"), [(1.0, 45_180.72), (-1.0, 54_776.12)])
def test_isolated_one_way_vector_b2(qty: float, expected: float) -> None:
    """Vector B2 (venues.md 1.3): wallet 5,000, 1 BTC @ 50,000.

    Long: (5,000 - 50,000) / (0.004 - 1) = 45,180.72 in bracket 1 (0.4%, cum 0). Short: the
    reference's 54,780.88 keeps bracket 1, but at that price the notional (54,780) lies in
    bracket 2 (0.5%, cum 50), so Binance's own bracket iteration gives
    (5,000 + 50 + 50,000) / (0.005 + 1) = 54,776.12.
    """
    position = Position("BTCUSDT", qty, 50_000.0, MarginMode.ISOLATED, 5_000.0)
    health = evaluate(Account("b2", {"USDT": 0.0}, [position]), _market({"BTCUSDT": 50_000.0}))
    assert health.positions[0].liquidation_price == pytest.approx(expected, abs=0.005)
    assert health.positions[0].liquidation_price == pytest.approx(
        binance_liquidation_price(5_000.0, 0, 0, 1 if qty > 0 else -1, 1.0, 50_000.0), rel=1e-12
    )


@pytest.mark.parametrize(
    ("btc_qty", "btc_entry"),
    [(30.0, 40_000.0), (-30.0, 40_000.0), (-2.0, 41_500.0), (-150.0, 39_000.0)],
)
def test_cross_matches_published_formula_across_brackets(btc_qty: float, btc_entry: float) -> None:
    """Cross account with a second position: TMM1 and UPNL1 come from the ETH position.

    The published formula evaluated independently (with its bracket iteration) must agree.
    """
    prices = {"BTCUSDT": 41_000.0, "ETHUSDT": 2_600.0}
    eth = Position("ETHUSDT", -100.0, 2_500.0)
    btc = Position("BTCUSDT", btc_qty, btc_entry)
    health = evaluate(Account("x", {"USDT": 400_000.0}, [btc, eth]), _market(prices))
    eth_row = health.positions[1]
    # ETH: notional 260,000 sits in bracket 3 (1%, cum 365): MM = 2,600 - 365 = 2,235.
    assert eth_row.maintenance_margin == pytest.approx(2_235.0)
    assert eth_row.unrealized_pnl == pytest.approx(-10_000.0)
    expected = binance_liquidation_price(
        400_000.0, 2_235.0, -10_000.0, 1 if btc_qty > 0 else -1, abs(btc_qty), btc_entry
    )
    assert health.positions[0].liquidation_price == pytest.approx(expected, rel=1e-9)


def test_multi_assets_mode_haircuts() -> None:
    """Multi-Assets mode (2021): BNB worth $1,000 counts $950, ADA worth $1,000 counts $900.

    Source: Binance FAQ 29b45c485d664028b9ca1cdf90b24f6f (venues.md 1.4).
    """
    collateral = {
        "BNB": CollateralRule.flat("BNB", 0.95),
        "ADA": CollateralRule.flat("ADA", 0.90),
        "USDT": CollateralRule.flat("USDT", 0.9999, stable=True),
    }
    market = Market({}, {"BNB": 500.0, "ADA": 0.5}, "USDT", collateral)
    health = evaluate(Account("m", {"BNB": 2.0, "ADA": 2_000.0}), market)
    assert health.wallet_balance == pytest.approx(2_000.0)
    assert health.collateral_value == pytest.approx(950.0 + 900.0)
