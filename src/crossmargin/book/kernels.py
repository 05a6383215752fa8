"""Compiled loops of the risk book: one pass over a block of positions that re-margins each
one with the shared scalar formulas and moves its account's sums by the difference."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from crossmargin.maths.pnl import unrealized_pnl_of
from crossmargin.maths.status import status_of
from crossmargin.maths.tiers import margins_of

__all__ = ["refresh_block"]

Float = NDArray[np.float64]


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def refresh_block(
    start: int,
    stop: int,
    mark: float,
    contract_size: float,
    inverse: bool,
    at_entry: bool,
    factor: float,
    floors: Float,
    rates: Float,
    amounts: Float,
    max_leverage: Float,
    initial_rate: float,
    initial_rate_per_size: float,
    maintenance_rate_per_size: float,
    margin_call_ratio: float,
    qty: Float,
    entry: Float,
    leverage: Float,
    isolated: NDArray[np.bool_],
    isolated_margin: Float,
    account: NDArray[np.int32],
    equity_cache: Float,
    initial_cache: Float,
    maintenance_cache: Float,
    status_cache: NDArray[np.int8],
    sums: Float,
    bad: NDArray[np.int32],
    cross_column: int,
    isolated_column: int,
) -> None:
    """Re-margin slots ``start:stop`` of one instrument in place.

    Each slot's cached contribution (equity, IM, MM in the account currency; isolated status)
    is replaced, and its account's cross or isolated sums (columns ``cross_column`` or
    ``isolated_column`` and the two after it) and isolated-status counts move by the change.
    """
    for j in range(start, stop):
        iso = isolated[j]
        basis = entry[j] if at_entry and iso else mark
        _, _, im, mm, _, _ = margins_of(
            qty[j],
            contract_size,
            basis,
            inverse,
            leverage[j],
            floors,
            rates,
            amounts,
            max_leverage,
            initial_rate,
            initial_rate_per_size,
            maintenance_rate_per_size,
        )
        pnl = unrealized_pnl_of(qty[j], contract_size, entry[j], mark, inverse)
        code = 0
        if iso:
            pnl += isolated_margin[j]
            code = status_of(pnl, mm, margin_call_ratio)
        equity, initial, maintenance = factor * pnl, factor * im, factor * mm
        a = account[j]
        c = isolated_column if iso else cross_column
        sums[a, c] += equity - equity_cache[j]
        sums[a, c + 1] += initial - initial_cache[j]
        sums[a, c + 2] += maintenance - maintenance_cache[j]
        old = status_cache[j]
        if old > 0:
            bad[a, old - 1] -= 1
        if code > 0:
            bad[a, code - 1] += 1
        equity_cache[j], initial_cache[j], maintenance_cache[j] = equity, initial, maintenance
        status_cache[j] = code
