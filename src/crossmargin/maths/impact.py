"""Square-root market impact: how far a block of market orders moves the price.

The square-root law (Tóth, Lempérière, Deremble, de Lataillade, Kockelkoren and Bouchaud,
"Anomalous price impact and the critical nature of liquidity in financial markets", Phys. Rev.
X 1, 021006, 2011; on Bitcoin over four decades of size: Donier and Bonart, "A million
metaorder analysis of market impact on the Bitcoin", 2015) gives the relative price move of a
metaorder of notional ``Q`` in a market trading ``V`` a day with daily volatility ``sigma``:

    dP / P = sign(Q) * Y * sigma * sqrt(|Q| / V)

``Q`` is signed (> 0 buys push the price up, < 0 sells push it down), ``Q`` and ``V`` in the
same currency, ``sigma`` a fraction per day and ``Y`` a dimensionless constant of order one
(Tóth et al. fit 0.5-1 on futures). Scaling ``V`` by a depth factor stands for a thinner book:
depth 0.02 makes every order move the price sqrt(50) ~ 7 times as far.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["sqrt_impact"]

Float = NDArray[np.float64]


def sqrt_impact(
    flow: ArrayLike, daily_volume: ArrayLike, sigma_daily: ArrayLike, y: ArrayLike = 1.0
) -> Float:
    """Relative price move ``sign(flow) * y * sigma_daily * sqrt(|flow| / daily_volume)``.

    ``flow`` is the signed notional traded (buys > 0); ``daily_volume`` > 0 is the depth the
    flow meets, in the same currency. Inputs broadcast; zero flow moves nothing.
    """
    q = np.asarray(flow, dtype=np.float64)
    v = np.asarray(daily_volume, dtype=np.float64)
    move: Float = np.sign(q) * np.asarray(y) * np.asarray(sigma_daily) * np.sqrt(np.abs(q) / v)
    return move
