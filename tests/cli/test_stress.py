"""``crossmargin stress`` and ``crossmargin bench``: JSON, the table from the same report, and
bad input (exit code 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app

runner = CliRunner()
EXAMPLE = (
    Path(__file__).parents[2] / "src" / "crossmargin" / "io" / "examples" / "demo-binance.json"
)


def test_stress_synthetic_json() -> None:
    """JSON lists every scenario; liquidations grow with the size of the drop."""
    result = runner.invoke(app, ["stress", "--synthetic", "300", "--shards", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["accounts"] == 300
    by_name = {s["name"]: s for s in payload["scenarios"]}
    assert by_name["-50%"]["liquidated"] >= by_name["-10%"]["liquidated"]
    assert len(payload["worst_accounts"]) == 10


def test_stress_portfolio_table_shows_the_json_rows() -> None:
    """A portfolio document prints one row per scenario of the JSON report: its move in
    percent, the accounts liquidated and the shortfall."""
    table = runner.invoke(app, ["stress", str(EXAMPLE)])
    assert table.exit_code == 0, table.output
    assert "2020-03-12" in table.output
    data = json.loads(runner.invoke(app, ["stress", str(EXAMPLE), "--json"]).output)
    rows = {
        cells[1].strip(): [c.strip() for c in cells[2:5]]
        for cells in (line.split("│") for line in table.output.splitlines() if "│" in line)
    }
    assert len(rows) == len(data["scenarios"])
    for scenario in data["scenarios"]:
        assert rows[scenario["name"]] == [
            f"{100 * scenario['move']:+.1f}%",
            str(scenario["liquidated"]),
            f"{scenario['shortfall']:,.2f}",
        ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: portfolio: give a PORTFOLIO file or --synthetic N"),
        ([str(EXAMPLE), "--synthetic", "10"], "error: portfolio: give a PORTFOLIO file"),
        (["--synthetic", "0"], "error: synthetic: must be >= 1, got 0"),
        (["--synthetic", "10", "--shards", "0"], "error: shards: must be >= 1, got 0"),
        (["--synthetic", "10", "--top", "-1"], "error: top: must be >= 0, got -1"),
        (["missing.json"], "error: missing.json: cannot read"),
    ],
)
def test_stress_bad_input(args: list[str], message: str) -> None:
    """Neither or both sources, bad counts, an unreadable file: exit code 2 and one line."""
    result = runner.invoke(app, ["stress", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_bench_json() -> None:
    """One JSON object with the headline figures."""
    result = runner.invoke(app, ["bench", "--accounts", "300", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    for key in (
        "accounts",
        "positions",
        "remargin_s",
        "floor_s",
        "remargin_vs_floor",
        "liquidation_positions_per_s",
        "pm_account_scans_per_s",
        "tick_ms",
        "evaluate_vs_book",
        "evaluate_10_positions_us",
        "bytes_per_position",
    ):
        assert figures[key] > 0


def test_bench_too_few_accounts_exits_2() -> None:
    result = runner.invoke(app, ["bench", "--accounts", "10"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: accounts: must be >= 100, got 10"


def test_stress_a_document_with_options() -> None:
    """The Deribit PM document (a short perpetual and a short strangle): the run shocks the
    perpetual and counts the two options it leaves to portfolio margin."""
    doc = Path(__file__).parents[1] / "data" / "deribit-pm.json"
    result = runner.invoke(app, ["stress", str(doc), "--shards", "1", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["accounts"] == 1
    assert payload["options_left_out"] == 2
    table = runner.invoke(app, ["stress", str(doc), "--shards", "1"])
    assert table.exit_code == 0 and "2 option positions left out" in table.stdout
