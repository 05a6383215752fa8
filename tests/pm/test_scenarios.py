"""The scenario engine (revalue once per instrument, aggregate sparse) against brute-force
revaluation of every position of every account, scenario by scenario, with the scalar
reference formulas of ``_pm_reference``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _pm_reference import black, deribit_vol

from crossmargin.maths.scenarios import (
    InstrumentArrays,
    ScenarioArrays,
    VolShock,
    aggregate,
    position_matrix,
    risk_array,
    shocked_vol,
    to_numeraire,
)

UP, DOWN, SP, LP, FLOOR = 0.5, 0.25, 0.30, 0.13, 0.5


def random_instruments(rng: np.random.Generator, n: int, sticky_delta: bool) -> InstrumentArrays:
    option = rng.random(n) < 0.7
    f = rng.choice([60_000.0, 3_000.0], n)
    return InstrumentArrays(
        forward=f * np.where(option, 1.0, rng.uniform(0.99, 1.02, n)),
        contract_size=np.where(rng.random(n) < 0.5, 1.0, 10.0),
        inverse=rng.random(n) < 0.5,
        is_option=option,
        is_call=rng.random(n) < 0.5,
        strike=np.where(option, f * np.exp(rng.normal(0, 0.2, n)), np.nan),
        t=rng.uniform(0.5 / 365, 1.0, n),
        atm_vol=rng.uniform(0.3, 1.2, n),
        skew=rng.uniform(-0.3, 0.1, n),
        curvature=rng.uniform(0.0, 0.5, n),
        sticky_delta=np.full(n, sticky_delta),
        price_range=np.where(f > 10_000, 0.16, 0.18),
    )


def grid() -> ScenarioArrays:
    moves = np.linspace(-1, 1, 9)
    pm = np.concatenate([np.repeat(moves, 3), [-0.66, 0.5, 3.0]])
    return ScenarioArrays(
        price_move=pm,
        scaled=np.arange(pm.size) < 27,
        vol_move=np.concatenate([np.tile([1.0, 0.0, -1.0], 9), [1.0, 1.0, 1.0]]),
        weight=np.concatenate([np.ones(27), [0.3, 0.3, 0.3]]),
        dt=np.full(pm.size, 1 / 365),
        delta_one_capped=np.arange(pm.size) >= 28,
    )


def brute_value(a: InstrumentArrays, i: int, f: float, vol: float, t: float) -> float:
    cs = a.contract_size[i]
    if not a.is_option[i]:
        return -cs / f if a.inverse[i] else cs * f
    v = black(f, a.strike[i], t, vol, bool(a.is_call[i]))
    return cs * v / f if a.inverse[i] else cs * v


def brute_pnl(a: InstrumentArrays, sc: ScenarioArrays, i: int, s: int, coin: bool) -> float:
    f0 = a.forward[i]
    move = sc.price_move[s] * (a.price_range[i] if sc.scaled[s] else 1.0)
    assert sc.delta_one_capped is not None
    if sc.delta_one_capped[s] and not a.is_option[i]:
        move = min(max(move, -a.price_range[i]), a.price_range[i])
    f = f0 * (1 + move)
    t = max(a.t[i] - sc.dt[s], 0.0)
    vol0 = vol = 0.0
    if a.is_option[i]:
        k0 = math.log(a.strike[i] / f0)
        vol0 = max(a.atm_vol[i] + a.skew[i] * k0 + a.curvature[i] * k0 * k0, 1e-4)
        k = math.log(a.strike[i] / f) if a.sticky_delta[i] else k0
        base = max(a.atm_vol[i] + a.skew[i] * k + a.curvature[i] * k * k, 1e-4)
        vol = deribit_vol(base, t * 365, sc.vol_move[s], UP, DOWN, SP, LP, FLOOR)
    pnl = (brute_value(a, i, f, vol, t) - brute_value(a, i, f0, vol0, a.t[i])) * sc.weight[s]
    if coin:
        return pnl if a.inverse[i] else pnl / f
    return pnl * f if a.inverse[i] else pnl


@pytest.mark.parametrize(("sticky_delta", "coin"), [(False, True), (True, False)])
def test_engine_matches_brute_force_random_portfolios(sticky_delta: bool, coin: bool) -> None:
    """40 instruments, 30 accounts of 1-8 positions each, aggregated in blocks of 7 rows: same
    scenario P&L to 1e-9."""
    rng = np.random.default_rng(11 + sticky_delta)
    a = random_instruments(rng, 40, sticky_delta)
    sc = grid()
    shock = VolShock(True, UP, DOWN, SP, LP, FLOOR)
    risk = to_numeraire(risk_array(a, sc, shock), a, sc, coin)
    rows, inst, qty = [], [], []
    for acc in range(30):
        for i in rng.choice(40, rng.integers(1, 9), replace=False):
            rows.append(acc)
            inst.append(int(i))
            qty.append(float(rng.normal(0, 5)))
    engine = aggregate(position_matrix(rows, inst, qty, (30, 40)), risk, block=7)
    brute = np.zeros((30, sc.size))
    for r, i, q in zip(rows, inst, qty, strict=True):
        for s in range(sc.size):
            brute[r, s] += q * brute_pnl(a, sc, i, s, coin)
    np.testing.assert_allclose(engine, brute, rtol=1e-9, atol=1e-9)


def test_vol_shock_term_structure_and_floors() -> None:
    """Deribit PME: vol up = max(vol (1 + 0.5 (30/dte)^p), 0.5), p = 0.30 below 30 days."""
    shock = VolShock(True, UP, DOWN, SP, LP, FLOOR)
    assert float(shocked_vol(0.6, 7.5, 1.0, shock)) == pytest.approx(
        0.6 * (1 + 0.5 * 4**0.30), rel=1e-14
    )
    assert float(shocked_vol(0.2, 90.0, 1.0, shock)) == pytest.approx(0.5)  # floor_up binds
    assert float(shocked_vol(0.6, 90.0, -1.0, shock)) == pytest.approx(
        0.6 * (1 - 0.25 * (1 / 3) ** 0.13), rel=1e-14
    )
    span = VolShock(relative=False, up=0.05)
    assert float(shocked_vol(0.6, 10.0, -1.0, span)) == pytest.approx(0.55)


def test_delta_one_risk_is_linear_in_the_move() -> None:
    """A linear future's risk array is contract_size x F x move; inverse: cs (1/F - 1/F_s);
    in the capped scenarios the move stops at +-price range."""
    a = random_instruments(np.random.default_rng(3), 4, False)
    a = InstrumentArrays(**{**a.__dict__, "is_option": np.zeros(4, bool)})
    sc = grid()
    r = risk_array(a, sc, VolShock())
    rng = a.price_range[:, None]
    move = np.where(sc.scaled, sc.price_move * rng, sc.price_move)
    move = np.where(sc.delta_one_capped, np.clip(move, -rng, rng), move)
    f, cs = a.forward[:, None], a.contract_size[:, None]
    expected = (
        np.where(a.inverse[:, None], cs * (1 / f - 1 / (f * (1 + move))), cs * f * move) * sc.weight
    )
    np.testing.assert_allclose(r, expected, rtol=1e-12, atol=1e-15)
