"""Auto-deleveraging: the queue rank of profitable positions and the bankruptcy price.

Rank (the industry formula published by Bybit, MEXC and Poloniex; third-party summaries give
Binance's the same): ``PnL% = upnl / |entry value|``, ``EffLev = |notional| / account equity``,
rank = ``PnL% x EffLev`` when ``PnL% >= 0``, else ``PnL% / EffLev``; highest first.

Bankruptcy price: the fill price at which closing ``qty`` contracts (the bankrupt side, signed)
instead of at ``mark`` covers a ``deficit`` (the account's loss below zero at ``mark``, > 0; a
surplus is < 0) exactly, leaving equity 0. Linear: ``Pb = mark + deficit / (qty *
contract_size)``. Inverse (PnL ``qty * contract_size * (1/entry - 1/price)`` in coin):
``1/Pb = 1/mark - deficit / (qty * contract_size)``. A bankrupt long has ``Pb`` above the mark,
a short below. The exact-money form the ledger fills at is
:func:`crossmargin.maths.money.bankruptcy_price`.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = ["adl_rank", "bankruptcy_price_of"]

Float = NDArray[np.float64]


def adl_rank(upnl: Float, entry_value: Float, notional: Float, equity: Float) -> Float:
    """Queue rank: ``PnL% x EffLev`` when profitable, ``PnL% / EffLev`` otherwise.

    Equity <= 0 counts as infinite leverage; an undefined rank (0/0) is 0 and an infinite one
    clamps to the largest finite float.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        pnl_pct = upnl / np.abs(entry_value)
        lev = np.where(equity > 0, np.abs(notional) / equity, np.inf)
        rank = np.where(pnl_pct >= 0, pnl_pct * lev, pnl_pct / lev)
    result: Float = np.nan_to_num(rank, nan=0.0, posinf=np.finfo(np.float64).max)
    return result


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def bankruptcy_price_of(
    mark: float, deficit: float, qty: float, contract_size: float, inverse: bool
) -> float:
    """Price at which closing ``qty`` (signed contracts) leaves the account at exactly zero."""
    per_price = deficit / (qty * contract_size)
    if inverse:
        return 1.0 / (1.0 / mark - per_price)
    return mark + per_price
