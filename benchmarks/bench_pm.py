"""Portfolio-margin throughput, each figure a ratio to a baseline measured in the same run.

1. Option repricings per second: vectorised Black-76 (``maths.black76.price``) against a scalar
   Python loop over ``math.erf``.
2. Scenario repricings per second: ``maths.scenarios.risk_array`` over a Deribit-style chain
   (instruments x 35 scenarios), against the same scalar loop.
3. PM accounts per second (Deribit PM, 20 option positions each on a 200-option chain):
   ``pm.population.deribit_population`` (one risk array, sparse aggregation, row-wise kernel,
   from the Account objects) against the per-account path (``pm.risk.account_risk`` +
   ``pm.deribit.deribit_margin``, one account at a time).

Run: ``python benchmarks/bench_pm.py [--quick]``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from crossmargin.maths.black76 import price
from crossmargin.maths.scenarios import InstrumentArrays, risk_array
from crossmargin.model import Account, Instrument, Kind, Market, OptionData, Position
from crossmargin.pm.deribit import deribit_margin
from crossmargin.pm.population import deribit_population
from crossmargin.pm.risk import account_risk, vol_shock
from crossmargin.rules import load_pm_rulebook


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs, seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def scalar_black(f: float, k: float, t: float, s: float, call: bool) -> float:
    sd = s * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    n1 = 0.5 * (1 + math.erf(d1 / math.sqrt(2)))
    n2 = 0.5 * (1 + math.erf(d2 / math.sqrt(2)))
    return f * n1 - k * n2 if call else k * (1 - n2) - f * (1 - n1)


def chain(rng: np.random.Generator, n: int) -> InstrumentArrays:
    f = np.full(n, 60_000.0)
    return InstrumentArrays(
        forward=f,
        contract_size=np.ones(n),
        inverse=np.ones(n, bool),
        is_option=np.arange(n) >= 20,
        is_call=rng.random(n) < 0.5,
        strike=f * np.exp(rng.normal(0, 0.3, n)),
        t=rng.uniform(1 / 365, 1.5, n),
        atm_vol=rng.uniform(0.4, 1.0, n),
        skew=np.zeros(n),
        curvature=np.zeros(n),
        sticky_delta=np.zeros(n, bool),
        price_range=np.full(n, 0.16),
    )


def main(quick: bool) -> None:
    rng = np.random.default_rng(1)
    n_vec, n_loop = (200_000, 20_000) if quick else (1_000_000, 100_000)
    f = np.full(n_vec, 60_000.0)
    k = f * np.exp(rng.normal(0, 0.3, n_vec))
    t = rng.uniform(1 / 365, 1.5, n_vec)
    s = rng.uniform(0.2, 1.5, n_vec)
    c = rng.random(n_vec) < 0.5
    rows = list(zip(f[:n_loop], k[:n_loop], t[:n_loop], s[:n_loop], c[:n_loop], strict=True))
    loop_rate = n_loop / best(lambda: [scalar_black(*r) for r in rows], 1)
    vec_rate = n_vec / best(lambda: price(f, k, t, s, c))
    print(f"scalar loop (math.erf)      {loop_rate / 1e6:8.3f} M options/s  (baseline)")
    speedup = vec_rate / loop_rate
    print(f"black76.price vectorised    {vec_rate / 1e6:8.3f} M options/s  x{speedup:,.0f}")

    rulebook = load_pm_rulebook("deribit-pm")
    grid = rulebook.grid.arrays
    n_inst = 2_000 if quick else 10_000
    inst = chain(rng, n_inst)
    shock = vol_shock(rulebook, ("BTC",) * n_inst)
    risk_rate = n_inst * grid.size / best(lambda: risk_array(inst, grid, shock))
    print(
        f"risk_array {n_inst} x {grid.size}      {risk_rate / 1e6:8.3f} M repricings/s  "
        f"x{risk_rate / loop_rate:,.0f}"
    )

    n_acc = 5_000 if quick else 50_000
    market, data, accounts = population(rng, n_acc, 20)
    sample = accounts[:200]

    def per_account() -> None:
        for account in sample:
            deribit_margin(account_risk(account, market, rulebook, data), rulebook)

    one_rate = len(sample) / best(per_account, 1)
    pop_rate = n_acc / best(lambda: deribit_population(accounts, market, rulebook, data))
    print(f"per-account path            {one_rate:10,.0f} accounts/s  (baseline)")
    print(f"deribit_population          {pop_rate:10,.0f} accounts/s  x{pop_rate / one_rate:,.0f}")


def population(
    rng: np.random.Generator, n: int, per: int
) -> tuple[Market, OptionData, list[Account]]:
    """A 200-option BTC chain and ``n`` accounts of ``per`` random positions each."""
    now = datetime(2026, 11, 25, 8, tzinfo=UTC)
    insts = [
        Instrument(
            f"BTC-{i}",
            Kind.OPTION,
            "BTC",
            "USD",
            "BTC",
            inverse=True,
            expiry=("2026-12-25", "2027-03-26", "2027-06-25", "2027-12-31")[i % 4],
            strike=float(30_000 + 500 * (i // 2)),
            option_type="call" if i % 2 else "put",
        )
        for i in range(200)
    ]
    market = Market({x.symbol: x for x in insts}, {"BTC": 60_000.0}, "USD")
    data = OptionData(now, vols={x.symbol: float(rng.uniform(0.4, 0.9)) for x in insts})
    accounts = []
    for a in range(n):
        picks = rng.choice(200, per, replace=False)
        positions = [Position(f"BTC-{i}", float(rng.normal(0, 2)) or 1.0, 0.01) for i in picks]
        accounts.append(Account(str(a), {"BTC": 5.0}, positions))
    return market, data, accounts


if __name__ == "__main__":
    main("--quick" in sys.argv)
