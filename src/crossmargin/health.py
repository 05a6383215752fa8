"""Account health for one account: equity, margins, ratios, status, liquidation prices.

All amounts are in the market's account ``currency`` unless a name says otherwise. The
arithmetic is the vectorised kernels of :mod:`crossmargin.maths`, called with one account.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossmargin.maths.collateral import collateral_units
from crossmargin.maths.liquidation import crash_distance, liquidation_price
from crossmargin.maths.pnl import unrealized_pnl
from crossmargin.maths.status import Status, margin_ratio, status
from crossmargin.maths.tiers import MarginArrays, position_margins
from crossmargin.model import Account, CrossMarginError, Instrument, Market, Position

__all__ = ["AccountHealth", "PositionHealth", "evaluate"]

Float = NDArray[np.float64]


@dataclass(frozen=True)
class PositionHealth:
    """One position. Amounts in the account currency; prices in the instrument's quote.

    For isolated positions ``equity`` is the isolated margin plus PnL and ``status`` its own; for
    cross positions both describe the cross account. ``liquidation_price`` is ``None`` where no
    positive mark price liquidates the position.
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
    equity: float
    status: Status


@dataclass(frozen=True)
class AccountHealth:
    """Health of a whole account: the cross part plus every isolated position.

    ``equity = collateral_value + cross unrealized PnL + sum of isolated equities``;
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


@dataclass(frozen=True)
class _Frame:
    """One account laid out as arrays: assets (A) and derivative positions (P)."""

    assets: tuple[str, ...]
    amounts: Float
    asset_px: Float
    asset_stable: NDArray[np.bool_]
    up_to: Float
    ratios: Float
    currency_px: float
    currency_stable: bool
    positions: tuple[tuple[Position, Instrument], ...]
    qty: Float
    contract_size: Float
    entry: Float
    inverse: NDArray[np.bool_]
    mark: Float
    leverage: Float
    isolated: NDArray[np.bool_]
    isolated_margin: Float
    settle_index: NDArray[np.intp]
    schedule: MarginArrays


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
    currency_px = market.asset_price(market.currency)
    px = []
    for asset in assets:
        if asset in market.prices or asset == market.currency or asset not in spot_px:
            px.append(market.to_currency(asset))
        else:
            px.append(spot_px[asset])
    rules = [market.collateral_rule(a) for a in assets]
    t = max((len(r.ratios) for r in rules), default=1)
    up_to = np.full((len(assets), t), np.inf)
    ratios = np.zeros((len(assets), t))
    for a, rule in enumerate(rules):
        up_to[a, : len(rule.up_to)] = rule.up_to
        ratios[a, : len(rule.ratios)] = rule.ratios
    index = {a: k for k, a in enumerate(assets)}
    schedules = [ins.margin for _, ins in derivatives if ins.margin is not None]

    return _Frame(
        assets=assets,
        amounts=np.array([amounts[a] for a in assets], dtype=np.float64),
        asset_px=np.array(px, dtype=np.float64),
        asset_stable=np.array([r.stable for r in rules], dtype=bool),
        up_to=up_to,
        ratios=ratios,
        currency_px=currency_px,
        currency_stable=market.collateral_rule(market.currency).stable,
        positions=tuple(derivatives),
        qty=np.array([p.qty for p, _ in derivatives], dtype=np.float64),
        contract_size=np.array([i.contract_size for _, i in derivatives], dtype=np.float64),
        entry=np.array([p.entry_price for p, _ in derivatives], dtype=np.float64),
        inverse=np.array([i.inverse for _, i in derivatives], dtype=bool),
        mark=np.array([market.mark(p.symbol) for p, _ in derivatives], dtype=np.float64),
        leverage=np.array(
            [np.nan if p.leverage is None else p.leverage for p, _ in derivatives], dtype=np.float64
        ),
        isolated=np.array([p.is_isolated for p, _ in derivatives], dtype=bool),
        isolated_margin=np.array(
            [p.isolated_margin or 0.0 for p, _ in derivatives], dtype=np.float64
        ),
        settle_index=np.array([index[i.settle] for _, i in derivatives], dtype=np.intp),
        schedule=MarginArrays.from_schedules(schedules),
    )


@dataclass(frozen=True)
class _Valuation:
    """Arrays of one valuation; leading axes (if any) are scenarios."""

    collateral: Float
    wallet: Float
    factor: Float
    upnl: Float
    initial: Float
    maintenance: Float
    notional: Float
    bracket: NDArray[np.intp]
    max_leverage: Float
    cross_equity: Float
    cross_initial: Float
    cross_maintenance: Float
    isolated_equity: Float


def _value(frame: _Frame, move: Float | float = 0.0) -> _Valuation:
    """Value the account with non-cash prices times ``1 + move`` (``move`` may be an array)."""
    m = np.asarray(move, dtype=np.float64)[..., None]
    asset_px = frame.asset_px * np.where(frame.asset_stable, 1.0, 1.0 + m)
    ccy_scale = 1.0 if frame.currency_stable else 1.0 + m
    asset_px = asset_px / ccy_scale
    marks = frame.mark * (1.0 + m)
    basis = np.where(frame.isolated & frame.schedule.isolated_at_entry, frame.entry, marks)
    units = collateral_units(frame.amounts, frame.up_to, frame.ratios)
    collateral = (units * asset_px).sum(axis=-1)
    wallet = (frame.amounts * asset_px).sum(axis=-1)
    factor = asset_px[..., frame.settle_index]
    margins = position_margins(
        frame.qty, frame.contract_size, basis, frame.inverse, frame.leverage, frame.schedule
    )
    upnl = unrealized_pnl(frame.qty, frame.contract_size, frame.entry, marks, frame.inverse)
    cross = ~frame.isolated
    return _Valuation(
        collateral=collateral,
        wallet=wallet,
        factor=factor,
        upnl=upnl,
        initial=margins.initial,
        maintenance=margins.maintenance,
        notional=margins.notional,
        bracket=margins.bracket,
        max_leverage=margins.bracket_max_leverage,
        cross_equity=collateral + (factor * upnl * cross).sum(axis=-1),
        cross_initial=(factor * margins.initial * cross).sum(axis=-1),
        cross_maintenance=(factor * margins.maintenance * cross).sum(axis=-1),
        isolated_equity=frame.isolated_margin + upnl,
    )


def _surplus(frame: _Frame, moves: Float) -> Float:
    """Smallest margin surplus (equity - MM) over the cross account and isolated positions."""
    v = _value(frame, moves)
    cross = v.cross_equity - v.cross_maintenance
    iso = np.where(frame.isolated, v.isolated_equity - v.maintenance, np.inf)
    worst: Float = np.minimum(cross, iso.min(axis=-1, initial=np.inf))
    return worst


def evaluate(account: Account, market: Market) -> AccountHealth:
    """Health of ``account`` at ``market`` prices. Raises CrossMarginError on bad input."""
    frame = _frame(account, market)
    v = _value(frame)
    _check_leverage(account, frame, v)
    iso = frame.isolated
    fixed = iso & frame.schedule.isolated_at_entry
    buffer = np.where(
        iso,
        frame.isolated_margin - np.where(fixed, v.maintenance, 0.0),
        (v.cross_equity - v.cross_maintenance) / v.factor - v.upnl + v.maintenance,
    )
    liq = liquidation_price(
        frame.qty,
        frame.contract_size,
        frame.entry,
        frame.inverse,
        frame.mark,
        buffer,
        frame.schedule.constant_where(fixed),
    )
    ratio = market.margin_call_ratio
    cross_status = Status(int(status(v.cross_equity, v.cross_maintenance, ratio)))
    iso_status = status(v.isolated_equity, v.maintenance, ratio)
    iso_equity_ccy = v.factor * v.isolated_equity
    positions = []
    for i, (position, instrument) in enumerate(frame.positions):
        positions.append(
            PositionHealth(
                symbol=position.symbol,
                kind=str(instrument.kind),
                margin_mode=str(position.margin_mode),
                qty=position.qty,
                entry_price=position.entry_price,
                mark_price=float(frame.mark[i]),
                settle=instrument.settle,
                notional=float(v.factor[i] * v.notional[i]),
                unrealized_pnl=float(v.factor[i] * v.upnl[i]),
                initial_margin=float(v.factor[i] * v.initial[i]),
                maintenance_margin=float(v.factor[i] * v.maintenance[i]),
                bracket=int(v.bracket[i]),
                max_leverage=float(v.max_leverage[i]),
                liquidation_price=None if np.isnan(liq[i]) else float(liq[i]),
                equity=float(iso_equity_ccy[i] if iso[i] else v.cross_equity),
                status=Status(int(iso_status[i])) if iso[i] else cross_status,
            )
        )
    positions.extend(_spot_rows(account, market, float(v.cross_equity), cross_status))
    equity = float(v.cross_equity + iso_equity_ccy[iso].sum())
    initial = float((v.factor * v.initial).sum())
    maintenance = float((v.factor * v.maintenance).sum())
    gross = float((v.factor * v.notional).sum())
    down, up = crash_distance(lambda moves: _surplus(frame, moves))
    distances = [d for d in (down, up) if d is not None]
    worst = max([cross_status, *(Status(int(s)) for s in iso_status[iso])])
    return AccountHealth(
        id=account.id,
        currency=market.currency,
        wallet_balance=float(v.wallet),
        collateral_value=float(v.collateral),
        unrealized_pnl=float((v.factor * v.upnl)[~iso].sum()),
        equity=equity,
        initial_margin=initial,
        maintenance_margin=maintenance,
        margin_ratio=float(margin_ratio(equity, maintenance)),
        available_balance=max(float(v.cross_equity - v.cross_initial), 0.0),
        effective_leverage=gross / equity if equity > 0 else float("inf") if gross else 0.0,
        cross_equity=float(v.cross_equity),
        cross_initial_margin=float(v.cross_initial),
        cross_maintenance_margin=float(v.cross_maintenance),
        status=worst,
        crash_distance=min(distances) if distances else None,
        crash_move_down=None if down is None else -down if down else 0.0,
        crash_move_up=up,
        positions=tuple(positions),
    )


def _check_leverage(account: Account, frame: _Frame, v: _Valuation) -> None:
    """A chosen leverage above the bracket's cap is bad input (venues refuse it)."""
    over = np.flatnonzero(frame.leverage > v.max_leverage * (1 + 1e-12))
    if over.size:
        i = int(over[0])
        position = frame.positions[i][0]
        index = account.positions.index(position)
        raise CrossMarginError(
            f"positions[{index}].leverage",
            f"{position.leverage:g}x is above the {v.max_leverage[i]:g}x maximum of bracket "
            f"{int(v.bracket[i]) + 1} at notional {v.notional[i]:,.2f}",
        )


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
                equity=cross_equity,
                status=cross_status,
            )
        )
    return rows
