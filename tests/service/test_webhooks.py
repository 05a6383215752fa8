"""Webhook delivery against a real HTTP receiver on loopback that fails its first requests: the
signature verifies, failures are retried with the same delivery id, and a final failure is
counted."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from crossmargin.model import CrossMarginError
from crossmargin.service.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivery,
    RetryPolicy,
    Webhook,
    WebhookSender,
    parse_webhook,
    sign,
    verify,
)

SECRET = "s3cret-s3cret-s3cret"
ALERT = {
    "id": "r1-1",
    "account_id": "a1",
    "rule_id": "r1",
    "kind": "margin_ratio",
    "value": 0.9,
    "threshold": 0.8,
    "at": "2026-01-01T00:00:00+00:00",
    "received_ns": 1,
}


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: answers ``fail_first`` requests with ``fail_status``, then
    200; keeps every request's headers and body and the delivery ids it accepted."""

    fail_first: int = 0
    fail_status: int = 503
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    duplicates: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines if ":" in x)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        if len(self.requests) <= self.fail_first:
            status = self.fail_status
        elif not verify(
            SECRET,
            headers[TIMESTAMP_HEADER.lower()],
            body,
            headers[SIGNATURE_HEADER.lower()],
            now=time.time(),
        ):
            status = 401
        else:
            status = 200
            delivery = headers[DELIVERY_HEADER.lower()]
            self.duplicates += delivery in self.accepted
            self.accepted.add(delivery)
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()
        await server.wait_closed()


FAST = RetryPolicy(attempts=4, base_s=0.001, factor=2.0, max_delay_s=0.004, timeout_s=5.0)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    """Independent computation with hashlib/hmac as a receiver would write it."""
    body = b'{"id":"x"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"
    assert verify(SECRET, "1700000000", body, f"sha256={expected}", now=1700000100)
    assert not verify(SECRET, "1700000000", body + b" ", f"sha256={expected}", now=1700000100)
    assert not verify(SECRET, "1700000000", body, f"sha256={expected}", now=1700001000)
    assert not verify("other-secret-0000", "1700000000", body, f"sha256={expected}", now=1700000000)
    assert not verify(SECRET, "yesterday", body, f"sha256={expected}", now=1700000000)


def test_backoff_is_exponential_and_bounded() -> None:
    policy = RetryPolicy(base_s=0.5, factor=2.0, max_delay_s=3.0)
    assert [policy.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def _deliver(
    receiver: Receiver,
    alerts: list[dict[str, object]],
    policy: RetryPolicy = FAST,
) -> tuple[list[Delivery], list[Delivery], list[float]]:
    failures: list[Delivery] = []
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> list[Delivery]:
        async with serving(receiver) as url, httpx.AsyncClient() as client:
            sender = WebhookSender(client, policy=policy, on_failure=failures.append, sleep=sleep)
            hook = Webhook("w1", url, SECRET)
            return [await sender.deliver(hook, alert) for alert in alerts]

    return asyncio.run(main()), failures, waits


def test_retries_until_accepted_with_one_delivery_id() -> None:
    receiver = Receiver(fail_first=2)
    (delivery,), failures, waits = _deliver(receiver, [ALERT])
    assert delivery == Delivery("w1", "r1-1", True, 3, 200)
    assert failures == []
    assert waits == [0.001, 0.002]
    ids = {h[DELIVERY_HEADER.lower()] for h, _ in receiver.requests}
    assert ids == {"r1-1"}
    assert {h["idempotency-key"] for h, _ in receiver.requests} == {"r1-1"}
    headers, body = receiver.requests[-1]
    assert json.loads(body) == ALERT
    assert headers["content-type"] == "application/json"


def test_receiver_drops_a_redelivered_alert_by_its_id() -> None:
    receiver = Receiver()
    deliveries, _, _ = _deliver(receiver, [ALERT, ALERT, {**ALERT, "id": "r1-2"}])
    assert all(d.delivered for d in deliveries)
    assert receiver.accepted == {"r1-1", "r1-2"}
    assert receiver.duplicates == 1


def test_gives_up_after_the_bounded_tries_and_counts_the_failure() -> None:
    receiver = Receiver(fail_first=100)
    (delivery,), failures, waits = _deliver(receiver, [ALERT])
    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 4, 503)
    assert failures == [delivery]
    assert waits == [0.001, 0.002, 0.004]
    assert len(receiver.requests) == 4


def test_a_client_error_is_final() -> None:
    receiver = Receiver(fail_first=100, fail_status=410)
    (delivery,), failures, _ = _deliver(receiver, [ALERT])
    assert (delivery.attempts, delivery.status, delivery.error) == (1, 410, "HTTP 410")
    assert failures == [delivery]


def test_too_many_requests_is_retried() -> None:
    receiver = Receiver(fail_first=1, fail_status=429)
    (delivery,), _, _ = _deliver(receiver, [ALERT])
    assert (delivery.delivered, delivery.attempts) == (True, 2)


def test_an_unreachable_receiver_is_a_counted_failure() -> None:
    failures: list[Delivery] = []

    async def sleep(seconds: float) -> None:
        return None

    async def main() -> Delivery:
        async with serving(Receiver()) as url:
            pass  # the port is now closed
        async with httpx.AsyncClient() as client:
            sender = WebhookSender(client, policy=FAST, on_failure=failures.append, sleep=sleep)
            return await sender.deliver(Webhook("w1", url, SECRET), ALERT)

    delivery = asyncio.run(main())
    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 4, None)
    assert delivery.error == "ConnectError"
    assert failures == [delivery]


def test_parse_webhook() -> None:
    hook = parse_webhook({"url": "https://example.org/h", "secret": SECRET}, "w1")
    assert hook == Webhook("w1", "https://example.org/h", SECRET)
    assert "secret" not in hook.as_dict()
    assert hook.wants(ALERT)
    assert not Webhook("w2", "http://x", SECRET, "a2").wants(ALERT)


@pytest.mark.parametrize(
    ("data", "field_path"),
    [
        ({"url": "ftp://x/y", "secret": SECRET}, "url"),
        ({"url": "http://", "secret": SECRET}, "url"),
        ({"url": "http://[::1/h", "secret": SECRET}, "url"),
        ({"url": 5, "secret": SECRET}, "url"),
        ({"url": "http://x/y", "secret": "short"}, "secret"),
        ({"url": "http://x/y", "secret": SECRET, "account_id": 3}, "account_id"),
        ({"url": "http://x/y", "secret": SECRET, "extra": 1}, "extra"),
        ("http://x", "webhook"),
    ],
)
def test_bad_webhooks_name_the_field(data: object, field_path: str) -> None:
    with pytest.raises(CrossMarginError) as caught:
        parse_webhook(data, "w")
    assert caught.value.path == field_path
