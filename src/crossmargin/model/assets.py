"""Collateral assets: how much of a balance counts as margin (collateral-value ratios)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from crossmargin.model.checks import finite, non_empty
from crossmargin.model.errors import CrossMarginError

__all__ = ["CollateralRule"]


@dataclass(frozen=True)
class CollateralRule:
    """Collateral-value ratio for one asset, flat or tiered by amount (Bybit/OKX/Binance style).

    ``up_to[t]`` is the upper bound, in units of the asset, of tier ``t``; the last bound is
    ``inf``. A positive balance counts ``sum_t units_in_tier_t * ratio_t``; a negative balance
    (a liability) counts in full. ``stable`` marks cash-like assets that a uniform market move
    leaves alone (crash distance).
    """

    asset: str
    up_to: tuple[float, ...] = (math.inf,)
    ratios: tuple[float, ...] = (1.0,)
    stable: bool = False

    def __post_init__(self) -> None:
        non_empty("asset", self.asset)
        if not self.ratios or len(self.ratios) != len(self.up_to):
            raise CrossMarginError("tiers", "need one ratio per tier and at least one tier")
        previous = 0.0
        for t, (bound, ratio) in enumerate(zip(self.up_to, self.ratios, strict=True)):
            finite(f"tiers[{t}].ratio", ratio)
            if not 0.0 <= ratio <= 1.0:
                raise CrossMarginError(f"tiers[{t}].ratio", f"must be within [0, 1], got {ratio}")
            if not bound > previous:
                raise CrossMarginError(f"tiers[{t}].up_to", "tier bounds must increase")
            previous = bound
        if self.up_to[-1] != math.inf:
            raise CrossMarginError("tiers", "the last tier must be unbounded (no up_to)")

    @classmethod
    def flat(cls, asset: str, ratio: float, *, stable: bool = False) -> CollateralRule:
        """One ratio for any amount."""
        return cls(asset, (math.inf,), (ratio,), stable)
