"""Account health for one account: equity, margins, ratios, status, liquidation prices.

All amounts are in the market's account ``currency`` unless a name says otherwise.
:func:`evaluate` is the one-account call of the account-risk kernel
(:mod:`crossmargin.maths.risk`), the same compiled code ``RiskBook`` runs for many accounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossmargin.maths.collateral import collateral_table, collateral_units
from crossmargin.maths.liquidation import down_grid, up_grid
from crossmargin.maths.risk import (
    BRACKET,
    CAP,
    CODE,
    COLLATERAL,
    CROSS_IM,
    CROSS_MM,
    EQUITY,
    FIELDS,
    IM,
    MM,
    NOTIONAL,
    PNL,
    POSITION,
    ROW_FIELDS,
    Holdings,
    bankruptcy_prices,
    crash_moves,
    effective_leverage_of,
    holdings_risk,
    instrument_terms,
    liquidation_prices,
    record_figures,
    record_statuses,
)
from crossmargin.maths.status import Status, status_of
from crossmargin.maths.tiers import MarginArrays
from crossmargin.model import Account, CrossMarginError, Instrument, Market, Position

__all__ = ["AccountHealth", "CollateralHealth", "PositionHealth", "evaluate"]

Float = NDArray[np.float64]


@dataclass(frozen=True)
class PositionHealth:
    """One position. Amounts in the account currency; prices in the instrument's quote.

    For isolated positions ``equity`` is the isolated margin plus PnL and ``status`` its own; for
    cross positions both describe the cross account. ``liquidation_price`` is ``None`` where no
    positive mark price liquidates the position; ``bankruptcy_price`` is the mark at which the
    equity backing it, less its fee to close where the venue counts one, is zero (``None``: no
    positive price). ``over_limit``: the notional is past the venue's position limit (the last
    bracket's cap); the position is still margined at the last bracket.
    """

    symbol: str
    kind: str
    margin_mode: str
    qty: float
    entry_price: float
    mark_price: float
    settle: str
    notional: float
    unrealized_pnl: float
    initial_margin: float
    maintenance_margin: float
    bracket: int
    max_leverage: float
    liquidation_price: float | None
    bankruptcy_price: float | None
    equity: float
    status: Status
    over_limit: bool = False


@dataclass(frozen=True)
class CollateralHealth:
    """One asset as collateral: ``balance`` held (balances plus spot positions), ``price`` in the
    account currency, ``ratio`` the share of its value that counts (the haircut's complement;
    a negative balance, owed, counts in full) and ``value = balance x price x ratio`` in the
    account currency."""

    asset: str
    balance: float
    price: float
    ratio: float
    value: float


@dataclass(frozen=True)
class AccountHealth:
    """Health of a whole account: the cross part plus every isolated position.

    ``equity = collateral_value + cross unrealized PnL + sum of isolated equities`` (an isolated
    equity is its margin plus its PnL); ``unrealized_pnl`` sums every derivative position, cross
    and isolated; ``collateral`` is ``collateral_value`` per asset;
    ``initial_margin``/``maintenance_margin`` sum all positions; ``available_balance`` is the
    cross equity above the cross initial margin (what may still open positions or be
    withdrawn); ``status`` is the worst of the cross account and each isolated position.
    ``crash_distance`` is the smallest uniform move of all non-cash prices (a fraction, either
    direction) that makes the account liquidatable; the signed moves are in ``crash_move_down`` and
    ``crash_move_up``.
    """

    id: str
    currency: str
    wallet_balance: float
    collateral_value: float
    collateral: tuple[CollateralHealth, ...]
    unrealized_pnl: float
    equity: float
    initial_margin: float
    maintenance_margin: float
    margin_ratio: float
    available_balance: float
    effective_leverage: float
    cross_equity: float
    cross_initial_margin: float
    cross_maintenance_margin: float
    status: Status
    crash_distance: float | None
    crash_move_down: float | None
    crash_move_up: float | None
    positions: tuple[PositionHealth, ...]


CRASH_POINTS = 512
"""Moves per side of the crash-distance grid (0 to -99% and 0 to +900%, log-spaced)."""
CRASH_STEP = 16
"""Every ``CRASH_STEP``-th grid point is scanned first (see :func:`crash_moves`)."""
_GRIDS = down_grid(CRASH_POINTS), up_grid(CRASH_POINTS)


@dataclass(frozen=True)
class _Frame:
    """One account laid out for the kernel: its derivative positions as :class:`Holdings`
    (one instrument row per position), its balances' amounts and prices."""

    positions: tuple[tuple[Position, Instrument], ...]
    holdings: Holdings
    assets: tuple[str, ...]
    amounts: Float
    factor: Float


