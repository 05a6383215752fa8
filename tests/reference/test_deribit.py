"""Deribit standard margin for linear USDC perpetuals: rates grow with position size."""

from __future__ import annotations

import pytest
from tests.helpers import linear_perp

from crossmargin import Account, MarginSchedule, Market, Position, evaluate


def _market() -> Market:
    btc = MarginSchedule.size_scaled(0.02, 0.01, 0.00005, 0.00005)
    sol = MarginSchedule.size_scaled(0.04, 0.02, 0.000005, 0.000005)
    instruments = {
        "BTC_USDC-PERPETUAL": linear_perp("BTC_USDC-PERPETUAL", btc, quote="USDC"),
        "SOL_USDC-PERPETUAL": linear_perp("SOL_USDC-PERPETUAL", sol, quote="USDC"),
    }
    prices = {"BTC_USDC-PERPETUAL": 100_000.0, "SOL_USDC-PERPETUAL": 200.0}
    return Market(instruments, prices, "USDC")


@pytest.mark.parametrize(
    ("symbol", "size", "im", "mm"),
    [
        ("BTC_USDC-PERPETUAL", 25.0, 53_125.0, 28_125.0),
        ("BTC_USDC-PERPETUAL", 350.0, 1_312_500.0, 962_500.0),
        ("SOL_USDC-PERPETUAL", 25.0, 200.625, 100.625),
        ("SOL_USDC-PERPETUAL", 6_000.0, 84_000.0, 60_000.0),
    ],
)
def test_size_scaled_vector_d1(symbol: str, size: float, im: float, mm: float) -> None:
    """IM = 2% + 0.005% per BTC, MM = 1% + 0.005% per BTC; SOL 4%/2% + 0.0005% per SOL.

    Source: support.deribit.com article 25944738177565 (venues.md 5.2): 25 BTC @ 100,000 ->
    IM 2.125% = 53,125, MM 1.125% = 28,125; 350 BTC -> IM 3.75% = 1,312,500 (MM 2.75%);
    25 SOL @ 200 -> IM 200.625, MM 100.625; 6,000 SOL -> IM 7% = 84,000 (MM 5%).
    """
    health = evaluate(
        Account("d1", {"USDC": 10_000_000.0}, [Position(symbol, size, 1.0)]), _market()
    )
    row = health.positions[0]
    assert row.initial_margin == pytest.approx(im, rel=1e-12)
    assert row.maintenance_margin == pytest.approx(mm, rel=1e-12)
