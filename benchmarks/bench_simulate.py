"""Monte Carlo of liquidation: 10,000 paths x 1,000 steps of a 20-position cross account,
against two figures measured in the same run.

- ``simulate_s``: :func:`crossmargin.lab.simulate.simulate` in one mode, both passes (the
  liquidation pass and the survival pass), paths generated inside (jump-diffusion calibrated
  to the bundled history).
- ``paths_s``: generating the same paths alone (the floor: no margin at all).
- ``loop_s``: a plain per-path loop written here, scaled from a subsample to every path: for
  each path and step, numpy over the 20 positions computes PnL, notional, bracket and
  maintenance margin and stops at the first breach (no liquidation mechanics, no survival
  pass: less work than ``simulate`` does). Its first breach is checked against the
  liquidation pass's first liquidation on the same paths.

- ``dask_s``: the same run with its chunks of paths as tasks of two local Dask workers
  (threads of this process; the book kernels release the GIL), the distributed path of long
  runs (``--workers``/``--scheduler``); same figures as ``simulate_s``'s run.
- ``pm_s`` against ``cross_s``: on a smaller run (2,000 paths x 250 steps), the same account
  with a wallet of 30% of the gross notional under ``okx-pm`` portfolio margin and under
  cross margin, one mode each, both passes.

Usage: ``python benchmarks/bench_simulate.py [paths] [steps] [repeats]``. Each figure is the
median of ``repeats`` (default 3) timed runs after a small warm-up run (compiling and loading
the kernels).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from crossmargin.lab.distributed import ChunkPool
from crossmargin.lab.paths import bundled_model, growth_chunks
from crossmargin.lab.simulate import (
    LiquidationTerms,
    VenueAccount,
    chunk_pass,
    simulate,
    underlyings,
)
from crossmargin.lab.synthetic import synthetic_market
from crossmargin.model import Account, OptionData, Position
from crossmargin.rules import load_pm_rulebook

POSITIONS = 20
HORIZON = 7 / 365
SEED = 1
PM_PATHS = 2_000
PM_STEPS = 250


def account() -> VenueAccount:
    """20 positions on the synthetic Binance market, long and short, with a wallet of 8% of
    the gross notional."""
    market = synthetic_market(POSITIONS)
    rng = np.random.default_rng(3)
    positions = []
    gross = 0.0
    for k, (symbol, instrument) in enumerate(market.instruments.items()):
        mark = market.prices[symbol]
        notional = float(rng.uniform(5_000, 50_000))
        qty = notional / mark * (1 if k % 3 else -1)
        positions.append(Position(symbol, qty, mark * float(rng.uniform(0.97, 1.03))))
        gross += notional
        assert instrument.is_derivative
    wallet = 0.08 * gross
    return VenueAccount(
        "bench", Account("bench", {"USDT": wallet}, positions), market, LiquidationTerms("plain")
    )


def plain_loop(va: VenueAccount, growth: np.ndarray, column: dict[str, int]) -> np.ndarray:
    """First step each path's equity falls under its maintenance margin (-1: never)."""
    market = va.market
    positions = va.account.positions
    qty = np.array([p.qty for p in positions])
    entry = np.array([p.entry_price for p in positions])
    mark0 = np.array([market.prices[p.symbol] for p in positions])
    where = np.array([column[market.instruments[p.symbol].underlying] for p in positions])
    schedules = [market.instruments[p.symbol].margin for p in positions]
    floors = [np.array([t.min_notional for t in s.tiers]) for s in schedules if s is not None]
    rates = [np.array([t.maintenance_margin_rate for t in s.tiers]) for s in schedules if s]
    amounts = [np.array([t.maintenance_amount for t in s.tiers]) for s in schedules if s]
    wallet = va.account.balances["USDT"]
    out = np.full(len(growth), -1)
    for p in range(len(growth)):
        for t in range(growth.shape[1]):
            mark = mark0 * growth[p, t, where]
            notional = np.abs(qty) * mark
            mm = 0.0
            for j in range(len(qty)):
                b = int(np.searchsorted(floors[j], notional[j], side="right")) - 1
                mm += notional[j] * rates[j][b] - amounts[j][b]
            if wallet + float((qty * (mark - entry)).sum()) < mm:
                out[p] = t
                break
    return out


