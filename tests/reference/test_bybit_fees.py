"""Bybit: bankruptcy prices, fee to close (in margins and in the margin a what-if fill posts),
entry-priced isolated margin and inverse liquidation prices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tests.helpers import inverse_perp

from crossmargin import (
    Account,
    MarginMode,
    MarginSchedule,
    Market,
    Order,
    Position,
    evaluate,
    what_if,
)
from crossmargin.maths.bankruptcy import (
    bankruptcy_price_of,
    close_fee_of,
    leverage_bankruptcy_price_of,
)
from crossmargin.maths.liquidation import liquidation_price_of
from crossmargin.maths.tiers import Terms
from crossmargin.rules import load_rulebook


def test_legacy_inverse_cross_bankruptcy_and_liquidation_prices() -> None:
    """Bybit "How to calculate Liquidation Price (Inverse Contract)", cross margin: balance
    0.5 BTC, long 10,000 USD contracts at 8,000, MMR 0.5%, taker 0.075%.

    Bankruptcy = 1.00075 x 10,000 / (10,000 / 8,000 + 0.5) = 5,718.57 [published]. The
    liquidation price solves 10,000 (1/8,000 - 1/LP) = -(0.5 - 10,000/8,000 x 0.5% - 10,000 x
    0.075% / 5,718.57): 5,739.08 exactly; the page prints 5,739.50 (rounded to the 0.5 tick).
    """
    bankruptcy = bankruptcy_price_of(10_000.0, 1.0, 8_000.0, True, 0.5, 0.00075)
    assert bankruptcy == pytest.approx(5_718.57, abs=0.005)
    close_fee = 10_000.0 * 0.00075 / bankruptcy
    entry_mm = 10_000.0 / 8_000.0 * 0.005
    terms = Terms(1.0, True, 0.0, 0.0, 0.0, True, 1.0, 0.0)
    brackets = np.array([[0.0], [0.0], [0.0], [100.0]])
    price = liquidation_price_of(
        10_000.0, 8_000.0, 8_000.0, 0.5 - entry_mm - close_fee, brackets, terms, True
    )
    assert price == pytest.approx(10_000.0 / (10_000 / 8_000 + 0.5 - entry_mm - close_fee))
    assert price == pytest.approx(5_739.50, abs=0.5)


def test_order_cost_fee_to_close() -> None:
    """Bybit "Order Cost (USDT Contract)" (venues.md 2.3): 1 BTC at 10,000, 50x, taker 0.075%:
    bankruptcy price 10,000 x (1 - 2%) = 9,800 [published]; fee to close 9,800 x 0.075% = 7.35;
    order cost = IM 200 + open fee 7.5 + close fee 7.35 = 214.85."""
    assert leverage_bankruptcy_price_of(1.0, 10_000.0, 50.0, False) == pytest.approx(9_800.0)
    fee = close_fee_of(1.0, 1.0, 10_000.0, 50.0, False, 0.00075)
    assert fee == pytest.approx(7.35)
    assert 10_000.0 / 50 + 10_000.0 * 0.00075 + fee == pytest.approx(214.85)


def test_inverse_leverage_bankruptcy_price() -> None:
    """Bybit ADL example (venues.md 2.7): long BTCUSD at 7,890.08, 50x: 7,890.08 x 50/51."""
    price = leverage_bankruptcy_price_of(5_000.0, 7_890.08, 50.0, True)
    assert price == pytest.approx(7_890.08 * 50 / 51)
    assert round(price * 2) / 2 == 7_735.5


@pytest.mark.parametrize(
    ("qty", "liquidation", "bankruptcy"), [(1.0, 19_700.0, 19_600.0), (-1.0, 20_300.0, 20_400.0)]
)
def test_bundled_rulebook_isolated_vector_y2_with_fee_to_close(
    qty: float, liquidation: float, bankruptcy: float
) -> None:
    """Bybit "Liquidation Price (USDT Contract)", isolated: 1 BTC at 20,000, 50x, MMR 0.5%:
    IM 400, MM 100 at the entry-price position value, LP = EP -/+ (IM - MM) / size = 19,700
    [published]. Bybit adds the fee to close (size x bankruptcy price x taker 0.055%: 19,600 x
    0.055% = 10.78 long) to both IM and MM, so a position margin of IM + fee liquidates at the
    same price and goes bankrupt at the leverage bankruptcy price EP x (1 -/+ 1/50)."""
    book = load_rulebook("bybit-linear")
    market = book.market({"BTCUSDT": 20_000.0}, account_mode="isolated")
    fee = abs(qty) * bankruptcy * 0.00055
    position = Position("BTCUSDT", qty, 20_000.0, MarginMode.ISOLATED, 400.0 + fee, leverage=50)
    row = evaluate(Account("y2", {}, [position]), market).positions[0]
    assert row.initial_margin == pytest.approx(400.0 + fee)
    assert row.maintenance_margin == pytest.approx(100.0 + fee)
    assert row.liquidation_price == pytest.approx(liquidation, rel=1e-12)
    assert row.bankruptcy_price == pytest.approx(bankruptcy, rel=1e-12)


def test_cross_maintenance_margin_counts_the_fee_to_close() -> None:
    """UTA cross: MM = position value x MMR - deduction + fee to close: 2 BTC at 30,000 at the
    100x bracket maximum, taker 0.055%: 60,000 x 0.5% + 2 x 29,700 x 0.055% = 300 + 32.67."""
    book = load_rulebook("bybit-linear")
    market = book.market({"BTCUSDT": 30_000.0})
    account = Account("c", {"USDT": 5_000.0}, [Position("BTCUSDT", 2.0, 30_000.0)])
    health = evaluate(account, market)
    assert health.maintenance_margin == pytest.approx(300.0 + 32.67)
    row = health.positions[0]
    # 5,000 + 2 (p - 30,000) = 2 p x 0.5% + 32.67
    assert row.liquidation_price == pytest.approx((60_000.0 - 5_000.0 + 32.67) / (2 * 0.995))
    assert row.bankruptcy_price == pytest.approx((60_000.0 - 5_000.0) / (2 - 2 * 0.00055))


def test_inverse_isolated_liquidation_at_entry_value() -> None:
    """Bybit "Liquidation Price Calculation under Isolated Mode (UTA)", inverse (2024-09-10
    version): long 60,000 USD at 50,000, 10x, MMR 0.5%: position value 1.2 BTC, IM 0.12 BTC,
    MM 0.006 BTC; LP = quantity / (value + IM - MM) = 60,000 / 1.314 [derived from the formula]."""
    flat = MarginSchedule.brackets([0.0], [0.005], [100.0])
    schedule = dataclasses.replace(flat, isolated_at_entry=True)
    instrument = inverse_perp("BTCUSD", schedule, contract_size=1.0)
    market = Market({"BTCUSD": instrument}, {"BTCUSD": 50_000.0, "BTC": 50_000.0}, "BTC")
    position = Position("BTCUSD", 60_000.0, 50_000.0, MarginMode.ISOLATED, 0.12, leverage=10)
    row = evaluate(Account("i", {}, [position]), market).positions[0]
    assert row.maintenance_margin == pytest.approx(0.006)
    assert row.liquidation_price == pytest.approx(60_000.0 / 1.314, rel=1e-12)
    assert row.bankruptcy_price == pytest.approx(60_000.0 / 1.32, rel=1e-12)


def test_uta_cross_mode_refuses_isolated_positions() -> None:
    """The UTA margin mode applies to the whole account (Bybit "Differences Between the Margin
    Modes Under the Unified Trading Account")."""
    book = load_rulebook("bybit-linear")
    position = Position("BTCUSDT", 1.0, 20_000.0, MarginMode.ISOLATED, 400.0)
    with pytest.raises(Exception, match="isolated margin is not available in Cross Margin"):
        book.mode().check(Account("a", {}, [position]))
    book.mode("isolated").check(Account("a", {}, [position]))


def test_what_if_isolated_fill_posts_the_order_cost() -> None:
    """Bybit "Order Cost (USDT Contract)" (venues.md 2.3, the mobie.io copy of the doc): buying
    1 BTC at 10,000 at 50x with a 0.075% taker fee costs IM 200 + open fee 7.5 + fee to close
    7.35 (at the bankruptcy price 9,800) = 214.85. An isolated what-if fill posts IM + fee to
    close as the position's margin (the risk kernel's IM) and pays the open fee on top."""
    book = load_rulebook("bybit-linear")
    taker = [{"symbol": "BTCUSDT", "close_fee_rate": 0.00075}]
    market = book.market({"BTCUSDT": 10_000.0}, taker, account_mode="isolated")
    account = Account("cost", {"USDT": 1_000.0})
    order = Order("BTCUSDT", 1.0, 10_000.0, MarginMode.ISOLATED, leverage=50, fee_rate=0.00075)
    result = what_if(account, market, order)
    assert result.accepted
    (position,) = result.account.positions
    assert position.isolated_margin == pytest.approx(200.0 + 7.35)
    assert 1_000.0 - result.account.balances["USDT"] == pytest.approx(214.85)
    (row,) = result.after.positions
    assert row.initial_margin == pytest.approx(position.isolated_margin)


@pytest.mark.parametrize(("qty", "liquidation"), [(1.0, 19_700.0), (-1.0, 20_300.0)])
def test_what_if_isolated_fill_liquidates_at_the_published_price(
    qty: float, liquidation: float
) -> None:
    """Vector Y2 through a what-if fill on the bundled rulebook (taker 0.055%): the margin the
    fill posts is IM 400 + its fee to close, so the position liquidates at EP -/+ (IM - MM) /
    size = 19,700 / 20,300 [published], as the position of
    :func:`test_bundled_rulebook_isolated_vector_y2_with_fee_to_close` does."""
    market = load_rulebook("bybit-linear").market({"BTCUSDT": 20_000.0}, account_mode="isolated")
    order = Order("BTCUSDT", qty, 20_000.0, MarginMode.ISOLATED, leverage=50)
    result = what_if(Account("y2", {"USDT": 1_000.0}), market, order)
    (row,) = result.after.positions
    assert row.liquidation_price == pytest.approx(liquidation, rel=1e-12)
