"""Reports: health results as plain JSON-ready dictionaries (infinities become null)."""

from __future__ import annotations

import math
from typing import Any

from crossmargin.health import AccountHealth, evaluate
from crossmargin.io.document import Portfolio
from crossmargin.model import CrossMarginError
from crossmargin.orders import max_withdrawable

__all__ = ["account_report", "evaluate_portfolio", "portfolio_report"]


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def account_report(health: AccountHealth, withdrawable: dict[str, float]) -> dict[str, Any]:
    """One account as the ``--json`` output lays it out (amounts in ``currency``)."""
    return {
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


def evaluate_portfolio(portfolio: Portfolio) -> list[tuple[AccountHealth, dict[str, float]]]:
    """Health and withdrawable amounts of every account; errors name the account."""
    results = []
    for i, account in enumerate(portfolio.accounts):
        try:
            results.append(
                (evaluate(account, portfolio.market), max_withdrawable(account, portfolio.market))
            )
        except CrossMarginError as error:
            raise (
                error.at(f"accounts[{i}]") if error.path.startswith("positions") else error
            ) from None
    return results


def portfolio_report(portfolio: Portfolio) -> dict[str, Any]:
    """The whole ``crossmargin margin --json`` object."""
    return {
        "rulebook": {
            "name": portfolio.rulebook.name,
            "source": portfolio.rulebook.source,
            "as_of": portfolio.rulebook.as_of,
        },
        "accounts": [account_report(h, w) for h, w in evaluate_portfolio(portfolio)],
    }