T = TypeVar("T")


def median_time(work: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall time of ``repeats`` calls of ``work`` (seconds) and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    paths = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    va = account()
    model, history = bundled_model("jump", underlyings([va]))
    column = {u: model.assets.index(s) for u, s in history.sources.items()}
    simulate([va], model, "jump", 64, 20, HORIZON, SEED, history.sources, ["given"])

    paths_s, _ = median_time(
        lambda: sum(1 for _ in growth_chunks(model, paths, steps, HORIZON, SEED)), repeats
    )
    simulate_s, run = median_time(
        lambda: simulate(
            [va], model, "jump", paths, steps, HORIZON, SEED, history.sources, ["given"]
        ),
        repeats,
    )
    result = run.result

    with ChunkPool(workers=2) as pool:
        dask_s, spread = median_time(
            lambda: simulate(
                [va],
                model,
                "jump",
                paths,
                steps,
                HORIZON,
                SEED,
                history.sources,
                ["given"],
                cluster=pool,
            ),
            repeats,
        )
    assert spread.result.to_dict() == result.to_dict()

    sub = 20
    growth = next(growth_chunks(model, paths, steps, HORIZON, SEED))[:sub]
    loop_sub_s, plain = median_time(lambda: plain_loop(va, growth, column), repeats)
    loop_s = loop_sub_s * paths / sub
    sample = np.array([steps - 1])
    _, _, first = chunk_pass([va], growth, column, sample, True, lambda n: None)
    assert (plain == first).all(), (plain, first)

    gross = sum(abs(p.qty) * va.market.prices[p.symbol] for p in va.account.positions)
    pm_va = replace(
        va,
        account=Account("bench", {"USDT": 0.3 * gross}, va.account.positions),
        pm=load_pm_rulebook("okx-pm"),
        options=OptionData(datetime.now(UTC)),
    )
    timed = {}
    for name in ("cross", "pm"):
        timed[name] = median_time(
            lambda name=name: simulate(
                [pm_va], model, "jump", PM_PATHS, PM_STEPS, HORIZON, SEED, history.sources, [name]
            ),
            repeats,
        )
    cross_s, pm_s = timed["cross"][0], timed["pm"][0]
    p_cross = timed["cross"][1].result.modes[0].liquidation_probability
    p_pm = timed["pm"][1].result.modes[0].liquidation_probability

    mode = result.modes[0]
    rate = paths * steps / simulate_s / 1e6
    lines = [
        f"{paths:,} paths x {steps:,} steps, {POSITIONS} positions, jump model, one mode; "
        f"medians of {repeats}",
        f"P(liquidation) {mode.liquidation_probability:.4f}, "
        f"ES 99% {mode.expected_shortfall_99:,.0f}",
        f"simulate_s {simulate_s:8.2f}  both passes, {rate:.2f} M path-steps/s",
        f"paths_s    {paths_s:8.2f}  the paths alone; simulate / paths {simulate_s / paths_s:.1f}x",
        f"loop_s     {loop_s:8.2f}  plain per-path loop to the first breach, from {sub} paths",
        f"loop / simulate {loop_s / simulate_s:.1f}x (first breach agrees on the {sub} paths)",
        f"dask_s     {dask_s:8.2f}  two local Dask workers; simulate / dask "
        f"{simulate_s / dask_s:.2f}x (same figures)",
        f"{PM_PATHS:,} paths x {PM_STEPS} steps, wallet 30% of gross: cross_s {cross_s:.2f}, "
        f"pm_s {pm_s:.2f} (okx-pm); pm / cross {pm_s / cross_s:.1f}x; "
        f"P(liquidation) cross {p_cross:.4f}, pm {p_pm:.4f}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
