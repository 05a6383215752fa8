"""Deribit portfolio margin (PME) per currency, in coin (venues.md 5.4).

Per scenario the aggregated P&L counts as Deribit's ``private/pme/simulate`` aggregates it:

    standard table: P&L x pnl_offset where P&L > 0, else P&L
    extended table: min(P&L + extended_dampener / F, 0)    (only losses beyond the dampener)
    worst_case = max(-min(counted P&L over both tables), 0)
    IM = worst_case + roll_shock + delta_shock,   MM = mm_factor x IM

with the extended moves revalued at vol up, weighted by the table factor and with futures and
spot moved at most +-price_range (see :mod:`crossmargin.rules.grid`); a futures-only book's
worst case is therefore the edge of the standard table, as in Deribit's simulator.

    roll_shock  = sum over positions of |qty x delta_coin| x max(annualised_move_risk x t,
                  min_annualised_move)                      (t in years; 0 for perpetuals)
    delta_shock = max_delta_shock x max(|D| - delta_total_liq_shock_threshold / F, 0)

``D`` is the currency's net coin delta and ``F`` its forward in USD. Both published simulate
responses (Deribit's API documentation example with BTC-PERPETUAL and BTC-28JUN24, and a
short ETH-PERPETUAL) are reproduced exactly by these forms; Deribit publishes the parameters but
not the formulas, so the extended dampener's form and the delta shock above its threshold are
the engine's reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossmargin.maths.scenarios import worst
from crossmargin.pm.risk import AccountRisk, UnitMargin
from crossmargin.rules import PmRulebook

__all__ = [
    "PARAMS",
    "DeribitMargins",
    "counted_pnl",
    "delta_shock",
    "deribit_margin",
    "deribit_rows",
    "extended_columns",
    "roll_moves",
]

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]

PARAMS = (
    "pnl_offset",
    "extended_dampener",
    "max_delta_shock",
    "delta_total_liq_shock_threshold",
)
"""Per-currency parameters :func:`deribit_rows` reads (``[underlyings.X]`` of the rulebook)."""


def counted_pnl(pnl: Float, extended: Bool, pnl_offset: ArrayLike, dampener: ArrayLike) -> Float:
    """Scenario P&L as counted (see the module docstring): ``extended`` marks the extended
    columns; ``pnl_offset`` and ``dampener`` (coin) are one value per row or one for all."""
    off = np.asarray(pnl_offset, dtype=np.float64)
    damp = np.asarray(dampener, dtype=np.float64)
    off = off[..., None] if off.ndim else off
    damp = damp[..., None] if damp.ndim else damp
    standard = np.where(pnl > 0.0, pnl * off, pnl)
    return np.where(extended, np.minimum(pnl + damp, 0.0), standard)


def roll_moves(years: ArrayLike, annual_move: ArrayLike, min_move: ArrayLike) -> Float:
    """Roll move of each position: ``max(annual_move x years, min_move)`` (fractions)."""
    t = np.asarray(years, dtype=np.float64)
    return np.maximum(np.asarray(annual_move) * t, np.asarray(min_move, dtype=np.float64))


def delta_shock(
    net_delta: ArrayLike, forward: ArrayLike, max_shock: ArrayLike, threshold: ArrayLike
) -> Float:
    """Charge in coin on the net coin delta beyond ``threshold`` USD (0 up to it)."""
    d = np.abs(np.asarray(net_delta, dtype=np.float64))
    excess = np.maximum(d - np.asarray(threshold) / np.asarray(forward, dtype=np.float64), 0.0)
    return np.asarray(max_shock, dtype=np.float64) * excess


@dataclass(frozen=True)
class DeribitMargins:
    """Per row (account-currency unit), in coin: counted scenario P&L, worst case and its
    scenario, add-ons, IM and MM."""

    pnl: Float
    worst_case: Float
    worst_scenario: NDArray[np.intp]
    roll_shock: Float
    delta_shock: Float
    initial: Float
    maintenance: Float


def deribit_rows(
    pnl: Float,
    extended: Bool,
    roll: ArrayLike,
    net_delta: ArrayLike,
    forward: ArrayLike,
    params: Mapping[str, ArrayLike],
    mm_factor: float,
) -> DeribitMargins:
    """Deribit PM of many rows at once: ``pnl`` (rows x scenarios, coin), the extended-column
    mask, per row the roll shock (``sum |qty x delta_coin| x roll move``), the net coin delta
    and the forward (USD); ``params`` holds :data:`PARAMS` per row (the dampener in USD)."""
    f = np.asarray(forward, dtype=np.float64)
    damp = np.asarray(params["extended_dampener"], dtype=np.float64) / f
    counted = counted_pnl(pnl, extended, params["pnl_offset"], damp)
    loss, idx = worst(counted)
    roll_coin = np.asarray(roll, dtype=np.float64)
    shock = delta_shock(
        net_delta, f, params["max_delta_shock"], params["delta_total_liq_shock_threshold"]
    )
    im = loss + roll_coin + shock
    return DeribitMargins(counted, loss, idx, roll_coin, shock, im, mm_factor * im)


def extended_columns(rulebook: PmRulebook) -> Bool:
    """Mask of the grid's extended scenarios."""
    return np.array([k == "extended" for k in rulebook.grid.kind], dtype=bool)


def deribit_margin(risk: AccountRisk, rulebook: PmRulebook) -> list[UnitMargin]:
    """One :class:`UnitMargin` per currency, in coin (USD when the rulebook counts in USD)."""
    a = risk.compiled.arrays
    params = {k: np.array([rulebook.param(u, k) for u in risk.units]) for k in PARAMS}
    unders = risk.compiled.underlyings
    moves = roll_moves(
        a.t,
        [rulebook.param(u, "annualised_move_risk") for u in unders],
        [rulebook.param(u, "min_annualised_move") for u in unders],
    )
    delta = risk.greeks["delta_coin"]
    roll = np.bincount(
        risk.unit_of_row, np.abs(risk.qty * delta) * moves, minlength=len(risk.units)
    )
    scale = np.where(risk.coin, 1.0, risk.unit_forward)
    m = deribit_rows(
        risk.unit_pnl / scale[:, None],
        extended_columns(rulebook),
        roll,
        risk.unit_sum(delta),
        risk.unit_forward,
        params,
        rulebook.number("mm_factor"),
    )
    return [
        UnitMargin(
            u,
            u if risk.coin else "USD",
            float(risk.unit_forward[k]),
            m.pnl[k] * scale[k],
            float(m.worst_case[k] * scale[k]),
            int(m.worst_scenario[k]),
            {
                "roll_shock": float(m.roll_shock[k] * scale[k]),
                "delta_shock": float(m.delta_shock[k] * scale[k]),
            },
            float(m.initial[k] * scale[k]),
            float(m.maintenance[k] * scale[k]),
        )
        for k, u in enumerate(risk.units)
    ]
