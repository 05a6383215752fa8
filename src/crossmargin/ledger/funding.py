"""Perpetual funding: a real funding-rate series and the payments it implies.

At each funding time a position pays :func:`crossmargin.maths.money.funding_payment` (longs pay
when the rate is positive, shorts receive), from its wallet (cross) or its isolated margin, to
the outside market. Source of the bundled series: Binance BTCUSDT perpetual funding every 8 h
(``crossmargin/data/btcusdt_perp_funding.csv``, see the README there).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

from crossmargin.ledger.journal import Emitter, EventKind, isolated, trader
from crossmargin.maths.money import funding_payment
from crossmargin.model import CrossMarginError

__all__ = ["FundingRate", "due", "funding", "load_funding"]


@dataclass(frozen=True)
class FundingRate:
    """The rate (a fraction per interval) settled at ``time`` (UTC, naive)."""

    time: datetime
    rate: Decimal


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def load_funding(path: Path | None = None) -> list[FundingRate]:
    """Funding rates from a ``timestamp,funding_rate`` CSV (default: the bundled series)."""
    if path is None:
        text = resources.files("crossmargin.data").joinpath("btcusdt_perp_funding.csv").read_text()
    else:
        text = path.read_text()
    rows = []
    for i, row in enumerate(csv.DictReader(text.splitlines())):
        try:
            rows.append(FundingRate(_parse_time(row["timestamp"]), Decimal(row["funding_rate"])))
        except (KeyError, ValueError, ArithmeticError) as error:
            raise CrossMarginError(f"funding[{i}]", f"bad row: {error}") from None
    return rows


def due(series: list[FundingRate], after: datetime, upto: datetime) -> Iterator[FundingRate]:
    """Rates with ``after < time <= upto``."""
    return (f for f in series if after < f.time <= upto)


def funding(em: Emitter, symbol: str, rate: Decimal, contract_size: Decimal) -> int:
    """Settle one funding interval of ``symbol`` at its mark; return the number of payments."""
    state = em.state
    mark = state.prices[symbol]
    paid = 0
    for account in sorted(state.positions):
        h = state.positions[account].get(symbol)
        if h is None:
            continue
        amount = funding_payment(h.qty, contract_size, mark, rate)
        if amount == 0:
            continue
        payer = isolated(account, symbol) if h.mode == "isolated" else trader(account)
        em.emit(
            EventKind.FUNDING,
            account=account,
            symbol=symbol,
            rate=str(rate),
            price=str(mark),
            payer=payer,
            amount=str(amount),
        )
        paid += 1
    return paid
