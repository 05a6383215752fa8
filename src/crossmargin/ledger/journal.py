"""Journal events and the state derived from them: exact amounts, double-entry postings.

Every money movement is a :class:`Posting` from one ledger account to another, so the sum over all
accounts never changes. Deposits and withdrawals move money between ``capital`` (the outside
world) and a trader, hence ``sum(balances except capital) == deposited - withdrawn`` exactly.

Ledger accounts: ``trader:<id>`` (cross wallet), ``isolated:<id>:<symbol>`` (isolated margin),
``insurance`` (insurance fund), ``fees`` (trading fees), ``external`` (the outside market: fills,
funding and ADL settle through it), ``bad_debt`` (losses nobody could cover: it goes negative and
the bankrupt trader back to zero) and ``capital``. Amounts are in the settle currency with 8
decimal places; quantities and prices are exact decimals as given. Signed quantities: > 0 long.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from crossmargin.maths.money import average_entry, realized_pnl, released_margin

__all__ = [
    "BAD_DEBT",
    "CAPITAL",
    "EXTERNAL",
    "FEES",
    "INSURANCE",
    "Emitter",
    "Event",
    "EventKind",
    "Holding",
    "Posting",
    "State",
    "apply",
    "isolated",
    "trader",
]

BAD_DEBT = "bad_debt"
CAPITAL = "capital"
EXTERNAL = "external"
INSURANCE = "insurance"
FEES = "fees"


def trader(account: str) -> str:
    """Ledger account of a trader's cross wallet."""
    return f"trader:{account}"


def isolated(account: str, symbol: str) -> str:
    """Ledger account holding the isolated margin of one position."""
    return f"isolated:{account}:{symbol}"


class EventKind(StrEnum):
    """What happened. Each kind has a fixed body (see :func:`apply`)."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    FILL = "fill"
    FEE = "fee"
    FUNDING = "funding"
    LIQUIDATION_FILL = "liquidation_fill"
    INSURANCE_TRANSFER = "insurance_transfer"
    ADL_FILL = "adl_fill"
    PRICE = "price"
    BAD_DEBT = "bad_debt"


@dataclass(frozen=True)
class Event:
    """One journal entry: a kind and a flat body of strings (decimals written exactly)."""

    kind: EventKind
    body: Mapping[str, str]

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the stored form."""
        return json.dumps(dict(self.body), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, kind: str, text: str) -> Event:
        """The event stored as ``kind`` and :meth:`to_json` text."""
        return cls(EventKind(kind), MappingProxyType(json.loads(text)))


@dataclass(frozen=True)
class Posting:
    """``amount`` (> 0) moves from ledger account ``source`` to ``target``."""

    source: str
    target: str
    amount: Decimal


@dataclass
class Holding:
    """A net position: signed ``qty``, average ``entry`` price, margin mode and leverage."""

    qty: Decimal
    entry: Decimal
    mode: str = "cross"
    leverage: Decimal | None = None


