"""Path models: the threshold calibration recovers known parameters, the jump-diffusion is a
martingale with the variance its parameters give, the bootstrap keeps each bar's assets
together, and a seed fixes the paths whatever the batching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossmargin.lab.paths import (
    BARS_PER_YEAR,
    CHUNK,
    BootstrapModel,
    History,
    JumpModel,
    bundled_history,
    bundled_model,
    growth_chunks,
)
from crossmargin.maths.first_passage import realised_volatility
from crossmargin.model import CrossMarginError

BAR = 1.0 / BARS_PER_YEAR


def _history(returns: np.ndarray) -> History:
    assets = tuple(f"A{k}" for k in range(returns.shape[1]))
    return History(assets, returns, {a: a for a in assets}, ("start", "end"))


def test_calibration_recovers_a_correlated_diffusion() -> None:
    """Normal bars of known volatility and correlation: sigma and rho come back within a few
    percent and almost no bar is taken for a jump."""
    rng = np.random.default_rng(0)
    sigma = np.array([0.6, 0.9])
    rho = 0.7
    chol = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    z = rng.standard_normal((50_000, 2)) @ chol.T
    model = JumpModel.calibrate(_history(z * sigma * math.sqrt(BAR)))
    assert model.sigma == pytest.approx(sigma, rel=0.02)
    assert model.correlation[0, 1] == pytest.approx(rho, abs=0.02)
    assert model.jump_rate < 0.01 * BARS_PER_YEAR


def test_calibration_finds_injected_jumps() -> None:
    """Jumps of -8% on 1% of bars: the rate and size come back, the diffusion stays."""
    rng = np.random.default_rng(1)
    r = rng.standard_normal((40_000, 1)) * 0.5 * math.sqrt(BAR)
    hit = rng.random(40_000) < 0.01
    r[hit, 0] += -0.08 + 0.01 * rng.standard_normal(int(hit.sum()))
    model = JumpModel.calibrate(_history(r))
    years = 40_000 / BARS_PER_YEAR
    assert model.jump_rate == pytest.approx(hit.sum() / years, rel=0.05)
    assert model.jump_mean[0] == pytest.approx(-0.08, abs=0.005)
    assert model.jump_std[0] == pytest.approx(0.01, abs=0.004)
    assert model.sigma[0] == pytest.approx(0.5, rel=0.03)


def test_jump_paths_are_a_martingale_with_their_variance() -> None:
    """E[S_T / S_0] = 1 at zero drift, and the variance of log S_T is T (sigma^2 + lambda
    (mu_J^2 + sigma_J^2)), the Merton model's (Merton 1976, J. Fin. Econ. 3)."""
    model = JumpModel(("X",), np.array([0.5]), 20.0, np.array([-0.03]), np.array([0.04]), np.eye(1))
    horizon = 0.25
    growth = np.vstack(list(growth_chunks(model, 20_000, 50, horizon, 4)))[:, -1, 0]
    assert growth.mean() == pytest.approx(1.0, abs=3 * growth.std() / math.sqrt(len(growth)))
    expected = horizon * (0.25 + 20.0 * (0.03**2 + 0.04**2))
    assert np.log(growth).var() == pytest.approx(expected, rel=0.05)


def test_bootstrap_keeps_bars_together() -> None:
    """One bar a step: every step's return vector is one bar of the history, and steps within
    a block are consecutive bars."""
    r = np.arange(200.0).reshape(100, 2) / 1000.0
    model = BootstrapModel(_history(r), block=5)
    steps = model.log_returns(np.random.default_rng(0), 7, 20, BAR)
    assert steps.shape == (7, 20, 2)
    rows = np.rint(steps * 1000.0).astype(int)
    assert (rows[..., 1] == rows[..., 0] + 1).all()
    bars = rows[..., 0] // 2
    assert (np.diff(bars[:, :5], axis=1) == 1).all()
    two = model.log_returns(np.random.default_rng(0), 3, 4, 2 * BAR)
    assert two.shape == (3, 4, 2)
    with pytest.raises(CrossMarginError, match="steps"):
        model.log_returns(np.random.default_rng(0), 3, 4, 1.5 * BAR)
    with pytest.raises(CrossMarginError, match="block"):
        BootstrapModel(_history(r), block=0)


def test_seed_fixes_paths_whatever_the_count() -> None:
    """The first chunk is the same whether more paths follow; another seed differs."""
    model = JumpModel.gbm("X", 0.5)
    small = next(growth_chunks(model, CHUNK, 10, 0.1, 9))
    large = list(growth_chunks(model, CHUNK + 5, 10, 0.1, 9))
    assert np.array_equal(small, large[0])
    assert large[1].shape == (5, 10, 1)
    assert not np.array_equal(small, next(growth_chunks(model, CHUNK, 10, 0.1, 10)))
    for paths, steps in ((0, 1), (1, 0)):
        with pytest.raises(CrossMarginError):
            next(growth_chunks(model, paths, steps, 0.1, 0))


def test_bundled_history() -> None:
    """BTC alone uses 2017-2025; with ETH the bars both have; SOL follows ETH. The BTC jump
    calibration's total variance matches the realised volatility of the closes."""
    btc = bundled_history(["BTC"])
    assert btc.span[0].startswith("2017-08-17") and btc.span[1].startswith("2025-08-26")
    both = bundled_history(["BTC", "SOL"])
    assert both.assets == ("BTC", "ETH") and both.sources == {"BTC": "BTC", "SOL": "ETH"}
    assert len(both.returns) < 1_000
    model, _ = bundled_model("jump", ["BTC"])
    assert isinstance(model, JumpModel)
    total = model.sigma[0] ** 2 + model.jump_rate * (
        model.jump_mean[0] ** 2 + model.jump_std[0] ** 2
    )
    prices = np.exp(np.concatenate([[0.0], np.cumsum(btc.returns[:, 0])]))
    realised = realised_volatility(prices, 7200.0)
    assert math.sqrt(total) == pytest.approx(realised, rel=0.05)
    with pytest.raises(CrossMarginError, match="model"):
        bundled_model("garch", ["BTC"])
    with pytest.raises(CrossMarginError, match="underlyings"):
        bundled_history([])
