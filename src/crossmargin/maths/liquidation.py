"""Liquidation prices in closed form, and the crash distance of an account.

For one position, with everything else held still, write ``x = mark`` (linear) or
``x = 1 / mark`` (inverse). Within bracket ``k`` the margin surplus backing the position,

    g(x) = buffer + upnl(x) - MM(x),

is a polynomial of degree <= 2 in ``x`` (degree 2 only for size-scaled inverse rates):

    linear:  c0 = buffer - q*c*e + cum_k   c1 = q*c - |q|c*(mmr_k + slope*|q|c)   c2 = 0
    inverse: c0 = buffer + q*c/e + cum_k   c1 = -q*c - |q|c*mmr_k   c2 = -slope*(|q|c)^2

``buffer`` is the equity backing the position less every other requirement, in the settle
asset (for isolated: the isolated margin). Each root is kept when its notional lies in bracket
``k``; of the kept roots the one nearest the current mark is the liquidation price. Since MM is
continuous across brackets this reproduces Binance's iterate-the-bracket method and
Hyperliquid's ``price - side * margin_available / size / (1 - side / maintenance_leverage)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.tiers import MarginArrays, broadcast_rows

__all__ = [
    "crash_distance",
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
    contract_size: float,
    entry: float,
    inverse: bool,
    mark: float,
    buffer: float,
    floors: Float,
    rates: Float,
    amounts: Float,
    maintenance_rate_per_size: float,
) -> float:
    """One position's liquidation price (see the module docstring); NaN if none."""
    units = abs(qty) * contract_size
    signed = qty * contract_size
    slope = maintenance_rate_per_size
    best, distance = np.nan, np.inf
    for k in range(floors.shape[0]):
        if not np.isfinite(floors[k]):
            break
        cap = floors[k + 1] if k + 1 < floors.shape[0] else np.inf
        c0 = buffer + amounts[k] + (signed / entry if inverse else -signed * entry)
        if inverse:
            c1 = -signed - units * rates[k]
            c2 = -slope * units * units
        else:
            c1 = signed - units * rates[k] - slope * units * units
            c2 = 0.0
        if c2 == 0:
            first, second = -c0 / c1, np.nan
        else:
            disc = np.sqrt(c1 * c1 - 4.0 * c2 * c0)
            half = -0.5 * (c1 + np.copysign(disc, c1))
            first, second = half / c2, c0 / half
        for x in (first, second):
            if _in_bracket(x, units, floors[k], cap):
                price = 1.0 / x if inverse else x
                if abs(price - mark) < distance:
                    best, distance = price, abs(price - mark)
    return best


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def _liquidation_loop(
    qty: Float,
    contract_size: Float,
    entry: Float,
    inverse: NDArray[np.bool_],
    mark: Float,
    buffer: Float,
    row: NDArray[np.intp],
    floors: Float,
    rates: Float,
    amounts: Float,
    maintenance_rate_per_size: Float,
    out: Float,
) -> None:
    for i in range(qty.shape[0]):
        r = row[i]
        out[i] = liquidation_price_of(
            qty[i],
            contract_size[i],
            entry[i],
            inverse[i],
            mark[i],
            buffer[i],
            floors[r],
            rates[r],
            amounts[r],
            maintenance_rate_per_size[r],
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
        np.asarray(inverse, dtype=bool),
        np.asarray(mark, dtype=np.float64),
        np.asarray(buffer, dtype=np.float64),
    )
    floors, rates, amounts, _, _, _, per_size = schedule.flat_rows()
    out = np.empty(flat[0].size)
    _liquidation_loop(*flat, floors, rates, amounts, per_size, out)
    return out.reshape(shape)


def down_grid(points: int) -> Float:
    """Moves 0 .. -99%, evenly spaced in log price: the crash-distance search grid downwards."""
    return np.expm1(-np.linspace(0.0, np.log(100.0), points))


def up_grid(points: int) -> Float:
    """Moves 0 .. +900%, evenly spaced in log price: the crash-distance search grid upwards."""
    return np.expm1(np.linspace(0.0, np.log(10.0), points))


def crash_distance(
    surplus: Callable[[Float], Float], points: int = 512, refine: int = 128, rounds: int = 6
) -> tuple[float | None, float | None]:
    """Smallest uniform moves down and up (fractions, -0.99..+9) that leave the surplus < 0.

    ``surplus(moves)`` returns, for each move ``s`` (all non-cash prices times ``1 + s``), the
    smallest of the account's margin surpluses (equity minus maintenance). A grid finds the first
    move that liquidates on each side; each round then re-grids the bracketing step with
    ``refine`` points, so the result is exact to ``step / (refine - 1) ** rounds`` and a surplus
    that touches 0 without going below is not taken for a liquidation. Both sides share every
    call. ``None`` where no move in range liquidates; 0 if the account already is liquidatable.
    """
    grids = (down_grid(points), up_grid(points))
    values = surplus(np.concatenate(grids))
    brackets: list[tuple[float, float] | None] = []
    results: list[float | None] = [None, None]
    for side, grid in enumerate(grids):
        below = np.flatnonzero(values[side * points : (side + 1) * points] < 0)
        if below.size == 0:
            brackets.append(None)
        elif below[0] == 0:
            brackets.append(None)
            results[side] = 0.0
        else:
            i = int(below[0])
            brackets.append((float(grid[i - 1]), float(grid[i])))
    live = [b for b in brackets if b is not None]
    for _ in range(rounds if live else 0):
        subs = [np.linspace(lo, hi, refine) for lo, hi in live]
        found = surplus(np.concatenate(subs)).reshape(len(live), refine) < 0
        live = [
            (float(sub[j - 1]), float(sub[j]))
            for sub, j in zip(subs, np.argmax(found, axis=1), strict=True)
        ]
    refined = iter(live)
    for side, bracket in enumerate(brackets):
        if bracket is not None:
            results[side] = abs(next(refined)[1])
    return results[0], results[1]
