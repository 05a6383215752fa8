"""The account-risk kernel: what each position adds to its account's risk, and how an account's
risk is summed. Every caller (``evaluate`` for one account, ``RiskBook`` for millions and
incrementally, the ledger through ``RiskBook``) goes through these functions.

An account's risk is a small summable value, one record of ``FIELDS`` float64 (one cache line)
in the account currency, in the spirit of dYdX's ``Risk{NC, IMR, MMR}``:

    COLLATERAL                          collateral value of the balances (after haircuts)
    CROSS_EQUITY, CROSS_IM, CROSS_MM    sums over cross positions of PnL, IM and MM
    ISO_EQUITY, ISO_IM, ISO_MM          sums over isolated positions of (margin + PnL), IM, MM
    ISO_BAD                             isolated positions per non-healthy status, counted as
                                        ``calls + 2**16 * liquidatable + 2**32 * bankrupt``

Each term is a sum of one contribution per position (:func:`position_risk`), so a record moves
by differences when one position or one price changes. What is read off a record:

    cross equity       = COLLATERAL + CROSS_EQUITY
    equity             = cross equity + ISO_EQUITY
    initial margin     = CROSS_IM + ISO_IM;   maintenance margin = CROSS_MM + ISO_MM
    available balance  = max(cross equity - CROSS_IM, 0)
    status             = worst of the cross account's and each isolated position's

Under a uniform move ``m`` every non-stable price (marks and asset prices) is multiplied by
``1 + m``; the margin surplus of an account is the smaller of cross equity - CROSS_MM and each
isolated position's margin + PnL - MM. The crash distance is where that surplus first turns
negative, down and up (:func:`crash_moves`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from crossmargin.maths.bankruptcy import bankruptcy_price_of, close_fee_of
from crossmargin.maths.liquidation import liquidation_price_of
from crossmargin.maths.pnl import unrealized_pnl_of
from crossmargin.maths.status import margin_ratio_of, status_of
from crossmargin.maths.tiers import MarginArrays, Terms, margins_of

__all__ = [
    "FIELDS",
    "INSTRUMENT",
    "POSITION",
    "ROW_FIELDS",
    "Holdings",
    "Slot",
    "account_risk",
    "available_of",
    "bankruptcy_prices",
    "crash_moves",
    "effective_leverage_of",
    "fee_to_close",
    "holdings_analysis",
    "holdings_risk",
    "instrument_terms",
    "liquidation_buffer_of",
    "liquidation_prices",
    "position_risk",
    "record_figures",
    "record_status",
    "record_statuses",
    "status_weight",
    "terms_of",
]

Float = NDArray[np.float64]
Int = NDArray[np.intp]

COLLATERAL, CROSS_EQUITY, CROSS_IM, CROSS_MM, ISO_EQUITY, ISO_IM, ISO_MM, ISO_BAD = range(8)
FIELDS = 8
NOTIONAL, PNL, EQUITY, IM, MM, BRACKET, CAP, CODE = range(8)
ROW_FIELDS = 8
"""Per-position figures :func:`account_risk` can write: notional, PnL, equity contribution
(PnL, plus the margin if isolated), IM and MM in the account currency; bracket, bracket max
leverage and isolated status code (0 for cross)."""

INSTRUMENT = np.dtype(
    [
        ("contract_size", np.float64),
        ("initial_rate", np.float64),
        ("initial_rate_per_size", np.float64),
        ("maintenance_rate_per_size", np.float64),
        ("settle", np.int64),
        ("close_fee_rate", np.float64),
        ("inverse", np.bool_),
        ("at_entry", np.bool_),
    ],
    align=True,
)
"""One derivative instrument's scalar terms (its brackets sit in a (4, K) array beside it);
``settle`` indexes the asset columns; ``close_fee_rate`` prices the fee to close (Bybit)."""

POSITION = np.dtype(
    [
        ("qty", np.float64),
        ("entry", np.float64),
        ("leverage", np.float64),
        ("margin", np.float64),
        ("instrument", np.int64),
        ("isolated", np.bool_),
    ],
    align=True,
)
"""One position: signed contracts, entry price, chosen leverage (NaN: the bracket maximum),
isolated margin (settle asset, 0 for cross), instrument row and mode."""

_BAD_CALL, _BAD_LIQUIDATABLE, _BAD_BANKRUPT = 1.0, 65536.0, 4294967296.0


def instrument_terms(
    contract_size: Float, inverse: NDArray[np.bool_], settle: Int, schedule: MarginArrays
) -> NDArray[np.void]:
    """One :data:`INSTRUMENT` row per instrument (``schedule`` has one row each)."""
    terms = np.zeros(len(contract_size), dtype=INSTRUMENT)
    terms["contract_size"] = contract_size
    terms["initial_rate"] = schedule.initial_rate
    terms["initial_rate_per_size"] = schedule.initial_rate_per_size
    terms["maintenance_rate_per_size"] = schedule.maintenance_rate_per_size
    terms["settle"] = settle
    terms["inverse"] = inverse
    terms["at_entry"] = schedule.isolated_at_entry
    terms["close_fee_rate"] = schedule.close_fee_rate
    return terms


class Slot(NamedTuple):
    """One position's own numbers as the compiled loops pass them."""

    qty: float
    entry: float
    leverage: float
    margin: float


