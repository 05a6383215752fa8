"""Deribit portfolio margin of futures-only books against Deribit's own simulator
(``private/pme/simulate``), each figure also computed here from the documented method.

The method (support.deribit.com article 25944756247837, Portfolio Margin, and the responses'
``model_params``): a position of ``c`` coins of an inverse future loses
``c x (1 - 1 / (1 + m))`` coin when the index moves by ``m``; the standard table moves the index
over +-price_range in 9 buckets x 3 vol states; positive aggregated P&L counts x pnl_offset; the
extended table holds futures at the standard edge and counts only losses beyond the
extended_dampener; the worst case is the largest counted loss; the roll shock is
``sum |c| x max(annualised_move_risk x t, min_annualised_move)``; MM = mm_factor x IM.

Vectors:
- docs.deribit.com/api-reference/account-management/private-simulate, response example
  (timestamp 1718619740501 = 2024-06-17 10:22:20 UTC): BTC-PERPETUAL +0.314538364 BTC and
  BTC-28JUN24 -0.001187534 BTC, index 65,666.19; worst_case 0.05968587238095239 (standard,
  bucket 1 left), roll_shock 0.00315725898, delta_shock 0, risk_matrix_margin 0.06284313098,
  maintenance_margin 0.050274504784; btc pnl_offset 0 and extended_dampener 100,000.
- A private/pme/simulate response of 2026-02-15 for a short ETH-PERPETUAL (stored in a public
  repository; venues.md 5.4 keeps it as the external check): position -0.999487053 ETH, index
  1,949.34, mark 1,949.49; worst_case 0.15246412672881357 (standard, +18%), roll_shock
  0.004997435265, delta_shock 0, initial margin 0.157461562265, maintenance margin
  0.125969249812; its aggregated extended vector is all zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from crossmargin.app.portfolio import AccountResult, evaluate_portfolio, parse_portfolio
from crossmargin.pm import PortfolioMarginReport

STANDARD_MOVES = [i / 4 for i in range(-4, 5) for _ in range(3)]
EXTENDED_MOVES = [-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0]


def coin_pnl(coins: float, move: float) -> float:
    """Coin P&L of ``coins`` of an inverse future when the index moves by ``move``."""
    return coins * (1.0 - 1.0 / (1.0 + move))


def _only(doc: dict[str, Any]) -> tuple[AccountResult, PortfolioMarginReport]:
    (result,) = evaluate_portfolio(parse_portfolio(doc)).accounts
    assert result.portfolio_margin is not None
    return result, result.portfolio_margin


def eth_document() -> dict[str, Any]:
    """The short ETH-PERPETUAL book: the document names only ``deribit-pm`` and has no options
    section; ETH-PERPETUAL comes from the bundled standard rulebook (1 USD contracts)."""
    coins, mark = 0.999487053, 1949.49
    return {
        "rulebook": "deribit-pm",
        "currency": "ETH",
        "prices": {"ETH": 1949.34, "ETH-PERPETUAL": mark},
        "accounts": [
            {
                "id": "short-eth",
                "balances": {"ETH": 1.0},
                "positions": [
                    {"symbol": "ETH-PERPETUAL", "qty": -coins * mark, "entry_price": mark}
                ],
            }
        ],
    }


def test_short_eth_perpetual_matches_deribits_simulator() -> None:
    """Worst case = the +18% edge of the standard table (the extended +500% does not set it),
    roll shock = |c| x ETH's min_annualised_move 0.005, IM and MM as Deribit returns them;
    the account's own IM, MM and status are these PM figures."""
    result, pm = _only(eth_document())
    coins = -0.999487053
    worst = -coin_pnl(coins, 0.18)  # a short loses most at the +18% edge
    assert worst == pytest.approx(0.15246412672881357, rel=1e-9)
    (unit,) = pm.units
    assert unit.currency == "ETH"
    assert unit.worst_case == pytest.approx(0.15246412672881357, rel=1e-9)
    assert (unit.worst_scenario.kind, unit.worst_scenario.price_move) == ("standard", 0.18)
    assert unit.add_ons["roll_shock"] == pytest.approx(abs(coins) * 0.005, rel=1e-12)
    assert unit.add_ons["roll_shock"] == pytest.approx(0.004997435265, rel=1e-9)
    assert unit.add_ons["delta_shock"] == 0.0
    # Deribit's risk_matrix_margin is its worst case + roll shock to 2.7e-10 (its rounding)
    assert pm.initial_margin == pytest.approx(0.157461562265, rel=1e-8)
    assert pm.maintenance_margin == pytest.approx(0.125969249812, rel=1e-8)
    extended = np.array(unit.risk_array[27:])
    np.testing.assert_array_equal(extended, np.zeros(8))
    h = result.health
    assert (h.initial_margin, h.maintenance_margin) == (pm.initial_margin, pm.maintenance_margin)
    assert h.status is pm.status
    assert result.standard_margin is not None
    assert result.standard_margin.initial_margin == pytest.approx(
        (0.02 + 0.000004 * abs(coins)) * abs(coins), rel=1e-9
    )


