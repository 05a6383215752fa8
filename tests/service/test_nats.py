"""The bus: one price feed seen by every service process, one alert stream split between the
workers of one consumer, duplicate alert ids dropped, unacknowledged alerts delivered again.
The same checks run on the in-process bus and on the NATS JetStream server named by
CROSSMARGIN_TEST_NATS_URL."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from crossmargin.service import alert_routes
from crossmargin.service.app import create_app
from crossmargin.service.bus import Bus, BusSubscription, LocalBus, NatsBus, subject_token
from crossmargin.service.settings import Settings

from .conftest import TestClient

NATS_URL = os.environ.get("CROSSMARGIN_TEST_NATS_URL")
needs_nats = pytest.mark.skipif(
    NATS_URL is None, reason="CROSSMARGIN_TEST_NATS_URL is not set (a NATS JetStream server)"
)

Factory = Callable[[], Bus]


@pytest.fixture(params=["local", pytest.param("nats", marks=needs_nats)])
def buses(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Makes the bus as one more service process sees it: the same object in process, a new
    connection to the same streams (a unique prefix per test) under NATS."""
    if request.param == "local":
        local = LocalBus()
        yield lambda: local
        return
    assert NATS_URL is not None
    prefix = f"cmtest{uuid.uuid4().hex[:10]}"
    yield lambda: NatsBus(NATS_URL, prefix=prefix, ack_wait_s=1.0)
    cleanup = NatsBus(NATS_URL, prefix=prefix)

    async def drop() -> None:
        await cleanup.delete_streams()
        await cleanup.close()

    asyncio.run(drop())


async def _drain(sub: BusSubscription, timeout: float = 0.5) -> list[dict[str, object]]:
    out = []
    while (message := await sub.next(timeout)) is not None:
        out.append(message.data)
        await message.ack()
    return out


def _alert(n: int, account: str = "a1") -> dict[str, object]:
    return {"id": f"r-{n}", "account_id": account, "rule_id": "r", "value": 0.9 + n / 100}


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def test_every_process_sees_the_whole_price_feed(buses: Factory) -> None:
    async def main() -> None:
        feed, node_a, node_b = buses(), buses(), buses()
        sub_a = await node_a.prices("node-a")
        sub_b = await node_b.prices("node-b")
        for k in range(5):
            await feed.publish_prices({"BTCUSDT": 60000.0 + k}, f"2026-01-01T00:00:0{k}+00:00")
        got_a, got_b = await _drain(sub_a), await _drain(sub_b)
        expected = [
            {"prices": {"BTCUSDT": 60000.0 + k}, "at": f"2026-01-01T00:00:0{k}+00:00"}
            for k in range(5)
        ]
        assert got_a == expected
        assert got_b == expected
        for bus in {id(b): b for b in (feed, node_a, node_b)}.values():
            await bus.close()

    _run(main)


def test_workers_of_one_consumer_split_the_alert_stream(buses: Factory) -> None:
    async def main() -> None:
        service, one, two = buses(), buses(), buses()
        sub_one = await one.alerts("notifier")
        sub_two = await two.alerts("notifier")
        for n in range(10):
            assert await service.publish_alert(_alert(n, f"a{n % 3}"))
        got_one, got_two = await asyncio.gather(_drain(sub_one), _drain(sub_two))
        ids = [a["id"] for a in got_one + got_two]
        assert sorted(ids) == sorted(f"r-{n}" for n in range(10))
        assert got_one and got_two
        for bus in {id(b): b for b in (service, one, two)}.values():
            await bus.close()

    _run(main)


def test_a_duplicate_alert_id_is_stored_once(buses: Factory) -> None:
    async def main() -> None:
        first, second = buses(), buses()
        sub = await first.alerts("audit")
        assert await first.publish_alert(_alert(1))
        assert not await second.publish_alert(_alert(1))
        assert await second.publish_alert(_alert(2))
        assert [a["id"] for a in await _drain(sub)] == ["r-1", "r-2"]
        for bus in {id(b): b for b in (first, second)}.values():
            await bus.close()

    _run(main)


