"""Bankruptcy prices and the fee to close a position at its bankruptcy price.

The bankruptcy price is the mark at which the equity backing a position, less the fee of closing
it there, is zero (everything else held still). With ``buffer`` that equity less this position's
PnL (isolated: its margin; cross: the cross equity without this position's PnL), ``r`` the fee
rate on the closing notional, ``u = q * contract_size`` (signed) and ``e`` the entry price:

    linear:  buffer + u (p - e) - r |u| p = 0          ->  p = (u e - buffer) / (u - r |u|)
    inverse: buffer + u (1/e - 1/p) - r |u| / p = 0    ->  p = (u + r |u|) / (buffer + u / e)

Source: Bybit "Bankruptcy Price" and the legacy inverse cross example (balance 0.5 BTC, long
10,000 USD at 8,000, taker 0.075%: 1.00075 x 10,000 / (10,000 / 8,000 + 0.5) = 5,718.57).

Bybit prices the fee to close at the leverage bankruptcy price, where the initial margin at the
chosen leverage ``L`` is lost (``s`` = +1 long, -1 short):

    linear:  e (1 - s / L)          inverse:  e / (1 + s / L)

Source: Bybit "Bankruptcy Price (USDT Contract)" (long 1 BTC at 10,000, 50x: 9,800) and "Order
Cost": fee to close = quantity x bankruptcy price x taker fee rate (7.35 USDT at 0.075%).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from crossmargin.maths.pnl import notional_of

__all__ = ["bankruptcy_price_of", "close_fee_of", "leverage_bankruptcy_price_of"]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def bankruptcy_price_of(
    qty: float, contract_size: float, entry: float, inverse: bool, buffer: float, fee_rate: float
) -> float:
    """Mark at which ``buffer`` + PnL - closing fee is zero (module docstring); NaN if no
    positive price does it."""
    u = qty * contract_size
    fee = fee_rate * abs(u)
    if inverse:
        top, bottom = u + fee, buffer + u / entry
    else:
        top, bottom = u * entry - buffer, u - fee
    price = top / bottom if bottom != 0 else np.nan
    return price if np.isfinite(price) and price > 0 else np.nan


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def leverage_bankruptcy_price_of(qty: float, entry: float, leverage: float, inverse: bool) -> float:
    """Price at which a position opened at ``entry`` with margin notional / ``leverage`` has
    lost that margin (0 for a 1x linear long, inf for a 1x inverse short)."""
    side = 1.0 if qty > 0 else -1.0
    if inverse:
        return entry / (1.0 + side / leverage) if leverage > 1.0 or side > 0 else np.inf
    return max(entry * (1.0 - side / leverage), 0.0)


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def close_fee_of(
    qty: float, contract_size: float, entry: float, leverage: float, inverse: bool, rate: float
) -> float:
    """Estimated fee to close, settle asset: the notional at the leverage bankruptcy price
    times ``rate`` (Bybit counts it in both initial and maintenance margin)."""
    if rate == 0.0:
        return 0.0
    price = leverage_bankruptcy_price_of(qty, entry, leverage, inverse)
    if inverse and not np.isfinite(price):
        return 0.0
    fee: float = notional_of(qty, contract_size, price, inverse) * rate
    return fee
