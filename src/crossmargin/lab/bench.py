"""Benchmarks of the risk book, each figure set against a baseline measured in the same run.

Every warm timing is the median of repeated runs after untimed warm-up runs; the cold start
(the first build and the first call of each kernel in a process, which load or compile the
compiled code) is reported apart in ``cold_start_s``.

- ``floor_s``: one fused compiled pass over the bytes a full re-margin reads and writes: every
  open position's account, quantity, entry, leverage, isolated margin and bracket hint, bucket
  by bucket and account block by account block as the re-margin walks them, added into the
  account records, which are zeroed first and given a status after (:func:`fused_floor`).
  ``remargin_vs_floor`` is a full re-margin over that floor.
- ``liquidation_positions_per_s``: liquidation prices of the whole book per second, one core.
- ``tick_ms``: one price tick on a probe instrument held by 10,000 random accounts (fewer in
  books smaller than that), the same at every book size.
- ``pm_account_scans_per_s``: accounts x scenarios per second of the sparse portfolio scan.
- ``evaluate_10_positions_us``: one ``evaluate`` (margins, liquidation and bankruptcy prices,
  crash distance at ``CRASH_POINTS`` and ``CRASH_STEP``) of a 10-position account.
- ``evaluate_vs_book``: ``evaluate`` looped over a sample of accounts against the book's
  per-account time for margins, liquidation prices and crash distance, both at ``evaluate``'s
  crash-distance resolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from crossmargin.book.kernels import BookState
from crossmargin.book.portfolio import exposure_matrix, uniform_risk_array, worst_losses
from crossmargin.book.riskbook import BookColumns, RiskBook
from crossmargin.health import CRASH_POINTS, CRASH_STEP, evaluate
from crossmargin.lab.synthetic import synthetic_book, synthetic_market
from crossmargin.maths.risk import FIELDS

U = np.uint64

__all__ = ["FIGURES", "PROBE_HOLDERS", "fused_floor", "median_time", "run_bench"]

PROBE_HOLDERS = 10_000

FIGURES = {
    "cold_start_s": "first build and kernel calls in this process (load or compile)",
    "build_s": "building the book from its columns (warm kernels)",
    "floor_s": "one fused compiled pass over the bytes a re-margin reads and writes",
    "remargin_s": "full re-margin of every account",
    "remargin_vs_floor": "full re-margin / fused floor pass",
    "remargin_ns_per_position": "full re-margin per open position",
    "liquidation_prices_s": "liquidation price of every position",
    "liquidation_positions_per_s": "positions / liquidation-price time (one core)",
    "tick_ms": "one tick of the probe instrument",
    "tick_holders": "positions the tick re-margins",
    "pm_s": "portfolio scan of every account",
    "pm_account_scans_per_s": "accounts x scenarios / portfolio-scan time",
    "evaluate_10_positions_us": "one evaluate() of a 10-position account (all figures)",
    "evaluate_us_per_account": "evaluate() per account, looped over a sample",
    "book_us_per_account": "book per account: re-margin + liquidation prices + crash distance",
    "crash_us_per_account": "book crash distance per account, at evaluate's resolution",
    "evaluate_vs_book": "evaluate() per account / book per account (same crash resolution)",
    "bytes_per_position": "book bytes / open positions",
}
"""What each timed figure of :func:`run_bench` measures (ratios: what over what)."""


def median_time(action: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median of ``repeat`` timed runs after ``warmup`` untimed runs, in seconds."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@njit(cache=True, nogil=True, fastmath={"reassoc"}, error_model="numpy")  # type: ignore[untyped-decorator]
def fused_floor(state: BookState) -> float:
    """Read every open position's bytes once and write every account record once, account
    block by account block and bucket by bucket as a full re-margin walks them, with no margin
    arithmetic and no scatter: the memory floor of a re-margin. Returns the sum read (so the
    reads are not optimised away)."""
    acc, status = state.acc, state.status
    owner, qty, entry, leverage, margin, hint = (
        state.owner,
        state.qty,
        state.entry,
        state.leverage,
        state.margin,
        state.hint,
    )
    n, size, per_block = acc.shape[0], state.block_size, 2 * state.instruments
    total = 0.0
    for b in range((n + size - 1) // size):
        seen = 0.0
        for bucket in range(b * per_block, (b + 1) * per_block):
            lo = U(state.starts[bucket])
            for j in range(lo, lo + U(state.counts[bucket])):
                seen += qty[j] + entry[j] + leverage[j] + margin[j] + owner[j] + hint[j]
        for a in range(U(b * size), U(min(n, (b + 1) * size))):
            for f in range(1, FIELDS):
                acc[a, U(f)] = seen
            status[a] = 0
        total += seen
    return total


def _with_probe(columns: BookColumns, instrument: int, mark: float, seed: int) -> BookColumns:
    """``columns`` plus positions in ``instrument`` for up to 10,000 random accounts: the
    tick probe, held by the same number of accounts whatever the book's size."""
    rng = np.random.default_rng(seed + 1)
    n = len(columns.account_ids)
    holders = np.sort(rng.choice(n, size=min(PROBE_HOLDERS, n), replace=False))
    k = len(holders)
    notional = rng.lognormal(np.log(5_000.0), 1.0, k)
    return BookColumns(
        columns.account_ids,
        columns.balances,
        np.concatenate([columns.account, holders.astype(np.int32)]),
        np.concatenate([columns.instrument, np.full(k, instrument, dtype=np.int32)]),
        np.concatenate([columns.qty, np.where(rng.random(k) < 0.5, 1, -1) * notional / mark]),
        np.concatenate([columns.entry, np.full(k, mark)]),
        np.concatenate([columns.isolated, np.zeros(k, dtype=bool)]),
        np.concatenate([columns.isolated_margin, np.zeros(k)]),
        np.concatenate([columns.leverage, np.full(k, np.nan)]),
    )