def _frame(account: Account, market: Market) -> _Frame:
    amounts: dict[str, float] = dict(account.balances)
    derivatives: list[tuple[Position, Instrument]] = []
    spot_px: dict[str, float] = {}
    for i, position in enumerate(account.positions):
        try:
            instrument = market.instrument(position.symbol)
            mark = market.mark(position.symbol)
        except CrossMarginError as error:
            path = f"positions[{i}].symbol" if error.path == "symbol" else error.path
            raise CrossMarginError(path, error.reason) from None
        if instrument.margin is None and instrument.is_derivative:
            raise CrossMarginError(
                f"positions[{i}].symbol",
                f"{instrument.kind} {position.symbol} has no margin schedule",
            )
        if instrument.is_derivative:
            derivatives.append((position, instrument))
            amounts.setdefault(instrument.settle, 0.0)
        else:
            if position.is_isolated:
                raise CrossMarginError(f"positions[{i}].margin_mode", "spot cannot be isolated")
            held = position.qty * instrument.contract_size
            amounts[instrument.underlying] = amounts.get(instrument.underlying, 0.0) + held
            spot_px[instrument.underlying] = mark * market.to_currency(instrument.quote)
    assets = tuple(amounts)
    px = []
    for asset in assets:
        if asset in market.prices or asset == market.currency or asset not in spot_px:
            px.append(market.to_currency(asset))
        else:
            px.append(spot_px[asset])
    rules = [market.collateral_rule(a) for a in assets]
    up_to, ratios = collateral_table(rules)
    index = {a: k for k, a in enumerate(assets)}
    schedule = MarginArrays.from_schedules(
        [ins.margin for _, ins in derivatives if ins.margin is not None]
    )
    settle = np.array([index[i.settle] for _, i in derivatives], dtype=np.intp)
    terms = instrument_terms(
        np.array([i.contract_size for _, i in derivatives], dtype=np.float64),
        np.array([i.inverse for _, i in derivatives], dtype=bool),
        settle,
        schedule,
    )
    positions = np.zeros(len(derivatives), dtype=POSITION)
    positions["qty"] = [p.qty for p, _ in derivatives]
    positions["entry"] = [p.entry_price for p, _ in derivatives]
    positions["leverage"] = [np.nan if p.leverage is None else p.leverage for p, _ in derivatives]
    positions["margin"] = [p.isolated_margin or 0.0 for p, _ in derivatives]
    positions["instrument"] = np.arange(len(derivatives))
    positions["isolated"] = [p.is_isolated for p, _ in derivatives]
    amount = np.array([amounts[a] for a in assets], dtype=np.float64)
    price = np.array(px, dtype=np.float64)
    holdings = Holdings(
        np.array([0, len(derivatives)], dtype=np.intp),
        positions,
        terms,
        np.ascontiguousarray(schedule.brackets),
        np.array([market.mark(p.symbol) for p, _ in derivatives], dtype=np.float64),
        collateral_units(amount, up_to, ratios)[None, :],
        price,
        np.array([r.stable for r in rules], dtype=bool),
        market.collateral_rule(market.currency).stable,
        market.margin_call_ratio,
    )
    return _Frame(tuple(derivatives), holdings, assets, amount, price[settle])


