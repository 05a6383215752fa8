"""Reports: health results as plain JSON-ready dictionaries (infinities become null)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from crossmargin.health import AccountHealth, evaluate
from crossmargin.io.document import Portfolio
from crossmargin.model import Account, CrossMarginError
from crossmargin.orders import max_withdrawable
from crossmargin.pm.report import portfolio_margin_report

__all__ = ["account_report", "evaluate_portfolio", "portfolio_report"]


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def account_report(
    health: AccountHealth,
    withdrawable: dict[str, float],
    portfolio_margin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One account as the ``--json`` output lays it out (amounts in ``currency``)."""
    report = {
        "id": health.id,
        "currency": health.currency,
        "wallet_balance": health.wallet_balance,
        "collateral_value": health.collateral_value,
        "unrealized_pnl": health.unrealized_pnl,
        "equity": health.equity,
        "initial_margin": health.initial_margin,
        "maintenance_margin": health.maintenance_margin,
        "margin_ratio": _num(health.margin_ratio),
        "available_balance": health.available_balance,
        "effective_leverage": _num(health.effective_leverage),
        "crash_distance": health.crash_distance,
        "crash_move_down": health.crash_move_down,
        "crash_move_up": health.crash_move_up,
        "status": health.status.label,
        "max_withdrawable": withdrawable,
        "positions": [
            {
                "symbol": p.symbol,
                "kind": p.kind,
                "margin_mode": p.margin_mode,
                "qty": p.qty,
                "entry_price": p.entry_price,
                "mark_price": p.mark_price,
                "notional": p.notional,
                "unrealized_pnl": p.unrealized_pnl,
                "initial_margin": p.initial_margin,
                "maintenance_margin": p.maintenance_margin,
                "max_leverage": _num(p.max_leverage),
                "liquidation_price": p.liquidation_price,
                "status": p.status.label,
            }
            for p in health.positions
        ],
    }
    if portfolio_margin is not None:
        report["portfolio_margin"] = portfolio_margin
    return report


@dataclass(frozen=True)
class AccountResult:
    """Everything reported for one account."""

    health: AccountHealth
    withdrawable: dict[str, float]
    portfolio_margin: dict[str, Any] | None


def _without_options(account: Account, portfolio: Portfolio, index: int) -> Account:
    """The account's futures and spot legs; options are margined by the PM rulebook only."""
    kept = []
    for j, position in enumerate(account.positions):
        instrument = portfolio.market.instruments.get(position.symbol)
        if instrument is None or not instrument.is_option:
            kept.append(position)
        elif portfolio.pm is None:
            raise CrossMarginError(
                f"accounts[{index}].positions[{j}].symbol",
                "options are margined by a portfolio-margin rulebook: set portfolio_margin "
                "(cme-span, deribit-pm, okx-pm) and the options section",
            )
    return Account(account.id, account.balances, kept)


def evaluate_portfolio(portfolio: Portfolio) -> list[AccountResult]:
    """Health, withdrawable amounts and portfolio margin of every account; errors name it."""
    results = []
    market = portfolio.market
    for i, account in enumerate(portfolio.accounts):
        try:
            base = _without_options(account, portfolio, i)
            health = evaluate(base, market)
            pm = None
            if portfolio.pm is not None and portfolio.options is not None:
                pm = portfolio_margin_report(
                    account, market, portfolio.pm, portfolio.options, health=health
                )
            results.append(AccountResult(health, max_withdrawable(base, market), pm))
        except CrossMarginError as error:
            located = error.path.startswith("positions")
            raise (error.at(f"accounts[{i}]") if located else error) from None
    return results


def portfolio_report(portfolio: Portfolio) -> dict[str, Any]:
    """The whole ``crossmargin margin --json`` object."""
    return {
        "rulebook": {
            "name": portfolio.rulebook.name,
            "source": portfolio.rulebook.source,
            "as_of": portfolio.rulebook.as_of,
        },
        "accounts": [
            account_report(r.health, r.withdrawable, r.portfolio_margin)
            for r in evaluate_portfolio(portfolio)
        ],
    }
