"""Compiled loops of the risk book: one pass over a block of positions that re-margins each
one with the shared scalar formulas and moves its account's sums by the difference."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from crossmargin.maths.pnl import unrealized_pnl_of
from crossmargin.maths.status import margin_ratio_of, status_of
from crossmargin.maths.tiers import margins_of

__all__ = ["FIELDS", "refresh_block", "refresh_figures", "retract_slots"]

Float = NDArray[np.float64]

COLL, EQ_C, IM_C, MM_C, EQ_I, IM_I, MM_I, EQUITY, IM, MM, RATIO, AVAIL = range(12)
FIELDS = 12
"""Account record (one row per account, so a tick touches one or two cache lines per account):
collateral value; cross and isolated sums of equity, IM and MM; and the derived figures."""


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
) -> None:
    """Re-margin slots ``start:stop`` of one instrument in place.

    Each slot's cached contribution (equity, IM, MM in the account currency; isolated status)
    is replaced, and its account's cross or isolated sums and isolated-status counts move by
    the change.
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
        c = EQ_I if iso else EQ_C
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


@njit(cache=True)  # type: ignore[untyped-decorator]
def retract_slots(
    start: int,
    stop: int,
    isolated: NDArray[np.bool_],
    account: NDArray[np.int32],
    equity_cache: Float,
    initial_cache: Float,
    maintenance_cache: Float,
    status_cache: NDArray[np.int8],
    sums: Float,
    bad: NDArray[np.int32],
) -> None:
    """Take slots ``start:stop`` out of their accounts' sums; their caches become zero."""
    for j in range(start, stop):
        a = account[j]
        c = EQ_I if isolated[j] else EQ_C
        sums[a, c] -= equity_cache[j]
        sums[a, c + 1] -= initial_cache[j]
        sums[a, c + 2] -= maintenance_cache[j]
        if status_cache[j] > 0:
            bad[a, status_cache[j] - 1] -= 1
        equity_cache[j] = initial_cache[j] = maintenance_cache[j] = 0.0
        status_cache[j] = 0


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def refresh_figures(
    rows: NDArray[np.intp],
    sums: Float,
    bad: NDArray[np.int32],
    status: NDArray[np.int8],
    margin_call_ratio: float,
) -> None:
    """Derive equity, IM, MM, margin ratio, available balance and status of account ``rows``.

    The status is the worse of the cross account's and its worst isolated position's.
    """
    for a in rows:
        cross_equity = sums[a, COLL] + sums[a, EQ_C]
        equity = cross_equity + sums[a, EQ_I]
        maintenance = sums[a, MM_C] + sums[a, MM_I]
        sums[a, EQUITY] = equity
        sums[a, IM] = sums[a, IM_C] + sums[a, IM_I]
        sums[a, MM] = maintenance
        sums[a, RATIO] = margin_ratio_of(equity, maintenance)
        sums[a, AVAIL] = max(cross_equity - sums[a, IM_C], 0.0)
        code = status_of(cross_equity, sums[a, MM_C], margin_call_ratio)
        for level in range(bad.shape[1], 0, -1):
            if bad[a, level - 1] > 0:
                code = max(code, level)
                break
        status[a] = code
