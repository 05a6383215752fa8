"""Checks before acting: a hypothetical fill (``what_if``) and the maximum withdrawable amounts."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from crossmargin.health import AccountHealth, evaluate
from crossmargin.maths.collateral import collateral_units, units_for_collateral
from crossmargin.maths.entry import average_entry_of, realized_pnl_of, released_margin_of
from crossmargin.maths.fees import trade_fee_of
from crossmargin.maths.pnl import notional_of
from crossmargin.maths.risk import Slot, instrument_terms, position_risk, terms_of
from crossmargin.maths.tiers import MarginArrays
from crossmargin.model import Account, CrossMarginError, Instrument, MarginMode, Market, Order
from crossmargin.model.positions import Position

__all__ = [
    "OrderRisk",
    "WhatIf",
    "apply_fill",
    "increases_risk",
    "max_withdrawable",
    "refusal",
    "what_if",
]


@dataclass(frozen=True)
class WhatIf:
    """Outcome of a hypothetical fill: the account after it, its health, and the verdict."""

    accepted: bool
    reason: str | None
    account: Account
    before: AccountHealth
    after: AccountHealth


def _initial_margin(
    instrument: Instrument, qty: float, price: float, leverage: float | None
) -> float:
    """Isolated margin a fill of ``qty`` at ``price`` posts when none is given (settle asset):
    the position's IM as the risk kernel counts it (:func:`crossmargin.maths.risk.position_risk`),
    with the fee to close where the venue counts it (Bybit)."""
    assert instrument.margin is not None
    schedule = MarginArrays.from_schedules([instrument.margin])
    row = instrument_terms(
        np.array([instrument.contract_size]),
        np.array([instrument.inverse]),
        np.zeros(1, dtype=np.intp),
        schedule,
    )
    slot = Slot(qty, price, np.nan if leverage is None else leverage, 0.0)
    risk = position_risk(
        slot, price, True, schedule.brackets[0], terms_of(row, 0, 1.0), np.uint64(0), 1.0
    )
    return float(risk[1])


def _combine(
    old: Position | None, order: Order, instrument: Instrument, price: float
) -> tuple[Position | None, float, float]:
    """New position, realized PnL and margin released to the wallet (settle asset)."""
    cs, inv = instrument.contract_size, instrument.inverse
    if old is None:
        margin = None
        if order.margin_mode == MarginMode.ISOLATED:
            margin = order.isolated_margin
            if margin is None:
                margin = _initial_margin(instrument, order.qty, price, order.leverage)
        opened = Position(order.symbol, order.qty, price, order.margin_mode, margin, order.leverage)
        return opened, 0.0, -(margin or 0.0)
    total = old.qty + order.qty
    leverage = order.leverage if order.leverage is not None else old.leverage
    if np.sign(order.qty) == np.sign(old.qty):
        entry = average_entry_of(old.qty, old.entry_price, order.qty, price, inv)
        extra = 0.0
        if old.is_isolated:
            given = order.isolated_margin
            extra = (
                given
                if given is not None
                else _initial_margin(instrument, order.qty, price, leverage)
            )
        margin = None if old.isolated_margin is None else old.isolated_margin + extra
        grown = replace(
            old, qty=total, entry_price=entry, leverage=leverage, isolated_margin=margin
        )
        return grown, 0.0, -extra
    realized = realized_pnl_of(old.qty, cs, old.entry_price, order.qty, price, inv)
    released = released_margin_of(old.isolated_margin or 0.0, old.qty, order.qty)
    if abs(order.qty) < abs(old.qty):
        left = (old.isolated_margin or 0.0) - released
        kept = replace(old, qty=total, isolated_margin=left if old.is_isolated else None)
        return kept, realized, released
    if total == 0.0:
        return None, realized, old.isolated_margin or 0.0
    margin = None
    if old.is_isolated:
        margin = order.isolated_margin
        if margin is None:
            margin = _initial_margin(instrument, total, price, leverage)
    flipped = Position(order.symbol, total, price, old.margin_mode, margin, leverage)
    return flipped, realized, (old.isolated_margin or 0.0) - (margin or 0.0)


def apply_fill(account: Account, market: Market, order: Order) -> Account:
    """The account after ``order`` fills at ``order.price`` (default: the mark), fee included."""
    try:
        instrument = market.instrument(order.symbol)
        price = order.price if order.price is not None else market.mark(order.symbol)
    except CrossMarginError as error:
        raise error.at("order") if error.path == "symbol" else error from None
    units = abs(order.qty) * instrument.contract_size
    fee = trade_fee_of(
        order.qty, instrument.contract_size, price, instrument.inverse, order.fee_rate
    )
    balances = dict(account.balances)
    positions = [p for p in account.positions if p.symbol != order.symbol]
    if not instrument.is_derivative:
        base, quote = instrument.underlying, instrument.quote
        balances[base] = balances.get(base, 0.0) + np.sign(order.qty) * units
        balances[quote] = balances.get(quote, 0.0) - np.sign(order.qty) * units * price - fee
        return Account(account.id, balances, account.positions)
    position, realized, wallet_change = _combine(
        account.position(order.symbol), order, instrument, price
    )
    settle = instrument.settle
    balances[settle] = balances.get(settle, 0.0) + realized + wallet_change - fee
    if position is not None:
        positions.append(position)
    return Account(account.id, balances, positions)


@dataclass(frozen=True)
class OrderRisk:
    """What a pre-trade check reads of the account after the fill: the position's bracket cap,
    bracket (0 is the first), notional and the venue's position limit (the last bracket's
    cap; both in the settle asset), and in the account currency the cross equity and IM and
    the position's own equity and IM (used when it is isolated)."""

    max_leverage: float
    bracket: int
    notional: float
    position_limit: float
    settle: str
    cross_equity: float
    cross_initial_margin: float
    equity: float
    initial_margin: float


