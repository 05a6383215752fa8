"""The service state: realised volatility, the alert record, tick listeners, the book channel,
ticks announced while the next is applied."""

from __future__ import annotations

import asyncio
import csv
import itertools
import math
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from crossmargin.service.alert_routes import AlertService
from crossmargin.service.bus import LocalBus
from crossmargin.service.settings import Settings
from crossmargin.service.state import ServiceState, Tick

BTC = "BTCUSDT"


@pytest.fixture
def state(tmp_path: Path) -> ServiceState:
    s = ServiceState(Settings(db_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    s.ledger.price("p0", BTC, Decimal(60_000))
    s.ledger.deposit("d0", "alice", Decimal(1000))
    s.ledger.trade("t0", "alice", BTC, Decimal("0.1"), leverage=Decimal(20))
    s.refresh_views(["alice"])
    return s


def _sample_std(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def test_volatility_from_the_bundled_daily_history(state: ServiceState) -> None:
    text = resources.files("crossmargin.data").joinpath("btc_usd_1d_2017-2025.csv").read_text()
    # The file repeats its header line once.
    rows = [row for row in csv.DictReader(text.splitlines()) if row["close"] != "close"]
    closes = [float(row["close"]) for row in rows][-365:]
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    assert state.volatility(BTC) == pytest.approx(_sample_std(returns) * math.sqrt(365))
    assert 0.2 < state.volatility(BTC) < 1.5


def test_volatility_from_recent_marks(state: ServiceState) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    prices = [60_000 * (1.01 if k % 2 else 0.99) ** (k % 3) for k in range(40)]

    async def feed() -> None:
        for k, p in enumerate(prices):
            await state.apply_prices({BTC: p}, start + timedelta(hours=k))

    asyncio.run(feed())
    marks = [round(p, 8) for p in prices]
    returns = [math.log(b / a) for a, b in itertools.pairwise(marks)]
    assert state.volatility(BTC) == pytest.approx(_sample_std(returns) * math.sqrt(365 * 24))


def test_volatility_reads_while_marks_are_appended(state: ServiceState) -> None:
    """Marks are appended on the thread that applies ticks while the loop reads the
    volatility; a read never sees the marks change under it."""
    from crossmargin.service.state import RECENT_MARKS

    recent = state._marks.setdefault(BTC, deque(maxlen=RECENT_MARKS))
    recent.extend((float(k), 60_000.0 + k % 7) for k in range(RECENT_MARKS))
    stop = threading.Event()

    def append() -> None:
        k = RECENT_MARKS
        while not stop.is_set():
            recent.append((float(k), 60_000.0 + k % 7))
            k += 1

    writer = threading.Thread(target=append)
    writer.start()
    try:
        for _ in range(2_000):
            assert state.volatility(BTC) > 0
    finally:
        stop.set()
        writer.join()


def test_tick_listeners_run_after_each_tick_even_if_one_fails(state: ServiceState) -> None:
    seen: list[Tick] = []

    async def failing(_: Tick) -> None:
        raise RuntimeError("listener bug")

    async def recording(tick: Tick) -> None:
        seen.append(tick)

    state.tick_listeners += [failing, recording]
    state.watchers.append(lambda: ["alice"])

    async def run() -> dict[str, object]:
        book = state.hub.subscribe("book")
        risk = state.hub.subscribe("risk:alice")
        await state.apply_prices({BTC: 59_000})
        summary = await asyncio.wait_for(book.__anext__(), 10)
        await state.apply_prices({BTC: 59_000})
        await asyncio.sleep(0.2)
        assert risk.pending() == 1
        assert book.pending() == 1
        return summary

    summary = asyncio.run(run())
    assert len(seen) == 2
    assert [v.account_id for v in seen[0].changed] == ["alice"]
    assert seen[1].changed == ()
    assert seen[0].prices == {BTC: 59_000.0}
    assert seen[0].received_ns > 0
    assert summary["changed"] == 1
    assert [v["account_id"] for v in summary["views"]] == ["alice"]
    assert summary["statuses"] == {"healthy": 1}


def test_alert_record_keeps_each_id_once(state: ServiceState) -> None:
    alert = {"id": "a-1", "account_id": "alice", "at": "2024-01-01T00:00:00+00:00", "x": 1}
    state.record_alerts([alert])
    state.record_alerts([alert, alert])
    state.record_alerts([{**alert, "id": "a-2", "at": "2024-01-01T00:01:00+00:00"}])
    kept = state.records.alerts("alice")
    assert [a["id"] for a in kept] == ["a-2", "a-1"]
    assert kept[1] == alert
    assert state.records.alerts("bob") == []


def test_the_record_tells_how_many_times_each_rule_fired(state: ServiceState) -> None:
    """The largest n of each rule's ids ``{rule}-{n}``, compared as numbers; ids of another
    shape count for nothing."""
    at = "2024-01-01T00:00:00+00:00"
    ids = ["r1-3", "r1-10", "r1-9", "r2-x", "a-b-2", "nodash", "-5"]
    state.record_alerts([{"id": i, "account_id": "alice", "at": at} for i in ids])
    assert state.records.fired() == {"r1": 10, "a-b": 2}


def test_views_survive_a_restart(tmp_path: Path, state: ServiceState) -> None:
    before = state.view("alice")
    state.close()
    again = ServiceState(Settings(db_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    assert again.view("alice").same_risk(before)
    with pytest.raises(KeyError):
        again.view("nobody")


def test_a_view_read_before_it_is_sent_still_reaches_its_subscriber(state: ServiceState) -> None:
    async def run() -> dict[str, object]:
        risk = state.hub.subscribe("risk:alice")
        await state.apply_prices({BTC: 58_000})
        assert state.view("alice").positions[0].mark == 58_000
        return await asyncio.wait_for(risk.__anext__(), 10)

    message = asyncio.run(run())
    assert message["positions"][0]["mark"] == 58_000  # type: ignore[index]


def test_a_slow_listener_does_not_hold_up_the_next_tick_nor_reorder_the_ticks(
    state: ServiceState,
) -> None:
    # The first tick's listener waits until the second tick has reached its own listener:
    # with the ticks announced one after the other this would never finish.
    started: list[float] = []
    second_seen = asyncio.Event()

    async def slow(tick: Tick) -> None:
        started.append(tick.prices[BTC])
        if len(started) == 2:
            second_seen.set()
        else:
            await asyncio.wait_for(second_seen.wait(), 10)

    state.tick_listeners.append(slow)

    async def run() -> list[float]:
        first = asyncio.ensure_future(state.apply_prices({BTC: 59_500}))
        await asyncio.sleep(0)
        while not started:
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(state.apply_prices({BTC: 59_400}))
        done = await asyncio.gather(first, second)
        return [tick.prices[BTC] for tick in done]

    assert asyncio.run(run()) == [59_500.0, 59_400.0]
    assert started == [59_500.0, 59_400.0]
    assert float(state.ledger.state.prices[BTC]) == 59_400.0


def test_alerts_go_out_at_once_and_are_recorded_in_tick_order(state: ServiceState) -> None:
    service = AlertService(state, LocalBus())
    kept: list[list[str]] = []
    release = asyncio.Event()

    async def slow_first(alerts: list[dict[str, object]]) -> None:
        if alerts[0]["id"] == "r-1":
            await release.wait()
        kept.append([str(a["id"]) for a in alerts])

    service._record_and_send = slow_first  # type: ignore[method-assign]

    def alert(n: int) -> dict[str, object]:
        return {"id": f"r-{n}", "account_id": "alice", "at": "2024-01-01T00:00:00+00:00"}

    async def run() -> list[str]:
        out = state.hub.subscribe("alerts")
        first = asyncio.ensure_future(service.deliver([alert(1)], 0))
        second = asyncio.ensure_future(service.deliver([alert(2)], 0))
        sent = [(await asyncio.wait_for(out.__anext__(), 5))["id"] for _ in range(2)]
        assert kept == []
        release.set()
        await asyncio.gather(first, second)
        return [str(s) for s in sent]

    assert asyncio.run(run()) == ["r-1", "r-2"]
    assert kept == [["r-1", "r-2"]]


def test_alerts_of_ticks_that_wait_are_recorded_together_in_order(state: ServiceState) -> None:
    """While one tick's alerts are being recorded, the alerts of the ticks after it wait and
    then go into the record in one transaction, in tick order; each tick's delivery returns
    once its own alerts are recorded."""
    service = AlertService(state, LocalBus())
    batches: list[list[str]] = []
    release = asyncio.Event()
    real = service._record_and_send

    async def counted(alerts: list[dict[str, object]]) -> None:
        batches.append([str(a["id"]) for a in alerts])
        if len(batches) == 1:
            await release.wait()
        await real(alerts)

    service._record_and_send = counted  # type: ignore[method-assign]

    def alert(n: int) -> dict[str, object]:
        at = f"2024-01-01T00:00:{n:02d}+00:00"
        return {"id": f"r-{n}", "account_id": "alice", "at": at}

    async def run() -> None:
        first = asyncio.ensure_future(service.deliver([alert(1)], 0))
        await asyncio.sleep(0.05)
        later = [asyncio.ensure_future(service.deliver([alert(n)], 0)) for n in (2, 3, 4)]
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in [first, *later])
        release.set()
        await asyncio.gather(first, *later)

    asyncio.run(run())
    assert batches == [["r-1"], ["r-2", "r-3", "r-4"]]
    assert [a["id"] for a in state.records.alerts("alice")] == ["r-4", "r-3", "r-2", "r-1"]


def test_a_chunk_of_views_stops_for_a_waiting_tick(tmp_path: Path) -> None:
    """Views between ticks are computed a slice at a time: with a tick waiting, a chunk stops
    after its first slice and leaves the rest unsent for the next round; with none it goes
    through the whole chunk."""
    from crossmargin.service.state import VIEW_SLICE, _Pending

    s = ServiceState(Settings(db_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    try:
        s.ledger.price("p0", BTC, Decimal(60_000))
        names = [f"t{k:02d}" for k in range(3 * VIEW_SLICE)]
        for name in names:
            s.ledger.deposit(f"d-{name}", name, Decimal(1000))
        s.refresh_views(names)
        rows = list(range(len(names)))
        s._unsent[:] = True
        waiting = asyncio.new_event_loop()
        try:
            at = "2026-01-01T00:00:00+00:00"
            tick = _Pending({BTC: Decimal(60_001)}, at, 0, waiting.create_future())
        finally:
            waiting.close()
        s._pending.append(tick)
        views, done = s._refresh_rows(rows)
        assert done == VIEW_SLICE and len(views) == VIEW_SLICE
        assert s._unsent[rows[VIEW_SLICE:]].all()
        s._pending.clear()
        views, done = s._refresh_rows(rows)
        assert done == len(rows) and len(views) == len(rows) - VIEW_SLICE
        assert not s._unsent[rows].any()
    finally:
        s.close()
