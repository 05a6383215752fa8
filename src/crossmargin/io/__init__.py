"""Input and output: portfolio documents, ccxt structures, reports."""

from crossmargin.io.document import Portfolio, load_portfolio, parse_portfolio
from crossmargin.io.report import account_report, portfolio_report

__all__ = ["Portfolio", "account_report", "load_portfolio", "parse_portfolio", "portfolio_report"]
