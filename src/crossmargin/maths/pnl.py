"""Notional, size and unrealized PnL of linear and inverse contracts.

Linear: PnL = qty * contract_size * (mark - entry), in the quote (settle) currency.
Inverse: PnL = qty * contract_size * (1/entry - 1/mark), in coin; ``contract_size`` is in USD.

Each formula is written once as a compiled scalar function (``*_of``); the array functions are
numpy ufuncs built from it, and fused kernels elsewhere call the scalar form.
"""

from __future__ import annotations

import numpy as np
from numba import njit, vectorize
from numpy.typing import ArrayLike, NDArray

__all__ = ["notional", "notional_of", "size", "size_of", "unrealized_pnl", "unrealized_pnl_of"]

Float = NDArray[np.float64]

_SIG = ["float64(float64, float64, float64, boolean)"]
_SIG_PNL = ["float64(float64, float64, float64, float64, boolean)"]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def notional_of(qty: float, contract_size: float, price: float, inverse: bool) -> float:
    """Position value in the settle asset, always >= 0."""
    units = abs(qty) * contract_size
    return units / price if inverse else units * price


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def size_of(qty: float, contract_size: float, price: float, inverse: bool) -> float:
    """Position size in coins of the underlying (the unit of size-scaled margin rates)."""
    units = abs(qty) * contract_size
    return units / price if inverse else units


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def unrealized_pnl_of(
    qty: float, contract_size: float, entry: float, price: float, inverse: bool
) -> float:
    """Mark-to-market profit in the settle asset (> 0 is a gain)."""
    signed = qty * contract_size
    if inverse:
        return signed * (1.0 / entry - 1.0 / price)
    return signed * (price - entry)


@vectorize(_SIG, cache=True)  # type: ignore[untyped-decorator]
def _notional(qty: float, contract_size: float, price: float, inverse: bool) -> float:
    return notional_of(qty, contract_size, price, inverse)  # type: ignore[no-any-return]


@vectorize(_SIG, cache=True)  # type: ignore[untyped-decorator]
def _size(qty: float, contract_size: float, price: float, inverse: bool) -> float:
    return size_of(qty, contract_size, price, inverse)  # type: ignore[no-any-return]


@vectorize(_SIG_PNL, cache=True)  # type: ignore[untyped-decorator]
def _pnl(qty: float, contract_size: float, entry: float, price: float, inverse: bool) -> float:
    return unrealized_pnl_of(qty, contract_size, entry, price, inverse)  # type: ignore[no-any-return]


def notional(
    qty: ArrayLike, contract_size: ArrayLike, price: ArrayLike, inverse: ArrayLike
) -> Float:
    """Position value in the settle asset, always >= 0."""
    return np.asarray(_notional(qty, contract_size, price, inverse), dtype=np.float64)


def size(qty: ArrayLike, contract_size: ArrayLike, price: ArrayLike, inverse: ArrayLike) -> Float:
    """Position size in coins of the underlying (the unit of size-scaled margin rates)."""
    return np.asarray(_size(qty, contract_size, price, inverse), dtype=np.float64)


def unrealized_pnl(
    qty: ArrayLike, contract_size: ArrayLike, entry: ArrayLike, price: ArrayLike, inverse: ArrayLike
) -> Float:
    """Mark-to-market profit in the settle asset (> 0 is a gain)."""
    return np.asarray(_pnl(qty, contract_size, entry, price, inverse), dtype=np.float64)
