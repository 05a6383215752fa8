"""``crossmargin stress --window/--grid``: per-account JSON, CSV rows, the offline report, a
synthetic book, and bad input (exit code 2, one line)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "src" / "crossmargin" / "io" / "examples"
BINANCE = str(EXAMPLES / "demo-binance.json")
DERIBIT_PM = str(EXAMPLES / "demo-deribit-pm.json")


def test_window_json_lists_every_account(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    result = runner.invoke(
        app,
        [
            "stress",
            BINANCE,
            "--window",
            "2020-03-12",
            "--grid",
            "depeg",
            "--json",
            "--csv",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["accounts"] == 2 and payload["rulebook"] == "binance-usdm"
    names = [s["name"] for s in payload["scenarios"]]
    assert names == ["2020-03-12", "USDT at 0.97", "USDT at 0.90", "USDT at 0.80"]
    assert payload["scenarios"][0]["btc_low"] == pytest.approx(-0.4442, abs=1e-3)
    outcome = payload["outcomes"][0]
    assert set(outcome) >= {"account", "worst_equity", "liquidated", "shortfall"}
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 4
    assert rows[0]["scenario"] == "2020-03-12"


def test_options_book_table_and_report(tmp_path: Path) -> None:
    """A PM book with options on the price x vol grid; the report opens offline."""
    page = tmp_path / "stress.html"
    result = runner.invoke(
        app,
        [
            "stress",
            DERIBIT_PM,
            "--window",
            "all",
            "--grid",
            "price-vol",
            "--report",
            str(page),
            "--png",
            str(tmp_path / "png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "PM deribit-pm" in result.stdout and "BTC -50% vol x2" in result.stdout
    text = page.read_text()
    assert "plotly.js v" in text and "<script src" not in text
    assert (tmp_path / "png" / "window-paths.png").is_file()


def test_synthetic_book_on_a_window() -> None:
    result = runner.invoke(
        app, ["stress", "--synthetic", "200", "--window", "2025-10-10", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["accounts"] == 200 and len(payload["outcomes"]) == 200
    assert payload["scenarios"][0]["liquidated"] > 0


def test_uniform_shocks_write_csv_and_report(tmp_path: Path) -> None:
    """The Dask shock run shares the outputs: one CSV row per scenario."""
    out = tmp_path / "s.csv"
    result = runner.invoke(
        app,
        [
            "stress",
            BINANCE,
            "--shards",
            "1",
            "--csv",
            str(out),
            "--report",
            str(tmp_path / "s.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        assert [r["name"] for r in csv.DictReader(handle)][:2] == ["-50%", "-30%"]
    assert (tmp_path / "s.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([BINANCE, "--window", "1999-01-01"], "error: window: no window '1999-01-01'"),
        ([BINANCE, "--grid", "moon"], "error: grid: no grid 'moon'"),
        ([BINANCE, "--grid", "depeg", "--beta", "ETH"], "error: beta: expected ASSET=NUMBER"),
        ([BINANCE, "--grid", "depeg", "--csv", "/no/such/dir/x.csv"], "error: csv: no such folder"),
    ],
)
def test_bad_paths_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["stress", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