@dataclass
class State:
    """Everything the journal implies up to event ``seq``.

    ``version`` changes with every event but price updates, so a cache of the book's arrays can
    survive a run of prices. ``bad_debt`` sums losses nobody could cover (fund and ADL exhausted).
    """

    balances: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, dict[str, Holding]] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    deposited: Decimal = Decimal(0)
    withdrawn: Decimal = Decimal(0)
    bad_debt: Decimal = Decimal(0)
    seq: int = 0
    version: int = 0

    def balance(self, account: str) -> Decimal:
        """Balance of a ledger account (0 if it never moved)."""
        return self.balances.get(account, Decimal(0))

    def imbalance(self) -> Decimal:
        """``deposited - withdrawn - sum over every account but capital``: always exactly 0."""
        total = sum((v for k, v in self.balances.items() if k != CAPITAL), start=Decimal(0))
        return self.deposited - self.withdrawn - total

    def to_json(self) -> str:
        """Exact text form, for snapshots and bit-for-bit comparison."""
        return json.dumps(
            {
                "balances": {k: str(v) for k, v in sorted(self.balances.items())},
                "positions": {
                    t: {
                        s: [
                            str(h.qty),
                            str(h.entry),
                            h.mode,
                            None if h.leverage is None else str(h.leverage),
                        ]
                        for s, h in sorted(holdings.items())
                    }
                    for t, holdings in sorted(self.positions.items())
                },
                "prices": {k: str(v) for k, v in sorted(self.prices.items())},
                "deposited": str(self.deposited),
                "withdrawn": str(self.withdrawn),
                "bad_debt": str(self.bad_debt),
                "seq": self.seq,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> State:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        positions = {
            t: {
                s: Holding(Decimal(q), Decimal(e), m, None if lev is None else Decimal(lev))
                for s, (q, e, m, lev) in holdings.items()
            }
            for t, holdings in raw["positions"].items()
        }
        return cls(
            balances={k: Decimal(v) for k, v in raw["balances"].items()},
            positions=positions,
            prices={k: Decimal(v) for k, v in raw["prices"].items()},
            deposited=Decimal(raw["deposited"]),
            withdrawn=Decimal(raw["withdrawn"]),
            bad_debt=Decimal(raw["bad_debt"]),
            seq=raw["seq"],
        )


def _move(state: State, out: list[Posting], source: str, target: str, amount: Decimal) -> None:
    """Post ``amount`` from ``source`` to ``target`` (a negative amount flows the other way)."""
    if amount == 0:
        return
    if amount < 0:
        source, target, amount = target, source, -amount
    state.balances[source] = state.balance(source) - amount
    state.balances[target] = state.balance(target) + amount
    out.append(Posting(source, target, amount))


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def _fill(state: State, out: list[Posting], body: Mapping[str, str]) -> None:
    """A trade against the outside market: average entry, realised PnL, isolated margin.

    Body: account, symbol, qty (signed contracts), price, contract_size, mode, leverage ("" for
    none), margin (isolated margin moved in from the wallet for the opened part).
    """
    account, symbol = body["account"], body["symbol"]
    qty, price = Decimal(body["qty"]), Decimal(body["price"])
    cs = Decimal(body["contract_size"])
    wallet, bucket = trader(account), isolated(account, symbol)
    holdings = state.positions.setdefault(account, {})
    old = holdings.get(symbol)
    lev = Decimal(body["leverage"]) if body.get("leverage") else None
    margin_in = Decimal(body.get("margin", "0"))
    mode = body.get("mode", "cross")
    if old is None or _sign(old.qty) == _sign(qty):
        if old is None:
            holdings[symbol] = Holding(qty, price, mode, lev)
        else:
            old.qty, old.entry = old.qty + qty, average_entry(old.qty, old.entry, qty, price)
            old.leverage = lev if lev is not None else old.leverage
        if holdings[symbol].mode == "isolated":
            _move(state, out, wallet, bucket, margin_in)
        return
    realised = realized_pnl(old.qty, cs, old.entry, qty, price)
    left = old.qty + qty
    if old.mode == "isolated":
        _move(state, out, EXTERNAL, bucket, realised)
        margin = state.balance(bucket)
        release = margin if _sign(left) != _sign(old.qty) else released_margin(margin, old.qty, qty)
        _move(state, out, bucket, wallet, max(release, Decimal(0)))
    else:
        _move(state, out, EXTERNAL, wallet, realised)
    if left == 0:
        del holdings[symbol]
    elif _sign(left) == _sign(old.qty):
        old.qty = left
    else:
        holdings[symbol] = Holding(left, price, old.mode, lev if lev is not None else old.leverage)
        if old.mode == "isolated":
            _move(state, out, wallet, bucket, margin_in)
    if not holdings:
        del state.positions[account]


def apply(state: State, event: Event) -> list[Posting]:
    """Apply ``event`` to ``state`` in place; return the postings it made (sum zero)."""
    out: list[Posting] = []
    b = event.body
    kind = event.kind
    if kind == EventKind.PRICE:
        state.prices[b["symbol"]] = Decimal(b["price"])
    else:
        state.version += 1
    if kind == EventKind.DEPOSIT:
        amount = Decimal(b["amount"])
        _move(state, out, CAPITAL, b.get("wallet", trader(b["account"])), amount)
        state.deposited += amount
    elif kind == EventKind.WITHDRAWAL:
        amount = Decimal(b["amount"])
        _move(state, out, trader(b["account"]), CAPITAL, amount)
        state.withdrawn += amount
    elif kind in (EventKind.FILL, EventKind.LIQUIDATION_FILL):
        _fill(state, out, b)
    elif kind == EventKind.ADL_FILL:
        _fill(state, out, b)
        _move(state, out, EXTERNAL, b["beneficiary"], Decimal(b["haircut"]))
    elif kind == EventKind.FEE:
        _move(state, out, trader(b["account"]), FEES, Decimal(b["amount"]))
    elif kind == EventKind.FUNDING:
        _move(state, out, b["payer"], EXTERNAL, Decimal(b["amount"]))
    elif kind == EventKind.INSURANCE_TRANSFER:
        _move(state, out, b["wallet"], INSURANCE, Decimal(b["amount"]))
    elif kind == EventKind.BAD_DEBT:
        amount = Decimal(b["amount"])
        _move(state, out, BAD_DEBT, b["wallet"], amount)
        state.bad_debt += amount
    state.seq += 1
    return out


class Emitter:
    """Applies events to a state as they are decided, keeping them with their postings."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.written: list[tuple[Event, list[Posting]]] = []

    def emit(self, kind: EventKind, **body: str) -> Event:
        """Record and apply one event."""
        event = Event(kind, MappingProxyType(body))
        self.written.append((event, apply(self.state, event)))
        return event
