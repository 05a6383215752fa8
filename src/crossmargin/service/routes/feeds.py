"""Feeds: start a replay of bundled candles, a synthetic walk or a live ccxt feed; list and
stop them (operator only)."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from crossmargin.lab.replay import load_candles
from crossmargin.model import CrossMarginError
from crossmargin.service.errors import ApiError
from crossmargin.service.feeds import CcxtSource, Feeds, ccxt_feed, replay_feed, synthetic_feed
from crossmargin.service.security import Principal, require_operator

__all__ = ["BUNDLED", "router", "stop"]

router = APIRouter(tags=["feeds"])
Operator = Annotated[Principal, Depends(require_operator)]

BUNDLED = ("btc_usdt_2h_2020-03.csv", "btc_usd_1d_2025-10.csv")
"""Candle files of ``crossmargin.data`` a replay may name (BTC, replayed on the venue's BTC
perpetual)."""


class Replay(BaseModel):
    """Replay bundled BTC candles on the ledger's BTC perpetual."""

    model_config = ConfigDict(extra="forbid")
    file: StrictStr = Field(BUNDLED[0], description=f"One of {list(BUNDLED)}.")
    speed: float = Field(28_800.0, gt=0, le=1e9, description="History seconds per wall second.")
    loop: bool = False
    start: datetime | None = None
    end: datetime | None = None


class Synthetic(BaseModel):
    """A GBM walk from the current marks."""

    model_config = ConfigDict(extra="forbid")
    symbols: list[StrictStr] | None = Field(
        None, min_length=1, max_length=50, description="Default: all marked."
    )
    volatility: float | None = Field(None, gt=0, le=10, description="Annualised; default realised.")
    interval: float = Field(0.5, ge=0.01, le=3600, description="Wall seconds between ticks.")
    step: float = Field(3600.0, gt=0, le=86_400 * 30, description="Market seconds per tick.")
    seed: int = Field(0, ge=0, le=2**31)


class Live(BaseModel):
    """Tickers of a ccxt exchange (network needed)."""

    model_config = ConfigDict(extra="forbid")
    exchange: StrictStr = Field("binanceusdm", max_length=40)
    symbols: dict[StrictStr, StrictStr] = Field(
        default_factory=lambda: {"BTCUSDT": "BTC/USDT:USDT"},
        max_length=50,
        description="Ledger symbol to ccxt unified symbol.",
    )
    interval: float = Field(2.0, ge=0.2, le=3600)


def _feeds(request: Request) -> Feeds:
    feeds: Feeds = request.app.state.feeds
    return feeds


@router.get("/feeds", summary="Feeds")
def list_feeds(request: Request, _: Operator) -> list[dict[str, Any]]:
    """The running feeds and how many ticks each applied."""
    return [f.to_data() for f in _feeds(request).running.values()]


@router.post("/feeds/replay", summary="Replay candles", status_code=201)
async def start_replay(body: Replay, request: Request, _: Operator) -> dict[str, Any]:
    """Replay a bundled candle file at ``speed`` (each candle: three marks)."""
    if body.file not in BUNDLED:
        raise ApiError(422, "file", f"must be one of {list(BUNDLED)}")
    feeds = _feeds(request)
    ledger = feeds.state.ledger
    symbol = ledger.ctx.rules.btc_symbol
    if symbol not in ledger.ctx.instruments:
        raise CrossMarginError("symbol", f"the ledger has no {symbol}")
    with resources.as_file(resources.files("crossmargin.data") / body.file) as path:
        candles = load_candles(path, body.start, body.end)
    source = replay_feed(candles, symbol, body.speed, body.loop)
    params = {"file": body.file, "speed": body.speed, "loop": body.loop, "candles": len(candles)}
    return feeds.start("replay", params, source).to_data()


@router.post("/feeds/synthetic", summary="Synthetic walk", status_code=201)
async def start_synthetic(body: Synthetic, request: Request, _: Operator) -> dict[str, Any]:
    """A GBM walk of the chosen marks (volatility: given, else each symbol's realised one)."""
    feeds = _feeds(request)
    state = feeds.state
    marks = {s: float(p) for s, p in state.ledger.state.prices.items()}
    chosen = body.symbols if body.symbols is not None else sorted(marks)
    if not chosen:
        raise ApiError(422, "symbols", "no instrument has a mark yet")
    for i, symbol in enumerate(chosen):
        if symbol not in marks:
            raise ApiError(422, f"symbols[{i}]", f"{symbol!r} has no mark yet")
    vol = body.volatility if body.volatility is not None else state.volatility(chosen[0])
    source = synthetic_feed({s: marks[s] for s in chosen}, vol, body.interval, body.step, body.seed)
    params = {"symbols": chosen, "volatility": vol, "interval": body.interval, "step": body.step}
    return feeds.start("synthetic", params, source).to_data()


@router.post("/feeds/ccxt", summary="Live ccxt tickers", status_code=201)
async def start_live(body: Live, request: Request, _: Operator) -> dict[str, Any]:
    """Poll a ccxt exchange's public tickers (an optional extra: it needs the network)."""
    feeds = _feeds(request)
    for symbol in body.symbols:
        if symbol not in feeds.state.ledger.ctx.instruments:
            raise ApiError(422, f"symbols.{symbol}", "unknown instrument")
    source = CcxtSource(body.exchange)
    params = {"exchange": body.exchange, "symbols": body.symbols, "interval": body.interval}
    stream = ccxt_feed(source, body.symbols, body.interval)
    return feeds.start("ccxt", params, stream, source.close).to_data()


@router.delete("/feeds/{feed_id}", summary="Stop a feed")
async def stop_feed(feed_id: str, request: Request, _: Operator) -> dict[str, Any]:
    """Stop the feed ``feed_id``."""
    try:
        info = await _feeds(request).stop(feed_id)
    except KeyError:
        raise ApiError(404, "feed_id", f"no feed {feed_id!r}") from None
    return info.to_data()


async def stop(app: FastAPI) -> None:
    """Stop every feed (on shutdown)."""
    feeds: Feeds = app.state.feeds
    await feeds.stop_all()
