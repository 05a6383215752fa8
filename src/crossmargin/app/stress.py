"""The book ``crossmargin stress`` shocks when it is given a portfolio document.

The run itself (shards, scenarios, Dask) and synthetic books belong to :mod:`crossmargin.lab`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crossmargin.app.portfolio import load_portfolio
from crossmargin.model import Account, Market

__all__ = ["StressBook", "document_book"]


@dataclass(frozen=True)
class StressBook:
    """Accounts and the market they are valued in, as a stress run takes them."""

    accounts: tuple[Account, ...]
    market: Market


def document_book(path: Path, rulebook: str | Path | None = None) -> StressBook:
    """Every account of the document at ``path`` under its rulebook (or ``rulebook``)."""
    portfolio = load_portfolio(path, rulebook)
    return StressBook(portfolio.accounts, portfolio.market)
