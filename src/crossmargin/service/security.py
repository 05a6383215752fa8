"""API keys, who may see what, and per-key rate limits.

A key is ``cm_`` followed by 43 URL-safe characters (256 random bits), shown once when it is
made; the database keeps only its SHA-256 digest and its first 11 characters (the prefix,
which logs and listings show). A presented key is hashed and its digest compared in constant
time. An operator key sees the whole book; an account key only its own account (403
elsewhere); no key, an unknown or a revoked key is 401. Each key (or, for requests without a
key in demo mode, each client address) draws from a token bucket: ``rate_per_second`` on
average, bursts of ``rate_burst``, 429 with ``Retry-After`` beyond.

Routes use the dependencies ``Depends(require_operator)`` and ``Depends(require_account)``
(the latter reads the path parameter ``account_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request, WebSocket
from fastapi.security import APIKeyHeader

from crossmargin.ledger import limits
from crossmargin.model import CrossMarginError
from crossmargin.service.errors import ApiError
from crossmargin.service.records import KeyRow, Records

__all__ = [
    "OPERATOR",
    "KeyRing",
    "Principal",
    "RateLimiter",
    "api_key_header",
    "hash_key",
    "principal",
    "require_account",
    "require_operator",
    "websocket_principal",
]

OPERATOR = "operator"
ACCOUNT = "account"
PREFIX_LENGTH = 11
MAX_BUCKETS = 100_000
"""Rate-limit buckets kept before they are all refilled (bounds the memory of many clients)."""

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is asking: an ``operator`` or the holder of ``account_id``'s key; ``prefix`` names
    the key in logs (never the key itself)."""

    role: str
    account_id: str | None
    prefix: str

    @property
    def is_operator(self) -> bool:
        """Whether this principal sees the whole book."""
        return self.role == OPERATOR

    def may_see(self, account_id: str) -> bool:
        """Whether this principal may read or act on ``account_id``."""
        return self.is_operator or self.account_id == account_id


ANONYMOUS_OPERATOR = Principal(OPERATOR, None, "demo")


class KeyRing:
    """Makes, checks and revokes keys stored in :class:`Records` (lookups cached)."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self._cache: dict[str, Principal | None] = {}
        self._lock = threading.Lock()

    def create(self, role: str, account_id: str | None = None, label: str = "") -> str:
        """A new key (returned once, never stored) for ``role``: ``operator``, or ``account``
        with its ``account_id``."""
        if role not in (OPERATOR, ACCOUNT):
            raise CrossMarginError("role", f"must be 'operator' or 'account', got {role!r}")
        if role == ACCOUNT:
            account_id = limits.account_id("account_id", account_id)
        elif account_id is not None:
            raise CrossMarginError("account_id", "an operator key belongs to no account")
        if not isinstance(label, str) or len(label) > 200 or not label.isprintable():
            raise CrossMarginError("label", "must be at most 200 printable characters")
        key = "cm_" + secrets.token_urlsafe(32)
        self.records.add_key(
            KeyRow(
                hash_key(key),
                key[:PREFIX_LENGTH],
                role,
                account_id,
                label,
                datetime.now(UTC).isoformat(timespec="seconds"),
                False,
            )
        )
        return key

    def cached(self, key: str) -> bool:
        """Whether ``key``'s principal (or its absence) is known without a database read."""
        digest = hash_key(key)
        with self._lock:
            return digest in self._cache

    def check(self, key: str) -> Principal | None:
        """The principal of ``key``, or ``None`` if it is unknown or revoked."""
        digest = hash_key(key)
        with self._lock:
            if digest in self._cache:
                return self._cache[digest]
        row = self.records.key(digest)
        found = None
        if row is not None and hmac.compare_digest(row.digest, digest) and not row.revoked:
            found = Principal(row.role, row.account_id, row.prefix)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = found
        return found

    def revoke(self, prefix: str) -> int:
        """Revoke the keys starting with ``prefix``; how many."""
        done = self.records.revoke(prefix)
        with self._lock:
            self._cache.clear()
        return done


class RateLimiter:
    """Token buckets by name: ``rate`` tokens a second, at most ``burst`` held."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, name: str, now: float | None = None) -> float:
        """Take a token for ``name``: 0 if granted, else the seconds until one is due."""
        t = time.monotonic() if now is None else now
        with self._lock:
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.clear()
            tokens, last = self._buckets.get(name, (self.burst, t))
            tokens = min(self.burst, tokens + (t - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, t)
                return 0.0
            self._buckets[name] = (tokens, t)
            return (1.0 - tokens) / self.rate


def _resolve(
    keys: KeyRing, limiter: RateLimiter, key: str | None, demo: bool, client: str
) -> Principal:
    if key is None or key == "":
        if not demo:
            raise ApiError(401, "X-API-Key", "missing API key")
        found, bucket = ANONYMOUS_OPERATOR, f"client:{client}"
    else:
        if len(key) > 200:
            raise ApiError(401, "X-API-Key", "unknown API key")
        checked = keys.check(key)
        if checked is None:
            raise ApiError(401, "X-API-Key", "unknown API key")
        found, bucket = checked, f"key:{checked.prefix}:{hash_key(key)[:16]}"
    wait = limiter.take(bucket)
    if wait > 0:
        raise ApiError(
            429, "X-API-Key", "rate limit exceeded", {"Retry-After": str(math.ceil(wait))}
        )
    return found


async def principal(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> Principal:
    """The caller, from the ``X-API-Key`` header (401 without a valid one; 429 over its rate).
    A key not seen before is looked up on a worker thread; a known one on the event loop."""
    app = request.app
    keys: KeyRing = app.state.keys
    if key and len(key) <= 200 and not keys.cached(key):
        await anyio.to_thread.run_sync(keys.check, key)
    client = request.client.host if request.client is not None else "?"
    found = _resolve(
        app.state.keys, app.state.limiter, key, app.state.service.settings.demo, client
    )
    request.state.principal = found
    return found


def websocket_principal(websocket: WebSocket) -> Principal:
    """The caller of a WebSocket: the ``X-API-Key`` header or, as browsers cannot set one, the
    ``key`` query parameter."""
    app = websocket.app
    key = websocket.headers.get("x-api-key") or websocket.query_params.get("key")
    client = websocket.client.host if websocket.client is not None else "?"
    return _resolve(app.state.keys, app.state.limiter, key, app.state.service.settings.demo, client)


async def require_operator(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Only an operator key (403 for an account key)."""
    if not who.is_operator:
        raise ApiError(403, "X-API-Key", "needs an operator key")
    return who


async def require_account(
    account_id: str, who: Annotated[Principal, Depends(principal)]
) -> Principal:
    """The operator, or the key of the path's ``account_id`` (403 for another account's)."""
    if not who.may_see(account_id):
        raise ApiError(403, "X-API-Key", "this key may not see that account")
    return who