def test_alerts_of_one_account(buses: Factory) -> None:
    async def main() -> None:
        bus = buses()
        sub = await bus.alerts("watch-a.1", account_id="a.1")
        await bus.publish_alert(_alert(1, "a.1"))
        await bus.publish_alert(_alert(2, "b"))
        assert [a["id"] for a in await _drain(sub)] == ["r-1"]
        await bus.close()

    _run(main)


@needs_nats
def test_an_unacknowledged_alert_is_delivered_again() -> None:
    assert NATS_URL is not None
    prefix = f"cmtest{uuid.uuid4().hex[:10]}"

    async def main() -> None:
        crashed, survivor = (NatsBus(NATS_URL, prefix=prefix, ack_wait_s=1.0) for _ in range(2))
        sub_crashed = await crashed.alerts("notifier")
        await crashed.publish_alert(_alert(7))
        first = await sub_crashed.next(2.0)
        assert first is not None and first.deliveries == 1
        await crashed.close()  # handled nothing, acknowledged nothing
        sub_survivor = await survivor.alerts("notifier")
        again = await sub_survivor.next(5.0)
        assert again is not None
        assert (again.data["id"], again.deliveries) == ("r-7", 2)
        await again.ack()
        assert await sub_survivor.next(1.5) is None
        await survivor.delete_streams()
        await survivor.close()

    asyncio.run(main())


def test_subject_tokens() -> None:
    assert subject_token("alice@binance.com") == "alice_binance_com"
    assert subject_token("a*>b c") == "a__b_c"
    assert subject_token("") == "_"


def _two_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port: int
) -> tuple[list[FastAPI], str]:
    """Two service apps on ledgers of their own, sharing the broker under a fresh prefix."""
    assert NATS_URL is not None
    prefix = f"cmtest{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(alert_routes, "NATS_PREFIX", prefix)
    apps = [
        create_app(
            Settings(db_url=f"sqlite:///{tmp_path / f'{n}.db'}", nats_url=NATS_URL, port=port + n)
        )
        for n in range(2)
    ]
    return apps, prefix


@needs_nats
def test_two_service_processes_share_the_feed_and_the_alert_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two services (two ledgers) each apply every price published on the broker; an alert
    one of them raises reaches a consumer of the alert stream with the alert's id."""
    apps, prefix = _two_services(tmp_path, monkeypatch, 8100)
    outside = NatsBus(NATS_URL, prefix=prefix)
    with TestClient(apps[0]) as one, TestClient(apps[1]):
        op = {"X-API-Key": apps[0].state.keys.create("operator")}
        assert one.post("/prices", json={"prices": {"BTCUSDT": 60_000}}, headers=op).is_success
        one.post("/accounts/alice/deposits", json={"amount": 1000}, headers=op)
        one.post(
            "/accounts/alice/fills",
            json={"symbol": "BTCUSDT", "qty": 0.1, "leverage": 20},
            headers=op,
        )
        rule = one.post(
            "/accounts/alice/alerts", headers=op, json={"kind": "margin_ratio", "threshold": 0.04}
        ).json()

        async def feed_and_listen() -> dict[str, object]:
            sub = await outside.alerts("notifier")
            await outside.publish_prices({"BTCUSDT": 55_000.0}, "2026-01-01T00:00:00+00:00")
            got = await sub.next(20.0)
            assert got is not None
            await got.ack()
            await outside.close()
            return got.data

        alert = asyncio.run(feed_and_listen())
        assert alert["id"] == f"{rule['id']}-1"
        assert alert["account_id"] == "alice"
        for app in apps:
            ledger = app.state.service.ledger
            deadline = time.monotonic() + 20.0
            while ledger.state.prices.get("BTCUSDT") != 55_000:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        history = one.get("/alerts", headers=op).json()
        assert [a["id"] for a in history] == [alert["id"]]

    async def drop() -> None:
        cleanup = NatsBus(NATS_URL, prefix=prefix)
        await cleanup.delete_streams()
        await cleanup.close()

    asyncio.run(drop())


