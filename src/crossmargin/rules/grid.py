"""Portfolio-margin scenario grids as data: price moves x vol moves, extreme or extended moves,
time decay.

A grid is read from a rulebook table such as::

    [grid]
    price_range = 0.16          # default scale of scaled moves (per underlying in [underlyings])
    price_steps = 4             # moves -1, -3/4, ..., +1 times the range (or price_moves = [...])
    vol_moves = [1, 0, -1]      # vol states per price move
    time_decay_days = 0.0
    [grid.extreme]              # SPAN: +-multiple x range at vol_move, P&L x covered
    multiple = 2.0
    covered = 0.35
    vol_move = 0.0
    [grid.extended]             # Deribit: explicit fractions, vol up, P&L x factor
    moves = [-0.66, -0.33, 0.5, 1.0]
    vol_move = 1.0
    factor = 1.0
    cap_delta_one = true        # futures and spot move at most +-price_range here

Scenario order: for each price move, each vol state; then extreme moves; then extended moves.
``cap_delta_one`` follows Deribit's simulator, whose extended vector of a future holds the
standard table's edge P&L (``private/pme/simulate``: ``initial_risk_vectors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossmargin.maths.scenarios import ScenarioArrays
from crossmargin.model import CrossMarginError
from crossmargin.model.checks import finite, non_negative, positive

__all__ = ["ScenarioGrid", "grid_from_table"]


@dataclass(frozen=True)
class ScenarioGrid:
    """Scenarios with labels; ``kind`` is ``standard``, ``extreme`` or ``extended``."""

    arrays: ScenarioArrays
    kind: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.arrays.size == 0:
            raise CrossMarginError("grid.price_moves", "the scenario grid is empty")

    @property
    def size(self) -> int:
        """Number of scenarios."""
        return self.arrays.size

    def rows(self, price_range: float) -> list[dict[str, Any]]:
        """One dict per scenario: index, kind, price move as a fraction, vol move, weight."""
        a = self.arrays
        return [
            {
                "scenario": i + 1,
                "kind": self.kind[i],
                "price_move": float(a.price_move[i] * (price_range if a.scaled[i] else 1.0)),
                "vol_move": float(a.vol_move[i]),
                "weight": float(a.weight[i]),
            }
            for i in range(self.size)
        ]


def _floats(path: str, values: Any) -> list[float]:
    if not isinstance(values, list):
        raise CrossMarginError(path, "must be a list of numbers")
    return [finite(f"{path}[{i}]", v) for i, v in enumerate(values)]


def grid_from_table(table: Mapping[str, Any], path: str = "grid") -> ScenarioGrid:
    """Build a grid from its rulebook table (see the module docstring)."""
    if "price_moves" in table:
        moves = _floats(f"{path}.price_moves", table["price_moves"])
    else:
        steps = int(positive(f"{path}.price_steps", table.get("price_steps", 0)))
        moves = [i / steps for i in range(-steps, steps + 1)]
    if not moves:
        raise CrossMarginError(f"{path}.price_moves", "the scenario grid is empty")
    vols = _floats(f"{path}.vol_moves", table.get("vol_moves", [0.0]))
    if not vols:
        raise CrossMarginError(f"{path}.vol_moves", "need at least one vol state")
    dt = non_negative(f"{path}.time_decay_days", table.get("time_decay_days", 0.0)) / 365.0
    cols: list[tuple[float, bool, float, float, str, bool]] = [
        (m, True, v, 1.0, "standard", False) for m in moves for v in vols
    ]
    if "extreme" in table:
        ext = table["extreme"]
        mult = positive(f"{path}.extreme.multiple", ext.get("multiple", 2.0))
        cover = non_negative(f"{path}.extreme.covered", ext.get("covered", 1.0))
        vol = finite(f"{path}.extreme.vol_move", ext.get("vol_move", 0.0))
        cols += [(s * mult, True, vol, cover, "extreme", False) for s in (1.0, -1.0)]
    if "extended" in table:
        ext = table["extended"]
        factor = non_negative(f"{path}.extended.factor", ext.get("factor", 1.0))
        vol = finite(f"{path}.extended.vol_move", ext.get("vol_move", 1.0))
        cap = ext.get("cap_delta_one", False)
        if not isinstance(cap, bool):
            raise CrossMarginError(f"{path}.extended.cap_delta_one", "must be true or false")
        for i, m in enumerate(_floats(f"{path}.extended.moves", ext.get("moves", []))):
            if m <= -1.0:
                raise CrossMarginError(f"{path}.extended.moves[{i}]", "must be above -1")
            cols.append((m, False, vol, factor, "extended", cap))
    return _grid(cols, dt)


def _grid(cols: list[tuple[float, bool, float, float, str, bool]], dt: float) -> ScenarioGrid:
    capped = np.array([c[5] for c in cols], dtype=bool)
    arrays = ScenarioArrays(
        price_move=np.array([c[0] for c in cols], dtype=np.float64),
        scaled=np.array([c[1] for c in cols], dtype=bool),
        vol_move=np.array([c[2] for c in cols], dtype=np.float64),
        weight=np.array([c[3] for c in cols], dtype=np.float64),
        dt=np.full(len(cols), dt),
        delta_one_capped=capped if capped.any() else None,
    )
    return ScenarioGrid(arrays, tuple(c[4] for c in cols))
