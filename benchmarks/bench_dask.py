"""Dask stress scaling: 1M and 5M accounts x 12 scenarios on 1 and 2 workers, threads and
worker processes, against the same stress in one process without Dask, all in one run.

Each worker builds its own shard from the synthetic recipe (nothing but the recipe travels);
a stress sends only the scenario definitions. Figures are medians of 3 runs after a warm-up
run; the joined table is checked against the single-process one.

- ``vs 1 process``: single-process stress time / Dask stress time (above 1: faster);
- ``efficiency``: per-worker efficiency, 1-worker time / (2 x 2-worker time) (1.0: linear).

    .venv/bin/python benchmarks/bench_dask.py [--accounts 1000000 5000000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from crossmargin.book.riskbook import RiskBook
from crossmargin.lab.bench import median_time
from crossmargin.lab.distributed import (
    HISTORICAL,
    DistributedBook,
    Scenario,
    StressResult,
    stress_book,
)
from crossmargin.lab.synthetic import synthetic_market, synthetic_recipe

MOVES = (-0.5, -0.3, -0.2, -0.1, -0.05, 0.05, 0.1, 0.2)
SCENARIOS = [Scenario.uniform(m) for m in MOVES] + [Scenario.historical(d) for d in HISTORICAL]


def check(got: StressResult, expected: StressResult) -> None:
    np.testing.assert_allclose(got.worst_loss, expected.worst_loss, rtol=1e-12)
    assert np.array_equal(got.liquidated, expected.liquidated)


def timed(stress: Callable[[], StressResult]) -> tuple[float, StressResult]:
    """Median seconds of ``stress`` (3 runs after a warm-up) and its last result."""
    results: list[StressResult] = []
    seconds = median_time(lambda: results.append(stress()), 3)
    return seconds, results[-1]


def one_process(book: RiskBook) -> tuple[float, StressResult]:
    """The stress in this process, no Dask (the book is released on return)."""
    return timed(lambda: stress_book(book, SCENARIOS))


def run(accounts: int) -> None:
    market = synthetic_market(51)
    recipe = synthetic_recipe(market, accounts, 0, 10.0, 50)
    start = time.perf_counter()
    params, columns = recipe(0, accounts)
    build_s = time.perf_counter() - start
    single_s, expected = one_process(RiskBook(params, columns))
    del columns
    print(
        f"{accounts:,} accounts x {len(SCENARIOS)} scenarios: one process {single_s:.2f} s"
        f" (columns built in {build_s:.1f} s)"
    )
    for processes in (False, True):
        times = {}
        for workers in (1, 2):
            with DistributedBook(
                params,
                recipe=recipe,
                accounts=accounts,
                workers=workers,
                processes=processes,
                shards=workers,
            ) as spread:
                times[workers], result = timed(lambda: spread.stress(SCENARIOS))
                check(result, expected)
        kind = "processes" if processes else "threads"
        for workers, t in times.items():
            print(f"  {workers} worker {kind:>9}: {t:6.2f} s, vs 1 process {single_s / t:5.2f}x")
        print(f"  per-worker efficiency ({kind}): {times[1] / (2 * times[2]):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, nargs="+", default=[1_000_000, 5_000_000])
    for accounts in parser.parse_args().accounts:
        run(accounts)


if __name__ == "__main__":
    main()
