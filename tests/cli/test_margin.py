"""``margin``, ``what-if``, ``rulebooks`` and ``demo``: JSON, tables from the same result, and
bad input (exit 2, one line)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app
from crossmargin.cli.render import fmt, pct

DATA = Path(__file__).parents[1] / "data"
EXAMPLE = DATA / "readme-example.json"
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
    """The README's Hyperliquid document: 10,000 USDC, short 0.5 BTC @ 60,000 marked 63,287 at
    50x (MMR 1/(2*50) = 1%), isolated 2 ETH @ 2,400 marked 2,500 with 300 margin at 10x (ETH max
    25x: MMR 2%)."""
    out = json.loads(_run("margin", str(EXAMPLE), "--json").stdout)
    (account,) = out["accounts"]
    btc, eth = account["positions"]
    assert account["currency"] == "USDC"
    assert btc["unrealized_pnl"] == pytest.approx(-0.5 * (63_287 - 60_000))
    assert btc["notional"] == pytest.approx(31_643.5)
    assert btc["maintenance_margin"] == pytest.approx(316.435)
    assert btc["initial_margin"] == pytest.approx(632.87)
    # Cross: 10,000 - 1,643.5 = 8,356.5 of equity; liq = 63,287 + (8,356.5 - 316.435) / 0.5 / 1.01
    assert btc["liquidation_price"] == pytest.approx(63_287 + (8_356.5 - 316.435) / 0.5 / 1.01)
    assert eth["maintenance_margin"] == pytest.approx(100.0)
    assert eth["initial_margin"] == pytest.approx(500.0)
    assert eth["liquidation_price"] == pytest.approx(2_500 - 400 / 2 / (1 - 1 / 50))
    assert account["equity"] == pytest.approx(8_356.5 + 500.0)
    # One PnL: the account's sums both positions, cross and isolated (-1,643.5 + 200).
    assert account["unrealized_pnl"] == pytest.approx(-1_643.5 + 200.0)
    assert account["status"] == "healthy"
    assert account["margin_ratio"] == pytest.approx((316.435 + 100.0) / 8_856.5)
    assert account["effective_leverage"] == pytest.approx((31_643.5 + 5_000.0) / 8_856.5)
    assert 0.0 < account["crash_distance"] < 1.0
    assert account["collateral"] == [
        {"asset": "USDC", "balance": 10_000.0, "price": 1.0, "ratio": 1.0, "value": 10_000.0}
    ]
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
    assert "BTC-PERP" in out and "healthy" in out
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
            "-20",
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
    # Closing the short at the mark realises -1,643.5: cash 10,000 -> 8,356.5, no BTC position.
    assert [p["symbol"] for p in reduced["after"]["positions"]] == ["ETH-PERP"]
    assert reduced["after"]["equity"] == pytest.approx(8_356.5 + 500.0)


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


PM_DOC = DATA / "deribit-pm.json"
DEMOS = Path(__file__).parents[2] / "src" / "crossmargin" / "io" / "examples"


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


_NUMBER = re.compile(r"[-+]?(\d[\d,]*\.?\d*(e[-+]?\d+)?|\.\d+)%?x?")


def _numeric_cells(output: str) -> list[str]:
    """Every table cell of ``output`` that is a number as the screens print one."""
    cells = (c.strip() for line in output.splitlines() if "│" in line for c in line.split("│"))
    return [c for c in cells if _NUMBER.fullmatch(c)]


def _printed_forms(data: Any) -> set[str]:
    """Every way the screens print a number found anywhere in ``data`` (JSON-ready)."""
    forms: set[str] = set()
    if isinstance(data, dict):
        for item in data.values():
            forms |= _printed_forms(item)
    elif isinstance(data, list):
        for item in data:
            forms |= _printed_forms(item)
    elif isinstance(data, int | float) and not isinstance(data, bool):
        forms |= {fmt(data), fmt(data) + "x", pct(data), f"{data:g}"}
    return forms


@pytest.mark.parametrize("document", [EXAMPLE, PM_DOC, DEMOS / "demo-binance.json"])
def test_margin_table_shows_only_numbers_of_the_json(document: Path) -> None:
    """The table and ``--json`` render one result: every number a table cell shows is a number
    of the JSON output, and the summary rows show the JSON's figures."""
    table = _run("margin", str(document)).stdout
    data = json.loads(_run("margin", str(document), "--json").stdout)
    cells = _numeric_cells(table)
    assert cells
    forms = _printed_forms(data["accounts"])
    assert [c for c in cells if c not in forms] == []
    for account in data["accounts"]:
        for key in ("equity", "initial_margin", "maintenance_margin", "available_balance"):
            assert fmt(account[key]) in cells
        for position in account["positions"]:
            assert fmt(position["maintenance_margin"]) in cells
        if "portfolio_margin" in account:
            assert fmt(account["portfolio_margin"]["initial_margin"]) in cells


