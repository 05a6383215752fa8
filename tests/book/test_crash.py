"""The vectorised crash-distance search against the scalar reference search.

``crossmargin.maths.liquidation.crash_distance`` (full grid, then Brent) is the reference; the
book's search (coarse grid, concavity check, full grid where needed, Illinois refinement) must
find the same first crossing on each side for concave and flat-then-falling surpluses, and
with the full scan also for a surplus that dips below zero between coarse grid points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from crossmargin.book.riskbook import _Surface
from crossmargin.maths.liquidation import crash_distance, down_grid, up_grid

Surplus = Callable[[np.ndarray], np.ndarray]
UP = up_grid(512)


def concave(m: np.ndarray) -> np.ndarray:
    """Equity 1 + m against a maintenance that grows with |m|: roots near -0.8 and +0.9."""
    return 0.2 + 0.5 * m - 0.2 * m**2


def dip(m: np.ndarray) -> np.ndarray:
    """Positive and falling, but with a narrow dip below 0 around the 6th up-grid point."""
    bump = 10.0 * np.maximum(0.0, 1.0 - np.abs(m - UP[5]) / 0.003)
    return 1.0 - 0.5 * m - bump


def plateau(m: np.ndarray) -> np.ndarray:
    """Zero until a move of +0.3 (an isolated wallet after the cross one is empty), then < 0."""
    return np.minimum(0.0, 0.3 - m)


class _Stub:
    """One account whose surplus is ``f`` (the interface ``first_root`` uses). The compiled
    refinement needs a real book's columns, so the stub refines by plain bisection; the book
    tests check the compiled one against ``evaluate``."""

    n = 1

    def __init__(self, f: Surplus) -> None:
        self.f = f

    def surplus(self, moves: np.ndarray) -> np.ndarray:
        return self.f(np.asarray(moves, dtype=np.float64))

    def _illinois(
        self, todo: np.ndarray, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray
    ) -> np.ndarray:
        for _ in range(200):
            c = 0.5 * (a + b)
            below = self.f(c) < 0
            a, b = np.where(below, a, c), np.where(below, c, b)
        return 0.5 * (a + b)


@pytest.mark.parametrize(
    ("f", "step"), [(concave, 16), (plateau, 16), (concave, 1), (dip, 1), (plateau, 1)]
)
def test_first_root_matches_reference(f: Surplus, step: int) -> None:
    """Both sides agree with the reference to 1e-12 (a dip between coarse points needs the
    full scan, ``step=1``)."""
    down, up = crash_distance(f)
    stub = _Stub(f)
    for grid, expected in ((down_grid(512), down), (UP, up)):
        got = float(_Surface.first_root(stub, grid, step)[0])  # type: ignore[arg-type]
        if expected is None:
            assert np.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12)


def test_non_concave_coarse_values_take_the_full_grid() -> None:
    """Coarse values that fall then rise are not concave: that account gets the full grid,
    which finds a narrow dip between coarse points that the coarse scan alone would miss."""

    def tri(m: np.ndarray, centre: float, half: float) -> np.ndarray:
        return np.maximum(0.0, 1.0 - np.abs(m - centre) / half)

    def valley(m: np.ndarray) -> np.ndarray:
        broad = 0.8 * tri(m, UP[16], UP[40] - UP[16])
        return 1.0 - broad - 10.0 * tri(m, UP[20], 0.002) - 0.2 * m

    _, up = crash_distance(valley)
    assert up is not None and UP[19] < up < UP[20]
    got = float(_Surface.first_root(_Stub(valley), UP, 16)[0])  # type: ignore[arg-type]
    assert got == pytest.approx(up, abs=1e-12)
