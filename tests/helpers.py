"""Small builders shared by the core tests."""

from __future__ import annotations

import math

from crossmargin import Instrument, Kind, MarginSchedule


def linear_perp(symbol: str, schedule: MarginSchedule, quote: str = "USDT") -> Instrument:
    """A linear perpetual on ``symbol``'s first three letters, settled in ``quote``."""
    return Instrument(symbol, Kind.PERPETUAL, symbol[:3], quote, quote, schedule)


def inverse_perp(symbol: str, schedule: MarginSchedule, contract_size: float = 100.0) -> Instrument:
    """A coin-margined perpetual with contracts of ``contract_size`` USD."""
    coin = symbol[:3]
    return Instrument(
        symbol, Kind.PERPETUAL, coin, "USD", coin, schedule, contract_size, inverse=True
    )


BINANCE_BTC_FLOORS = [0, 50e3, 250e3, 1e6, 5e6, 20e6, 50e6, 100e6, 200e6, 300e6]
BINANCE_BTC_RATES = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
BINANCE_BTC_LEVERAGE = [125, 100, 50, 20, 10, 5, 4, 3, 2, 1]
BINANCE_ETH_FLOORS = [0, 10e3, 100e3, 500e3, 1e6, 2e6, 5e6, 10e6, 20e6]
BINANCE_ETH_RATES = [0.005, 0.0065, 0.01, 0.02, 0.05, 0.10, 0.125, 0.15, 0.25]
BINANCE_ETH_LEVERAGE = [100, 75, 50, 25, 10, 5, 4, 3, 2]


def binance_btc() -> MarginSchedule:
    """BTCUSDT brackets, ~2021 snapshot (venues.md 1.2)."""
    return MarginSchedule.brackets(BINANCE_BTC_FLOORS, BINANCE_BTC_RATES, BINANCE_BTC_LEVERAGE)


def binance_eth() -> MarginSchedule:
    """ETHUSDT brackets, same snapshot."""
    return MarginSchedule.brackets(BINANCE_ETH_FLOORS, BINANCE_ETH_RATES, BINANCE_ETH_LEVERAGE)


def rel_close(a: float, b: float, rel: float = 1e-9) -> bool:
    """Relative closeness with an absolute floor of ``rel`` for values near zero."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=rel)
