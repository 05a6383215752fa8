"""Evaluating a portfolio document: the typed result, its JSON layout, the rulebook a name
resolves to and the options-only-by-portfolio-margin policy.

Independent computations: every account's health and withdrawable amounts equal the engine's
one-account calls (``evaluate``, ``max_withdrawable``) made here on the document's accounts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin import Account, CrossMarginError, evaluate, max_withdrawable
from crossmargin.app.portfolio import evaluate_portfolio, load_portfolio, parse_portfolio
from crossmargin.cli import app
from crossmargin.io.results import to_data

DATA = Path(__file__).parents[1] / "data"
EXAMPLE = DATA / "readme-example.json"
PM_DOC = DATA / "deribit-pm.json"
RULES = Path(__file__).parents[2] / "src" / "crossmargin" / "rules"


def test_result_is_the_engine_on_each_account() -> None:
    """Health and max withdrawable of each account equal the one-account API's."""
    portfolio = load_portfolio(EXAMPLE)
    result = evaluate_portfolio(portfolio)
    assert (result.rulebook.name, result.rulebook.as_of) == ("hyperliquid", "2026-09-27")
    for account, row in zip(portfolio.accounts, result.accounts, strict=True):
        assert row.health == evaluate(account, portfolio.market)
        assert row.max_withdrawable == max_withdrawable(account, portfolio.market)
        assert row.portfolio_margin is None


def test_json_layout_keeps_the_health_figures_at_the_top() -> None:
    """An account's object: the health fields, ``max_withdrawable``, and ``portfolio_margin``
    only under a PM rulebook."""
    (plain,) = to_data(evaluate_portfolio(load_portfolio(EXAMPLE)))["accounts"]
    keys = list(plain)
    assert keys[:3] == ["id", "currency", "wallet_balance"]
    assert keys[-2:] == ["positions", "max_withdrawable"]
    assert "portfolio_margin" not in plain and "health" not in plain
    (pm,) = to_data(evaluate_portfolio(load_portfolio(PM_DOC)))["accounts"]
    assert list(pm)[-1] == "portfolio_margin"
    assert pm["portfolio_margin"]["status"] in {"healthy", "margin_call", "liquidatable"}


def test_options_are_left_to_portfolio_margin() -> None:
    """The position rows cover the perpetual alone: the same account without its options."""
    portfolio = load_portfolio(PM_DOC)
    (row,) = evaluate_portfolio(portfolio).accounts
    (account,) = portfolio.accounts
    futures = Account(account.id, account.balances, account.positions[:1])
    assert row.health.positions == evaluate(futures, portfolio.market).positions


def _doc(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(PM_DOC.read_text())
    doc.update(change)
    return doc


def test_rulebook_names_resolve_by_kind(tmp_path: Path) -> None:
    """A PM name (bundled or a PM TOML file) replaces ``portfolio_margin``; a margin name the
    margin rulebook."""
    assert parse_portfolio(_doc(), "okx-pm").pm.model == "okx-pm"  # type: ignore[union-attr]
    copy = tmp_path / "my-pm.toml"
    copy.write_text((RULES / "pm" / "cme-span.toml").read_text())
    by_path = parse_portfolio(_doc(), copy)
    assert by_path.pm is not None and by_path.pm.model == "cme-span"
    assert by_path.rulebook.name == "deribit-inverse"
    perpetual = {
        "symbol": "BTC-PERPETUAL",
        "underlying": "BTC",
        "quote": "USD",
        "inverse": True,
        "contract_size": 10,
        "initial_margin_rate": 0.02,
        "maintenance_margin_rate": 0.01,
    }
    typed = _doc(instruments=[*_doc()["instruments"], perpetual])
    swapped = parse_portfolio(typed, "dydx-v4")
    assert swapped.rulebook.name == "dydx-v4" and swapped.pm is not None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(portfolio_margin=None), "accounts[0].positions[1].symbol: options are margined"),
        ({**_doc(), "rulebook": None, "portfolio_margin": "cme-span"}, "rulebook: required"),
        ({k: v for k, v in _doc().items() if k != "options"}, "vols.BTC-25DEC26-70000-C: missing"),
    ],
)
def test_policy_errors_name_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(CrossMarginError, match="^" + message.replace("[", r"\[")):
        evaluate_portfolio(parse_portfolio({k: v for k, v in doc.items() if v is not None}))


def test_unified_symbols_and_ccxt_marks_resolve_to_the_rulebook_market() -> None:
    """``BTC/USDT:USDT`` names binance-usdm's BTCUSDT in positions and prices; a ccxt position's
    ``markPrice`` prices it when the document does not."""
    position = {"symbol": "BTC/USDT:USDT", "contracts": 1.0, "side": "long"}
    position |= {"entryPrice": 60_000.0, "markPrice": 61_000.0}
    doc = {"rulebook": "binance-usdm", "accounts": [{"id": "c", "positions": [position]}]}
    portfolio = parse_portfolio(doc)
    assert portfolio.accounts[0].positions[0].symbol == "BTCUSDT"
    assert portfolio.market.prices["BTCUSDT"] == 61_000.0
    doc["prices"] = {"BTC/USDT:USDT": 62_000.0}
    assert parse_portfolio(doc).market.prices["BTCUSDT"] == 62_000.0


def test_under_pm_max_withdrawable_follows_the_pm_available_balance() -> None:
    """Under deribit-pm (coin accounting: balances are not in the scenarios) the BTC that can
    leave is the PM available balance, more than under standard margin; withdrawing it leaves
    the PM equity at the PM initial margin, recomputed here from the changed document."""
    portfolio = load_portfolio(PM_DOC)
    (row,) = evaluate_portfolio(portfolio).accounts
    assert row.portfolio_margin is not None and row.standard_margin is not None
    pm = row.portfolio_margin
    available = pm.equity - pm.initial_margin
    assert row.health.available_balance == pytest.approx(available)
    assert row.max_withdrawable["BTC"] == pytest.approx(available, rel=1e-12)
    assert row.max_withdrawable["BTC"] > row.standard_margin.available_balance
    doc = _doc()
    doc["accounts"][0]["balances"]["BTC"] -= row.max_withdrawable["BTC"]
    (after,) = evaluate_portfolio(parse_portfolio(doc)).accounts
    assert after.portfolio_margin is not None
    assert after.portfolio_margin.equity == pytest.approx(
        after.portfolio_margin.initial_margin, abs=1e-12
    )


def test_under_pm_the_crash_distance_is_not_computed() -> None:
    """The crash search runs the standard kernel, which does not margin a PM account: under PM
    the distance and both moves are None (JSON null), and the table says it is not computed."""
    (row,) = evaluate_portfolio(load_portfolio(PM_DOC)).accounts
    health = row.health
    assert (health.crash_distance, health.crash_move_down, health.crash_move_up) == (
        None,
        None,
        None,
    )
    (shown,) = to_data(evaluate_portfolio(load_portfolio(PM_DOC)))["accounts"]
    assert shown["crash_distance"] is None
    table = CliRunner().invoke(app, ["margin", str(PM_DOC)]).stdout
    assert "not computed (PM)" in table
