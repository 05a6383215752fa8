"""Auto-deleveraging: profitable opposite positions close at the bankrupt account's price.

When a bankrupt account's loss ``D`` outlives the insurance fund, take one of its liquidation
fills (its position ``qa`` contracts in a symbol, closed at mark ``m``). The bankruptcy price
``Pb = m + D / (qa * contract_size)`` is where that close would have left the account at zero.
Opposite positions close at ``Pb`` instead of ``m``; the difference, ``|Pb - m| * contracts *
contract_size``, flows to the bankrupt account, at most ``|qa|`` contracts in all.

Queue order (venues.md 1.6 and 2.7, the industry formula): ``PnL% = upnl / |entry value|``,
``EffLev = |notional| / account equity``, rank = ``PnL% x EffLev`` (only profitable positions
qualify, so the other branch ``PnL% / EffLev`` never ranks), highest first, ties by account id.
``pro_rata`` instead shares the contracts over every profitable opposite position by size
(dYdX deleverages without ranking), then takes any rounding remainder in queue order.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from crossmargin.ledger.journal import QUANTUM, Emitter, EventKind, money

if TYPE_CHECKING:
    from crossmargin.ledger.liquidation import Book, Context

__all__ = ["adl_rank", "deleverage"]

Float = NDArray[np.float64]


def adl_rank(upnl: Float, entry_value: Float, notional: Float, equity: Float) -> Float:
    """Queue rank: ``PnL% x EffLev`` when profitable, ``PnL% / EffLev`` otherwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pnl_pct = upnl / np.abs(entry_value)
        lev = np.where(equity > 0, np.abs(notional) / equity, np.inf)
        rank = np.where(pnl_pct >= 0, pnl_pct * lev, pnl_pct / lev)
    result: Float = np.nan_to_num(rank, nan=0.0, posinf=np.finfo(np.float64).max)
    return result


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def deleverage(
    em: Emitter,
    ctx: Context,
    account: str,
    wallet: str,
    deficit: Decimal,
    closed: list[tuple[str, Decimal]],
    book: Book,
    upnl: Float,
    notional: Float,
    equity: Float,
) -> Decimal:
    """Cover up to ``deficit`` of ``account``'s ``wallet`` by ADL; return what is left.

    ``closed`` lists (symbol, position contracts closed) of the account's liquidation; ``book``
    and the screening arrays (per position ``upnl``, ``notional``; per trader ``equity``) rank
    the queue.
    """
    state = em.state
    remaining = deficit
    ranks = adl_rank(upnl, book.qty * book.contract_size * book.entry, notional, equity[book.owner])
    for symbol, qa in sorted(closed, key=lambda c: (-abs(c[1]), c[0])):
        if remaining <= 0:
            break
        mark = state.prices[symbol]
        cs = Decimal(repr(ctx.instruments[symbol].contract_size))
        away = ROUND_CEILING if qa > 0 else ROUND_FLOOR
        bankrupt = max((mark + remaining / (qa * cs)).quantize(QUANTUM, rounding=away), QUANTUM)
        unit = abs(bankrupt - mark) * cs
        if unit == 0:
            continue
        rows = [
            i
            for i in np.flatnonzero(
                book.on(symbol) & (np.sign(book.qty) == -_sign(qa)) & (upnl > 0)
            )
            if book.traders[book.owner[i]] != account
        ]
        rows.sort(key=lambda i: (-ranks[i], book.traders[book.owner[i]]))
        queue = [book.traders[book.owner[i]] for i in rows]
        sizes = {o: _size(em, o, symbol, qa) for o in queue}
        total = sum(sizes.values(), start=Decimal(0))
        if total == 0:
            continue
        capacity = min(abs(qa), (remaining / unit).quantize(QUANTUM, rounding=ROUND_CEILING))
        pool = min(capacity, total)
        passes = ("pro_rata", "queue") if ctx.rules.adl == "pro_rata" else ("queue",)
        for how in passes:
            for other in queue:
                size = _size(em, other, symbol, qa)
                need = (remaining / unit).quantize(QUANTUM, rounding=ROUND_CEILING)
                take = min(size, capacity, need)
                if how == "pro_rata":
                    take = min(take, money(sizes[other] * pool / total))
                haircut = min((take * unit).quantize(QUANTUM, rounding=ROUND_CEILING), remaining)
                if take <= 0 or haircut <= 0:
                    continue
                em.emit(
                    EventKind.ADL_FILL,
                    account=other,
                    symbol=symbol,
                    qty=str(take * _sign(qa)),
                    price=str(bankrupt),
                    mark=str(mark),
                    contract_size=str(cs),
                    mode=state.positions[other][symbol].mode,
                    leverage="",
                    margin="0",
                    beneficiary=wallet,
                    haircut=str(haircut),
                )
                remaining -= haircut
                capacity -= take
    return remaining


def _size(em: Emitter, account: str, symbol: str, qa: Decimal) -> Decimal:
    """Contracts ``account`` holds against a bankrupt position of sign ``qa`` (0 if none)."""
    h = em.state.positions.get(account, {}).get(symbol)
    return abs(h.qty) if h is not None and _sign(h.qty) == -_sign(qa) else Decimal(0)
