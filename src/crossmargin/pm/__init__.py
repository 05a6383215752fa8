"""Portfolio margin: SPAN, Deribit PM, OKX PM, standard option rules and reports, on the scenario
engine of :mod:`crossmargin.maths.scenarios` and the rulebooks of :mod:`crossmargin.rules`."""

from crossmargin.pm.report import PortfolioMarginReport, portfolio_margin_report

__all__ = [
    "PortfolioMarginReport",
    "portfolio_margin_report",
]
