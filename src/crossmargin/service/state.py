"""The service's state: the durable ledger, the hub, the metrics and each account's view.

Every change goes through the ledger (:class:`crossmargin.ledger.Ledger`, which re-margins its
:class:`~crossmargin.book.RiskBook` screen and liquidates on each mark). The service reads the
risk off that same book: after a change, one vectorised pass over the screen's account records
finds the accounts whose figures moved; the views of those somebody watches (a ``risk:``
subscriber, an alert rule, the riskiest of the book for ``book`` subscribers) are computed at
once with the account-risk kernel (:meth:`RiskBook.analysis`) and published, and the rest are
marked stale and computed when first read. Ticks that arrive while one is being applied are
applied together: every mark in its own ledger command (each runs its liquidation pass), in one
transaction. After a tick the accounts with alert rules come first (their views, then the tick
listeners that deliver the alerts, while the next ticks are applied); the other watched views
follow between ticks, a chunk at a time, always at the latest state. Ledger work runs on a
worker thread under one lock (the ledger is not thread-safe); views are plain frozen values
read from any thread. An account's model and the market it is valued in are read without the
lock (:meth:`ServiceState.kept`): each model is kept from its first read until the ledger names
the account as changed (:meth:`Ledger.take_changed`: this process's commands or other writers'
events), beside the market published after every change, so a margin report never waits while
ticks are applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
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
import numpy as np

from crossmargin.book import AccountAnalysis, RiskBook
from crossmargin.ledger import Ledger, Price, Receipt, limits
from crossmargin.ledger.journal import EventKind, trader
from crossmargin.ledger.liquidation import model_market
from crossmargin.maths.first_passage import realised_volatility
from crossmargin.maths.status import Status
from crossmargin.model import Account, CrossMarginError, Market
from crossmargin.rules import Rulebook, load_rulebook
from crossmargin.service.errors import ApiError
from crossmargin.service.hub import Hub
from crossmargin.service.metrics import Metrics
from crossmargin.service.records import Records
from crossmargin.service.settings import Settings

__all__ = [
    "AccountView",
    "PositionView",
    "ServiceState",
    "Tick",
    "TickListener",
    "views_of",
]

log = logging.getLogger("crossmargin.service")

_T = TypeVar("_T")

RECENT_MARKS = 500
"""Marks kept per symbol for the realised volatility."""
MIN_RECENT = 30
"""Marks (with distinct times) needed before the recent ones replace the bundled history."""
BOOK_VIEWS = 100
"""While the ``book`` channel has subscribers, the views of this many riskiest accounts are
kept current and the changed ones among them sent in its messages."""
FAN_OUT_CHUNK = 128
"""Views computed at most at a time between ticks."""
VIEW_SLICE = 16
"""Views computed before a chunk looks for a waiting tick (and stops for it)."""
_LABELS = tuple(s.label for s in Status)


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

    def to_data(self) -> dict[str, Any]:
        """The position as JSON-ready data (fields in declaration order)."""
        return {
            "symbol": self.symbol,
            "qty": self.qty,
            "mark": self.mark,
            "entry": self.entry,
            "liquidation_price": self.liquidation_price,
            "bankruptcy_price": self.bankruptcy_price,
            "distance": self.distance,
            "margin_mode": self.margin_mode,
        }


@dataclass(frozen=True)
class AccountView:
    """An account's risk at a glance (amounts in the ledger currency). ``margin_ratio`` is
    maintenance margin over equity (``None`` where equity is not positive under a requirement);
    ``crash_distance`` the smallest uniform price move, as a fraction, that makes it
    liquidatable; ``at`` the time of the state it shows (ISO UTC): the latest tick's (a
    candle's time for a replay) or the latest command's."""

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
        """The view as JSON-ready data (fields in declaration order)."""
        return {
            "account_id": self.account_id,
            "venue": self.venue,
            "status": self.status,
            "equity": self.equity,
            "initial_margin": self.initial_margin,
            "maintenance_margin": self.maintenance_margin,
            "margin_ratio": self.margin_ratio,
            "crash_distance": self.crash_distance,
            "positions": [p.to_data() for p in self.positions],
            "at": self.at,
        }


@dataclass(frozen=True)
class Tick:
    """Prices applied at once: ``received_ns`` (``time.perf_counter_ns()`` at arrival; the
    earliest of ticks applied together), the marks, their time ``at`` (ISO UTC: a candle's
    time for a replay), the changed views of the accounts the state's ``watchers`` name (those
    with alert rules) and ``moved``, how many accounts' figures changed."""

    received_ns: int
    prices: Mapping[str, float]
    at: str
    changed: tuple[AccountView, ...]
    moved: int = 0


