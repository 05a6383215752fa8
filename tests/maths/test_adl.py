"""ADL queue rank and bankruptcy price against Bybit's published formula and examples.

Sources (venues.md 2.3 and 2.7): Bybit "Auto-Deleveraging (ADL)": rank = PnL% x EffLev when
profitable, else PnL% / EffLev; Bybit isolated bankruptcy price: long ``EP x (1 - IMR)``, short
``EP x (1 + IMR)``, e.g. long 1 BTC @ 10,000 at 50x goes bankrupt at 9,800; Bybit ADL example:
long 5,000 BTCUSD (inverse, 1 USD contracts) @ 7,890.08 at 50x has bankruptcy price
7,890.08 x 50/51 = 7,735.37.
"""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from crossmargin.maths.adl import adl_rank, bankruptcy_price_of
from crossmargin.maths.money import bankruptcy_price


def test_adl_rank_follows_the_published_formula() -> None:
    """Entry value 1,000, notional 1,100, equity 220: EffLev 5. UPnL +100: 0.1 x 5 = 0.5;
    UPnL -100: -0.1 / 5 = -0.02."""
    rank = adl_rank(
        np.array([100.0, -100.0]),
        np.array([1_000.0, 1_000.0]),
        np.array([1_100.0, 1_100.0]),
        np.array([220.0, 220.0]),
    )
    np.testing.assert_allclose(rank, [0.5, -0.02])


@pytest.mark.parametrize("mark", [9_500.0, 9_700.0, 9_900.0])
def test_isolated_bankruptcy_price_example(mark: float) -> None:
    """Isolated margin 10,000 / 50 = 200. At any mark the deficit is -(200 + q (mark - 10,000));
    closing there instead leaves 0 at 9,800 (long) and 10,200 (short), whatever the mark."""
    for qty, expected in ((1.0, 9_800.0), (-1.0, 10_200.0)):
        deficit = -(200.0 + qty * (mark - 10_000.0))
        assert bankruptcy_price_of(mark, deficit, qty, 1.0, False) == pytest.approx(expected)
        exact = bankruptcy_price(D(repr(mark)), D(repr(deficit)), D(repr(qty)), D(1))
        assert exact == D(repr(expected)).quantize(D("0.00000001"))


def test_inverse_bankruptcy_price_example() -> None:
    """Margin 5,000 / 7,890.08 / 50 BTC; at mark 7,700 the coin equity is margin + 5,000 (1/entry
    - 1/mark) < 0, and the bankruptcy price is 7,890.08 x 50/51 = 7,735.37."""
    entry, mark, qty = 7_890.08, 7_700.0, 5_000.0
    margin = qty / entry / 50
    deficit = -(margin + qty * (1 / entry - 1 / mark))
    assert bankruptcy_price_of(mark, deficit, qty, 1.0, True) == pytest.approx(7_735.37, abs=5e-3)


def test_exact_bankruptcy_price_rounds_so_the_fill_covers_the_deficit() -> None:
    """100 + 1/3 = 100.333...: a long rounds up to 100.33333334; a short, 100 - 1/3, rounds down
    to 99.66666666; a price never goes below one quantum (surplus 10 on 1 contract at 1)."""
    assert bankruptcy_price(D(100), D(1), D(3), D(1)) == D("100.33333334")
    assert bankruptcy_price(D(100), D(1), D(-3), D(1)) == D("99.66666666")
    assert bankruptcy_price(D(1), D(-10), D(1), D(1)) == D("0.00000001")
