"""Tiered margin: bracket lookup, maintenance and initial margin.

The schedule of every venue model is held as padded arrays with a trailing bracket axis ``K``:

    MM = n * (mmr_k + maintenance_rate_per_size * s) - maintenance_amount_k
    IM = n * max(1 / leverage, initial_rate + initial_rate_per_size * s)

with ``n`` the notional (settle asset), ``s`` the size in coins and ``k`` the bracket with
``floor_k <= n < floor_(k+1)``. Unused bracket slots have floor ``+inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.pnl import notional_of, size_of
from crossmargin.model.instruments import MarginSchedule

__all__ = [
    "MarginArrays",
    "Margins",
    "bracket_from",
    "bracket_margins",
    "broadcast_rows",
    "margins_of",
    "position_margins",
]

Float = NDArray[np.float64]
Int = NDArray[np.intp]


@dataclass(frozen=True)
class MarginArrays:
    """Margin schedules as arrays: shape (..., K) for brackets, (...) for the per-size terms."""

    floors: Float
    rates: Float
    amounts: Float
    max_leverage: Float
    initial_rate: Float
    initial_rate_per_size: Float
    maintenance_rate_per_size: Float
    isolated_at_entry: NDArray[np.bool_]

    @classmethod
    def from_schedules(cls, schedules: Sequence[MarginSchedule]) -> MarginArrays:
        """Stack schedules into rows, padding brackets to the longest schedule."""
        k = max((len(s.tiers) for s in schedules), default=1)
        n = len(schedules)
        floors = np.full((n, k), np.inf)
        rates = np.zeros((n, k))
        amounts = np.zeros((n, k))
        lev = np.ones((n, k))
        for i, schedule in enumerate(schedules):
            m = len(schedule.tiers)
            floors[i, :m] = [t.min_notional for t in schedule.tiers]
            rates[i, :m] = [t.maintenance_margin_rate for t in schedule.tiers]
            amounts[i, :m] = [t.maintenance_amount for t in schedule.tiers]
            lev[i, :m] = [t.max_leverage for t in schedule.tiers]
            rates[i, m:], amounts[i, m:], lev[i, m:] = (
                rates[i, m - 1],
                amounts[i, m - 1],
                lev[i, m - 1],
            )
        return cls(
            floors,
            rates,
            amounts,
            lev,
            np.array([s.initial_rate for s in schedules], dtype=np.float64),
            np.array([s.initial_rate_per_size for s in schedules], dtype=np.float64),
            np.array([s.maintenance_rate_per_size for s in schedules], dtype=np.float64),
            np.array([s.isolated_at_entry for s in schedules], dtype=bool),
        )

    def take(self, rows: ArrayLike) -> MarginArrays:
        """The schedules of ``rows`` (e.g. instrument index per position)."""
        idx = np.asarray(rows, dtype=np.intp)
        return MarginArrays(
            self.floors[idx],
            self.rates[idx],
            self.amounts[idx],
            self.max_leverage[idx],
            self.initial_rate[idx],
            self.initial_rate_per_size[idx],
            self.maintenance_rate_per_size[idx],
            self.isolated_at_entry[idx],
        )

    def constant_where(self, mask: ArrayLike) -> MarginArrays:
        """Rows under ``mask`` with a zero maintenance schedule (their MM is a fixed amount)."""
        m = np.asarray(mask, dtype=bool)
        first = np.arange(self.floors.shape[-1]) == 0
        return MarginArrays(
            np.where(m[..., None], np.where(first, 0.0, np.inf), self.floors),
            np.where(m[..., None], 0.0, self.rates),
            np.where(m[..., None], 0.0, self.amounts),
            self.max_leverage,
            self.initial_rate,
            self.initial_rate_per_size,
            np.where(m, 0.0, self.maintenance_rate_per_size),
            self.isolated_at_entry,
        )

    def flat_rows(self) -> tuple[Float, Float, Float, Float, Float, Float, Float]:
        """The schedule with its leading axes flattened into rows, for the compiled loops:
        floors, rates, amounts, max leverage (rows, K) and the three per-size terms (rows,)."""
        k = self.floors.shape[-1]
        rows = self.floors.shape[:-1]
        return (
            self.floors.reshape(-1, k),
            self.rates.reshape(-1, k),
            self.amounts.reshape(-1, k),
            self.max_leverage.reshape(-1, k),
            np.broadcast_to(self.initial_rate, rows).reshape(-1),
            np.broadcast_to(self.initial_rate_per_size, rows).reshape(-1),
            np.broadcast_to(self.maintenance_rate_per_size, rows).reshape(-1),
        )


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def bracket_from(notional: float, floors: Float, guess: np.uint64) -> np.uint64:
    """The bracket of ``notional``: the last one whose floor is <= it (unused slots have floor
    inf). The walk starts at ``guess`` (a position's previous bracket, or 0), so a position
    that stays in its bracket costs one comparison each way. Unsigned indices keep the
    compiled loop free of negative-index checks."""
    one = np.uint64(1)
    k = guess
    last = np.uint64(floors.shape[0]) - one
    while k < last and notional >= floors[k + one]:
        k += one
    while k > np.uint64(0) and notional < floors[k]:
        k -= one
    return k


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def bracket_margins(
    notional: float,
    size: float,
    k: np.uint64,
    leverage: float,
    rates: Float,
    amounts: Float,
    max_leverage: Float,
    initial_rate: float,
    initial_rate_per_size: float,
    maintenance_rate_per_size: float,
) -> tuple[float, float, float]:
    """(IM, MM, bracket max leverage) of a position of ``notional`` and ``size`` in bracket
    ``k``; ``leverage`` NaN means the bracket maximum."""
    mm = notional * (rates[k] + maintenance_rate_per_size * size) - amounts[k]
    cap = max_leverage[k]
    chosen = cap if np.isnan(leverage) else leverage
    by_leverage = 1.0 / chosen
    by_size = initial_rate + initial_rate_per_size * size
    return notional * max(by_leverage, by_size), mm, cap


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def margins_of(
    qty: float,
    contract_size: float,
    price: float,
    inverse: bool,
    leverage: float,
    floors: Float,
    rates: Float,
    amounts: Float,
    max_leverage: Float,
    initial_rate: float,
    initial_rate_per_size: float,
    maintenance_rate_per_size: float,
) -> tuple[float, float, float, float, int, float]:
    """One position: (notional, size, IM, MM, bracket, bracket max leverage), settle asset."""
    n = notional_of(qty, contract_size, price, inverse)
    s = size_of(qty, contract_size, price, inverse)
    k = bracket_from(n, floors, np.uint64(0))
    im, mm, cap = bracket_margins(
        n,
        s,
        k,
        leverage,
        rates,
        amounts,
        max_leverage,
        initial_rate,
        initial_rate_per_size,
        maintenance_rate_per_size,
    )
    return n, s, im, mm, int(k), cap


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def _margins_loop(
    qty: Float,
    contract_size: Float,
    price: Float,
    inverse: NDArray[np.bool_],
    leverage: Float,
    row: Int,
    floors: Float,
    rates: Float,
    amounts: Float,
    max_leverage: Float,
    initial_rate: Float,
    initial_rate_per_size: Float,
    maintenance_rate_per_size: Float,
    out: Float,
    bracket: Int,
) -> None:
    for i in range(qty.shape[0]):
        r = row[i]
        n, s, im, mm, k, cap = margins_of(
            qty[i],
            contract_size[i],
            price[i],
            inverse[i],
            leverage[i],
            floors[r],
            rates[r],
            amounts[r],
            max_leverage[r],
            initial_rate[r],
            initial_rate_per_size[r],
            maintenance_rate_per_size[r],
        )
        out[0, i], out[1, i], out[2, i], out[3, i], out[4, i] = n, s, im, mm, cap
        bracket[i] = k


@dataclass(frozen=True)
class Margins:
    """Per-position margin figures, in the settle asset."""

    notional: Float
    size: Float
    initial: Float
    maintenance: Float
    bracket: Int
    bracket_max_leverage: Float


def broadcast_rows(
    schedule: MarginArrays, *columns: NDArray[Any]
) -> tuple[tuple[int, ...], list[NDArray[Any]]]:
    """Broadcast ``columns`` against each other and the schedule's rows; flatten them.

    Returns the common shape and the flat columns followed by each element's schedule row.
    """
    rows = schedule.floors.shape[:-1]
    index = np.arange(int(np.prod(rows)), dtype=np.intp).reshape(rows)
    shape = np.broadcast_shapes(*(c.shape for c in columns), rows)
    flat = [np.broadcast_to(c, shape).reshape(-1) for c in (*columns, index)]
    return shape, flat


def position_margins(
    qty: ArrayLike,
    contract_size: ArrayLike,
    price: ArrayLike,
    inverse: ArrayLike,
    leverage: ArrayLike,
    schedule: MarginArrays,
) -> Margins:
    """Notional, IM and MM of positions at ``price``; ``leverage`` NaN means the bracket maximum.

    Inputs broadcast against each other and against the schedule's rows (its leading axes).
    """
    shape, flat = broadcast_rows(
        schedule,
        np.asarray(qty, dtype=np.float64),
        np.asarray(contract_size, dtype=np.float64),
        np.asarray(price, dtype=np.float64),
        np.asarray(inverse, dtype=bool),
        np.asarray(leverage, dtype=np.float64),
    )
    out = np.empty((5, flat[0].size))
    bracket = np.empty(flat[0].size, dtype=np.intp)
    _margins_loop(*flat, *schedule.flat_rows(), out, bracket)
    n, s, im, mm, cap = (column.reshape(shape) for column in out)
    return Margins(n, s, im, mm, bracket.reshape(shape), cap)
