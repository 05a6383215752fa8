"""Tiered margin: bracket lookup, maintenance and initial margin.

The schedule of every venue model is held as padded arrays, brackets on the last axis ``K``:

    MM = n * (mmr_k + maintenance_rate_per_size * s) - maintenance_amount_k
    IM = n * max(1 / min(leverage, cap_k), initial_rate + initial_rate_per_size * s)

with ``n`` the notional (settle asset), ``s`` the size in coins and ``k`` the bracket with
``floor_k <= n < floor_(k+1)``. Unused bracket slots have floor ``+inf``. The compiled loops
read one instrument's brackets as a (4, K) array (rows ``FLOOR``, ``RATE``, ``AMOUNT``, ``CAP``)
and its scalar terms as one :class:`Terms` record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.pnl import notional_of, size_of
from crossmargin.model.instruments import MarginSchedule

__all__ = [
    "AMOUNT",
    "CAP",
    "FLOOR",
    "RATE",
    "MarginArrays",
    "Margins",
    "Terms",
    "bracket_from",
    "bracket_margins",
    "broadcast_rows",
    "margins_of",
    "position_margins",
]

Float = NDArray[np.float64]
Int = NDArray[np.intp]

FLOOR, RATE, AMOUNT, CAP = range(4)
"""Rows of one instrument's (4, K) bracket array: notional floor, maintenance rate,
maintenance amount, leverage cap."""


class Terms(NamedTuple):
    """The scalar terms of one instrument, as the compiled loops take them.

    ``factor`` converts the settle asset into the account currency; ``at_entry`` fixes an
    isolated position's IM and MM at its entry-price value (Bybit classic isolated margin);
    ``close_fee_rate`` prices the fee to close counted in IM and MM (Bybit).
    """

    contract_size: float
    inverse: bool
    initial_rate: float
    initial_rate_per_size: float
    maintenance_rate_per_size: float
    at_entry: bool
    factor: float
    close_fee_rate: float


@dataclass(frozen=True)
class MarginArrays:
    """Margin schedules as arrays: ``brackets`` (..., 4, K), the other fields (...)."""

    brackets: Float
    initial_rate: Float
    initial_rate_per_size: Float
    maintenance_rate_per_size: Float
    isolated_at_entry: NDArray[np.bool_]
    close_fee_rate: Float

    @classmethod
    def from_schedules(cls, schedules: Sequence[MarginSchedule]) -> MarginArrays:
        """Stack schedules into rows, padding brackets to the longest schedule (the last
        bracket's rate, amount and cap repeat; padded floors are inf)."""
        k = max((len(s.tiers) for s in schedules), default=1)
        rows: list[float] = []
        for schedule in schedules:
            tiers = schedule.tiers
            pad = k - len(tiers)
            last = tiers[-1]
            rows += [t.min_notional for t in tiers]
            rows += [np.inf] * pad
            rows += [t.maintenance_margin_rate for t in tiers]
            rows += [last.maintenance_margin_rate] * pad
            rows += [t.maintenance_amount for t in tiers]
            rows += [last.maintenance_amount] * pad
            rows += [t.max_leverage for t in tiers]
            rows += [last.max_leverage] * pad
        brackets = np.array(rows, dtype=np.float64).reshape(len(schedules), 4, k)
        return cls(
            brackets,
            np.array([s.initial_rate for s in schedules], dtype=np.float64),
            np.array([s.initial_rate_per_size for s in schedules], dtype=np.float64),
            np.array([s.maintenance_rate_per_size for s in schedules], dtype=np.float64),
            np.array([s.isolated_at_entry for s in schedules], dtype=bool),
            np.array([s.close_fee_rate for s in schedules], dtype=np.float64),
        )

    @property
    def floors(self) -> Float:
        """Notional floor of each bracket (..., K)."""
        out: Float = self.brackets[..., FLOOR, :]
        return out

    def take(self, rows: ArrayLike) -> MarginArrays:
        """The schedules of ``rows`` (e.g. instrument index per position)."""
        idx = np.asarray(rows, dtype=np.intp)
        return MarginArrays(
            self.brackets[idx],
            self.initial_rate[idx],
            self.initial_rate_per_size[idx],
            self.maintenance_rate_per_size[idx],
            self.isolated_at_entry[idx],
            self.close_fee_rate[idx],
        )

    def flat_rows(self) -> tuple[Float, tuple[Float, Float, Float]]:
        """The schedule with its leading axes flattened into rows, for the compiled loops:
        brackets (rows, 4, K) and the three per-size terms (rows,) each."""
        lead = self.brackets.shape[:-2]

        def flat(x: Float) -> Float:
            out: Float = np.broadcast_to(x, lead).reshape(-1)
            return out

        per_size = (
            flat(self.initial_rate),
            flat(self.initial_rate_per_size),
            flat(self.maintenance_rate_per_size),
        )
        return self.brackets.reshape(-1, *self.brackets.shape[-2:]), per_size


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
    notional: float, size: float, k: np.uint64, leverage: float, brackets: Float, terms: Terms
) -> tuple[float, float, float]:
    """(IM, MM, bracket max leverage) of a position of ``notional`` and ``size`` in bracket
    ``k``; ``leverage`` NaN means the bracket maximum, and a leverage above it is margined at
    the maximum (IM = notional x max(1 / leverage, 1 / cap)): caps refuse orders, never
    positions already held."""
    mm = notional * (brackets[RATE, k] + terms.maintenance_rate_per_size * size)
    mm -= brackets[AMOUNT, k]
    cap = brackets[CAP, k]
    chosen = cap if np.isnan(leverage) else min(leverage, cap)
    by_size = terms.initial_rate + terms.initial_rate_per_size * size
    return notional * max(1.0 / chosen, by_size), mm, cap


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def margins_of(
    qty: float, price: float, leverage: float, brackets: Float, terms: Terms, guess: np.uint64
) -> tuple[float, float, float, float, np.uint64, float]:
    """One position of ``qty`` contracts valued at ``price``: (notional, size, IM, MM,
    bracket, bracket max leverage) in the settle asset; the bracket is searched from
    ``guess``."""
    cs, inverse = terms.contract_size, terms.inverse
    n = notional_of(qty, cs, price, inverse)
    s = size_of(qty, cs, price, inverse)
    k = bracket_from(n, brackets[FLOOR], guess)
    im, mm, cap = bracket_margins(n, s, k, leverage, brackets, terms)
    return n, s, im, mm, k, cap


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def _margins_loop(
    columns: tuple[Float, Float, Float, Float, NDArray[np.bool_], Int],
    brackets: Float,
    per_size: tuple[Float, Float, Float],
    out: Float,
    bracket: Int,
) -> None:
    """``columns``: qty, contract size, price, leverage, inverse, schedule row; ``out`` rows:
    notional, size, IM, MM, bracket max leverage."""
    qty, contract_size, price, leverage, inverse, row = columns
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
        n, s, im, mm, k, cap = margins_of(
            qty[i], price[i], leverage[i], brackets[r], terms, np.uint64(0)
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
    rows = schedule.brackets.shape[:-2]
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
    No fee to close: it is priced from the entry (:func:`crossmargin.maths.risk.position_risk`).

    Inputs broadcast against each other and against the schedule's rows (its leading axes).
    """
    shape, flat = broadcast_rows(
        schedule,
        np.asarray(qty, dtype=np.float64),
        np.asarray(contract_size, dtype=np.float64),
        np.asarray(price, dtype=np.float64),
        np.asarray(leverage, dtype=np.float64),
        np.asarray(inverse, dtype=bool),
    )
    size = flat[0].size
    out = np.empty((5, size))
    bracket = np.empty(size, dtype=np.intp)
    brackets, per_size = schedule.flat_rows()
    _margins_loop(tuple(flat), brackets, per_size, out, bracket)
    n, s, im, mm, cap = (column.reshape(shape) for column in out)
    return Margins(n, s, im, mm, bracket.reshape(shape), cap)
