"""``crossmargin simulate`` and ``crossmargin allocate``: JSON and tables from the same
result, and bad input (exit code 2, one line naming the field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app

DATA = Path(__file__).parents[1] / "data"
EXAMPLE = str(DATA / "readme-example.json")
BINANCE = str(
    Path(__file__).parents[2] / "src" / "crossmargin" / "io" / "examples" / "demo-binance.json"
)
HYPERLIQUID = str(Path(BINANCE).with_name("demo-hyperliquid.json"))
PM_HEDGE = str(DATA / "okx-pm-hedge.json")
SMALL = ["--paths", "200", "--steps", "24", "--horizon", "2d"]
runner = CliRunner()


def test_simulate_json_and_table() -> None:
    """Every mode in the JSON; the table shows the same probabilities."""
    result = runner.invoke(app, ["simulate", EXAMPLE, *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [m["mode"] for m in payload["modes"]] == ["given", "cross", "isolated"]
    assert payload["paths"] == 200 and payload["steps"] == 24
    assert payload["history"] == {"BTC": "BTC", "ETH": "ETH"}
    given = payload["modes"][0]
    assert 0.0 <= given["ruin_probability"] <= given["liquidation_probability"] <= 1.0
    assert len(given["equity_fan"]) == 5
    table = runner.invoke(app, ["simulate", EXAMPLE, *SMALL])
    assert table.exit_code == 0, table.output
    assert f"{100 * given['liquidation_probability']:.2f}%" in table.stdout


def test_simulate_bootstrap_one_mode() -> None:
    result = runner.invoke(
        app, ["simulate", EXAMPLE, *SMALL, "--model", "bootstrap", "--mode", "cross", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "bootstrap" and len(payload["modes"]) == 1


def test_simulate_pm_json_and_table(tmp_path: Path) -> None:
    """A document with a portfolio-margin rulebook has the pm mode by default, in the JSON,
    the table, the CSV rows and the report."""
    result = runner.invoke(app, ["simulate", PM_HEDGE, *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [m["mode"] for m in payload["modes"]] == ["given", "cross", "isolated", "pm"]
    assert payload["portfolio_margin"] == "simulated under okx-pm"
    pm = payload["modes"][3]
    assert 0.0 <= pm["liquidation_probability"] <= payload["modes"][1]["liquidation_probability"]
    table = runner.invoke(app, ["simulate", PM_HEDGE, *SMALL, "--mode", "pm"])
    assert table.exit_code == 0, table.output
    assert f"{100 * pm['liquidation_probability']:.2f}%" in table.stdout
    assert "portfolio margin: simulated under okx-pm" in table.stdout
    out, page = tmp_path / "pm.csv", tmp_path / "pm.html"
    files = runner.invoke(
        app, ["simulate", PM_HEDGE, *SMALL, "--csv", str(out), "--report", str(page)]
    )
    assert files.exit_code == 0, files.output
    assert out.read_text().splitlines()[-1].split(",")[0] == "pm"
    assert 'id="equity-pm"' in page.read_text()


def test_simulate_bundled_example_without_pm() -> None:
    """The bundled Hyperliquid example asked for pm: not available, with the reason, and the
    other modes run."""
    args = ["simulate", HYPERLIQUID, *SMALL, "--mode", "cross", "--mode", "pm", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [m["mode"] for m in payload["modes"]] == ["cross"]
    assert payload["portfolio_margin"] == (
        "not available (a1: no bundled portfolio-margin rulebook is built on hyperliquid)"
    )


def test_allocate_json_and_table() -> None:
    """The split spends the capital; the table lists the frontier."""
    result = runner.invoke(app, ["allocate", EXAMPLE, "--capital", "10300", *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert sum(b["amount"] for b in payload["allocation"]) == pytest.approx(10_300.0)
    assert payload["survival"] >= payload["proportional_survival"]
    table = runner.invoke(app, ["allocate", EXAMPLE, "--capital", "10300", *SMALL])
    assert table.exit_code == 0, table.output
    assert "Frontier" in table.stdout and "a1:cross" in table.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["simulate", EXAMPLE, "--model", "garch"], "model"),
        (["simulate", EXAMPLE, "--horizon", "3x"], "horizon"),
        (["simulate", EXAMPLE, "--steps", "0"], "steps"),
        (["simulate", EXAMPLE, "--paths", "0"], "paths"),
        (["simulate", EXAMPLE, "--mode", "portfolio"], "mode"),
        (["simulate", EXAMPLE, "--model", "bootstrap", "--steps", "7"], "steps"),
        (["simulate", BINANCE], "balances.BTC"),
        (["simulate", "missing.json"], "missing.json"),
        (["allocate", EXAMPLE, "--capital", "-5", *SMALL], "capital"),
        (["allocate", EXAMPLE, "--capital", "5", "--mode", "x"], "--mode"),
        (["allocate", EXAMPLE, "--capital", "5", *SMALL, "--mode", "pm"], "--mode"),
        (["allocate", EXAMPLE], "--capital"),
    ],
)
def test_bad_input_is_one_line(args: list[str], field: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert field in lines[0]


def test_simulate_and_allocate_files(tmp_path: Path) -> None:
    """CSV rows per mode and per bucket; offline HTML reports with their charts."""
    out = tmp_path / "sim.csv"
    page = tmp_path / "sim.html"
    result = runner.invoke(
        app, ["simulate", EXAMPLE, *SMALL, "--csv", str(out), "--report", str(page)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("mode,initial_equity,liquidation_probability")
    assert [line.split(",")[0] for line in lines[1:]] == ["given", "cross", "isolated"]
    html = page.read_text()
    for chart in ("liquidation-probability", "loss-histogram", "equity-given"):
        assert f'id="{chart}"' in html
    assert "<script src=" not in html
    page = tmp_path / "alloc.html"
    result = runner.invoke(
        app, ["allocate", EXAMPLE, "--capital", "9000", *SMALL, "--report", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert 'id="frontier"' in page.read_text()
    bad = runner.invoke(app, ["simulate", EXAMPLE, "--csv", str(tmp_path / "no" / "x.csv")])
    assert bad.exit_code == 2 and "csv" in bad.stderr
