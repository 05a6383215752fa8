"""Square-root impact against the law written out by hand (Tóth et al. 2011, eq. 1)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, strategies as st

from crossmargin.maths.impact import sqrt_impact


def test_worked_example() -> None:
    """A $1M sell into $100M of daily volume at 2% daily volatility, Y = 0.5: the move is
    0.5 x 0.02 x sqrt(0.01) = 0.1% down; the same buy moves it 0.1% up."""
    moves = sqrt_impact([-1e6, 1e6, 0.0], 1e8, 0.02, 0.5)
    np.testing.assert_allclose(moves, [-0.001, 0.001, 0.0], rtol=1e-15)


def test_thinner_book() -> None:
    """Depth 0.02 (a book 50 times thinner) moves the price sqrt(50) times as far."""
    normal = float(sqrt_impact(-5e6, 2e9, 0.015))
    thin = float(sqrt_impact(-5e6, 2e9 * 0.02, 0.015))
    assert math.isclose(thin / normal, math.sqrt(50.0), rel_tol=1e-12)


@given(
    st.floats(1.0, 1e10),
    st.floats(1e3, 1e12),
    st.floats(1e-3, 0.2),
    st.floats(0.1, 2.0),
)
def test_square_root_scaling(q: float, v: float, sigma: float, y: float) -> None:
    """Four times the order moves the price twice as far, in the order's direction."""
    one = float(sqrt_impact(-q, v, sigma, y))
    four = float(sqrt_impact(-4 * q, v, sigma, y))
    assert one < 0
    assert math.isclose(four, 2 * one, rel_tol=1e-12)
    assert math.isclose(one, -y * sigma * math.sqrt(q / v), rel_tol=1e-12)
