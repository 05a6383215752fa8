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
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.tiers import MarginArrays

__all__ = ["crash_distance", "down_grid", "liquidation_price", "up_grid"]

Float = NDArray[np.float64]
_EDGE = 1e-12


def liquidation_price(
    qty: ArrayLike,
    contract_size: ArrayLike,
    entry: ArrayLike,
    inverse: ArrayLike,
    mark: ArrayLike,
    buffer: ArrayLike,
    schedule: MarginArrays,
) -> Float:
    """Mark price at which the position's backing equity equals its requirement; NaN if none."""
    q = np.asarray(qty, dtype=np.float64)[..., None]
    units = np.abs(q) * np.asarray(contract_size, dtype=np.float64)[..., None]
    signed = q * np.asarray(contract_size, dtype=np.float64)[..., None]
    e = np.asarray(entry, dtype=np.float64)[..., None]
    inv = np.asarray(inverse, dtype=bool)[..., None]
    slope = np.asarray(schedule.maintenance_rate_per_size, dtype=np.float64)[..., None]
    base = np.asarray(buffer, dtype=np.float64)[..., None] + schedule.amounts

    c0 = base + np.where(inv, signed / e, -signed * e)
    c1 = (
        np.where(inv, -signed, signed)
        - units * schedule.rates
        - np.where(inv, 0.0, slope * units**2)
    )
    c2 = np.where(inv, -slope * units**2, 0.0)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if np.any(c2 != 0):
            disc = np.sqrt(c1 * c1 - 4.0 * c2 * c0)
            half = -0.5 * (c1 + np.copysign(disc, c1))
            roots = np.stack(
                [np.where(c2 == 0, -c0 / c1, half / c2), np.where(c2 == 0, np.nan, c0 / half)],
                axis=-1,
            )
        else:
            roots = (-c0 / c1)[..., None]
        n = units[..., None] * roots
        ok = (
            np.isfinite(roots)
            & (roots > 0)
            & (n >= schedule.floors[..., None] * (1 - _EDGE))
            & (n <= schedule.caps[..., None] * (1 + _EDGE))
        )
        prices = np.where(inv[..., None], 1.0 / roots, roots)
        m = np.asarray(mark, dtype=np.float64)[..., None, None]
        distance = np.where(ok, np.abs(prices - m), np.inf)
    flat = distance.reshape((*distance.shape[:-2], distance.shape[-2] * distance.shape[-1]))
    best = flat.argmin(axis=-1)
    chosen = np.take_along_axis(prices.reshape(flat.shape), best[..., None], axis=-1)[..., 0]
    found = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0] < np.inf
    return np.where(found, chosen, np.nan)


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
