"""Run a price history over a synthetic book of leveraged BTC perpetual accounts.

The book trades the venue's BTC perpetual (``btc_symbol`` of its liquidation rulebook:
``BTCUSDT``, ``BTC-PERP``, ``BTC-USD``); every venue settles the same BTCUSDT funding series.
Each candle becomes three mark updates (the extreme met first, the other extreme, the close:
down candles visit the high first), funding settles at its times from the bundled BTCUSDT
series, and every update runs a liquidation pass. The report counts what the engine did and
checks conservation: ``imbalance = deposits - withdrawals - sum over all ledger accounts``.
"""

from __future__ import annotations

import contextlib
import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

from crossmargin.ledger.commands import Ledger
from crossmargin.ledger.funding import due, load_funding
from crossmargin.ledger.journal import INSURANCE, Event, EventKind
from crossmargin.model import CrossMarginError

__all__ = [
    "FUNDING_SERIES",
    "Candle",
    "ReplayReport",
    "btc_symbol",
    "load_candles",
    "run_history",
    "seed_book",
]

LEVERAGES = (2, 3, 5, 10, 20, 25, 50, 75, 100)
FUNDING_SERIES = "Binance BTCUSDT perpetual, every 8 h (bundled btcusdt_perp_funding.csv)"
"""The funding series every replay settles, whichever venue it runs."""


def utc_naive(t: datetime) -> datetime:
    """``t`` as a naive UTC time (an aware time is converted; a naive one is taken as UTC)."""
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Candle:
    """One OHLC bar; ``time`` is its open (UTC, naive)."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def load_candles(
    path: Path | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[Candle]:
    """Candles from a CSV whose first column is a date or time, then open, high, low, close.

    Default: the bundled Binance BTC/USDT 2-hour candles of 2020-03-05 to 2020-03-20.
    ``start``/``end`` keep bars with ``start <= time <= end``; times with an offset are
    converted to UTC (``start`` and ``end`` too).
    """
    start = None if start is None else utc_naive(start)
    end = None if end is None else utc_naive(end)
    if path is None:
        data = resources.files("crossmargin.data").joinpath("btc_usdt_2h_2020-03.csv")
        text = data.read_text()
    else:
        try:
            text = path.read_text()
        except OSError as error:
            raise CrossMarginError("prices", f"cannot read {path}: {error.strerror}") from None
    bars = []
    for i, row in enumerate(csv.reader(text.splitlines()[1:])):
        try:
            t = utc_naive(datetime.fromisoformat(row[0].strip()))
            o, h, lo, c = (Decimal(x) for x in row[1:5])
        except (IndexError, ValueError, ArithmeticError):
            raise CrossMarginError(f"prices[{i}]", "need time,open,high,low,close") from None
        if not all(x.is_finite() and x > 0 for x in (o, h, lo, c)):
            raise CrossMarginError(f"prices[{i}]", "prices must be finite and > 0")
        if (start is None or t >= start) and (end is None or t <= end):
            bars.append(Candle(t, o, h, lo, c))
    if not bars:
        raise CrossMarginError("prices", "no candles in the chosen range")
    return bars


@dataclass(frozen=True)
class ReplayReport:
    """What happened: counts, the insurance fund, and the conservation check (serialised by
    :mod:`crossmargin.io.results`: amounts as exact decimal text)."""

    candles: int
    events: int
    accounts: int
    liquidations: int
    liquidated_accounts: int
    bankruptcies: int
    adl_events: int
    funding_payments: int
    funding_series: str
    funding_rates: int
    insurance_fund_start: Decimal
    insurance_fund_end: Decimal
    bad_debt: Decimal
    imbalance: Decimal
    replay_matches: bool


def _path(bar: Candle) -> tuple[Decimal, ...]:
    first, second = (bar.high, bar.low) if bar.close < bar.open else (bar.low, bar.high)
    return first, second, bar.close


def btc_symbol(ledger: Ledger) -> str:
    """The venue's BTC perpetual, which must be among the ledger's instruments."""
    symbol = ledger.ctx.rules.btc_symbol
    if symbol not in ledger.ctx.instruments:
        raise CrossMarginError("venue.margin.btc_symbol", f"{symbol} is not a ledger instrument")
    return symbol


def seed_book(
    ledger: Ledger,
    accounts: int,
    seed: int,
    price: Decimal,
    fund: Decimal,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Open ``accounts`` seeded accounts with BTC perpetual positions at ``price``.

    Two in three are long; leverages from 2x to 100x; one in five isolated. Orders the
    initial-margin check refuses are skipped (the trader would be turned away too).
    """
    symbol = btc_symbol(ledger)
    rng = random.Random(seed)
    ledger.price("seed:price", symbol, price)
    if fund > 0:
        ledger.deposit_insurance("seed:insurance", fund)
    for i in range(accounts):
        name = f"t{i:05d}"
        balance = Decimal(rng.choice((500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000)))
        ledger.deposit(f"seed:deposit:{name}", name, balance)
        leverage = rng.choice(LEVERAGES)
        side = 1 if rng.random() < 2 / 3 else -1
        qty = (balance * leverage * Decimal("0.95") / price).quantize(Decimal("0.001"))
        mode = "isolated" if rng.random() < 0.2 else "cross"
        with contextlib.suppress(CrossMarginError):
            ledger.trade(
                f"seed:trade:{name}", name, symbol, side * qty, margin_mode=mode, leverage=leverage
            )
        if progress is not None:
            progress(i + 1)


