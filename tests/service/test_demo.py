"""The demo: real March 2020 BTC history liquidates demo accounts within the first minute."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from crossmargin.lab.replay import load_candles
from crossmargin.ledger.journal import EventKind
from crossmargin.service.demo import DEMO_ACCOUNTS, demo_source
from crossmargin.service.settings import Settings
from crossmargin.service.state import ServiceState


def test_one_pass_of_the_demo(tmp_path: Path) -> None:
    state = ServiceState(Settings(db_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    candles = load_candles()
    symbol = state.ledger.ctx.rules.btc_symbol
    speed = Settings().speed

    async def run() -> list[datetime]:
        times = []
        source = demo_source(state, candles, symbol, speed=1e12)
        async for marks, at in source:
            await state.apply_prices(marks, at)
            times.append(at)
            if len(times) == 1 + 3 * len(candles):
                break
        return times

    times = asyncio.run(run())
    assert len(state.views()) == DEMO_ACCOUNTS
    events = list(state.ledger.store.events())
    marks = [e for e in events if e.kind == EventKind.PRICE]
    fills = [i for i, e in enumerate(events) if e.kind == EventKind.LIQUIDATION_FILL]
    liquidated = {events[i].body["account"] for i in fills}
    assert len(liquidated) >= DEMO_ACCOUNTS // 2
    # Wall time to the first liquidation at the demo's speed: the history elapsed before it.
    prices_before = sum(1 for e in events[: fills[0]] if e.kind == EventKind.PRICE)
    first = times[prices_before - 2]
    assert (first - times[0]).total_seconds() / speed < 60
    assert len(marks) >= len(times)
