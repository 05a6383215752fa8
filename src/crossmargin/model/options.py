"""Option market data not in :class:`~crossmargin.model.Market`: the valuation time (the core
reads no clock), a vol per option symbol, or a :class:`VolSurface` per underlying."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from crossmargin.model.checks import positive
from crossmargin.model.errors import CrossMarginError

__all__ = ["OptionData", "VolSurface"]


@dataclass(frozen=True)
class VolSurface:
    """ATM vol per expiry (days, linear in total variance between nodes, flat outside) and a
    smile ``atm + skew * k + curvature * k**2`` in log-moneyness ``k = ln(K / F)``."""

    days: tuple[float, ...]
    atm: tuple[float, ...]
    skew: float = 0.0
    curvature: float = 0.0

    def __post_init__(self) -> None:
        if not self.days or len(self.days) != len(self.atm):
            raise CrossMarginError("surface.atm", "need one ATM vol per expiry node")
        for i, (d, v) in enumerate(zip(self.days, self.atm, strict=True)):
            positive(f"surface.days[{i}]", d)
            positive(f"surface.atm[{i}]", v)
        if list(self.days) != sorted(self.days):
            raise CrossMarginError("surface.days", "must be increasing")

    def atm_vol(self, days: float) -> float:
        """ATM vol at ``days`` to expiry."""
        d = min(max(days, self.days[0]), self.days[-1])
        var = np.interp(d, self.days, [v * v * t for v, t in zip(self.atm, self.days, strict=True)])
        return math.sqrt(float(var) / d)


@dataclass(frozen=True)
class OptionData:
    """Valuation time, option vols by symbol and surfaces by underlying (symbol vols win)."""

    valuation_time: datetime
    vols: Mapping[str, float] = field(default_factory=dict)
    surfaces: Mapping[str, VolSurface] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.valuation_time.tzinfo is None:
            raise CrossMarginError("valuation_time", "must carry a time zone")
        for symbol, vol in self.vols.items():
            positive(f"vols.{symbol}", vol)