def test_an_alert_feed_sees_only_what_is_published_after_it_opens(buses: Factory) -> None:
    async def main() -> None:
        bus = buses()
        await bus.publish_alert(_alert(1))
        feed = await bus.alert_feed()
        await bus.publish_alert(_alert(2, "a2"))
        assert [a["id"] for a in await _drain(feed)] == ["r-2"]
        await feed.close()
        await bus.close()

    _run(main)


def _receive(ws: Any, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The next ``count`` JSON messages of a test WebSocket (what came, if the time ran out)."""
    got: list[dict[str, Any]] = []

    def read() -> None:
        for _ in range(count):
            got.append(ws.receive_json())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return got


@needs_nats
def test_each_process_shows_every_processs_alerts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule added on one service process (the other does not know it) fires there; a
    WebSocket client of either process gets the alert, once each, and the next one after it."""
    apps, prefix = _two_services(tmp_path, monkeypatch, 8200)
    keys = [app.state.keys.create("operator") for app in apps]
    outside = NatsBus(NATS_URL, prefix=prefix)
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        op = {"X-API-Key": keys[0]}
        assert one.post("/prices", json={"prices": {"BTCUSDT": 60_000}}, headers=op).is_success
        one.post("/accounts/alice/deposits", json={"amount": 1000}, headers=op)
        fill = {"symbol": "BTCUSDT", "qty": 0.1, "leverage": 20}
        one.post("/accounts/alice/fills", json=fill, headers=op)
        rule = {"kind": "margin_ratio", "threshold": 0.04}
        rule_id = one.post("/accounts/alice/alerts", headers=op, json=rule).json()["id"]
        with (
            one.websocket_connect(f"/ws/alerts?key={keys[0]}") as here,
            two.websocket_connect(f"/ws/alerts?key={keys[1]}") as there,
        ):

            async def feed() -> None:
                for k, price in enumerate((55_000.0, 60_000.0, 55_000.0)):
                    await outside.publish_prices({"BTCUSDT": price}, f"2026-01-01T00:00:0{k}Z")
                await outside.close()

            asyncio.run(feed())
            seen_here, seen_there = _receive(here, 2), _receive(there, 2)
    want = [f"{rule_id}-1", f"{rule_id}-2"]
    assert [a["id"] for a in seen_here] == want
    assert [a["id"] for a in seen_there] == want
    assert all(a["account_id"] == "alice" for a in seen_there)

    async def drop() -> None:
        cleanup = NatsBus(NATS_URL, prefix=prefix)
        await cleanup.delete_streams()
        await cleanup.close()

    asyncio.run(drop())


@needs_nats
def test_a_message_that_is_not_a_json_object_is_dropped_not_fatal() -> None:
    """Garbage on the broker's subjects (not JSON, a JSON list, JSON nested past the parser's
    depth) is acknowledged and skipped:
    the next real alert and price update still come through."""
    assert NATS_URL is not None
    prefix = f"cmtest{uuid.uuid4().hex[:10]}"
    bus = NatsBus(NATS_URL, prefix=prefix)

    async def main() -> None:
        feed = await bus.alert_feed()
        prices = await bus.prices("p")
        js = await bus._context()
        nested = b"[" * 100_000 + b"]" * 100_000
        for body in (b"\xff not json", b"[1, 2]", b"", nested):
            await js.publish(f"{prefix}.alerts.a1", body, stream=bus.alert_stream)
            await js.publish(f"{prefix}.prices", body, stream=bus.price_stream)
        await bus.publish_alert(_alert(7))
        await bus.publish_prices({"BTCUSDT": 1.0}, "2026-01-01T00:00:00+00:00")
        assert [a["id"] for a in await _drain(feed)] == ["r-7"]
        assert [m["prices"] for m in await _drain(prices)] == [{"BTCUSDT": 1.0}]
        await bus.delete_streams()
        await bus.close()

    _run(main)
