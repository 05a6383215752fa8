"""Liquidation engine: venue rules as data, the float boundary, and one liquidation pass.

A pass screens every account at once with the margin kernels of :mod:`crossmargin.maths`, then
walks each liquidatable account with :func:`crossmargin.health.evaluate`:

1. cross: while cross equity < ``target`` x cross maintenance margin, close the position with the
   largest maintenance margin (whole, or in chunks above a notional) at the mark; the account
   pays the liquidation penalty (capped at its remaining equity) to the insurance fund. Below
   ``backstop_ratio`` x maintenance everything closes and the remaining equity goes to the fund.
   isolated: a position whose own equity is below its maintenance margin closes whole.
2. bankruptcy: a negative wallet with nothing left to close is covered by the insurance fund;
3. what the fund cannot cover goes to ADL (:mod:`crossmargin.ledger.adl`), and any rest is bad
   debt.

Every decision is written as journal events, so a replay never recomputes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from crossmargin.health import AccountHealth, evaluate
from crossmargin.ledger.adl import deleverage
from crossmargin.ledger.journal import INSURANCE, Emitter, EventKind, State, isolated, money, trader
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

__all__ = [
    "VENUES",
    "Book",
    "Context",
    "VenueRules",
    "liquidation_pass",
    "model_account",
    "model_market",
]

Float = NDArray[np.float64]


@dataclass(frozen=True)
class VenueRules:
    """How a venue liquidates. Rates are fractions of notional.

    ``chunk_fraction``/``chunk_above``: close positions above that notional in chunks of that
    fraction. ``backstop_ratio``: below this multiple of maintenance, close everything and hand
    the remaining equity to the fund. ``target``: stop once equity >= target x maintenance.
    ``adl``: ``"ranked"`` (greedy queue by PnL% and leverage) or ``"pro_rata"``.
    """

    name: str
    source: str
    as_of: str
    penalty_rate: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    chunk_fraction: Decimal | None = None
    chunk_above: Decimal = Decimal(0)
    backstop_ratio: Decimal | None = None
    target: Decimal = Decimal(1)
    adl: str = "ranked"


VENUES: Mapping[str, VenueRules] = {
    "binance": VenueRules(
        name="binance",
        source="binance.com/en/support/faq/360033525271 (IOC close-out, fund, ADL); "
        "liquidation fee 1.25% (current per-symbol range 1.25-1.5%); fees 0.02%/0.05% VIP 0",
        as_of="2025-10",
        penalty_rate=Decimal("0.0125"),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
    ),
    "hyperliquid": VenueRules(
        name="hyperliquid",
        source="hyperliquid.gitbook.io liquidations: 20% chunks above 100k USDC, backstop "
        "below 2/3 of maintenance, no liquidation fee; fees 0.015%/0.045% base tier",
        as_of="2025-10",
        penalty_rate=Decimal(0),
        maker_fee=Decimal("0.00015"),
        taker_fee=Decimal("0.00045"),
        chunk_fraction=Decimal("0.2"),
        chunk_above=Decimal(100_000),
        backstop_ratio=Decimal(2) / Decimal(3),
    ),
    "dydx": VenueRules(
        name="dydx",
        source="dydxprotocol/v4-chain x/clob liquidations.go, deleveraging.go: fee up to "
        "MaxLiquidationFeePpm 15,000 to the fund, ADL without ranking; fees 0.01%/0.05%",
        as_of="2026-03",
        penalty_rate=Decimal("0.015"),
        maker_fee=Decimal("0.0001"),
        taker_fee=Decimal("0.0005"),
        adl="pro_rata",
    ),
}


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
class Book:
    """Every open position as arrays, for screening the whole book at once.

    ``owner[i]`` indexes ``traders``; amounts in the settle currency.
    """

    traders: tuple[str, ...]
    symbols: tuple[str, ...]
    owner: NDArray[np.intp]
    qty: Float
    entry: Float
    contract_size: Float
    leverage: Float
    isolated: NDArray[np.bool_]
    isolated_margin: Float
    wallet: Float
    schedule: MarginArrays

    @classmethod
    def build(cls, state: State, ctx: Context) -> Book:
        """Lay out ``state``'s positions (traders with a wallet or positions)."""
        traders = tuple(
            sorted(
                {k[7:] for k in state.balances if k.startswith("trader:")} | set(state.positions)
            )
        )
        index = {t: i for i, t in enumerate(traders)}
        rows = [
            (t, s, h)
            for t in sorted(state.positions)
            for s, h in sorted(state.positions[t].items())
        ]
        used = sorted({s for _, s, _ in rows})
        where = {s: i for i, s in enumerate(used)}
        table = MarginArrays.from_schedules([_schedule(ctx.instruments[s]) for s in used])
        return cls(
            traders=traders,
            symbols=tuple(s for _, s, _ in rows),
            owner=np.array([index[t] for t, _, _ in rows], dtype=np.intp),
            qty=np.array([float(h.qty) for _, _, h in rows], dtype=np.float64),
            entry=np.array([float(h.entry) for _, _, h in rows], dtype=np.float64),
            contract_size=np.array(
                [ctx.instruments[s].contract_size for _, s, _ in rows], dtype=np.float64
            ),
            leverage=np.array(
                [np.nan if h.leverage is None else float(h.leverage) for _, _, h in rows],
                dtype=np.float64,
            ),
            isolated=np.array([h.mode == MarginMode.ISOLATED for _, _, h in rows], dtype=bool),
            isolated_margin=np.array(
                [float(state.balance(isolated(t, s))) for t, s, _ in rows], dtype=np.float64
            ),
            wallet=np.array([float(state.balance(trader(t))) for t in traders], dtype=np.float64),
            schedule=table.take([where[s] for _, s, _ in rows]),
        )

    def marks(self, state: State) -> Float:
        """Mark price of each position's instrument."""
        px = {s: float(p) for s, p in state.prices.items()}
        return np.array([px[s] for s in self.symbols], dtype=np.float64)

    def screen(self, marks: Float) -> tuple[Float, Float, Float, Float]:
        """Per position: unrealised PnL and notional; per trader: cross equity and cross MM.

        The MM is ``inf`` for a trader with an isolated position under its own maintenance
        margin, so one comparison flags both cases.
        """
        m = position_margins(
            self.qty, self.contract_size, marks, False, self.leverage, self.schedule
        )
        upnl = unrealized_pnl(self.qty, self.contract_size, self.entry, marks, False)
        cross = ~self.isolated
        n = len(self.traders)
        equity = self.wallet + np.bincount(self.owner, weights=upnl * cross, minlength=n)
        mm = np.bincount(self.owner, weights=m.maintenance * cross, minlength=n)
        iso_short = self.isolated & (self.isolated_margin + upnl < m.maintenance)
        flagged = np.bincount(self.owner, weights=iso_short.astype(np.float64), minlength=n)
        mm_flag = np.where(flagged > 0, np.inf, mm)
        return upnl, m.notional, equity, mm_flag


def liquidatable(book: Book, equity: Float, mm: Float) -> list[str]:
    """Traders below maintenance (cross or any isolated position) or with a negative wallet."""
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
    for row in _health(em.state, ctx, account).positions:
        if row.margin_mode == MarginMode.ISOLATED and row.equity < row.maintenance_margin:
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
    upnl, notional, equity, mm = layout.screen(layout.marks(state))
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
    cover = min(deficit, max(state.balance(INSURANCE), Decimal(0)))
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
