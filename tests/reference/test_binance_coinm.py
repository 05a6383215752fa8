"""Binance COIN-M brackets: the bundled BTCUSD_PERP maintenance amounts and margin.

Source: Binance FAQ "How to Calculate Liquidation Price of COIN-M Futures Contracts"
(https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46, 2021-02-05): a
300 BTC position is in the 12.5% bracket with maintenance amount 11.81 BTC; level 5 amount
= 50 BTC x (5% - 2.5%) + 0.56 BTC = 1.81 BTC; 100 contracts (100 USD each) at a mark of 25,000
are 0.4 BTC of notional, level 1: MM = 0.4 x 0.4% - 0 = 0.0016 BTC.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from crossmargin import Account, Position, evaluate
from crossmargin.rules import load_rulebook


def _btcusd() -> list[tuple[float, float, float]]:
    margin = load_rulebook("binance-coinm").instruments["BTCUSD_PERP"].margin
    assert margin is not None
    return [(t.min_notional, t.maintenance_margin_rate, t.maintenance_amount) for t in margin.tiers]


def test_published_maintenance_amounts() -> None:
    tiers = _btcusd()
    assert tiers[3] == (30.0, 0.025, pytest.approx(0.56))
    assert tiers[4] == (50.0, 0.05, pytest.approx(1.81))
    assert tiers[6] == (200.0, 0.125, pytest.approx(11.81))


def test_amounts_left_out_continue_from_the_bracket_below() -> None:
    """Each derived amount starts from the amount of the bracket below, given or derived, so
    MM is continuous at every floor: level 6 = 1.81 + 100 x (10% - 5%) = 6.81."""
    tiers = _btcusd()
    assert tiers[5][2] == pytest.approx(1.81 + 100 * 0.05)
    for (_, r0, a0), (floor, r1, a1) in pairwise(tiers):
        assert floor * r0 - a0 == pytest.approx(floor * r1 - a1, abs=1e-12)


def test_maintenance_margin_of_the_faq_example() -> None:
    book = load_rulebook("binance-coinm")
    market = book.market({"BTCUSD_PERP": 25_000.0})
    account = Account("c", {"BTC": 1.0}, [Position("BTCUSD_PERP", 100, 25_000.0)])
    row = evaluate(account, market).positions[0]
    assert row.notional == pytest.approx(0.4)
    assert row.maintenance_margin == pytest.approx(0.0016)
    assert row.bracket == 0