class Holdings(NamedTuple):
    """Accounts' positions, grouped by account, with the market that values them.

    Account ``a`` holds ``positions[starts[a]:starts[a + 1]]``. Per instrument row: ``terms``
    (:data:`INSTRUMENT`), ``brackets`` (rows, 4, K) and ``marks`` (quote currency). Per asset
    column: ``price`` (account currency per unit) and ``stable`` (does not move with the
    market); ``units`` (accounts, assets) holds each account's collateral units after
    haircuts. ``currency_stable``: whether the account currency itself is stable.
    """

    starts: Int
    positions: NDArray[np.void]
    terms: NDArray[np.void]
    brackets: Float
    marks: Float
    units: Float
    price: Float
    stable: NDArray[np.bool_]
    currency_stable: bool
    margin_call_ratio: float


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def terms_of(terms: NDArray[np.void], i: int, factor: float) -> Terms:
    """Instrument ``i``'s terms with ``factor`` (settle asset -> account currency)."""
    t = terms[i]
    return Terms(
        t.contract_size,
        t.inverse,
        t.initial_rate,
        t.initial_rate_per_size,
        t.maintenance_rate_per_size,
        t.at_entry,
        factor,
        t.close_fee_rate,
    )


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def position_risk(
    slot: Slot,
    mark: float,
    isolated: bool,
    brackets: Float,
    terms: Terms,
    guess: np.uint64,
    margin_call_ratio: float,
) -> tuple[float, float, float, int, np.uint64, float, float]:
    """What one position adds to its account at ``mark``: equity (PnL, plus the isolated margin
    if isolated), IM and MM in the account currency, its own status code if isolated (else 0),
    its bracket (searched from ``guess``); then its notional (account currency) and the
    bracket's max leverage. Isolated positions of an ``at_entry`` schedule take IM and MM at
    the entry price; a ``close_fee_rate`` adds the fee to close to both (:func:`fee_to_close`)."""
    basis = slot.entry if isolated and terms.at_entry else mark
    n, _, im, mm, k, cap = margins_of(slot.qty, basis, slot.leverage, brackets, terms, guess)
    fee = fee_to_close(slot, cap, terms)
    im += fee
    mm += fee
    pnl = unrealized_pnl_of(slot.qty, terms.contract_size, slot.entry, mark, terms.inverse)
    code = 0
    if isolated:
        pnl += slot.margin
        code = status_of(pnl, mm, margin_call_ratio)
    f = terms.factor
    return f * pnl, f * im, f * mm, code, k, f * n, cap


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def fee_to_close(slot: Slot, cap: float, terms: Terms) -> float:
    """The position's estimated fee to close (settle asset), at the chosen leverage or the
    bracket maximum ``cap``; 0 without a ``close_fee_rate``."""
    leverage = cap if np.isnan(slot.leverage) else slot.leverage
    fee: float = close_fee_of(
        slot.qty, terms.contract_size, slot.entry, leverage, terms.inverse, terms.close_fee_rate
    )
    return fee


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def status_weight(code: int) -> float:
    """What an isolated position in status ``code`` adds to its account's ``ISO_BAD`` count."""
    if code == 0:
        return 0.0
    if code == 1:
        return _BAD_CALL
    return _BAD_LIQUIDATABLE if code == 2 else _BAD_BANKRUPT


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def record_status(acc: Float, a: np.uint64, margin_call_ratio: float) -> int:
    """Account ``a``'s status: the worse of the cross account's and its worst isolated
    position's. (A row view per account would cost reference counting in the loops.)"""
    bad = acc[a, np.uint64(ISO_BAD)]
    worst = 3 if bad >= _BAD_BANKRUPT else 2 if bad >= _BAD_LIQUIDATABLE else 1 if bad > 0 else 0
    cross = acc[a, np.uint64(COLLATERAL)] + acc[a, np.uint64(CROSS_EQUITY)]
    code: int = status_of(cross, acc[a, np.uint64(CROSS_MM)], margin_call_ratio)
    return max(code, worst)


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def record_statuses(acc: Float, margin_call_ratio: float, out: NDArray[np.int8]) -> None:
    """The status of every account record (see :func:`record_status`) into ``out``."""
    for r in range(acc.shape[0]):
        out[r] = record_status(acc, np.uint64(r), margin_call_ratio)


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def available_of(cross_equity: float, cross_initial_margin: float) -> float:
    """Available balance: cross equity above the cross initial margin, floored at 0 (what may
    still open positions or leave the account)."""
    return max(cross_equity - cross_initial_margin, 0.0)


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def effective_leverage_of(gross_notional: float, equity: float) -> float:
    """Gross notional / equity; ``inf`` with positions and no positive equity, 0 without."""
    if equity > 0:
        return gross_notional / equity
    return np.inf if gross_notional > 0 else 0.0


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def liquidation_buffer_of(
    isolated: bool,
    fixed: bool,
    margin: float,
    cross_surplus: float,
    pnl: float,
    mm: float,
    fee: float,
) -> float:
    """The equity backing one position less every other requirement, settle asset: what the
    closed-form liquidation price solves ``buffer + PnL(p) - MM(p) = 0`` with; ``mm`` is the
    position's MM without its fee to close ``fee`` (a constant part of its MM).

    Isolated: its margin less its fee to close (and less its MM when fixed at entry). Cross: the
    account's cross surplus (cross equity - cross MM, in the settle asset) with this position's
    PnL and MM taken out; its fee stays in, as part of the cross MM.
    """
    if isolated:
        return margin - fee - mm if fixed else margin - fee
    return cross_surplus - pnl + mm


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def record_figures(acc: Float, out: Float) -> None:
    """Equity, IM, MM, margin ratio, available balance and cross equity of every account
    record, into the columns of ``out`` (6, accounts)."""
    for r in range(acc.shape[0]):
        a = np.uint64(r)
        cross = acc[a, np.uint64(COLLATERAL)] + acc[a, np.uint64(CROSS_EQUITY)]
        equity = cross + acc[a, np.uint64(ISO_EQUITY)]
        maintenance = acc[a, np.uint64(CROSS_MM)] + acc[a, np.uint64(ISO_MM)]
        out[np.uint64(0), a] = equity
        out[np.uint64(1), a] = acc[a, np.uint64(CROSS_IM)] + acc[a, np.uint64(ISO_IM)]
        out[np.uint64(2), a] = maintenance
        out[np.uint64(3), a] = margin_ratio_of(equity, maintenance)
        out[np.uint64(4), a] = available_of(cross, acc[a, np.uint64(CROSS_IM)])
        out[np.uint64(5), a] = cross


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _moved_price(h: Holdings, k: int, move: float) -> float:
    """Asset ``k``'s account-currency price when non-stable prices move by ``1 + move``."""
    scale = 1.0 if h.currency_stable else 1.0 + move
    price: float = h.price[k] * (1.0 if h.stable[k] else 1.0 + move) / scale
    return price


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _sums(h: Holdings, a: int, move: float, rows: Float) -> tuple[float, ...]:
    """Account ``a``'s record fields at prices moved by ``move`` and its worst isolated
    surplus; with ``rows`` non-empty, each position's figures into its row."""
    collateral = 0.0
    for k in range(h.price.shape[0]):
        collateral += h.units[a, k] * _moved_price(h, k, move)
    eq_c = im_c = mm_c = eq_i = im_i = mm_i = bad = 0.0
    worst = np.inf
    write = rows.shape[0] > 0
    first = h.starts[a]
    for p in range(first, h.starts[a + 1]):
        pos = h.positions[p]
        i = pos.instrument
        terms = terms_of(h.terms, i, _moved_price(h, h.terms[i].settle, move))
        slot = Slot(pos.qty, pos.entry, pos.leverage, pos.margin)
        equity, im, mm, code, k, notional, cap = position_risk(
            slot,
            h.marks[i] * (1.0 + move),
            pos.isolated,
            h.brackets[i],
            terms,
            np.uint64(0),
            h.margin_call_ratio,
        )
        if pos.isolated:
            eq_i += equity
            im_i += im
            mm_i += mm
            bad += status_weight(code)
            worst = min(worst, equity - mm)
        else:
            eq_c += equity
            im_c += im
            mm_c += mm
        if write:
            r = p - first
            rows[r, NOTIONAL] = notional
            rows[r, PNL] = equity - terms.factor * pos.margin if pos.isolated else equity
            rows[r, EQUITY] = equity
            rows[r, IM] = im
            rows[r, MM] = mm
            rows[r, BRACKET] = k
            rows[r, CAP] = cap
            rows[r, CODE] = code
    return collateral, eq_c, im_c, mm_c, eq_i, im_i, mm_i, bad, worst


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def account_risk(h: Holdings, a: int, move: float, record: Float, rows: Float) -> float:
    """Sum account ``a``'s risk at prices moved by ``move`` into ``record`` (``FIELDS``); with
    ``rows`` of shape (its positions, ``ROW_FIELDS``), each position's figures too. Returns
    its smallest isolated surplus (margin + PnL - MM, account currency; inf if none)."""
    sums = _sums(h, a, move, rows)
    for f in range(FIELDS):
        record[f] = sums[f]
    worst: float = sums[FIELDS]
    return worst


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def holdings_risk(h: Holdings, records: Float, rows: Float) -> None:
    """Every account of ``h`` at the current prices: its record into ``records[a]`` and each
    position's figures into ``rows`` (positions, ``ROW_FIELDS``)."""
    for a in range(h.starts.shape[0] - 1):
        account_risk(h, a, 0.0, records[a], rows[h.starts[a] : h.starts[a + 1]])


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def _surplus(h: Holdings, a: int, move: float) -> float:
    """Account ``a``'s smallest margin surplus under ``move``: cross equity - cross MM, or an
    isolated position's margin + PnL - MM if smaller."""
    s = _sums(h, a, move, np.empty((0, ROW_FIELDS)))
    surplus: float = min(s[COLLATERAL] + s[CROSS_EQUITY] - s[CROSS_MM], s[FIELDS])
    return surplus


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def _illinois(h: Holdings, a: int, lo: float, hi: float, f_lo: float, f_hi: float) -> float:
    """Where the surplus turns negative in [lo, hi] (f_lo >= 0 > f_hi), to 1e-14 of bracket.

    Illinois (modified regula falsi) steps, halving instead whenever a step did not halve the
    bracket (zero plateaus, kinks), so it converges at least half as fast as bisection.
    Returns the bracket's middle.
    """
    x0, x1, f0, f1 = lo, hi, f_lo, f_hi
    side = 0
    previous = 2.0 * abs(x1 - x0)
    for _ in range(200):
        width = abs(x1 - x0)
        if width <= 1e-14:
            break
        c = x1 - f1 * (x1 - x0) / (f1 - f0) if f1 != f0 else 0.5 * (x0 + x1)
        if not ((c - x0) * (c - x1) < 0 and width <= 0.5 * previous):
            c = 0.5 * (x0 + x1)
        previous = width
        fc = _surplus(h, a, c)
        if fc < 0:
            if side == -1:
                f0 *= 0.5
            x1, f1, side = c, fc, -1
        else:
            if side == 1:
                f1 *= 0.5
            x0, f0, side = c, fc, 1
    return 0.5 * (x0 + x1)


