"""``crossmargin cascade``: JSON, CSV rows, the offline report, a given book, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "src" / "crossmargin" / "io" / "examples"


def test_json_and_csv(tmp_path: Path) -> None:
    out = tmp_path / "steps.csv"
    args = [
        "cascade",
        "--accounts",
        "400",
        "--venues",
        "binance,hyperliquid",
        "--shock",
        "BTC=-0.1,ETH=-0.12",
        "--depth",
        "0.05",
        "--lag",
        "1",
        "--steps",
        "200",
        "--seed",
        "3",
        "--json",
        "--csv",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [v["venue"] for v in payload["venues"]] == ["binance", "hyperliquid"]
    assert payload["config"]["shock"] == {"BTC": -0.1, "ETH": -0.12}
    assert payload["liquidated_notional"] > 0 and payload["steps"] <= 200
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * payload["steps"]
    assert float(rows[0]["price.BTC"]) == pytest.approx(60_000 * 0.9)
    again = runner.invoke(app, args[:-2])
    assert json.loads(again.stdout) == payload


def test_report(tmp_path: Path) -> None:
    page = tmp_path / "cascade.html"
    result = runner.invoke(
        app, ["cascade", "--case", "oct-2025", "--accounts", "600", "--report", str(page)]
    )
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "BTC price through the cascade" in text and "<script src" not in text
    assert "lowest index: BTC" in result.stdout


def test_given_book() -> None:
    result = runner.invoke(
        app,
        ["cascade", "--book", str(EXAMPLES / "demo-binance.json"), "--shock", "-0.3", "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["venues"][0]["venue"] == "binance"
    assert payload["venues"][0]["accounts"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth", "0"], "error: --depth: out of range"),
        (["--shock", "abc"], "error: --shock: not a move"),
        (["--shock", "BTC=-2"], "error: --shock.BTC: must be a move above -100%"),
        (["--venues", "nowhere"], "error: venue: no bundled liquidation rules"),
        (["--case", "no-such"], "error: config: no bundled cascade"),
        (["--steps", "0"], "error: --steps:"),
        (["--book", "/no/such.json"], "error: "),
    ],
)
def test_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["cascade", "--accounts", "20", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
