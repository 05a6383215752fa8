"""Account health details: spot holdings, dated futures, coin-margined accounts, status levels."""

from __future__ import annotations

import pytest
from tests.helpers import binance_btc, inverse_perp, linear_perp

from crossmargin import (
    Account,
    CollateralRule,
    Instrument,
    Kind,
    MarginMode,
    MarginSchedule,
    Market,
    Position,
    Status,
    evaluate,
)


def test_spot_holdings_count_through_the_collateral_haircut() -> None:
    """2 BTC bought at 40,000 held spot (marked 50,000, ratio 0.95): 95,000 of collateral; the
    spot row shows the 20,000 gain but carries no margin."""
    spot = Instrument("BTC/USDT", Kind.SPOT, "BTC", "USDT", "USDT")
    collateral = {"BTC": CollateralRule.flat("BTC", 0.95), "USDT": CollateralRule.flat("USDT", 1.0)}
    market = Market({"BTC/USDT": spot}, {"BTC/USDT": 50_000.0}, "USDT", collateral)
    health = evaluate(Account("s", {"USDT": 0.0}, [Position("BTC/USDT", 2.0, 40_000.0)]), market)
    assert health.collateral_value == pytest.approx(95_000.0)
    assert health.maintenance_margin == 0.0
    (row,) = health.positions
    assert row.unrealized_pnl == pytest.approx(20_000.0)
    assert row.liquidation_price is None


def test_dated_future_margins_like_its_perpetual() -> None:
    perp = linear_perp("BTCUSDT", binance_btc())
    future = Instrument(
        "BTCUSDT_261225", Kind.FUTURE, "BTC", "USDT", "USDT", binance_btc(), expiry="2026-12-25"
    )
    market = Market(
        {"BTCUSDT": perp, "BTCUSDT_261225": future},
        {"BTCUSDT": 60_000.0, "BTCUSDT_261225": 60_000.0},
        "USDT",
    )
    a = evaluate(Account("p", {"USDT": 10_000.0}, [Position("BTCUSDT", 3.0, 58_000.0)]), market)
    b = evaluate(
        Account("f", {"USDT": 10_000.0}, [Position("BTCUSDT_261225", 3.0, 58_000.0)]), market
    )
    assert a.positions[0].liquidation_price == b.positions[0].liquidation_price
    assert a.maintenance_margin == b.maintenance_margin


def test_coin_margined_account() -> None:
    """Binance COIN-M style: 1 BTC wallet, long 1,000 contracts of 100 USD at 50,000.

    Notional 100,000 / 60,000 = 1.6667 BTC, PnL 100,000 * (1/50,000 - 1/60,000) = 0.33333 BTC.
    Long liquidation, bracket 1 (0.4%): 1 + 2 - 100,000/p - 400/p = 0 -> p = 100,400 / 3.
    """
    market = Market(
        {"BTCUSD_PERP": inverse_perp("BTCUSD_PERP", binance_btc())},
        {"BTCUSD_PERP": 60_000.0},
        "BTC",
    )
    health = evaluate(
        Account("c", {"BTC": 1.0}, [Position("BTCUSD_PERP", 1_000, 50_000.0)]), market
    )
    (row,) = health.positions
    assert row.notional == pytest.approx(100_000 / 60_000)
    assert row.unrealized_pnl == pytest.approx(100_000 * (1 / 50_000 - 1 / 60_000))
    assert row.liquidation_price == pytest.approx(100_400 / 3, rel=1e-12)
    assert health.currency == "BTC"


@pytest.mark.parametrize(
    ("cash", "status"),
    [
        (10_000.0, Status.HEALTHY),
        (240.0, Status.MARGIN_CALL),
        (150.0, Status.LIQUIDATABLE),
        (-10.0, Status.BANKRUPT),
    ],
)
def test_status_levels(cash: float, status: Status) -> None:
    """MM = 50,000 * 0.4% = 200; margin call at MM / equity >= 0.8 (equity <= 250)."""
    schedule = MarginSchedule.brackets([0.0], [0.004], [125.0])
    market = Market({"BTCUSDT": linear_perp("BTCUSDT", schedule)}, {"BTCUSDT": 50_000.0}, "USDT")
    account = Account("s", {"USDT": cash}, [Position("BTCUSDT", 1.0, 50_000.0)])
    assert evaluate(account, market).status == status


def test_bankruptcy_prices_cross_and_isolated() -> None:
    """Cross long 1 BTC at 50,000 with 10,000 USDT and a short ETH leg at a 1,000 loss: the
    cross equity is zero at 50,000 - 9,000 = 41,000. Isolated long 1 BTC with 5,000 of margin:
    45,000. No fee to close without a ``close_fee_rate``."""
    schedule = MarginSchedule.brackets([0.0], [0.004], [125.0])
    market = Market(
        {"BTCUSDT": linear_perp("BTCUSDT", schedule), "ETHUSDT": linear_perp("ETHUSDT", schedule)},
        {"BTCUSDT": 50_000.0, "ETHUSDT": 2_100.0},
        "USDT",
    )
    legs = [Position("BTCUSDT", 1.0, 50_000.0), Position("ETHUSDT", -10.0, 2_000.0)]
    cross = Account("c", {"USDT": 10_000.0}, legs)
    btc, eth = evaluate(cross, market).positions
    assert btc.bankruptcy_price == pytest.approx(41_000.0)
    assert eth.bankruptcy_price == pytest.approx(2_100.0 + 9_000.0 / 10)
    iso = Position("BTCUSDT", 1.0, 50_000.0, MarginMode.ISOLATED, 5_000.0)
    (row,) = evaluate(Account("i", {}, [iso]), market).positions
    assert row.bankruptcy_price == pytest.approx(45_000.0)
    assert row.liquidation_price is not None and row.liquidation_price > row.bankruptcy_price


def test_a_short_without_a_bankruptcy_price() -> None:
    """A 1x-collateralised inverse short never goes bankrupt at a positive price."""
    perp = inverse_perp("BTCUSD_PERP", binance_btc())
    market = Market({"BTCUSD_PERP": perp}, {"BTCUSD_PERP": 50_000.0}, "BTC")
    account = Account("s", {"BTC": 1.0}, [Position("BTCUSD_PERP", -500, 50_000.0)])
    assert evaluate(account, market).positions[0].bankruptcy_price is None
