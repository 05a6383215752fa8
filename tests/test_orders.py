"""Checks before acting: what_if verdicts and fills, maximum withdrawable amounts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st
from tests.helpers import binance_btc, binance_eth, inverse_perp, linear_perp

from crossmargin import (
    Account,
    CollateralRule,
    CrossMarginError,
    MarginMode,
    Market,
    Order,
    Position,
    evaluate,
    max_withdrawable,
    what_if,
)


def _market() -> Market:
    instruments = {
        "BTCUSDT": linear_perp("BTCUSDT", binance_btc()),
        "ETHUSDT": linear_perp("ETHUSDT", binance_eth()),
        "BTCUSD_PERP": inverse_perp("BTCUSD_PERP", binance_btc()),
    }
    collateral = {
        "USDT": CollateralRule.flat("USDT", 1.0, stable=True),
        "BTC": CollateralRule("BTC", (10.0, math.inf), (0.95, 0.5)),
    }
    prices = {"BTCUSDT": 50_000.0, "ETHUSDT": 2_000.0, "BTCUSD_PERP": 50_000.0, "BTC": 50_000.0}
    return Market(instruments, prices, "USDT", collateral)


def test_opening_within_initial_margin_is_accepted() -> None:
    account = Account("a", {"USDT": 10_000.0})
    result = what_if(account, _market(), Order("BTCUSDT", 1.0, leverage=10))
    assert result.accepted and result.reason is None
    # 1 BTC @ 50,000 at 10x: IM 5,000; bracket 1 (0.4%): MM 200.
    assert result.after.initial_margin == pytest.approx(5_000.0)
    assert result.after.maintenance_margin == pytest.approx(200.0)
    assert result.before.initial_margin == 0.0


def test_breaching_initial_margin_is_rejected() -> None:
    account = Account("a", {"USDT": 4_000.0})
    result = what_if(account, _market(), Order("BTCUSDT", 1.0, leverage=10))
    assert not result.accepted
    assert result.reason is not None and result.reason.startswith("initial margin breached")


def test_leverage_above_the_bracket_cap_is_rejected() -> None:
    """6 BTC @ 50,000 = 300,000 lies in bracket 3 (250k-1M), capped at 50x."""
    account = Account("a", {"USDT": 1_000_000.0})
    result = what_if(account, _market(), Order("BTCUSDT", 6.0, leverage=75))
    assert not result.accepted
    assert result.reason is not None and "bracket leverage exceeded" in result.reason
    assert "50x" in result.reason


def test_fills_average_entries_and_realise_pnl() -> None:
    """Linear entries average by quantity; inverse ones harmonically (by contract value)."""
    market = _market()
    start = Account(
        "a",
        {"USDT": 100_000.0, "BTC": 1.0},
        [Position("BTCUSDT", 1.0, 40_000.0), Position("BTCUSD_PERP", 100.0, 40_000.0)],
    )
    grown = what_if(start, market, Order("BTCUSDT", 1.0, price=60_000.0)).account
    assert grown.position("BTCUSDT") == Position("BTCUSDT", 2.0, 50_000.0)
    inverse = what_if(start, market, Order("BTCUSD_PERP", 100.0, price=60_000.0)).account
    inv = inverse.position("BTCUSD_PERP")
    assert inv is not None and inv.entry_price == pytest.approx(200 / (100 / 40_000 + 100 / 60_000))
    closed = what_if(start, market, Order("BTCUSDT", -1.0, price=45_000.0, fee_rate=0.001)).account
    assert closed.position("BTCUSDT") is None
    # Realised 5,000 less a 45 fee.
    assert closed.balances["USDT"] == pytest.approx(100_000.0 + 5_000.0 - 45.0)
    flipped = what_if(start, market, Order("BTCUSD_PERP", -300.0, price=50_000.0)).account
    # 100 contracts closed: 100 * 100 * (1/40,000 - 1/50,000) = 0.05 BTC realised.
    assert flipped.balances["BTC"] == pytest.approx(1.05)
    assert flipped.position("BTCUSD_PERP") == Position("BTCUSD_PERP", -200.0, 50_000.0)


def test_isolated_open_takes_its_margin_from_the_wallet() -> None:
    account = Account("a", {"USDT": 10_000.0})
    order = Order("ETHUSDT", 10.0, margin_mode=MarginMode.ISOLATED, leverage=20)
    result = what_if(account, _market(), order)
    position = result.account.position("ETHUSDT")
    assert position is not None and position.isolated_margin == pytest.approx(1_000.0)
    assert result.account.balances["USDT"] == pytest.approx(9_000.0)
    assert result.accepted


def test_reducing_is_accepted_even_when_unhealthy() -> None:
    account = Account("a", {"USDT": 100.0}, [Position("BTCUSDT", 1.0, 50_500.0)])
    result = what_if(account, _market(), Order("BTCUSDT", -0.5))
    assert result.before.status.label == "bankrupt"
    assert result.accepted


def test_unknown_order_symbol_names_the_field() -> None:
    with pytest.raises(CrossMarginError, match=r"^order\.symbol: unknown instrument"):
        what_if(Account("a", {"USDT": 1.0}), _market(), Order("NOPE", 1.0))


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 30), st.floats(1_000, 200_000), st.floats(0.01, 3), st.floats(30_000, 70_000))
def test_max_withdrawable_is_the_exact_limit(
    btc: float, usdt: float, size: float, mark: float
) -> None:
    """Withdrawing the reported amount leaves cross equity at the initial margin (or empties the
    balance); 0.1% more breaches it. Checked by re-evaluating, not by the same formula."""
    market = _market().with_prices({"BTCUSDT": mark, "BTC": mark})
    account = Account(
        "w", {"USDT": usdt, "BTC": btc}, [Position("BTCUSDT", size, 50_000.0, leverage=10)]
    )
    limits = max_withdrawable(account, market)
    for asset, amount in limits.items():
        balance = account.balances[asset]
        after = Account("w", {**account.balances, asset: balance - amount}, account.positions)
        health = evaluate(after, market)
        if amount > 0:
            slack = 1e-6 * health.cross_initial_margin
            assert health.cross_equity >= health.cross_initial_margin - slack
        if 0 < amount < balance:
            more = Account(
                "w", {**account.balances, asset: balance - amount * 1.001 - 1e-9}, account.positions
            )
            h = evaluate(more, market)
            assert h.cross_equity < h.cross_initial_margin
