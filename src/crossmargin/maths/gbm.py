"""One step of a geometric Brownian motion (the synthetic price feed's model).

With annualised volatility ``sigma`` and drift ``mu``, over ``dt`` years and a standard normal
draw ``z``: ``S' = S * exp((mu - sigma**2 / 2) * dt + sigma * sqrt(dt) * z)`` (the exact
solution of dS = mu S dt + sigma S dW; Hull, *Options, Futures and Other Derivatives*, 15.6).
"""

from __future__ import annotations

import math

__all__ = ["gbm_step"]


def gbm_step(price: float, sigma: float, dt: float, z: float, mu: float = 0.0) -> float:
    """The price after one step of ``dt`` years with the standard normal draw ``z``."""
    return price * math.exp((mu - 0.5 * sigma * sigma) * dt + sigma * math.sqrt(dt) * z)
