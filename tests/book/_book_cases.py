"""Markets, random accounts and the comparison against ``evaluate`` shared by the book tests."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from crossmargin import (
    Account,
    CollateralRule,
    Instrument,
    Kind,
    MarginMode,
    MarginSchedule,
    Market,
    Position,
    evaluate,
)
from crossmargin.book.riskbook import RiskBook

BTC_FLOORS = [0, 50e3, 250e3, 1e6, 5e6, 20e6, 50e6, 100e6, 200e6, 300e6]
BTC_RATES = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
BTC_LEVERAGE = [125, 100, 50, 20, 10, 5, 4, 3, 2, 1]
ETH_FLOORS = [0, 10e3, 100e3, 500e3, 1e6, 2e6, 5e6, 10e6, 20e6]
ETH_RATES = [0.005, 0.0065, 0.01, 0.02, 0.05, 0.10, 0.125, 0.15, 0.25]
ETH_LEVERAGE = [100, 75, 50, 25, 10, 5, 4, 3, 2]
"""Binance USDⓈ-M BTCUSDT / ETHUSDT brackets, 2021 snapshot (venues.md 1.2)."""

PRICES = {
    "BTCUSDT": 60_000.0,
    "ETHUSDT": 3_000.0,
    "SOLUSDT": 150.0,
    "BTCUSD": 60_010.0,
    "BTC": 60_000.0,
}


def market(prices: dict[str, float] | None = None) -> Market:
    """Linear tiered perps (one isolated-at-entry), a size-scaled inverse perp and tiered BTC
    collateral: every branch of the kernels."""
    btc = MarginSchedule.brackets(BTC_FLOORS, BTC_RATES, BTC_LEVERAGE)
    eth = MarginSchedule.brackets(ETH_FLOORS, ETH_RATES, ETH_LEVERAGE)
    at_entry = MarginSchedule(btc.tiers, isolated_at_entry=True)
    instruments = {
        "BTCUSDT": Instrument("BTCUSDT", Kind.PERPETUAL, "BTC", "USDT", "USDT", btc),
        "ETHUSDT": Instrument("ETHUSDT", Kind.PERPETUAL, "ETH", "USDT", "USDT", eth),
        "SOLUSDT": Instrument("SOLUSDT", Kind.PERPETUAL, "SOL", "USDT", "USDT", at_entry),
        "BTCUSD": Instrument(
            "BTCUSD",
            Kind.PERPETUAL,
            "BTC",
            "USD",
            "BTC",
            MarginSchedule.size_scaled(0.02, 0.01, 0.001, 0.0005),
            100.0,
            inverse=True,
        ),
    }
    collateral = {
        "USDT": CollateralRule.flat("USDT", 1.0, stable=True),
        "BTC": CollateralRule("BTC", (10.0, math.inf), (0.95, 0.8)),
    }
    return Market(instruments, prices or PRICES, "USDT", collateral)


@st.composite
def positions(draw: st.DrawFn, symbol: str) -> Position:
    """A position in ``symbol`` near the reference price; linear ones may be isolated."""
    scale = 5_000.0 if symbol == "BTCUSD" else 60_000.0 / PRICES[symbol]
    qty = draw(st.floats(0.01, 3.0)) * scale * draw(st.sampled_from([1.0, -1.0]))
    entry = PRICES[symbol] * draw(st.floats(0.8, 1.2))
    leverage = draw(st.sampled_from([None, None, 1.0, 2.0]))
    if symbol != "BTCUSD" and draw(st.booleans()):
        margin = abs(qty) * entry * draw(st.floats(0.005, 0.3))
        return Position(symbol, qty, entry, MarginMode.ISOLATED, margin, leverage)
    return Position(symbol, qty, entry, leverage=leverage)


@st.composite
def accounts(draw: st.DrawFn, index: int) -> Account:
    """An account with 0-4 positions and USDT and/or tiered BTC collateral."""
    symbols = draw(st.lists(st.sampled_from(sorted(PRICES)[1:]), max_size=4, unique=True))
    held = [draw(positions(s)) for s in symbols if s != "BTC"]
    balances = {"USDT": draw(st.floats(0.0, 200_000.0, allow_subnormal=False))}
    if draw(st.booleans()):
        balances["BTC"] = draw(st.floats(-1.0, 30.0, allow_subnormal=False))
    return Account(f"a{index}", balances, held)


@st.composite
def books(draw: st.DrawFn) -> list[Account]:
    """One to eight accounts."""
    n = draw(st.integers(1, 8))
    return [draw(accounts(k)) for k in range(n)]


def close(a: float, b: float, rel: float = 1e-9, scale: float = 1.0) -> bool:
    """Equal to ``rel`` relative, or within ``rel * scale`` absolute near 0."""
    return abs(a - b) <= rel * max(abs(a), abs(b), scale)


def assert_matches(book: RiskBook, accounts: list[Account], market: Market) -> None:
    """Every figure of every account equals ``evaluate`` (summation order aside)."""
    values = book.values()
    liquidations = book.liquidation_prices()
    crash = book.crash_distances()
    index = {s: k for k, s in enumerate(book.params.symbols)}
    for k, account in enumerate(accounts):
        health = evaluate(account, market)
        scale = 1.0 + abs(health.collateral_value) + health.maintenance_margin
        pairs = [
            (health.equity, values.equity[k]),
            (health.initial_margin, values.initial_margin[k]),
            (health.maintenance_margin, values.maintenance_margin[k]),
            (health.available_balance, values.available[k]),
        ]
        for expected, got in pairs:
            assert close(expected, float(got), scale=scale), (k, expected, got)
        if math.isfinite(health.margin_ratio):
            assert close(health.margin_ratio, float(values.margin_ratio[k]), 1e-8)
        assert health.status == values.status[k], (k, health.status, values.status[k])
        for p in health.positions:
            hit = (liquidations.account == k) & (liquidations.instrument == index[p.symbol])
            got = float(liquidations.price[np.flatnonzero(hit)[0]])
            if p.liquidation_price is None:
                assert math.isnan(got), (k, p.symbol, got)
            else:
                assert close(p.liquidation_price, got), (k, p.symbol, p.liquidation_price, got)
        for expected_move, got_move in (
            (health.crash_move_down, crash.down[k]),
            (health.crash_move_up, crash.up[k]),
        ):
            if expected_move is None:
                assert math.isnan(got_move), (k, got_move)
            else:
                assert close(expected_move, float(got_move), 1e-9, 1e-3), (
                    k,
                    expected_move,
                    got_move,
                )
