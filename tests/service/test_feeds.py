"""Feeds: candle replay order and pacing, the GBM walk, and the ccxt feed on recorded tickers."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt  # type: ignore[import-untyped]
import pytest

from crossmargin.lab.replay import Candle, load_candles
from crossmargin.maths.gbm import gbm_step
from crossmargin.model import CrossMarginError
from crossmargin.service.feeds import (
    CcxtSource,
    candle_marks,
    ccxt_feed,
    replay_feed,
    synthetic_feed,
    ticker_mark,
)

# Binance USD-M API documentation response examples (GET /fapi/v1/ticker/24hr and
# GET /fapi/v1/premiumIndex), turned into ccxt's unified ticker structure by ccxt's own
# binanceusdm.parse_ticker, offline: what ``fetch_ticker`` hands the feed.
TICKER_24HR = {
    "symbol": "BTCUSDT",
    "priceChange": "-94.99999800",
    "priceChangePercent": "-95.960",
    "weightedAvgPrice": "0.29628482",
    "lastPrice": "4.00000200",
    "lastQty": "200.00000000",
    "openPrice": "99.00000000",
    "highPrice": "100.00000000",
    "lowPrice": "0.10000000",
    "volume": "8913.30000000",
    "quoteVolume": "15.30000000",
    "openTime": 1499783499040,
    "closeTime": 1499869899040,
    "firstId": 28385,
    "lastId": 28460,
    "count": 76,
}
PREMIUM_INDEX = {
    "symbol": "BTCUSDT",
    "markPrice": "11793.63104562",
    "indexPrice": "11781.80495970",
    "estimatedSettlePrice": "11781.16138815",
    "lastFundingRate": "0.00038246",
    "interestRate": "0.00010000",
    "nextFundingTime": 1597392000000,
    "time": 1597370495002,
}
_BINANCE = ccxt.binanceusdm()
LAST_TICKER: dict[str, Any] = _BINANCE.parse_ticker(TICKER_24HR)
MARK_TICKER: dict[str, Any] = _BINANCE.parse_ticker(PREMIUM_INDEX)


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


def test_candle_marks_visit_the_nearer_extreme_first() -> None:
    t = datetime(2020, 3, 12)
    down = Candle(t, Decimal(100), Decimal(101), Decimal(80), Decimal(85))
    up = Candle(t, Decimal(100), Decimal(120), Decimal(99), Decimal(115))
    assert candle_marks(down) == (Decimal(101), Decimal(80), Decimal(85))
    assert candle_marks(up) == (Decimal(99), Decimal(120), Decimal(115))


def test_replay_paces_history_at_the_speed() -> None:
    candles = load_candles()[:3]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def run() -> list[tuple[dict[str, Any], datetime]]:
        return [m async for m in replay_feed(candles, "BTCUSDT", speed=7200.0, sleep=sleep)]

    ticks = asyncio.run(run())
    assert len(ticks) == 9
    assert [t[0]["BTCUSDT"] for t in ticks[:3]] == list(candle_marks(candles[0]))
    # A 2-hour candle at 7,200 s of history per second: one second a candle, a third a mark.
    assert waits[:6] == pytest.approx([1 / 3] * 6)
    assert ticks[0][1] == candles[0].time.replace(tzinfo=UTC)
    assert (ticks[1][1] - ticks[0][1]).total_seconds() == pytest.approx(2400)


def test_replay_loops() -> None:
    candles = load_candles()[:2]

    async def run() -> int:
        n = 0
        async for _ in replay_feed(candles, "BTCUSDT", 1e6, loop=True, sleep=_no_wait):
            n += 1
            if n == 20:
                break
        return n

    assert asyncio.run(run()) == 20


def test_replay_refuses_bad_speed() -> None:
    with pytest.raises(CrossMarginError, match="speed"):
        replay_feed(load_candles()[:2], "BTCUSDT", 0)


def test_synthetic_walk_is_gbm_with_the_seeded_draws() -> None:
    async def run() -> list[dict[str, Any]]:
        feed = synthetic_feed({"BTCUSDT": 50_000.0}, 0.8, 0.0, 3600.0, seed=3, sleep=_no_wait)
        out = []
        async for marks, _ in feed:
            out.append(marks)
            if len(out) == 5:
                break
        return out

    got = [m["BTCUSDT"] for m in asyncio.run(run())]
    rng = random.Random(3)
    price, dt = 50_000.0, 3600.0 / (365 * 24 * 3600)
    for value in got:
        z = rng.gauss(0.0, 1.0)
        price = price * math.exp(-0.5 * 0.8**2 * dt + 0.8 * math.sqrt(dt) * z)
        assert value == pytest.approx(round(price, 8))


def test_gbm_step_without_noise_is_the_ito_drift() -> None:
    # z = 0: S exp((mu - sigma^2/2) dt); mu = sigma^2/2 leaves the price where it is.
    assert gbm_step(100.0, 0.5, 1.0, 0.0, mu=0.125) == pytest.approx(100.0)
    assert gbm_step(100.0, 0.5, 1.0, 0.0) == pytest.approx(100 * math.exp(-0.125))


def test_synthetic_refuses_bad_volatility() -> None:
    with pytest.raises(CrossMarginError, match="volatility"):
        synthetic_feed({"BTCUSDT": 1.0}, 0.0, 1.0, 1.0)


def test_ticker_mark_prefers_the_mark_price() -> None:
    assert LAST_TICKER["markPrice"] is None and LAST_TICKER["last"] == 4.000002
    assert ticker_mark(LAST_TICKER) == (4.000002, datetime(2017, 7, 12, 14, 31, 39, 40000, UTC))
    assert ticker_mark(MARK_TICKER) == (11793.63104562, datetime(2020, 8, 14, 2, 1, 35, 2000, UTC))
    with pytest.raises(CrossMarginError, match="ticker"):
        ticker_mark({"symbol": "X", "last": None, "close": float("nan")})


class Recorded:
    """An exchange answering ``fetch_ticker`` from recorded tickers (one failure first)."""

    def __init__(self, tickers: Mapping[str, list[dict[str, Any]]]) -> None:
        self.tickers = {k: list(v) for k, v in tickers.items()}
        self.calls: list[str] = []

    async def fetch_ticker(self, symbol: str) -> Mapping[str, Any]:
        self.calls.append(symbol)
        queue = self.tickers[symbol]
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def test_ccxt_feed_maps_symbols_and_skips_failures() -> None:
    exchange = Recorded(
        {
            "BTC/USDT:USDT": [LAST_TICKER, MARK_TICKER],
            "ETH/USDT:USDT": [
                TimeoutError("request timed out"),  # type: ignore[list-item]
                {**LAST_TICKER, "symbol": "ETH/USDT:USDT", "last": 3700.5},
            ],
        }
    )
    symbols = {"BTCUSDT": "BTC/USDT:USDT", "ETHUSDT": "ETH/USDT:USDT"}

    async def run() -> list[dict[str, Any]]:
        out = []
        async for marks, _ in ccxt_feed(exchange, symbols, 0.0, sleep=_no_wait):
            out.append(marks)
            if len(out) == 2:
                break
        return out

    first, second = asyncio.run(run())
    assert first == {"BTCUSDT": 4.000002}
    assert second == {"BTCUSDT": 11793.63104562, "ETHUSDT": 3700.5}


def test_ccxt_source_knows_its_exchanges() -> None:
    with pytest.raises(CrossMarginError, match="unknown ccxt exchange"):
        CcxtSource("no_such_exchange")
    with pytest.raises(CrossMarginError, match="unknown ccxt exchange"):
        CcxtSource("../binance")
