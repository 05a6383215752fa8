"""Benchmarks of the risk book, each figure against a baseline measured in the same run.

Every timing is the median of repeated runs after one untimed warm-up run.

- ``floor_s``: one numpy pass over the position columns, as many bytes per position as the
  book keeps (account, quantity, entry, isolated margin, leverage summed; the isolated flag
  counted); ``floor_ratio`` is a full re-margin over that floor.
- ``tick_ms``: one price tick on a probe instrument held by 10,000 random accounts (fewer in
  books smaller than that), the same at every book size.
- ``pm_account_scans_per_s``: accounts x scenarios per second of the sparse portfolio scan.
- ``speedup_vs_single_account``: per-account time of ``evaluate`` (margins, liquidation prices
  and crash distance of one account), looped over a sample, against the book's per-account time
  for the same three figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from crossmargin.book.portfolio import exposure_matrix, uniform_risk_array, worst_losses
from crossmargin.book.riskbook import BookColumns, RiskBook
from crossmargin.health import evaluate
from crossmargin.lab.synthetic import synthetic_book, synthetic_market

__all__ = ["PROBE_HOLDERS", "run_bench"]

PROBE_HOLDERS = 10_000


def _median(action: Callable[[], object], repeat: int) -> float:
    """Median of ``repeat`` timed runs after one untimed warm-up run, in seconds."""
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


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


def run_bench(
    accounts: int = 100_000, seed: int = 0, instruments: int = 50, sample: int = 100
) -> dict[str, Any]:
    """Build a synthetic book of ``accounts`` accounts and time it; returns the figures."""
    market = synthetic_market(instruments + 1)
    params, columns = synthetic_book(market, accounts, seed, mean_positions=10.0, used=instruments)
    columns = _with_probe(columns, instruments, float(params.mark[instruments]), seed)
    start = time.perf_counter()
    book = RiskBook(params, columns)
    build_s = time.perf_counter() - start
    live = book.columns()
    fields = (live.account, live.qty, live.entry, live.isolated_margin, live.leverage)
    floor_s = _median(lambda: ([f.sum() for f in fields], np.count_nonzero(live.isolated)), 5)
    remargin_s = _median(book.remargin, 3)

    symbol, mark = params.symbols[instruments], float(params.mark[instruments])
    moves = iter(np.tile([1.0005, 0.9995], 100).tolist())
    tick_s = _median(lambda: book.apply_prices({symbol: mark * next(moves)}), 99)
    book.apply_prices({symbol: mark})

    exposure = exposure_matrix(live, len(params.symbols))
    risk = uniform_risk_array(params, np.linspace(-0.3, 0.3, 64))
    pm_s = _median(lambda: worst_losses(exposure, risk), 3)

    rng = np.random.default_rng(seed)
    rows = rng.choice(accounts, size=min(sample, accounts), replace=False)
    sample_accounts = columns.to_accounts(params, rows)
    evaluate_s = _median(lambda: [evaluate(a, market) for a in sample_accounts], 3) / len(rows)
    liquidation_s = _median(book.liquidation_prices, 3)
    crash_rows = rng.choice(
        accounts, size=min(max(20 * sample, accounts // 20), accounts), replace=False
    )
    crash_s = _median(lambda: book.crash_distances(crash_rows), 3) / len(crash_rows)
    book_s = (remargin_s + liquidation_s) / accounts + crash_s
    return {
        "accounts": accounts,
        "positions": book.positions,
        "instruments": len(params.symbols),
        "build_s": build_s,
        "floor_s": floor_s,
        "remargin_s": remargin_s,
        "floor_ratio": remargin_s / floor_s,
        "liquidation_prices_s": liquidation_s,
        "tick_ms": 1e3 * tick_s,
        "tick_holders": book.holders(symbol),
        "pm_scenarios": risk.shape[1],
        "pm_s": pm_s,
        "pm_account_scans_per_s": accounts * risk.shape[1] / pm_s,
        "evaluate_us_per_account": 1e6 * evaluate_s,
        "book_us_per_account": 1e6 * book_s,
        "crash_us_per_account": 1e6 * crash_s,
        "speedup_vs_single_account": evaluate_s / book_s,
        "bytes_per_position": book.nbytes / book.positions,
    }
