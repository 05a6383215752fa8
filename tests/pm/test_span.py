"""CME SPAN assembly against published worked examples.

- McMillan, *Options as a Strategic Investment*, ch. 34, pp. 669-670: S&P futures, PSR $10,000;
  long 1 Dec 410 call needs $3,990 (scenario 14); the covered write's worst scenario is 13 at
  -$6,620, its extreme down move -$5,500.
- CME, cmegroup.com/clearing/margins/spread-calc.html: outrights M2 $500, M3 $500, M4 $750;
  intra charges M2/M3 $200, M2/M4 $50, M3/M4 $0 give $200, $300 and $250; corn vs soybeans 2:1 at
  55% with outrights $1,750 and $2,500 gives $6,000 - $3,300 = $2,700.
"""

from __future__ import annotations

import tomllib
from importlib import resources

import numpy as np
import pytest

from crossmargin.maths.scenarios import (
    InstrumentArrays,
    VolShock,
    aggregate,
    position_matrix,
    risk_array,
    worst,
)
from crossmargin.maths.spreads import InterSpread, inter_spread_credit, intra_spread_charge
from crossmargin.rules.grid import grid_from_table

MCMILLAN_CALL = [460, -610, 2640, 1730, -1270, -2340, 5210, 4540, -2540, -3430, 8060, 7640,
                 -3380, -3990, 3130, -1500]  # fmt: skip


def span_grid():  # type: ignore[no-untyped-def]
    text = (resources.files("crossmargin.rules") / "pm" / "cme-span.toml").read_text("utf-8")
    return grid_from_table(tomllib.loads(text)["grid"])


def futures(psr: list[float], price: float = 10_000.0) -> InstrumentArrays:
    """Linear futures whose price scan range (forward x range) is ``psr``."""
    n = len(psr)
    nan = np.full(n, np.nan)
    return InstrumentArrays(
        forward=np.full(n, price),
        contract_size=np.ones(n),
        inverse=np.zeros(n, bool),
        is_option=np.zeros(n, bool),
        is_call=np.zeros(n, bool),
        strike=nan,
        t=np.full(n, 0.25),
        atm_vol=nan,
        skew=np.zeros(n),
        curvature=np.zeros(n),
        sticky_delta=np.zeros(n, bool),
        price_range=np.array(psr) / price,
    )


def test_grid_is_cmes_sixteen_scenarios() -> None:
    """Order, multiples of PSR/VSR and weights of CME's standard table (methodology 1.1)."""
    g = span_grid().arrays
    moves = [0, 0, 1, 1, -1, -1, 2, 2, -2, -2, 3, 3, -3, -3]
    np.testing.assert_allclose(g.price_move[:14] * 3, moves, atol=1e-12)
    np.testing.assert_array_equal(g.vol_move[:14], [1, -1] * 7)
    np.testing.assert_allclose(g.price_move[14:], [2, -2])
    np.testing.assert_allclose(g.weight, [1.0] * 14 + [0.35, 0.35])


def test_mcmillan_long_call_and_covered_write() -> None:
    """Long call: $3,990; covered write (engine's future risk array minus the call): -$6,620."""
    call = np.array(MCMILLAN_CALL, dtype=np.float64)
    scan, idx = worst(call)
    assert (float(scan), int(idx) + 1) == (3990.0, 14)
    future = risk_array(
        futures([10_000.0], 100_000.0), span_grid().arrays, VolShock(relative=False)
    )[0]
    np.testing.assert_allclose(future[[10, 12, 14, 15]], [10_000, -10_000, 7_000, -7_000])
    risk = np.vstack([future, call])
    write = aggregate(position_matrix([0, 0], [0, 1], [1.0, -1.0], (1, 2)), risk)[0]
    scan, idx = worst(write)
    assert float(scan) == pytest.approx(6620.0)
    assert int(idx) + 1 == 13
    assert write[15] == pytest.approx(-5500.0)


@pytest.mark.parametrize(
    ("legs", "expected"),
    [((0, 1), 200.0), ((0, 2), 300.0), ((1, 2), 250.0)],
)
def test_cme_intra_commodity_spread_examples(legs: tuple[int, int], expected: float) -> None:
    """+1 near / -1 far: scan of the two futures' risk arrays plus the intra charge."""
    months = ["M2", "M3", "M4"]
    risk = risk_array(futures([500.0, 500.0, 750.0]), span_grid().arrays, VolShock(False))
    pnl = aggregate(position_matrix([0, 0], list(legs), [1.0, -1.0], (1, 3)), risk)[0]
    scan = float(worst(pnl)[0])
    deltas = {months[legs[0]]: 1.0, months[legs[1]]: -1.0}
    charges = [("M2", "M3", 200.0), ("M2", "M4", 50.0), ("M3", "M4", 0.0)]
    assert scan + intra_spread_charge(deltas, charges) == pytest.approx(expected)


def test_cme_inter_commodity_corn_soybeans() -> None:
    """2 corn long vs 1 soybean short, 2:1 at 55%: credit $3,300, margin $2,700."""
    legs = {"corn": (2.0, 3500.0), "soy": (-1.0, 2500.0)}
    credit = inter_spread_credit(legs, [InterSpread("corn", "soy", 2.0, 1.0, 0.55)])
    assert sum(credit.values()) == pytest.approx(3300.0)
    assert 3500.0 + 2500.0 - sum(credit.values()) == pytest.approx(2700.0)


def test_intra_spread_priority_consumes_deltas() -> None:
    """A delta used by a higher-priority spread is not matched again."""
    deltas = {"A": 2.0, "B": -1.0, "C": -3.0}
    charge = intra_spread_charge(deltas, [("A", "B", 10.0), ("A", "C", 1.0), ("B", "C", 5.0)])
    assert charge == pytest.approx(1 * 10.0 + 1 * 1.0)
