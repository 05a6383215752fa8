"""Price feeds into the service: a replay of a candle file, a synthetic random walk and a live
feed of exchange tickers through ccxt.

Each feed runs as a task on the event loop and hands its marks to
:meth:`ServiceState.apply_prices` one tick at a time, so a feed's ticks go through the same
path as ``POST /prices``. :class:`Feeds` keeps the running ones by id (``/feeds`` routes).

- replay: each candle becomes three marks (the extreme met first, the other extreme, the
  close; a down candle visits its high first), stamped with the candle's time; ``speed`` is
  seconds of history per second of wall time;
- synthetic: a geometric Brownian motion (:func:`crossmargin.maths.gbm.gbm_step`) from the
  current marks, ``volatility`` annualised, one step every ``interval`` seconds standing for
  ``step`` seconds of market time;
- ccxt: ``fetch_ticker`` of each unified symbol every ``interval`` seconds; the mark is the
  ticker's ``markPrice`` where the exchange gives one, else ``last``, else ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from crossmargin.lab.replay import Candle, load_candles
from crossmargin.maths.gbm import gbm_step
from crossmargin.model import CrossMarginError
from crossmargin.service.state import ServiceState

__all__ = [
    "CcxtSource",
    "FeedInfo",
    "Feeds",
    "TickerSource",
    "candle_marks",
    "ccxt_feed",
    "replay_feed",
    "synthetic_feed",
    "ticker_mark",
]

log = logging.getLogger("crossmargin.service")

Marks = tuple[dict[str, float | Decimal], datetime]
"""One tick of a feed: marks by ledger symbol and their time."""
Source = AsyncIterator[Marks]
SECONDS_PER_YEAR = 365.0 * 24 * 3600


def candle_marks(bar: Candle) -> tuple[Decimal, Decimal, Decimal]:
    """The three marks a candle becomes: the extreme met first, the other one, the close (a
    down candle is taken to visit its high first)."""
    first, second = (bar.high, bar.low) if bar.close < bar.open else (bar.low, bar.high)
    return first, second, bar.close


def replay_feed(
    candles: Sequence[Candle],
    symbol: str,
    speed: float,
    loop: bool = False,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Source:
    """Marks of ``symbol`` from ``candles`` at ``speed`` seconds of history per wall second;
    ``loop`` starts again after the last candle."""
    if not (math.isfinite(speed) and speed > 0):
        raise CrossMarginError("speed", f"must be > 0, got {speed}")
    if not candles:
        raise CrossMarginError("prices", "no candles")
    return _replay(candles, symbol, speed, loop, sleep)


async def _replay(
    candles: Sequence[Candle],
    symbol: str,
    speed: float,
    loop: bool,
    sleep: Callable[[float], Awaitable[None]],
) -> Source:
    while True:
        for n, bar in enumerate(candles):
            length = (candles[n + 1].time - bar.time) if n + 1 < len(candles) else None
            span = length.total_seconds() if length is not None else 0.0
            for k, px in enumerate(candle_marks(bar)):
                at = (bar.time + timedelta(seconds=span * k / 3)).replace(tzinfo=UTC)
                yield {symbol: px}, at
                await sleep(max(span, 1.0) / 3 / speed)
        if not loop:
            return


def synthetic_feed(
    start: Mapping[str, float],
    volatility: float,
    interval: float,
    step: float,
    seed: int = 0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Source:
    """A random walk of every symbol of ``start`` (independent GBM draws), without end."""
    if not start:
        raise CrossMarginError("symbols", "need at least one symbol with a mark")
    if not (math.isfinite(volatility) and 0 < volatility <= 10):
        raise CrossMarginError("volatility", f"must be in (0, 10], got {volatility}")
    if not (math.isfinite(step) and step > 0):
        raise CrossMarginError("step", f"must be > 0, got {step}")
    return _synthetic(start, volatility, interval, step, seed, sleep)


async def _synthetic(
    start: Mapping[str, float],
    volatility: float,
    interval: float,
    step: float,
    seed: int,
    sleep: Callable[[float], Awaitable[None]],
) -> Source:
    rng = random.Random(seed)
    prices = dict(start)
    now = datetime.now(UTC)
    dt = step / SECONDS_PER_YEAR
    while True:
        prices = {s: gbm_step(p, volatility, dt, rng.gauss(0.0, 1.0)) for s, p in prices.items()}
        now += timedelta(seconds=step)
        yield {s: round(p, 8) for s, p in prices.items()}, now
        await sleep(interval)


class TickerSource(Protocol):
    """What the ccxt feed needs of an exchange: ``fetch_ticker`` (async, ccxt's unified
    ticker structure)."""

    async def fetch_ticker(self, symbol: str) -> Mapping[str, Any]: ...


def ticker_mark(ticker: Mapping[str, Any]) -> tuple[float, datetime]:
    """The mark of a ccxt ticker and its time (``timestamp`` in ms, else now)."""
    found = [
        float(v)
        for v in (ticker.get(name) for name in ("markPrice", "last", "close"))
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    ]
    if not found:
        raise CrossMarginError("ticker", f"no mark, last or close price in {ticker.get('symbol')}")
    stamp = ticker.get("timestamp")
    at = (
        datetime.fromtimestamp(stamp / 1000, UTC)
        if isinstance(stamp, int | float) and not isinstance(stamp, bool)
        else datetime.now(UTC)
    )
    return found[0], at


async def ccxt_feed(
    exchange: TickerSource,
    symbols: Mapping[str, str],
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Source:
    """Marks of the ledger symbols from ``symbols`` (ledger symbol to ccxt unified symbol,
    ``BTCUSDT``: ``BTC/USDT:USDT``), polled every ``interval`` seconds. A failed fetch is
    logged and skipped."""
    while True:
        marks: dict[str, float | Decimal] = {}
        latest: datetime | None = None
        for ours, theirs in symbols.items():
            try:
                price, at = ticker_mark(await exchange.fetch_ticker(theirs))
            except Exception as error:
                log.warning("ticker fetch failed", extra={"symbol": theirs, "error": str(error)})
                continue
            marks[ours] = price
            latest = at if latest is None or at > latest else latest
        if marks and latest is not None:
            yield marks, latest
        await sleep(interval)


class CcxtSource:
    """An exchange of ``ccxt.async_support`` by its id (``binance``, ``okx``...), public
    endpoints only (the optional live feed; it needs the network)."""

    def __init__(self, exchange_id: str) -> None:
        try:
            import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]
        except ImportError:
            reason = "the live feed needs ccxt: pip install ccxt"
            raise CrossMarginError("exchange", reason) from None
        kind = getattr(ccxt_async, exchange_id, None) if exchange_id.isidentifier() else None
        if kind is None:
            raise CrossMarginError("exchange", f"unknown ccxt exchange {exchange_id!r}")
        self.exchange = kind({"enableRateLimit": True})

    async def fetch_ticker(self, symbol: str) -> Mapping[str, Any]:
        ticker: Mapping[str, Any] = await self.exchange.fetch_ticker(symbol)
        return ticker

    async def close(self) -> None:
        """Close the exchange's HTTP session."""
        await self.exchange.close()


