"""The message bus: prices in, alerts out, in process or over NATS JetStream.

Two streams of JSON messages:

- prices: ``{"prices": {symbol: mark}, "at": ISO time}`` on subject ``{prefix}.prices``;
- alerts: an alert's fields on ``{prefix}.alerts.{account}`` (the account id with every
  character outside ``[A-Za-z0-9_-]`` written ``_``; the payload keeps the real id).

A consumer has a name. Subscriptions under one name share its messages (each message goes to
one of them: a work queue); each name sees every message (fan-out). So several service
processes each subscribe to prices under their own name and all see one feed, while workers
that deliver alerts share one name and split the stream. A message is acknowledged once
handled; under NATS one left unacknowledged past ``ack_wait_s`` is delivered again, to any
subscriber of the name. Alerts are published with their id as the JetStream message id, so the
same alert published twice (by two processes evaluating one tick) is stored once within the
stream's duplicate window.

:class:`LocalBus` (the embedded default) keeps the same naming on asyncio queues, with no
redelivery and no persistence. :class:`NatsBus` creates its streams (file storage) and durable
pull consumers on first use; a consumer name is written as a subject token there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

__all__ = ["Bus", "BusSubscription", "LocalBus", "NatsBus", "Received", "subject_token"]

log = logging.getLogger("crossmargin.service")

EPHEMERAL_IDLE_S = 60.0
"""Seconds an ephemeral consumer (:meth:`Bus.alert_feed`) outlives its last fetch on the
server."""


def subject_token(account_id: str) -> str:
    """An account id as one NATS subject token (see the module docstring)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", account_id) or "_"


async def _no_ack() -> None:
    return None


@dataclass(frozen=True)
class Received:
    """A message: its JSON object, how many times it has been delivered (1 the first time)
    and the acknowledgement to await once it is handled."""

    data: dict[str, Any]
    deliveries: int = 1
    ack: Callable[[], Awaitable[None]] = _no_ack


class BusSubscription(ABC):
    """Messages for one consumer name; ``async for`` waits for each in turn."""

    @abstractmethod
    async def next(self, timeout: float) -> Received | None:
        """The next message, or ``None`` when none comes within ``timeout`` seconds."""

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving (the consumer name and its position stay, under NATS)."""

    def __aiter__(self) -> AsyncIterator[Received]:
        return self._forever()

    async def _forever(self) -> AsyncIterator[Received]:
        while True:
            message = await self.next(3600.0)
            if message is not None:
                yield message


class Bus(ABC):
    """Prices in and alerts out (see the module docstring)."""

    @abstractmethod
    async def publish_prices(self, prices: Mapping[str, float], at: str) -> None:
        """Publish one price update."""

    @abstractmethod
    async def publish_alert(self, alert: Mapping[str, Any]) -> bool:
        """Publish one alert (it has ``id`` and ``account_id``); False for a duplicate id."""

    @abstractmethod
    async def prices(self, consumer: str) -> BusSubscription:
        """Price updates published from now on, for consumer ``consumer``."""

    @abstractmethod
    async def alerts(self, consumer: str, account_id: str | None = None) -> BusSubscription:
        """Alerts (of one account, or all) for consumer ``consumer``."""

    @abstractmethod
    async def alert_feed(self) -> BusSubscription:
        """Every alert published from now on, for this subscription alone: no name, nothing
        kept for it once it is closed (or, under NATS, once its process is gone)."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection."""


class _LocalSubscription(BusSubscription):
    def __init__(
        self, queue: asyncio.Queue[dict[str, Any]], on_close: Callable[[], None] | None = None
    ) -> None:
        self._queue = queue
        self._on_close = on_close

    async def next(self, timeout: float) -> Received | None:
        try:
            return Received(await asyncio.wait_for(self._queue.get(), timeout))
        except TimeoutError:
            return None

    async def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


class LocalBus(Bus):
    """The in-process bus: one queue per (stream, consumer name, account filter); remembers
    the last ``dedup_window`` alert ids to drop duplicates."""

    def __init__(self, *, dedup_window: int = 100_000) -> None:
        self._queues: dict[tuple[str, str, str | None], asyncio.Queue[dict[str, Any]]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._window = dedup_window

    def _queue(self, key: tuple[str, str, str | None]) -> asyncio.Queue[dict[str, Any]]:
        return self._queues.setdefault(key, asyncio.Queue())

    async def publish_prices(self, prices: Mapping[str, float], at: str) -> None:
        message = {"prices": dict(prices), "at": at}
        for (stream, _, _), queue in self._queues.items():
            if stream == "prices":
                queue.put_nowait(message)

    async def publish_alert(self, alert: Mapping[str, Any]) -> bool:
        alert_id = str(alert["id"])
        if alert_id in self._seen:
            return False
        self._seen[alert_id] = None
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)
        for (stream, _, account), queue in self._queues.items():
            if stream == "alerts" and account in (None, alert.get("account_id")):
                queue.put_nowait(dict(alert))
        return True

    async def prices(self, consumer: str) -> BusSubscription:
        return _LocalSubscription(self._queue(("prices", consumer, None)))

    async def alerts(self, consumer: str, account_id: str | None = None) -> BusSubscription:
        return _LocalSubscription(self._queue(("alerts", consumer, account_id)))

    async def alert_feed(self) -> BusSubscription:
        key: tuple[str, str, str | None] = ("alerts", f"feed:{uuid.uuid4().hex}", None)

        def forget() -> None:
            self._queues.pop(key, None)

        return _LocalSubscription(self._queue(key), forget)

    async def close(self) -> None:
        self._queues.clear()


