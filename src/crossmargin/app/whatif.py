"""Check an order against one account of a portfolio document before sending it."""

from __future__ import annotations

from crossmargin.app.portfolio import Portfolio
from crossmargin.model import Order
from crossmargin.orders import WhatIf, what_if

__all__ = ["check_order"]


def check_order(portfolio: Portfolio, account_id: str, order: Order) -> WhatIf:
    """The verdict on ``order`` for account ``account_id`` and its health before and after."""
    return what_if(portfolio.account(account_id), portfolio.market, order)
