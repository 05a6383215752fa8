"""Funding payments: ``position value x funding rate``, paid by longs when the rate is positive.

Formula: Binance, "What fees are generated in Binance Futures trading" (funding fee = notional
value x funding rate; COIN-M notional = contracts x contract size / price) and Bybit, "Funding
Fee Calculation" (funding fee = position value x funding rate). Worked vector: CoinEx API v2,
"list position funding history" response example (long 129,384.12 CETUSDT, settle price 0.0642,
rate 0.0003, funding value 2.49193815 USDT).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from crossmargin.maths.funding import funding_payment_of
from crossmargin.maths.money import funding_payment


def test_published_funding_value() -> None:
    """129,384.12 x 0.0642 x 0.0003 = 2.4919381512, posted as 2.49193815."""
    assert funding_payment(D("129384.12"), D(1), D("0.0642"), D("0.0003")) == D("2.49193815")
    assert funding_payment_of(129_384.12, 1.0, 0.0642, False, 0.0003) == pytest.approx(
        2.4919381512, rel=1e-12
    )


def test_shorts_receive_at_a_positive_rate_and_pay_at_a_negative_one() -> None:
    """Short 0.5 BTC at mark 60,000: position value 30,000; at +0.01% it receives 3, at -0.01%
    it pays 3."""
    assert funding_payment(D("-0.5"), D(1), D(60_000), D("0.0001")) == D("-3.00000000")
    assert funding_payment(D("-0.5"), D(1), D(60_000), D("-0.0001")) == D("3.00000000")
    assert funding_payment_of(-0.5, 1.0, 60_000.0, False, 0.0001) == pytest.approx(-3.0)


def test_inverse_funding_is_in_coin() -> None:
    """Long 10 BTCUSD contracts of 100 USD at mark 10,000: value 1,000 / 10,000 = 0.1 BTC; at
    0.01% it pays 0.00001 BTC."""
    assert funding_payment_of(10.0, 100.0, 10_000.0, True, 0.0001) == pytest.approx(
        0.00001, rel=1e-12
    )
