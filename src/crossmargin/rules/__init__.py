"""Rulebooks: versioned TOML files (source and date) compiled into margin schedules and
portfolio-margin parameters."""

from crossmargin.rules.loader import (
    Rulebook,
    build_instrument,
    bundled_rulebooks,
    load_rulebook,
)
from crossmargin.rules.portfolio import PmRulebook, bundled_pm_rulebooks, load_pm_rulebook

__all__ = [
    "PmRulebook",
    "Rulebook",
    "build_instrument",
    "bundled_pm_rulebooks",
    "bundled_rulebooks",
    "load_pm_rulebook",
    "load_rulebook",
]