def test_what_if_table_shows_the_json_figures() -> None:
    """Equity, IM, MM and available balance before and after, in the table as in the JSON."""
    args = ("what-if", str(EXAMPLE), "--account", "a1", "--symbol", "BTC-PERP", "--qty", "0.5")
    table = _run(*args).stdout
    data = json.loads(_run(*args, "--json").stdout)
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if "│" in line}
    for side in ("before", "after"):
        shown = [c.strip() for c in rows[side].split("│")[2:6]]
        figures = ("equity", "initial_margin", "maintenance_margin", "available_balance")
        assert shown == [fmt(data[side][key]) for key in figures]
        assert data[side]["status"] in rows[side]
    assert data["account"]["balances"] == {"USDC": pytest.approx(10_000.0 - 0.5 * 3_287.0)}


def test_rulebooks_table_lists_the_json_entries() -> None:
    """Every rulebook of the JSON list appears in the tables, margin entries with markets."""
    table = _run("rulebooks").stdout
    entries = json.loads(_run("rulebooks", "--json").stdout)
    assert {e["kind"] for e in entries} == {"margin", "portfolio_margin", "liquidation"}
    for entry in entries:
        assert entry["name"] in table
        assert ("markets" in entry) == (entry["kind"] == "margin")


WHAT_IF_BAD = [
    (("--account", "zz"), "error: --account: no account 'zz' in the document"),
    (("--account", "a1", "--qty", "nan"), "error: qty: must be finite"),
    (("--account", "a1", "--symbol", "NOPE"), "error: order.symbol: unknown instrument 'NOPE'"),
    (("--account", "a1", "--price", "-1"), "error: price: must be > 0"),
    (("--account", "a1", "--fee-rate", "nan"), "error: fee_rate: must be finite"),
]