def docs_document() -> dict[str, Any]:
    """Deribit's documentation example: a long perpetual against a short dated future (the
    dated BTC-28JUN24 entered in the document with the bundled futures' fields)."""
    perp, future = 0.314538364, -0.001187534
    marks = {"BTC-PERPETUAL": 65910.57, "BTC-28JUN24": 67371.75}
    fields = {
        "kind": "future",
        "underlying": "BTC",
        "quote": "USD",
        "settle": "BTC",
        "inverse": True,
        "contract_size": 10,
        "initial_margin_rate": 0.02,
        "maintenance_margin_rate": 0.01,
    }
    return {
        "rulebook": "deribit-pm",
        "currency": "BTC",
        "prices": {"BTC": 65666.19, **marks},
        "options": {"valuation_time": "2024-06-17T10:22:20.501+00:00"},
        "instruments": [{"symbol": "BTC-28JUN24", "expiry": "2024-06-28", **fields}],
        "accounts": [
            {
                "id": "docs",
                "balances": {"BTC": 1.0},
                "positions": [
                    {"symbol": s, "qty": c * marks[s] / 10.0, "entry_price": marks[s]}
                    for s, c in (("BTC-PERPETUAL", perp), ("BTC-28JUN24", future))
                ],
            }
        ],
    }


def test_documentation_example_perpetual_against_dated_future() -> None:
    """The aggregated standard vector's losses, the worst case at -16%, the roll shock (the
    future's 11 days give 0.075 x t < 0.01, so both legs roll at the minimum move) and the
    risk-matrix margin and MM of Deribit's example."""
    _, pm = _only(docs_document())
    perp, future = 0.314538364, -0.001187534
    (unit,) = pm.units
    aggregated = [coin_pnl(perp, 0.16 * m) + coin_pnl(future, 0.16 * m) for m in STANDARD_MOVES]
    losses = np.array([min(x, 0.0) for x in aggregated])
    np.testing.assert_allclose(np.minimum(unit.risk_array[:27], 0.0), losses, rtol=1e-9)
    assert losses[:3] == pytest.approx([-0.05968587238095239] * 3, rel=1e-9)
    assert unit.worst_case == pytest.approx(0.05968587238095239, rel=1e-9)
    assert (unit.worst_scenario.kind, unit.worst_scenario.price_move) == ("standard", -0.16)
    roll = (abs(perp) + abs(future)) * 0.01
    assert unit.add_ons["roll_shock"] == pytest.approx(roll, rel=1e-12)
    assert unit.add_ons["roll_shock"] == pytest.approx(0.00315725898, rel=1e-9)
    assert unit.add_ons["delta_shock"] == 0.0
    assert pm.initial_margin == pytest.approx(0.06284313098, rel=1e-8)
    assert pm.maintenance_margin == pytest.approx(0.050274504784, rel=1e-8)
    np.testing.assert_array_equal(np.array(unit.risk_array[27:]), np.zeros(8))


def test_extended_table_holds_futures_at_the_standard_edge() -> None:
    """Deribit's ``initial_risk_vectors``: the perpetual's extended entries equal its -16% and
    +16% standard entries (-0.05991206933333334 and 0.04338460193103449 in the example); with
    no dampener the extended losses would equal, never exceed, the standard edge."""
    perp = 0.314538364
    assert coin_pnl(perp, -0.16) == pytest.approx(-0.05991206933333334, rel=1e-9)
    assert coin_pnl(perp, 0.16) == pytest.approx(0.04338460193103449, rel=1e-9)
    doc = docs_document()
    doc["accounts"][0]["positions"] = doc["accounts"][0]["positions"][:1]
    _, pm = _only(doc)
    (unit,) = pm.units
    capped = [coin_pnl(perp, min(max(m, -0.16), 0.16)) for m in EXTENDED_MOVES]
    assert capped[0] == pytest.approx(-0.05991206933333334, rel=1e-9)
    assert unit.worst_case == pytest.approx(-coin_pnl(perp, -0.16), rel=1e-9)
    assert unit.worst_scenario.kind == "standard"