def refusal(position: Position, risk: OrderRisk, currency: str) -> str | None:
    """Why an order that adds risk and leaves ``position`` must be refused (``None``: it may
    fill): past the venue's position limit, a chosen leverage above the bracket's cap, or
    initial margin not covered."""
    if risk.notional > risk.position_limit:
        return (
            f"position limit exceeded: notional {risk.notional:,.2f} {risk.settle} is above the "
            f"{risk.position_limit:,.0f} {risk.settle} cap of the last bracket of {position.symbol}"
        )
    if position.leverage is not None and position.leverage > risk.max_leverage * (1 + 1e-12):
        return (
            f"bracket leverage exceeded: {position.leverage:g}x is above the "
            f"{risk.max_leverage:g}x maximum of bracket {risk.bracket + 1} at notional "
            f"{risk.notional:,.2f}"
        )
    if risk.cross_equity < risk.cross_initial_margin:
        return (
            f"initial margin breached: cross equity {risk.cross_equity:,.2f} below initial "
            f"margin {risk.cross_initial_margin:,.2f} {currency}"
        )
    if position.is_isolated and risk.equity < risk.initial_margin:
        return (
            f"initial margin breached: isolated margin {risk.equity:,.2f} below initial "
            f"margin {risk.initial_margin:,.2f} {currency}"
        )
    return None


def increases_risk(old: Position | None, new: Position | None) -> bool:
    """Whether ``new`` (the position after a fill) holds more than ``old``: opened, flipped or
    grown."""
    if new is None:
        return False
    if old is None or np.sign(old.qty) != np.sign(new.qty):
        return True
    return abs(new.qty) > abs(old.qty)


def what_if(account: Account, market: Market, order: Order) -> WhatIf:
    """Simulate ``order``: accepted unless it adds risk beyond the initial margin, a leverage cap
    or the venue's position limit (the cap of the last bracket, at the mark).

    Leverage caps are pre-trade rules: a position already above its bracket's cap is margined
    at the cap, and an order that only reduces a position is always accepted. Nothing is
    changed: the result carries the hypothetical account.
    """
    before = evaluate(account, market)
    after_account = apply_fill(account, market, order)
    old = account.position(order.symbol)
    new = after_account.position(order.symbol)
    after = evaluate(after_account, market)
    reason = None
    if increases_risk(old, new):
        assert new is not None
        row = next(p for p in after.positions if p.symbol == new.symbol)
        instrument = market.instrument(new.symbol)
        reason = refusal(
            new,
            OrderRisk(
                row.max_leverage,
                row.bracket,
                notional_of(new.qty, instrument.contract_size, row.mark_price, instrument.inverse),
                math.inf if instrument.margin is None else instrument.margin.position_limit,
                instrument.settle,
                after.cross_equity,
                after.cross_initial_margin,
                row.equity,
                row.initial_margin,
            ),
            after.currency,
        )
    if reason is not None:
        return WhatIf(False, reason, after_account, before, after)
    return WhatIf(True, None, after_account, before, after)


def max_withdrawable(
    account: Account,
    market: Market,
    health: AccountHealth | None = None,
    *,
    available: float | None = None,
) -> dict[str, float]:
    """Largest amount of each positive balance that can leave without breaching initial margin.

    Withdrawing ``w`` units of an asset lowers collateral value by its haircut value; the cross
    equity must stay at or above the cross initial margin. ``health`` is the account's
    :func:`evaluate` at ``market`` when the caller has it already, ``available`` its available
    balance (account currency) when only that is known.
    """
    if available is None:
        available = (evaluate(account, market) if health is None else health).available_balance
    free = available
    result: dict[str, float] = {}
    for asset, amount in account.balances.items():
        if amount <= 0 or free <= 0:
            result[asset] = 0.0
            continue
        rule = market.collateral_rule(asset)
        counted = float(collateral_units(amount, rule.up_to, rule.ratios))
        target = counted - free / market.to_currency(asset)
        keep = units_for_collateral(target, rule.up_to, rule.ratios)
        result[asset] = max(amount - keep, 0.0)
    return result
