"""Black-76 prices and Greeks of European options on a forward, linear or inverse.

Linear (USD-settled) value per unit of underlying, discount factor ``df = exp(-r T)``:

    call = df * (F N(d1) - K N(d2)),  put = df * (K N(-d2) - F N(-d1)),
    d1 = (ln(F/K) + sigma^2 T / 2) / (sigma sqrt(T)),  d2 = d1 - sigma sqrt(T).

Inverse (coin-settled, Deribit style) value is the linear value divided by the forward, in coin
per unit of underlying. Every Greek is the derivative of the value the function returns: delta
= dV/dF, gamma = d2V/dF2, vega = dV/dsigma (per 1.00 of vol), theta = dV/dt = -dV/dT (per year).
Inputs broadcast; ``sigma * sqrt(T)`` is floored at 1e-12 so a zero vol gives intrinsic value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

__all__ = ["Greeks", "greeks", "implied_vol", "price"]

Float = NDArray[np.float64]
_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class Greeks:
    """Value and first/second-order sensitivities (see the module docstring for units)."""

    price: Float
    delta: Float
    gamma: Float
    vega: Float
    theta: Float


def _d1_d2(f: Float, k: Float, t: Float, sigma: Float) -> tuple[Float, Float, Float]:
    sd = np.maximum(sigma * np.sqrt(t), 1e-12)
    d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
    return d1, d1 - sd, sd


def _linear(
    f: Float, k: Float, t: Float, sigma: Float, is_call: NDArray[np.bool_], df: Float
) -> tuple[Float, Float, Float, Float, Float]:
    """Linear price, delta, gamma, vega and dV/dT."""
    d1, d2, sd = _d1_d2(f, k, t, sigma)
    sign = np.where(is_call, 1.0, -1.0)
    value = df * sign * (f * ndtr(sign * d1) - k * ndtr(sign * d2))
    pdf = np.exp(-0.5 * d1 * d1) / _SQRT_2PI
    delta = df * sign * ndtr(sign * d1)
    gamma = df * pdf / (f * sd)
    vega = df * f * pdf * np.sqrt(t)
    rate = -np.log(df) / np.where(t > 0, t, 1.0)
    dv_dt = -rate * value + df * f * pdf * sd / (2.0 * np.maximum(t, 1e-300))
    return value, delta, gamma, vega, dv_dt


def _arrays(
    forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, rate: ArrayLike
) -> tuple[Float, Float, Float, Float, Float]:
    f, k, tt, s, r = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (forward, strike, t, sigma, rate))
    )
    return f, k, tt, s, np.exp(-r * tt)


def price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    inverse: ArrayLike = False,
    rate: ArrayLike = 0.0,
) -> Float:
    """Option value: USD per unit of underlying (linear) or coin per unit (inverse)."""
    f, k, tt, s, df = _arrays(forward, strike, t, sigma, rate)
    d1, d2, _ = _d1_d2(f, k, tt, s)
    sign = np.where(np.asarray(is_call, dtype=bool), 1.0, -1.0)
    value: Float = df * sign * (f * ndtr(sign * d1) - k * ndtr(sign * d2))
    return np.where(inverse, value / f, value)


def greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    inverse: ArrayLike = False,
    rate: ArrayLike = 0.0,
) -> Greeks:
    """Price and Greeks; for inverse options the derivatives of the coin value V / F."""
    f, k, tt, s, df = _arrays(forward, strike, t, sigma, rate)
    v, delta, gamma, vega, dv_dt = _linear(f, k, tt, s, np.asarray(is_call, dtype=bool), df)
    inv = np.asarray(inverse, dtype=bool)
    inv_delta = (delta - v / f) / f
    inv_gamma = (gamma - 2.0 * inv_delta) / f
    return Greeks(
        price=np.where(inv, v / f, v),
        delta=np.where(inv, inv_delta, delta),
        gamma=np.where(inv, inv_gamma, gamma),
        vega=np.where(inv, vega / f, vega),
        theta=np.where(inv, -dv_dt / f, -dv_dt),
    )


def implied_vol(
    value: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    inverse: ArrayLike = False,
    rate: ArrayLike = 0.0,
    tol: float = 1e-14,
    max_iter: int = 100,
) -> Float:
    """Vol that reproduces ``value`` (same units as :func:`price`); NaN outside no-arbitrage bounds.

    An in-the-money price is first turned into the out-of-the-money option of the other type by
    put-call parity (its time value carries the information); then safeguarded Newton: each step
    stays inside a bracket [lo, hi] that bisection shrinks, until the vol step is below ``tol``.
    """
    f, k, tt, _, df = _arrays(forward, strike, t, 0.0, rate)
    call = np.broadcast_to(np.asarray(is_call, dtype=bool), f.shape)
    target = np.where(inverse, np.asarray(value, dtype=np.float64) * f, value) * np.ones_like(f)
    intrinsic = df * np.maximum(np.where(call, f - k, k - f), 0.0)
    upper = df * np.where(call, f, k)
    valid = (target > intrinsic) & (target < upper)
    otm_call = f < k
    target = target - intrinsic + df * np.maximum(np.where(otm_call, f - k, k - f), 0.0)
    lo = np.zeros_like(f)
    hi = np.full_like(f, 10.0)
    sigma = np.full_like(f, 0.5)
    for _ in range(max_iter):
        v, _, _, vega, _ = _linear(f, k, tt, sigma, otm_call, df)
        diff = v - target
        lo = np.where(diff < 0, sigma, lo)
        hi = np.where(diff > 0, sigma, hi)
        step = sigma - diff / np.where(vega > 0, vega, np.inf)
        inside = (step > lo) & (step < hi)
        new = np.where(inside, step, 0.5 * (lo + hi))
        done = np.all(np.abs(new - sigma)[valid] <= tol * np.maximum(sigma[valid], 1.0))
        sigma = new
        if done:
            break
    return np.where(valid, sigma, np.nan)
