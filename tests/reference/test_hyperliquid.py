"""Hyperliquid: maintenance = half the initial margin at max leverage; liquidation formula."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from tests.helpers import linear_perp

from crossmargin import Account, MarginMode, MarginSchedule, Market, Position, evaluate

MAX_LEVERAGE = {"BTC-PERP": 40.0, "ETH-PERP": 25.0, "SOL-PERP": 20.0}


def _market(prices: dict[str, float]) -> Market:
    instruments = {
        s: linear_perp(s, MarginSchedule.hyperliquid([0.0], [lev]), quote="USDC")
        for s, lev in MAX_LEVERAGE.items()
    }
    return Market(instruments, prices, "USDC")


def hyperliquid_liquidation_price(
    price: float, side: int, size: float, margin_available: float, max_leverage: float
) -> float:
    """liq = price - side * margin_available / size / (1 - l * side), l = 1 / (2 * max lev).

    Source: hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations (venues.md 4.1).
    """
    maintenance_leverage = 2.0 * max_leverage
    return price - side * margin_available / size / (1.0 - side / maintenance_leverage)


def test_vector_h2() -> None:
    """Cross value 10,000, long 1 BTC @ 100,000, max 40x: MM 1,250, liq 91,139.24."""
    health = evaluate(
        Account("h2", {"USDC": 10_000.0}, [Position("BTC-PERP", 1.0, 100_000.0)]),
        _market({"BTC-PERP": 100_000.0}),
    )
    assert health.maintenance_margin == pytest.approx(1_250.0)
    assert health.positions[0].liquidation_price == pytest.approx(91_139.24, abs=0.005)


@settings(max_examples=80, deadline=None)
@given(
    balance=st.floats(5_000, 200_000),
    sizes=st.tuples(*(st.floats(-3, 3).filter(lambda x: abs(x) > 0.01) for _ in range(3))),
    moves=st.tuples(*(st.floats(-0.1, 0.1) for _ in range(3))),
)
def test_cross_formula_on_random_accounts(
    balance: float, sizes: tuple[float, ...], moves: tuple[float, ...]
) -> None:
    """Every cross position's price from the engine equals Hyperliquid's published formula."""
    marks = {"BTC-PERP": 100_000.0, "ETH-PERP": 3_000.0, "SOL-PERP": 150.0}
    scale = {"BTC-PERP": 1.0, "ETH-PERP": 10.0, "SOL-PERP": 100.0}
    positions = [
        Position(s, q * scale[s], marks[s] * (1 + m))
        for (s, q, m) in zip(marks, sizes, moves, strict=True)
    ]
    health = evaluate(Account("r", {"USDC": balance}, positions), _market(marks))
    available = health.equity - health.maintenance_margin
    for row in health.positions:
        side = 1 if row.qty > 0 else -1
        expected = hyperliquid_liquidation_price(
            row.mark_price, side, abs(row.qty), available, MAX_LEVERAGE[row.symbol]
        )
        if expected <= 0:
            assert row.liquidation_price is None
        else:
            assert row.liquidation_price == pytest.approx(expected, rel=1e-9)


def test_isolated_uses_isolated_margin() -> None:
    """Isolated: margin_available = isolated margin - MM; chosen leverage sets the margin only."""
    market = _market({"ETH-PERP": 2_500.0})
    position = Position("ETH-PERP", 2.0, 2_400.0, MarginMode.ISOLATED, 300.0, leverage=10)
    row = evaluate(Account("i", {"USDC": 0.0}, [position]), market).positions[0]
    # MMR 1/(2*25) = 2%: MM 100; equity 300 + 2*(2,500 - 2,400) = 500; available 400.
    assert row.maintenance_margin == pytest.approx(100.0)
    assert row.equity == pytest.approx(500.0)
    expected = hyperliquid_liquidation_price(2_500.0, 1, 2.0, 400.0, 25.0)
    assert row.liquidation_price == pytest.approx(expected, rel=1e-12)
