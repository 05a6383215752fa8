"""Spread charges and credits between tiers or underlyings (CME SPAN, methodology 1.2).

Intra-commodity: a combined commodity's expiries fall into tiers (by days to expiry), each tier
with its own price scan range; opposite net deltas of two tiers are matched into spreads in
priority order and charged per spread at that pair's rate, as CME publishes one charge per pair
of tiers. Inter-commodity: opposite net deltas of two combined
commodities are matched by delta ratio and credited a rate of each leg's weighted price risk
(scan risk per unit of net delta), WPR style; a cap limits a spread's total credit, which makes
the same kernel serve as the optional capped correlation credit between underlyings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "InterSpread",
    "IntraSchedule",
    "IntraSpread",
    "IntraTier",
    "inter_spread_credit",
    "intra_spread_charge",
]


@dataclass(frozen=True)
class IntraTier:
    """Expiries up to ``up_to_days`` days away (``inf`` for the last tier) and their price
    scan range as a fraction of the forward."""

    name: str
    up_to_days: float
    price_range: float


@dataclass(frozen=True)
class IntraSpread:
    """A spread between two tiers, charged per coin of matched delta ``rate x forward +
    charge`` (``charge`` in the scan risk currency)."""

    tier_a: str
    tier_b: str
    rate: float = 0.0
    charge: float = 0.0


@dataclass(frozen=True)
class IntraSchedule:
    """A combined commodity's tiers (nearest first) and spreads (in priority order)."""

    tiers: tuple[IntraTier, ...]
    spreads: tuple[IntraSpread, ...]

    def tier_of(self, days: float) -> IntraTier:
        """The tier of an expiry ``days`` away (undated rows: 0 days, the first tier)."""
        return next((t for t in self.tiers if days <= t.up_to_days), self.tiers[-1])

    def charges(self, forward: float) -> list[tuple[str, str, float]]:
        """(tier, tier, charge per coin of spread) in priority order at ``forward``."""
        return [(s.tier_a, s.tier_b, s.rate * forward + s.charge) for s in self.spreads]


@dataclass(frozen=True)
class InterSpread:
    """A credit between two combined commodities (or underlyings): delta ratio per leg (> 0), a
    credit rate in [0, 1] and a cap on the spread's total credit (in the legs' scan risk
    currency), as a PM rulebook's ``[[inter_spreads]]`` gives them."""

    leg_a: str
    leg_b: str
    ratio_a: float
    ratio_b: float
    rate: float
    cap: float = math.inf


def intra_spread_charge(
    deltas: Mapping[str, float], spreads: Sequence[tuple[str, str, float]]
) -> float:
    """Match opposite net deltas of tiers into spreads in priority order; charge per spread."""
    left = dict(deltas)
    total = 0.0
    for a, b, charge in spreads:
        da, db = left.get(a, 0.0), left.get(b, 0.0)
        if da * db < 0.0:
            n = min(abs(da), abs(db))
            total += n * charge
            left[a] = da - np.sign(da) * n
            left[b] = db - np.sign(db) * n
    return total


def inter_spread_credit(
    legs: Mapping[str, tuple[float, float]], spreads: Sequence[InterSpread]
) -> dict[str, float]:
    """Credit per combined commodity, WPR style. ``legs`` maps a commodity to (net delta, scan
    risk); the weighted price risk is scan / |delta|; each spread credits ``rate x spreads x
    ratio x WPR`` on both legs (scaled down to the spread's cap), consuming deltas in priority
    order."""
    left = {k: d for k, (d, _) in legs.items()}
    wpr = {k: (s / abs(d) if d else 0.0) for k, (d, s) in legs.items()}
    credit = dict.fromkeys(legs, 0.0)
    for sp in spreads:
        da, db = left.get(sp.leg_a, 0.0), left.get(sp.leg_b, 0.0)
        if da * db >= 0.0:
            continue
        n = min(abs(da) / sp.ratio_a, abs(db) / sp.ratio_b)
        ca, cb = (
            sp.rate * n * sp.ratio_a * wpr[sp.leg_a],
            sp.rate * n * sp.ratio_b * wpr[sp.leg_b],
        )
        scale = min(1.0, sp.cap / (ca + cb)) if ca + cb > 0 else 0.0
        credit[sp.leg_a] += ca * scale
        credit[sp.leg_b] += cb * scale
        left[sp.leg_a] = da - np.sign(da) * n * sp.ratio_a
        left[sp.leg_b] = db - np.sign(db) * n * sp.ratio_b
    return credit
