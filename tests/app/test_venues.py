"""Multi-venue accounts: each venue margined apart (the combined view equals ``crossmargin
margin`` on each venue's own document), hedges across venues found by underlying, and the
naked leg a venue's liquidation leaves, checked against a hand computation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin.app.venues import load_venues, parse_venues
from crossmargin.cli import app
from crossmargin.io.results import to_data
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError

HEDGED: dict[str, Any] = {
    "trader": "alice",
    "prices": {"BTC-PERP": 60000.0, "BTCUSDT": 60000.0, "ETH-PERP": 3000.0},
    "accounts": [
        {
            "id": "alice-hl",
            "venue": "hyperliquid",
            "balances": {"USDC": 10000},
            "positions": [
                {"symbol": "BTC-PERP", "qty": 1, "entry_price": 60000},
                {"symbol": "ETH-PERP", "qty": 2, "entry_price": 2900},
            ],
        },
        {
            "id": "alice-bn",
            "venue": "binance",
            "rulebook": "binance-usdm",
            "balances": {"USDT": 3000},
            "positions": [{"symbol": "BTCUSDT", "qty": -1, "entry_price": 60000}],
        },
    ],
}


def _naked_case() -> dict[str, Any]:
    doc = copy.deepcopy(HEDGED)
    doc["accounts"][0]["positions"] = doc["accounts"][0]["positions"][:1]
    return doc


def test_each_venue_is_what_crossmargin_margin_says_of_it(tmp_path: Path) -> None:
    """Cross margin ends at the venue: every account's figures equal the ``margin --json``
    output of a document holding that venue's accounts alone."""
    combined = to_data(parse_venues(HEDGED))
    runner = CliRunner()
    for account in HEDGED["accounts"]:
        alone = {k: v for k, v in account.items() if k not in {"venue", "rulebook"}}
        rulebook = account.get("rulebook", account["venue"])
        path = tmp_path / f"{account['id']}.json"
        path.write_text(
            json.dumps({"rulebook": rulebook, "prices": HEDGED["prices"], "accounts": [alone]})
        )
        run = runner.invoke(app, ["margin", str(path), "--json"])
        assert run.exit_code == 0, run.output
        (expected,) = json.loads(run.output)["accounts"]
        (got,) = [a for a in combined["accounts"] if a["id"] == account["id"]]
        assert got["venue"] == account["venue"]
        assert {k: got[k] for k in expected} == expected


def test_totals_by_currency_and_worst_status() -> None:
    result = parse_venues(HEDGED)
    by_id = {a.result.health.id: a.result.health for a in result.accounts}
    assert result.equity_by_currency == {
        "USDC": by_id["alice-hl"].equity,
        "USDT": by_id["alice-bn"].equity,
    }
    assert result.worst_status == max(h.status for h in by_id.values())


def test_a_long_on_one_venue_and_a_short_on_another_is_a_hedge() -> None:
    (hedge,) = parse_venues(HEDGED).hedges
    assert hedge.underlying == "BTC"
    assert (hedge.long_venues, hedge.short_venues) == (("hyperliquid",), ("binance",))
    assert (hedge.long_coins, hedge.short_coins, hedge.hedged_coins, hedge.net_coins) == (
        1.0,
        -1.0,
        1.0,
        0.0,
    )
    assert {leg.symbol for leg in hedge.legs} == {"BTC-PERP", "BTCUSDT"}


def test_an_inverse_leg_counts_in_coins() -> None:
    """Deribit BTC-PERPETUAL is 10 USD a contract: -6,000 contracts at 60,000 are -1 BTC."""
    doc = copy.deepcopy(_naked_case())
    doc["prices"]["BTC-PERPETUAL"] = 60000.0
    doc["accounts"][1] = {
        "id": "alice-dr",
        "venue": "deribit",
        "rulebook": "deribit-inverse",
        "balances": {"BTC": 0.5},
        "positions": [{"symbol": "BTC-PERPETUAL", "qty": -6000, "entry_price": 60000}],
    }
    (hedge,) = parse_venues(doc).hedges
    assert hedge.short_coins == pytest.approx(-1.0, rel=1e-12)
    assert hedge.hedged_coins == pytest.approx(1.0, rel=1e-12)


def test_a_venue_liquidating_its_leg_leaves_the_other_naked() -> None:
    """Hand computation. Binance short 1 BTCUSDT at 60,000 on 3,000 USDT: bracket 2 (notional
    50k-250k: MMR 0.5 %, maintenance amount 50 USDT, binance-usdm rulebook), so it is
    liquidated where 3,000 + (60,000 - P) = 0.005 P - 50, P = 63,050 / 1.005. There the
    Hyperliquid long 1 BTC-PERP on 10,000 USDC has equity 10,000 + (P - 60,000) and
    maintenance margin P / 80 (1 / (2 x 40x), hyperliquid rulebook); it is now naked, +1 BTC,
    and liquidates where 10,000 + (Q - 60,000) = Q / 80, Q = 50,000 / (1 - 1/80)."""
    result = parse_venues(_naked_case())
    by_venue = {o.venue: o for o in result.liquidations}
    binance = by_venue["binance"]
    p = 63050.0 / 1.005
    assert binance.trigger_price == pytest.approx(p, rel=1e-9)
    assert binance.move == pytest.approx(p / 60000.0 - 1.0, rel=1e-9)
    assert (binance.net_coins_before, binance.net_coins_after) == (0.0, 1.0)
    (survivor,) = binance.survivors
    assert (survivor.venue, survivor.account_id, survivor.currency) == (
        "hyperliquid",
        "alice-hl",
        "USDC",
    )
    assert survivor.equity == pytest.approx(10000.0 + p - 60000.0, rel=1e-9)
    assert survivor.maintenance_margin == pytest.approx(p / 80.0, rel=1e-9)
    assert survivor.status == Status.HEALTHY
    (naked,) = binance.naked_legs
    q = 50000.0 / (1.0 - 1.0 / 80.0)
    assert (naked.symbol, naked.coins) == ("BTC-PERP", 1.0)
    assert naked.mark_price == pytest.approx(p, rel=1e-12)
    assert naked.liquidation_price == pytest.approx(q, rel=1e-9)
    assert survivor.crash_distance == pytest.approx((p - q) / p, rel=1e-6)


