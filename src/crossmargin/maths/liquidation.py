"""Liquidation prices in closed form, and the move grids of the crash-distance search.

For one position, with everything else held still, write ``x = mark`` (linear) or
``x = 1 / mark`` (inverse). Within bracket ``k`` the margin surplus backing the position,

    g(x) = buffer + upnl(x) - MM(x),

is a polynomial of degree <= 2 in ``x`` (degree 2 only for size-scaled inverse rates):

    linear:  c0 = buffer - q*c*e + cum_k   c1 = q*c - |q|c*(mmr_k + slope*|q|c)   c2 = 0
    inverse: c0 = buffer + q*c/e + cum_k   c1 = -q*c - |q|c*mmr_k   c2 = -slope*(|q|c)^2

``buffer`` is the equity backing the position less every other requirement, in the settle
asset (for isolated: the isolated margin). A root is kept when its notional lies in bracket
``k`` and the surplus turns negative there as the price moves against the position (down for
a long, up for a short); of the kept roots the one nearest the current mark is the liquidation
price. Since MM is continuous across brackets this reproduces Binance's iterate-the-bracket
method, Bybit's inverse ``LP = size x (1 + side x MMR) / (size / EP + side x margin)`` (without
fees; ``size`` in USD, ``side`` +1 long, -1 short) and Hyperliquid's
``price - side * margin_available / size / (1 - side / maintenance_leverage)``.

A size-scaled inverse short (Deribit) has a second root far below the mark: as the price
falls, the short's size in coins grows and its MM rate with it, until near 100% its MM outruns
its gain. That root is not where the position loses its margin and is not its liquidation
price; a short backed by its whole value in the settle coin (1x or less) then has none.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.tiers import AMOUNT, FLOOR, RATE, MarginArrays, Terms, broadcast_rows

__all__ = [
    "down_grid",
    "liquidation_price",
    "liquidation_price_of",
    "up_grid",
]

Float = NDArray[np.float64]
_EDGE = 1e-12


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _in_bracket(x: float, units: float, floor: float, cap: float) -> bool:
    n = units * x
    return bool(np.isfinite(x) and x > 0 and n >= floor * (1 - _EDGE) and n <= cap * (1 + _EDGE))


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def liquidation_price_of(
    qty: float,
    entry: float,
    mark: float,
    buffer: float,
    brackets: Float,
    terms: Terms,
    constant: bool,
) -> float:
    """One position's liquidation price (see the module docstring); NaN if none.

    With ``constant`` the maintenance margin does not move with the price (it is fixed at
    entry and already taken out of ``buffer``): one bracket with zero rates.
    """
    cs = terms.contract_size
    inverse = terms.inverse
    units = abs(qty) * cs
    signed = qty * cs
    slope = 0.0 if constant else terms.maintenance_rate_per_size
    floors = brackets[FLOOR]
    best, distance = np.nan, np.inf
    for k in range(1 if constant else floors.shape[0]):
        if not np.isfinite(floors[k]):
            break
        cap = floors[k + 1] if k + 1 < floors.shape[0] and not constant else np.inf
        rate = 0.0 if constant else brackets[RATE, k]
        amount = 0.0 if constant else brackets[AMOUNT, k]
        c0 = buffer + amount + (signed / entry if inverse else -signed * entry)
        if inverse:
            c1 = -signed - units * rate
            c2 = -slope * units * units
        else:
            c1 = signed - units * rate - slope * units * units
            c2 = 0.0
        if c2 == 0:
            first, second = -c0 / c1, np.nan
        else:
            disc = np.sqrt(c1 * c1 - 4.0 * c2 * c0)
            half = -0.5 * (c1 + np.copysign(disc, c1))
            first, second = half / c2, c0 / half
        for x in (first, second):
            losing = qty * (c1 + 2.0 * c2 * x) * (-1.0 if inverse else 1.0) > 0
            if losing and _in_bracket(x, units, 0.0 if constant else floors[k], cap):
                price = 1.0 / x if inverse else x
                if abs(price - mark) < distance:
                    best, distance = price, abs(price - mark)
    return best


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def _liquidation_loop(
    columns: tuple[Float, Float, Float, Float, Float, NDArray[np.bool_], NDArray[np.intp]],
    brackets: Float,
    per_size: tuple[Float, Float, Float],
    out: Float,
) -> None:
    """``columns``: qty, contract size, entry, mark, buffer, inverse, schedule row."""
    qty, contract_size, entry, mark, buffer, inverse, row = columns
    initial, initial_per_size, maintenance_per_size = per_size
    for i in range(qty.shape[0]):
        r = row[i]
        terms = Terms(
            contract_size[i],
            inverse[i],
            initial[r],
            initial_per_size[r],
            maintenance_per_size[r],
            False,
            1.0,
            0.0,
        )
        out[i] = liquidation_price_of(
            qty[i], entry[i], mark[i], buffer[i], brackets[r], terms, False
        )


def liquidation_price(
    qty: ArrayLike,
    contract_size: ArrayLike,
    entry: ArrayLike,
    inverse: ArrayLike,
    mark: ArrayLike,
    buffer: ArrayLike,
    schedule: MarginArrays,
) -> Float:
    """Mark price at which the position's backing equity equals its requirement; NaN if none.

    Inputs broadcast against each other and against the schedule's rows.
    """
    shape, flat = broadcast_rows(
        schedule,
        np.asarray(qty, dtype=np.float64),
        np.asarray(contract_size, dtype=np.float64),
        np.asarray(entry, dtype=np.float64),
        np.asarray(mark, dtype=np.float64),
        np.asarray(buffer, dtype=np.float64),
        np.asarray(inverse, dtype=bool),
    )
    brackets, per_size = schedule.flat_rows()
    out = np.empty(flat[0].size)
    _liquidation_loop(tuple(flat), brackets, per_size, out)
    return out.reshape(shape)


def down_grid(points: int) -> Float:
    """Moves 0 .. -99%, evenly spaced in log price: the crash-distance search grid downwards."""
    return np.expm1(-np.linspace(0.0, np.log(100.0), points))


def up_grid(points: int) -> Float:
    """Moves 0 .. +900%, evenly spaced in log price: the crash-distance search grid upwards."""
    return np.expm1(np.linspace(0.0, np.log(10.0), points))
