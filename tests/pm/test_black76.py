"""Black-76 prices, Greeks and implied vols against independent references.

References: the textbook Black (1976) formula written out here with ``scipy.stats.norm`` and
``math``; Hull, *Options, Futures, and Other Derivatives* (Black's model for futures options,
example with F0 = K = 20, r = 9%, T = 4 months, sigma = 25%: put price 1.12); central finite
differences; put-call parity ``C - P = df * (F - K)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy.stats import norm

from crossmargin.maths.black76 import greeks, implied_vol, price


def reference(f: float, k: float, t: float, s: float, call: bool, r: float = 0.0) -> float:
    """Textbook Black-76, written independently of the kernel."""
    d1 = (math.log(f / k) + s * s * t / 2) / (s * math.sqrt(t))
    d2 = d1 - s * math.sqrt(t)
    df = math.exp(-r * t)
    if call:
        return df * (f * norm.cdf(d1) - k * norm.cdf(d2))
    return df * (k * norm.cdf(-d2) - f * norm.cdf(-d1))


def test_hull_futures_option_example() -> None:
    """Hull: European put on a futures, F0 = K = 20, r = 9%, T = 4/12, sigma = 25% -> 1.12."""
    put = float(price(20.0, 20.0, 4 / 12, 0.25, False, rate=0.09))
    assert put == pytest.approx(reference(20.0, 20.0, 4 / 12, 0.25, False, 0.09), abs=1e-12)
    assert round(put, 2) == 1.12
    call = float(price(20.0, 20.0, 4 / 12, 0.25, True, rate=0.09))
    assert call == pytest.approx(put, abs=1e-12)  # at the money forward: C = P


def test_vectorised_matches_reference_random() -> None:
    """1,000 random options, linear and inverse, agree with the scalar reference to 1e-8."""
    rng = np.random.default_rng(7)
    n = 1000
    f = rng.uniform(1_000, 100_000, n)
    k = f * np.exp(rng.normal(0, 0.4, n))
    t = rng.uniform(1 / 365, 2.0, n)
    s = rng.uniform(0.05, 2.0, n)
    call = rng.random(n) < 0.5
    r = rng.uniform(0.0, 0.08, n)
    lin = price(f, k, t, s, call, rate=r)
    inv = price(f, k, t, s, call, inverse=True, rate=r)
    ref = np.array([reference(*args) for args in zip(f, k, t, s, call, r, strict=True)])
    np.testing.assert_allclose(lin / f, ref / f, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(inv, ref / f, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("call", [True, False])
def test_greeks_match_finite_differences(call: bool, inverse: bool) -> None:
    """Delta, gamma, vega, theta equal central differences of the kernel's own price."""
    f, k, t, s, r = 60_000.0, 66_000.0, 45 / 365, 0.62, 0.03
    g = greeks(f, k, t, s, call, inverse, rate=r)

    def p(ff: float = f, tt: float = t, ss: float = s) -> float:
        return float(price(ff, k, tt, ss, call, inverse, rate=r))

    h = f * 1e-4
    assert float(g.price) == pytest.approx(p(), rel=1e-14)
    assert float(g.delta) == pytest.approx((p(f + h) - p(f - h)) / (2 * h), rel=1e-7)
    assert float(g.gamma) == pytest.approx((p(f + h) - 2 * p() + p(f - h)) / h**2, rel=1e-4)
    assert float(g.vega) == pytest.approx((p(ss=s + 1e-5) - p(ss=s - 1e-5)) / 2e-5, rel=1e-7)
    assert float(g.theta) == pytest.approx(-(p(tt=t + 1e-6) - p(tt=t - 1e-6)) / 2e-6, rel=1e-6)


def test_greeks_match_closed_forms() -> None:
    """Linear Greeks against the textbook closed forms (scipy's normal pdf and cdf)."""
    f, k, t, s = 100.0, 95.0, 0.5, 0.3
    g = greeks(f, k, t, s, True)
    d1 = (math.log(f / k) + s * s * t / 2) / (s * math.sqrt(t))
    assert float(g.delta) == pytest.approx(norm.cdf(d1), abs=1e-12)
    assert float(g.gamma) == pytest.approx(norm.pdf(d1) / (f * s * math.sqrt(t)), abs=1e-12)
    assert float(g.vega) == pytest.approx(f * norm.pdf(d1) * math.sqrt(t), abs=1e-12)
    assert float(g.theta) == pytest.approx(-f * norm.pdf(d1) * s / (2 * math.sqrt(t)), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(
    f=st.floats(10, 1e6),
    m=st.floats(-1.5, 1.5),
    t=st.floats(1e-3, 5),
    s=st.floats(0.01, 3),
    r=st.floats(0, 0.2),
)
def test_put_call_parity(f: float, m: float, t: float, s: float, r: float) -> None:
    """C - P = df (F - K); inverse: C - P = df (1 - K / F)."""
    k = f * math.exp(m)
    df = math.exp(-r * t)
    c, p = price(f, k, t, s, True, rate=r), price(f, k, t, s, False, rate=r)
    assert float(c - p) == pytest.approx(df * (f - k), abs=1e-9 * max(f, k))
    ci, pi = price(f, k, t, s, True, True, r), price(f, k, t, s, False, True, r)
    assert float(ci - pi) == pytest.approx(df * (1 - k / f), abs=1e-9 * max(1, k / f))


@settings(max_examples=60, deadline=None)
@given(m=st.floats(-0.7, 0.7), t=st.floats(7 / 365, 2), s=st.floats(0.1, 2.0), call=st.booleans())
def test_implied_vol_round_trip(m: float, t: float, s: float, call: bool) -> None:
    """The solver recovers the vol that priced the option (linear and inverse), wherever the
    time value is not lost to rounding (moneyness within 4 standard deviations)."""
    assume(abs(m) < 4 * s * math.sqrt(t))
    f, k = 50_000.0, 50_000.0 * math.exp(m)
    v = price(f, k, t, s, call)
    assert float(implied_vol(v, f, k, t, call)) == pytest.approx(s, rel=1e-7)
    vi = price(f, k, t, s, call, inverse=True)
    assert float(implied_vol(vi, f, k, t, call, inverse=True)) == pytest.approx(s, rel=1e-7)


def test_implied_vol_outside_bounds_is_nan_and_zero_vol_is_intrinsic() -> None:
    """Below intrinsic has no vol; a zero vol prices at intrinsic value."""
    assert np.isnan(implied_vol(5.0, 110.0, 100.0, 1.0, True))
    assert float(price(110.0, 100.0, 1.0, 0.0, True)) == pytest.approx(10.0, abs=1e-12)
    assert float(price(110.0, 100.0, 1.0, 0.0, False)) == pytest.approx(0.0, abs=1e-12)
