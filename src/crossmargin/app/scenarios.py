"""A PM rulebook's scenario grid with an account's scenario P&L: of a document's account, or
of a strategy given as legs (``QTY:perp`` or ``QTY:call|put:STRIKE:DAYS:VOL``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from crossmargin.app.portfolio import load_portfolio
from crossmargin.model import (
    Account,
    CrossMarginError,
    Instrument,
    Kind,
    MarginSchedule,
    Market,
    OptionData,
    Position,
)
from crossmargin.model.checks import finite, positive
from crossmargin.pm.report import pm_margins
from crossmargin.pm.risk import AccountRisk, account_risk
from crossmargin.rules import PmRulebook, load_pm_rulebook

__all__ = [
    "ScenarioPnl",
    "account_scenarios",
    "document_scenarios",
    "parse_leg",
    "strategy_account",
    "strategy_scenarios",
]

VALUATION = datetime(2000, 1, 1, tzinfo=UTC)
"""Valuation time of a strategy built from legs (expiries count days from it)."""

DEFAULT_PM_RULEBOOK = "deribit-pm"


@dataclass(frozen=True)
class ScenarioPnl:
    """A PM rulebook, the underlying whose parameters scale its grid and, when an account is
    given, that account's P&L per scenario (grid order, in ``currency``, the unit's coin or
    USD): ``pnl`` as revalued, ``counted`` as the model counts it (Deribit's pnl_offset and
    extended dampener) and ``worst`` the 0-based scenario that sets the worst case."""

    rulebook: PmRulebook
    underlying: str
    pnl: NDArray[np.float64] | None
    counted: NDArray[np.float64] | None = None
    currency: str = "USD"
    worst: int | None = None


def _unit_view(risk: AccountRisk, rulebook: PmRulebook, underlying: str) -> ScenarioPnl:
    """The ``underlying`` unit of an account's risk under the rulebook's model."""
    if underlying not in risk.units:
        raise CrossMarginError("--underlying", f"account holds no {underlying} (has {risk.units})")
    k = risk.units.index(underlying)
    unit = pm_margins(risk, rulebook)[0][k]
    return ScenarioPnl(
        rulebook,
        underlying,
        risk.unit_pnl[k],
        np.asarray(unit.pnl, dtype=np.float64),
        unit.currency,
        unit.worst_scenario,
    )


def parse_leg(text: str, underlying: str, index: int) -> tuple[Instrument, float, float | None]:
    """``QTY:perp`` or ``QTY:call|put:STRIKE:DAYS:VOL`` -> (instrument, qty, vol). The options
    and the perpetual are linear (USD-settled), one coin per contract; the perpetual's margin
    schedule is a placeholder (scenario P&L only)."""
    path = f"leg[{index}]"
    parts = text.split(":")
    try:
        qty = finite(f"{path}.qty", float(parts[0]))
        if parts[1:] == ["perp"]:
            schedule = MarginSchedule.size_scaled(1.0, 0.5)
            inst = Instrument(
                f"{underlying}-PERP", Kind.PERPETUAL, underlying, "USD", "USD", schedule
            )
            return inst, qty, None
        kind, strike, days, vol = parts[1], float(parts[2]), float(parts[3]), float(parts[4])
    except (IndexError, ValueError):
        reason = f"expected QTY:perp or QTY:call|put:K:DAYS:VOL, got {text!r}"
        raise CrossMarginError(path, reason) from None
    positive(f"{path}.days", days)
    expiry = (VALUATION + timedelta(days=days)).isoformat()
    symbol = f"{underlying}-{days:g}D-{strike:g}-{kind[:1].upper()}"
    try:
        inst = Instrument(
            symbol,
            Kind.OPTION,
            underlying,
            "USD",
            "USD",
            expiry=expiry,
            strike=strike,
            option_type=kind,
        )
    except CrossMarginError as error:
        raise error.at(path) from None
    return inst, qty, positive(f"{path}.vol", vol)


def strategy_account(
    legs: list[str], underlying: str, spot: float
) -> tuple[Account, Market, OptionData]:
    """Account, market and option data of a strategy given as legs (see :func:`parse_leg`)."""
    parsed = [parse_leg(text, underlying, i) for i, text in enumerate(legs)]
    instruments = {inst.symbol: inst for inst, _, _ in parsed}
    prices = {underlying: positive("spot", spot), f"{underlying}-PERP": spot}
    market = Market(instruments, prices, "USD")
    positions = [Position(inst.symbol, q, spot) for inst, q, _ in parsed]
    vols = {inst.symbol: v for inst, _, v in parsed if v is not None}
    account = Account("strategy", {}, positions)
    return account, market, OptionData(VALUATION, vols=vols)


def strategy_scenarios(
    legs: list[str], underlying: str, spot: float, rulebook: str | Path | None = None
) -> ScenarioPnl:
    """The grid of ``rulebook`` (default ``deribit-pm``) and, with legs, the strategy's P&L."""
    rules = load_pm_rulebook(rulebook or DEFAULT_PM_RULEBOOK)
    if not legs:
        return ScenarioPnl(rules, underlying, None)
    account, market, data = strategy_account(legs, underlying, spot)
    return _unit_view(account_risk(account, market, rules, data), rules, underlying)


def document_scenarios(
    document: Path, account_id: str | None, rulebook: str | Path | None, underlying: str
) -> ScenarioPnl:
    """The document's PM rulebook (or ``rulebook``) and the scenario P&L of the ``underlying``
    unit of account ``account_id`` (default: the first)."""
    portfolio = load_portfolio(document, rulebook)
    if portfolio.pm is None or portfolio.options is None:
        raise CrossMarginError(
            "portfolio_margin", "the document needs a PM rulebook (portfolio_margin or --rulebook)"
        )
    if not portfolio.accounts:
        raise CrossMarginError("accounts", "the document has no account")
    chosen = portfolio.account(account_id or portfolio.accounts[0].id)
    risk = account_risk(chosen, portfolio.market, portfolio.pm, portfolio.options)
    return _unit_view(risk, portfolio.pm, underlying)


def account_scenarios(
    account: Account,
    market: Market,
    rulebook: str | Path | None = None,
    underlying: str | None = None,
    data: OptionData | None = None,
) -> ScenarioPnl:
    """The scenario P&L of ``account``'s ``underlying`` unit (default: its first) under a PM
    rulebook (default ``deribit-pm``), at ``market``; ``data`` gives the valuation time and
    vols of option positions (default: now, no vols: futures and spot only)."""
    rules = load_pm_rulebook(rulebook or DEFAULT_PM_RULEBOOK)
    risk = account_risk(account, market, rules, data or OptionData(datetime.now(UTC)))
    return _unit_view(risk, rules, underlying or risk.units[0])
