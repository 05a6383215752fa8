"""Liquidation engine: the float boundary and one liquidation pass under a venue's rules.

The rules come from a liquidation rulebook (:mod:`crossmargin.rules.venue`). An account is
liquidatable below ``trigger`` x maintenance margin (or with a negative wallet). A pass screens
every account at once with the margin kernels of :mod:`crossmargin.maths` over a
:class:`Book` of arrays, then walks each liquidatable account with
:func:`crossmargin.health.evaluate`:

1. cross: while cross equity < ``target`` x cross maintenance margin, close the position with the
   largest maintenance margin (whole, or in chunks above a notional) at the mark; the account
   pays the liquidation penalty (capped at its remaining equity) to the insurance fund. Below
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

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from crossmargin.health import AccountHealth, evaluate
from crossmargin.ledger.adl import deleverage
from crossmargin.ledger.journal import (
    INSURANCE,
    Emitter,
    Event,
    EventKind,
    Posting,
    State,
    isolated,
    money,
    trader,
)
from crossmargin.maths.pnl import unrealized_pnl
from crossmargin.maths.tiers import MarginArrays, position_margins
from crossmargin.model import (
    Account,
    CrossMarginError,
    Instrument,
    MarginMode,
    MarginSchedule,
    Market,
    Position,
)
from crossmargin.rules.venue import VenueRules

__all__ = [
    "Book",
    "Context",
    "Rows",
    "liquidation_pass",
    "model_account",
    "model_market",
    "touched",
]

Float = NDArray[np.float64]


@dataclass(frozen=True)
class Context:
    """What a pass needs besides the state: instruments, account currency, venue rules."""

    instruments: Mapping[str, Instrument]
    currency: str
    rules: VenueRules


def _num(value: Decimal) -> float:
    return float(value)


def _dec(value: float) -> Decimal:
    """A float risk figure back into the exact world (shortest repr, then 8 decimals)."""
    return money(Decimal(repr(float(value))))


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


def _schedule(instrument: Instrument) -> MarginSchedule:
    if instrument.margin is None:
        raise CrossMarginError("symbol", f"{instrument.symbol} carries no margin schedule")
    return instrument.margin


@dataclass(frozen=True)
class Rows:
    """Per-position columns of some traders' rows (see :class:`Book`); floats in the settle
    currency, ``qty`` signed contracts, ``leverage`` NaN where none was chosen."""

    owner: NDArray[np.intp]
    market: NDArray[np.intp]
    qty: Float
    entry: Float
    contract_size: Float
    leverage: Float
    isolated: NDArray[np.bool_]
    isolated_margin: Float

    @classmethod
    def of(
        cls,
        state: State,
        ctx: Context,
        owners: Iterable[tuple[str, int]],
        where: Mapping[str, int],
    ) -> Rows:
        """Rows of each ``(trader, index in traders)``, by symbol."""
        rows = [
            (t, i, s, h) for t, i in owners for s, h in sorted(state.positions.get(t, {}).items())
        ]
        return cls(
            owner=np.array([i for _, i, _, _ in rows], dtype=np.intp),
            market=np.array([where[s] for _, _, s, _ in rows], dtype=np.intp),
            qty=np.array([float(h.qty) for *_, h in rows], dtype=np.float64),
            entry=np.array([float(h.entry) for *_, h in rows], dtype=np.float64),
            contract_size=np.array(
                [ctx.instruments[s].contract_size for _, _, s, _ in rows], dtype=np.float64
            ),
            leverage=np.array(
                [np.nan if h.leverage is None else float(h.leverage) for *_, h in rows],
                dtype=np.float64,
            ),
            isolated=np.array([h.mode == MarginMode.ISOLATED for *_, h in rows], dtype=bool),
            isolated_margin=np.array(
                [float(state.balance(isolated(t, s))) for t, _, s, _ in rows], dtype=np.float64
            ),
        )


def _has(names: tuple[str, ...], name: str) -> bool:
    """Whether sorted ``names`` holds ``name``."""
    i = bisect_left(names, name)
    return i < len(names) and names[i] == name


def traders(state: State) -> set[str]:
    """Every trader account of the ledger: with a wallet or a position."""
    return {k[7:] for k in state.balances if k.startswith("trader:")} | set(state.positions)


_POSITION_EVENTS = frozenset({EventKind.FILL, EventKind.LIQUIDATION_FILL, EventKind.ADL_FILL})


def touched(written: Iterable[tuple[Event, list[Posting]]]) -> set[str]:
    """Traders whose wallet, isolated margin or positions these events changed."""
    out = set()
    for event, postings in written:
        if event.kind in _POSITION_EVENTS:
            out.add(event.body["account"])
        for posting in postings:
            for name in (posting.source, posting.target):
                if name.startswith(("trader:", "isolated:")):
                    out.add(name.split(":")[1])
    return out


@dataclass(frozen=True)
class Book:
    """Every open position as arrays, for screening the whole book at once.

    ``traders`` is sorted (the order a pass visits them); ``owner[i]`` indexes it and
    ``market[i]`` indexes ``markets``, whose schedules are ``table``. Rows are grouped by trader
    and sorted by symbol within a trader; the groups are in no particular order (an update
    appends the changed traders' rows). Amounts in the settle currency.
    """

    traders: tuple[str, ...]
    markets: tuple[str, ...]
    table: MarginArrays
    rows: Rows
    wallet: Float
    schedule: MarginArrays

    @property
    def owner(self) -> NDArray[np.intp]:
        """Index in ``traders`` of each row's trader."""
        return self.rows.owner

    @property
    def qty(self) -> Float:
        """Signed contracts per row."""
        return self.rows.qty

    @property
    def entry(self) -> Float:
        """Entry price per row."""
        return self.rows.entry

    @property
    def contract_size(self) -> Float:
        """Contract size per row."""
        return self.rows.contract_size

    @classmethod
    def build(cls, state: State, ctx: Context) -> Book:
        """Lay out ``state``'s positions (traders with a wallet or positions)."""
        names = tuple(sorted(traders(state)))
        markets = tuple(sorted({s for book in state.positions.values() for s in book}))
        table = MarginArrays.from_schedules([_schedule(ctx.instruments[s]) for s in markets])
        where = {s: i for i, s in enumerate(markets)}
        rows = Rows.of(state, ctx, ((t, i) for i, t in enumerate(names)), where)
        wallet = np.array([float(state.balance(trader(t))) for t in names], dtype=np.float64)
        return cls(names, markets, table, rows, wallet, table.take(rows.market))

    def update(self, state: State, ctx: Context, changed: set[str]) -> Book:
        """The layout of ``state`` when only ``changed`` traders moved since this one's state.

        Their rows and wallets are laid out again; every other row is kept. Where their rows
        hold the same symbols as before (a fill on an open position, a deposit) the rows are
        overwritten in place of a copy and the schedules are shared; otherwise they move to the
        end. The result screens exactly as :meth:`build` would (a trader's rows stay together
        and in symbol order).
        """
        changed = {t for t in changed if trader(t) in state.balances or t in state.positions}
        symbols = {s for t in changed for s in state.positions.get(t, {})}
        if len(changed) > len(self.traders) // 4 + 16 or not symbols <= set(self.markets):
            return Book.build(state, ctx)
        old = self.traders
        new = sorted(t for t in changed if not _has(old, t))
        gaps = np.array([bisect_left(old, t) for t in new], dtype=np.intp)
        traders = old
        if new:
            grown = list(old)
            for t in reversed(new):
                grown.insert(bisect_left(old, t), t)
            traders = tuple(grown)
        shift = np.arange(len(old)) + np.searchsorted(gaps, np.arange(len(old)), side="right")
        wallet = np.empty(len(traders), dtype=np.float64)
        wallet[shift] = self.wallet
        moved = sorted(changed)
        at = [bisect_left(traders, t) for t in moved]
        wallet[at] = [float(state.balance(trader(t))) for t in moved]
        owner = shift[self.rows.owner] if new else self.rows.owner
        hit = np.isin(owner, at)
        where = {s: i for i, s in enumerate(self.markets)}
        fresh = Rows.of(state, ctx, zip(moved, at, strict=True), where)
        kept = self.rows
        slots = np.flatnonzero(hit)
        slots = slots[np.argsort(owner[slots], kind="stable")]
        if np.array_equal(owner[slots], fresh.owner) and np.array_equal(
            kept.market[slots], fresh.market
        ):
            columns = {f.name: np.array(getattr(kept, f.name)) for f in fields(Rows)}
            columns["owner"] = np.array(owner)
            for name, column in columns.items():
                column[slots] = getattr(fresh, name)
            return Book(traders, self.markets, self.table, Rows(**columns), wallet, self.schedule)
        keep = ~hit
        rows = Rows(
            *(
                np.concatenate((part[keep], extra))
                for part, extra in (
                    (owner, fresh.owner),
                    (kept.market, fresh.market),
                    (kept.qty, fresh.qty),
                    (kept.entry, fresh.entry),
                    (kept.contract_size, fresh.contract_size),
                    (kept.leverage, fresh.leverage),
                    (kept.isolated, fresh.isolated),
                    (kept.isolated_margin, fresh.isolated_margin),
                )
            )
        )
        return Book(traders, self.markets, self.table, rows, wallet, self.table.take(rows.market))

    def marks(self, state: State) -> Float:
        """Mark price of each position's instrument."""
        px = np.array([float(state.prices[s]) for s in self.markets], dtype=np.float64)
        out: Float = px[self.rows.market]
        return out

    def on(self, symbol: str) -> NDArray[np.bool_]:
        """Rows holding ``symbol``."""
        if symbol not in self.markets:
            return np.zeros(len(self.rows.qty), dtype=bool)
        out: NDArray[np.bool_] = self.rows.market == self.markets.index(symbol)
        return out

    def screen(self, marks: Float, trigger: float = 1.0) -> tuple[Float, Float, Float, Float]:
        """Per position: unrealised PnL and notional; per trader: cross equity and cross MM
        times ``trigger`` (the multiple of maintenance below which a venue liquidates).

        The MM is ``inf`` for a trader with an isolated position under ``trigger`` x its own
        maintenance margin, so one comparison flags both cases.
        """
        r = self.rows
        m = position_margins(r.qty, r.contract_size, marks, False, r.leverage, self.schedule)
        upnl = unrealized_pnl(r.qty, r.contract_size, r.entry, marks, False)
        cross = ~r.isolated
        n = len(self.traders)
        equity = self.wallet + np.bincount(self.owner, weights=upnl * cross, minlength=n)
        mm = trigger * np.bincount(self.owner, weights=m.maintenance * cross, minlength=n)
        iso_short = r.isolated & (r.isolated_margin + upnl < trigger * m.maintenance)
        flagged = np.bincount(self.owner, weights=iso_short.astype(np.float64), minlength=n)
        mm_flag = np.where(flagged > 0, np.inf, mm)
        return upnl, m.notional, equity, mm_flag


def liquidatable(book: Book, equity: Float, mm: Float) -> list[str]:
    """Traders below the trigger (cross or any isolated position) or with a negative wallet."""
    hit = (equity < mm) | (book.wallet < 0)
    return [book.traders[i] for i in np.flatnonzero(hit)]


def _close(em: Emitter, ctx: Context, account: str, symbol: str, qty: Decimal) -> Decimal:
    """Close ``qty`` (signed trade quantity) at the mark; return the notional closed."""
    state = em.state
    h = state.positions[account][symbol]
    mark = state.prices[symbol]
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
    return abs(qty) * cs * mark


def _penalty(em: Emitter, ctx: Context, account: str, notional: Decimal, equity: float) -> None:
    fee = min(money(notional * ctx.rules.penalty_rate), max(_dec(equity), Decimal(0)))
    if fee > 0:
        em.emit(
            EventKind.INSURANCE_TRANSFER,
            account=account,
            wallet=trader(account),
            amount=str(fee),
            reason="penalty",
        )


def _health(state: State, ctx: Context, account: str) -> AccountHealth:
    return evaluate(model_account(state, account, ctx.currency), model_market(state, ctx))


def _liquidate_isolated(em: Emitter, ctx: Context, account: str) -> list[tuple[str, Decimal]]:
    closed = []
    trigger = float(ctx.rules.trigger)
    for row in _health(em.state, ctx, account).positions:
        if row.margin_mode == MarginMode.ISOLATED and row.equity < trigger * row.maintenance_margin:
            qty = -em.state.positions[account][row.symbol].qty
            notional = _close(em, ctx, account, row.symbol, qty)
            _penalty(em, ctx, account, notional, row.equity)
            closed.append((row.symbol, -qty))
    return closed


def _liquidate_cross(em: Emitter, ctx: Context, account: str) -> list[tuple[str, Decimal]]:
    rules = ctx.rules
    closed: list[tuple[str, Decimal]] = []
    while True:
        h = _health(em.state, ctx, account)
        rows = [p for p in h.positions if p.margin_mode == MarginMode.CROSS]
        required = float(rules.target) * h.cross_maintenance_margin
        if not rows or h.cross_equity >= required:
            return closed
        book = em.state.positions[account]
        if (
            rules.backstop_ratio is not None
            and h.cross_equity < float(rules.backstop_ratio) * h.cross_maintenance_margin
        ):
            for row in rows:
                qty = book[row.symbol].qty
                _close(em, ctx, account, row.symbol, -qty)
                closed.append((row.symbol, qty))
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
        worst = max(rows, key=lambda p: (p.maintenance_margin, p.symbol))
        qty = book[worst.symbol].qty
        if rules.chunk_fraction is not None and _dec(worst.notional) > rules.chunk_above:
            qty = money(qty * rules.chunk_fraction)
        notional = _close(em, ctx, account, worst.symbol, -qty)
        _penalty(em, ctx, account, notional, h.cross_equity)
        closed.append((worst.symbol, qty))


def liquidation_pass(em: Emitter, ctx: Context, book: Book | None = None) -> list[str]:
    """Liquidate every account below maintenance at the current marks; return their ids.

    ``book`` is the screening layout of ``em.state`` (built here if not given).
    """
    state = em.state
    layout = book if book is not None else Book.build(state, ctx)
    if not layout.traders:
        return []
    upnl, notional, equity, mm = layout.screen(layout.marks(state), float(ctx.rules.trigger))
    hit = liquidatable(layout, equity, mm)
    for account in hit:
        shortfalls = [
            (isolated(account, s), [(s, q)]) for s, q in _liquidate_isolated(em, ctx, account)
        ]
        cross = _liquidate_cross(em, ctx, account)
        if not any(h.mode == MarginMode.CROSS for h in state.positions.get(account, {}).values()):
            shortfalls.append((trader(account), cross))
        for wallet, fills in shortfalls:
            _bankruptcy(em, ctx, account, wallet, fills, layout, upnl, notional, equity)
    return hit


def _bankruptcy(
    em: Emitter,
    ctx: Context,
    account: str,
    wallet: str,
    fills: list[tuple[str, Decimal]],
    book: Book,
    upnl: Float,
    notional: Float,
    equity: Float,
) -> None:
    """A negative ``wallet`` with nothing left open: insurance fund, then ADL, then bad debt."""
    state = em.state
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
        rest = deleverage(em, ctx, account, wallet, rest, fills, book, upnl, notional, equity)
    if rest > 0:
        em.emit(EventKind.BAD_DEBT, account=account, wallet=wallet, amount=str(rest))
