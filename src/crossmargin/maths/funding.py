"""Perpetual funding payment: ``position value x funding rate`` per funding interval.

Signed: ``payment = qty * contract_size * mark * rate`` (linear, quote currency) or
``qty * contract_size / mark * rate`` (inverse, coin). ``payment > 0`` is paid by the position
(longs pay when the rate is positive), ``< 0`` is received. The exact-money form the ledger
settles is :func:`crossmargin.maths.money.funding_payment`.
"""

from __future__ import annotations

from numba import njit

__all__ = ["funding_payment_of"]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def funding_payment_of(
    qty: float, contract_size: float, mark: float, inverse: bool, rate: float
) -> float:
    """Amount the position pays at one funding time (settle asset; < 0 means it receives)."""
    signed = qty * contract_size
    value = signed / mark if inverse else signed * mark
    return value * rate
