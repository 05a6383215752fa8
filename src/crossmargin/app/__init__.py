"""Use cases the command line and the lab call: evaluate a portfolio document, check an order,
build the book to stress, show scenario P&L, list the rulebooks."""

from crossmargin.app.portfolio import (
    AccountResult,
    Portfolio,
    PortfolioResult,
    evaluate_portfolio,
    load_portfolio,
    parse_portfolio,
)
from crossmargin.app.whatif import check_order

__all__ = [
    "AccountResult",
    "Portfolio",
    "PortfolioResult",
    "check_order",
    "evaluate_portfolio",
    "load_portfolio",
    "parse_portfolio",
]