@njit(cache=True, error_model="numpy")  # type: ignore[untyped-decorator]
def _first_negative(h: Holdings, a: int, grid: Float, step: int, values: Float) -> float:
    """Magnitude of the first move along ``grid`` (from 0 outwards) where account ``a``'s
    surplus turns negative, refined; NaN if none, 0 if negative at once.

    Every ``step``-th grid point is scanned first (up to the first negative one, ``values``
    holds what was seen). Where those values are concave in the move (the usual case: MM is
    convex in notional) the first negative fine point lies in the coarse interval before the
    first negative coarse point, and only that interval is scanned; otherwise the whole fine
    grid is. A dip below zero narrower than one fine grid step can be missed.
    """
    size = grid.shape[0]
    n_coarse = (size - 1 + step - 1) // step + 1
    jc = -1
    for j in range(n_coarse):
        g = min(j * step, size - 1)
        values[j] = _surplus(h, a, grid[g])
        if values[j] < 0:
            jc = j
            break
    if jc == 0:
        return 0.0
    seen = n_coarse if jc < 0 else jc + 1
    direction = 1.0 if grid[size - 1] > grid[0] else -1.0
    steepest = 0.0
    for t in range(seen - 1):
        g0, g1 = min(t * step, size - 1), min((t + 1) * step, size - 1)
        steepest = max(steepest, abs((values[t + 1] - values[t]) / (grid[g1] - grid[g0])))
    concave = True
    for t in range(seen - 2):
        g0, g1 = min(t * step, size - 1), min((t + 1) * step, size - 1)
        g2 = min((t + 2) * step, size - 1)
        s0 = (values[t + 1] - values[t]) / (grid[g1] - grid[g0])
        s1 = (values[t + 2] - values[t + 1]) / (grid[g2] - grid[g1])
        if (s1 - s0) * direction > 1e-7 * steepest:
            concave = False
            break
    if concave and jc < 0:
        return np.nan
    if concave:
        lo_index = (jc - 1) * step
        f_lo = values[jc - 1]
        hi_index = min(jc * step, size - 1)
    else:
        lo_index, f_lo, hi_index = 0, values[0], size - 1
    for g in range(lo_index + 1, hi_index + 1):
        f = _surplus(h, a, grid[g])
        if f < 0:
            root: float = _illinois(h, a, grid[g - 1], grid[g], f_lo, f)
            return abs(root)
        f_lo = f
    return np.nan


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def crash_moves(h: Holdings, accounts: Int, down: Float, up: Float, step: int, out: Float) -> None:
    """Crash distance of each account in ``accounts``: the magnitudes of the smallest uniform
    moves along the ``down`` and ``up`` grids (from 0 outwards) that leave its surplus < 0,
    into ``out`` (accounts, 2); NaN where none in range, 0 if already liquidatable."""
    values = np.empty(max(down.shape[0], up.shape[0]))
    for r in range(accounts.shape[0]):
        a = accounts[r]
        out[r, 0] = _first_negative(h, a, down, step, values)
        out[r, 1] = _first_negative(h, a, up, step, values)


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def liquidation_prices(h: Holdings, records: Float, out: Float) -> None:
    """Closed-form liquidation price of every position (NaN where none), each against its
    account's record at the current prices (``records[a]``, as :func:`account_risk` sums it)."""
    for a in range(h.starts.shape[0] - 1):
        cross = records[a, COLLATERAL] + records[a, CROSS_EQUITY] - records[a, CROSS_MM]
        for p in range(h.starts[a], h.starts[a + 1]):
            pos = h.positions[p]
            i = pos.instrument
            factor = h.price[h.terms[i].settle]
            terms = terms_of(h.terms, i, factor)
            mark = h.marks[i]
            fixed = pos.isolated and terms.at_entry
            _, _, _, mm, _, cap = margins_of(
                pos.qty,
                pos.entry if fixed else mark,
                pos.leverage,
                h.brackets[i],
                terms,
                np.uint64(0),
            )
            fee = fee_to_close(Slot(pos.qty, pos.entry, pos.leverage, pos.margin), cap, terms)
            pnl = unrealized_pnl_of(pos.qty, terms.contract_size, pos.entry, mark, terms.inverse)
            buffer = liquidation_buffer_of(
                pos.isolated, fixed, pos.margin, cross / factor, pnl, mm, fee
            )
            out[p] = liquidation_price_of(
                pos.qty, pos.entry, mark, buffer, h.brackets[i], terms, fixed
            )


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def bankruptcy_prices(h: Holdings, records: Float, out: Float) -> None:
    """Bankruptcy price of every position (NaN where none): the mark at which the equity
    backing it, less its fee to close there, is zero with everything else at the current
    prices (isolated: its margin + PnL; cross: its account's cross equity, ``records[a]``)."""
    for a in range(h.starts.shape[0] - 1):
        cross = records[a, COLLATERAL] + records[a, CROSS_EQUITY]
        for p in range(h.starts[a], h.starts[a + 1]):
            pos = h.positions[p]
            i = pos.instrument
            t = h.terms[i]
            pnl = unrealized_pnl_of(pos.qty, t.contract_size, pos.entry, h.marks[i], t.inverse)
            buffer = pos.margin if pos.isolated else cross / h.price[t.settle] - pnl
            out[p] = bankruptcy_price_of(
                pos.qty, t.contract_size, pos.entry, t.inverse, buffer, t.close_fee_rate
            )