def _cold_start(instruments: int) -> float:
    """Seconds of the first build, re-margin, liquidation prices, crash distances and
    ``evaluate`` of a small book: loading (or compiling) the compiled code."""
    start = time.perf_counter()
    market = synthetic_market(instruments)
    params, columns = synthetic_book(market, 100, 0, mean_positions=10.0)
    book = RiskBook(params, columns)
    book.liquidation_prices()
    book.crash_distances()
    fused_floor(book._state())
    evaluate(columns.to_accounts(params, [0])[0], market)
    return time.perf_counter() - start


def run_bench(
    accounts: int = 100_000, seed: int = 0, instruments: int = 50, sample: int = 100
) -> dict[str, Any]:
    """Build a synthetic book of ``accounts`` accounts and time it; returns the figures."""
    cold_s = _cold_start(instruments + 1)
    market = synthetic_market(instruments + 1)
    params, columns = synthetic_book(market, accounts, seed, mean_positions=10.0, used=instruments)
    columns = _with_probe(columns, instruments, float(params.mark[instruments]), seed)
    start = time.perf_counter()
    book = RiskBook(params, columns)
    build_s = time.perf_counter() - start
    state = book._state()
    floor_s = median_time(lambda: fused_floor(state), 5, warmup=2)
    book.remargin()
    remargin_s = median_time(book.remargin, 5, warmup=2)

    symbol, mark = params.symbols[instruments], float(params.mark[instruments])
    moves = iter(np.tile([1.0005, 0.9995], 110).tolist())
    tick_s = median_time(lambda: book.apply_prices({symbol: mark * next(moves)}), 199, 21)
    book.apply_prices({symbol: mark})

    exposure = exposure_matrix(book.columns(), len(params.symbols))
    risk = uniform_risk_array(params, np.linspace(-0.3, 0.3, 64))
    pm_s = median_time(lambda: worst_losses(exposure, risk), 3)

    rng = np.random.default_rng(seed)
    rows = rng.choice(accounts, size=min(sample, accounts), replace=False)
    sample_accounts = columns.to_accounts(params, rows)
    evaluate_s = median_time(lambda: [evaluate(a, market) for a in sample_accounts], 5)
    evaluate_s /= len(rows)
    held = np.bincount(columns.account, minlength=accounts)
    ten = np.flatnonzero(held == 10)[:1]
    evaluate_10_s = np.nan
    if ten.size:
        one = columns.to_accounts(params, ten)[0]
        evaluate_10_s = median_time(lambda: evaluate(one, market), 201, warmup=20)
    liquidation_s = median_time(book.liquidation_prices, 5, warmup=2)
    crash_rows = rng.choice(
        accounts, size=min(max(20 * sample, accounts // 20), accounts), replace=False
    )
    crash_s = median_time(
        lambda: book.crash_distances(crash_rows, CRASH_POINTS, CRASH_STEP), 3
    ) / len(crash_rows)
    book_s = (remargin_s + liquidation_s) / accounts + crash_s
    return {
        "accounts": accounts,
        "positions": book.positions,
        "instruments": len(params.symbols),
        "cold_start_s": cold_s,
        "build_s": build_s,
        "floor_s": floor_s,
        "remargin_s": remargin_s,
        "remargin_vs_floor": remargin_s / floor_s,
        "remargin_ns_per_position": 1e9 * remargin_s / book.positions,
        "liquidation_prices_s": liquidation_s,
        "liquidation_positions_per_s": book.positions / liquidation_s,
        "tick_ms": 1e3 * tick_s,
        "tick_holders": book.holders(symbol),
        "pm_scenarios": risk.shape[1],
        "pm_s": pm_s,
        "pm_account_scans_per_s": accounts * risk.shape[1] / pm_s,
        "evaluate_10_positions_us": 1e6 * evaluate_10_s,
        "evaluate_us_per_account": 1e6 * evaluate_s,
        "book_us_per_account": 1e6 * book_s,
        "crash_us_per_account": 1e6 * crash_s,
        "crash_points": CRASH_POINTS,
        "crash_step": CRASH_STEP,
        "evaluate_vs_book": evaluate_s / book_s,
        "bytes_per_position": book.nbytes / book.positions,
    }
