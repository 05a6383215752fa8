"""One ``evaluate`` of a 10-position synthetic account (margins, liquidation and bankruptcy
prices, crash distance), warm: the median of many calls after a warm-up, and as a ratio to
its compiled kernel alone (``holdings_analysis`` on the account already laid out), timed in the
same run: what is left above 1x is layout and result assembly in Python.

    .venv/bin/python benchmarks/bench_evaluate.py [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable

import numpy as np

from crossmargin.health import CRASH_POINTS, CRASH_STEP, _frame, evaluate
from crossmargin.lab.synthetic import synthetic_book, synthetic_market
from crossmargin.maths.liquidation import down_grid, up_grid
from crossmargin.maths.risk import holdings_analysis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    market = synthetic_market(51)
    params, columns = synthetic_book(market, 2_000, 0, mean_positions=10.0, used=50)
    ten = np.flatnonzero(np.bincount(columns.account, minlength=2_000) == 10)[:1]
    account = columns.to_accounts(params, ten)[0]
    holdings = _frame(account, market).holdings
    grids = down_grid(CRASH_POINTS), up_grid(CRASH_POINTS)

    def median_us(action: Callable[[], object]) -> float:
        times = timeit.repeat(action, number=1, repeat=args.calls)
        return 1e6 * statistics.median(times)

    for _ in range(50):
        evaluate(account, market)
        holdings_analysis(holdings, grids[0], grids[1], CRASH_STEP)
    kernel_us = median_us(lambda: holdings_analysis(holdings, grids[0], grids[1], CRASH_STEP))
    evaluate_us = median_us(lambda: evaluate(account, market))
    print(
        f"evaluate of a 10-position account: {evaluate_us:.0f} us median of {args.calls} warm"
        f" calls = {evaluate_us / kernel_us:.1f}x its compiled kernel alone ({kernel_us:.0f} us)"
    )


if __name__ == "__main__":
    main()