def test_the_liquidated_long_leaves_a_naked_short() -> None:
    """The mirror: Hyperliquid liquidates the long at Q; Binance's short is then -1 BTC with
    equity 3,000 + (60,000 - Q) and maintenance margin 0.005 Q - 50 (Q past 50,000: still
    bracket 2)."""
    hyperliquid = {o.venue: o for o in parse_venues(_naked_case()).liquidations}["hyperliquid"]
    q = 50000.0 / (1.0 - 1.0 / 80.0)
    assert hyperliquid.trigger_price == pytest.approx(q, rel=1e-9)
    assert hyperliquid.net_coins_after == -1.0
    (survivor,) = hyperliquid.survivors
    assert survivor.equity == pytest.approx(3000.0 + 60000.0 - q, rel=1e-9)
    assert survivor.maintenance_margin == pytest.approx(0.005 * q - 50.0, rel=1e-9)


def test_legs_on_one_venue_are_not_a_cross_venue_hedge() -> None:
    doc = copy.deepcopy(HEDGED)
    doc["accounts"][1]["venue"] = "hyperliquid"
    doc["accounts"][1]["rulebook"] = "hyperliquid"
    doc["accounts"][1]["balances"] = {"USDC": 3000}
    doc["accounts"][1]["positions"][0]["symbol"] = "BTC-PERP"
    result = parse_venues(doc)
    assert (result.hedges, result.liquidations) == ((), ())


def test_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "venues.json"
    path.write_text(json.dumps(HEDGED))
    assert load_venues(path) == parse_venues(HEDGED)


def test_venue_sections_override_prices() -> None:
    doc = copy.deepcopy(HEDGED)
    doc["venues"] = {"binance": {"prices": {"BTCUSDT": 61000.0}}}
    by_id = {a.result.health.id: a.result.health for a in parse_venues(doc).accounts}
    assert by_id["alice-bn"].positions[0].mark_price == 61000.0
    assert by_id["alice-hl"].positions[0].mark_price == 60000.0


def _bad(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(HEDGED)
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (_bad(lambda d: d["accounts"][1].pop("venue")), "accounts[1].venue"),
        (_bad(lambda d: d.update(colour="red")), "colour"),
        (_bad(lambda d: d.update(accounts=[])), "accounts"),
        (
            _bad(
                lambda d: d["accounts"][1].update(
                    id="alice-hl", venue="bybit", rulebook="bybit-linear"
                )
            ),
            "accounts[1].id",
        ),
        (
            _bad(
                lambda d: d["accounts"].append(
                    {"id": "x", "venue": "binance", "rulebook": "bybit-linear"}
                )
            ),
            "accounts[2].rulebook",
        ),
        (_bad(lambda d: d.update(venues={"okx": {}})), "venues.okx"),
        (
            _bad(lambda d: d["accounts"][1]["positions"][0].update(qty="lots")),
            "accounts[1].positions[0].qty",
        ),
        (
            _bad(lambda d: d["accounts"][1]["positions"][0].update(symbol="NOPE")),
            "accounts[1].positions[0].symbol",
        ),
        (_bad(lambda d: d["accounts"][1].update(rulebook="no-such-book")), "rulebook"),
    ],
)
def test_bad_documents_name_the_field(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(CrossMarginError) as caught:
        parse_venues(doc)
    assert caught.value.path.endswith(path), caught.value


def test_live_marks_move_every_venue_of_the_underlying() -> None:
    """A mark for Binance's BTCUSDT moves Hyperliquid's BTC-PERP by the same factor (the
    basis held); ETH keeps the document's price."""
    doc = copy.deepcopy(HEDGED)
    doc["prices"]["BTC-PERP"] = 60060.0
    result = parse_venues(doc, {"BTCUSDT": 61000.0})
    marks = {p.symbol: p.mark_price for a in result.accounts for p in a.result.health.positions}
    assert marks["BTCUSDT"] == 61000.0
    assert marks["BTC-PERP"] == pytest.approx(60060.0 * 61000.0 / 60000.0, rel=1e-12)
    assert marks["ETH-PERP"] == 3000.0


def test_command_line_table_json_and_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "venues.json"
    path.write_text(json.dumps(_naked_case()))
    runner = CliRunner()
    table = runner.invoke(app, ["venues", str(path)])
    assert table.exit_code == 0, table.output
    assert "hedge BTC: long 1 on hyperliquid, short 1 on binance" in table.output
    assert "if binance liquidates BTCUSDT at 62,736" in table.output
    as_json = runner.invoke(app, ["venues", str(path), "--json"])
    assert json.loads(as_json.output) == json.loads(
        json.dumps(to_data(parse_venues(_naked_case())))
    )
    path.write_text(json.dumps({"accounts": [{"id": "a"}]}))
    bad = runner.invoke(app, ["venues", str(path)])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: accounts[0].venue: must be a non-empty string"