class _NatsSubscription(BusSubscription):
    def __init__(self, sub: JetStreamContext.PullSubscription) -> None:
        self._sub = sub

    async def next(self, timeout: float) -> Received | None:
        """The next message that is a JSON object; any other is logged, acknowledged (so it
        is not delivered again) and skipped."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            try:
                (msg,) = await self._sub.fetch(1, timeout=left)
            except NatsTimeout:
                return None
            try:
                data = json.loads(msg.data)
            except (ValueError, RecursionError):
                data = None
            if isinstance(data, dict):
                return Received(data, msg.metadata.num_delivered or 1, msg.ack)
            reason = "not a JSON object"
            log.warning("bus message dropped", extra={"subject": msg.subject, "reason": reason})
            await msg.ack()

    async def close(self) -> None:
        await self._sub.unsubscribe()


class NatsBus(Bus):
    """The bus over NATS JetStream at ``url``: streams ``{PREFIX}_PRICES`` and
    ``{PREFIX}_ALERTS`` (prefix upper-cased), subjects under ``prefix``. Prices are kept
    ``price_age_s`` seconds, alerts ``alert_age_s``; duplicate alert ids are dropped within
    ``dedup_window_s``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "crossmargin",
        ack_wait_s: float = 30.0,
        price_age_s: float = 3600.0,
        alert_age_s: float = 7 * 86400.0,
        dedup_window_s: float = 120.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.price_stream = f"{prefix.upper()}_PRICES"
        self.alert_stream = f"{prefix.upper()}_ALERTS"
        self._ack_wait = ack_wait_s
        self._ages = (price_age_s, alert_age_s)
        self._dedup = dedup_window_s
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

    async def _context(self) -> JetStreamContext:
        if self._js is None:
            self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3)
            js = self._nc.jetstream()
            prices = StreamConfig(
                name=self.price_stream,
                subjects=[f"{self.prefix}.prices"],
                storage=StorageType.FILE,
                max_age=self._ages[0],
            )
            alerts = StreamConfig(
                name=self.alert_stream,
                subjects=[f"{self.prefix}.alerts.>"],
                storage=StorageType.FILE,
                max_age=self._ages[1],
                duplicate_window=self._dedup,
            )
            for config in (prices, alerts):
                try:
                    await js.stream_info(config.name or "")
                except NotFoundError:
                    await js.add_stream(config)
            self._js = js
        return self._js

    async def publish_prices(self, prices: Mapping[str, float], at: str) -> None:
        js = await self._context()
        body = json.dumps({"prices": dict(prices), "at": at}).encode()
        await js.publish(f"{self.prefix}.prices", body, stream=self.price_stream)

    async def publish_alert(self, alert: Mapping[str, Any]) -> bool:
        js = await self._context()
        subject = f"{self.prefix}.alerts.{subject_token(str(alert['account_id']))}"
        ack = await js.publish(
            subject,
            json.dumps(dict(alert)).encode(),
            stream=self.alert_stream,
            headers={"Nats-Msg-Id": str(alert["id"])},
        )
        return not ack.duplicate

    async def _subscribe(
        self, subject: str, stream: str, consumer: str | None, policy: DeliverPolicy
    ) -> BusSubscription:
        """A pull subscription: durable under ``consumer``, else ephemeral (the server drops it
        a minute after its last fetch)."""
        js = await self._context()
        durable = None if consumer is None else subject_token(consumer)
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=policy,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            filter_subject=subject,
            inactive_threshold=None if durable is not None else EPHEMERAL_IDLE_S,
        )
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
        return _NatsSubscription(sub)

    async def prices(self, consumer: str) -> BusSubscription:
        return await self._subscribe(
            f"{self.prefix}.prices", self.price_stream, consumer, DeliverPolicy.NEW
        )

    async def alerts(self, consumer: str, account_id: str | None = None) -> BusSubscription:
        token = ">" if account_id is None else subject_token(account_id)
        return await self._subscribe(
            f"{self.prefix}.alerts.{token}", self.alert_stream, consumer, DeliverPolicy.ALL
        )

    async def alert_feed(self) -> BusSubscription:
        return await self._subscribe(
            f"{self.prefix}.alerts.>", self.alert_stream, None, DeliverPolicy.NEW
        )

    async def delete_streams(self) -> None:
        """Remove both streams and their consumers (tests, resets)."""
        js = await self._context()
        for name in (self.price_stream, self.alert_stream):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc = None
        self._js = None
