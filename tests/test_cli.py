"""The command line: JSON report, tables, what-if, rulebooks, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app

EXAMPLE = Path(__file__).parent / "data" / "issue-example.json"
runner = CliRunner()


def _run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr
    return result


def _doc(tmp_path: Path, change: Any) -> Path:
    doc = json.loads(EXAMPLE.read_text())
    change(doc)
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    return path


def test_margin_json_on_the_documented_example() -> None:
    """Hyperliquid example: short 0.5 BTC @ 60,000 marked 63,287 at 50x (MMR 1/(2*50) = 1%),
    isolated 2 ETH @ 2,400 marked 2,500 with 300 margin at 10x (ETH max 25x: MMR 2%)."""
    out = json.loads(_run("margin", str(EXAMPLE), "--json").stdout)
    (account,) = out["accounts"]
    btc, eth = account["positions"]
    assert account["currency"] == "USDC"
    assert btc["unrealized_pnl"] == pytest.approx(-0.5 * (63_287 - 60_000))
    assert btc["notional"] == pytest.approx(31_643.5)
    assert btc["maintenance_margin"] == pytest.approx(316.435)
    assert btc["initial_margin"] == pytest.approx(632.87)
    # Cross: 1,000 - 1,643.5 = -643.5 of equity; liq = 63,287 + (-643.5 - 316.435) / 0.5 / 1.01
    assert btc["liquidation_price"] == pytest.approx(63_287 + (-643.5 - 316.435) / 0.5 / 1.01)
    assert eth["maintenance_margin"] == pytest.approx(100.0)
    assert eth["initial_margin"] == pytest.approx(500.0)
    assert eth["liquidation_price"] == pytest.approx(2_500 - 400 / 2 / (1 - 1 / 50))
    assert account["equity"] == pytest.approx(-643.5 + 500.0)
    assert account["status"] == "bankrupt"
    assert account["margin_ratio"] is None
    assert account["crash_distance"] == 0.0
    for key in (
        "id",
        "equity",
        "unrealized_pnl",
        "initial_margin",
        "maintenance_margin",
        "margin_ratio",
        "available_balance",
        "crash_distance",
        "status",
        "positions",
    ):
        assert key in account


def test_margin_tables_and_rulebook_override(tmp_path: Path) -> None:
    """Tables print; ``--rulebook`` replaces the document's rulebook."""
    out = _run("margin", str(EXAMPLE)).stdout
    assert "BTC-PERP" in out and "bankrupt" in out
    doc = _doc(tmp_path, lambda d: d.update(rulebook="binance-usdm"))
    result = runner.invoke(app, ["margin", str(doc), "--rulebook", "hyperliquid", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["rulebook"]["name"] == "hyperliquid"


def test_rulebooks_lists_the_bundled_venues() -> None:
    names = {b["name"] for b in json.loads(_run("rulebooks", "--json").stdout)}
    assert {"binance-usdm", "bybit-linear", "hyperliquid", "deribit-standard", "dydx-v4"} <= names


def test_what_if_rejects_a_breach_and_accepts_a_reduction() -> None:
    rejected = json.loads(
        _run(
            "what-if",
            str(EXAMPLE),
            "--account",
            "a1",
            "--symbol",
            "BTC-PERP",
            "--qty",
            "-1",
            "--json",
        ).stdout
    )
    assert rejected["accepted"] is False
    assert rejected["reason"].startswith("initial margin breached")
    reduced = json.loads(
        _run(
            "what-if",
            str(EXAMPLE),
            "--account",
            "a1",
            "--symbol",
            "BTC-PERP",
            "--qty",
            "0.5",
            "--json",
        ).stdout
    )
    assert reduced["accepted"] is True
    # Closing the short at the mark realises -1,643.5: cash 1,000 -> -643.5, no BTC position.
    assert [p["symbol"] for p in reduced["after"]["positions"]] == ["ETH-PERP"]
    assert reduced["after"]["equity"] == pytest.approx(-643.5 + 500.0)


def test_demo_runs() -> None:
    out = _run("demo").stdout
    assert "multi-asset" in out and "BTCUSDT" in out


def _set_position(field: str, value: Any) -> Any:
    return lambda d: d["accounts"][0]["positions"][0].__setitem__(field, value)


BAD = [
    (_set_position("symbol", "NOPE"), "accounts[0].positions[0].symbol: unknown instrument"),
    (lambda d: d["prices"].pop("ETH-PERP"), "prices.ETH-PERP: missing mark price"),
    (_set_position("qty", math.nan), "accounts[0].positions[0].qty: must be finite"),
    (
        _set_position("entry_price", math.inf),
        "accounts[0].positions[0].entry_price: must be finite",
    ),
    (_set_position("leverage", 80), "accounts[0].positions[0].leverage: 80x is above the 50x"),
    (
        lambda d: d["accounts"][0]["positions"][1].pop("isolated_margin"),
        "accounts[0].positions[1].isolated_margin: required for an isolated position",
    ),
    (
        lambda d: d["accounts"][0]["balances"].__setitem__("USDC", "lots"),
        "accounts[0].balances.USDC: must be a number",
    ),
    (lambda d: d.update(rulebook="no-such-venue"), "rulebook: no bundled rulebook"),
    (lambda d: d["instruments"][0].update(kind="banana"), "instruments[0].kind: must be one of"),
    (lambda d: d["accounts"][0].update(extra=1), "accounts[0].extra: unknown field"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, change: Any, message: str) -> None:
    result = runner.invoke(app, ["margin", str(_doc(tmp_path, change)), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: {message}"), lines[0]


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"rulebook": "hyperliquid", "prices": {NaN}}')
    result = runner.invoke(app, ["margin", str(broken)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    nan = tmp_path / "nan.json"
    nan.write_text(EXAMPLE.read_text().replace("63287.0", "NaN"))
    result = runner.invoke(app, ["margin", str(nan)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: prices.BTC-PERP: must be finite")
    result = runner.invoke(app, ["margin", str(tmp_path / "absent.json")])
    assert result.exit_code == 2 and "cannot read" in result.stderr


PM_DOC = Path(__file__).parent / "data" / "deribit-pm.json"


def test_margin_carries_portfolio_margin_under_a_pm_rulebook() -> None:
    """A short inverse perpetual and a short strangle under ``deribit-pm``: the report carries
    the PM object beside standard margin, with MM = 0.8 x IM (venues.md 5.4)."""
    (account,) = json.loads(_run("margin", str(PM_DOC), "--json").stdout)["accounts"]
    pm = account["portfolio_margin"]
    assert pm["model"] == "deribit-pm" and pm["currency"] == "BTC"
    assert pm["maintenance_margin"] == pytest.approx(0.8 * pm["initial_margin"])
    assert pm["initial_margin"] == pytest.approx(pm["worst_case"] + sum(pm["add_ons"].values()))
    assert set(pm["worst_scenario"]) >= {"price_move", "vol_move"}
    assert pm["standard_initial_margin"] > account["initial_margin"]
    okx = json.loads(_run("margin", str(PM_DOC), "--rulebook", "okx-pm", "--json").stdout)
    assert okx["accounts"][0]["portfolio_margin"]["model"] == "okx-pm"


def test_options_without_portfolio_margin_are_refused(tmp_path: Path) -> None:
    doc = json.loads(PM_DOC.read_text())
    del doc["portfolio_margin"]
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["margin", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: accounts[0].positions[1].symbol: options are margined")


def test_scenarios_of_a_portfolio_write_a_heat_map(tmp_path: Path) -> None:
    png = tmp_path / "heat.png"
    out = _run("scenarios", str(PM_DOC), "--png", str(png)).stdout
    assert "extended" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
