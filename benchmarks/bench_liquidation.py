"""Closed-form liquidation prices against a per-position root finder, measured in the same run.

Prints positions per second for both (the closed form: median of five runs after a warm-up) and
the speed-up ratio; the root finder (scipy's brentq on the forward surplus, one position at a
time) is the naive baseline.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import brentq

from crossmargin.maths.liquidation import liquidation_price
from crossmargin.maths.pnl import unrealized_pnl
from crossmargin.maths.tiers import MarginArrays, position_margins
from crossmargin.model import MarginSchedule

FLOORS = [0, 50e3, 250e3, 1e6, 5e6, 20e6, 50e6, 100e6, 200e6, 300e6]
RATES = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
LEVERAGE = [125, 100, 50, 20, 10, 5, 4, 3, 2, 1]


def book(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """``n`` BTC positions on Binance brackets: mixed sides, sizes and cross buffers."""
    rng = np.random.default_rng(seed)
    mark = np.full(n, 60_000.0)
    qty = rng.lognormal(0.0, 1.5, n) * rng.choice([-1.0, 1.0], n)
    entry = mark * rng.uniform(0.9, 1.1, n)
    buffer = np.abs(qty) * mark * rng.uniform(0.02, 0.5, n)
    return {"qty": qty, "entry": entry, "mark": mark, "buffer": buffer}


def closed_form(b: dict[str, np.ndarray], schedule: MarginArrays) -> np.ndarray:
    return liquidation_price(b["qty"], 1.0, b["entry"], False, b["mark"], b["buffer"], schedule)


def root_finder(b: dict[str, np.ndarray], schedule: MarginArrays) -> np.ndarray:
    out = np.full(b["qty"].size, np.nan)
    for i in range(b["qty"].size):
        q, e, buf = b["qty"][i], b["entry"][i], b["buffer"][i]

        def surplus(p: float, q: float = q, e: float = e, buf: float = buf) -> float:
            upnl = unrealized_pnl(q, 1.0, e, p, False)
            mm = position_margins(q, 1.0, p, False, np.nan, schedule).maintenance.item()
            return float(buf + upnl - mm)

        lo, hi = (1e-6, b["mark"][i]) if q > 0 else (b["mark"][i], 1e9)
        if surplus(lo) * surplus(hi) < 0:
            out[i] = brentq(surplus, lo, hi, xtol=1e-12, rtol=1e-15)
    return out


def main() -> None:
    table = MarginArrays.from_schedules([MarginSchedule.brackets(FLOORS, RATES, LEVERAGE)])
    big = book(200_000)
    schedule = table.take(np.zeros(big["qty"].size, dtype=np.intp))
    closed_form({k: v[:10] for k, v in big.items()}, table.take(np.zeros(10, dtype=np.intp)))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fast = closed_form(big, schedule)
        times.append(time.perf_counter() - start)
    fast_s = float(np.median(times))
    small = {k: v[:1_000] for k, v in big.items()}
    start = time.perf_counter()
    slow = root_finder(small, table)
    slow_s = time.perf_counter() - start
    agree = np.nanmax(np.abs(fast[:1_000] - slow) / slow)
    fast_rate = big["qty"].size / fast_s
    slow_rate = small["qty"].size / slow_s
    print(f"closed form: {fast_rate:,.0f} positions/s over {big['qty'].size:,} positions")
    print(f"root finder: {slow_rate:,.0f} positions/s over {small['qty'].size:,} positions")
    print(f"speed-up: {fast_rate / slow_rate:,.0f}x (max relative difference {agree:.1e})")


if __name__ == "__main__":
    main()
