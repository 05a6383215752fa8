"""An account's equity against the price, in cross margin and with every position isolated.

Both curves are the engine's figures (:func:`crossmargin.health.evaluate`) at shifted marks:
every derivative mark times ``1 + move``. The cross variant holds every position in cross
margin with all the money in the wallet; the isolated variant gives each position, as its
isolated margin, the initial margin it needs at the current marks (taken from the wallet,
which keeps the rest). Side by side they show what cross margin shares: one position's loss
drawing on the whole balance, against losses bounded by each position's own margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crossmargin.health import AccountHealth, evaluate
from crossmargin.model import Account, CrossMarginError, MarginMode, Market, Position

__all__ = ["CurvePoint", "EquityCurve", "equity_curve", "moves"]


@dataclass(frozen=True)
class CurvePoint:
    """The account at one shifted price: its equity, margins and status under each mode
    (account currency)."""

    move: float
    price: float
    cross_equity: float
    cross_maintenance_margin: float
    cross_status: str
    isolated_equity: float
    isolated_maintenance_margin: float
    isolated_status: str


@dataclass(frozen=True)
class EquityCurve:
    """Equity against ``symbol``'s price (``price`` of each point; every mark moved by the
    same fraction), with each mode's liquidation prices of ``symbol`` at the current marks."""

    account_id: str
    symbol: str
    mark: float
    cross_liquidation_price: float | None
    isolated_liquidation_price: float | None
    points: tuple[CurvePoint, ...]


def moves(span: float = 0.5, points: int = 61) -> tuple[float, ...]:
    """``points`` evenly spaced moves from ``-span`` to ``+span`` (fractions, span < 1)."""
    if not (math.isfinite(span) and 0 < span < 1):
        raise CrossMarginError("span", f"must be in (0, 1), got {span}")
    if not 3 <= points <= 401:
        raise CrossMarginError("points", f"must be 3-401, got {points}")
    return tuple(float(m) for m in np.linspace(-span, span, points))


def _variants(account: Account, health: AccountHealth) -> tuple[Account, Account]:
    """The account with every position cross, and with every position isolated."""
    currency = health.currency
    wallet = dict(account.balances)
    held = sum(p.isolated_margin or 0.0 for p in account.positions)
    cross_wallet = {**wallet, currency: wallet.get(currency, 0.0) + held}
    cross = Account(
        account.id,
        cross_wallet,
        [Position(p.symbol, p.qty, p.entry_price, leverage=p.leverage) for p in account.positions],
    )
    margin = {p.symbol: p.initial_margin for p in health.positions}
    isolated_positions = [
        Position(
            p.symbol,
            p.qty,
            p.entry_price,
            MarginMode.ISOLATED,
            max(margin.get(p.symbol, 0.0), 0.0),
            p.leverage,
        )
        for p in account.positions
    ]
    posted = sum(p.isolated_margin or 0.0 for p in isolated_positions)
    iso_wallet = {**cross_wallet, currency: cross_wallet.get(currency, 0.0) - posted}
    return cross, Account(account.id, iso_wallet, isolated_positions)


def _shifted(market: Market, move: float, symbols: Sequence[str]) -> Market:
    prices = dict(market.prices)
    for s in symbols:
        if s in prices:
            prices[s] = prices[s] * (1.0 + move)
    return Market(
        market.instruments, prices, market.currency, market.collateral, market.margin_call_ratio
    )


def _liquidation(health: AccountHealth, symbol: str) -> float | None:
    for p in health.positions:
        if p.symbol == symbol:
            return p.liquidation_price
    return None


def equity_curve(
    account: Account, market: Market, symbol: str | None = None, shifts: Sequence[float] = ()
) -> EquityCurve:
    """The equity curve of ``account`` against ``symbol`` (default: its largest position by
    notional) over ``shifts`` (default :func:`moves`)."""
    if not account.positions:
        raise CrossMarginError("positions", "the account holds no position")
    health = evaluate(account, market)
    if symbol is None:
        symbol = max(health.positions, key=lambda p: abs(p.notional)).symbol
    elif all(p.symbol != symbol for p in account.positions):
        raise CrossMarginError("symbol", f"the account holds no {symbol}")
    cross, isolated = _variants(account, health)
    derivatives = [s for s, i in market.instruments.items() if i.is_derivative]
    mark = market.prices[symbol]
    points = []
    cross_now, iso_now = evaluate(cross, market), evaluate(isolated, market)
    for move in shifts or moves():
        shifted = _shifted(market, move, derivatives)
        c, i = evaluate(cross, shifted), evaluate(isolated, shifted)
        points.append(
            CurvePoint(
                move,
                mark * (1.0 + move),
                c.equity,
                c.maintenance_margin,
                c.status.label,
                i.equity,
                i.maintenance_margin,
                i.status.label,
            )
        )
    return EquityCurve(
        account.id,
        symbol,
        mark,
        _liquidation(cross_now, symbol),
        _liquidation(iso_now, symbol),
        tuple(points),
    )
