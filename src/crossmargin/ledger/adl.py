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

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from crossmargin.ledger.context import Context
from crossmargin.ledger.journal import Emitter, EventKind
from crossmargin.maths.money import QUANTUM, bankruptcy_price, money

__all__ = ["Queue", "deleverage"]


@dataclass(frozen=True)
class Queue:
    """Profitable positions that ADL may close: (trader, symbol, sign of the position, rank)
    each, the rank by :func:`crossmargin.maths.adl.adl_rank`."""

    entries: tuple[tuple[str, str, int, float], ...]

    def against(self, symbol: str, sign: int, account: str) -> list[str]:
        """Traders holding ``symbol`` opposite to ``sign`` (not ``account``), best rank first,
        ties by trader."""
        rows = [e for e in self.entries if e[1] == symbol and e[2] == -sign and e[0] != account]
        rows.sort(key=lambda e: (-e[3], e[0]))
        return [e[0] for e in rows]


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def deleverage(
    em: Emitter,
    ctx: Context,
    account: str,
    wallet: str,
    deficit: Decimal,
    closed: list[tuple[str, Decimal]],
    queue: Queue,
    marks: Mapping[str, Decimal],
) -> Decimal:
    """Cover up to ``deficit`` of ``account``'s ``wallet`` by ADL; return what is left.

    ``closed`` lists (symbol, position contracts closed) of the account's liquidation;
    ``queue`` ranks the positions that may take it over; ``marks`` are the prices those
    symbols were closed at (a mark, or the entry standing in for a missing one).
    """
    state = em.state
    remaining = deficit
    for symbol, qa in sorted(closed, key=lambda c: (-abs(c[1]), c[0])):
        if remaining <= 0:
            break
        mark = marks[symbol]
        cs = Decimal(repr(ctx.instruments[symbol].contract_size))
        bankrupt = bankruptcy_price(mark, remaining, qa, cs)
        unit = abs(bankrupt - mark) * cs
        if unit == 0:
            continue
        takers = queue.against(symbol, _sign(qa), account)
        sizes = {o: _size(em, o, symbol, qa) for o in takers}
        total = sum(sizes.values(), start=Decimal(0))
        if total == 0:
            continue
        capacity = min(abs(qa), (remaining / unit).quantize(QUANTUM, rounding=ROUND_CEILING))
        pool = min(capacity, total)
        passes = ("pro_rata", "queue") if ctx.rules.adl == "pro_rata" else ("queue",)
        for how in passes:
            for other in takers:
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