def evaluate(account: Account, market: Market) -> AccountHealth:
    """Health of ``account`` at ``market`` prices. Raises CrossMarginError on bad input."""
    frame = _frame(account, market)
    h = frame.holdings
    record = np.empty((1, FIELDS))
    rows = np.empty((len(frame.positions), ROW_FIELDS))
    holdings_risk(h, record, rows)
    liquidation = np.empty(len(frame.positions))
    liquidation_prices(h, record, liquidation)
    bankruptcy = np.empty(len(frame.positions))
    bankruptcy_prices(h, record, bankruptcy)
    crash = np.empty((1, 2))
    crash_moves(h, np.zeros(1, dtype=np.intp), *_GRIDS, CRASH_STEP, crash)
    figures = np.empty((6, 1))
    record_figures(record, figures)
    equity, initial, maintenance, ratio, available, cross_equity = (float(x) for x in figures[:, 0])
    worst = np.empty(1, dtype=np.int8)
    record_statuses(record, market.margin_call_ratio, worst)
    r = record[0]
    cross_status = Status(status_of(cross_equity, r[CROSS_MM], market.margin_call_ratio))
    positions = []
    marks, factors = h.marks.tolist(), frame.factor.tolist()
    for row, liq, bust, mark, factor, (position, instrument) in zip(
        rows.tolist(),
        liquidation.tolist(),
        bankruptcy.tolist(),
        marks,
        factors,
        frame.positions,
        strict=True,
    ):
        iso = position.is_isolated
        positions.append(
            PositionHealth(
                symbol=position.symbol,
                kind=str(instrument.kind),
                margin_mode=str(position.margin_mode),
                qty=position.qty,
                entry_price=position.entry_price,
                mark_price=mark,
                settle=instrument.settle,
                notional=row[NOTIONAL],
                unrealized_pnl=row[PNL],
                initial_margin=row[IM],
                maintenance_margin=row[MM],
                bracket=int(row[BRACKET]),
                max_leverage=row[CAP],
                liquidation_price=None if math.isnan(liq) else liq,
                bankruptcy_price=None if math.isnan(bust) else bust,
                equity=row[EQUITY] if iso else cross_equity,
                status=Status(int(row[CODE])) if iso else cross_status,
                over_limit=row[NOTIONAL] > factor * _limit(instrument),
            )
        )
    positions.extend(_spot_rows(account, market, cross_equity, cross_status))
    down, up = (None if np.isnan(x) else float(x) for x in crash[0])
    distances = [d for d in (down, up) if d is not None]
    return AccountHealth(
        id=account.id,
        currency=market.currency,
        wallet_balance=float(frame.amounts @ h.price),
        collateral_value=float(r[COLLATERAL]),
        collateral=_collateral_rows(frame),
        unrealized_pnl=float(rows[:, PNL].sum()),
        equity=equity,
        initial_margin=initial,
        maintenance_margin=maintenance,
        margin_ratio=ratio,
        available_balance=available,
        effective_leverage=float(effective_leverage_of(float(rows[:, NOTIONAL].sum()), equity)),
        cross_equity=cross_equity,
        cross_initial_margin=float(r[CROSS_IM]),
        cross_maintenance_margin=float(r[CROSS_MM]),
        status=Status(int(worst[0])),
        crash_distance=min(distances) if distances else None,
        crash_move_down=None if down is None else -down if down else 0.0,
        crash_move_up=up,
        positions=tuple(positions),
    )


def _limit(instrument: Instrument) -> float:
    """The instrument's position limit (notional in the settle asset)."""
    return np.inf if instrument.margin is None else instrument.margin.position_limit


def _collateral_rows(frame: _Frame) -> tuple[CollateralHealth, ...]:
    """Each non-zero holding's collateral value (the kernel's units at the asset's price)."""
    h = frame.holdings
    rows = []
    for k, asset in enumerate(frame.assets):
        amount, price = float(frame.amounts[k]), float(h.price[k])
        if amount == 0.0:
            continue
        units = float(h.units[0, k])
        rows.append(CollateralHealth(asset, amount, price, units / amount, units * price))
    return tuple(rows)


def _spot_rows(
    account: Account, market: Market, cross_equity: float, cross_status: Status
) -> list[PositionHealth]:
    """Spot holdings: value and PnL for display; they count through the balances."""
    rows = []
    for position in account.positions:
        instrument = market.instrument(position.symbol)
        if instrument.is_derivative:
            continue
        mark = market.mark(position.symbol)
        to_ccy = market.to_currency(instrument.quote)
        units = position.qty * instrument.contract_size
        rows.append(
            PositionHealth(
                symbol=position.symbol,
                kind=str(instrument.kind),
                margin_mode=str(position.margin_mode),
                qty=position.qty,
                entry_price=position.entry_price,
                mark_price=mark,
                settle=instrument.quote,
                notional=abs(units) * mark * to_ccy,
                unrealized_pnl=units * (mark - position.entry_price) * to_ccy,
                initial_margin=0.0,
                maintenance_margin=0.0,
                bracket=0,
                max_leverage=1.0,
                liquidation_price=None,
                bankruptcy_price=None,
                equity=cross_equity,
                status=cross_status,
            )
        )
    return rows
