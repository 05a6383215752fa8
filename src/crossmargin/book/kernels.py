"""Compiled loops of the risk book: the incremental, many-account use of the account-risk
kernel (:mod:`crossmargin.maths.risk`).

Positions sit in buckets: one per (block of accounts, instrument, margin mode), each a
contiguous run of slots. Inside a bucket the instrument's terms and the mode are constants, so
the per-position loop is branch-light, and every account of a bucket is distinct. A full
re-margin walks one account block at a time, whose records stay in the core's cache while all
of its buckets are added up. A tick on an instrument walks that instrument's buckets and moves
each holder's record by the difference between its contributions
(:func:`~crossmargin.maths.risk.position_risk`) at the old and the new mark; nothing per
position is cached but the bracket it was last found in.

Indices are unsigned so the compiled loops carry no negative-index checks. Functions inlined
into a per-position loop take scalars or read-only arrays and write nothing, and the book's
arrays are unpacked once per bucket: numba would otherwise count references on every position.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from llvmlite import ir as llvm
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numpy.typing import NDArray

from crossmargin.maths.liquidation import liquidation_price_of
from crossmargin.maths.pnl import unrealized_pnl_of
from crossmargin.maths.risk import (
    COLLATERAL,
    CROSS_EQUITY,
    CROSS_MM,
    FIELDS,
    ISO_BAD,
    ISO_EQUITY,
    Slot,
    fee_to_close,
    liquidation_buffer_of,
    position_risk,
    record_status,
    status_weight,
    terms_of,
)
from crossmargin.maths.tiers import Terms, margins_of

__all__ = [
    "MAX_INSTRUMENTS",
    "BookState",
    "Move",
    "apply_slot",
    "count_buckets",
    "finish_accounts",
    "group_by_account",
    "is_sorted",
    "liquidation_slots",
    "place_positions",
    "remargin_blocks",
    "resum_account",
    "tick_instruments",
]

Float = NDArray[np.float64]
Int = NDArray[np.intp]
I32 = NDArray[np.int32]

MAX_INSTRUMENTS = 2**16 - 1
"""The isolated-status counts of a record share one float64 (``ISO_BAD``): exact while each
count is below 2**16, and an account has at most one position per instrument."""

U = np.uint64


class BookState(NamedTuple):
    """Everything the bucket loops read and write, as the book holds it.

    Bucket ``(b * instruments + i) * 2 + m`` holds instrument ``i``'s positions of accounts
    ``b * block_size`` to ``(b + 1) * block_size`` in mode ``m`` (1: isolated), in slots
    ``starts[bucket]`` to ``starts[bucket] + counts[bucket]``. Per instrument: ``marks``,
    ``factor`` (settle asset -> account currency), ``terms`` and ``brackets``. Per slot:
    ``owner`` account, ``qty``, ``entry``, ``leverage``, isolated ``margin`` and ``hint`` (the
    bracket found last). Per account: the risk record (``acc``) and the status.
    """

    block_size: int
    instruments: int
    starts: Int
    counts: Int
    marks: Float
    factor: Float
    terms: NDArray[np.void]
    brackets: Float
    owner: NDArray[np.int32]
    qty: Float
    entry: Float
    leverage: Float
    margin: Float
    hint: NDArray[np.uint8]
    acc: Float
    status: NDArray[np.int8]
    margin_call_ratio: float


class Move(NamedTuple):
    """What one bucket walk does: take out each slot's contribution at ``old_mark``
    (``take_old``), add the one at ``mark`` (``add_new``); both together are a tick."""

    old_mark: float
    mark: float
    take_old: bool
    add_new: bool


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


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def finish_accounts(state: BookState, rows: Int) -> None:
    """Refresh the status of accounts ``rows`` from their records."""
    acc, status, ratio = state.acc, state.status, state.margin_call_ratio
    for r in range(rows.shape[0]):
        a = U(rows[r])
        status[a] = record_status(acc, a, ratio)


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _bucket(
    state: BookState,
    i: np.uint64,
    isolated: bool,
    lo: np.uint64,
    hi: np.uint64,
    move: Move,
    changes: Int,
    n_changed: int,
) -> int:
    """Move the records of the accounts of slots ``lo:hi`` (one bucket: instrument ``i``, one
    mode) as ``move`` says. In a tick each account's status is refreshed and those that changed are
    appended to ``changes`` as (account, status before) pairs; returns the new number of
    pairs there."""
    owner, qty, entry, leverage, margin, hint = (
        state.owner,
        state.qty,
        state.entry,
        state.leverage,
        state.margin,
        state.hint,
    )
    acc, status, ratio = state.acc, state.status, state.margin_call_ratio
    terms = terms_of(state.terms, i, state.factor[i])
    brackets = state.brackets[i]
    tick = move.take_old and move.add_new
    c = U(ISO_EQUITY) if isolated else U(CROSS_EQUITY)
    if tick:
        for j in range(lo, hi):
            prefetch(acc, U(owner[j]) * U(FIELDS))
    for j in range(lo, hi):
        guess = U(hint[j])
        k = guess
        slot = Slot(qty[j], entry[j], leverage[j], margin[j] if isolated else 0.0)
        d_equity = d_initial = d_maintenance = 0.0
        code0 = code1 = 0
        for step in range(0 if move.take_old else 1, 2 if move.add_new else 1):
            mark = move.mark if step else move.old_mark
            equity, initial, maintenance, code, k, _, _ = position_risk(
                slot, mark, isolated, brackets, terms, k, ratio
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
            acc[a, U(ISO_BAD)] += status_weight(code1) - status_weight(code0)
        if tick:
            before = status[a]
            code = record_status(acc, a, ratio)
            status[a] = code
            if code != before:
                changes[2 * n_changed] = a
                changes[2 * n_changed + 1] = before
                n_changed += 1
    return n_changed


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _instrument_pass(
    state: BookState,
    first_block: int,
    stop_block: int,
    i: int,
    move: Move,
    changes: Int,
    n_changed: int,
) -> int:
    """Walk instrument ``i``'s buckets of account blocks ``first_block`` to ``stop_block``
    (exclusive), both modes; a tick prefetches the next block's slots while it works."""
    starts, counts, instruments = state.starts, state.counts, state.instruments
    tick = move.take_old and move.add_new
    for b in range(first_block, stop_block):
        first = U((b * instruments + i) * 2)
        if tick and b + 1 < stop_block:
            for m in range(2):
                ahead = U(((b + 1) * instruments + i) * 2 + m)
                if counts[ahead]:
                    slot = U(starts[ahead])
                    prefetch(state.owner, slot)
                    prefetch(state.qty, slot)
                    prefetch(state.entry, slot)
                    prefetch(state.leverage, slot)
                    prefetch(state.hint, slot)
        for m in range(2):
            bucket = first + U(m)
            lo = U(starts[bucket])
            hi = lo + U(counts[bucket])
            if hi != lo:
                n_changed = _bucket(state, U(i), m == 1, lo, hi, move, changes, n_changed)
    return n_changed


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _is_plain(terms: Terms) -> bool:
    """A linear contract with no size-scaled rates, no fee to close and margins at the mark:
    the usual case, for which the bucket loops are compiled with those terms as constants."""
    return bool(
        not terms.inverse
        and not terms.at_entry
        and terms.close_fee_rate == 0.0
        and terms.initial_rate_per_size == 0.0
        and terms.maintenance_rate_per_size == 0.0
    )


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _plain(terms: Terms) -> Terms:
    """``terms`` (for which :func:`_is_plain` holds) with the zero and false ones as literals."""
    return Terms(terms.contract_size, False, terms.initial_rate, 0.0, 0.0, False, terms.factor, 0.0)


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _add_slots(
    state: BookState,
    terms: Terms,
    brackets: Float,
    mark: float,
    isolated: bool,
    lo: np.uint64,
    hi: np.uint64,
) -> None:
    """Add the contributions of slots ``lo:hi`` (one instrument, one mode) at ``mark``."""
    owner, qty, entry, leverage, margin, hint = (
        state.owner,
        state.qty,
        state.entry,
        state.leverage,
        state.margin,
        state.hint,
    )
    acc, ratio = state.acc, state.margin_call_ratio
    c = U(ISO_EQUITY) if isolated else U(CROSS_EQUITY)
    for j in range(lo, hi):
        guess = U(hint[j])
        slot = Slot(qty[j], entry[j], leverage[j], margin[j] if isolated else 0.0)
        equity, initial, maintenance, code, k, _, _ = position_risk(
            slot, mark, isolated, brackets, terms, guess, ratio
        )
        if k != guess:
            hint[j] = k
        a = U(owner[j])
        acc[a, c] += equity
        acc[a, c + U(1)] += initial
        acc[a, c + U(2)] += maintenance
        if isolated and code != 0:
            acc[a, U(ISO_BAD)] += status_weight(code)


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _add_bucket(state: BookState, i: np.uint64, isolated: bool, bucket: np.uint64) -> None:
    """Add the contributions of one bucket's slots (instrument ``i``, one mode) at the current
    mark: the re-margin's loop, :func:`_bucket` with nothing to take out and no status work
    (``isolated`` is a constant at each call, so each mode compiles to its own loop, and so
    does an instrument with plain terms)."""
    lo = U(state.starts[bucket])
    hi = lo + U(state.counts[bucket])
    if hi == lo:
        return
    terms = terms_of(state.terms, i, state.factor[i])
    brackets, mark = state.brackets[i], state.marks[i]
    if _is_plain(terms):
        _add_slots(state, _plain(terms), brackets, mark, isolated, lo, hi)
    else:
        _add_slots(state, terms, brackets, mark, isolated, lo, hi)


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def remargin_blocks(state: BookState) -> None:
    """Recompute every account's record (but the collateral value) and status from scratch."""
    acc, status, ratio = state.acc, state.status, state.margin_call_ratio
    n, size, instruments = acc.shape[0], state.block_size, state.instruments
    for b in range((n + size - 1) // size):
        first, stop = U(b * size), U(min(n, (b + 1) * size))
        for a in range(first, stop):
            for f in range(CROSS_EQUITY, FIELDS):
                acc[a, U(f)] = 0.0
        for i in range(instruments):
            bucket = U((b * instruments + i) * 2)
            _add_bucket(state, U(i), False, bucket)
            _add_bucket(state, U(i), True, bucket + U(1))
        for a in range(first, stop):
            status[a] = record_status(acc, a, ratio)


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def tick_instruments(state: BookState, ticked: Int, old_marks: Float, changes: Int) -> int:
    """Move the holders of instruments ``ticked`` from ``old_marks`` to the marks in
    ``state``, refreshing each holder as it goes.

    Every status change is appended to ``changes`` as an (account, status before) pair; it
    needs room for two entries per holder. Returns the number of pairs. An account holding
    several ticked instruments can appear more than once: its first pair has its status
    before the tick.
    """
    size = state.block_size
    blocks = (state.acc.shape[0] + size - 1) // size
    n_changed = 0
    for t in range(ticked.shape[0]):
        i = ticked[t]
        move = Move(old_marks[t], state.marks[i], True, True)
        n_changed = _instrument_pass(state, 0, blocks, i, move, changes, n_changed)
    return n_changed


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def apply_slot(state: BookState, j: int, i: int, isolated: bool, sign: int) -> None:
    """Add (sign 1) or take out (sign -1) slot ``j``'s contribution at the current mark; the
    caller refreshes its account."""
    mark = state.marks[i]
    move = Move(mark, mark, sign < 0, sign > 0)
    _bucket(state, U(i), isolated, U(j), U(j) + U(1), move, np.empty(0, dtype=np.intp), 0)


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def resum_account(state: BookState, a: int) -> None:
    """Recompute account ``a``'s record (but the collateral value) and status from its
    positions alone: no drift of incremental sums survives a re-layout (an account with no
    positions left has exactly zero PnL and margin)."""
    acc, n_inst = state.acc, state.instruments
    for f in range(CROSS_EQUITY, FIELDS):
        acc[U(a), U(f)] = 0.0
    none = np.empty(0, dtype=np.intp)
    block = a // state.block_size
    for i in range(n_inst):
        mark = state.marks[i]
        for mode in range(2):
            bucket = (block * n_inst + i) * 2 + mode
            lo = state.starts[bucket]
            for j in range(lo, lo + state.counts[bucket]):
                if state.owner[j] == a:
                    move = Move(mark, mark, False, True)
                    _bucket(state, U(i), mode == 1, U(j), U(j) + U(1), move, none, 0)
    state.status[U(a)] = record_status(acc, U(a), state.margin_call_ratio)


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def group_by_account(
    state: BookState,
    slots: Int,
    instrument: Int,
    isolated: NDArray[np.bool_],
    local: Int,
    starts: Int,
    out: NDArray[np.void],
) -> None:
    """Copy the positions in ``slots`` (of ``instrument``, mode ``isolated``) into ``out``
    (:data:`~crossmargin.maths.risk.POSITION` rows) grouped by account: the positions of
    account ``local[k]`` go to ``out[starts[a]:starts[a + 1]]``, in slot order (a counting
    sort: slots come bucket by bucket, so each account's positions stay in instrument order)."""
    fill = starts[:-1].copy()
    qty, entry, leverage, margin = state.qty, state.entry, state.leverage, state.margin
    for k in range(slots.shape[0]):
        a = local[k]
        row = out[fill[a]]
        fill[a] += 1
        j = slots[k]
        row.qty = qty[j]
        row.entry = entry[j]
        row.leverage = leverage[j]
        row.margin = margin[j] if isolated[k] else 0.0
        row.instrument = instrument[k]
        row.isolated = isolated[k]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _liquidation_run(
    state: BookState,
    terms: Terms,
    i: np.uint64,
    isolated: bool,
    lo: np.uint64,
    hi: np.uint64,
    out: tuple[Float, I32, I32],
    p: np.uint64,
) -> np.uint64:
    """Liquidation prices of slots ``lo:hi`` (instrument ``i`` with ``terms``, one mode) into
    ``out`` from row ``p``, as :func:`~crossmargin.maths.risk.liquidation_prices` finds them;
    returns the next row."""
    price, account, instrument = out
    owner, qty, entry, leverage, margin, hint = (
        state.owner,
        state.qty,
        state.entry,
        state.leverage,
        state.margin,
        state.hint,
    )
    acc = state.acc
    per_settle = 1.0 / terms.factor
    brackets = state.brackets[i]
    mark = state.marks[i]
    fixed = isolated and terms.at_entry
    for j in range(lo, hi):
        a = U(owner[j])
        q, e, lev = qty[j], entry[j], leverage[j]
        m = margin[j] if isolated else 0.0
        basis = e if fixed else mark
        _, _, _, mm, _, cap = margins_of(q, basis, lev, brackets, terms, U(hint[j]))
        fee = fee_to_close(Slot(q, e, lev, m), cap, terms)
        pnl = unrealized_pnl_of(q, terms.contract_size, e, mark, terms.inverse)
        cross = 0.0
        if not isolated:
            cross = acc[a, U(COLLATERAL)] + acc[a, U(CROSS_EQUITY)] - acc[a, U(CROSS_MM)]
        buffer = liquidation_buffer_of(isolated, fixed, m, cross * per_settle, pnl, mm, fee)
        price[p] = liquidation_price_of(q, e, mark, buffer, brackets, terms, fixed)
        account[p] = owner[j]
        instrument[p] = i
        p += U(1)
    return p


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _liquidation_bucket(
    state: BookState,
    i: np.uint64,
    isolated: bool,
    bucket: np.uint64,
    out: tuple[Float, I32, I32],
    p: np.uint64,
) -> np.uint64:
    """Liquidation prices of one bucket's slots into ``out`` from row ``p``; returns the next
    row (plain terms compile to their own loop, as in :func:`_add_bucket`)."""
    lo = U(state.starts[bucket])
    hi = lo + U(state.counts[bucket])
    if hi == lo:
        return p
    terms = terms_of(state.terms, i, state.factor[i])
    if _is_plain(terms):
        row: np.uint64 = _liquidation_run(state, _plain(terms), i, isolated, lo, hi, out, p)
    else:
        row = _liquidation_run(state, terms, i, isolated, lo, hi, out, p)
    return row


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def liquidation_slots(
    state: BookState, out: tuple[Float, NDArray[np.int32], NDArray[np.int32]]
) -> None:
    """Closed-form liquidation price of every open position (NaN where none), each against its
    account's record, bucket by bucket: ``out`` is (price, account, instrument), one row per
    position."""
    size, instruments = state.block_size, state.instruments
    blocks = (state.acc.shape[0] + size - 1) // size
    p = U(0)
    for b in range(blocks):
        for i in range(instruments):
            bucket = U((b * instruments + i) * 2)
            p = _liquidation_bucket(state, U(i), False, bucket, out, p)
            p = _liquidation_bucket(state, U(i), True, bucket + U(1), out, p)


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def is_sorted(values: NDArray[np.int32]) -> bool:
    """Whether ``values`` never decrease."""
    ordered = True
    for p in range(1, values.shape[0]):
        if values[p] < values[p - 1]:
            ordered = False
            break
    return ordered


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def count_buckets(
    account: NDArray[np.int32],
    instrument: NDArray[np.int32],
    isolated: NDArray[np.bool_],
    order: Int,
    block_size: int,
    instruments: int,
    counts: Int,
    holders: Int,
) -> int:
    """Add each position (visited in ``order``, or as given if it is empty, account by
    account) to its bucket's count and its instrument's holders. Returns the row of the first
    second position of an account in one instrument, or -1."""
    last = np.full(instruments, -1, dtype=np.int64)
    for r in range(account.shape[0]):
        p = order[r] if order.shape[0] else r
        a, i = account[p], instrument[p]
        if last[i] == a:
            return p
        last[i] = a
        counts[(a // block_size * instruments + i) * 2 + isolated[p]] += 1
        holders[i] += 1
    return -1


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def place_positions(
    source: tuple[I32, I32, NDArray[np.bool_], Float, Float, Float, Float],
    order: Int,
    block_size: int,
    instruments: int,
    fill: Int,
    slots: tuple[I32, Float, Float, Float, Float],
) -> None:
    """Copy each position (visited in ``order``, or as given if it is empty) into the next
    free slot of its bucket (``fill``, from each bucket's start): a counting sort straight
    into the book's columns, with no full-size temporaries. ``source``: account, instrument,
    isolated, qty, entry, leverage, isolated margin; ``slots``: owner, qty, entry, leverage,
    margin."""
    account, instrument, isolated, qty, entry, leverage, margin = source
    owner, slot_qty, slot_entry, slot_leverage, slot_margin = slots
    for r in range(account.shape[0]):
        p = order[r] if order.shape[0] else r
        a = account[p]
        bucket = (a // block_size * instruments + instrument[p]) * 2 + isolated[p]
        j = fill[bucket]
        fill[bucket] = j + 1
        owner[j] = a
        slot_qty[j] = qty[p]
        slot_entry[j] = entry[p]
        slot_leverage[j] = leverage[p]
        slot_margin[j] = margin[p]
