"""The in-process hub: fan-out, bounded queues that drop the oldest, publishing from threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from crossmargin.service.hub import Hub


def test_every_subscriber_gets_each_message_in_order() -> None:
    async def run() -> None:
        hub = Hub()
        a, b = hub.subscribe("risk:x"), hub.subscribe("risk:x")
        other = hub.subscribe("risk:y")
        for n in range(3):
            hub.publish("risk:x", {"n": n})
        assert [(await a.__anext__())["n"] for _ in range(3)] == [0, 1, 2]
        assert [(await b.__anext__())["n"] for _ in range(3)] == [0, 1, 2]
        assert other.pending() == 0
        assert hub.subscribers("risk:x") == 2

    asyncio.run(run())


def test_a_slow_subscriber_loses_its_oldest_messages() -> None:
    async def run() -> None:
        hub = Hub()
        sub = hub.subscribe("book", maxsize=2)
        for n in range(5):
            hub.publish("book", {"n": n})
        assert sub.dropped == 3
        assert [(await sub.__anext__())["n"] for _ in range(2)] == [3, 4]

    asyncio.run(run())


def test_close_ends_the_iteration_and_unsubscribes() -> None:
    async def run() -> list[int]:
        hub = Hub()
        sub = hub.subscribe("c")
        hub.publish("c", {"n": 1})
        sub.close()
        hub.publish("c", {"n": 2})
        assert hub.subscribers("c") == 0
        return [m["n"] async for m in sub]

    assert asyncio.run(run()) == [1]


def test_publishing_from_another_thread() -> None:
    async def run() -> list[int]:
        hub = Hub()
        sub = hub.subscribe("c")
        threads = [threading.Thread(target=hub.publish, args=("c", {"n": n})) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = [(await asyncio.wait_for(sub.__anext__(), 5))["n"] for _ in range(4)]
        return sorted(got)

    assert asyncio.run(run()) == [0, 1, 2, 3]


def test_messages_are_copies() -> None:
    async def run() -> None:
        hub = Hub()
        sub = hub.subscribe("c")
        message = {"n": 1}
        hub.publish("c", message)
        message["n"] = 2
        assert (await sub.__anext__())["n"] == 1

    asyncio.run(run())


def test_maxsize_must_be_positive() -> None:
    async def run() -> None:
        with pytest.raises(ValueError, match="maxsize"):
            Hub().subscribe("c", maxsize=0)

    asyncio.run(run())


def test_a_message_is_encoded_once_for_every_subscriber() -> None:
    async def run() -> None:
        hub = Hub()
        subs = [hub.subscribe("alerts") for _ in range(3)]
        hub.publish("alerts", {"id": "a1", "ratio": 0.5})
        texts = [await anext(sub.texts()) for sub in subs]
        assert texts == ['{"id":"a1","ratio":0.5}'] * 3
        assert len({id(t) for t in texts}) == 1

    asyncio.run(run())