@dataclass
class FeedInfo:
    """A running (or finished) feed: its id, kind, parameters and ticks applied so far."""

    id: str
    kind: str
    params: dict[str, Any]
    ticks: int = 0
    running: bool = True
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False, compare=False)

    def to_data(self) -> dict[str, Any]:
        """The feed as JSON-ready data."""
        return {
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "ticks": self.ticks,
            "running": self.running,
            "error": self.error,
        }


class Feeds:
    """The feeds running into ``state``, by id."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.running: dict[str, FeedInfo] = {}

    def start(
        self,
        kind: str,
        params: dict[str, Any],
        source: Source,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> FeedInfo:
        """Run ``source`` into the state as a task; its :class:`FeedInfo`."""
        info = FeedInfo(f"{kind}-{uuid.uuid4().hex[:8]}", kind, params)

        async def run() -> None:
            try:
                async for marks, at in source:
                    try:
                        await self.state.apply_prices(marks, at)
                    except CrossMarginError as error:
                        extra = {"feed": info.id, "error": str(error)}
                        log.warning("feed tick refused", extra=extra)
                        continue
                    info.ticks += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                info.error = str(error)
                log.exception("feed failed", extra={"feed": info.id})
            finally:
                info.running = False
                if on_close is not None:
                    with contextlib.suppress(Exception):
                        await on_close()

        info.task = asyncio.create_task(run(), name=info.id)
        self.running[info.id] = info
        return info

    async def stop(self, feed_id: str) -> FeedInfo:
        """Stop feed ``feed_id`` (``KeyError`` if there is none)."""
        info = self.running.pop(feed_id)
        if info.task is not None:
            info.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await info.task
        info.running = False
        return info

    async def stop_all(self) -> None:
        """Stop every feed."""
        for feed_id in list(self.running):
            await self.stop(feed_id)


def replay_source(path: Path | None, symbol: str, speed: float, loop: bool) -> Source:
    """A replay of the candle file at ``path`` (default: the bundled BTC/USDT 2-hour candles
    of March 2020)."""
    return replay_feed(load_candles(path), symbol, speed, loop)
