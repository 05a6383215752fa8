"""Portfolio margin of one account's delta-one book at many prices at once (Monte Carlo paths).

A delta-one row's scenario P&L and USD delta are linear in its underlying's price: at a price
relative ``g`` both are ``g`` times their values at the base prices. The risk array is built
once (:func:`crossmargin.pm.risk.account_risk`, as ``crossmargin margin`` builds it) and each
re-margin is a product with the rows' relatives and the model's add-ons on arrays, so path
``p`` at relatives ``g[p]`` gets the maintenance margin the engine gives the account at those
prices. Time to expiry stays at the valuation time (a dated future does not age along a path).

Models: ``okx-pm`` (:func:`crossmargin.pm.okx.okx_charges`) without inter-underlying
credits or plugged MR2, MR3, MR5 (0, as ``crossmargin margin`` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossmargin.model import Account, CrossMarginError, Market, OptionData
from crossmargin.pm.okx import OkxLayout, okx_charges, okx_layout, unit_mmr
from crossmargin.pm.risk import account_risk
from crossmargin.rules import PmRulebook

__all__ = ["MODELS", "LinearPm", "linear_pm", "unsupported"]

Float = NDArray[np.float64]

MODELS = ("okx-pm",)
"""PM models margined along paths."""


@dataclass(frozen=True)
class LinearPm:
    """An account's holdings as PM rows at the base prices: each row's underlying, the rows'
    scenario P&L as one (rows, units x scenarios) block matrix (qty x risk array, USD, in the
    row's unit's block), their USD deltas and how they aggregate into units."""

    rulebook: PmRulebook
    underlyings: tuple[str, ...]
    units: tuple[str, ...]
    pnl: Float
    delta: Float
    layout: OkxLayout
    to_currency: float

    def maintenance(self, growth: Float) -> Float:
        """PM maintenance margin (account currency) at price relatives ``growth`` (paths,
        rows) of each row's underlying."""
        pnl = (growth @ self.pnl).reshape(len(growth), len(self.units), -1)
        charges = okx_charges(self.layout, pnl, growth * self.delta, self.rulebook, self.units)
        out: Float = unit_mmr(charges).sum(axis=-1) * self.to_currency
        return out


def unsupported(rulebook: PmRulebook) -> str | None:
    """Why ``rulebook`` is not margined along paths (None: it is)."""
    if rulebook.model not in MODELS:
        return f"{rulebook.name} ({rulebook.model}) is not simulated; {', '.join(MODELS)} is"
    if rulebook.inter_spreads:
        return f"{rulebook.name}'s credits between underlyings are not simulated"
    return None


def linear_pm(account: Account, market: Market, rulebook: PmRulebook, data: OptionData) -> LinearPm:
    """The account's rows under ``rulebook`` (see :func:`unsupported`); options are refused."""
    reason = unsupported(rulebook)
    if reason is not None:
        raise CrossMarginError("portfolio_margin", reason)
    risk = account_risk(account, market, rulebook, data)
    a = risk.compiled.arrays
    if a.is_option.any():
        raise CrossMarginError("positions", "options are not margined along paths")
    scenarios = risk.risk.shape[1]
    block = np.zeros((len(risk.qty), len(risk.units) * scenarios))
    for r, k in enumerate(risk.unit_of_row.tolist()):
        block[r, k * scenarios : (k + 1) * scenarios] = risk.qty[r] * risk.risk[r]
    return LinearPm(
        rulebook,
        risk.compiled.underlyings,
        risk.units,
        block,
        risk.qty * risk.greeks["delta_usd"],
        okx_layout(risk),
        1.0 / market.asset_price(market.currency),
    )
