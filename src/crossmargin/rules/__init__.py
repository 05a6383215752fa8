"""Venue rulebooks: versioned TOML files (source and date) compiled into margin schedules."""

from crossmargin.rules.loader import (
    Rulebook,
    build_instrument,
    bundled_rulebooks,
    load_rulebook,
)

__all__ = ["Rulebook", "build_instrument", "bundled_rulebooks", "load_rulebook"]
