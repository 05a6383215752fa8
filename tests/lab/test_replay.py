"""Replays of the bundled histories (Binance BTC/USDT 2h candles of March 2020, BTC/USD daily
bars of October 2025) through the ledger."""

from __future__ import annotations

from decimal import Decimal as D
from importlib import resources
from pathlib import Path

from crossmargin.lab.replay import load_candles, run_history
from crossmargin.ledger import Ledger
from crossmargin.ledger.journal import EventKind


def test_bundled_history_is_the_real_crash() -> None:
    """Binance BTC/USDT 2h bars: the 2020-03-11 22:00 bar closes at 7,934.52 and the 03-12 bars
    reach 4,410.00, a fall of 1 - 4,410 / 7,934.52 = 44.42% (the README of the source data lists
    the daily file's -40.4% from another venue's close)."""
    bars = load_candles()
    close_11 = next(b.close for b in bars if str(b.time) == "2020-03-11 22:00:00")
    low_12 = min(b.low for b in bars if b.time.date().isoformat() == "2020-03-12")
    assert len(bars) == 192
    assert (close_11, low_12) == (D("7934.52"), D("4410.0"))
    assert round(1 - low_12 / close_11, 4) == D("0.4442")


def test_october_2025_daily_history_under_hyperliquid_rules() -> None:
    """The bundled 2025-10 daily bars: 2025-10-10 opens at 121,714 and trades down to 105,834
    (-13.0%, the data README's figure); a 40-account book under Hyperliquid rules liquidates
    that day and conserves money exactly."""
    path = Path(str(resources.files("crossmargin.data").joinpath("btc_usd_1d_2025-10.csv")))
    bars = load_candles(path)
    crash = next(b for b in bars if str(b.time.date()) == "2025-10-10")
    assert round(1 - crash.low / crash.open, 3) == D("0.130")
    with Ledger("sqlite://", venue="hyperliquid") as ledger:
        report = run_history(ledger, bars, accounts=40, seed=3)
        journal = list(ledger.store.events())
        at = max(
            i
            for i, e in enumerate(journal)
            if e.kind == EventKind.PRICE and D(e.body["price"]) == crash.low
        )
        crash_fills = []
        for e in journal[at + 1 :]:
            if e.kind == EventKind.PRICE:
                break
            if e.kind == EventKind.LIQUIDATION_FILL:
                crash_fills.append(e)
        seq_of_crash = at + 1
        before = ledger.account_at(crash_fills[0].body["account"], seq_of_crash - 1)
    assert report.candles == 20 and crash_fills
    assert {e.body["symbol"] for e in journal if e.kind == EventKind.PRICE} == {"BTC-PERP"}
    assert before.positions
    assert report.imbalance == 0 and report.replay_matches
