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
    """Accounts and the market they are valued in, as a stress run takes them;
    ``options_left_out`` counts the option positions the run does not shock (the risk book
    margins futures and spot; options are margined by portfolio margin)."""

    accounts: tuple[Account, ...]
    market: Market
    options_left_out: int = 0


def document_book(path: Path, rulebook: str | Path | None = None) -> StressBook:
    """Every account of the document at ``path`` under its rulebook (or ``rulebook``), its
    option positions left out."""
    portfolio = load_portfolio(path, rulebook)
    full = portfolio.market
    kept_instruments = {s: i for s, i in full.instruments.items() if not i.is_option}
    market = Market(
        kept_instruments, full.prices, full.currency, full.collateral, full.margin_call_ratio
    )
    accounts = []
    left_out = 0
    for account in portfolio.accounts:
        kept = [p for p in account.positions if p.symbol in kept_instruments]
        left_out += len(account.positions) - len(kept)
        accounts.append(Account(account.id, account.balances, kept))
    return StressBook(tuple(accounts), market, left_out)
