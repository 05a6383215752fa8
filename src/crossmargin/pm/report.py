"""Portfolio-margin report of one account, beside its positions under standard margin.

Amounts are in the market's account currency; per-unit amounts are also given in the unit's
own currency (coin for Deribit-style inverse portfolios). Standard margin is the engine's usual
futures margin (:func:`crossmargin.health.evaluate`) plus the standard short-option rules of
the PM rulebook's ``[standard_options]``.

The PM health view gates the account the way a PM venue does: equity is the standard cross
equity of the non-option legs plus the options' net mark value (long > 0, short < 0), and the
status compares it with the PM maintenance margin.

The result is a :class:`PortfolioMarginReport`; its field names are the keys of the
``portfolio_margin`` object of the JSON output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from crossmargin.health import AccountHealth, evaluate
from crossmargin.maths.spreads import inter_spread_credit
from crossmargin.maths.status import Status, margin_ratio, status
from crossmargin.model import Account, Market, OptionData
from crossmargin.pm.deribit import deribit_margin
from crossmargin.pm.greeks import aggregate_greeks
from crossmargin.pm.okx import Component, okx_margin
from crossmargin.pm.risk import AccountRisk, UnitMargin, account_risk, option_values
from crossmargin.pm.span import span_margin
from crossmargin.pm.standard_options import standard_option_margin
from crossmargin.rules import PmRulebook

__all__ = [
    "PortfolioMarginReport",
    "RulebookSource",
    "UnitReport",
    "WorstScenario",
    "correlation_credit",
    "non_option_health",
    "option_value",
    "pm_margins",
    "portfolio_margin_report",
    "standard_margin",
]

Greeks = Mapping[str, Mapping[str, Mapping[str, float]]]


@dataclass(frozen=True)
class RulebookSource:
    """The PM rulebook a report was computed under."""

    name: str
    source: str
    as_of: str


@dataclass(frozen=True)
class WorstScenario:
    """A unit's worst scenario: 1-based index, grid kind, price move as a fraction (where the
    grid scales it, by the price range of the unit's largest delta: SPAN tiers scan each
    expiry by its own range) and vol move."""

    underlying: str
    scenario: int
    kind: str
    price_move: float
    vol_move: float


@dataclass(frozen=True)
class UnitReport:
    """One risk unit (underlying) in its own currency (coin or USD): the scenario P&L it is
    margined on (> 0 a gain), its worst case, add-ons and IM / MM."""

    underlying: str
    currency: str
    forward: float
    risk_array: tuple[float, ...]
    worst_case: float
    worst_scenario: WorstScenario
    add_ons: Mapping[str, float]
    initial_margin: float
    maintenance_margin: float


@dataclass(frozen=True)
class PortfolioMarginReport:
    """Portfolio margin of one account in the account currency (see the module docstring).

    ``margin_ratio`` = PM MM / PM equity (``inf`` when equity <= 0 under a requirement);
    ``saving`` = standard IM - PM IM; ``greeks`` per underlying, ``total`` and per expiry.
    """

    model: str
    rulebook: RulebookSource
    currency: str
    worst_case: float
    worst_scenario: WorstScenario
    add_ons: Mapping[str, float]
    initial_margin: float
    maintenance_margin: float
    option_value: float
    equity: float
    margin_ratio: float
    status: Status
    standard_initial_margin: float
    standard_maintenance_margin: float
    saving: float
    units: tuple[UnitReport, ...]
    greeks: Greeks


def pm_margins(
    risk: AccountRisk, rulebook: PmRulebook, plugins: Mapping[str, Component] | None = None
) -> tuple[list[UnitMargin], float, float]:
    """Units plus account IM and MM in USD for the rulebook's model."""
    if rulebook.model == "cme-span":
        units, nov = span_margin(risk, rulebook)
        mm = max(sum(u.maintenance for u in units) - nov, 0.0)
        return units, mm * rulebook.number("im_ratio"), mm
    units = deribit_margin(risk, rulebook) if rulebook.model == "deribit-pm" else []
    if rulebook.model == "okx-pm":
        units = okx_margin(risk, rulebook, plugins)
    if rulebook.inter_spreads:
        units = correlation_credit(units, risk, rulebook)
    scale = [u.forward if u.currency != "USD" else 1.0 for u in units]
    im = sum(u.initial * s for u, s in zip(units, scale, strict=True))
    mm = sum(u.maintenance * s for u, s in zip(units, scale, strict=True))
    return units, im, mm


def correlation_credit(
    units: list[UnitMargin], risk: AccountRisk, rulebook: PmRulebook
) -> list[UnitMargin]:
    """Units after the rulebook's capped credits between underlyings (``[[inter_spreads]]``):
    the SPAN inter-commodity kernel with each unit's IM (USD) as its scan risk; MM shrinks in
    the same proportion as IM."""
    scale = [u.forward if u.currency != "USD" else 1.0 for u in units]
    deltas = risk.unit_sum(risk.greeks["delta_coin"])
    legs = {u.underlying: (float(deltas[k]), u.initial * scale[k]) for k, u in enumerate(units)}
    credit = inter_spread_credit(legs, rulebook.inter_spreads)
    out = []
    for u, s in zip(units, scale, strict=True):
        c = credit[u.underlying] / s
        keep = 1.0 - c / u.initial if u.initial > 0 else 1.0
        out.append(
            replace(
                u,
                add_ons={**u.add_ons, "correlation_credit": -c},
                initial=u.initial - c,
                maintenance=u.maintenance * keep,
            )
        )
    return out


