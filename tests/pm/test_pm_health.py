"""The PM health view of ``portfolio_margin``: option value, equity, margin ratio and status.

Portfolio: ``tests/data/deribit-pm.json``, a short BTC-PERPETUAL of the bundled
``deribit-inverse`` rulebook (entry = mark, so no unrealized P&L) and a short 30-day strangle
(70,000 call at 60% vol, 50,000 put at 65% vol) on BTC = 60,000, coin-settled. Option values
are recomputed with the textbook Black-76 of ``_pm_reference`` (undiscounted, valued on the
index, coin value = USD value / F); the status rule is venues.md's gate: bankrupt below zero
equity, liquidatable below the maintenance margin, margin call from MM / equity >= the
market's margin-call ratio.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from _pm_reference import black
from hypothesis import given, settings, strategies as st

from crossmargin.app.portfolio import AccountResult, evaluate_portfolio, parse_portfolio
from crossmargin.io.results import to_data
from crossmargin.maths.status import Status
from crossmargin.pm import PortfolioMarginReport, portfolio_margin_report

DOC = Path(__file__).parents[1] / "data" / "deribit-pm.json"
F0, T = 60_000.0, 30 / 365
LEGS = [(70_000.0, True, 0.60), (50_000.0, False, 0.65)]  # strike, call, vol; short 1 each


def document(balance: float = 2.0, option_qty: float = -1.0, **top: Any) -> dict[str, Any]:
    """The Deribit PM document with the BTC balance, the option quantities or top keys changed."""
    doc = json.loads(DOC.read_text())
    doc.update(top)
    account = doc["accounts"][0]
    account["balances"] = {"BTC": balance}
    for position in account["positions"][1:]:
        position["qty"] = option_qty
    return doc


def strangle_usd() -> float:
    """USD value of one long call plus one long put of the strangle (Black-76, independent)."""
    return sum(black(F0, k, T, vol, call) for k, call, vol in LEGS)


def only_account(doc: dict[str, Any]) -> AccountResult:
    """The result of the document's one account."""
    (result,) = evaluate_portfolio(parse_portfolio(doc)).accounts
    return result


def pm_of(doc: dict[str, Any]) -> PortfolioMarginReport:
    pm = only_account(doc).portfolio_margin
    assert pm is not None
    return pm


@pytest.mark.parametrize("qty", [-1.0, 1.0, -2.5])
def test_option_value_is_the_black76_mark_in_coin(qty: float) -> None:
    """Account currency BTC: option value = qty * sum(Black-76 USD value) / F, short < 0."""
    pm = pm_of(document(option_qty=qty))
    assert pm.option_value == pytest.approx(qty * strangle_usd() / F0, rel=1e-9)
    assert pm.option_value * qty > 0.0


def test_option_value_converts_to_a_usd_account() -> None:
    """Account currency USD: the coin value times the BTC price, i.e. the USD Black-76 value."""
    assert pm_of(document(currency="USD")).option_value == pytest.approx(-strangle_usd(), rel=1e-9)


def test_equity_is_cross_equity_plus_option_value() -> None:
    """PM equity = 2 BTC balance + 0 perpetual P&L + the options' (negative) mark value. The
    account's top-level figures are the PM ones; the standard ones stand beside them, and the
    perpetual's row keeps its standard margin."""
    result = only_account(document())
    pm, standard = result.portfolio_margin, result.standard_margin
    assert pm is not None and standard is not None
    assert pm.equity == pytest.approx(2.0 - strangle_usd() / F0, rel=1e-9)
    assert pm.margin_ratio == pytest.approx(pm.maintenance_margin / pm.equity, rel=1e-12)
    h = result.health
    assert (h.equity, h.cross_equity) == (pm.equity, pm.equity)
    assert (h.initial_margin, h.maintenance_margin) == (pm.initial_margin, pm.maintenance_margin)
    assert (h.margin_ratio, h.status) == (pm.margin_ratio, pm.status)
    assert h.available_balance == pytest.approx(max(pm.equity - pm.initial_margin, 0.0))
    # deribit-inverse: MM rate 1% + 0.005% per BTC of the 0.5 BTC position.
    mm_rate = 0.01 + 0.00005 * 0.5
    assert h.positions[0].maintenance_margin == pytest.approx(30_000.0 * mm_rate / F0, rel=1e-9)
    assert standard.initial_margin == pm.standard_initial_margin
    assert standard.maintenance_margin == pm.standard_maintenance_margin
    assert standard.margin_ratio == pytest.approx(pm.standard_maintenance_margin / pm.equity)
    data = to_data(result)
    assert data["initial_margin"] == pm.initial_margin
    assert data["standard_margin"]["initial_margin"] == pm.standard_initial_margin


def test_direct_call_matches_the_cli_path() -> None:
    """Without a health argument the report evaluates the non-option legs itself."""
    portfolio = parse_portfolio(document())
    assert portfolio.pm is not None and portfolio.options is not None
    (result,) = evaluate_portfolio(portfolio).accounts
    direct = portfolio_margin_report(
        portfolio.accounts[0], portfolio.market, portfolio.pm, portfolio.options
    )
    assert to_data(direct) == to_data(result.portfolio_margin)


def test_status_follows_the_pm_maintenance_margin() -> None:
    """Balances placed around the PM MM (which a coin-accounted portfolio does not change with
    the balance): healthy far above, margin call past the ratio, liquidatable below MM, bankrupt
    below zero equity (ratio infinite, null in the JSON output). The standard view of the perp
    alone stays healthy."""
    base = pm_of(document(2.0))
    mm, opt = base.maintenance_margin, base.option_value
    call_ratio = parse_portfolio(document()).market.margin_call_ratio
    assert mm > 0.0 and opt < 0.0

    def balance_for(equity: float) -> float:
        return equity - opt

    assert pm_of(document(100.0)).status is Status.HEALTHY
    warned = pm_of(document(balance_for(mm / (0.5 * (call_ratio + 1.0)))))
    assert warned.status is Status.MARGIN_CALL
    assert warned.margin_ratio >= call_ratio
    below = pm_of(document(balance_for(0.5 * mm)))
    assert below.maintenance_margin == pytest.approx(mm, rel=1e-12)
    assert below.equity == pytest.approx(0.5 * mm, rel=1e-9)
    assert below.status is Status.LIQUIDATABLE
    assert below.margin_ratio == pytest.approx(2.0, rel=1e-9)
    broke = pm_of(document(balance_for(-0.01)))
    assert broke.status is Status.BANKRUPT
    assert broke.margin_ratio == math.inf
    assert to_data(broke)["margin_ratio"] is None
    assert to_data(broke)["status"] == "bankrupt"
    assert only_account(document(balance_for(0.5 * mm))).health.status is Status.LIQUIDATABLE


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 5.0))
def test_status_matches_the_gate_for_any_balance(balance: float) -> None:
    """Equity moves one for one with the balance and the status is the venues.md gate applied
    to (equity, PM MM), whatever the balance."""
    pm = pm_of(document(balance))
    equity, mm = pm.equity, pm.maintenance_margin
    ratio = parse_portfolio(document()).market.margin_call_ratio
    assert equity == pytest.approx(balance - strangle_usd() / F0, rel=1e-9, abs=1e-12)
    if equity < 0:
        want = Status.BANKRUPT
    elif equity < mm:
        want = Status.LIQUIDATABLE
    elif mm / equity >= ratio:
        want = Status.MARGIN_CALL
    else:
        want = Status.HEALTHY
    assert pm.status is want
