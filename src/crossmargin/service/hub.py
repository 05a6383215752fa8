"""In-process publish/subscribe on the event loop: the service's embedded message queue.

Channels are plain names: ``risk:{account_id}`` (an account's :class:`AccountView` after each
change), ``book`` (the book summary after each tick), ``alerts`` and ``alerts:{account_id}``.
:meth:`Hub.publish` never blocks and may be called from any thread: a message reaches each
subscriber's bounded queue on the subscriber's own loop; a subscriber that falls behind by
``maxsize`` messages loses its oldest ones (counted in :attr:`Subscription.dropped`) rather
than slowing the publisher. A message is JSON-encoded once, when its first subscriber needs the
text (:meth:`Subscription.texts`), however many subscribers it has.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

__all__ = ["Hub", "Message", "Subscription", "encode"]


def encode(data: Mapping[str, Any]) -> str:
    """``data`` as compact JSON text (msgspec): what every channel sends."""
    return msgspec.json.encode(data).decode()


class Message:
    """One published message: its ``data`` (shared by every subscriber: read it, never change
    it) and its compact JSON ``text``, encoded on first use."""

    __slots__ = ("_text", "data")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._text: str | None = None

    @property
    def text(self) -> str:
        """The data as compact JSON (msgspec), encoded once."""
        if self._text is None:
            self._text = encode(self.data)
        return self._text


class Subscription(AsyncIterator[dict[str, Any]]):
    """One subscriber's queue on one channel: ``async for message in sub``; ``sub.close()``."""

    def __init__(self, hub: Hub, channel: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.channel = channel
        self.dropped = 0
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize)
        self._closed = False

    def _put(self, message: Message | None) -> None:
        """Enqueue on the subscriber's loop, dropping the oldest message when full."""
        if self._closed and message is not None:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(message)

    def _deliver(self, message: Message | None) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._put(message)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._put, message)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return (await self.next()).data

    async def next(self) -> Message:
        """The next message (``StopAsyncIteration`` once closed)."""
        message = await self._queue.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def texts(self) -> AsyncIterator[str]:
        """Each message as JSON text, until the subscription is closed."""
        while True:
            try:
                message = await self.next()
            except StopAsyncIteration:
                return
            yield message.text

    def pending(self) -> int:
        """Messages waiting in the queue."""
        return self._queue.qsize()

    def close(self) -> None:
        """Stop receiving; an ``async for`` over the subscription ends."""
        if not self._closed:
            self._closed = True
            self._hub._remove(self)
            self._deliver(None)


class Hub:
    """Channels of subscribers; :meth:`publish` copies a message to each of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, list[Subscription]] = {}

    def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        """Send ``message`` (JSON-ready data) to every subscriber of ``channel``; never blocks."""
        with self._lock:
            subscribers = list(self._channels.get(channel, ()))
        payload = Message(dict(message))
        for sub in subscribers:
            sub._deliver(payload)

    def subscribe(self, channel: str, *, maxsize: int = 1024) -> Subscription:
        """A new subscription to ``channel`` (call on the loop that will read it)."""
        sub = Subscription(self, channel, maxsize)
        with self._lock:
            self._channels.setdefault(channel, []).append(sub)
        return sub

    def subscribers(self, channel: str) -> int:
        """How many subscribers ``channel`` has."""
        with self._lock:
            return len(self._channels.get(channel, ()))

    def channels(self, prefix: str = "") -> list[str]:
        """The channels starting with ``prefix`` that have subscribers."""
        with self._lock:
            return [c for c in self._channels if c.startswith(prefix)]

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._channels.get(sub.channel, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._channels.pop(sub.channel, None)
