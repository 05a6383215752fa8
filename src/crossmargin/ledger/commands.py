"""The ledger's commands: validate, decide events on the newest state, write them durably.

Every command carries an idempotency key. A retried command (same key, same body) is applied
once and answers with the events it wrote the first time; the same key with a different body
is a :class:`CrossMarginError`. Bad input raises before anything is written or changed.

Commands run in write transactions (:meth:`crossmargin.ledger.store.Store.writing`): a
transaction first reads what other writers committed since this process last looked, so each
command decides on the newest committed state, and several processes may write one database.
:meth:`Ledger.execute` runs many commands in one transaction (group commit) and acknowledges
each only once it is committed; a transient database failure is retried a bounded number of
times, then reported as a :class:`CrossMarginError`.

Risk checks cross into floats at one boundary: pre-trade checks price the account after the
fill through the ledger's :class:`~crossmargin.book.RiskBook` (one account-risk kernel call,
:meth:`~crossmargin.book.RiskBook.trial`) and judge it by :func:`crossmargin.orders.refusal`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from crossmargin.book.riskbook import RiskBook
from crossmargin.health import AccountHealth, evaluate
from crossmargin.ledger import limits
from crossmargin.ledger.context import Context
from crossmargin.ledger.funding import funding
from crossmargin.ledger.journal import (
    INSURANCE,
    Emitter,
    Event,
    EventKind,
    Posting,
    State,
    apply,
    isolated,
    trader,
)
from crossmargin.ledger.limits import DECIMALS, Number
from crossmargin.ledger.liquidation import (
    Screen,
    liquidation_pass,
    model_account,
    model_market,
    touched,
)
from crossmargin.ledger.requests import (
    Command,
    Deposit,
    DepositInsurance,
    Fund,
    Price,
    Trade,
    Withdraw,
)
from crossmargin.ledger.store import Store, Written
from crossmargin.maths.money import to_money, trade_fee
from crossmargin.maths.risk import available_of
from crossmargin.model import Account, CrossMarginError, Instrument, MarginMode, Market, Order
from crossmargin.orders import OrderRisk, apply_fill, increases_risk, max_withdrawable, refusal
from crossmargin.rules import load_rulebook
from crossmargin.rules.venue import load_venue

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["Ledger", "Receipt"]


@dataclass(frozen=True)
class Receipt:
    """An accepted command: its key, the events it wrote and whether this call was a retry."""

    key: str
    first_seq: int
    events: tuple[Event, ...]
    duplicate: bool


class _Prepared(NamedTuple):
    """A checked command: its key, the digest of its canonical body and what it decides."""

    key: str
    digest: str
    decide: Callable[[Emitter], object]


_Decision = tuple[dict[str, str], Callable[[Emitter], object]]
"""A command's canonical body and the function that decides its events."""


