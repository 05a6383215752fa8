"""Trading fees against Binance's published commission examples.

Source: Binance FAQ 360033544231, "Binance Futures Fee Structure & Fee Calculations":
``commission = notional value x fee rate``; USDⓈ-M notional = contracts x trade price, COIN-M
notional = contracts x contract size / trade price; maker 0.02%, taker 0.05%.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from crossmargin.maths.fees import trade_fee_of
from crossmargin.maths.money import trade_fee


def test_usdm_taker_and_maker_fee() -> None:
    """Buy 1 BTC of BTCUSDT at 10,104 (taker): 10,104 x 0.05% = 5.052 USDT; sell it at 11,104
    (maker): 11,104 x 0.02% = 2.2208 USDT."""
    assert trade_fee_of(1.0, 1.0, 10_104.0, False, 0.0005) == pytest.approx(5.052, rel=1e-12)
    assert trade_fee_of(-1.0, 1.0, 11_104.0, False, 0.0002) == pytest.approx(2.2208, rel=1e-12)
    assert trade_fee(D(1), D(1), D(10_104), D("0.0005")) == D("5.05200000")
    assert trade_fee(D(-1), D(1), D(11_104), D("0.0002")) == D("2.22080000")


def test_coinm_taker_and_maker_fee() -> None:
    """Buy 10 BTCUSD quarterly contracts (100 USD each) at 10,104: notional 1,000 / 10,104 =
    0.09897 BTC, taker fee 0.000049485 BTC; sell them at 11,104: 0.09 BTC, maker fee 0.000018 BTC
    (the page rounds the notionals to 0.09897 and 0.09 BTC)."""
    assert trade_fee_of(10.0, 100.0, 10_104.0, True, 0.0005) == pytest.approx(0.000049485, rel=1e-4)
    assert trade_fee_of(-10.0, 100.0, 11_104.0, True, 0.0002) == pytest.approx(0.000018, rel=1e-3)


def test_rebate_rate_pays_the_trader() -> None:
    """A negative (maker rebate) rate gives a negative fee: 2 x 3,000 x -0.01% = -0.6."""
    assert trade_fee_of(2.0, 1.0, 3_000.0, False, -0.0001) == pytest.approx(-0.6, rel=1e-12)
    assert trade_fee(D(2), D(1), D(3_000), D("-0.0001")) == D("-0.60000000")
