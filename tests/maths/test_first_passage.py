"""First-passage probability of GBM, against the reflection principle written plainly and a
fine-grid Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from crossmargin.maths.first_passage import hit_probability, realised_volatility


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_driftless_log_price_is_twice_the_terminal_tail() -> None:
    # With mu = sigma^2/2 the log price is a driftless Brownian motion, and the reflection
    # principle gives P(min <= b) = 2 N(b / (sigma sqrt T)) (Shreve II, 3.7.3).
    sigma, horizon, spot, barrier = 0.8, 0.25, 100.0, 80.0
    expected = 2.0 * _normal_cdf(math.log(barrier / spot) / (sigma * math.sqrt(horizon)))
    got = float(hit_probability(spot, barrier, sigma, horizon, mu=0.5 * sigma**2))
    assert got == pytest.approx(expected, rel=1e-12)
    up = float(hit_probability(spot, 125.0, sigma, horizon, mu=0.5 * sigma**2))
    assert up == pytest.approx(2.0 * (1.0 - _normal_cdf(math.log(1.25) / 0.4)), rel=1e-12)


def test_matches_monte_carlo_with_drift() -> None:
    rng = np.random.default_rng(7)
    spot, barrier, sigma, horizon, mu = 100.0, 85.0, 0.6, 30 / 365, -0.3
    steps, paths = 4_000, 20_000
    dt = horizon / steps
    log_path = np.zeros(paths)
    low = np.zeros(paths)
    for _ in range(steps):
        log_path += (mu - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * rng.standard_normal(paths)
        np.minimum(low, log_path, out=low)
    simulated = float(np.mean(low <= math.log(barrier / spot)))
    exact = float(hit_probability(spot, barrier, sigma, horizon, mu=mu))
    # A discrete grid misses crossings between steps, so it reads slightly low.
    assert exact - 4 * math.sqrt(exact * (1 - exact) / paths) <= simulated + 0.01
    assert simulated <= exact + 4 * math.sqrt(exact * (1 - exact) / paths)


def test_edges() -> None:
    got = hit_probability(
        [100, 100, 100, 100], [100, 90, float("nan"), 110], [0.5, 0.0, 0.5, 0.5], [1, 1, 1, 0]
    )
    assert got.tolist() == [1.0, 0.0, 0.0, 0.0]


@given(
    st.floats(0.05, 3.0),
    st.floats(0.001, 2.0),
    st.floats(0.2, 0.99),
)
def test_monotone_in_horizon_and_barrier_distance(
    sigma: float, horizon: float, ratio: float
) -> None:
    near = hit_probability(100.0, 100.0 * ratio, sigma, horizon)
    far = hit_probability(100.0, 100.0 * ratio * 0.9, sigma, horizon)
    longer = hit_probability(100.0, 100.0 * ratio, sigma, horizon * 2)
    assert 0.0 <= far <= near + 1e-12 <= 1.0 + 1e-12
    assert longer >= near - 1e-12


def test_realised_volatility_of_a_known_series() -> None:
    # Alternating +-1% log returns every day: daily sd = 0.01 * sqrt(n/(n-1)), times sqrt(365).
    r = np.array([0.01, -0.01] * 50)
    prices = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    sd = float(np.std(r, ddof=1))
    assert realised_volatility(prices, 86_400) == pytest.approx(sd * math.sqrt(365), rel=1e-12)
    assert realised_volatility([1.0, 2.0], 60) == 0.0
