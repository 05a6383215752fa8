"""First passage of a geometric Brownian motion through a price barrier.

Under GBM the log price drifts at ``nu = mu - sigma**2 / 2`` per year with volatility ``sigma``
per square-root year. The probability that the price touches a barrier at least once within a
horizon is the reflection-principle formula (Shreve, *Stochastic Calculus for Finance II*, 7.2;
Hull, *Options, Futures and Other Derivatives*, barrier options): for a barrier below the spot,
``b = ln(barrier / spot) < 0``,

    P(min X_t <= b) = N((b - nu*T) / (sigma*sqrt(T)))
                      + exp(2*nu*b / sigma**2) * N((b + nu*T) / (sigma*sqrt(T)))

and the mirror image for a barrier above. It is the chance that a mark ever reaches a position's
liquidation price within the horizon, not only at its end. Horizons are in years.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

__all__ = ["hit_probability", "realised_volatility"]

SECONDS_PER_YEAR = 365.0 * 24.0 * 3600.0


def hit_probability(
    spot: ArrayLike,
    barrier: ArrayLike,
    sigma: ArrayLike,
    horizon: ArrayLike,
    mu: ArrayLike = 0.0,
) -> NDArray[np.float64]:
    """Probability that a GBM started at ``spot`` touches ``barrier`` within ``horizon`` years.

    ``sigma`` and ``mu`` are annualised (``mu`` the price drift; 0 means the log price drifts
    down at ``sigma**2 / 2``). A barrier at or past the spot is already reached (1); a zero
    horizon or volatility never reaches one strictly away (0). NaN barriers (no liquidation
    price) give 0. Broadcasts over its arguments.
    """
    s = np.asarray(spot, dtype=np.float64)
    k = np.asarray(barrier, dtype=np.float64)
    vol = np.asarray(sigma, dtype=np.float64)
    t = np.asarray(horizon, dtype=np.float64)
    nu = np.asarray(mu, dtype=np.float64) - 0.5 * vol * vol
    s, k, vol, t, nu = np.broadcast_arrays(s, k, vol, t, nu)
    out = np.zeros(s.shape, dtype=np.float64)
    valid = (s > 0.0) & (k > 0.0) & np.isfinite(k)
    b = np.zeros(s.shape, dtype=np.float64)
    np.log(k / s, out=b, where=valid)
    moving = valid & (vol > 0.0) & (t > 0.0) & (b != 0.0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        root = vol * np.sqrt(t)
        down = np.where(b < 0.0, 1.0, -1.0)
        bb = down * b
        nn = down * nu
        reflect = np.exp(np.minimum(2.0 * nn * bb / (vol * vol), 700.0))
        p = ndtr((bb - nn * t) / root) + reflect * ndtr((bb + nn * t) / root)
    out[moving] = np.clip(p[moving], 0.0, 1.0)
    out[valid & (b == 0.0)] = 1.0
    return out


def realised_volatility(prices: ArrayLike, interval_seconds: float) -> float:
    """Annualised volatility of log returns of a price series sampled every ``interval_seconds``
    (sample standard deviation times the square root of periods per year); 0 for fewer than
    three prices."""
    p = np.asarray(prices, dtype=np.float64)
    if p.size < 3 or interval_seconds <= 0.0:
        return 0.0
    r = np.diff(np.log(p))
    return float(np.std(r, ddof=1) * np.sqrt(SECONDS_PER_YEAR / interval_seconds))