TickListener = Callable[[Tick], Awaitable[None]]


def _severity(view: AccountView) -> tuple[int, float, str]:
    order = {"bankrupt": 3, "liquidatable": 2, "margin_call": 1, "healthy": 0}
    ratio = view.margin_ratio if view.margin_ratio is not None else math.inf
    if not view.positions:
        ratio = -1.0
    return (-order.get(view.status, 0), -ratio, view.account_id)


def views_of(
    found: AccountAnalysis, ids: Sequence[str], symbols: Sequence[str], venue: str, at: str
) -> list[AccountView]:
    """The :class:`AccountView` of each account of ``found`` (``ids``: the book's account ids,
    ``symbols`` its instruments), positions by symbol."""
    v, crash = found.values, found.crash
    equity, initial = v.equity.tolist(), v.initial_margin.tolist()
    maintenance, ratio = v.maintenance_margin.tolist(), v.margin_ratio.tolist()
    status, distance = v.status_code.tolist(), crash.distance.tolist()
    starts = found.starts.tolist()
    rows = zip(
        [symbols[i] for i in found.instrument.tolist()],
        found.qty.tolist(),
        found.mark.tolist(),
        found.entry.tolist(),
        found.liquidation.tolist(),
        found.bankruptcy.tolist(),
        found.isolated.tolist(),
        strict=True,
    )
    positions = []
    for symbol, qty, mark, entry, liq, bust, iso in rows:
        liq_price = _finite(liq)
        away = abs(mark - liq_price) / mark if liq_price is not None and mark > 0 else None
        mode = "isolated" if iso else "cross"
        view = PositionView(symbol, qty, mark, entry, liq_price, _finite(bust), away, mode)
        positions.append(view)
    out = []
    for k, a in enumerate(found.account.tolist()):
        held = tuple(sorted(positions[starts[k] : starts[k + 1]], key=lambda p: p.symbol))
        out.append(
            AccountView(
                ids[a],
                venue,
                _LABELS[status[k]],
                equity[k],
                initial[k],
                maintenance[k],
                _finite(ratio[k]) if held else 0.0,
                _finite(distance[k]),
                held,
                at,
            )
        )
    return out


@dataclass
class _Pending:
    """A tick waiting to be applied, and the future its caller awaits."""

    marks: dict[str, Decimal]
    at: str
    received_ns: int
    done: asyncio.Future[Tick]


