"""Portfolio margin of one account's delta-one book at many prices at once (Monte Carlo paths).

A delta-one row's scenario P&L and USD delta are linear in its underlying's price: at a price
relative ``g`` both are ``g`` times their values at the base prices. The risk array is built
once (:func:`crossmargin.pm.risk.account_risk`, as ``crossmargin margin`` builds it) and each
re-margin is a product with the rows' relatives and the model's add-ons on arrays, so path
``p`` at relatives ``g[p]`` gets the maintenance margin the engine gives the account at those
prices. Time to expiry stays at the valuation time (a dated future does not age along a path).

Models: ``okx-pm`` (:func:`crossmargin.pm.okx.unit_charges`) without inter-underlying
credits or plugged MR2, MR3, MR5 (0, as ``crossmargin margin`` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossmargin.model import Account, CrossMarginError, Kind, Market, OptionData
from crossmargin.pm.okx import unit_charges, unit_mmr
from crossmargin.pm.risk import account_risk
from crossmargin.rules import PmRulebook

__all__ = ["MODELS", "LinearPm", "linear_pm", "unsupported"]

Float = NDArray[np.float64]

MODELS = ("okx-pm",)
"""PM models margined along paths."""


@dataclass(frozen=True)
class LinearPm:
    """An account's holdings as PM rows: ``underlyings`` per row, and per unit its rows, their
    scenario P&L (qty x risk array, USD, rows x scenarios) and USD deltas at the base prices."""

    rulebook: PmRulebook
    underlyings: tuple[str, ...]
    units: tuple[str, ...]
    rows: tuple[NDArray[np.intp], ...]
    pnl: tuple[Float, ...]
    delta: tuple[Float, ...]
    years: tuple[Float, ...]
    futures: tuple[NDArray[np.bool_], ...]
    settles: tuple[tuple[str, ...], ...]
    to_currency: float

    def maintenance(self, growth: Float) -> Float:
        """PM maintenance margin (account currency) at price relatives ``growth`` (paths,
        rows) of each row's underlying."""
        kinds = np.array(self.rulebook.grid.kind)
        total = np.zeros(growth.shape[0])
        for k, u in enumerate(self.units):
            g = growth[:, self.rows[k]]
            charges = unit_charges(
                g @ self.pnl[k],
                kinds,
                g * self.delta[k],
                self.years[k],
                self.futures[k],
                self.settles[k],
                u,
                self.rulebook,
            )
            total += unit_mmr(charges)
        out: Float = total * self.to_currency
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
    delta = risk.qty * risk.greeks["delta_usd"]
    years = np.where(a.t > 0, a.t, 1.0 / 365.0)
    futures = np.array([i.kind in (Kind.FUTURE, Kind.PERPETUAL) for i in risk.instruments])
    settles = tuple(i.quote if i.inverse else i.settle for i in risk.instruments)
    rows = tuple(risk.rows_of(u) for u in risk.units)
    return LinearPm(
        rulebook,
        risk.compiled.underlyings,
        risk.units,
        rows,
        tuple(risk.qty[r, None] * risk.risk[r] for r in rows),
        tuple(delta[r] for r in rows),
        tuple(years[r] for r in rows),
        tuple(futures[r] for r in rows),
        tuple(tuple(settles[i] for i in r.tolist()) for r in rows),
        1.0 / market.asset_price(market.currency),
    )