def _digest(body: Mapping[str, str]) -> str:
    text = json.dumps(dict(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Ledger:
    """A durable ledger over ``url`` (SQLite by default; ``postgresql+psycopg://`` works too).

    ``venue`` is a bundled liquidation rulebook (``binance``, ``hyperliquid``, ``dydx``) or the
    path of one (:func:`crossmargin.rules.venue.load_venue`). ``instruments`` are the
    tradable linear contracts settled in ``currency``; by default the instruments and currency
    of the venue's margin rulebook (``binance-usdm``, ``hyperliquid``, ``dydx-v4``), and with
    ``instruments`` given the currency defaults to that rulebook's too. A snapshot is written every
    ``snapshot_every`` events so opening does not replay the whole journal. Several processes
    may write one database; ``retries`` bounds how often a transaction that failed on the
    database is tried again. Reads (:meth:`account`, :meth:`health`, :attr:`state`) see this
    process's view: :meth:`refresh` brings in what other writers committed.
    """

    def __init__(
        self,
        url: str = "sqlite:///crossmargin-ledger.db",
        *,
        instruments: Mapping[str, Instrument] | None = None,
        currency: str | None = None,
        venue: str | Path = "binance",
        schema: str | None = None,
        snapshot_every: int = 10_000,
        retries: int = 8,
    ) -> None:
        rules = load_venue(venue)
        try:
            margin = load_rulebook(rules.margin_rulebook)
        except CrossMarginError as error:
            raise CrossMarginError("venue.margin.rulebook", str(error)) from None
        found = instruments if instruments is not None else margin.instruments
        self.ctx = Context(dict(found), currency or margin.currency, rules)
        self._symbols = Market(self.ctx.instruments, {}, self.ctx.currency)
        self.store = Store(url, schema)
        self.snapshot_every = snapshot_every
        self.retries = retries
        self._screen: Screen | None = None
        self._dirty: set[str] = set()
        self._wallets: set[str] = set()
        self._changed: set[str] | None = set()
        self._seen = 0
        self._stale = False
        self.state = self._load()

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _load(self) -> State:
        """The state from the newest snapshot and the events after it."""
        with localcontext(DECIMALS):
            snap = self.store.snapshot()
            state = State() if snap is None else State.from_json(snap[1])
            for event in self.store.events(after=state.seq):
                apply(state, event)
        self._screen = None
        self._dirty, self._wallets = set(), set()
        self._changed = None
        return state

    def refresh(self) -> None:
        """Apply what other writers committed since this process last looked."""
        with localcontext(DECIMALS), self.store.reading() as conn:
            self._catch_up(conn)

    def _catch_up(self, conn: Connection) -> None:
        for event in self.store.events_on(conn, after=self.state.seq):
            self._touch([(event, apply(self.state, event))])

    def replay(self, upto: int | None = None, *, from_snapshot: bool = False) -> State:
        """State after event ``upto`` (default: all), rebuilt from the journal alone."""
        with localcontext(DECIMALS):
            snap = self.store.snapshot(upto) if from_snapshot else None
            state = State() if snap is None else State.from_json(snap[1])
            for event in self.store.events(after=state.seq, upto=upto):
                apply(state, event)
        return state

    def account_at(self, account: str, upto: int) -> Account:
        """The model account of ``account`` as it stood after event ``upto``."""
        state = self.replay(upto, from_snapshot=True)
        if trader(account) not in state.balances:
            raise CrossMarginError("account", f"unknown account {account!r} at event {upto}")
        return model_account(state, account, self.ctx.currency)

    def snapshot(self) -> None:
        """Store the current state as a snapshot."""
        self.store.save_snapshot(self.state.seq, self.state.to_json())

    # -- the float boundary -------------------------------------------------------------

    def account(self, account: str) -> Account:
        """The model account of ``account`` (floats, for risk analytics)."""
        self._known(account)
        return model_account(self.state, account, self.ctx.currency)

    def health(self, account: str) -> AccountHealth:
        """Account health at the current marks."""
        return evaluate(self.account(account), model_market(self.state, self.ctx))

    def risk_book(self) -> RiskBook:
        """Every trader account, in name order, as a :class:`crossmargin.book.RiskBook` at the
        current marks: the columnar view for ticks, stress runs and crash distances."""
        return Screen(self.state, self.ctx).book

    # -- running commands ---------------------------------------------------------------

    def execute(self, commands: Iterable[Command]) -> list[Receipt | CrossMarginError]:
        """Run ``commands`` in order in one transaction; each one's receipt, or the error that
        refused it (refused commands change nothing). Every receipt is committed when this
        returns. Raises :class:`CrossMarginError` only if the transaction itself failed after
        the retries; then none of the commands took effect."""
        batch = list(commands)
        out: list[Receipt | CrossMarginError | None] = [None] * len(batch)
        ready: list[tuple[int, _Prepared]] = []
        for i, command in enumerate(batch):
            try:
                ready.append((i, self._prepare(command)))
            except CrossMarginError as error:
                out[i] = error
        if ready:
            for i, result in self._commit(ready).items():
                out[i] = result
        return [r for r in out if r is not None]

    def _one(self, command: Command) -> Receipt:
        (result,) = self.execute([command])
        if isinstance(result, CrossMarginError):
            raise result
        return result

    def _commit(
        self, ready: Sequence[tuple[int, _Prepared]]
    ) -> dict[int, Receipt | CrossMarginError]:
        for attempt in range(self.retries + 1):
            try:
                with localcontext(DECIMALS):
                    return self._attempt(ready)
            except CrossMarginError as error:
                if error.path != "database" or attempt == self.retries:
                    raise
                time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.25)))
        raise AssertionError("unreachable")

    def _attempt(
        self, ready: Sequence[tuple[int, _Prepared]]
    ) -> dict[int, Receipt | CrossMarginError]:
        """One write transaction over ``ready``; on any failure the in-memory state is
        reloaded from the journal, so it never holds what was not committed."""
        out: dict[int, Receipt | CrossMarginError] = {}
        if self._stale:
            self.state, self._stale = self._load(), False
        first_of_batch = self.state.seq
        try:
            with self.store.writing() as conn:
                self._catch_up(conn)
                first_of_batch = self.state.seq
                stored = self.store.commands(conn, [p.key for _, p in ready])
                pending: dict[str, tuple[str, Receipt]] = {}
                written: list[Written] = []
                for i, p in ready:
                    known = stored.get(p.key)
                    if known is not None:
                        again = tuple(
                            self.store.events_on(conn, known.first_seq - 1, known.last_seq)
                        )
                        out[i] = self._retry(
                            p, known.digest, Receipt(p.key, known.first_seq, again, True)
                        )
                        continue
                    if p.key in pending:
                        digest, receipt = pending[p.key]
                        out[i] = self._retry(p, digest, replace(receipt, duplicate=True))
                        continue
                    first = self.state.seq + 1
                    em = Emitter(self.state)
                    self._seen = 0
                    try:
                        p.decide(em)
                    except CrossMarginError as error:
                        if em.written:
                            raise
                        out[i] = error
                        continue
                    self._touch(em.written[self._seen :])
                    events = tuple(e for e, _ in em.written)
                    written.append(
                        Written(
                            p.key,
                            p.digest,
                            first,
                            [(str(e.kind), e.to_json()) for e in events],
                            [legs for _, legs in em.written],
                        )
                    )
                    receipt = Receipt(p.key, first, events, False)
                    pending[p.key] = (p.digest, receipt)
                    out[i] = receipt
                self.store.append(conn, written)
        except BaseException:
            self._stale = True
            self.state, self._stale = self._load(), False
            raise
        every = self.snapshot_every
        if self.state.seq // every > first_of_batch // every:
            self.snapshot()
        return out

    @staticmethod
    def _retry(p: _Prepared, digest: str, receipt: Receipt) -> Receipt | CrossMarginError:
        if digest != p.digest:
            return CrossMarginError("key", f"idempotency key {p.key!r} reused with another body")
        return receipt

    def _prepare(self, command: Command) -> _Prepared:
        """Check ``command``'s fields (nothing is read or written yet)."""
        key = limits.idempotency_key(command.key)
        if isinstance(command, Deposit):
            body, decide = self._deposit(command)
        elif isinstance(command, DepositInsurance):
            body, decide = self._deposit_insurance(command)
        elif isinstance(command, Withdraw):
            body, decide = self._withdraw(command)
        elif isinstance(command, Trade):
            body, decide = self._trade(command)
        elif isinstance(command, Price):
            body, decide = self._price(command)
        elif isinstance(command, Fund):
            body, decide = self._fund(command)
        else:
            raise CrossMarginError("command", f"not a ledger command: {type(command).__name__}")
        return _Prepared(key, _digest(body), decide)

    # -- the commands -------------------------------------------------------------------

    def deposit(self, key: str, account: str, amount: Number) -> Receipt:
        """Credit ``amount`` (settle currency, > 0) to ``account``; opens it on first use."""
        return self._one(Deposit(key, account, amount))

    def deposit_insurance(self, key: str, amount: Number) -> Receipt:
        """Pay ``amount`` from outside into the insurance fund."""
        return self._one(DepositInsurance(key, amount))

    def withdraw(self, key: str, account: str, amount: Number) -> Receipt:
        """Pay ``amount`` out of ``account``, at most what keeps initial margin covered."""
        return self._one(Withdraw(key, account, amount))

    def trade(
        self,
        key: str,
        account: str,
        symbol: str,
        qty: Number,
        price: Number | None = None,
        *,
        maker: bool = False,
        margin_mode: str = "cross",
        leverage: Number | None = None,
        price_source: str | None = None,
    ) -> Receipt:
        """Fill ``qty`` contracts (> 0 buys) at ``price`` (default: the mark) with the fee.

        A price more than the venue's ``fill_band`` from the mark (or with no mark yet) is
        refused unless ``price_source`` names where it comes from. Rejected (CrossMarginError,
        nothing written) if the order adds risk beyond initial margin or the bracket's
        leverage cap (:func:`crossmargin.orders.refusal`).
        """
        return self._one(
            Trade(key, account, symbol, qty, price, maker, margin_mode, leverage, price_source)
        )

    def price(self, key: str, symbol: str, price: Number) -> Receipt:
        """Record a mark price, then run a liquidation pass at it."""
        return self._one(Price(key, symbol, price))

    def fund(self, key: str, symbol: str, rate: Number) -> Receipt:
        """Settle one funding interval of ``symbol`` at ``rate`` (fraction, within the venue's
        clamp) and its mark."""
        return self._one(Fund(key, symbol, rate))

    # -- deciding -----------------------------------------------------------------------

    def _deposit(self, c: Deposit) -> _Decision:
        account = limits.account_id("account", c.account)
        value = limits.amount("amount", c.amount)
        body = {"command": "deposit", "account": account, "amount": str(value)}
        return body, lambda em: em.emit(EventKind.DEPOSIT, account=account, amount=str(value))

    def _deposit_insurance(self, c: DepositInsurance) -> _Decision:
        value = limits.amount("amount", c.amount)
        body = {"command": "deposit_insurance", "amount": str(value)}
        return body, lambda em: em.emit(
            EventKind.DEPOSIT, account="insurance", wallet=INSURANCE, amount=str(value)
        )

    def _withdraw(self, c: Withdraw) -> _Decision:
        account = limits.account_id("account", c.account)
        value = limits.amount("amount", c.amount)
        body = {"command": "withdraw", "account": account, "amount": str(value)}

        def decide(em: Emitter) -> None:
            self._known(account)
            balance = self.state.balance(trader(account))
            available = balance
            if account in self.state.positions:
                risk = self.screen(em).book.account_risk(account)
                free = max_withdrawable(
                    self.account(account),
                    model_market(self.state, self.ctx),
                    available=available_of(risk.cross_equity, risk.cross_initial_margin),
                ).get(self.ctx.currency, 0.0)
                available = min(balance, to_money(free))
            if value > available:
                raise CrossMarginError(
                    "amount", f"{value} is above the available {available} {self.ctx.currency}"
                )
            em.emit(EventKind.WITHDRAWAL, account=account, amount=str(value))

        return body, decide

    def _trade(self, c: Trade) -> _Decision:
        account = limits.account_id("account", c.account)
        symbol = c.symbol
        instrument = self._instrument(symbol)
        q = limits.quantity("qty", c.qty)
        px = None if c.price is None else limits.price("price", c.price)
        lev = None if c.leverage is None else limits.leverage("leverage", c.leverage)
        if not isinstance(c.maker, bool):
            raise CrossMarginError("maker", f"must be true or false, got {c.maker!r}")
        try:
            mode = MarginMode(c.margin_mode)
        except ValueError:
            raise CrossMarginError("margin_mode", "must be 'cross' or 'isolated'") from None
        source = c.price_source
        if source is not None and (
            not isinstance(source, str) or not 0 < len(source) <= 200 or not source.isprintable()
        ):
            raise CrossMarginError("price_source", "must be 1-200 printable characters")
        body = {
            "command": "trade",
            "account": account,
            "symbol": symbol,
            "qty": str(q),
            "price": "" if px is None else str(px),
            "maker": str(c.maker),
            "mode": str(mode),
            "leverage": "" if lev is None else str(lev),
        }
        if source is not None:
            body["price_source"] = source
        rate = self.ctx.rules.maker_fee if c.maker else self.ctx.rules.taker_fee
        cs = Decimal(repr(instrument.contract_size))
        limit = math.inf if instrument.margin is None else instrument.margin.position_limit

        def decide(em: Emitter) -> None:
            self._known(account)
            mark = self.state.prices.get(symbol)
            fill = self._fill_price(symbol, px, mark, source)
            held = model_account(self.state, account, self.ctx.currency)
            order = Order(
                symbol,
                float(q),
                float(fill),
                mode,
                None if lev is None else float(lev),
                fee_rate=float(rate),
            )
            after = apply_fill(held, self._symbols, order)
            new = after.position(symbol)
            if new is not None and increases_risk(held.position(symbol), new):
                book = self.screen(em).book
                risk = book.trial(after, None if mark is not None else {symbol: float(fill)})
                rows = risk.positions
                k = int(np.flatnonzero(rows.instrument == book.params.symbols.index(symbol))[0])
                reason = refusal(
                    new,
                    OrderRisk(
                        float(rows.max_leverage[k]),
                        int(rows.bracket[k]),
                        float(rows.notional[k]),
                        limit,
                        instrument.settle,
                        risk.cross_equity,
                        risk.cross_initial_margin,
                        float(rows.equity[k]),
                        float(rows.initial_margin[k]),
                    ),
                    self.ctx.currency,
                )
                if reason is not None:
                    raise CrossMarginError("order", reason)
            old = self.state.positions.get(account, {}).get(symbol)
            margin_in = Decimal(0)
            if new is not None and new.is_isolated and new.isolated_margin is not None:
                kept = 0.0
                if old is not None and (old.qty > 0) == (new.qty > 0):
                    kept = float(self.state.balance(isolated(account, symbol)))
                margin_in = max(to_money(new.isolated_margin - kept), Decimal(0))
            fields = {"source": source} if source is not None else {}
            em.emit(
                EventKind.FILL,
                account=account,
                symbol=symbol,
                qty=str(q),
                price=str(fill),
                contract_size=str(cs),
                mode=old.mode if old is not None else str(mode),
                leverage="" if lev is None else str(lev),
                margin=str(margin_in),
                **fields,
            )
            fee = trade_fee(q, cs, fill, rate)
            if fee > 0:
                em.emit(EventKind.FEE, account=account, symbol=symbol, amount=str(fee))

        return body, decide

    def _fill_price(
        self, symbol: str, price: Decimal | None, mark: Decimal | None, source: str | None
    ) -> Decimal:
        """The fill price of a trade: ``price`` if it is within the venue's band around the
        mark or names its ``source``, else the mark."""
        if price is None:
            if mark is None:
                raise CrossMarginError("price", f"no mark price for {symbol} yet; give a price")
            return mark
        if source is None:
            band = self.ctx.rules.fill_band
            if mark is None:
                raise CrossMarginError(
                    "price",
                    f"no mark price for {symbol} to check {price} against; name its price_source",
                )
            if abs(price - mark) > band * mark:
                percent = f"{(band * 100).normalize():f}%"
                raise CrossMarginError(
                    "price",
                    f"{price} is more than {percent} from the mark {mark}; name its price_source "
                    "to fill there",
                )
        return price

    def _price(self, c: Price) -> _Decision:
        symbol = c.symbol
        if not isinstance(symbol, str) or symbol not in self.ctx.instruments:
            raise CrossMarginError("symbol", f"unknown instrument {symbol!r}")
        px = limits.price("price", c.price)
        body = {"command": "price", "symbol": symbol, "price": str(px)}

        def decide(em: Emitter) -> None:
            em.emit(EventKind.PRICE, symbol=symbol, price=str(px))
            liquidation_pass(em, self.screen(em))

        return body, decide

    def _fund(self, c: Fund) -> _Decision:
        symbol = c.symbol
        instrument = self._instrument(symbol)
        r = limits.rate("rate", c.rate, self.ctx.rules.max_funding_rate)
        body = {"command": "fund", "symbol": symbol, "rate": str(r)}
        cs = Decimal(repr(instrument.contract_size))

        def decide(em: Emitter) -> None:
            if symbol not in self.state.prices:
                raise CrossMarginError("symbol", f"no mark price for {symbol} yet")
            funding(em, symbol, r, cs)
            liquidation_pass(em, self.screen(em))

        return body, decide

    def _known(self, account: str) -> None:
        if not isinstance(account, str) or trader(account) not in self.state.balances:
            raise CrossMarginError("account", f"unknown account {account!r}")

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self.ctx.instruments.get(symbol) if isinstance(symbol, str) else None
        if instrument is None:
            raise CrossMarginError("symbol", f"unknown instrument {symbol!r}")
        if (
            not instrument.is_derivative
            or instrument.inverse
            or instrument.settle != self.ctx.currency
        ):
            raise CrossMarginError(
                "symbol",
                f"{symbol}: the ledger trades linear contracts settled in {self.ctx.currency}",
            )
        return instrument

    def screen(self, em: Emitter | None = None) -> Screen:
        """The traders' :class:`RiskBook` in step with the current state (with ``em``'s events,
        inside a command): built once, then ticked by new marks and laid out again for the
        traders that other events touched."""
        if em is not None:
            self._touch(em.written[self._seen :])
            self._seen = len(em.written)
        if self._screen is None:
            self._screen = Screen(self.state, self.ctx)
        else:
            self._screen.sync(self.state, self._dirty, self._wallets)
        self._dirty, self._wallets = set(), set()
        return self._screen

    def _touch(self, written: Sequence[tuple[Event, list[Posting]]]) -> None:
        layouts, wallets = touched(written)
        self._dirty |= layouts
        self._wallets |= wallets
        if self._changed is not None:
            self._changed |= layouts | wallets

    def take_changed(self) -> set[str] | None:
        """The traders whose money or positions changed (by this process's commands or by
        other writers' events caught up) since the last call; ``None`` when the state was
        reloaded meanwhile, so that any may have. Marks alone change no trader."""
        changed, self._changed = self._changed, set()
        return changed
