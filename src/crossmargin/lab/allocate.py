"""Split a trader's collateral over cross pools (one per venue account) and isolated positions
to maximise the share of simulated paths with no liquidation.

Each path needs at least a known amount in each bucket (the :class:`~crossmargin.lab.simulate.
Shortfalls` of one run, floored at what opening the positions takes: the initial margin less
the PnL at the start), and survives exactly when every bucket holds its amount. Survival at a
split is the share of paths whose needs it covers, so the best split of a capital is a choice
of paths to cover. The frontier is grown greedily: start from nothing and cover next the path
that adds least capital (the split becomes the bucket-wise largest need of the paths chosen),
until every path is covered. Each step gives one point of capital against survival; the split
for a capital is the last point within it, with what is left added to the cross pools (or
the documents' own split scaled to the capital, where that covers more paths).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crossmargin.health import evaluate
from crossmargin.io.results import to_data
from crossmargin.lab.report import Chart, Report, Section, Series
from crossmargin.lab.simulate import Shortfalls, VenueAccount, survival
from crossmargin.model import Account, CrossMarginError

__all__ = [
    "AllocationResult",
    "BucketShare",
    "FrontierPoint",
    "allocate",
    "frontier",
    "opening_needs",
]

Float = NDArray[np.float64]

TARGETS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 1.0)
CURVE = 200
GRID = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class FrontierPoint:
    """Least capital found for a survival probability (account currency)."""

    capital: float
    survival: float


@dataclass(frozen=True)
class BucketShare:
    """One bucket (``venue account:cross``, or ``venue account:SYMBOL`` for an isolated
    position): the amount allocated and the amount the documents give it now."""

    bucket: str
    amount: float
    current: float


@dataclass(frozen=True)
class AllocationResult:
    """``crossmargin allocate``: the split of ``capital``, its survival, the survival of the
    documents' own split scaled to the same capital, survival at multiples of the capital
    (``grid``), the least capital found for each survival target (``targets``) and the
    frontier itself (``curve``, at most :data:`CURVE` points); all over the same ``paths``
    paths."""

    capital: float
    paths: int
    survival: float
    proportional_survival: float
    allocation: tuple[BucketShare, ...]
    grid: tuple[FrontierPoint, ...]
    targets: tuple[FrontierPoint, ...]
    curve: tuple[FrontierPoint, ...]

    def report(self) -> Report:
        """The HTML report: the frontier chart, the split and the targets."""
        xs = tuple(p.capital for p in self.curve)
        line = Series("greedy split", xs, tuple(p.survival for p in self.curve))
        chart = Chart("frontier", "Capital against survival", "capital", "survival", (line,))
        return Report(
            f"Allocation of {self.capital:,.2f}",
            (
                Section("Frontier", chart=chart),
                Section(
                    "Split",
                    rows=tuple(self.rows()),
                    text=(
                        f"survival {100 * self.survival:.2f}% over {self.paths:,} paths; the "
                        f"documents' split scaled to the capital: "
                        f"{100 * self.proportional_survival:.2f}%"
                    ),
                ),
                Section(
                    "Least capital for each survival",
                    rows=tuple(
                        {"survival": p.survival, "capital": p.capital} for p in self.targets
                    ),
                ),
            ),
        )

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per bucket."""
        return [
            {"bucket": b.bucket, "amount": b.amount, "current": b.current} for b in self.allocation
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the one serialiser)."""
        out: dict[str, Any] = to_data(self)
        return out


def opening_needs(vas: Sequence[VenueAccount]) -> Float:
    """Per bucket (as :class:`Shortfalls` orders them) the collateral opening the positions
    takes at the start: cross IM less cross PnL; each isolated position's IM less its PnL."""
    out: list[float] = []
    for va in vas:
        health = evaluate(Account(va.account.id, {}, va.account.positions), va.market)
        cross = [p for p in health.positions if p.margin_mode == "cross"]
        out.append(sum(p.initial_margin - p.unrealized_pnl for p in cross) if cross else 0.0)
        for p in health.positions:
            out.append(p.initial_margin - p.unrealized_pnl if p.margin_mode != "cross" else 0.0)
    return np.array(out)


def frontier(need: Float) -> tuple[Float, Float, Float]:
    """Greedy frontier over paths' needs (paths, buckets; >= 0): capital and survival at each
    step and the split (steps, buckets) reached there."""
    split = np.zeros(need.shape[1])
    covered = (need <= split).all(axis=1)
    capitals, survivals, splits = [0.0], [float(covered.mean())], [split.copy()]
    while not covered.all():
        left = np.flatnonzero(~covered)
        extra = np.maximum(need[left] - split, 0.0).sum(axis=1)
        split = np.maximum(split, need[left[int(np.argmin(extra))]])
        covered = (need <= split).all(axis=1)
        capitals.append(float(split.sum()))
        survivals.append(float(covered.mean()))
        splits.append(split.copy())
    return np.array(capitals), np.array(survivals), np.array(splits)


def allocate(
    vas: Sequence[VenueAccount], shortfalls: Shortfalls, capital: float
) -> AllocationResult:
    """The best split found of ``capital`` for the venue accounts ``vas`` (as simulated, the
    document's modes) with their ``shortfalls``."""
    if not (math.isfinite(capital) and capital > 0.0):
        raise CrossMarginError("capital", f"must be a positive amount, got {capital}")
    floor = opening_needs(vas)
    need = np.maximum(np.maximum(shortfalls.need, floor), 0.0)
    capitals, survivals, splits = frontier(need)
    cross = np.array([label.endswith(":cross") for label in shortfalls.labels])
    current = shortfalls.current
    zero = np.zeros(len(current))

    def best(amount: float) -> tuple[Float, float]:
        k = int(np.searchsorted(capitals, amount, side="right")) - 1
        split = splits[k].copy()
        split[cross] += (amount - split.sum()) / cross.sum()
        at = Shortfalls(shortfalls.labels, zero, need)
        return split, survival(at, split)

    split, alive = best(capital)
    weights = current / current.sum() if current.sum() > 0 else cross / cross.sum()
    proportional = survival(Shortfalls(shortfalls.labels, zero, need), weights * capital)
    if proportional > alive:
        split, alive = weights * capital, proportional
    targets = []
    for target in TARGETS:
        k = np.flatnonzero(survivals >= target - 1e-12)
        if k.size:
            targets.append(FrontierPoint(float(capitals[k[0]]), float(survivals[k[0]])))
    used = cross | np.isfinite(shortfalls.need).any(axis=0)
    return AllocationResult(
        capital,
        len(need),
        alive,
        proportional,
        tuple(
            BucketShare(label, float(a), float(c))
            for label, a, c, u in zip(shortfalls.labels, split, current, used, strict=True)
            if u
        ),
        tuple(FrontierPoint(m * capital, best(m * capital)[1]) for m in GRID),
        tuple(targets),
        tuple(
            FrontierPoint(float(capitals[k]), float(survivals[k]))
            for k in np.unique(np.linspace(0, len(capitals) - 1, CURVE).round().astype(int))
        ),
    )
