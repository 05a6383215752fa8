"""The ledger's commands: validate, decide events, write them durably, then apply.

Every command carries an idempotency key. A retried command (same key, same body) is applied
once and answers with the events it wrote the first time; the same key with a different body
is a :class:`CrossMarginError`. Bad input raises before anything is written or changed.

Risk checks cross into floats at one boundary: the state becomes a model ``Account``/``Market``
and :func:`crossmargin.orders.what_if` / :func:`crossmargin.orders.max_withdrawable` decide.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from crossmargin.book.riskbook import RiskBook
from crossmargin.health import AccountHealth, evaluate
from crossmargin.ledger.context import Context
from crossmargin.ledger.funding import funding
from crossmargin.ledger.journal import (
    INSURANCE,
    Emitter,
    Event,
    EventKind,
    State,
    apply,
    isolated,
    trader,
)
from crossmargin.ledger.liquidation import (
    Screen,
    liquidation_pass,
    model_account,
    model_market,
    touched,
)
from crossmargin.ledger.store import Store
from crossmargin.maths.money import money, to_money, trade_fee
from crossmargin.model import Account, CrossMarginError, Instrument, MarginMode, Order
from crossmargin.orders import max_withdrawable, what_if
from crossmargin.rules import load_rulebook
from crossmargin.rules.venue import load_venue

__all__ = ["Ledger", "Receipt", "to_decimal"]

Number = Decimal | int | float | str


@dataclass(frozen=True)
class Receipt:
    """An accepted command: its key, the events it wrote and whether this call was a retry."""

    key: str
    first_seq: int
    events: tuple[Event, ...]
    duplicate: bool


def to_decimal(path: str, value: Number) -> Decimal:
    """``value`` as an exact finite Decimal (floats by their shortest repr), in canonical form.

    Canonical: no exponent, no trailing zeros (``"5.0"`` and ``5`` both give ``5``), so equal
    amounts make equal command bodies and equal journal text.
    """
    if isinstance(value, bool):
        raise CrossMarginError(path, f"must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CrossMarginError(path, f"must be finite, got {value!r}")
        value = repr(value)
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise CrossMarginError(path, f"must be a number, got {value!r}") from None
    if not number.is_finite():
        raise CrossMarginError(path, f"must be finite, got {value!r}")
    return Decimal(format(number.normalize(), "f"))


def _positive(path: str, value: Number) -> Decimal:
    number = to_decimal(path, value)
    if number <= 0:
        raise CrossMarginError(path, f"must be > 0, got {value!r}")
    return number


def _money_amount(path: str, value: Number) -> Decimal:
    number = _positive(path, value)
    if money(number) != number:
        raise CrossMarginError(path, "at most 8 decimal places")
    return number


class Ledger:
    """A durable ledger over ``url`` (SQLite by default; ``postgresql+psycopg://`` works too).

    ``venue`` is a bundled liquidation rulebook (``binance``, ``hyperliquid``, ``dydx``) or the
    path of one (:func:`crossmargin.rules.venue.load_venue`). ``instruments`` are the
    tradable linear contracts settled in ``currency``; by default the instruments and currency
    of the venue's margin rulebook (``binance-usdm``, ``hyperliquid``, ``dydx-v4``), and with
    ``instruments`` given the currency defaults to that rulebook's too. A snapshot is written every
    ``snapshot_every`` events so opening does not replay the whole journal. One process writes
    a ledger at a time (a second writer's commands fail on the journal's primary keys).
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
    ) -> None:
        rules = load_venue(venue)
        try:
            margin = load_rulebook(rules.margin_rulebook)
        except CrossMarginError as error:
            raise CrossMarginError("venue.margin.rulebook", str(error)) from None
        found = instruments if instruments is not None else margin.instruments
        self.ctx = Context(dict(found), currency or margin.currency, rules)
        self.store = Store(url, schema)
        self.snapshot_every = snapshot_every
        self.state = self._load()
        self._screen: Screen | None = None
        self._dirty: set[str] = set()
        self._seen = 0

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _load(self) -> State:
        snap = self.store.snapshot()
        state = State() if snap is None else State.from_json(snap[1])
        for event in self.store.events(after=state.seq):
            apply(state, event)
        return state

    def replay(self, upto: int | None = None, *, from_snapshot: bool = False) -> State:
        """State after event ``upto`` (default: all), rebuilt from the journal alone."""
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

    # -- commands -----------------------------------------------------------------------

    def _known(self, account: str) -> None:
        if not isinstance(account, str) or trader(account) not in self.state.balances:
            raise CrossMarginError("account", f"unknown account {account!r}")

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self.ctx.instruments.get(symbol)
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

    def _run(
        self, key: str, body: Mapping[str, str], decide: Callable[[Emitter], object]
    ) -> Receipt:
        if not isinstance(key, str) or not key or len(key) > 200:
            raise CrossMarginError("key", "idempotency key must be a string of 1-200 characters")
        digest = hashlib.sha256(
            json.dumps(dict(body), sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        stored = self.store.command(key)
        if stored is not None:
            if stored.digest != digest:
                raise CrossMarginError("key", f"idempotency key {key!r} reused with another body")
            again = tuple(self.store.events(stored.first_seq - 1, stored.last_seq))
            return Receipt(key, stored.first_seq, again, True)
        first = self.state.seq + 1
        em = Emitter(self.state)
        self._seen = 0
        try:
            decide(em)
            self.store.append(key, digest, first, em.written)
        except BaseException:
            if em.written:
                self.state = self._load()
                self._screen = None
                self._dirty = set()
            raise
        self._dirty |= touched(em.written[self._seen :])
        if self.state.seq // self.snapshot_every > (first - 1) // self.snapshot_every:
            self.snapshot()
        return Receipt(key, first, tuple(e for e, _ in em.written), False)

    def deposit(self, key: str, account: str, amount: Number) -> Receipt:
        """Credit ``amount`` (settle currency, > 0) to ``account``; opens it on first use."""
        if not isinstance(account, str) or not account.strip() or ":" in account:
            raise CrossMarginError(
                "account", f"must be a non-empty id without ':', got {account!r}"
            )
        value = _money_amount("amount", amount)
        body = {"command": "deposit", "account": account, "amount": str(value)}
        return self._run(
            key, body, lambda em: em.emit(EventKind.DEPOSIT, account=account, amount=str(value))
        )

    def deposit_insurance(self, key: str, amount: Number) -> Receipt:
        """Pay ``amount`` from outside into the insurance fund."""
        value = _money_amount("amount", amount)
        body = {"command": "deposit_insurance", "amount": str(value)}
        return self._run(
            key,
            body,
            lambda em: em.emit(
                EventKind.DEPOSIT, account="insurance", wallet=INSURANCE, amount=str(value)
            ),
        )

    def withdraw(self, key: str, account: str, amount: Number) -> Receipt:
        """Pay ``amount`` out of ``account``, at most what keeps initial margin covered."""
        value = _money_amount("amount", amount)
        body = {"command": "withdraw", "account": account, "amount": str(value)}

        def decide(em: Emitter) -> None:
            self._known(account)
            balance = self.state.balance(trader(account))
            if account in self.state.positions:
                market = model_market(self.state, self.ctx)
                free = max_withdrawable(self.account(account), market).get(self.ctx.currency, 0.0)
                available = min(balance, to_money(free))
            else:
                available = balance
            if value > available:
                raise CrossMarginError(
                    "amount", f"{value} is above the available {available} {self.ctx.currency}"
                )
            em.emit(EventKind.WITHDRAWAL, account=account, amount=str(value))

        return self._run(key, body, decide)

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
    ) -> Receipt:
        """Fill ``qty`` contracts (> 0 buys) at ``price`` (default: the mark) with the fee.

        Rejected (CrossMarginError, nothing written) if it would breach initial margin or the
        bracket's leverage cap, as :func:`crossmargin.orders.what_if` judges.
        """
        q = to_decimal("qty", qty)
        if q == 0:
            raise CrossMarginError("qty", "must not be 0")
        px = None if price is None else _positive("price", price)
        lev = None if leverage is None else _positive("leverage", leverage)
        try:
            mode = MarginMode(margin_mode)
        except ValueError:
            raise CrossMarginError("margin_mode", "must be 'cross' or 'isolated'") from None
        body = {
            "command": "trade",
            "account": account,
            "symbol": symbol,
            "qty": str(q),
            "price": "" if px is None else str(px),
            "maker": str(maker),
            "mode": str(mode),
            "leverage": "" if lev is None else str(lev),
        }

        def decide(em: Emitter) -> None:
            self._known(account)
            instrument = self._instrument(symbol)
            fill = px if px is not None else self.state.prices.get(symbol)
            if fill is None:
                raise CrossMarginError("price", f"no mark price for {symbol} yet; give a price")
            rate = self.ctx.rules.maker_fee if maker else self.ctx.rules.taker_fee
            market = model_market(
                self.state, self.ctx, {symbol: self.state.prices.get(symbol, fill)}
            )
            old = self.state.positions.get(account, {}).get(symbol)
            order = Order(
                symbol,
                float(q),
                float(fill),
                mode,
                None if lev is None else float(lev),
                fee_rate=float(rate),
            )
            verdict = what_if(model_account(self.state, account, self.ctx.currency), market, order)
            if not verdict.accepted:
                raise CrossMarginError("order", verdict.reason or "rejected")
            new = verdict.account.position(symbol)
            margin_in = Decimal(0)
            if new is not None and new.is_isolated and new.isolated_margin is not None:
                kept = 0.0
                if old is not None and (old.qty > 0) == (new.qty > 0):
                    kept = float(self.state.balance(isolated(account, symbol)))
                margin_in = max(to_money(new.isolated_margin - kept), Decimal(0))
            cs = Decimal(repr(instrument.contract_size))
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
            )
            fee = trade_fee(q, cs, fill, rate)
            if fee > 0:
                em.emit(EventKind.FEE, account=account, symbol=symbol, amount=str(fee))

        return self._run(key, body, decide)

    def price(self, key: str, symbol: str, price: Number) -> Receipt:
        """Record a mark price, then run a liquidation pass at it."""
        px = _positive("price", price)
        body = {"command": "price", "symbol": symbol, "price": str(px)}

        def decide(em: Emitter) -> None:
            if symbol not in self.ctx.instruments:
                raise CrossMarginError("symbol", f"unknown instrument {symbol!r}")
            em.emit(EventKind.PRICE, symbol=symbol, price=str(px))
            liquidation_pass(em, self.screen(em))

        return self._run(key, body, decide)

    def fund(self, key: str, symbol: str, rate: Number) -> Receipt:
        """Settle one funding interval of ``symbol`` at ``rate`` (fraction) and its mark."""
        r = to_decimal("rate", rate)
        body = {"command": "fund", "symbol": symbol, "rate": str(r)}

        def decide(em: Emitter) -> None:
            instrument = self._instrument(symbol)
            if symbol not in self.state.prices:
                raise CrossMarginError("symbol", f"no mark price for {symbol} yet")
            funding(em, symbol, r, Decimal(repr(instrument.contract_size)))
            liquidation_pass(em, self.screen(em))

        return self._run(key, body, decide)

    def screen(self, em: Emitter | None = None) -> Screen:
        """The traders' :class:`RiskBook` in step with the current state (with ``em``'s events,
        inside a command): built once, then ticked by new marks and laid out again for the
        traders that other events touched."""
        if em is not None:
            self._dirty |= touched(em.written[self._seen :])
            self._seen = len(em.written)
        if self._screen is None:
            self._screen = Screen(self.state, self.ctx)
        else:
            self._screen.sync(self.state, self._dirty)
        self._dirty = set()
        return self._screen
