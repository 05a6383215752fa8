"""A fill on a position: the averaged entry price, the part it closes and the PnL it realizes.

A fill of ``f`` contracts at ``price`` on a position of ``q`` contracts at ``entry`` (signed,
> 0 long):

- same sign (or no position): the position grows to ``q + f`` at the average entry that keeps
  its PnL unchanged. Linear: the weighted mean ``(q*entry + f*price) / (q + f)``. Inverse (PnL is
  ``q * contract_size * (1/entry - 1/mark)``): the harmonic mean ``(q + f) / (q/entry + f/price)``.
- opposite signs: it closes ``closed = sign(q) * min(|q|, |f|)`` (in the position's sign) and
  realizes that part's PnL at ``price``; the rest of the fill, ``f + closed``, opens a position
  of the other sign at ``price`` (a flip). A partial close keeps ``entry`` and releases the
  closed share ``|closed / q|`` of an isolated margin.

Realized PnL is in the settle asset (> 0 is a gain). The exact-money forms the ledger posts are
in :mod:`crossmargin.maths.money`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from crossmargin.maths.pnl import unrealized_pnl_of

__all__ = ["average_entry_of", "closed_qty_of", "realized_pnl_of", "released_margin_of"]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def average_entry_of(qty: float, entry: float, add: float, price: float, inverse: bool) -> float:
    """Entry price of ``qty`` at ``entry`` grown by ``add`` (same sign) at ``price``."""
    total = qty + add
    if inverse:
        return total / (qty / entry + add / price)
    return (qty * entry + add * price) / total


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def closed_qty_of(qty: float, fill: float) -> float:
    """Contracts of ``qty`` that a ``fill`` closes, in the position's sign (0 if it adds)."""
    if np.sign(qty) == np.sign(fill):
        return 0.0
    return np.sign(qty) * min(abs(qty), abs(fill))  # type: ignore[no-any-return]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def realized_pnl_of(
    qty: float, contract_size: float, entry: float, fill: float, price: float, inverse: bool
) -> float:
    """PnL realized by a ``fill`` at ``price`` on ``qty`` at ``entry`` (the closed part's PnL)."""
    closed = closed_qty_of(qty, fill)
    return unrealized_pnl_of(closed, contract_size, entry, price, inverse)  # type: ignore[no-any-return]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def released_margin_of(margin: float, qty: float, fill: float) -> float:
    """Share of an isolated ``margin`` freed when a ``fill`` closes part of ``qty``."""
    return margin * abs(closed_qty_of(qty, fill) / qty)  # type: ignore[no-any-return]
