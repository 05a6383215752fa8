"""Liquidation engine: the float boundary and one liquidation pass under a venue's rules.

The rules come from a liquidation rulebook (:mod:`crossmargin.rules.venue`). An account is
liquidatable below ``trigger`` x maintenance margin (or with a negative wallet). The ledger's
traders live in a :class:`~crossmargin.book.RiskBook` kept in step with the journal
(:class:`Screen`); a pass screens every account at once through it, then walks each liquidatable
account, reading its figures back from the book after every fill. The ledger sums no risk
itself:

1. cross: while cross equity < ``target`` x cross maintenance margin, close the position with the
   largest maintenance margin (whole, or in chunks of whole lots above a notional, at most
   ``max_liquidation_steps`` of them before the rest closes whole; dust closes whole) at the mark;
   the account pays the liquidation penalty (capped at its remaining equity) to the insurance
   fund. Below
   ``backstop_ratio`` x maintenance everything closes and the remaining equity goes to the fund.
   isolated: a position whose own equity is below ``trigger`` x its maintenance margin closes
   whole.
2. bankruptcy: a negative wallet with nothing left to close is covered by the insurance fund
   (where the venue's fund covers bankruptcies);
3. what the fund cannot cover goes to ADL (:mod:`crossmargin.ledger.adl`), and any rest is bad
   debt.

Every decision is written as journal events, so a replay never recomputes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from crossmargin.book.riskbook import AccountRisk, RiskBook
from crossmargin.ledger.adl import Queue, deleverage
from crossmargin.ledger.context import Context
from crossmargin.ledger.journal import (
    INSURANCE,
    Emitter,
    Event,
    EventKind,
    Posting,
    State,
    isolated,
    trader,
)
from crossmargin.maths.adl import adl_rank
from crossmargin.maths.money import to_money, trade_fee
from crossmargin.model import Account, MarginMode, Market, Position

__all__ = [
    "Screen",
    "liquidation_pass",
    "model_account",
    "model_market",
    "touched",
    "traders",
]


def _num(value: Decimal) -> float:
    return float(value)


def model_account(state: State, account: str, currency: str) -> Account:
    """The float :class:`Account` of ``account``: cross wallet and positions."""
    positions = []
    for symbol, h in sorted(state.positions.get(account, {}).items()):
        iso = h.mode == MarginMode.ISOLATED
        margin = max(_num(state.balance(isolated(account, symbol))), 0.0) if iso else None
        positions.append(
            Position(
                symbol,
                _num(h.qty),
                _num(h.entry),
                MarginMode(h.mode),
                margin,
                None if h.leverage is None else _num(h.leverage),
            )
        )
    return Account(account, {currency: _num(state.balance(trader(account)))}, positions)


def model_market(state: State, ctx: Context, prices: Mapping[str, Decimal] | None = None) -> Market:
    """The float :class:`Market` at the state's marks (``prices`` override some)."""
    merged = {**state.prices, **(prices or {})}
    marks = {s: _num(p) for s, p in merged.items() if s in ctx.instruments}
    return Market(ctx.instruments, marks, ctx.currency)


def traders(state: State) -> set[str]:
    """Every trader account of the ledger: with a wallet or a position."""
    return {k[7:] for k in state.balances if k.startswith("trader:")} | set(state.positions)


_POSITION_EVENTS = frozenset({EventKind.FILL, EventKind.LIQUIDATION_FILL, EventKind.ADL_FILL})


def touched(written: Iterable[tuple[Event, list[Posting]]]) -> tuple[set[str], set[str]]:
    """Traders these events changed: those whose positions or isolated margin moved (to lay out
    again), and those whose cross wallet alone moved (a balance to set)."""
    layouts: set[str] = set()
    wallets: set[str] = set()
    for event, postings in written:
        if event.kind in _POSITION_EVENTS:
            layouts.add(event.body["account"])
        for posting in postings:
            for name in (posting.source, posting.target):
                if name.startswith("isolated:"):
                    layouts.add(name.split(":")[1])
                elif name.startswith("trader:"):
                    wallets.add(name[7:])
    return layouts, wallets - layouts


