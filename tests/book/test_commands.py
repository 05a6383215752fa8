"""The ``stress`` and ``bench`` command functions, registered on a throwaway Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from crossmargin.book.commands import bench, stress

app = typer.Typer()
app.command("stress")(stress)
app.command("bench")(bench)
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


def test_stress_portfolio_table() -> None:
    """A portfolio document prints the scenario table."""
    result = runner.invoke(app, ["stress", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "2020-03-12" in result.output


def test_stress_bad_input() -> None:
    """Neither or both sources: exit code 2 and one ``error:`` line."""
    result = runner.invoke(app, ["stress"])
    assert result.exit_code == 2
    assert result.output.startswith("error: portfolio:")


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
        "floor_ratio",
        "pm_account_scans_per_s",
        "tick_ms",
        "speedup_vs_single_account",
        "bytes_per_position",
    ):
        assert figures[key] > 0
