"""Deribit portfolio margin (PME) per currency, in coin (venues.md 5.4).

    adjusted P&L = P&L x pnl_offset where P&L > 0, else P&L   (per scenario)
    worst_case   = max(-min(adjusted over standard and extended scenarios), 0)
    IM = worst_case + roll_shock + delta_shock,   MM = mm_factor x IM

Deribit publishes the roll- and delta-shock parameters but not their formulas; this engine uses

    roll_shock  = annualised_move_risk x |sum(qty x delta_coin x max(t, roll_min_days / 365))|
    delta_shock = |D| x max_delta_shock x min(1, |D| x F / delta_total_liq_shock_threshold)

with ``D`` the currency's net coin delta: a parallel basis move of the futures curve scaled by
time to expiry, and a delta charge that grows to ``max_delta_shock`` for very large portfolios.
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
    "DeribitMargins",
    "delta_shock",
    "deribit_margin",
    "deribit_rows",
    "offset_pnl",
    "roll_shock",
]

Float = NDArray[np.float64]


def offset_pnl(pnl: Float, pnl_offset: ArrayLike) -> Float:
    """Scenario P&L with gains scaled by ``pnl_offset`` (one value per row); losses in full."""
    off = np.asarray(pnl_offset, dtype=np.float64)
    return np.where(pnl > 0.0, pnl * (off[..., None] if off.ndim else off), pnl)


def roll_shock(delta_time: ArrayLike, annual_move: ArrayLike) -> Float:
    """``annual_move x |sum(qty x delta_coin x years)|`` given that sum per row."""
    return np.asarray(annual_move) * np.abs(np.asarray(delta_time, dtype=np.float64))


def delta_shock(
    net_delta: ArrayLike, forward: ArrayLike, max_shock: ArrayLike, threshold: ArrayLike
) -> Float:
    """Charge in coin on the net coin delta, growing linearly up to ``max_shock`` of it."""
    d = np.abs(np.asarray(net_delta, dtype=np.float64))
    cap = np.asarray(max_shock, dtype=np.float64)
    return d * cap * np.minimum(1.0, d * np.asarray(forward, dtype=np.float64) / threshold)


@dataclass(frozen=True)
class DeribitMargins:
    """Per row (account-currency unit): worst case, its scenario, add-ons, IM and MM (coin)."""

    pnl: Float
    worst_case: Float
    worst_scenario: NDArray[np.intp]
    roll_shock: Float
    delta_shock: Float
    initial: Float
    maintenance: Float


def deribit_rows(
    pnl: Float,
    delta_time: ArrayLike,
    net_delta: ArrayLike,
    forward: ArrayLike,
    params: Mapping[str, ArrayLike],
    mm_factor: float,
) -> DeribitMargins:
    """Deribit PM of many rows at once: ``pnl`` (rows x scenarios, coin), per row the sum of
    ``qty x delta_coin x years``, the net coin delta and the forward; ``params`` holds
    pnl_offset, annualised_move_risk, max_delta_shock, delta_total_liq_shock_threshold."""
    adjusted = offset_pnl(pnl, params["pnl_offset"])
    loss, idx = worst(adjusted)
    roll = roll_shock(delta_time, params["annualised_move_risk"])
    shock = delta_shock(
        net_delta, forward, params["max_delta_shock"], params["delta_total_liq_shock_threshold"]
    )
    im = loss + roll + shock
    return DeribitMargins(adjusted, loss, idx, roll, shock, im, mm_factor * im)


def deribit_margin(risk: AccountRisk, rulebook: PmRulebook) -> list[UnitMargin]:
    """One :class:`UnitMargin` per currency, in coin (USD when the rulebook counts in USD)."""
    a = risk.compiled.arrays
    keys = (
        "pnl_offset",
        "annualised_move_risk",
        "max_delta_shock",
        "delta_total_liq_shock_threshold",
    )
    params = {k: np.array([rulebook.param(u, k) for u in risk.units]) for k in keys}
    days = np.array([rulebook.param(u, "roll_min_days") for u in risk.compiled.underlyings])
    years = np.maximum(a.t, days / 365.0)
    delta = risk.greeks["delta_coin"]
    scale = np.where(risk.coin, 1.0, risk.unit_forward)
    m = deribit_rows(
        risk.unit_pnl / np.where(risk.coin, 1.0, risk.unit_forward)[:, None],
        risk.unit_sum(delta * years),
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
