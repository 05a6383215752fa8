"""The demo: leveraged BTC accounts on the ledger and a looping replay of real BTC history.

``crossmargin serve --demo`` (and ``make run``) opens 24 accounts (``demo-01`` to ``demo-24``:
long and short, 2x to 100x, one in four isolated) at the first candle's open and replays the
bundled Binance BTC/USDT 2-hour candles of March 2020 (the 12 March crash, then the rebound),
by default eight hours of history a second (a candle every quarter second): margin ratios
move at once, the most leveraged accounts are liquidated within seconds and the crash takes
most of the rest. Each pass of the
history reopens the positions of the accounts that lost theirs, topping their wallets up.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC
from decimal import Decimal
from pathlib import Path

from fastapi import FastAPI

from crossmargin.lab.replay import Candle, load_candles
from crossmargin.ledger import Ledger
from crossmargin.model import CrossMarginError
from crossmargin.service.feeds import Feeds, Marks, replay_feed
from crossmargin.service.state import ServiceState

__all__ = ["DEMO_ACCOUNTS", "demo_source", "open_demo_positions", "start"]

DEMO_ACCOUNTS = 24
INSURANCE_FUND = Decimal(250_000)
"""Paid into the insurance fund on each pass, so that bankruptcies are covered and the crash
does not auto-deleverage the profitable shorts."""
_LEVERAGES = (2, 3, 5, 10, 20, 25, 50, 75, 100)
_BALANCES = (1_000, 2_500, 5_000, 10_000, 25_000)


def open_demo_positions(ledger: Ledger, symbol: str, price: Decimal, round_: int) -> list[str]:
    """Pay ``INSURANCE_FUND`` into the fund, then open a position for every demo account
    without one (deposit first, topping the wallet up to its starting balance) at the mark
    ``price``; an order the ledger refuses (above the bracket's leverage cap) is tried again
    at half the leverage. The accounts touched."""
    rng = random.Random(round_)
    ledger.deposit_insurance(f"demo:{round_}:insurance", INSURANCE_FUND)
    opened = []
    for i in range(1, DEMO_ACCOUNTS + 1):
        name = f"demo-{i:02d}"
        balance = Decimal(_BALANCES[i % len(_BALANCES)])
        leverage = _LEVERAGES[(i * 7 + round_) % len(_LEVERAGES)]
        side = 1 if (i + round_) % 3 else -1
        mode = "isolated" if i % 4 == 0 else "cross"
        if ledger.state.positions.get(name):
            continue
        held = ledger.state.balances.get(f"trader:{name}", Decimal(0))
        if held < balance:
            ledger.deposit(f"demo:{round_}:deposit:{name}", name, balance - held)
        factor = Decimal(str(round(0.7 + 0.25 * rng.random(), 4)))
        for attempt in range(4):
            qty = (balance * leverage * factor / price).quantize(Decimal("0.001"))
            with contextlib.suppress(CrossMarginError):
                ledger.trade(
                    f"demo:{round_}:trade:{attempt}:{name}",
                    name,
                    symbol,
                    side * qty,
                    margin_mode=mode,
                    leverage=leverage,
                )
                break
            leverage = max(leverage // 2, 2)
        opened.append(name)
    return opened


async def demo_source(
    state: ServiceState, candles: list[Candle], symbol: str, speed: float
) -> AsyncIterator[Marks]:
    """The demo's feed: each pass sets the first open as the mark, opens the demo positions,
    then replays the candles."""
    round_ = 0
    while True:
        first = candles[0]
        yield {symbol: first.open}, first.time.replace(tzinfo=UTC)

        def reopen(r: int = round_, price: Decimal = first.open) -> list[str]:
            names = open_demo_positions(state.ledger, symbol, price, r)
            state.refresh_views(names)
            return names

        await state.run(reopen)
        async for marks in replay_feed(candles, symbol, speed):
            yield marks
        round_ += 1


async def start(app: FastAPI) -> None:
    """Start-up hook: the demo replay with ``Settings.demo``, the replay of
    ``Settings.replay`` when it names a file."""
    state: ServiceState = app.state.service
    settings = state.settings
    feeds: Feeds = app.state.feeds
    symbol = state.ledger.ctx.rules.btc_symbol
    if settings.demo:
        candles = load_candles()
        params = {"file": "btc_usdt_2h_2020-03.csv", "speed": settings.speed, "loop": True}
        feeds.start("demo", params, demo_source(state, candles, symbol, settings.speed))
    if settings.replay is not None:
        given = load_candles(Path(settings.replay))
        params = {"file": settings.replay, "speed": settings.speed, "loop": False}
        feeds.start("replay", params, replay_feed(given, symbol, settings.speed))
