"""Check an order against one account of a portfolio document before sending it."""

from __future__ import annotations

import numpy as np

from crossmargin.app.portfolio import Portfolio, check_finite
from crossmargin.model import CrossMarginError, Order
from crossmargin.orders import WhatIf, what_if

__all__ = ["check_order"]


def check_order(portfolio: Portfolio, account_id: str, order: Order) -> WhatIf:
    """The verdict on ``order`` for account ``account_id`` and its health before and after;
    an order whose size overflows a float is bad input (``qty``)."""
    account = portfolio.account(account_id)
    too_large = CrossMarginError("qty", "too large: the fill's value overflows")
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            result = what_if(account, portfolio.market, order)
        except CrossMarginError as error:
            # The account was valid before the fill: a balance it no longer carries is the fill's.
            raise too_large if error.path.startswith("balances") else error from None
    check_finite(account, result.before)
    try:
        check_finite(result.account, result.after)
    except CrossMarginError:
        raise too_large from None
    return result