def non_option_health(account: Account, market: Market) -> AccountHealth:
    """Standard health of the account's futures and spot legs (options left out)."""
    kept = [p for p in account.positions if not market.instrument(p.symbol).is_option]
    return evaluate(Account(account.id, account.balances, kept), market)


def _option_rows(
    risk: AccountRisk, market: Market
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Option rows, the value of one contract of each in its settle asset (coin for inverse
    rows) at the base forward and vol, and the settle asset's rate to the account currency."""
    a = risk.compiled.arrays
    rows = np.flatnonzero(a.is_option)
    usd = option_values(a)[rows]
    value = np.where(a.inverse[rows], usd / a.forward[rows], usd)
    rate = np.array([market.to_currency(risk.instruments[r].settle) for r in rows])
    return rows, value, rate


def option_value(risk: AccountRisk, market: Market) -> float:
    """Net mark value of the account's options in the account currency (long > 0, short < 0),
    on the Black-76 inputs of the risk array's base (zero move) valuation."""
    rows, value, rate = _option_rows(risk, market)
    return float(np.sum(risk.qty[rows] * value * rate))


def standard_margin(
    account: Account,
    market: Market,
    risk: AccountRisk,
    rulebook: PmRulebook,
    health: AccountHealth | None = None,
) -> tuple[float, float]:
    """IM and MM in the account currency under standard (per-position) margin; ``health`` is
    :func:`non_option_health` of the account, evaluated here when not given."""
    if health is None:
        health = non_option_health(account, market)
    rows, value, rate = _option_rows(risk, market)
    if rows.size == 0:
        return health.initial_margin, health.maintenance_margin
    a = risk.compiled.arrays
    im, mm = standard_option_margin(
        risk.qty[rows],
        a.contract_size[rows],
        a.forward[rows],
        a.strike[rows],
        value / a.contract_size[rows],
        a.is_call[rows],
        a.inverse[rows],
        rulebook.standard_options,
    )
    return (
        health.initial_margin + float(np.sum(im * rate)),
        health.maintenance_margin + float(np.sum(mm * rate)),
    )


def _dominant_range(risk: AccountRisk, underlying: str) -> float:
    """Price range of the unit's row with the largest coin delta (the first on a tie)."""
    rows = risk.rows_of(underlying)
    exposure = np.abs(risk.qty[rows] * risk.greeks["delta_coin"][rows])
    return float(risk.compiled.arrays.price_range[rows[int(np.argmax(exposure))]])


def portfolio_margin_report(
    account: Account,
    market: Market,
    rulebook: PmRulebook,
    data: OptionData,
    plugins: Mapping[str, Component] | None = None,
    health: AccountHealth | None = None,
) -> PortfolioMarginReport:
    """The portfolio margin of one account (see the module docstring); ``health`` is
    :func:`non_option_health` of the account, evaluated here when not given.

    ``equity`` = the standard cross equity + ``option_value``; ``status`` applies the market's
    margin-call ratio to the PM MM. The account's worst scenario is that of the unit with the
    largest worst case in USD (the last such unit on a tie).
    """
    risk = account_risk(account, market, rulebook, data)
    units, im, mm = pm_margins(risk, rulebook, plugins)
    if health is None:
        health = non_option_health(account, market)
    std_im, std_mm = standard_margin(account, market, risk, rulebook, health)
    to_ccy = 1.0 / market.asset_price(market.currency)
    options = option_value(risk, market)
    equity = health.cross_equity + options
    grid = rulebook.grid.arrays
    add_ons: dict[str, float] = {}
    unit_reports = []
    for unit in units:
        scale = unit.forward if unit.currency != "USD" else 1.0
        s = unit.worst_scenario
        rng = _dominant_range(risk, unit.underlying) if grid.scaled[s] else 1.0
        for name, amount in unit.add_ons.items():
            add_ons[name] = add_ons.get(name, 0.0) + amount * scale * to_ccy
        scenario = WorstScenario(
            unit.underlying,
            s + 1,
            rulebook.grid.kind[s],
            float(grid.price_move[s] * rng),
            float(grid.vol_move[s]),
        )
        unit_reports.append(
            UnitReport(
                unit.underlying,
                unit.currency,
                unit.forward,
                tuple(float(x) for x in unit.pnl),
                unit.worst_case,
                scenario,
                unit.add_ons,
                unit.initial,
                unit.maintenance,
            )
        )
    worst_usd = [u.worst_case * (u.forward if u.currency != "USD" else 1.0) for u in units]
    worst = max(range(len(units)), key=lambda k: (worst_usd[k], k))
    expiries = [i.expiry for i in risk.instruments]
    return PortfolioMarginReport(
        model=rulebook.model,
        rulebook=RulebookSource(rulebook.name, rulebook.source, rulebook.as_of),
        currency=market.currency,
        worst_case=sum(worst_usd) * to_ccy,
        worst_scenario=unit_reports[worst].worst_scenario,
        add_ons=add_ons,
        initial_margin=im * to_ccy,
        maintenance_margin=mm * to_ccy,
        option_value=options,
        equity=equity,
        margin_ratio=float(margin_ratio(equity, mm * to_ccy)),
        status=Status(int(status(equity, mm * to_ccy, market.margin_call_ratio))),
        standard_initial_margin=std_im,
        standard_maintenance_margin=std_mm,
        saving=std_im - im * to_ccy,
        units=tuple(unit_reports),
        greeks=aggregate_greeks(risk.compiled.underlyings, expiries, risk.qty, risk.greeks),
    )
