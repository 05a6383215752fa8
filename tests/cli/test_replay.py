"""``crossmargin replay`` over the bundled Black Thursday history (Binance BTC/USDT 2h candles):
JSON, the table from the same report, and bad input (exit code 2, one line)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

from typer.testing import CliRunner

from crossmargin.cli import app

WINDOW = ["--accounts", "60", "--from", "2020-03-11", "--to", "2020-03-13"]


def test_replay_json_conserves_money_exactly() -> None:
    """Across 2020-03-11..13 a 60-account book liquidates, drains the fund and deleverages;
    the imbalance stays exactly zero and the journal replays to the live state."""
    result = CliRunner().invoke(app, ["replay", *WINDOW, "--json"])
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


def test_replay_table_shows_the_json_figures() -> None:
    """One row per JSON key (underscores as spaces) with the same value (amounts exact)."""
    runner = CliRunner()
    data = json.loads(runner.invoke(app, ["replay", *WINDOW, "--json"]).stdout)
    table = runner.invoke(app, ["replay", *WINDOW]).stdout
    rows = dict(
        (cells[1].strip(), cells[2].strip())
        for cells in (line.split("│") for line in table.splitlines() if "│" in line)
    )
    assert rows == {key.replace("_", " "): str(value) for key, value in data.items()}


def test_replay_bad_range_exits_2(tmp_path: Path) -> None:
    """No candles in range, an unreadable file, a bad date: exit code 2 and one ``error:``
    line."""
    runner = CliRunner()
    result = runner.invoke(app, ["replay", "--from", "2030-01-01"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: prices: no candles in the chosen range"
    result = runner.invoke(app, ["replay", "--prices", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: prices: cannot read")
    result = runner.invoke(app, ["replay", "--to", "March"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: to: not an ISO date: 'March'"
    result = runner.invoke(app, ["replay", "--venue", "nowhere", "--accounts", "2"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ")


def test_replay_prices_with_utc_offsets_and_the_funding_series(tmp_path: Path) -> None:
    """Candle times written with an offset (+02:00) are the same instants as the bundled UTC
    ones, and the report names the funding series it settles."""
    bundled = Path(__file__).parents[2] / "src" / "crossmargin" / "data"
    lines = (bundled / "btc_usdt_2h_2020-03.csv").read_text().splitlines()
    shifted = [lines[0]]
    for line in lines[1:]:
        stamp, rest = line.split(",", 1)
        utc = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
        shifted.append(f"{utc.astimezone(timezone(timedelta(hours=2))).isoformat()},{rest}")
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(shifted) + "\n")
    window = ["--accounts", "30", "--from", "2020-03-11T02:00:00+02:00", "--to", "2020-03-12"]
    plain = json.loads(CliRunner().invoke(app, ["replay", *window, "--json"]).stdout)
    result = CliRunner().invoke(app, ["replay", "--prices", str(path), *window, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == plain
    assert report["candles"] == 13
    assert report["funding_series"].startswith("Binance BTCUSDT perpetual")
    # 2020-03-11 08:00 and 16:00 and 2020-03-12 00:00 fall after the first candle.
    assert report["funding_rates"] == 3
