"""Alert delivery to webhooks: signed, retried with bounded exponential back-off, deduplicable.

Each POST carries the alert as compact JSON (sorted keys) and three headers:

- ``X-Crossmargin-Timestamp``: Unix seconds when the attempt was signed;
- ``X-Crossmargin-Signature``: ``sha256=`` and the hex HMAC-SHA256, under the webhook's secret,
  of ``{timestamp}.`` followed by the body bytes;
- ``X-Crossmargin-Delivery`` (also ``Idempotency-Key``): the alert id, the same on every retry
  and from every service process, so a receiver drops what it has already seen.

A receiver checks the signature with :func:`verify` (constant-time comparison, and a timestamp
within a tolerance so an old request cannot be replayed). Connection errors, timeouts, 429 and
5xx answers are retried; any other 4xx is final. A delivery given up is reported to
``on_failure`` (the service's webhook-failure counter).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from crossmargin.model import CrossMarginError

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Delivery",
    "RetryPolicy",
    "Webhook",
    "WebhookSender",
    "alert_body",
    "parse_webhook",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Crossmargin-Signature"
TIMESTAMP_HEADER = "X-Crossmargin-Timestamp"
DELIVERY_HEADER = "X-Crossmargin-Delivery"


@dataclass(frozen=True)
class Webhook:
    """A receiver: its URL, the shared secret that signs deliveries and the account it follows
    (``None``: every account)."""

    id: str
    url: str
    secret: str
    account_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, the secret left out."""
        return {"id": self.id, "url": self.url, "account_id": self.account_id}

    def wants(self, alert: Mapping[str, Any]) -> bool:
        """True when the alert's account is the one followed (or every account is)."""
        return self.account_id is None or alert.get("account_id") == self.account_id


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` tries; the wait after try ``n`` (0-based) is
    ``min(base_s * factor**n, max_delay_s)`` seconds; ``timeout_s`` bounds each try."""

    attempts: int = 5
    base_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    timeout_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the failed try ``attempt`` (0-based)."""
        return float(min(self.base_s * self.factor**attempt, self.max_delay_s))


@dataclass(frozen=True)
class Delivery:
    """What became of one alert at one webhook: delivered or not, after how many tries, and
    the last HTTP status (``None`` when no answer came) or error."""

    webhook_id: str
    alert_id: str
    delivered: bool
    attempts: int
    status: int | None
    error: str = ""


def alert_body(alert: Mapping[str, Any]) -> bytes:
    """The bytes sent and signed: compact JSON, sorted keys."""
    return json.dumps(alert, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``{timestamp}.{body}`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300.0,
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` and that time is within
    ``tolerance_s`` seconds of ``now`` (Unix seconds)."""
    try:
        when = int(timestamp)
    except ValueError:
        return False
    if abs(now - when) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, when, body), signature)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class WebhookSender:
    """Sends alerts over one ``httpx.AsyncClient``. ``clock`` gives Unix seconds for the
    signature timestamp; ``sleep`` waits between tries (both injectable for tests)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy | None = None,
        on_failure: Callable[[Delivery], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._policy = policy or RetryPolicy()
        self._on_failure = on_failure
        self._clock = clock
        self._sleep = sleep

    async def _attempt(self, hook: Webhook, alert_id: str, body: bytes) -> httpx.Response:
        stamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(hook.secret, stamp, body),
            DELIVERY_HEADER: alert_id,
            "Idempotency-Key": alert_id,
        }
        return await self._client.post(
            hook.url, content=body, headers=headers, timeout=self._policy.timeout_s
        )

    async def deliver(self, hook: Webhook, alert: Mapping[str, Any]) -> Delivery:
        """POST ``alert`` to ``hook`` until it is accepted (2xx), refused for good (4xx other
        than 429) or the tries run out; never raises for a receiver's failure."""
        alert_id = str(alert["id"])
        body = alert_body(alert)
        status: int | None = None
        error = ""
        attempts = 0
        for attempt in range(self._policy.attempts):
            attempts = attempt + 1
            try:
                response = await self._attempt(hook, alert_id, body)
            except httpx.HTTPError as failure:
                status, error = None, type(failure).__name__
            else:
                status, error = response.status_code, ""
                if response.is_success:
                    return Delivery(hook.id, alert_id, True, attempts, status)
                if not _retryable(status):
                    break
            if attempts < self._policy.attempts:
                await self._sleep(self._policy.delay(attempt))
        failed = Delivery(hook.id, alert_id, False, attempts, status, error or f"HTTP {status}")
        if self._on_failure is not None:
            self._on_failure(failed)
        return failed


def parse_webhook(data: Any, webhook_id: str) -> Webhook:
    """A webhook from its JSON fields (``url``: http or https, ``secret``: at least 16
    characters, optional ``account_id``); errors name the field."""
    if not isinstance(data, Mapping):
        raise CrossMarginError("webhook", f"must be an object, got {type(data).__name__}")
    for key in data:
        if key not in {"url", "secret", "account_id"}:
            raise CrossMarginError(str(key), "unknown field")
    url = data.get("url")
    if not isinstance(url, str):
        raise CrossMarginError("url", f"must be an http(s) URL, got {url!r}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as error:
        raise CrossMarginError("url", f"not a URL: {error}") from None
    if parts.scheme not in {"http", "https"}:
        raise CrossMarginError("url", f"must be an http(s) URL, got {url!r}")
    if not host:
        raise CrossMarginError("url", "has no host")
    secret = data.get("secret")
    if not isinstance(secret, str) or len(secret) < 16:
        raise CrossMarginError("secret", "must be a string of at least 16 characters")
    account = data.get("account_id")
    if account is not None and (not isinstance(account, str) or not account):
        raise CrossMarginError("account_id", "must be a non-empty string")
    return Webhook(webhook_id, url, secret, account)
