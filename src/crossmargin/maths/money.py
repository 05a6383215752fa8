"""Exact money: the ledger's fills, fees, funding and bankruptcy prices in ``Decimal``.

The ledger keeps every amount as a ``Decimal`` with 8 decimal places (:data:`QUANTUM`, rounded
half-even by :func:`money`) so its journal replays to the same text on any machine; risk is
float64 (:mod:`crossmargin.maths`). They meet at one boundary: a float risk figure enters the
ledger as :func:`to_money` (its shortest repr, then rounded), and ledger amounts leave
for risk as ``float(amount)``.

Each function here is the exact twin of a float formula beside it, for linear contracts (the
ledger's instruments), with the same signs and units; quantities and prices are exact decimals as
given, results are rounded to the quantum:

- :func:`trade_fee`: :func:`crossmargin.maths.fees.trade_fee_of`;
- :func:`funding_payment`: :func:`crossmargin.maths.funding.funding_payment_of`;
- :func:`average_entry`, :func:`closed_qty`, :func:`realized_pnl`, :func:`released_margin`: the
  fill split of :mod:`crossmargin.maths.entry`;
- :func:`bankruptcy_price`: :func:`crossmargin.maths.adl.bankruptcy_price_of`.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

__all__ = [
    "QUANTUM",
    "average_entry",
    "bankruptcy_price",
    "closed_qty",
    "funding_payment",
    "money",
    "realized_pnl",
    "released_margin",
    "to_money",
    "trade_fee",
]

QUANTUM = Decimal("0.00000001")


def money(value: Decimal) -> Decimal:
    """``value`` rounded half-even to the ledger's 8 decimal places."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def to_money(value: float) -> Decimal:
    """A float risk figure into the ledger: its shortest repr, rounded to the quantum."""
    return money(Decimal(repr(float(value))))


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def trade_fee(qty: Decimal, contract_size: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """Fee of filling ``qty`` contracts at ``price``: ``|qty| * contract_size * price * rate``."""
    return money(abs(qty) * contract_size * price * rate)


def funding_payment(qty: Decimal, contract_size: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """Amount a position pays at one funding time: ``qty * contract_size * mark * rate``.

    Signed: > 0 is paid by the position (longs at a positive rate), < 0 is received.
    """
    return money(qty * contract_size * mark * rate)


def average_entry(qty: Decimal, entry: Decimal, add: Decimal, price: Decimal) -> Decimal:
    """Entry of ``qty`` at ``entry`` grown by ``add`` (same sign) at ``price``: weighted mean."""
    return money((qty * entry + add * price) / (qty + add))


def closed_qty(qty: Decimal, fill: Decimal) -> Decimal:
    """Contracts of ``qty`` that a ``fill`` closes, in the position's sign (0 if it adds)."""
    if _sign(qty) == _sign(fill):
        return Decimal(0)
    return _sign(qty) * min(abs(qty), abs(fill))


def realized_pnl(
    qty: Decimal, contract_size: Decimal, entry: Decimal, fill: Decimal, price: Decimal
) -> Decimal:
    """PnL realized by a ``fill`` at ``price`` on ``qty`` at ``entry`` (> 0 is a gain)."""
    return money(closed_qty(qty, fill) * contract_size * (price - entry))


def released_margin(margin: Decimal, qty: Decimal, fill: Decimal) -> Decimal:
    """Share ``|closed| / |qty|`` of an isolated ``margin`` freed when a ``fill`` closes part."""
    return money(margin * abs(closed_qty(qty, fill)) / abs(qty))


def bankruptcy_price(
    mark: Decimal, deficit: Decimal, qty: Decimal, contract_size: Decimal
) -> Decimal:
    """Price at which closing ``qty`` (signed) instead of at ``mark`` covers ``deficit``.

    ``mark + deficit / (qty * contract_size)``, rounded to the quantum up for a long and down for
    a short (away from the mark for a deficit) so a fill there covers all of it, and at least
    one quantum (a price is positive).
    """
    away = ROUND_CEILING if qty > 0 else ROUND_FLOOR
    price = (mark + deficit / (qty * contract_size)).quantize(QUANTUM, rounding=away)
    return max(price, QUANTUM)