@pytest.mark.parametrize(("change", "message"), WHAT_IF_BAD)
def test_what_if_bad_input_exits_2_with_one_line(change: tuple[str, ...], message: str) -> None:
    """Unknown account or instrument, NaN quantity or fee rate, a negative price."""
    options = {"--account": "a1", "--symbol": "BTC-PERP", "--qty": "-0.1"}
    options.update(zip(change[::2], change[1::2], strict=True))
    args = ["what-if", str(EXAMPLE), *(x for pair in options.items() for x in pair), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(message), lines[0]


def test_margin_with_a_bad_rulebook_option_exits_2(tmp_path: Path) -> None:
    """``--rulebook`` naming neither a bundled rulebook nor a file."""
    result = runner.invoke(app, ["margin", str(EXAMPLE), "--rulebook", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: rulebook: no bundled rulebook or file")
    assert len(result.stderr.strip().splitlines()) == 1


def test_isolated_only_account_shows_the_positions_pnl(tmp_path: Path) -> None:
    """One PnL: an isolated long 0.5 BTC @ 60,000 marked 59,000 loses 500, and so does the
    account (it used to show 0.00 beside the position's -500)."""
    doc = {
        "rulebook": "hyperliquid",
        "prices": {"BTC-PERP": 59_000.0},
        "accounts": [
            {
                "id": "iso",
                "balances": {"USDC": 1_000.0},
                "positions": [
                    {
                        "symbol": "BTC-PERP",
                        "qty": 0.5,
                        "entry_price": 60_000.0,
                        "margin_mode": "isolated",
                        "isolated_margin": 3_000.0,
                        "leverage": 10,
                    }
                ],
            }
        ],
    }
    path = tmp_path / "iso.json"
    path.write_text(json.dumps(doc))
    (account,) = json.loads(_run("margin", str(path), "--json").stdout)["accounts"]
    assert account["positions"][0]["unrealized_pnl"] == pytest.approx(-500.0)
    assert account["unrealized_pnl"] == pytest.approx(-500.0)
    # equity = collateral + PnL + isolated margin = 1,000 - 500 + 3,000.
    assert account["equity"] == pytest.approx(3_500.0)


def test_negative_balance_counts_in_full(tmp_path: Path) -> None:
    """Binance rulebook in Multi-Assets mode: USDT ratio 0.9999, BTC 0.95. Owing 1,000 USDT counts
    -1,000 (no haircut benefit), 1 BTC at 60,000 counts 0.95 x 60,000."""
    doc = {
        "rulebook": "binance-usdm",
        "account_mode": "multi_assets",
        "prices": {"BTC": 60_000.0, "BTCUSDT": 60_000.0},
        "accounts": [{"id": "m", "balances": {"USDT": -1_000.0, "BTC": 1.0}}],
    }
    path = tmp_path / "neg.json"
    path.write_text(json.dumps(doc))
    (account,) = json.loads(_run("margin", str(path), "--json").stdout)["accounts"]
    assert account["collateral_value"] == pytest.approx(-1_000.0 + 0.95 * 60_000.0)
    usdt, btc = account["collateral"]
    assert usdt == {"asset": "USDT", "balance": -1_000.0, "price": 1.0, "ratio": 1.0, "value": -1e3}
    assert btc["ratio"] == pytest.approx(0.95) and btc["value"] == pytest.approx(57_000.0)
    table = _run("margin", str(path)).stdout
    assert "collateral of m" in table and "95.00%" in table


def test_effective_leverage_is_never_negative(tmp_path: Path) -> None:
    """With no positive equity the leverage is null in JSON and n/a in the table."""
    doc = _doc(tmp_path, lambda d: d["accounts"][0]["balances"].update(USDC=1_000.0))
    (account,) = json.loads(_run("margin", str(doc), "--json").stdout)["accounts"]
    assert account["status"] == "bankrupt" and account["equity"] < 0
    assert account["effective_leverage"] is None
    row = next(line for line in _run("margin", str(doc)).stdout.splitlines() if "leverage" in line)
    assert "n/a" in row and "-" not in row.replace("effective leverage", "")


def test_option_legs_in_json_and_table() -> None:
    """The PM document's short strangle: each leg with its value and Greeks; their sums are the
    PM report's expiry bucket of Greeks and its option value (0 rate: BTC settle = account)."""
    (account,) = json.loads(_run("margin", str(PM_DOC), "--json").stdout)["accounts"]
    legs = account["option_legs"]
    assert [(leg["option_type"], leg["strike"], leg["qty"]) for leg in legs] == [
        ("call", 70_000.0, -1.0),
        ("put", 50_000.0, -1.0),
    ]
    bucket = account["portfolio_margin"]["greeks"]["BTC"]["2026-12-25"]
    assert sum(leg["delta"] for leg in legs) == pytest.approx(bucket["delta_coin"])
    assert sum(leg["gamma"] for leg in legs) == pytest.approx(bucket["gamma"])
    assert sum(leg["vega"] for leg in legs) == pytest.approx(bucket["vega_usd"])
    assert sum(leg["theta"] for leg in legs) == pytest.approx(bucket["theta_usd"])
    value = account["portfolio_margin"]["option_value"]
    assert sum(leg["value"] for leg in legs) == pytest.approx(value)
    # Short options: negative value, short vega, long theta; the short call's delta is negative.
    assert all(leg["value"] < 0 and leg["vega"] < 0 < leg["theta"] for leg in legs)
    assert legs[0]["delta"] < 0 < legs[1]["delta"]
    table = _run("margin", str(PM_DOC)).stdout
    assert "options of strangle-seller" in table
    assert "BTC-25DEC26-70000-C" in table and "60.00%" in table


def test_demo_text_matches_what_it_shows() -> None:
    """The demo prints the three bundled documents, as its help and the README say."""
    out = _run("demo").stdout
    shown = [line for line in out.splitlines() if "crossmargin margin demo-" in line]
    assert len(shown) == len(DEMO_NAMES) == 3
    help_text = _run("demo", "--help").stdout
    assert "three" in help_text
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "three portfolio documents" in readme


DEMO_NAMES = ("demo-hyperliquid.json", "demo-binance.json", "demo-deribit-pm.json")


def test_demo_documents_use_the_bundled_markets_they_describe() -> None:
    """The Binance demo's multi-asset account is in Multi-Assets mode (BTC and BNB count at
    their 95% collateral ratio, 2021 table); the Deribit demo margins the bundled inverse
    BTC-PERPETUAL of deribit-inverse (IM 2% + 0.005% x 0.5 BTC of 0.5 BTC), not one typed in."""
    binance = json.loads(_run("margin", str(DEMOS / "demo-binance.json"), "--json").stdout)
    rows = {c["asset"]: c for c in binance["accounts"][0]["collateral"]}
    assert (rows["BTC"]["ratio"], rows["BNB"]["ratio"]) == (0.95, 0.95)
    doc = json.loads((DEMOS / "demo-deribit-pm.json").read_text())
    assert doc["rulebook"] == "deribit-inverse"
    assert "BTC-PERPETUAL" not in {i["symbol"] for i in doc["instruments"]}
    deribit = json.loads(_run("margin", str(DEMOS / "demo-deribit-pm.json"), "--json").stdout)
    (perpetual,) = deribit["accounts"][0]["positions"]
    assert perpetual["initial_margin"] == pytest.approx(0.5 * (0.02 + 0.00005 * 0.5))
    out = _run("demo").stdout
    assert "inverse (coin-settled) perpetuals" in out and "linear USDC" not in out