class Screen:
    """The ledger's traders as a :class:`RiskBook` at the state's marks, kept in step.

    :meth:`sync` applies what changed since the last call: new marks tick the book, traders
    whose money or positions moved are laid out again from the state. A position in an
    instrument that has no mark yet is valued at its entry price until one arrives (as a
    pre-trade check values it), and closed there by a liquidation (:meth:`mark`).
    """

    def __init__(self, state: State, ctx: Context) -> None:
        self.ctx = ctx
        names = sorted(traders(state))
        self._stand_ins = self._unpriced(state, names)
        market = model_market(state, ctx, self._stand_ins)
        accounts = [model_account(state, name, ctx.currency) for name in names]
        self.book = RiskBook.from_accounts(accounts, market)

    def _unpriced(self, state: State, names: Iterable[str]) -> dict[str, Decimal]:
        """Entry prices standing in for the marks of held instruments without one."""
        out: dict[str, Decimal] = {}
        for name in names:
            for symbol, h in state.positions.get(name, {}).items():
                if symbol not in state.prices:
                    out.setdefault(symbol, h.entry)
        return out

    def sync(self, state: State, changed: Iterable[str], wallets: Iterable[str] = ()) -> None:
        """Bring the book to ``state``: new marks, then the ``changed`` traders (laid out
        again), then the cross wallets of ``wallets`` (traders whose positions did not move)."""
        book = self.book
        index = {s: k for k, s in enumerate(book.params.symbols)}
        marks = book.current_params().mark
        stand_ins = self._unpriced(state, changed)
        moved = {
            s: float(p)
            for s, p in {**stand_ins, **state.prices}.items()
            if s in index and marks[index[s]] != float(p)
        }
        self._stand_ins.update(
            (s, p) for s, p in stand_ins.items() if s in moved or s not in self._stand_ins
        )
        if moved:
            book.apply_prices(moved)
        laid_out = set(changed)
        for name in sorted(laid_out):
            if trader(name) in state.balances or name in state.positions:
                book.set_account(model_account(state, name, self.ctx.currency))
        names = sorted(set(wallets) - laid_out)
        if names:
            amounts = [float(state.balance(trader(name))) for name in names]
            book.set_balances(names, self.ctx.currency, amounts)

    def mark(self, state: State, symbol: str) -> Decimal:
        """The price ``symbol`` is valued at: its mark, or while it has none the entry price
        standing in for it."""
        found = state.prices.get(symbol)
        return found if found is not None else self._stand_ins[symbol]

    def liquidatable(self) -> list[str]:
        """Traders under the venue's trigger (cross or any isolated position), by name."""
        ids = self.book.account_ids
        hit = self.book.liquidatable(float(self.ctx.rules.trigger))
        return sorted(ids[i] for i in hit.tolist())

    def account(self, state: State, name: str) -> AccountRisk:
        """``name``'s figures after bringing it to ``state``."""
        self.book.set_account(model_account(state, name, self.ctx.currency))
        return self.book.account_risk(name)

    def queue(self) -> Queue:
        """The ADL queue at the current marks: every profitable position's trader, symbol and
        rank (:func:`crossmargin.maths.adl.adl_rank`)."""
        book = self.book
        risk = book.position_risk()
        size = book.params.contract_size[risk.instrument]
        cross = book.values().cross_equity
        ranks = adl_rank(
            risk.unrealized_pnl, risk.qty * size * risk.entry, risk.notional, cross[risk.account]
        )
        ids, symbols = book.account_ids, book.params.symbols
        return Queue(
            tuple(
                (
                    ids[risk.account[k]],
                    symbols[risk.instrument[k]],
                    int(np.sign(risk.qty[k])),
                    ranks[k],
                )
                for k in np.flatnonzero(risk.unrealized_pnl > 0).tolist()
            )
        )


def _close(em: Emitter, screen: Screen, account: str, symbol: str, qty: Decimal) -> Decimal:
    """Close ``qty`` (signed trade quantity) at the price the screen values it at (the mark, or
    the entry standing in for a missing one); return the penalty on it."""
    state, ctx = em.state, screen.ctx
    h = state.positions[account][symbol]
    mark = screen.mark(state, symbol)
    cs = Decimal(repr(ctx.instruments[symbol].contract_size))
    em.emit(
        EventKind.LIQUIDATION_FILL,
        account=account,
        symbol=symbol,
        qty=str(qty),
        price=str(mark),
        contract_size=str(cs),
        mode=h.mode,
        leverage="",
        margin="0",
    )
    return trade_fee(qty, cs, mark, ctx.rules.penalty_rate)


def _penalty(em: Emitter, account: str, penalty: Decimal, equity: float) -> None:
    """The liquidation penalty to the insurance fund, capped at the equity left."""
    fee = min(penalty, max(to_money(equity), Decimal(0)))
    if fee > 0:
        em.emit(
            EventKind.INSURANCE_TRANSFER,
            account=account,
            wallet=trader(account),
            amount=str(fee),
            reason="penalty",
        )


