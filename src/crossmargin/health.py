"""Account health for one account: equity, margins, ratios, status, liquidation prices.

All amounts are in the market's account ``currency`` unless a name says otherwise.
:func:`evaluate` is the one-account call of the account-risk kernel
(:mod:`crossmargin.maths.risk`), the same compiled code ``RiskBook`` runs for many accounts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

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
    IM,
    MM,
    NOTIONAL,
    PNL,
    POSITION,
    Holdings,
    holdings_analysis,
    instrument_terms,
)
from crossmargin.maths.status import Status, status_of
from crossmargin.maths.tiers import MarginArrays
from crossmargin.model import Account, CrossMarginError, Instrument, Market, Position

__all__ = ["AccountHealth", "CollateralHealth", "PositionHealth", "evaluate", "evaluate_many"]

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
class _Compiled:
    """A market's derivative instruments with a margin schedule, compiled once per market
    (kept in ``Market.memo``): row per symbol, :data:`INSTRUMENT` terms (``settle`` left to
    each caller's asset columns), brackets, marks (NaN where unpriced), kinds and limits; and
    per tuple of assets seen (accounts without spot holdings), their asset columns."""

    instruments: tuple[Instrument, ...]
    row_of: dict[str, int]
    terms: NDArray[np.void]
    brackets: Float
    marks: Float
    kinds: tuple[str, ...]
    limits: tuple[float, ...]
    columns: dict[tuple[str, ...], tuple[Float, Float, Float, NDArray[np.bool_]]]


def _compiled(market: Market) -> _Compiled:
    """The market's :class:`_Compiled` instruments, built on first use."""
    found = market.memo.get("health")
    if isinstance(found, _Compiled):
        return found
    derivs = tuple(
        i for i in market.instruments.values() if i.is_derivative and i.margin is not None
    )
    schedule = MarginArrays.from_schedules([ins.margin for ins in derivs if ins.margin])
    terms = instrument_terms(
        np.array([ins.contract_size for ins in derivs], dtype=np.float64),
        np.array([ins.inverse for ins in derivs], dtype=bool),
        np.zeros(len(derivs), dtype=np.intp),
        schedule,
    )
    compiled = _Compiled(
        derivs,
        {ins.symbol: k for k, ins in enumerate(derivs)},
        terms,
        np.ascontiguousarray(schedule.brackets),
        np.array([market.prices.get(ins.symbol, math.nan) for ins in derivs], dtype=np.float64),
        tuple(str(ins.kind) for ins in derivs),
        tuple(_limit(ins) for ins in derivs),
        {},
    )
    market.memo["health"] = compiled
    return compiled


@dataclass(frozen=True)
class _Frame:
    """One account laid out for the kernel: its derivative positions as :class:`Holdings`
    (one instrument row per position) and their rows in the market's :class:`_Compiled`, its
    balances' amounts and prices."""

    positions: tuple[tuple[Position, Instrument], ...]
    rows: list[int]
    holdings: Holdings
    assets: tuple[str, ...]
    amounts: Float
    factor: Float


def _columns(
    market: Market, assets: tuple[str, ...], spot_px: dict[str, float]
) -> tuple[Float, Float, Float, NDArray[np.bool_]]:
    """Per asset column: price in the account currency (a spot holding's own mark where the
    market has no price for it), collateral tiers (``up_to``, ``ratios``) and stability."""
    px = []
    for asset in assets:
        if asset in market.prices or asset == market.currency or asset not in spot_px:
            px.append(market.to_currency(asset))
        else:
            px.append(spot_px[asset])
    rules = [market.collateral_rule(a) for a in assets]
    up_to, ratios = collateral_table(rules)
    stable = np.array([r.stable for r in rules], dtype=bool)
    return np.array(px, dtype=np.float64), up_to, ratios, stable


def _frame(account: Account, market: Market) -> _Frame:
    compiled = _compiled(market)
    amounts: dict[str, float] = dict(account.balances)
    derivatives: list[tuple[Position, Instrument]] = []
    rows: list[int] = []
    spot_px: dict[str, float] = {}
    for i, position in enumerate(account.positions):
        row = compiled.row_of.get(position.symbol, -1)
        if row >= 0 and position.symbol in market.prices:
            instrument = compiled.instruments[row]
            derivatives.append((position, instrument))
            rows.append(row)
            amounts.setdefault(instrument.settle, 0.0)
            continue
        try:
            instrument = market.instrument(position.symbol)
            mark = market.mark(position.symbol)
        except CrossMarginError as error:
            path = f"positions[{i}].symbol" if error.path == "symbol" else error.path
            raise CrossMarginError(path, error.reason) from None
        if instrument.is_derivative:
            raise CrossMarginError(
                f"positions[{i}].symbol",
                f"{instrument.kind} {position.symbol} has no margin schedule",
            )
        if position.is_isolated:
            raise CrossMarginError(f"positions[{i}].margin_mode", "spot cannot be isolated")
        held = position.qty * instrument.contract_size
        amounts[instrument.underlying] = amounts.get(instrument.underlying, 0.0) + held
        spot_px[instrument.underlying] = mark * market.to_currency(instrument.quote)
    assets = tuple(amounts)
    columns = compiled.columns.get(assets) if not spot_px else None
    if columns is None:
        columns = _columns(market, assets, spot_px)
        if not spot_px:
            compiled.columns[assets] = columns
    price, up_to, ratios, stable = columns
    index = {a: k for k, a in enumerate(assets)}
    settle = np.array([index[i.settle] for _, i in derivatives], dtype=np.intp)
    terms = compiled.terms[rows]
    terms["settle"] = settle
    positions = np.array(
        [
            (
                p.qty,
                p.entry_price,
                math.nan if p.leverage is None else p.leverage,
                p.isolated_margin or 0.0,
                k,
                p.is_isolated,
            )
            for k, (p, _) in enumerate(derivatives)
        ],
        dtype=POSITION,
    )
    amount = np.array([amounts[a] for a in assets], dtype=np.float64)
    holdings = Holdings(
        np.array([0, len(derivatives)], dtype=np.intp),
        positions,
        terms,
        compiled.brackets[rows],
        compiled.marks[rows],
        collateral_units(amount, up_to, ratios)[None, :],
        price,
        stable,
        market.collateral_rule(market.currency).stable,
        market.margin_call_ratio,
    )
    return _Frame(tuple(derivatives), rows, holdings, assets, amount, price[settle])


class _Figures(NamedTuple):
    """What the kernels computed for a run of accounts: per account its record, figures
    (:func:`record_figures` rows), worst status and crash moves; per position its
    :data:`ROW_FIELDS` row, liquidation and bankruptcy prices; per account its effective
    leverage (all as Python lists)."""

    records: list[list[float]]
    figures: list[list[float]]
    worst: list[int]
    crash: list[list[float]]
    rows: list[list[float]]
    liquidation: list[float]
    bankruptcy: list[float]
    leverage: list[float]


def _kernels(h: Holdings) -> _Figures:
    """Every account of ``h`` through the account-risk kernel, in one compiled call."""
    records, rows, liquidation, bankruptcy, crash, figures, worst, leverage = holdings_analysis(
        h, *_GRIDS, CRASH_STEP
    )
    return _Figures(
        records.tolist(),
        figures.tolist(),
        worst.tolist(),
        crash.tolist(),
        rows.tolist(),
        liquidation.tolist(),
        bankruptcy.tolist(),
        leverage.tolist(),
    )


def evaluate(account: Account, market: Market) -> AccountHealth:
    """Health of ``account`` at ``market`` prices. Raises CrossMarginError on bad input."""
    frame = _frame(account, market)
    h = frame.holdings
    computed = _kernels(h)
    wallet = float(frame.amounts @ h.price)
    return _assemble(
        account,
        market,
        frame.positions,
        frame.rows,
        h.marks.tolist(),
        frame.factor.tolist(),
        computed,
        0,
        0,
        _collateral_rows(frame),
        wallet,
    )


_POSITION_FIELDS = tuple(f.name for f in fields(PositionHealth))
_STATUSES = tuple(Status)


def _position_health(*values: object) -> PositionHealth:
    """A PositionHealth of ``values`` in field order, already checked (the loops build one
    per position, and the frozen dataclass's ``__init__`` is the slow part)."""
    health: PositionHealth = object.__new__(PositionHealth)
    object.__setattr__(health, "__dict__", dict(zip(_POSITION_FIELDS, values, strict=True)))
    return health


def _assemble(
    account: Account,
    market: Market,
    derivatives: Sequence[tuple[Position, Instrument]],
    rows: Sequence[int],
    marks: Sequence[float],
    factors: Sequence[float],
    computed: _Figures,
    a: int,
    first: int,
    collateral: tuple[CollateralHealth, ...],
    wallet_balance: float,
) -> AccountHealth:
    """Account ``a`` of ``computed`` (its positions from row ``first``) as an AccountHealth;
    ``rows`` (in the market's :class:`_Compiled`), ``marks`` and ``factors`` (settle asset ->
    account currency) per derivative position."""
    compiled = _compiled(market)
    r = computed.records[a]
    equity, initial, maintenance, ratio, available, cross_equity = computed.figures[a]
    cross_status = _STATUSES[status_of(cross_equity, r[CROSS_MM], market.margin_call_ratio)]
    positions = []
    stop = first + len(derivatives)
    pnl = 0.0
    for row, liq, bust, mark, factor, k, (position, instrument) in zip(
        computed.rows[first:stop],
        computed.liquidation[first:stop],
        computed.bankruptcy[first:stop],
        marks,
        factors,
        rows,
        derivatives,
        strict=True,
    ):
        iso = position.is_isolated
        pnl += row[PNL]
        positions.append(
            _position_health(
                position.symbol,
                compiled.kinds[k],
                str(position.margin_mode),
                position.qty,
                position.entry_price,
                mark,
                instrument.settle,
                row[NOTIONAL],
                row[PNL],
                row[IM],
                row[MM],
                int(row[BRACKET]),
                row[CAP],
                None if math.isnan(liq) else liq,
                None if math.isnan(bust) else bust,
                row[EQUITY] if iso else cross_equity,
                _STATUSES[int(row[CODE])] if iso else cross_status,
                row[NOTIONAL] > factor * compiled.limits[k],
            )
        )
    if len(derivatives) < len(account.positions):
        positions.extend(_spot_rows(account, market, cross_equity, cross_status))
    down, up = (None if math.isnan(x) else x for x in computed.crash[a])
    distances = [d for d in (down, up) if d is not None]
    return AccountHealth(
        id=account.id,
        currency=market.currency,
        wallet_balance=wallet_balance,
        collateral_value=r[COLLATERAL],
        collateral=collateral,
        unrealized_pnl=pnl,
        equity=equity,
        initial_margin=initial,
        maintenance_margin=maintenance,
        margin_ratio=ratio,
        available_balance=available,
        effective_leverage=computed.leverage[a],
        cross_equity=cross_equity,
        cross_initial_margin=r[CROSS_IM],
        cross_maintenance_margin=r[CROSS_MM],
        status=_STATUSES[computed.worst[a]],
        crash_distance=min(distances) if distances else None,
        crash_move_down=None if down is None else -down if down else 0.0,
        crash_move_up=up,
        positions=tuple(positions),
    )


def evaluate_many(accounts: Sequence[Account], market: Market) -> list[AccountHealth]:
    """Health of every account of ``accounts`` at ``market`` prices, as :func:`evaluate` gives
    it account by account (summation order aside), with each kernel called once for all.

    The market's instrument terms and brackets are compiled once; accounts holding spot
    positions, options or anything the batch cannot price go through :func:`evaluate` (which
    raises the error that account deserves).
    """
    compiled = _compiled(market)
    derivs = compiled.instruments
    row_of = compiled.row_of
    marks = compiled.marks.tolist()
    names = dict.fromkeys([market.currency, *(ins.settle for ins in derivs)])
    for account in accounts:
        names.update(dict.fromkeys(account.balances))
    assets = tuple(names)
    price = [_price_or_nan(market, a) for a in assets]
    asset_index = {a: k for k, a in enumerate(assets)}
    settle = [asset_index[ins.settle] for ins in derivs]
    batched: list[int] = []
    rows: list[tuple[float, float, float, float, int, bool]] = []
    starts = [0]
    for k, account in enumerate(accounts):
        picked = []
        for position in account.positions:
            r = row_of.get(position.symbol, -1)
            if r < 0 or not math.isfinite(marks[r]) or not math.isfinite(price[settle[r]]):
                break
            leverage = math.nan if position.leverage is None else position.leverage
            margin = position.isolated_margin or 0.0
            iso = position.is_isolated
            picked.append((position.qty, position.entry_price, leverage, margin, r, iso))
        else:
            if all(math.isfinite(price[asset_index[a]]) for a in account.balances):
                batched.append(k)
                rows += picked
                starts.append(len(rows))
    computed = None
    if batched:
        positions = np.array(rows, dtype=POSITION)
        amounts = np.zeros((len(batched), len(assets)))
        for b, k in enumerate(batched):
            for asset, amount in accounts[k].balances.items():
                amounts[b, asset_index[asset]] = amount
        rules = [market.collateral_rule(a) for a in assets]
        up_to, ratios = collateral_table(rules)
        terms = compiled.terms.copy()
        terms["settle"] = settle
        units = collateral_units(amounts, up_to, ratios)
        h = Holdings(
            np.array(starts, dtype=np.intp),
            positions,
            terms,
            compiled.brackets,
            compiled.marks,
            units,
            np.array(price, dtype=np.float64),
            np.array([rule.stable for rule in rules], dtype=bool),
            market.collateral_rule(market.currency).stable,
            market.margin_call_ratio,
        )
        computed = _kernels(h)
        units_rows = units.tolist()
    slot = dict(zip(batched, range(len(batched)), strict=True))
    out = []
    for k, account in enumerate(accounts):
        if k not in slot or computed is None:
            out.append(evaluate(account, market))
            continue
        b = slot[k]
        held = [
            (asset, amount, price[asset_index[asset]], units_rows[b][asset_index[asset]])
            for asset, amount in account.balances.items()
        ]
        collateral = tuple(
            CollateralHealth(asset, amount, px, units / amount, units * px)
            for asset, amount, px, units in held
            if amount != 0.0
        )
        picked_rows = [row_of[p.symbol] for p in account.positions]
        out.append(
            _assemble(
                account,
                market,
                [(p, derivs[r]) for p, r in zip(account.positions, picked_rows, strict=True)],
                picked_rows,
                [marks[r] for r in picked_rows],
                [price[settle[r]] for r in picked_rows],
                computed,
                b,
                starts[b],
                collateral,
                sum(amount * px for _, amount, px, _ in held),
            )
        )
    return out


def _price_or_nan(market: Market, asset: str) -> float:
    """``market.to_currency(asset)``, NaN where it has no price."""
    try:
        return market.to_currency(asset)
    except CrossMarginError:
        return math.nan


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
