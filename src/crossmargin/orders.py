"""Checks before acting: a hypothetical fill (``what_if``) and the maximum withdrawable amounts."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from crossmargin.health import AccountHealth, evaluate
from crossmargin.maths.collateral import collateral_units, units_for_collateral
from crossmargin.maths.entry import average_entry_of, realized_pnl_of, released_margin_of
from crossmargin.maths.fees import trade_fee_of
from crossmargin.maths.pnl import notional_of
from crossmargin.maths.tiers import MarginArrays, position_margins
from crossmargin.model import Account, CrossMarginError, Instrument, MarginMode, Market, Order
from crossmargin.model.positions import Position

__all__ = ["WhatIf", "apply_fill", "max_withdrawable", "what_if"]


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
    assert instrument.margin is not None
    m = position_margins(
        np.array([qty]),
        instrument.contract_size,
        np.array([price]),
        instrument.inverse,
        np.nan if leverage is None else leverage,
        MarginArrays.from_schedules([instrument.margin]),
    )
    return float(m.initial[0])


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


def _increases_risk(old: Position | None, new: Position | None) -> bool:
    if new is None:
        return False
    if old is None or np.sign(old.qty) != np.sign(new.qty):
        return True
    return abs(new.qty) > abs(old.qty)


def _past_limit(position: Position, market: Market) -> str | None:
    """Why ``position`` is past its venue's position limit (the last bracket's cap), if it is."""
    instrument = market.instrument(position.symbol)
    if instrument.margin is None:
        return None
    cap = instrument.margin.position_limit
    size = notional_of(
        position.qty, instrument.contract_size, market.mark(position.symbol), instrument.inverse
    )
    if size <= cap:
        return None
    unit = instrument.settle
    return (
        f"position limit exceeded: notional {size:,.2f} {unit} is above the {cap:,.0f} {unit} "
        f"cap of the last bracket of {position.symbol}"
    )


def what_if(account: Account, market: Market, order: Order) -> WhatIf:
    """Simulate ``order``: accepted unless it adds risk beyond the initial margin, a leverage cap
    or the venue's position limit (the cap of the last bracket, at the mark).

    Orders that only reduce a position are always accepted. Nothing is changed: the result
    carries the hypothetical account.
    """
    before = evaluate(account, market)
    after_account = apply_fill(account, market, order)
    old = account.position(order.symbol)
    new = after_account.position(order.symbol)
    try:
        after = evaluate(after_account, market)
    except CrossMarginError as error:
        if not error.path.endswith(".leverage"):
            raise
        return WhatIf(False, f"bracket leverage exceeded: {error.reason}", account, before, before)
    reason = None
    if _increases_risk(old, new):
        assert new is not None
        reason = _past_limit(new, market) or _initial_breach(new, after)
    if reason is not None:
        return WhatIf(False, reason, after_account, before, after)
    return WhatIf(True, None, after_account, before, after)


def _initial_breach(new: Position, after: AccountHealth) -> str | None:
    """Why the account after a risk-adding fill is below initial margin, if it is."""
    row = next(p for p in after.positions if p.symbol == new.symbol)
    if after.cross_equity < after.cross_initial_margin:
        return (
            f"initial margin breached: cross equity {after.cross_equity:,.2f} below initial "
            f"margin {after.cross_initial_margin:,.2f} {after.currency}"
        )
    if new.is_isolated and row.equity < row.initial_margin:
        return (
            f"initial margin breached: isolated margin {row.equity:,.2f} below initial "
            f"margin {row.initial_margin:,.2f} {after.currency}"
        )
    return None


def max_withdrawable(
    account: Account, market: Market, health: AccountHealth | None = None
) -> dict[str, float]:
    """Largest amount of each positive balance that can leave without breaching initial margin.

    Withdrawing ``w`` units of an asset lowers collateral value by its haircut value; the cross
    equity must stay at or above the cross initial margin. ``health`` is the account's
    :func:`evaluate` at ``market`` when the caller has it already.
    """
    now = evaluate(account, market) if health is None else health
    free = now.available_balance
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
