"""Entry averaging, the close part of a fill, realized PnL and released margin, worked by hand.

Every expected figure is recomputed in the docstring with plain arithmetic: a linear position's
average entry is its cost over its size; an inverse position (PnL in coin, ``q (1/entry -
1/mark)``) costs ``contracts / price`` coin per leg, so its entry is contracts over coin paid
(the harmonic mean).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from crossmargin.maths.entry import (
    average_entry_of,
    closed_qty_of,
    realized_pnl_of,
    released_margin_of,
)
from crossmargin.maths.money import average_entry, closed_qty, realized_pnl, released_margin
from crossmargin.maths.pnl import unrealized_pnl_of


def test_linear_entry_is_the_weighted_mean() -> None:
    """1 @ 10,000 then 3 @ 12,000 cost 46,000 for 4: entry 11,500."""
    assert average_entry_of(1.0, 10_000.0, 3.0, 12_000.0, False) == pytest.approx(11_500.0)
    assert average_entry(D(1), D(10_000), D(3), D(12_000)) == D("11500.00000000")
    assert average_entry(D(-1), D(10_000), D(-3), D(12_000)) == D("11500.00000000")


def test_inverse_entry_is_the_harmonic_mean() -> None:
    """10,000 USD contracts @ 10,000 cost 1 BTC, 10,000 more @ 20,000 cost 0.5 BTC: 20,000 USD
    for 1.5 BTC is an entry of 13,333.33; the position's PnL at any mark is the two legs' sum."""
    entry = average_entry_of(10_000.0, 10_000.0, 10_000.0, 20_000.0, True)
    assert entry == pytest.approx(20_000 / 1.5, rel=1e-12)
    for mark in (8_000.0, 15_000.0, 30_000.0):
        legs = unrealized_pnl_of(10_000.0, 1.0, 10_000.0, mark, True) + unrealized_pnl_of(
            10_000.0, 1.0, 20_000.0, mark, True
        )
        assert unrealized_pnl_of(20_000.0, 1.0, entry, mark, True) == pytest.approx(legs)


def test_fill_split_on_a_flip() -> None:
    """Long 2 @ 100, sell 3 @ 110: closes 2, realizes 2 x (110 - 100) = 20, opens short 1."""
    assert closed_qty_of(2.0, -3.0) == 2.0
    assert realized_pnl_of(2.0, 1.0, 100.0, -3.0, 110.0, False) == pytest.approx(20.0)
    assert closed_qty(D(2), D(-3)) == D(2)
    assert realized_pnl(D(2), D(1), D(100), D(-3), D(110)) == D("20.00000000")


def test_adding_closes_nothing() -> None:
    """A fill of the position's sign closes 0 and realizes 0."""
    assert closed_qty_of(-2.0, -1.0) == 0.0
    assert realized_pnl_of(-2.0, 1.0, 100.0, -1.0, 90.0, False) == 0.0
    assert closed_qty(D(-2), D(-1)) == 0
    assert realized_pnl(D(-2), D(1), D(100), D(-1), D(90)) == 0


def test_short_realizes_in_coin_on_an_inverse_contract() -> None:
    """Short 1,000 USD @ 10,000, buy back 400 @ 8,000: 400 x (1/8,000 - 1/10,000) = 0.01 BTC."""
    closed = realized_pnl_of(-1_000.0, 1.0, 10_000.0, 400.0, 8_000.0, True)
    assert closed == pytest.approx(0.01, rel=1e-12)


def test_partial_close_releases_its_share_of_the_margin() -> None:
    """Isolated 300 on 3 contracts; selling 1 frees 300 x 1/3 = 100."""
    assert released_margin_of(300.0, 3.0, -1.0) == pytest.approx(100.0)
    assert released_margin(D(300), D(3), D(-1)) == D("100.00000000")
    assert released_margin(D(100), D(3), D(-1)) == D("33.33333333")
