"""The ``replay`` command over the bundled Black Thursday history (Binance BTC/USDT 2h candles)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from importlib import resources
from pathlib import Path

import typer
from typer.testing import CliRunner

from crossmargin.lab.replay import load_candles, run_history
from crossmargin.ledger import Ledger
from crossmargin.ledger.commands_cli import replay
from crossmargin.ledger.journal import EventKind

app = typer.Typer()
app.command()(replay)


@app.command()
def unused() -> None:
    """Second command, so ``replay`` is addressed by name as in the real CLI."""


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


def test_replay_json_conserves_money_exactly() -> None:
    """Across 2020-03-11..13 a 60-account book liquidates, drains the fund and deleverages;
    the imbalance stays exactly zero and the journal replays to the live state."""
    result = CliRunner().invoke(
        app, ["replay", "--accounts", "60", "--from", "2020-03-11", "--to", "2020-03-13", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for field in ("events", "liquidations", "bankruptcies", "adl_events"):
        assert isinstance(report[field], int)
    assert report["candles"] == 25
    assert report["liquidations"] > 0 and report["bankruptcies"] > 0
    assert D(report["insurance_fund_start"]) == 50_000
    assert D(report["insurance_fund_end"]) >= 0
    assert report["imbalance"] == "0"
    assert report["replay_matches"] is True


def test_replay_bad_range_exits_2(tmp_path: Path) -> None:
    """No candles in range, or an unreadable file: exit code 2 and one ``error:`` line."""
    runner = CliRunner()
    result = runner.invoke(app, ["replay", "--from", "2030-01-01"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: prices: no candles in the chosen range"
    result = runner.invoke(app, ["replay", "--prices", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: prices: cannot read")


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
