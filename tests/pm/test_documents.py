"""PM documents as traders write them: ``rulebook`` naming a PM rulebook, futures-only books
without an options section, and the errors the policy raises (one line naming the field)."""

from __future__ import annotations

from typing import Any

import pytest

from crossmargin.app.portfolio import evaluate_portfolio, parse_portfolio
from crossmargin.model import CrossMarginError


def futures_doc(**change: Any) -> dict[str, Any]:
    """A long BTC-PERPETUAL of 1 BTC (10,000 contracts of 10 USD at 100,000) under deribit-pm."""
    doc: dict[str, Any] = {
        "rulebook": "deribit-pm",
        "prices": {"BTC": 100_000.0, "BTC-PERPETUAL": 100_000.0},
        "accounts": [
            {
                "id": "perp",
                "balances": {"BTC": 1.0},
                "positions": [{"symbol": "BTC-PERPETUAL", "qty": 10_000, "entry_price": 1e5}],
            }
        ],
    }
    doc.update(change)
    return doc


def test_rulebook_naming_a_pm_rulebook_uses_its_standard_rulebook() -> None:
    """``deribit-pm`` as the rulebook: PM by deribit-pm, standard margin by deribit-inverse,
    account currency BTC; the same as naming both explicitly."""
    portfolio = parse_portfolio(futures_doc())
    assert portfolio.pm is not None and portfolio.pm.name == "deribit-pm"
    assert (portfolio.rulebook.name, portfolio.market.currency) == ("deribit-inverse", "BTC")
    explicit = futures_doc(rulebook="deribit-inverse", portfolio_margin="deribit-pm")
    same = futures_doc(portfolio_margin="deribit-pm")
    results = [evaluate_portfolio(parse_portfolio(d)) for d in (futures_doc(), explicit, same)]
    assert results[0] == results[1] == results[2]


def test_a_long_perpetual_is_margined_at_the_minus_16_percent_edge() -> None:
    """1 BTC long loses 1 - 1/0.84 BTC at -16%; roll 1 x 0.01; no delta shock below 20M USD."""
    (result,) = evaluate_portfolio(parse_portfolio(futures_doc())).accounts
    pm = result.portfolio_margin
    assert pm is not None
    worst = 1.0 / 0.84 - 1.0
    assert pm.worst_case == pytest.approx(worst, rel=1e-12)
    assert pm.initial_margin == pytest.approx(worst + 0.01, rel=1e-12)
    assert result.health.initial_margin == pm.initial_margin


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"portfolio_margin": "okx-pm"}, "rulebook: 'deribit-pm' is a PM rulebook"),
        ({"rulebook": "cme-span"}, "rulebook: required"),
    ],
)
def test_conflicting_or_missing_rulebooks(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CrossMarginError, match="^" + message):
        parse_portfolio(futures_doc(**change))


def test_isolated_positions_are_refused_under_portfolio_margin() -> None:
    doc = futures_doc()
    position = doc["accounts"][0]["positions"][0]
    position |= {"margin_mode": "isolated", "isolated_margin": 0.1}
    with pytest.raises(CrossMarginError, match=r"^accounts\[0\]\.positions\[0\]\.margin_mode"):
        evaluate_portfolio(parse_portfolio(doc))


def test_a_calendar_spread_of_bundled_futures_rolls_at_its_expiry() -> None:
    """Long 1 BTC of the perpetual, short 1 BTC of BTC-26MAR27 (121 days from the valuation
    time): the scan nets to the two legs' basis-free P&L, zero here; the roll shock is
    1 x 0.01 for the perpetual plus 1 x max(0.075 x t, 0.01) for the future."""
    doc = futures_doc(
        prices={"BTC": 1e5, "BTC-PERPETUAL": 1e5, "BTC-26MAR27": 1e5},
        options={"valuation_time": "2026-11-25T08:00:00+00:00"},
    )
    doc["accounts"][0]["positions"].append(
        {"symbol": "BTC-26MAR27", "qty": -10_000, "entry_price": 1e5}
    )
    (result,) = evaluate_portfolio(parse_portfolio(doc)).accounts
    pm = result.portfolio_margin
    assert pm is not None
    t = 121 / 365
    assert pm.worst_case == pytest.approx(0.0, abs=1e-12)
    assert pm.add_ons["roll_shock"] == pytest.approx(0.01 + max(0.075 * t, 0.01), rel=1e-12)
    assert pm.initial_margin == pytest.approx(0.01 + 0.075 * t, rel=1e-12)
