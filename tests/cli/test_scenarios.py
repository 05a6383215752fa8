"""``crossmargin scenarios``: the PM grid with a document's or a strategy's scenario P&L, the
heat map, and bad input (exit code 2, one line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmargin.app.scenarios import strategy_scenarios
from crossmargin.cli import app

runner = CliRunner()
PM_DOC = Path(__file__).parents[1] / "data" / "deribit-pm.json"
PNG = b"\x89PNG\r\n\x1a\n"


def test_scenarios_of_a_portfolio_write_a_heat_map(tmp_path: Path) -> None:
    png = tmp_path / "heat.png"
    result = runner.invoke(app, ["scenarios", str(PM_DOC), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "extended" in result.stdout
    assert png.read_bytes()[:8] == PNG


def test_scenarios_command_prints_grid_and_writes_heat_map(tmp_path: Path) -> None:
    """A short strangle under deribit-pm: the grid spans -16% .. +16% (BTC's price range) and
    the extended +500% move."""
    png = tmp_path / "map.png"
    legs = ["--leg=-1:call:110000:30:0.5", "--leg=-1:put:90000:30:0.55"]
    result = runner.invoke(app, ["scenarios", *legs, "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "+500.00%" in result.stdout and "-16.00%" in result.stdout
    assert png.read_bytes()[:8] == PNG


def test_strategy_table_shows_the_scenario_pnl() -> None:
    """Every P&L cell of the table is the use case's P&L of that scenario."""
    legs = ["-1:call:110000:30:0.5", "1:perp"]
    view = strategy_scenarios(legs, "BTC", 100_000.0)
    assert view.pnl is not None
    table = runner.invoke(app, ["scenarios", *(f"--leg={leg}" for leg in legs)]).stdout
    rows = [line.split("│") for line in table.splitlines() if "│" in line]
    shown = {int(cells[1]): cells[6].strip() for cells in rows}
    assert shown == {k + 1: f"{x:,.6g}" for k, x in enumerate(view.pnl.tolist())}


def test_futures_only_document_marks_the_standard_edge_as_worst(tmp_path: Path) -> None:
    """A long BTC-PERPETUAL under deribit-pm: P&L in BTC, the worst case (marked) at -16%, vol
    up (scenario 1), not in the extended table; the heat map is written."""
    doc = tmp_path / "perp.json"
    doc.write_text(
        '{"rulebook": "deribit-pm", "prices": {"BTC": 1e5, "BTC-PERPETUAL": 1e5},'
        ' "accounts": [{"id": "p", "balances": {"BTC": 1}, "positions":'
        ' [{"symbol": "BTC-PERPETUAL", "qty": 1000, "entry_price": 1e5}]}]}'
    )
    png = tmp_path / "perp.png"
    result = runner.invoke(app, ["scenarios", str(doc), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "P&L (BTC)" in result.stdout
    marked = [line for line in result.stdout.splitlines() if "<-" in line]
    assert len(marked) == 1 and "standard" in marked[0] and "-16.00%" in marked[0]
    assert png.read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--leg=-1:call:0:30:0.5"], "error: leg[0].strike"),
        (["--leg=banana"], "error: leg[0]: expected QTY:perp or QTY:call|put:K:DAYS:VOL"),
        (["--leg=-1:call:100000:0:0.5"], "error: leg[0].days: must be > 0"),
        (["--png", "x.png"], "error: --png: a heat map needs PORTFOLIO or at least one --leg"),
        (["--rulebook", "no-such-pm"], "error: rulebook: no bundled PM rulebook"),
        ([str(PM_DOC), "--account", "zz"], "error: --account: no account 'zz'"),
        ([str(PM_DOC), "--underlying", "ETH"], "error: --underlying: account holds no ETH"),
    ],
)
def test_scenarios_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["scenarios", *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
