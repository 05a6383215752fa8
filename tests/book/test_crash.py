"""The one crash-distance search (``crossmargin.maths.risk.crash_moves``) against outside answers.

A single linear position under one maintenance rate has a closed-form crash distance; richer
accounts are checked against a plain dense search written here, which moves the market's
prices itself and asks ``evaluate`` for the surplus at every point of a fine grid, then bisects.
``evaluate`` and ``RiskBook`` run the same search and must agree with both.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

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
from crossmargin.maths.liquidation import down_grid, up_grid

FLAT = MarginSchedule.brackets([0.0], [0.01], [50.0])
"""One bracket, 1% maintenance: MM = 0.01 x notional at every size."""


def _market(
    prices: dict[str, float], collateral: dict[str, CollateralRule] | None = None
) -> Market:
    instruments = {
        "BTCUSDT": Instrument("BTCUSDT", Kind.PERPETUAL, "BTC", "USDT", "USDT", FLAT),
        "ETHUSDT": Instrument("ETHUSDT", Kind.PERPETUAL, "ETH", "USDT", "USDT", FLAT),
        "BTCUSD": Instrument(
            "BTCUSD", Kind.PERPETUAL, "BTC", "USD", "BTC", FLAT, 100.0, inverse=True
        ),
    }
    rules = {"USDT": CollateralRule.flat("USDT", 1.0, stable=True), **(collateral or {})}
    return Market(instruments, prices, "USDT", rules)


def _surplus(account: Account, market: Market, move: float) -> float:
    """Smallest margin surplus with every non-stable price moved by ``1 + move``, from
    ``evaluate`` on a market whose prices were moved here."""
    moved = {k: v * (1 + move) for k, v in market.prices.items() if k != "USDT"}
    h = evaluate(account, market.with_prices(moved))
    values = [h.cross_equity - h.cross_maintenance_margin]
    values += [p.equity - p.maintenance_margin for p in h.positions if p.margin_mode == "isolated"]
    return min(values)


def _dense(account: Account, market: Market, grid: np.ndarray) -> float | None:
    """First fine-grid move with a negative surplus, bisected to 1e-13; None if none."""
    previous = 0.0
    for move in grid:
        if _surplus(account, market, float(move)) < 0:
            lo, hi = previous, float(move)
            while abs(hi - lo) > 1e-13:
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if _surplus(account, market, mid) < 0 else (mid, hi)
            return abs(hi)
        previous = float(move)
    return None


def _both(account: Account, market: Market) -> list[tuple[float | None, float | None]]:
    """(down, up) magnitudes from ``evaluate`` and from a one-account ``RiskBook``."""
    health = evaluate(account, market)
    crash = RiskBook.from_accounts([account], market).crash_distances()
    book = tuple(None if math.isnan(x) else abs(float(x)) for x in (crash.down[0], crash.up[0]))
    down = None if health.crash_move_down is None else abs(health.crash_move_down)
    return [(down, health.crash_move_up), (book[0], book[1])]


def test_single_long_matches_the_closed_form() -> None:
    """Long q BTC at entry e with wallet W, MM = r q p: equity W + q (p - e) = r q p at
    p* = (q e - W) / (q (1 - r)); the crash distance down is 1 - p* / p (a uniform move of
    the mark). The short side never liquidates a long within +900%."""
    q, e, p, wallet, r = 2.0, 60_000.0, 62_000.0, 10_000.0, 0.01
    account = Account("a", {"USDT": wallet}, [Position("BTCUSDT", q, e)])
    market = _market({"BTCUSDT": p})
    expected = 1.0 - (q * e - wallet) / (q * (1.0 - r)) / p
    for down, up in _both(account, market):
        assert down == pytest.approx(expected, abs=1e-12)
        assert up is None


def test_single_short_matches_the_closed_form() -> None:
    """Short q BTC: W + q (e - p) = r q p at p* = (W + q e) / (q (1 + r)); distance up
    p* / p - 1."""
    q, e, p, wallet, r = 3.0, 60_000.0, 59_000.0, 20_000.0, 0.01
    account = Account("a", {"USDT": wallet}, [Position("BTCUSDT", -q, e)])
    market = _market({"BTCUSDT": p})
    expected = (wallet + q * e) / (q * (1.0 + r)) / p - 1.0
    for down, up in _both(account, market):
        assert down is None
        assert up == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "account",
    [
        Account(
            "hedged",
            {"USDT": 3_000.0},
            [Position("BTCUSDT", 1.0, 60_000.0), Position("ETHUSDT", -10.0, 3_100.0)],
        ),
        Account(
            "isolated",
            {"USDT": 50_000.0},
            [
                Position("BTCUSDT", 1.0, 60_000.0, MarginMode.ISOLATED, 2_500.0),
                Position("ETHUSDT", -5.0, 3_000.0),
            ],
        ),
        Account("coin", {"BTC": 0.2}, [Position("BTCUSD", -30_000.0, 61_000.0)]),
        Account("collateral", {"BTC": 1.0, "USDT": -40_000.0}, [Position("ETHUSDT", 8.0, 3_000.0)]),
    ],
    ids=lambda a: a.id,
)
def test_accounts_match_a_dense_search(account: Account) -> None:
    """Hedged cross, isolated beside cross, a coin-margined short (convex in the move, so
    the coarse scan falls back to the fine grid) and haircut BTC collateral: the first
    crossing on each side equals a dense search of every grid point to 1e-9."""
    market = _market(
        {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "BTCUSD": 60_000.0, "BTC": 60_000.0},
        {"BTC": CollateralRule("BTC", (10.0, math.inf), (0.95, 0.8))},
    )
    expected = (_dense(account, market, down_grid(512)), _dense(account, market, up_grid(512)))
    for got in _both(account, market):
        for e, g in zip(expected, got, strict=True):
            if e is None:
                assert g is None
            else:
                assert g == pytest.approx(e, abs=1e-9)


def test_already_liquidatable_is_zero() -> None:
    """An account below maintenance now has crash distance 0 on both paths."""
    account = Account("a", {"USDT": 100.0}, [Position("BTCUSDT", 1.0, 70_000.0)])
    market = _market({"BTCUSDT": 60_000.0})
    for down, up in _both(account, market):
        assert down == 0.0 and up == 0.0


def test_convex_surplus_takes_the_fine_grid_and_matches_the_closed_form() -> None:
    """A BTC-margined account short 2 BTCUSDT at 60,000 with 0.5 BTC: its surplus in BTC,
    0.5 + 2 (60,000 / p - 1) - 0.01 x 2 (MM is 1% of a notional worth 2 BTC at any price), is
    convex in the move, so the coarse scan is not concave and the search scans every grid
    point. It turns negative at 60,000 / p = 0.76, a move up of 1 / 0.76 - 1."""
    instruments = {"BTCUSDT": Instrument("BTCUSDT", Kind.PERPETUAL, "BTC", "USDT", "USDT", FLAT)}
    rules = {
        "USDT": CollateralRule.flat("USDT", 1.0, stable=True),
        "BTC": CollateralRule.flat("BTC", 1.0),
    }
    market = Market(instruments, {"BTCUSDT": 60_000.0, "BTC": 60_000.0, "USDT": 1.0}, "BTC", rules)
    account = Account("c", {"BTC": 0.5}, [Position("BTCUSDT", -2.0, 60_000.0)])
    grid = up_grid(512)
    moves = grid[0:80:16]
    coarse = np.array([_surplus(account, market, float(m)) for m in moves])
    assert (np.diff(np.diff(coarse) / np.diff(moves)) > 0).all()
    for down, up in _both(account, market):
        assert down is None
        assert up == pytest.approx(1 / 0.76 - 1, abs=1e-12)
