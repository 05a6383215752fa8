"""Scalar reference formulas for the portfolio-margin tests, written independently of the
library (textbook Black-76 with ``math.erf``)."""

from __future__ import annotations

import math


def ncdf(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black(f: float, k: float, t: float, s: float, call: bool) -> float:
    """Undiscounted Black-76 value per unit of underlying, USD; intrinsic at t = 0."""
    if t <= 0.0:
        return max(f - k, 0.0) if call else max(k - f, 0.0)
    sd = s * math.sqrt(t)
    d1 = (math.log(f / k) + sd * sd / 2) / sd
    d2 = d1 - sd
    if call:
        return f * ncdf(d1) - k * ncdf(d2)
    return k * ncdf(-d2) - f * ncdf(-d1)


def deribit_vol(
    vol: float,
    dte: float,
    move: float,
    up: float,
    down: float,
    short_p: float,
    long_p: float,
    floor_up: float,
) -> float:
    """Deribit PME vol shock (venues.md 5.4)."""
    d = max(dte, 1.0)
    w = (30.0 / d) ** (short_p if d < 30 else long_p)
    if move > 0:
        return max(vol * (1 + up * move * w), floor_up)
    if move < 0:
        return max(vol * (1 + down * move * w), 1e-4)
    return vol
