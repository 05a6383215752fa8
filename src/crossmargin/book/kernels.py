"""Compiled loops of the risk book.

Positions sit in buckets: one per (block of accounts, instrument, margin mode), each a
contiguous run of slots. Inside a bucket the instrument's parameters and the mode are
constants, so the per-position loop is branch-light, and every account of a bucket is distinct.
A full re-margin walks one account block at a time, whose records stay in the core's cache
while all of its buckets are added up. A tick on an instrument walks that instrument's buckets
and moves each holder's sums by the difference between its contributions at the old and the
new mark; nothing per position is cached but the bracket it was last found in.

Indices are unsigned so the compiled loops carry no negative-index checks. Functions inlined
into a per-position loop take scalars or read-only arrays and write nothing: numba would
otherwise count references on every position.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir as llvm
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numpy.typing import NDArray

from crossmargin.maths.pnl import notional_of, size_of, unrealized_pnl_of
from crossmargin.maths.status import margin_ratio_of, status_of
from crossmargin.maths.tiers import bracket_from, bracket_margins, margins_of

__all__ = [
    "FIELDS",
    "account_figures",
    "apply_slot",
    "finish_accounts",
    "first_negative",
    "remargin_blocks",
    "surplus_grid",
    "tick_instruments",
]

Float = NDArray[np.float64]
Columns = tuple[NDArray[Any], ...]
"""Position and account columns of a crash-distance search (see ``_account_surplus``)."""
Market = tuple[NDArray[Any], ...]
"""Per instrument: mark, settle-to-currency factor, contract size, inverse, isolated-at-entry,
then the flat margin schedule (floors, rates, amounts, max leverage, three per-size terms)."""
Slots = tuple[NDArray[Any], ...]
"""Per slot: account, qty, entry, leverage, isolated margin, bracket found last."""

COLL, EQ_C, IM_C, MM_C, EQ_I, IM_I, MM_I, BAD = range(8)
FIELDS = 8
"""Account record, one cache line: collateral value; cross and isolated sums of equity, IM and
MM (account currency); and the isolated positions in each non-healthy status, counted in one
float64 as ``calls + 2**16 * liquidatable + 2**32 * bankrupt`` (exact while each count is
below 2**16, and an account has at most one position per instrument). The figures derived
from a record (equity, margin ratio, ...) are computed when asked for, the status eagerly."""
MAX_INSTRUMENTS = 2**16 - 1

U = np.uint64


@intrinsic  # type: ignore[untyped-decorator]
def prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """Ask the cache for the line of ``array.flat[index]`` ahead of a write to it."""
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        data = builder.bitcast(ary.data, llvm.IntType(8).as_pointer())
        itemsize = context.get_constant(types.uintp, aryty.dtype.bitwidth // 8)
        ptr = builder.gep(data, [builder.mul(args[1], itemsize)])
        i32 = llvm.IntType(32)
        fnty = llvm.FunctionType(llvm.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _contribution(
    q: float,
    e: float,
    leverage: float,
    isolated_margin: float,
    mark: float,
    isolated: bool,
    inverse: bool,
    at_entry: bool,
    contract_size: float,
    factor: float,
    floors: Float,
    rates: Float,
    amounts: Float,
    max_leverage: Float,
    initial_rate: float,
    initial_rate_per_size: float,
    maintenance_rate_per_size: float,
    guess: np.uint64,
    margin_call_ratio: float,
) -> tuple[float, float, float, int, np.uint64]:
    """One position (``q`` contracts entered at ``e``) at ``mark``: equity, IM, MM in the
    account currency, its status code if isolated (else 0), and its bracket, searched from
    ``guess``."""
    basis = e if isolated and at_entry else mark
    n = notional_of(q, contract_size, basis, inverse)
    s = size_of(q, contract_size, basis, inverse)
    k = bracket_from(n, floors, guess)
    im, mm, _ = bracket_margins(
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
    pnl = unrealized_pnl_of(q, contract_size, e, mark, inverse)
    code = 0
    if isolated:
        pnl += isolated_margin
        code = status_of(pnl, mm, margin_call_ratio)
    return factor * pnl, factor * im, factor * mm, code, k


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _weight(code: int) -> float:
    """What an isolated position in status ``code`` adds to its account's ``BAD`` count."""
    if code == 0:
        return 0.0
    if code == 1:
        return 1.0
    return 65536.0 if code == 2 else 4294967296.0


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _status(acc: Float, a: np.uint64, margin_call_ratio: float) -> int:
    """Account ``a``'s status: the worse of the cross account's and its worst isolated
    position's. (A row view per account would cost reference counting in the loops.)"""
    bad = acc[a, U(BAD)]
    worst = 3 if bad >= 4294967296.0 else 2 if bad >= 65536.0 else 1 if bad > 0.0 else 0
    cross: int = status_of(acc[a, U(COLL)] + acc[a, U(EQ_C)], acc[a, U(MM_C)], margin_call_ratio)
    return max(cross, worst)


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def account_figures(acc: Float, out: Float) -> None:
    """Equity, IM, MM, margin ratio and available balance (cross equity above cross IM,
    floored at 0) of every account record, into the columns of ``out``."""
    for r in range(acc.shape[0]):
        a = U(r)
        cross = acc[a, U(COLL)] + acc[a, U(EQ_C)]
        equity = cross + acc[a, U(EQ_I)]
        maintenance = acc[a, U(MM_C)] + acc[a, U(MM_I)]
        out[U(0), a] = equity
        out[U(1), a] = acc[a, U(IM_C)] + acc[a, U(IM_I)]
        out[U(2), a] = maintenance
        out[U(3), a] = margin_ratio_of(equity, maintenance)
        out[U(4), a] = max(cross - acc[a, U(IM_C)], 0.0)


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def finish_accounts(
    rows: NDArray[np.intp], acc: Float, status: NDArray[np.int8], margin_call_ratio: float
) -> None:
    """Refresh the status of accounts ``rows`` from their records."""
    for r in range(rows.shape[0]):
        a = U(rows[r])
        status[a] = _status(acc, a, margin_call_ratio)


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _bucket(
    lo: np.uint64,
    hi: np.uint64,
    old_mark: float,
    mark: float,
    take_old: bool,
    add_new: bool,
    isolated: bool,
    inverse: bool,
    at_entry: bool,
    contract_size: float,
    factor: float,
    floors: Float,
    rates: Float,
    amounts: Float,
    max_leverage: Float,
    initial_rate: float,
    initial_rate_per_size: float,
    maintenance_rate_per_size: float,
    owner: NDArray[np.int32],
    qty: Float,
    entry: Float,
    leverage: Float,
    isolated_margin: Float,
    hint: NDArray[np.uint8],
    acc: Float,
    status: NDArray[np.int8],
    margin_call_ratio: float,
    changes: NDArray[np.intp],
    n_changed: int,
) -> int:
    """Move the sums of the accounts of slots ``lo:hi`` (one instrument and mode): with
    ``take_old``, take out each slot's contribution at ``old_mark``; with ``add_new``, add the
    one at ``mark`` (the two together: the same bits as their difference).

    With both (a tick), each account's status is refreshed and those that changed are
    appended to ``changes`` as (account, status before) pairs; returns the new number of pairs
    there."""
    tick = take_old and add_new
    c = U(EQ_I) if isolated else U(EQ_C)
    if tick:
        for j in range(lo, hi):
            prefetch(acc, U(owner[j]) * U(FIELDS))
    for j in range(lo, hi):
        guess = U(hint[j])
        k = guess
        q, e, lev = qty[j], entry[j], leverage[j]
        margin = isolated_margin[j] if isolated else 0.0
        d_equity = d_initial = d_maintenance = 0.0
        code0 = code1 = 0
        for step in range(0 if take_old else 1, 2 if add_new else 1):
            equity, initial, maintenance, code, k = _contribution(
                q,
                e,
                lev,
                margin,
                mark if step else old_mark,
                isolated,
                inverse,
                at_entry,
                contract_size,
                factor,
                floors,
                rates,
                amounts,
                max_leverage,
                initial_rate,
                initial_rate_per_size,
                maintenance_rate_per_size,
                k,
                margin_call_ratio,
            )
            if step:
                d_equity += equity
                d_initial += initial
                d_maintenance += maintenance
                code1 = code
            else:
                d_equity, d_initial, d_maintenance, code0 = -equity, -initial, -maintenance, code
        if k != guess:
            hint[j] = k
        a = U(owner[j])
        acc[a, c] += d_equity
        acc[a, c + U(1)] += d_initial
        acc[a, c + U(2)] += d_maintenance
        if code1 != code0:
            acc[a, U(BAD)] += _weight(code1) - _weight(code0)
        if tick:
            before = status[a]
            code = _status(acc, a, margin_call_ratio)
            status[a] = code
            if code != before:
                changes[2 * n_changed] = a
                changes[2 * n_changed + 1] = before
                n_changed += 1
    return n_changed


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _instrument_pass(
    first_bucket: int,
    stop_bucket: int,
    instruments: int,
    old_mark: float,
    tick: bool,
    starts: NDArray[np.intp],
    counts: NDArray[np.intp],
    market: Market,
    slots: Slots,
    acc: Float,
    status: NDArray[np.int8],
    margin_call_ratio: float,
    changes: NDArray[np.intp],
    n_changed: int,
) -> int:
    """Run :func:`_bucket` over one instrument's buckets ``first_bucket``, then every
    ``2 * instruments`` (the next account block) before ``stop_bucket``, in both modes; the
    instrument's constants are taken out of the market once."""
    mark, factor, contract_size, inverse, at_entry, floors, rates, amounts, max_lev = market[:9]
    ir, irs, mrs = market[9:]
    owner, qty, entry, leverage, isolated_margin, hint = slots
    i = U(first_bucket // 2 % instruments)
    fl, ra, am, ml = floors[i], rates[i], amounts[i], max_lev[i]
    step = 2 * instruments
    for first in range(first_bucket, stop_bucket, step):
        if tick and first + step < stop_bucket:
            for m in range(2):
                ahead = U(first + step + m)
                if counts[ahead]:
                    slot = U(starts[ahead])
                    prefetch(owner, slot)
                    prefetch(qty, slot)
                    prefetch(entry, slot)
                    prefetch(leverage, slot)
                    prefetch(hint, slot)
        for m in range(2):
            bucket = U(first + m)
            lo = U(starts[bucket])
            hi = lo + U(counts[bucket])
            if hi == lo:
                continue
            n_changed = _bucket(
                lo,
                hi,
                old_mark,
                mark[i],
                tick,
                True,
                m == 1,
                inverse[i],
                at_entry[i],
                contract_size[i],
                factor[i],
                fl,
                ra,
                am,
                ml,
                ir[i],
                irs[i],
                mrs[i],
                owner,
                qty,
                entry,
                leverage,
                isolated_margin,
                hint,
                acc,
                status,
                margin_call_ratio,
                changes,
                n_changed,
            )
    return n_changed


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def remargin_blocks(
    block_size: int,
    instruments: int,
    starts: NDArray[np.intp],
    counts: NDArray[np.intp],
    market: Market,
    slots: Slots,
    acc: Float,
    status: NDArray[np.int8],
    margin_call_ratio: float,
) -> None:
    """Recompute every account's sums (but the collateral value) and status from scratch.

    Bucket ``(b * instruments + i) * 2 + m`` holds instrument ``i``'s positions of accounts
    ``b * block_size`` to ``(b + 1) * block_size`` in mode ``m`` (1: isolated).
    """
    n = acc.shape[0]
    none = np.empty(0, dtype=np.intp)
    for b in range((n + block_size - 1) // block_size):
        first, stop = U(b * block_size), U(min(n, (b + 1) * block_size))
        for a in range(first, stop):
            for f in range(EQ_C, FIELDS):
                acc[a, U(f)] = 0.0
        for i in range(instruments):
            bucket = (b * instruments + i) * 2
            _instrument_pass(
                bucket,
                bucket + 1,
                instruments,
                0.0,
                False,
                starts,
                counts,
                market,
                slots,
                acc,
                status,
                margin_call_ratio,
                none,
                0,
            )
        for a in range(first, stop):
            status[a] = _status(acc, a, margin_call_ratio)


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def tick_instruments(
    ticked: NDArray[np.intp],
    old_marks: Float,
    block_size: int,
    instruments: int,
    starts: NDArray[np.intp],
    counts: NDArray[np.intp],
    market: Market,
    slots: Slots,
    acc: Float,
    status: NDArray[np.int8],
    margin_call_ratio: float,
    changes: NDArray[np.intp],
) -> int:
    """Move the holders of instruments ``ticked`` from ``old_marks`` to the marks in
    ``market``, refreshing each holder as it goes.

    Every status change is appended to ``changes`` as an (account, status before) pair; it
    needs room for two entries per holder. Returns the number of pairs. An account holding
    several ticked instruments can appear more than once: its first pair has its status
    before the tick.
    """
    blocks = (acc.shape[0] + block_size - 1) // block_size
    n_changed = 0
    for t in range(ticked.shape[0]):
        i = ticked[t]
        n_changed = _instrument_pass(
            2 * i,
            2 * (blocks * instruments),
            instruments,
            old_marks[t],
            True,
            starts,
            counts,
            market,
            slots,
            acc,
            status,
            margin_call_ratio,
            changes,
            n_changed,
        )
    return n_changed


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def apply_slot(
    j: int,
    i: int,
    isolated: bool,
    sign: int,
    market: Market,
    slots: Slots,
    acc: Float,
    margin_call_ratio: float,
) -> None:
    """Add (sign 1) or take out (sign -1) slot ``j``'s contribution at the current mark; the
    caller refreshes its account."""
    ui, uj = U(i), U(j)
    mark, factor, contract_size, inverse, at_entry, floors, rates, amounts, max_lev = market[:9]
    ir, irs, mrs = market[9:]
    owner, qty, entry, leverage, isolated_margin, hint = slots
    _bucket(
        uj,
        uj + U(1),
        mark[ui],
        mark[ui],
        sign < 0,
        sign > 0,
        isolated,
        inverse[ui],
        at_entry[ui],
        contract_size[ui],
        factor[ui],
        floors[ui],
        rates[ui],
        amounts[ui],
        max_lev[ui],
        ir[ui],
        irs[ui],
        mrs[ui],
        owner,
        qty,
        entry,
        leverage,
        isolated_margin,
        hint,
        acc,
        np.empty(0, dtype=np.int8),
        margin_call_ratio,
        np.empty(0, dtype=np.intp),
        0,
    )


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