def _liquidate_isolated(em: Emitter, screen: Screen, account: str) -> list[tuple[str, Decimal]]:
    closed = []
    trigger = float(screen.ctx.rules.trigger)
    risk = screen.account(em.state, account).positions
    symbols = screen.book.params.symbols
    rows = np.flatnonzero(risk.isolated).tolist()
    for k in sorted(rows, key=lambda k: symbols[int(risk.instrument[k])]):
        equity = float(risk.equity[k])
        if equity < trigger * float(risk.maintenance_margin[k]):
            symbol = symbols[int(risk.instrument[k])]
            qty = -em.state.positions[account][symbol].qty
            penalty = _close(em, screen, account, symbol, qty)
            _penalty(em, account, penalty, equity)
            closed.append((symbol, -qty))
    return closed


def chunk_qty(qty: Decimal, fraction: Decimal, lot: Decimal) -> Decimal:
    """The part of a position of ``qty`` contracts (signed) one partial liquidation closes:
    ``fraction`` of it rounded down to whole lots, or all of it where that leaves less than a
    lot on either side (dust closes whole), so every step closes something."""
    part = (abs(qty) * fraction / lot).to_integral_value(rounding=ROUND_FLOOR) * lot
    if part < lot or abs(qty) - part < lot:
        return qty
    return part if qty > 0 else -part


def _liquidate_cross(em: Emitter, screen: Screen, account: str) -> list[tuple[str, Decimal]]:
    rules = screen.ctx.rules
    symbols = screen.book.params.symbols
    closed: list[tuple[str, Decimal]] = []
    steps = 0
    while True:
        h = screen.account(em.state, account)
        rows = np.flatnonzero(~h.positions.isolated).tolist()
        required = float(rules.target) * h.cross_maintenance_margin
        if not rows or h.cross_equity >= required:
            return closed
        held = em.state.positions[account]
        if (
            rules.backstop_ratio is not None
            and h.cross_equity < float(rules.backstop_ratio) * h.cross_maintenance_margin
        ):
            for k in sorted(rows, key=lambda k: symbols[int(h.positions.instrument[k])]):
                symbol = symbols[int(h.positions.instrument[k])]
                qty = held[symbol].qty
                _close(em, screen, account, symbol, -qty)
                closed.append((symbol, qty))
            rest = em.state.balance(trader(account))
            if rest > 0:
                em.emit(
                    EventKind.INSURANCE_TRANSFER,
                    account=account,
                    wallet=trader(account),
                    amount=str(rest),
                    reason="backstop",
                )
            return closed
        worst = max(
            rows,
            key=lambda k: (
                float(h.positions.maintenance_margin[k]),
                symbols[int(h.positions.instrument[k])],
            ),
        )
        symbol = symbols[int(h.positions.instrument[worst])]
        qty = held[symbol].qty
        notional = to_money(float(h.positions.notional[worst]))
        steps += 1
        if (
            rules.chunk_fraction is not None
            and notional > rules.chunk_above
            and steps < rules.max_liquidation_steps
        ):
            qty = chunk_qty(qty, rules.chunk_fraction, rules.lot_size)
        penalty = _close(em, screen, account, symbol, -qty)
        _penalty(em, account, penalty, h.cross_equity)
        closed.append((symbol, qty))


def liquidation_pass(em: Emitter, screen: Screen) -> list[str]:
    """Liquidate every account under the venue's trigger at the current marks; return their
    ids. ``screen`` must be in step with ``em.state``."""
    state = em.state
    hit = screen.liquidatable()
    queue = screen.queue() if hit else Queue(())
    for account in hit:
        shortfalls = [
            (isolated(account, s), [(s, q)]) for s, q in _liquidate_isolated(em, screen, account)
        ]
        cross = _liquidate_cross(em, screen, account)
        if not any(h.mode == MarginMode.CROSS for h in state.positions.get(account, {}).values()):
            shortfalls.append((trader(account), cross))
        for wallet, fills in shortfalls:
            _bankruptcy(em, screen, account, wallet, fills, queue)
    return hit


def _bankruptcy(
    em: Emitter,
    screen: Screen,
    account: str,
    wallet: str,
    fills: list[tuple[str, Decimal]],
    queue: Queue,
) -> None:
    """A negative ``wallet`` with nothing left open: insurance fund, then ADL, then bad debt."""
    state = em.state
    ctx = screen.ctx
    deficit = -state.balance(wallet)
    if deficit <= 0:
        return
    fund = max(state.balance(INSURANCE), Decimal(0)) if ctx.rules.insurance_covers else Decimal(0)
    cover = min(deficit, fund)
    if cover > 0:
        em.emit(
            EventKind.INSURANCE_TRANSFER,
            account=account,
            wallet=wallet,
            amount=str(-cover),
            reason="bankruptcy",
        )
    rest = deficit - cover
    if rest > 0:
        marks = {symbol: screen.mark(state, symbol) for symbol, _ in fills}
        rest = deleverage(em, ctx, account, wallet, rest, fills, queue, marks)
    if rest > 0:
        em.emit(EventKind.BAD_DEBT, account=account, wallet=wallet, amount=str(rest))
