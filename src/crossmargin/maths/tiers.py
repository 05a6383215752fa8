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

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.pnl import notional, size
from crossmargin.model.instruments import MarginSchedule

__all__ = ["MarginArrays", "Margins", "bracket_index", "position_margins"]

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

    @property
    def caps(self) -> Float:
        """Upper notional bound of each bracket (the next floor; ``inf`` for the last)."""
        return np.concatenate(
            [self.floors[..., 1:], np.full((*self.floors.shape[:-1], 1), np.inf)], axis=-1
        )


def bracket_index(notional_value: ArrayLike, floors: Float) -> Int:
    """Index of the bracket holding each notional: the last floor <= notional."""
    n = np.asarray(notional_value, dtype=np.float64)
    return np.asarray((n[..., None] >= floors).sum(axis=-1) - 1, dtype=np.intp).clip(0)


def _pick(table: Float, k: Int) -> Float:
    table_b = np.broadcast_to(table, k.shape + table.shape[-1:])
    return np.take_along_axis(table_b, k[..., None], axis=-1)[..., 0]


@dataclass(frozen=True)
class Margins:
    """Per-position margin figures, in the settle asset."""

    notional: Float
    size: Float
    initial: Float
    maintenance: Float
    bracket: Int
    bracket_max_leverage: Float


def position_margins(
    qty: ArrayLike,
    contract_size: ArrayLike,
    price: ArrayLike,
    inverse: ArrayLike,
    leverage: ArrayLike,
    schedule: MarginArrays,
) -> Margins:
    """Notional, IM and MM of positions at ``price``; ``leverage`` NaN means the bracket maximum."""
    n = notional(qty, contract_size, price, inverse)
    s = size(qty, contract_size, price, inverse)
    k = bracket_index(n, schedule.floors)
    mmr = _pick(schedule.rates, k) + schedule.maintenance_rate_per_size * s
    mm = n * mmr - _pick(schedule.amounts, k)
    max_lev = _pick(schedule.max_leverage, k)
    lev = np.asarray(leverage, dtype=np.float64)
    chosen = np.where(np.isnan(lev), max_lev, lev)
    imr = np.maximum(1.0 / chosen, schedule.initial_rate + schedule.initial_rate_per_size * s)
    return Margins(n, s, n * imr, mm, k, max_lev)
