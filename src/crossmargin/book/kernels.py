"""Compiled loops of the risk book: one pass over a block of positions that re-margins each
one with the shared scalar formulas and moves its account's sums by the difference."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from crossmargin.maths.pnl import unrealized_pnl_of
from crossmargin.maths.status import margin_ratio_of, status_of
from crossmargin.maths.tiers import margins_of

__all__ = [
    "FIELDS",
    "first_negative",
    "refresh_block",
    "refresh_figures",
    "retract_slots",
    "surplus_grid",
]

Float = NDArray[np.float64]
Columns = tuple[NDArray[Any], ...]
"""Position and account columns of a crash-distance search (see ``_account_surplus``)."""

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


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _account_surplus(
    a: int,
    move: float,
    starts: NDArray[np.intp],
    data: Columns,
    currency_stable: bool,
) -> float:
    (
        qty,
        entry,
        contract_size,
        inverse,
        leverage,
        isolated,
        isolated_margin,
        fixed,
        mark,
        settle,
        floors,
        rates,
        amounts,
        max_leverage,
        initial_rate,
        initial_rate_per_size,
        maintenance_rate_per_size,
        units,
        price,
        stable,
    ) = data
    scale = 1.0 if currency_stable else 1.0 + move
    collateral = 0.0
    for k in range(price.shape[0]):
        collateral += units[a, k] * (price[k] * (1.0 if stable[k] else 1.0 + move) / scale)
    cross = 0.0
    worst = np.inf
    for p in range(starts[a], starts[a + 1]):
        moved = mark[p] * (1.0 + move)
        basis = entry[p] if fixed[p] else moved
        _, _, _, mm, _, _ = margins_of(
            qty[p],
            contract_size[p],
            basis,
            inverse[p],
            leverage[p],
            floors[p],
            rates[p],
            amounts[p],
            max_leverage[p],
            initial_rate[p],
            initial_rate_per_size[p],
            maintenance_rate_per_size[p],
        )
        pnl = unrealized_pnl_of(qty[p], contract_size[p], entry[p], moved, inverse[p])
        if isolated[p]:
            worst = min(worst, isolated_margin[p] + pnl - mm)
        else:
            s = settle[p]
            cross += price[s] * (1.0 if stable[s] else 1.0 + move) / scale * (pnl - mm)
    return min(collateral + cross, worst)


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def surplus_grid(
    moves: Float,
    starts: NDArray[np.intp],
    data: Columns,
    currency_stable: bool,
    out: Float,
) -> None:
    """Smallest margin surplus of each account under uniform moves ``moves`` (accounts, G).

    All non-stable prices are multiplied by ``1 + move``. Account ``a`` holds position rows
    ``starts[a]:starts[a + 1]`` of ``data`` (see :func:`_account_surplus`); the surplus is the
    cross equity less the cross maintenance margin, or an isolated position's if smaller.
    """
    for a in range(moves.shape[0]):
        for g in range(moves.shape[1]):
            out[a, g] = _account_surplus(a, moves[a, g], starts, data, currency_stable)


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def first_negative(
    todo: NDArray[np.intp],
    lo: Float,
    hi: Float,
    f_lo: Float,
    f_hi: Float,
    starts: NDArray[np.intp],
    data: Columns,
    currency_stable: bool,
    tolerance: float,
) -> Float:
    """Where each account's surplus turns negative in [lo, hi] (f_lo >= 0 > f_hi).

    Illinois (modified regula falsi) steps, halving instead whenever a step did not halve the
    bracket (zero plateaus, kinks), so it converges at least half as fast as bisection; stops at
    ``tolerance`` of bracket width. Returns the bracket's middle.
    """
    roots = np.empty(todo.shape[0])
    for i in range(todo.shape[0]):
        a, b, fa, fb = lo[i], hi[i], f_lo[i], f_hi[i]
        side = 0
        previous = 2.0 * abs(b - a)
        for _ in range(200):
            width = abs(b - a)
            if width <= tolerance:
                break
            c = b - fb * (b - a) / (fb - fa) if fb != fa else 0.5 * (a + b)
            if not ((c - a) * (c - b) < 0 and width <= 0.5 * previous):
                c = 0.5 * (a + b)
            previous = width
            fc = _account_surplus(todo[i], c, starts, data, currency_stable)
            if fc < 0:
                if side == -1:
                    fa *= 0.5
                b, fb, side = c, fc, -1
            else:
                if side == 1:
                    fb *= 0.5
                a, fa, side = c, fc, 1
        roots[i] = 0.5 * (a + b)
    return roots
