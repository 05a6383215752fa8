"""Notional, size and unrealized PnL of linear and inverse contracts.

Linear: PnL = qty * contract_size * (mark - entry), in the quote (settle) currency.
Inverse: PnL = qty * contract_size * (1/entry - 1/mark), in coin; ``contract_size`` is in USD.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["notional", "size", "unrealized_pnl"]

Float = NDArray[np.float64]


def notional(
    qty: ArrayLike, contract_size: ArrayLike, price: ArrayLike, inverse: ArrayLike
) -> Float:
    """Position value in the settle asset, always >= 0."""
    units = np.abs(qty) * np.asarray(contract_size, dtype=np.float64)
    return np.where(inverse, units / price, units * price)


def size(qty: ArrayLike, contract_size: ArrayLike, price: ArrayLike, inverse: ArrayLike) -> Float:
    """Position size in coins of the underlying (the unit of size-scaled margin rates)."""
    units = np.abs(qty) * np.asarray(contract_size, dtype=np.float64)
    return np.where(inverse, units / price, units)


def unrealized_pnl(
    qty: ArrayLike, contract_size: ArrayLike, entry: ArrayLike, price: ArrayLike, inverse: ArrayLike
) -> Float:
    """Mark-to-market profit in the settle asset (> 0 is a gain)."""
    signed = np.asarray(qty, dtype=np.float64) * np.asarray(contract_size, dtype=np.float64)
    entry_f = np.asarray(entry, dtype=np.float64)
    price_f = np.asarray(price, dtype=np.float64)
    return np.where(inverse, signed * (1.0 / entry_f - 1.0 / price_f), signed * (price_f - entry_f))
