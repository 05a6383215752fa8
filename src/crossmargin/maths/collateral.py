"""Collateral haircuts: tiered collateral-value ratios applied to positive balances.

Source: Bybit UTA "Assets Collateral Value Ratio List" (value = sum over tiers of the amount in
the tier times its ratio; negative balances count at 100%).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import guvectorize
from numpy.typing import ArrayLike, NDArray

from crossmargin.model.assets import CollateralRule

__all__ = ["collateral_table", "collateral_units", "units_for_collateral"]

Float = NDArray[np.float64]


def collateral_table(rules: Sequence[CollateralRule]) -> tuple[Float, Float]:
    """The tiers of ``rules`` as (assets, T) arrays ``up_to`` and ``ratios``, padded with
    ``up_to = inf`` and ratio 0: the layout :func:`collateral_units` takes."""
    t = max((len(r.ratios) for r in rules), default=1)
    up_to = np.full((len(rules), t), np.inf)
    ratios = np.zeros((len(rules), t))
    for a, rule in enumerate(rules):
        up_to[a, : len(rule.up_to)] = rule.up_to
        ratios[a, : len(rule.ratios)] = rule.ratios
    return up_to, ratios


def _lower(up_to: Float) -> Float:
    zeros = np.zeros((*up_to.shape[:-1], 1))
    return np.concatenate([zeros, up_to[..., :-1]], axis=-1)


@guvectorize(  # type: ignore[untyped-decorator]
    ["void(float64, float64[:], float64[:], float64[:])"],
    "(),(t),(t)->()",
    cache=True,
)
def _units(amount: float, up_to: Float, ratios: Float, out: Float) -> None:
    if amount <= 0.0:
        out[0] = amount
        return
    counted = 0.0
    lower = 0.0
    for k in range(up_to.shape[0]):
        upper = up_to[k]
        if upper < amount:
            counted += (upper - lower) * ratios[k]
            lower = upper
        else:
            counted += (amount - lower) * ratios[k]
            break
    out[0] = counted


def collateral_units(amount: ArrayLike, up_to: ArrayLike, ratios: ArrayLike) -> Float:
    """Units of ``amount`` that count as collateral; ``up_to``/``ratios`` have a tier axis last
    (broadcast against ``amount``): the sum over tiers of the amount in the tier times its
    ratio. A negative amount (owed) counts in full.

    Rows with fewer tiers are padded with ``up_to = inf``; tiers above an infinite bound count 0.
    """
    counted: Float = _units(
        np.asarray(amount, dtype=np.float64),
        np.asarray(up_to, dtype=np.float64),
        np.asarray(ratios, dtype=np.float64),
    )
    return counted


def units_for_collateral(target: float, up_to: ArrayLike, ratios: ArrayLike) -> float:
    """Smallest amount >= 0 whose collateral units reach ``target`` (inverse of the haircut).

    ``target`` must not exceed what the tiers can reach; returns 0 for ``target`` <= 0.
    """
    if target <= 0.0:
        return 0.0
    bounds = np.asarray(up_to, dtype=np.float64)
    rate = np.asarray(ratios, dtype=np.float64)
    lower = _lower(bounds)
    width = bounds - lower
    reached = np.cumsum(np.where(rate > 0, width * rate, 0.0))
    t = int(np.searchsorted(reached, target * (1.0 - 1e-15), side="left"))
    before = reached[t - 1] if t > 0 else 0.0
    return float(lower[t] + (target - before) / rate[t])
