"""Portfolio margin: scenario grids, SPAN, Deribit PM, OKX PM, standard option rules, reports."""

from crossmargin.pm.book import OptionData, VolSurface
from crossmargin.pm.report import portfolio_margin_report
from crossmargin.pm.rules import PmRulebook, bundled_pm_rulebooks, load_pm_rulebook

__all__ = [
    "OptionData",
    "PmRulebook",
    "VolSurface",
    "bundled_pm_rulebooks",
    "load_pm_rulebook",
    "portfolio_margin_report",
]