@njit(cache=True, nogil=True, error_model="numpy")  # type: ignore[untyped-decorator]
def holdings_analysis(
    h: Holdings, down: Float, up: Float, step: int
) -> tuple[Float, Float, Float, Float, Float, Float, NDArray[np.int8], Float]:
    """Everything the kernels give for every account of ``h`` in one call: records, position
    rows (:func:`holdings_risk`), liquidation and bankruptcy prices, crash moves along
    ``down``/``up`` (:func:`crash_moves`), record figures (accounts, 6; :func:`record_figures`
    transposed), statuses (:func:`record_statuses`) and effective leverage (gross notional
    summed position by position over equity)."""
    n, p = h.starts.shape[0] - 1, h.positions.shape[0]
    records = np.empty((n, FIELDS))
    rows = np.empty((p, ROW_FIELDS))
    holdings_risk(h, records, rows)
    liquidation = np.empty(p)
    liquidation_prices(h, records, liquidation)
    bankruptcy = np.empty(p)
    bankruptcy_prices(h, records, bankruptcy)
    crash = np.empty((n, 2))
    crash_moves(h, np.arange(n), down, up, step, crash)
    figures = np.empty((6, n))
    record_figures(records, figures)
    worst = np.empty(n, dtype=np.int8)
    record_statuses(records, h.margin_call_ratio, worst)
    leverage = np.empty(n)
    for a in range(n):
        gross = 0.0
        for q in range(h.starts[a], h.starts[a + 1]):
            gross += rows[q, NOTIONAL]
        leverage[a] = effective_leverage_of(gross, figures[0, a])
    return records, rows, liquidation, bankruptcy, crash, figures.T.copy(), worst, leverage