class ServiceState:
    """The ledger, hub, metrics and views of one service process (``app.state.service``).

    ``tick_listeners`` are awaited, in order, after every applied tick (alert evaluation hooks
    in here); one that raises is logged and the rest still run. The next tick may be applied
    and announced while a listener waits: the first listener's work up to its first wait runs
    in tick order, and a listener that must keep the order past a wait keeps it itself.
    ``watchers`` name the accounts whose views are kept current as they change (each a
    function giving account ids); the accounts with ``risk:`` subscribers are always watched.
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
        self.watchers: list[Callable[[], Iterable[str]]] = []
        self.lock = threading.RLock()
        self._views: dict[str, AccountView] = {}
        self._book: RiskBook | None = None
        self._figures = np.empty((0, 4))
        self._stale = np.empty(0, dtype=bool)
        self._unsent = np.empty(0, dtype=bool)
        self._counts: dict[str, int] = {}
        self._marks: dict[str, deque[tuple[float, float]]] = {}
        self._bundled_vol: dict[str, float] = {}
        self._at = now_iso()
        self._pending: list[_Pending] = []
        self._in_flight = 0
        self._ticks_idle = asyncio.Event()
        self._ticks_idle.set()
        self._draining: asyncio.Task[None] | None = None
        self._announcing: set[asyncio.Task[None]] = set()
        self._fanning: asyncio.Task[None] | None = None
        self._fan_wanted = False
        self._fan_prices: dict[str, float] = {}
        self._fan_moved = 0
        self._fan_views: list[AccountView] = []
        self._models: dict[str, Account] = {}
        self._published = model_market(ledger.state, ledger.ctx)
        self._published_seq = ledger.state.seq
        with self.lock:
            self._sync((), now_iso())

    def close(self) -> None:
        """Release the ledger's database connections."""
        self.ledger.close()

    # -- reading --------------------------------------------------------------------

    @property
    def venue(self) -> str:
        """The ledger venue's liquidation rulebook name."""
        return self.ledger.ctx.rules.name

    @property
    def accounts(self) -> int:
        """How many accounts the ledger has."""
        return len(self._stale)

    def view(self, account_id: str) -> AccountView:
        """The current view of ``account_id``; ``KeyError`` if the ledger has no such account."""
        with self.lock:
            book = self._current()
            row = self._row(book, account_id)
            if row is None:
                raise KeyError(account_id)
            found = self._views.get(account_id)
            if found is None or self._stale[row]:
                (found,) = self._materialise(book, [row], self._at)
            return found

    def views(self) -> list[AccountView]:
        """The views of every account, riskiest first: worst status, then highest margin
        ratio (no positions last), then id."""
        with self.lock:
            book = self._current()
            rows = range(book.accounts)
            ids = book.account_ids
            missing = [r for r in rows if self._stale[r] or ids[r] not in self._views]
            self._materialise(book, missing, self._at)
            return sorted((self._views[ids[r]] for r in rows), key=_severity)

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

    def kept(self, account_id: str) -> tuple[Account, Market] | None:
        """The model account of ``account_id`` and the market it is valued in, both as of the
        latest applied change, taking no lock (so never waiting while ticks are applied);
        ``None`` until the account's model is kept (:meth:`priced` keeps it). The pair is
        consistent: a change published while it was read makes the read start again."""
        while True:
            published = self._published
            account = self._models.get(account_id)
            if account is None:
                return None
            if self._published is published:
                return account, self._valued(account, published)

    def priced(self, account_id: str) -> tuple[Account, Market]:
        """:meth:`kept`, building and keeping the model under the lock if it is not kept yet
        (``KeyError`` if the ledger has no such account)."""
        found = self.kept(account_id)
        if found is not None:
            return found
        with self.lock:
            account = self._models.get(account_id)
            if account is None:
                if not self.known(account_id):
                    raise KeyError(account_id)
                account = self.ledger.account(account_id)
                self._models[account_id] = account
            return account, self._valued(account, self._published)

    @staticmethod
    def _valued(account: Account, market: Market) -> Market:
        """``market``, with each instrument ``account`` holds without a mark valued at the
        position's entry price (as the ledger's own screen values it)."""
        unpriced = {
            p.symbol: p.entry_price for p in account.positions if p.symbol not in market.prices
        }
        return market.with_prices(unpriced) if unpriced else market

    def _publish_models(self) -> None:
        """After ledger work (under the lock): forget the models of the traders it changed,
        then publish the market at the current marks if anything changed."""
        changed = self.ledger.take_changed()
        if changed is None:
            self._models.clear()
        else:
            for name in changed:
                self._models.pop(name, None)
        seq = self.ledger.state.seq
        if changed or changed is None or seq != self._published_seq:
            self._published = model_market(self.ledger.state, self.ledger.ctx)
            self._published_seq = seq

    @functools.cached_property
    def rulebook(self) -> Rulebook:
        """The ledger venue's margin rulebook (read once)."""
        return load_rulebook(self.ledger.ctx.rules.margin_rulebook)

    def volatility(self, symbol: str) -> float:
        """Annualised realised volatility of ``symbol``: from the recent marks (by their price
        times) once there are enough of them, else from the bundled history of its
        underlying (BTC daily closes 2017-2025; ETH 2-hour closes of May 2025). The marks are
        read as one copy: ticks append to them on a worker thread meanwhile."""
        recent = tuple(self._marks.get(symbol, ()))
        if len(recent) >= MIN_RECENT:
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

    def record_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Keep ``alerts`` in the ledger database, in one transaction (``id`` unique, ``at``
        ISO time; an id already kept is kept once)."""
        self.records.record_alerts(alerts)

    def status_counts(self) -> dict[str, int]:
        """Accounts per status label."""
        return dict(self._counts)

    # -- changing -------------------------------------------------------------------

    async def run(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` (ledger access) on a worker thread under the state's lock."""

        def locked() -> _T:
            with self.lock:
                try:
                    return work()
                finally:
                    self._publish_models()

        return await anyio.to_thread.run_sync(locked)

    def refresh_views(self, account_ids: Iterable[str] = (), at: str | None = None) -> None:
        """Bring the views up to the ledger after a change made outside the service's own
        commands (the ledger used directly): ``account_ids`` and every account whose figures
        moved; the watched ones are published on ``risk:{account_id}``."""
        with self.lock:
            self._publish_models()
            for view in self._sync(account_ids, at or now_iso())[0]:
                self.hub.publish(f"risk:{view.account_id}", view.to_data())

    def _current(self) -> RiskBook:
        """The ledger's screen, with the figures and staleness kept for it."""
        book = self.ledger.screen().book
        if book is not self._book:
            self._book = book
            self._views.clear()
            self._figures = np.full((book.accounts, 4), np.nan)
            self._stale = np.ones(book.accounts, dtype=bool)
            self._unsent = np.zeros(book.accounts, dtype=bool)
        elif book.accounts > len(self._stale):
            grown = book.accounts - len(self._stale)
            self._figures = np.vstack([self._figures, np.full((grown, 4), np.nan)])
            self._stale = np.concatenate([self._stale, np.ones(grown, dtype=bool)])
            self._unsent = np.concatenate([self._unsent, np.zeros(grown, dtype=bool)])
        return book

    @staticmethod
    def _row(book: RiskBook, account_id: str) -> int | None:
        try:
            return book.index_of(account_id)
        except CrossMarginError:
            return None

    def _riskiest(self, book: RiskBook, limit: int) -> list[int]:
        """Rows of the ``limit`` riskiest accounts (by status, then margin ratio), in no
        order."""
        n = book.accounts
        if limit >= n:
            return list(range(n))
        v = book.values()
        ratio = np.where(np.isnan(v.margin_ratio), np.inf, v.margin_ratio)
        key = v.status_code * 4.0 + np.arctan(ratio) * (2 / math.pi)
        rows: list[int] = np.argpartition(-key, limit)[:limit].tolist()
        return rows

    def _materialise(self, book: RiskBook, rows: Sequence[int], at: str) -> list[AccountView]:
        """Compute and keep the views of book ``rows``."""
        if not rows:
            return []
        views = views_of(book.analysis(rows), book.account_ids, book.params.symbols, self.venue, at)
        for view in views:
            self._views[view.account_id] = view
        self._stale[np.asarray(rows, dtype=np.intp)] = False
        return views

    def _watched(self, book: RiskBook, *, everyone: bool = True) -> set[int]:
        """Rows of the accounts the ``watchers`` name and, with ``everyone``, of the accounts
        with ``risk:`` subscribers and (while ``book`` has subscribers) the riskiest."""
        names: set[str] = set()
        for watcher in self.watchers:
            names.update(watcher())
        if everyone:
            names.update(c[5:] for c in self.hub.channels("risk:"))
        rows = {r for r in (self._row(book, name) for name in names) if r is not None}
        if everyone and self.hub.subscribers("book"):
            rows.update(self._riskiest(book, BOOK_VIEWS))
        return rows

    def _sync(
        self, touched: Iterable[str], at: str, *, everyone: bool = True
    ) -> tuple[list[AccountView], int]:
        """After a ledger change: find the accounts whose figures moved (and ``touched``), mark
        them stale and compute the views of the watched ones among them (only the
        ``watchers``' without ``everyone``); those views and how many accounts moved."""
        book = self._current()
        v = book.values()
        now = np.column_stack([v.equity, v.initial_margin, v.maintenance_margin, v.status_code])
        before = self._figures
        moved = ~((now == before) | (np.isnan(now) & np.isnan(before))).all(axis=1)
        for name in touched:
            row = self._row(book, name)
            if row is not None:
                moved[row] = True
        self._figures = now
        self._stale |= moved
        self._unsent |= moved
        self._at = at
        counts = np.bincount(v.status_code, minlength=len(_LABELS)).tolist()
        self._counts = {label: c for label, c in zip(_LABELS, counts, strict=True) if c}
        self.metrics.set_statuses(self._counts)
        wanted = sorted(r for r in self._watched(book, everyone=everyone) if self._unsent[r])
        return self._to_send(book, wanted), int(moved.sum())

    def _to_send(self, book: RiskBook, rows: Sequence[int]) -> list[AccountView]:
        """The current views of ``rows`` (computed where stale), no longer waiting to be
        sent."""
        ids = book.account_ids
        missing = [r for r in rows if self._stale[r] or ids[r] not in self._views]
        self._materialise(book, missing, self._at)
        self._unsent[np.asarray(rows, dtype=np.intp)] = False
        return [self._views[ids[r]] for r in rows]

    def _unsent_watched(self) -> list[int]:
        """Rows of the watched accounts whose latest state has not been sent."""
        book = self._current()
        return sorted(r for r in self._watched(book) if self._unsent[r])

    def _refresh_rows(self, rows: Sequence[int]) -> tuple[list[AccountView], int]:
        """The views of those of ``rows`` whose latest state is still unsent, a
        :data:`VIEW_SLICE` at a time until a tick is waiting (at least one slice); those views
        and how many of ``rows`` were gone through."""
        book = self._current()
        views: list[AccountView] = []
        done = 0
        while done < len(rows) and not (done and self._pending):
            part = rows[done : done + VIEW_SLICE]
            views += self._to_send(book, [r for r in part if self._unsent[r]])
            done += len(part)
        return views, done

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
        """Bring the views up to the ledger after the service's own commands: ``accounts``,
        every account the receipts' events name and every account whose figures moved."""
        self.refresh_views(set(accounts) | self._touched(receipts))

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

    def _apply(self, batch: Sequence[_Pending]) -> tuple[list[BaseException | None], Tick]:
        """Write every tick's marks (one ledger command a mark, each running a liquidation
        pass; one transaction), then bring the views up to date: each tick's outcome (``None``
        or its error) and the tick they make together."""
        commands: list[Price] = []
        owner: list[int] = []
        for k, pending in enumerate(batch):
            tag = uuid.uuid4().hex
            commands += [Price(f"price:{tag}:{s}", s, p) for s, p in pending.marks.items()]
            owner += [k] * len(pending.marks)
        results = self.ledger.execute(commands)
        outcome: list[BaseException | None] = [None] * len(batch)
        receipts = []
        for k, result in zip(owner, results, strict=True):
            if isinstance(result, CrossMarginError):
                outcome[k] = outcome[k] or result
            elif isinstance(result, Receipt):
                receipts.append(result)
        at = batch[-1].at
        changed, moved = self._sync(self._touched(receipts), at, everyone=False)
        prices: dict[str, float] = {}
        for pending, error in zip(batch, outcome, strict=True):
            if error is not None:
                continue
            self.metrics.prices_processed.inc(len(pending.marks))
            when = datetime.fromisoformat(pending.at).timestamp()
            for symbol, price in pending.marks.items():
                prices[symbol] = float(price)
                recent = self._marks.setdefault(symbol, deque(maxlen=RECENT_MARKS))
                recent.append((when, float(price)))
        first = min(p.received_ns for p in batch)
        return outcome, Tick(first, prices, at, tuple(changed), moved)

    async def apply_prices(
        self,
        prices: Mapping[str, Any],
        at: datetime | None = None,
        received_ns: int | None = None,
    ) -> Tick:
        """Apply a tick of marks (``prices``: symbol to price; ``at``: their time, default
        now): the ledger liquidates at them, changed watched views go out on ``risk:*``, the
        tick on ``book``, then every tick listener runs. Bad input changes nothing. Ticks that
        arrive while others are applied wait and are then applied together (each mark still
        its own ledger command); the tick returned carries this call's marks."""
        arrived = time.perf_counter_ns() if received_ns is None else received_ns
        marks = self.check_prices(prices)
        when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
        done: asyncio.Future[Tick] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(marks, when, arrived, done))
        self._in_flight += 1
        self._ticks_idle.clear()
        if self._draining is None or self._draining.done():
            self._draining = asyncio.ensure_future(self._drain())
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        """Apply the waiting ticks, all of them at a time, until none wait; each applied batch
        is announced (:meth:`_publish`, as its own task) while the next batch is applied, and
        its callers are answered when that is done."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcome, tick = await self.run(functools.partial(self._apply, batch))
            except Exception as error:
                for pending in batch:
                    pending.done.set_exception(error)
                self._settled(len(batch))
                continue
            announced = asyncio.ensure_future(self._publish(tick))
            self._announcing.add(announced)
            announced.add_done_callback(
                functools.partial(self._announced, batch=batch, outcome=outcome, tick=tick)
            )

    def _announced(
        self,
        task: asyncio.Task[None],
        *,
        batch: list[_Pending],
        outcome: list[BaseException | None],
        tick: Tick,
    ) -> None:
        self._announcing.discard(task)
        self._settle(batch, outcome, tick)

    def _settle(
        self, batch: Sequence[_Pending], outcome: Sequence[BaseException | None], tick: Tick
    ) -> None:
        """Answer the callers of ``batch``: each its error or the tick with its own marks."""
        for pending, failure in zip(batch, outcome, strict=True):
            if failure is not None:
                pending.done.set_exception(failure)
            else:
                prices = {s: float(p) for s, p in pending.marks.items()}
                pending.done.set_result(
                    Tick(pending.received_ns, prices, pending.at, tick.changed, tick.moved)
                )
        self._settled(len(batch))

    def _settled(self, count: int) -> None:
        """``count`` ticks answered; none left in flight sets :meth:`between_ticks` free."""
        self._in_flight -= count
        if not self._in_flight:
            self._ticks_idle.set()

    async def _publish(self, tick: Tick) -> None:
        """Send the changed views of the watchers' accounts, have the other watched views
        follow (:meth:`_fan_out`), then run the tick listeners (alerts). Ticks are announced in
        the order they were applied: everything here up to the first listener's first wait runs
        before the next tick's announcement starts."""
        for view in tick.changed:
            self.hub.publish(f"risk:{view.account_id}", view.to_data())
        self._fan_prices.update(tick.prices)
        self._fan_moved += tick.moved
        self._fan_views += tick.changed
        self._fan_wanted = True
        if self._fanning is None or self._fanning.done():
            self._fanning = asyncio.ensure_future(self._fan_out())
        for listener in list(self.tick_listeners):
            try:
                await listener(tick)
            except Exception:
                log.exception("tick listener failed", extra={"listener": repr(listener)})

    async def _fan_out(self) -> None:
        """Bring the stale views of the watched accounts up to date and send them, then the
        book summary; again while ticks keep coming, at most one round every
        ``Settings.view_interval_s``. Views are computed
        :data:`FAN_OUT_CHUNK` accounts at a time, each chunk once no tick is waiting (see
        :meth:`between_ticks`) and cut short when a tick arrives (after
        :data:`VIEW_SLICE` views), so a tick waits for a slice at most, and a
        view always shows the latest state (a tick applied meanwhile supersedes the one
        before it: views are conflated, never queued behind the ticks)."""
        began = -math.inf
        while self._fan_wanted:
            wait = began + self.settings.view_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            began = time.monotonic()
            self._fan_wanted = False
            rows = await self.run(self._unsent_watched)
            sent, self._fan_views = self._fan_views, []
            k = 0
            while k < len(rows):
                await self.between_ticks(self.settings.view_interval_s)
                chunk = rows[k : k + FAN_OUT_CHUNK]
                views, done = await self.run(functools.partial(self._refresh_rows, chunk))
                k += done
                for view in views:
                    self.hub.publish(f"risk:{view.account_id}", view.to_data())
                sent += views
            if self.hub.subscribers("book"):
                shown = sorted(sent, key=_severity)[:BOOK_VIEWS]
                self.hub.publish("book", self.book_summary(self._at, shown))
            self._fan_prices, self._fan_moved = {}, 0

    async def between_ticks(self, timeout: float) -> None:
        """Wait until every tick received has been applied and announced (ticks and their
        alerts go first), for at most ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ticks_idle.wait(), timeout)

    def book_summary(self, at: str, views: Sequence[AccountView]) -> dict[str, Any]:
        """The ``book`` channel's message: the latest state's time and the marks applied,
        accounts per status, how many accounts' figures moved since the last message, and
        ``views`` (the riskiest of the views that changed)."""
        return {
            "at": at,
            "prices": dict(self._fan_prices),
            "accounts": self.accounts,
            "statuses": self.status_counts(),
            "changed": self._fan_moved,
            "views": [v.to_data() for v in views],
        }
