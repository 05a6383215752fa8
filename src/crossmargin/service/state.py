"""The service's state: the durable ledger, the hub, the metrics and each account's view.

Every change goes through the ledger (:class:`crossmargin.ledger.Ledger`, which re-margins its
:class:`~crossmargin.book.RiskBook` screen and liquidates on each mark). The service keeps the
last :class:`AccountView` of every account; after a change it computes the views of the
accounts it may have touched with the engine (:func:`crossmargin.health.evaluate_many`), and
publishes on the hub those that differ: ``risk:{account_id}`` for each, ``book`` for the tick.
Ledger work runs on a worker thread under one lock (the ledger is not thread-safe); views are
plain frozen values read from any thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any, TypeVar

import anyio.to_thread

from crossmargin.health import AccountHealth, evaluate_many
from crossmargin.io.results import to_data
from crossmargin.ledger import Ledger, Price, Receipt, limits
from crossmargin.ledger.journal import EventKind, trader
from crossmargin.ledger.liquidation import model_market, traders
from crossmargin.maths.first_passage import realised_volatility
from crossmargin.model import Account, CrossMarginError, Market
from crossmargin.service.errors import ApiError
from crossmargin.service.hub import Hub
from crossmargin.service.metrics import Metrics
from crossmargin.service.records import Records
from crossmargin.service.settings import Settings

__all__ = ["AccountView", "PositionView", "ServiceState", "Tick", "TickListener"]

log = logging.getLogger("crossmargin.service")

_T = TypeVar("_T")

RECENT_MARKS = 500
"""Marks kept per symbol for the realised volatility."""
MIN_RECENT = 30
"""Marks (with distinct times) needed before the recent ones replace the bundled history."""


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class PositionView:
    """One position as the service shows it (prices in the instrument's quote). ``distance`` is
    ``|mark - liquidation_price| / mark``, ``None`` without a liquidation price."""

    symbol: str
    qty: float
    mark: float
    entry: float
    liquidation_price: float | None
    bankruptcy_price: float | None
    distance: float | None
    margin_mode: str = "cross"


@dataclass(frozen=True)
class AccountView:
    """An account's risk at a glance (amounts in the ledger currency). ``margin_ratio`` is
    maintenance margin over equity (``None`` where equity is not positive under a requirement);
    ``crash_distance`` the smallest uniform price move, as a fraction, that makes it
    liquidatable; ``at`` when this view was computed (ISO UTC)."""

    account_id: str
    venue: str
    status: str
    equity: float
    initial_margin: float
    maintenance_margin: float
    margin_ratio: float | None
    crash_distance: float | None
    positions: tuple[PositionView, ...]
    at: str

    def same_risk(self, other: AccountView | None) -> bool:
        """Whether ``other`` shows the same figures (whenever it was computed)."""
        return other is not None and dataclasses.replace(other, at=self.at) == self

    def to_data(self) -> dict[str, Any]:
        """The view as JSON-ready data."""
        data: dict[str, Any] = to_data(self)
        return data


@dataclass(frozen=True)
class Tick:
    """Prices applied at once: ``received_ns`` (``time.perf_counter_ns()`` at arrival), the
    marks, their time ``at`` (ISO UTC: a candle's time for a replay) and the views that
    changed."""

    received_ns: int
    prices: Mapping[str, float]
    at: str
    changed: tuple[AccountView, ...]


TickListener = Callable[[Tick], Awaitable[None]]


def _severity(view: AccountView) -> tuple[int, float, str]:
    order = {"bankrupt": 3, "liquidatable": 2, "margin_call": 1, "healthy": 0}
    ratio = view.margin_ratio if view.margin_ratio is not None else math.inf
    if not view.positions:
        ratio = -1.0
    return (-order.get(view.status, 0), -ratio, view.account_id)


def view_of(health: AccountHealth, venue: str, at: str) -> AccountView:
    """The :class:`AccountView` of an engine health result."""
    positions = []
    for p in health.positions:
        liq = _finite(p.liquidation_price)
        mark = p.mark_price
        distance = abs(mark - liq) / mark if liq is not None and mark > 0 else None
        positions.append(
            PositionView(
                p.symbol,
                p.qty,
                mark,
                p.entry_price,
                liq,
                _finite(p.bankruptcy_price),
                distance,
                p.margin_mode,
            )
        )
    ratio = _finite(health.margin_ratio) if health.positions else 0.0
    return AccountView(
        health.id,
        venue,
        health.status.label,
        health.equity,
        health.initial_margin,
        health.maintenance_margin,
        ratio,
        _finite(health.crash_distance),
        tuple(positions),
        at,
    )


class ServiceState:
    """The ledger, hub, metrics and views of one service process (``app.state.service``).

    ``tick_listeners`` are awaited, in order, after every applied tick (alert evaluation hooks
    in here); one that raises is logged and the rest still run.
    """

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger | None = None,
        *,
        hub: Hub | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        if ledger is None:
            ledger = Ledger(settings.db_url, venue=settings.venue)
        self.ledger = ledger
        self.hub = hub if hub is not None else Hub()
        self.metrics = metrics if metrics is not None else Metrics()
        self.records = Records(self.ledger.store)
        self.tick_listeners: list[TickListener] = []
        self.lock = threading.RLock()
        self._views: dict[str, AccountView] = {}
        self._marks: dict[str, deque[tuple[float, float]]] = {}
        self._bundled_vol: dict[str, float] = {}
        self.refresh_views(sorted(traders(self.ledger.state)))

    def close(self) -> None:
        """Release the ledger's database connections."""
        self.ledger.close()

    # -- reading --------------------------------------------------------------------

    @property
    def venue(self) -> str:
        """The ledger venue's liquidation rulebook name."""
        return self.ledger.ctx.rules.name

    def view(self, account_id: str) -> AccountView:
        """The current view of ``account_id``; ``KeyError`` if the ledger has no such account."""
        found = self._views.get(account_id)
        if found is None:
            if not self.known(account_id):
                raise KeyError(account_id)
            self.refresh_views([account_id])
            found = self._views[account_id]
        return found

    def views(self) -> list[AccountView]:
        """Every account's view, riskiest first (status, then margin ratio)."""
        return sorted(self._views.values(), key=_severity)

    def require(self, account_id: str) -> None:
        """A 404 naming ``account_id`` unless the ledger has it."""
        if not self.known(account_id):
            raise ApiError(404, "account_id", f"unknown account {account_id!r}")

    def known(self, account_id: str) -> bool:
        """Whether the ledger has ``account_id``."""
        state = self.ledger.state
        return (
            account_id in self._views
            or trader(account_id) in state.balances
            or account_id in state.positions
        )

    def market(self) -> Market:
        """The ledger's market at its marks; a held instrument without a mark yet is valued at
        its entry price (as the ledger's own screen values it)."""
        state = self.ledger.state
        unpriced: dict[str, Decimal] = {}
        for held in state.positions.values():
            for symbol, h in held.items():
                if symbol not in state.prices:
                    unpriced.setdefault(symbol, h.entry)
        return model_market(state, self.ledger.ctx, unpriced)

    def account(self, account_id: str) -> Account:
        """The model account of ``account_id`` (``KeyError`` if unknown)."""
        if not self.known(account_id):
            raise KeyError(account_id)
        return self.ledger.account(account_id)

    def volatility(self, symbol: str) -> float:
        """Annualised realised volatility of ``symbol``: from the recent marks (by their price
        times) once there are enough of them, else from the bundled history of its
        underlying (BTC daily closes 2017-2025; ETH 2-hour closes of May 2025)."""
        recent = self._marks.get(symbol)
        if recent is not None and len(recent) >= MIN_RECENT:
            times = [t for t, _ in recent]
            span = times[-1] - times[0]
            if span > 0:
                vol = realised_volatility([p for _, p in recent], span / (len(recent) - 1))
                if vol > 0:
                    return vol
        return self._bundled_volatility(symbol)

    def _bundled_volatility(self, symbol: str) -> float:
        underlying = "ETH" if symbol.upper().startswith("ETH") else "BTC"
        cached = self._bundled_vol.get(underlying)
        if cached is None:
            name, interval = (
                ("eth_usdt_2h_2025-05.csv", 7_200.0)
                if underlying == "ETH"
                else ("btc_usd_1d_2017-2025.csv", 86_400.0)
            )
            text = resources.files("crossmargin.data").joinpath(name).read_text()
            # Header lines (the daily file repeats its own) carry no close.
            closes = []
            for line in text.splitlines():
                cells = line.split(",")
                with contextlib.suppress(IndexError, ValueError):
                    closes.append(float(cells[4]))
            cached = realised_volatility(closes[-365:], interval)
            self._bundled_vol[underlying] = cached
        return cached

    def record_alert(self, alert: Mapping[str, Any]) -> None:
        """Keep ``alert`` in the ledger database (``id`` unique, ``at`` ISO time)."""
        self.records.record_alert(alert)

    # -- changing -------------------------------------------------------------------

    async def run(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` (ledger access) on a worker thread under the state's lock."""

        def locked() -> _T:
            with self.lock:
                return work()

        return await anyio.to_thread.run_sync(locked)

    def refresh_views(self, account_ids: Iterable[str], at: str | None = None) -> list[AccountView]:
        """Recompute the views of ``account_ids`` (known ones) with the engine; the views that
        changed, each also published on ``risk:{account_id}``."""
        ids = [a for a in dict.fromkeys(account_ids) if self.known(a)]
        if not ids:
            return []
        when = at or now_iso()
        accounts = [self.ledger.account(a) for a in ids]
        healths = evaluate_many(accounts, self.market())
        changed = []
        for health in healths:
            view = view_of(health, self.venue, when)
            if not view.same_risk(self._views.get(view.account_id)):
                self._views[view.account_id] = view
                changed.append(view)
                self.hub.publish(f"risk:{view.account_id}", view.to_data())
        if changed:
            self.metrics.set_statuses(self.status_counts())
        return changed

    def status_counts(self) -> dict[str, int]:
        """Accounts per status label."""
        counts: dict[str, int] = {}
        for view in self._views.values():
            counts[view.status] = counts.get(view.status, 0) + 1
        return counts

    def _touched(self, receipts: Sequence[Receipt]) -> set[str]:
        """Accounts the receipts' events name; liquidation fills counted on the way."""
        named: set[str] = set()
        for receipt in receipts:
            for event in receipt.events:
                if event.kind == EventKind.LIQUIDATION_FILL:
                    self.metrics.liquidations.inc()
                account = event.body.get("account")
                if isinstance(account, str):
                    named.add(account)
        return named

    def after_command(self, receipts: Sequence[Receipt], accounts: Iterable[str] = ()) -> None:
        """Refresh the views of ``accounts`` and of every account the receipts' events name."""
        self.refresh_views(sorted(set(accounts) | self._touched(receipts)))

    def check_prices(self, prices: Mapping[str, Any]) -> dict[str, Decimal]:
        """``prices`` as exact marks of ledger instruments, or the error naming the first bad
        one (``prices.BTCUSDT``). A float (a feed's binary number) is rounded to the ledger's 8
        decimal places; decimal text must already be exact."""
        if not isinstance(prices, Mapping) or not prices:
            raise CrossMarginError("prices", "must be a non-empty object of symbol: price")
        out: dict[str, Decimal] = {}
        for symbol, value in prices.items():
            if not isinstance(symbol, str) or symbol not in self.ledger.ctx.instruments:
                raise CrossMarginError(f"prices.{symbol}", "unknown instrument")
            if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
                raise CrossMarginError(f"prices.{symbol}", "must be a number")
            if isinstance(value, float) and math.isfinite(value):
                value = round(value, 8)
            out[symbol] = limits.price(f"prices.{symbol}", value)
        return out

    def _apply(self, marks: Mapping[str, Decimal], at: str) -> tuple[AccountView, ...]:
        """Write the marks (one transaction; each runs a liquidation pass), then refresh the
        views of their holders and of every account the passes touched."""
        tag = uuid.uuid4().hex
        commands = [Price(f"price:{tag}:{s}", s, p) for s, p in marks.items()]
        results = self.ledger.execute(commands)
        errors = [r for r in results if isinstance(r, CrossMarginError)]
        if errors:
            raise errors[0]
        receipts = [r for r in results if isinstance(r, Receipt)]
        holders = {
            account
            for account, held in self.ledger.state.positions.items()
            if any(s in held for s in marks)
        }
        changed = self.refresh_views(sorted(holders | self._touched(receipts)), at)
        self.metrics.prices_processed.inc(len(marks))
        for symbol, price in marks.items():
            recent = self._marks.setdefault(symbol, deque(maxlen=RECENT_MARKS))
            recent.append((datetime.fromisoformat(at).timestamp(), float(price)))
        return tuple(changed)

    async def apply_prices(
        self,
        prices: Mapping[str, Any],
        at: datetime | None = None,
        received_ns: int | None = None,
    ) -> Tick:
        """Apply a tick of marks (``prices``: symbol to price; ``at``: their time, default
        now): the ledger liquidates at them, changed views go out on ``risk:*``, the tick on
        ``book``, then every tick listener runs. Bad input changes nothing."""
        arrived = time.perf_counter_ns() if received_ns is None else received_ns
        marks = self.check_prices(prices)
        when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
        changed = await self.run(lambda: self._apply(marks, when))
        tick = Tick(arrived, {s: float(p) for s, p in marks.items()}, when, changed)
        self.hub.publish("book", self.book_summary(tick))
        for listener in list(self.tick_listeners):
            try:
                await listener(tick)
            except Exception:
                log.exception("tick listener failed", extra={"listener": repr(listener)})
        return tick

    def book_summary(self, tick: Tick) -> dict[str, Any]:
        """The ``book`` channel's message after ``tick``: the marks, accounts per status, the
        ids of the accounts that changed and their new views."""
        return {
            "at": tick.at,
            "prices": dict(tick.prices),
            "accounts": len(self._views),
            "statuses": self.status_counts(),
            "changed": [v.account_id for v in tick.changed],
            "views": [v.to_data() for v in tick.changed],
        }