def run_history(
    ledger: Ledger,
    candles: list[Candle],
    accounts: int = 200,
    seed: int = 7,
    fund: Decimal = Decimal(50_000),
    progress: Callable[[int], None] | None = None,
    seeding: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Seed a book at the first open, then run every candle and funding time through it.

    ``seeding`` and ``progress`` are told how many accounts / candles are done.
    """
    symbol = btc_symbol(ledger)
    seed_book(ledger, accounts, seed, candles[0].open, fund, seeding)
    start_fund = ledger.state.balance(INSURANCE)
    first_seq = ledger.state.seq
    series = load_funding()
    last = candles[0].time
    applied = 0
    for n, bar in enumerate(candles):
        for rate in due(series, last, bar.time):
            ledger.fund(f"fund:{rate.time.isoformat()}", symbol, rate.rate)
            applied += 1
        last = bar.time
        for k, px in enumerate(_path(bar)):
            ledger.price(f"price:{bar.time.isoformat()}:{k}", symbol, px)
        if progress is not None:
            progress(n + 1)
    events = list(ledger.store.events(after=first_seq))
    return _report(ledger, candles, accounts, events, start_fund, applied)


def _report(
    ledger: Ledger,
    candles: list[Candle],
    accounts: int,
    events: list[Event],
    fund: Decimal,
    funding_rates: int,
) -> ReplayReport:
    state = ledger.state
    kinds = [e.kind for e in events]
    liquidated = {e.body["account"] for e in events if e.kind == EventKind.LIQUIDATION_FILL}
    bankrupt = {
        e.body["wallet"]
        for e in events
        if (e.kind == EventKind.INSURANCE_TRANSFER and e.body["reason"] == "bankruptcy")
        or e.kind == EventKind.BAD_DEBT
    } | {e.body["beneficiary"] for e in events if e.kind == EventKind.ADL_FILL}
    return ReplayReport(
        candles=len(candles),
        events=state.seq,
        accounts=accounts,
        liquidations=kinds.count(EventKind.LIQUIDATION_FILL),
        liquidated_accounts=len(liquidated),
        bankruptcies=len(bankrupt),
        adl_events=kinds.count(EventKind.ADL_FILL),
        funding_payments=kinds.count(EventKind.FUNDING),
        funding_series=FUNDING_SERIES,
        funding_rates=funding_rates,
        insurance_fund_start=fund,
        insurance_fund_end=state.balance(INSURANCE),
        bad_debt=state.bad_debt,
        imbalance=state.imbalance(),
        replay_matches=ledger.replay().to_json() == state.to_json(),
    )
