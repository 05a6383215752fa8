"""The exchange-scale risk book: every account's margin held as columns (struct of arrays).

Positions live in one arena of columns (account, quantity, entry, leverage, isolated margin),
cut into buckets by (block of accounts, instrument, margin mode); the instrument and the mode
of a position are its bucket's. Each account keeps a one-cache-line record of the sums of its
positions' contributions in the account currency (equity, IM, MM; cross and isolated apart)
and its status; equity, margin ratio and the other figures are derived from the record when
asked for. A full re-margin adds up one account block at a time (see :mod:`.kernels`); a price
tick on an instrument walks only that instrument's buckets and moves the sums of exactly its
holders by the change, so its cost follows the holders, not the book (rounding drift is a few
ulps per tick; :meth:`RiskBook.remargin` recomputes every sum from scratch). The figures equal
:func:`crossmargin.health.evaluate` up to summation order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossmargin.book.kernels import (
    COLL,
    EQ_C,
    FIELDS,
    MAX_INSTRUMENTS,
    MM_C,
    account_figures,
    apply_slot,
    finish_accounts,
    first_negative,
    remargin_blocks,
    surplus_grid,
    tick_instruments,
)
from crossmargin.maths.collateral import collateral_units
from crossmargin.maths.liquidation import down_grid, liquidation_price, up_grid
from crossmargin.maths.pnl import unrealized_pnl
from crossmargin.maths.tiers import MarginArrays, position_margins
from crossmargin.model import Account, CrossMarginError, MarginMode, Market, Position

__all__ = [
    "BookColumns",
    "BookParams",
    "CrashDistances",
    "Liquidations",
    "RiskBook",
    "TickResult",
    "Valuation",
]

Float = NDArray[np.float64]
Int = NDArray[np.intp]
I32 = NDArray[np.int32]
I8 = NDArray[np.int8]
Bool = NDArray[np.bool_]

_SLACK = 16
_MIN_ROOM = 4


@dataclass(frozen=True)
class BookParams:
    """Compiled market: one row per derivative instrument, one column per asset.

    ``asset_price`` is in a common numeraire (NaN where unpriced); ``mark`` is in each
    instrument's quote (NaN where unpriced). Plain arrays and tuples, so it pickles.
    """

    symbols: tuple[str, ...]
    contract_size: Float
    inverse: Bool
    settle: Int
    schedule: MarginArrays
    mark: Float
    assets: tuple[str, ...]
    asset_price: Float
    stable: Bool
    up_to: Float
    ratios: Float
    currency: int
    margin_call_ratio: float

    @classmethod
    def from_market(cls, market: Market, assets: Iterable[str] = ()) -> BookParams:
        """Every derivative of ``market``; assets: the currency, settle assets and ``assets``."""
        derivs = [i for i in market.instruments.values() if i.is_derivative]
        names = [market.currency, *(i.settle for i in derivs), *assets]
        asset_names = tuple(dict.fromkeys(names))
        index = {a: k for k, a in enumerate(asset_names)}
        rules = [market.collateral_rule(a) for a in asset_names]
        t = max(len(r.ratios) for r in rules)
        up_to = np.full((len(asset_names), t), np.inf)
        ratios = np.zeros((len(asset_names), t))
        for a, rule in enumerate(rules):
            up_to[a, : len(rule.up_to)] = rule.up_to
            ratios[a, : len(rule.ratios)] = rule.ratios
        raw = [market.prices.get(a, 1.0 if a == market.currency else math.nan) for a in asset_names]
        schedules = [i.margin for i in derivs if i.margin is not None]
        return cls(
            symbols=tuple(i.symbol for i in derivs),
            contract_size=np.array([i.contract_size for i in derivs], dtype=np.float64),
            inverse=np.array([i.inverse for i in derivs], dtype=bool),
            settle=np.array([index[i.settle] for i in derivs], dtype=np.intp),
            schedule=MarginArrays.from_schedules(schedules),
            mark=np.array([market.prices.get(i.symbol, math.nan) for i in derivs]),
            assets=asset_names,
            asset_price=np.array(raw, dtype=np.float64),
            stable=np.array([r.stable for r in rules], dtype=bool),
            up_to=up_to,
            ratios=ratios,
            currency=0,
            margin_call_ratio=market.margin_call_ratio,
        )

    def to_currency(self) -> Float:
        """Units of the account currency one unit of each asset is worth (NaN where unpriced)."""
        px: Float = self.asset_price / self.asset_price[self.currency]
        return px


@dataclass(frozen=True)
class BookColumns:
    """Accounts and positions as columns: the input of a :class:`RiskBook`, and a snapshot.

    ``balances`` is (accounts, assets) in asset units; per position: ``account`` and
    ``instrument`` indices, signed ``qty`` in contracts, ``entry`` price, ``isolated`` flag,
    ``isolated_margin`` (settle asset, 0 for cross) and ``leverage`` (NaN: bracket maximum).
    """

    account_ids: tuple[str, ...]
    balances: Float
    account: I32
    instrument: I32
    qty: Float
    entry: Float
    isolated: Bool
    isolated_margin: Float
    leverage: Float

    @classmethod
    def from_accounts(cls, accounts: Sequence[Account], params: BookParams) -> BookColumns:
        """Columns of ``accounts``; spot holdings must be given as balances."""
        symbol_index = {s: k for k, s in enumerate(params.symbols)}
        asset_index = {a: k for k, a in enumerate(params.assets)}
        balances = np.zeros((len(accounts), len(params.assets)))
        rows: list[tuple[int, int, Position]] = []
        for a, account in enumerate(accounts):
            for asset, amount in account.balances.items():
                if asset not in asset_index:
                    raise CrossMarginError(f"accounts[{a}].balances.{asset}", "unknown asset")
                balances[a, asset_index[asset]] = amount
            for p, position in enumerate(account.positions):
                if position.symbol not in symbol_index:
                    raise CrossMarginError(
                        f"accounts[{a}].positions[{p}].symbol",
                        f"not a derivative of the market: {position.symbol!r}",
                    )
                rows.append((a, symbol_index[position.symbol], position))
        return cls(
            account_ids=tuple(a.id for a in accounts),
            balances=balances,
            account=np.array([r[0] for r in rows], dtype=np.int32),
            instrument=np.array([r[1] for r in rows], dtype=np.int32),
            qty=np.array([r[2].qty for r in rows], dtype=np.float64),
            entry=np.array([r[2].entry_price for r in rows], dtype=np.float64),
            isolated=np.array([r[2].is_isolated for r in rows], dtype=bool),
            isolated_margin=np.array([r[2].isolated_margin or 0.0 for r in rows]),
            leverage=np.array([math.nan if r[2].leverage is None else r[2].leverage for r in rows]),
        )

    def shard(self, lo: int, hi: int) -> BookColumns:
        """Accounts ``lo`` to ``hi`` (exclusive) with their positions, re-indexed from 0."""
        keep = (self.account >= lo) & (self.account < hi)
        return BookColumns(
            self.account_ids[lo:hi],
            self.balances[lo:hi],
            (self.account[keep] - lo).astype(np.int32),
            self.instrument[keep],
            self.qty[keep],
            self.entry[keep],
            self.isolated[keep],
            self.isolated_margin[keep],
            self.leverage[keep],
        )

    def to_accounts(self, params: BookParams, rows: ArrayLike) -> list[Account]:
        """``Account`` objects for account indices ``rows`` (for checks against ``evaluate``)."""
        picked = np.asarray(rows, dtype=np.intp)
        order = np.argsort(self.account, kind="stable")
        starts = np.searchsorted(self.account[order], picked)
        ends = np.searchsorted(self.account[order], picked, side="right")
        accounts = []
        for a, lo, hi in zip(picked.tolist(), starts.tolist(), ends.tolist(), strict=True):
            positions = []
            for k in order[lo:hi].tolist():
                iso = bool(self.isolated[k])
                lev = float(self.leverage[k])
                positions.append(
                    Position(
                        params.symbols[int(self.instrument[k])],
                        float(self.qty[k]),
                        float(self.entry[k]),
                        MarginMode.ISOLATED if iso else MarginMode.CROSS,
                        float(self.isolated_margin[k]) if iso else None,
                        None if math.isnan(lev) else lev,
                    )
                )
            held = {
                params.assets[j]: float(v)
                for j, v in enumerate(self.balances[a].tolist())
                if v != 0.0
            }
            accounts.append(Account(self.account_ids[a], held, positions))
        return accounts


@dataclass(frozen=True)
class Valuation:
    """Per-account figures in the account currency (arrays over accounts).

    ``status`` holds :class:`crossmargin.maths.status.Status` codes; ``available`` is cross
    equity above cross IM, floored at 0.
    """

    equity: Float
    initial_margin: Float
    maintenance_margin: Float
    margin_ratio: Float
    available: Float
    status: I8


class TickResult:
    """What a tick did: ``changed``, the accounts whose status changed (indices, sorted);
    ``recomputed``, the positions re-margined (the holders of the instruments ticked, or every
    position); and ``values``, every account's figures after the tick.

    ``values`` is derived from the book on first access (a pass over the accounts, which the
    tick itself does not pay), so read it before the book changes again.
    """

    __slots__ = ("_book", "_values", "changed", "recomputed")

    def __init__(self, book: RiskBook, changed: Int, recomputed: int) -> None:
        self._book = book
        self._values: Valuation | None = None
        self.changed = changed
        self.recomputed = recomputed

    @property
    def values(self) -> Valuation:
        """Every account's figures after the tick."""
        if self._values is None:
            self._values = self._book.values()
        return self._values


@dataclass(frozen=True)
class Liquidations:
    """Liquidation price of every position (NaN where none), with its account and instrument."""

    account: I32
    instrument: I32
    price: Float


@dataclass(frozen=True)
class CrashDistances:
    """Per account (``account``: sorted indices): signed smallest uniform moves down (<= 0) and
    up (>= 0) that make it liquidatable (NaN where none in range), the smaller magnitude of the
    two in ``distance``."""

    account: Int
    down: Float
    up: Float
    distance: Float


def _validate(columns: BookColumns, accounts: int, instruments: int, assets: int) -> None:
    """Bad columns raise CrossMarginError naming the column and the first bad row."""
    p = len(columns.qty)
    if columns.balances.shape != (accounts, assets):
        raise CrossMarginError("balances", f"need shape ({accounts}, {assets})")
    if not np.isfinite(columns.balances).all():
        raise CrossMarginError("balances", "must be finite")
    fields = ("account", "instrument", "entry", "isolated", "isolated_margin", "leverage")
    for name in fields:
        if len(getattr(columns, name)) != p:
            raise CrossMarginError(name, f"need {p} rows like qty")
    lev = columns.leverage
    bad = {
        "account": (columns.account < 0) | (columns.account >= accounts),
        "instrument": (columns.instrument < 0) | (columns.instrument >= instruments),
        "qty": ~np.isfinite(columns.qty) | (columns.qty == 0),
        "entry": ~(np.isfinite(columns.entry) & (columns.entry > 0)),
        "isolated_margin": ~(np.isfinite(columns.isolated_margin) & (columns.isolated_margin >= 0)),
        "leverage": ~(np.isnan(lev) | (np.isfinite(lev) & (lev >= 1))),
    }
    for name, mask in bad.items():
        if mask.any():
            raise CrossMarginError(f"{name}[{int(np.argmax(mask))}]", "out of range")
    key = np.sort(columns.account.astype(np.int64) * max(instruments, 1) + columns.instrument)
    if (np.diff(key) == 0).any():
        raise CrossMarginError("instrument", "second position of an account in one instrument")


def _grow(array: NDArray[np.generic], size: int) -> NDArray[np.generic]:
    out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out


def _capacity(counts: Int) -> Int:
    """Slots given to buckets of ``counts`` positions: room to grow without moving."""
    caps: Int = counts + counts // _SLACK + (counts > 0) * _MIN_ROOM
    return caps


class RiskBook:
    """Margin of many accounts, kept current under price ticks and position changes."""

    BLOCK = 2048
    """Accounts per block: the records of one block (240 KiB) stay in a core's L2 cache while
    a full re-margin adds up all of that block's buckets."""

    _SLOTS = ("_owner", "_qty", "_entry", "_lev", "_imargin", "_hint")
    _ACCOUNTS = ("_bal", "_acc", "_status")

    def __init__(self, params: BookParams, columns: BookColumns) -> None:
        self.params = params
        self._symbols = {s: k for k, s in enumerate(params.symbols)}
        self._asset_index = {a: k for k, a in enumerate(params.assets)}
        self._rows = [params.schedule.take(np.intp(i)) for i in range(len(params.symbols))]
        self._n_inst = len(params.symbols)
        if self._n_inst > MAX_INSTRUMENTS:
            raise CrossMarginError("symbols", f"at most {MAX_INSTRUMENTS} instruments")
        self._mark = params.mark.copy()
        self._asset_price = params.asset_price.copy()
        self._factor = np.zeros(self._n_inst)
        self._ids = list(columns.account_ids)
        self._id_index = {a: k for k, a in enumerate(self._ids)}
        if len(self._id_index) != len(self._ids):
            raise CrossMarginError("accounts", "account ids must be unique")
        n_acc = len(self._ids)
        _validate(columns, n_acc, self._n_inst, len(params.assets))
        schedule = params.schedule
        self._market = (
            self._mark,
            self._factor,
            params.contract_size,
            params.inverse,
            schedule.isolated_at_entry,
            *schedule.flat_rows(),
        )
        key = self._bucket(columns.account.astype(np.intp), columns.instrument, columns.isolated)
        order = np.lexsort((columns.account, key))
        counts = np.bincount(key, minlength=self._buckets_for(n_acc)).astype(np.intp)
        caps = _capacity(counts)
        self._start = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.intp)
        self._count = counts
        self._cap = caps
        self._used = int(caps.sum())
        self._garbage = 0
        slots = np.repeat(self._start - (np.cumsum(counts) - counts), counts) + np.arange(
            len(order)
        )
        size = self._used
        self._owner: I32 = np.zeros(size, dtype=np.int32)
        self._qty: Float = np.zeros(size)
        self._entry: Float = np.ones(size)
        self._lev: Float = np.full(size, np.nan)
        self._imargin: Float = np.zeros(size)
        self._hint: NDArray[np.uint8] = np.zeros(size, dtype=np.uint8)
        self._owner[slots] = columns.account[order]
        self._qty[slots] = columns.qty[order]
        self._entry[slots] = columns.entry[order]
        self._lev[slots] = columns.leverage[order]
        self._imargin[slots] = columns.isolated_margin[order]
        self._holders = np.bincount(columns.instrument, minlength=self._n_inst).astype(np.intp)
        self._bal: Float = np.array(columns.balances, dtype=np.float64).reshape(
            n_acc, len(params.assets)
        )
        self._acc: Float = np.zeros((n_acc, FIELDS))
        self._status: I8 = np.zeros(n_acc, dtype=np.int8)
        self._check_priced(np.flatnonzero(self._holders > 0))
        held = np.flatnonzero((self._bal != 0).any(axis=0))
        self._check_assets(held)
        self._revalue_collateral()
        self.remargin()

    @classmethod
    def from_accounts(cls, accounts: Sequence[Account], market: Market) -> RiskBook:
        """A book of ``accounts`` margined against ``market``."""
        assets = [a for account in accounts for a in account.balances]
        params = BookParams.from_market(market, assets)
        return cls(params, BookColumns.from_accounts(accounts, params))

    # ------------------------------------------------------------------ inspection

    @property
    def accounts(self) -> int:
        """Number of accounts."""
        return len(self._ids)

    @property
    def positions(self) -> int:
        """Number of open positions."""
        return int(self._holders.sum())

    @property
    def account_ids(self) -> list[str]:
        """Account ids by index (a copy)."""
        return list(self._ids)

    def index_of(self, account_id: str) -> int:
        """Index of ``account_id``; error if unknown."""
        try:
            return self._id_index[account_id]
        except KeyError:
            raise CrossMarginError("account", f"unknown account {account_id!r}") from None

    @property
    def nbytes(self) -> int:
        """Bytes held by the book's columns: slots, accounts and the bucket directory."""
        names = (*self._SLOTS, *self._ACCOUNTS, "_start", "_count", "_cap")
        return int(sum(getattr(self, n).nbytes for n in names))

    def holders(self, symbol: str) -> int:
        """Number of positions in ``symbol``."""
        return int(self._holders[self._instrument(symbol, "symbol")])

    def values(self) -> Valuation:
        """Current figures of every account, derived from the account records (new arrays)."""
        n = self.accounts
        out = np.empty((5, n))
        account_figures(self._acc[:n], out)
        equity, initial, maintenance, ratio, available = out
        return Valuation(equity, initial, maintenance, ratio, available, self._status[:n].copy())

    def columns(self) -> BookColumns:
        """A compact snapshot of the book's accounts and positions."""
        slots, inst, iso = self._live()
        return BookColumns(
            tuple(self._ids),
            self._bal[: self.accounts].copy(),
            self._owner[slots],
            inst.astype(np.int32),
            self._qty[slots],
            self._entry[slots],
            iso,
            self._imargin[slots],
            self._lev[slots],
        )

    def current_params(self) -> BookParams:
        """The book's parameters at its current prices."""
        return replace(self.params, mark=self._mark.copy(), asset_price=self._asset_price.copy())

    # ------------------------------------------------------------------ prices

    def apply_prices(self, prices: Mapping[str, float]) -> TickResult:
        """Set marks (instrument symbols) and asset prices; re-margin the accounts affected.

        Raises CrossMarginError (``prices.SYMBOL``) before changing anything on an unknown
        name or a price that is not a finite positive number.
        """
        marks, assets = self._parse_prices(prices)
        if assets:
            for k, price in assets.items():
                self._asset_price[k] = price
            for i, price in marks.items():
                self._mark[i] = price
            before = self._status[: self.accounts].copy()
            self._revalue_collateral()
            self.remargin()
            changed = np.flatnonzero(before != self._status[: self.accounts])
            return TickResult(self, changed, self.positions)
        ticked = np.array([i for i in marks if self._holders[i]], dtype=np.intp)
        old = self._mark[ticked].copy()
        for i, price in marks.items():
            self._mark[i] = price
        if not ticked.size:
            return TickResult(self, np.zeros(0, dtype=np.intp), 0)
        holders = int(self._holders[ticked].sum())
        changes = np.empty(2 * holders, dtype=np.intp)
        count = tick_instruments(ticked, old, self.BLOCK, self._n_inst, *self._state(), changes)
        pairs = changes[: 2 * count].reshape(count, 2)
        accounts, first = np.unique(pairs[:, 0], return_index=True)
        moved = accounts[self._status[accounts] != pairs[first, 1]]
        return TickResult(self, moved, holders)

    def remargin(self) -> None:
        """Recompute every position's contribution and every account's sums and status from
        scratch at the current prices (:meth:`values` derives the figures).

        Collateral values are kept current by balance and asset-price changes, so this pass
        reads only the position columns and the account records.
        """
        remargin_blocks(self.BLOCK, self._n_inst, *self._state())

    def value_at(self, prices: Mapping[str, float]) -> Valuation:
        """Figures of every account at ``prices`` (merged over the current ones), leaving the
        book unchanged: the stress-test valuation."""
        marks, assets = self._parse_prices(prices)
        names = ("_mark", "_asset_price", "_factor", "_acc", "_status")
        saved = [getattr(self, n).copy() for n in names]
        try:
            for i, price in marks.items():
                self._mark[i] = price
            for k, price in assets.items():
                self._asset_price[k] = price
            if assets:
                self._revalue_collateral()
            self.remargin()
            return self.values()
        finally:
            for name, array in zip(names, saved, strict=True):
                getattr(self, name)[...] = array

    def _parse_prices(
        self, prices: Mapping[str, float]
    ) -> tuple[dict[int, float], dict[int, float]]:
        marks: dict[int, float] = {}
        assets: dict[int, float] = {}
        for name, value in prices.items():
            price = float(value)
            if not (math.isfinite(price) and price > 0.0):
                raise CrossMarginError(f"prices.{name}", f"must be a positive number, got {value}")
            if name in self._symbols:
                marks[self._symbols[name]] = price
            elif name in self._asset_index:
                assets[self._asset_index[name]] = price
            else:
                raise CrossMarginError(f"prices.{name}", "unknown instrument or asset")
        return marks, assets

    # ------------------------------------------------------------------ changes

    def set_balance(self, account_id: str, asset: str, amount: float) -> None:
        """Set one balance (asset units) and re-margin that account."""
        a = self.index_of(account_id)
        if asset not in self._asset_index:
            raise CrossMarginError(f"balances.{asset}", "unknown asset")
        if not math.isfinite(amount):
            raise CrossMarginError(f"balances.{asset}", f"must be finite, got {amount}")
        k = self._asset_index[asset]
        if amount != 0.0:
            self._check_assets(np.array([k]))
        self._bal[a, k] = amount
        rows = np.array([a], dtype=np.intp)
        self._acc[a, COLL] = self._collateral(self._bal[rows], self._to_currency())[0]
        self._finish(rows)

    def add_account(self, account_id: str, balances: Mapping[str, float] | None = None) -> int:
        """Append an empty account; returns its index."""
        if not account_id or account_id in self._id_index:
            raise CrossMarginError("account", f"id {account_id!r} is empty or already used")
        for asset, amount in (balances or {}).items():
            if asset not in self._asset_index:
                raise CrossMarginError(f"balances.{asset}", "unknown asset")
            if not math.isfinite(amount):
                raise CrossMarginError(f"balances.{asset}", f"must be finite, got {amount}")
        n = len(self._ids)
        if n == len(self._bal):
            size = max(2 * n, 8)
            for name in self._ACCOUNTS:
                setattr(self, name, _grow(getattr(self, name), size))
        buckets = self._buckets_for(n + 1)
        if buckets > len(self._count):
            extra = buckets - len(self._count)
            self._start = np.concatenate([self._start, np.full(extra, self._used, np.intp)])
            self._count = np.concatenate([self._count, np.zeros(extra, np.intp)])
            self._cap = np.concatenate([self._cap, np.zeros(extra, np.intp)])
        self._ids.append(account_id)
        self._id_index[account_id] = n
        self._bal[n] = 0.0
        self._acc[n] = 0.0
        for asset, amount in (balances or {}).items():
            self.set_balance(account_id, asset, amount)
        self._finish(np.array([n], dtype=np.intp))
        return n

    def set_position(self, account_id: str, position: Position) -> None:
        """Open or replace the account's position in ``position.symbol`` and re-margin it."""
        a = self.index_of(account_id)
        i = self._instrument(position.symbol, "symbol")
        self._check_priced(np.array([i]))
        iso = position.is_isolated
        found = self._find(a, i)
        if found is None:
            slot = self._append(self._bucket(a, i, iso))
            self._holders[i] += 1
        else:
            slot, was_iso = found
            self._apply(slot, i, was_iso, -1)
            if was_iso != iso:
                self._drop(slot, self._bucket(a, i, was_iso))
                slot = self._append(self._bucket(a, i, iso))
        self._owner[slot] = a
        self._qty[slot] = position.qty
        self._entry[slot] = position.entry_price
        self._lev[slot] = math.nan if position.leverage is None else position.leverage
        self._imargin[slot] = position.isolated_margin or 0.0
        self._hint[slot] = 0
        self._apply(slot, i, iso, 1)
        self._finish(np.array([a], dtype=np.intp))

    def remove_position(self, account_id: str, symbol: str) -> None:
        """Close the account's position in ``symbol`` (error if it has none)."""
        a = self.index_of(account_id)
        i = self._instrument(symbol, "symbol")
        found = self._find(a, i)
        if found is None:
            raise CrossMarginError("symbol", f"account {account_id!r} holds no {symbol}")
        slot, iso = found
        self._apply(slot, i, iso, -1)
        self._drop(slot, self._bucket(a, i, iso))
        self._holders[i] -= 1
        self._finish(np.array([a], dtype=np.intp))

    # ------------------------------------------------------------------ analytics

    def liquidation_prices(self) -> Liquidations:
        """Liquidation price of every position at the current prices (closed form)."""
        px = self._to_currency()
        n = self.accounts
        cross_eq = self._acc[:n, COLL] + self._acc[:n, EQ_C]
        mm_c = self._acc[:n, MM_C]
        slots, inst, isolated = self._live()
        order = np.argsort(inst, kind="stable")
        slots, inst, isolated = slots[order], inst[order], isolated[order]
        bounds = np.searchsorted(inst, np.arange(self._n_inst + 1))
        accts, insts, prices = [], [], []
        for i in np.flatnonzero(np.diff(bounds)).tolist():
            sl = slice(int(bounds[i]), int(bounds[i + 1]))
            at, iso = slots[sl], isolated[sl]
            qty, entry = self._qty[at], self._entry[at]
            mark, row, cs, inv = float(self._mark[i]), self._rows[i], *self._instr(i)
            fixed = iso & bool(row.isolated_at_entry)
            m = position_margins(qty, cs, np.where(fixed, entry, mark), inv, self._lev[at], row)
            upnl = unrealized_pnl(qty, cs, entry, mark, inv)
            factor = px[self.params.settle[i]]
            acct = self._owner[at]
            buffer = np.where(
                iso,
                self._imargin[at] - np.where(fixed, m.maintenance, 0.0),
                (cross_eq[acct] - mm_c[acct]) / factor - upnl + m.maintenance,
            )
            schedule = row.constant_where(fixed) if fixed.any() else row
            prices.append(liquidation_price(qty, cs, entry, inv, mark, buffer, schedule))
            accts.append(acct)
            insts.append(inst[sl].astype(np.int32))
        return Liquidations(
            np.concatenate([np.zeros(0, dtype=np.int32), *accts]),
            np.concatenate([np.zeros(0, dtype=np.int32), *insts]),
            np.concatenate([np.zeros(0), *prices]),
        )

    def crash_distances(
        self,
        rows: ArrayLike | None = None,
        points: int = 512,
        step: int = 16,
        chunk: int = 8192,
    ) -> CrashDistances:
        """Crash distance of accounts ``rows`` (default all), as in ``evaluate``: the same move
        grid locates the first sign change of the smallest margin surplus on each side, then a
        root search vectorised over accounts refines it to 1e-14.

        With ``step`` > 1 only every ``step``-th grid point is scanned where the surplus is
        concave there (see :meth:`_Surface.first_root`); a negative dip narrower than that
        spacing (possible only with brackets whose maintenance amount jumps) can be missed.
        ``step=1`` scans the whole grid, as ``evaluate`` does.
        """
        picked = np.unique(np.arange(self.accounts) if rows is None else np.asarray(rows))
        picked = picked.astype(np.intp)
        slots, inst, isolated = self._live()
        owner = self._owner[slots]
        if rows is not None:
            keep = np.isin(owner, picked)
            slots, inst, isolated, owner = slots[keep], inst[keep], isolated[keep], owner[keep]
        order = np.argsort(owner, kind="stable")
        slots, inst, isolated, owner = slots[order], inst[order], isolated[order], owner[order]
        starts = np.searchsorted(owner, picked)
        sizes = np.searchsorted(owner, picked, side="right") - starts
        down = np.full(len(picked), np.nan)
        up = np.full(len(picked), np.nan)
        lo = 0
        while lo < len(picked):
            reach = np.cumsum(sizes[lo:])
            hi = lo + max(1, int(np.searchsorted(reach, chunk, side="right")))
            n = sizes[lo:hi]
            take = np.repeat(starts[lo:hi] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
            surface = _Surface(
                self, picked[lo:hi], slots[take], inst[take], isolated[take], owner[take]
            )
            down[lo:hi] = surface.first_root(down_grid(points), step)
            up[lo:hi] = surface.first_root(up_grid(points), step)
            lo = hi
        distance = np.fmin(np.abs(down), np.abs(up))
        return CrashDistances(picked, -np.abs(down), up, distance)

    # ------------------------------------------------------------------ internals

    def _instrument(self, symbol: str, path: str) -> int:
        try:
            return self._symbols[symbol]
        except KeyError:
            raise CrossMarginError(path, f"unknown instrument {symbol!r}") from None

    def _instr(self, i: int) -> tuple[float, bool]:
        return float(self.params.contract_size[i]), bool(self.params.inverse[i])

    def _check_priced(self, instruments: Int) -> None:
        for i in instruments.tolist():
            if not np.isfinite(self._mark[i]):
                raise CrossMarginError(f"prices.{self.params.symbols[i]}", "missing mark price")
            self._check_assets(np.array([self.params.settle[i]]))

    def _check_assets(self, assets: Int) -> None:
        for k in assets.tolist():
            if not np.isfinite(self._asset_price[k]):
                name = self.params.assets[k]
                raise CrossMarginError(f"prices.{name}", f"missing price for asset {name}")

    def _to_currency(self) -> Float:
        px: Float = self._asset_price / self._asset_price[self.params.currency]
        return np.where(np.isfinite(px), px, 0.0)

    def _collateral(self, balances: Float, px: Float) -> Float:
        units = collateral_units(balances, self.params.up_to, self.params.ratios)
        value: Float = (units * px).sum(axis=-1)
        return value

    def _revalue_collateral(self) -> None:
        """Settle-asset factors and every account's collateral value at the asset prices."""
        px = self._to_currency()
        self._factor[:] = px[self.params.settle]
        n = self.accounts
        self._acc[:n, COLL] = self._collateral(self._bal[:n], px)

    def _buckets_for(self, accounts: int) -> int:
        return -(-max(accounts, 1) // self.BLOCK) * self._n_inst * 2

    def _bucket(self, account: Any, instrument: Any, isolated: Any) -> Any:
        """Bucket of (account, instrument, mode); works on scalars and arrays."""
        return (account // self.BLOCK * self._n_inst + instrument) * 2 + isolated

    def _state(self) -> tuple[Any, ...]:
        """What the bucket kernels take: the bucket directory, the market, the slot columns,
        the account records and statuses, and the margin-call ratio."""
        n = self.accounts
        return (
            self._start,
            self._count,
            self._market,
            self._slot_columns(),
            self._acc[:n],
            self._status[:n],
            self.params.margin_call_ratio,
        )

    def _slot_columns(self) -> tuple[NDArray[Any], ...]:
        return (self._owner, self._qty, self._entry, self._lev, self._imargin, self._hint)

    def _live(self) -> tuple[Int, Int, Bool]:
        """Every open position's slot, instrument and isolated flag, bucket by bucket."""
        counts = self._count
        bucket = np.repeat(np.arange(len(counts)), counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = (np.repeat(self._start, counts) + offsets).astype(np.intp)
        return slots, (bucket // 2 % self._n_inst).astype(np.intp), bucket % 2 == 1

    def _find(self, account: int, instrument: int) -> tuple[int, bool] | None:
        """Slot and mode of the account's position in ``instrument``, if any."""
        for iso in (False, True):
            b = self._bucket(account, instrument, iso)
            lo = int(self._start[b])
            hit = np.flatnonzero(self._owner[lo : lo + int(self._count[b])] == account)
            if hit.size:
                return lo + int(hit[0]), iso
        return None

    def _apply(self, slot: int, instrument: int, isolated: bool, sign: int) -> None:
        apply_slot(
            slot,
            instrument,
            isolated,
            sign,
            self._market,
            self._slot_columns(),
            self._acc[: self.accounts],
            self.params.margin_call_ratio,
        )

    def _finish(self, rows: Int) -> None:
        n = self.accounts
        finish_accounts(rows, self._acc[:n], self._status[:n], self.params.margin_call_ratio)

    def _append(self, bucket: int) -> int:
        if self._count[bucket] == self._cap[bucket]:
            self._relocate(bucket, max(2 * int(self._cap[bucket]), _MIN_ROOM))
        slot = int(self._start[bucket] + self._count[bucket])
        self._count[bucket] += 1
        return slot

    def _drop(self, slot: int, bucket: int) -> None:
        """Free ``slot`` of ``bucket``: the bucket's last position moves into it."""
        last = int(self._start[bucket] + self._count[bucket] - 1)
        for name in self._SLOTS:
            column = getattr(self, name)
            column[slot] = column[last]
        self._count[bucket] -= 1

    def _relocate(self, bucket: int, cap: int) -> None:
        """Move ``bucket`` to the arena's end with room for ``cap`` positions."""
        if self._garbage > self._used // 2:
            self._compact()
        if self._used + cap > len(self._qty):
            size = max(2 * len(self._qty), self._used + cap)
            for name in self._SLOTS:
                setattr(self, name, _grow(getattr(self, name), size))
        start, n = int(self._start[bucket]), int(self._count[bucket])
        for name in self._SLOTS:
            column = getattr(self, name)
            column[self._used : self._used + n] = column[start : start + n]
        self._garbage += int(self._cap[bucket])
        self._start[bucket], self._cap[bucket] = self._used, cap
        self._used += cap

    def _compact(self) -> None:
        """Lay the buckets out again in order, each with its usual room."""
        slots, _, _ = self._live()
        caps = _capacity(self._count)
        starts = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.intp)
        dest = np.repeat(starts - self._start, self._count) + slots
        for name in self._SLOTS:
            column = getattr(self, name)
            packed = np.zeros_like(column)
            packed[dest] = column[slots]
            setattr(self, name, packed)
        self._start, self._cap = starts, caps
        self._used, self._garbage = int(caps.sum()), 0


class _Surface:
    """Smallest margin surplus of a group of accounts as a function of a uniform move."""

    def __init__(
        self, book: RiskBook, accounts: Int, slots: Int, inst: Int, iso: Bool, owner: I32
    ) -> None:
        params = book.params
        self.n = len(accounts)
        local = np.searchsorted(accounts, owner)
        self.starts = np.searchsorted(local, np.arange(self.n + 1)).astype(np.intp)
        rows = params.schedule.take(inst)
        self.data = (
            book._qty[slots],
            book._entry[slots],
            params.contract_size[inst],
            params.inverse[inst],
            book._lev[slots],
            iso,
            book._imargin[slots],
            iso & rows.isolated_at_entry,
            book._mark[inst],
            params.settle[inst].astype(np.intp),
            rows.floors,
            rows.rates,
            rows.amounts,
            rows.max_leverage,
            rows.initial_rate,
            rows.initial_rate_per_size,
            rows.maintenance_rate_per_size,
            collateral_units(book._bal[accounts], params.up_to, params.ratios),
            book._to_currency(),
            params.stable,
        )
        self.currency_stable = bool(params.stable[params.currency])

    def surplus(self, moves: Float) -> Float:
        """(accounts, G) surplus for per-account moves ``moves`` of shape (accounts, G)."""
        out = np.empty(moves.shape)
        surplus_grid(np.ascontiguousarray(moves), self.starts, self.data, self.currency_stable, out)
        return out

    def first_root(self, grid: Float, step: int = 16) -> Float:
        """Move of the first negative surplus along ``grid`` per account, refined; NaN if none.

        Every ``step``-th grid point is evaluated first; where those values are concave in the
        move (the usual case: MM is convex in notional) the first negative fine point lies in
        the coarse interval before the first negative coarse point, so only that interval is
        evaluated. Accounts that are not concave there get the whole grid. The root in the
        final grid interval is refined by the Illinois (modified regula falsi) method.
        """
        n, size = self.n, len(grid)
        coarse = np.unique(np.append(np.arange(0, size, step), size - 1))
        values = self.surplus(np.broadcast_to(grid[coarse], (n, len(coarse))))
        below = values < 0
        found = below.any(axis=1)
        jc = np.where(found, np.argmax(below, axis=1), len(coarse) - 1)
        slopes = np.diff(values, axis=1) / np.diff(grid[coarse])
        bend = np.diff(slopes, axis=1) * np.sign(grid[-1] - grid[0])
        span = np.arange(bend.shape[1]) < (jc - 1)[:, None]
        tol = 1e-7 * np.abs(slopes).max(axis=1, initial=0.0)[:, None]
        concave = ~((bend > tol) & span).any(axis=1)
        first = np.full(n, -1)
        f_hi = np.zeros(n)
        f_lo = np.zeros(n)
        window = coarse[np.maximum(jc - 1, 0)][:, None] + np.arange(1, step + 1)
        window = np.minimum(window, coarse[jc][:, None])
        fine = self.surplus(grid[window])
        neg = fine < 0
        hit = concave & found & (jc > 0)
        pos = np.argmax(neg, axis=1)
        rows = np.flatnonzero(hit)
        first[rows] = window[rows, pos[rows]]
        f_hi[rows] = fine[rows, pos[rows]]
        before = np.where(pos > 0, fine[np.arange(n), np.maximum(pos - 1, 0)], 0.0)
        f_lo[rows] = np.where(pos[rows] > 0, before[rows], values[rows, jc[rows] - 1])
        first[concave & found & (jc == 0)] = 0
        rest = np.flatnonzero(~concave)
        if rest.size:
            full = self.surplus(np.broadcast_to(grid, (n, size)))[rest]
            below_full = full < 0
            k = np.argmax(below_full, axis=1)
            ok = below_full.any(axis=1)
            first[rest[ok]] = k[ok]
            f_hi[rest[ok]] = full[ok, k[ok]]
            f_lo[rest[ok]] = full[ok, np.maximum(k[ok] - 1, 0)]
        out = np.full(n, np.nan)
        out[first == 0] = 0.0
        todo = np.flatnonzero(first > 0)
        if todo.size:
            out[todo] = np.abs(
                self._illinois(
                    todo, grid[first[todo] - 1], grid[first[todo]], f_lo[todo], f_hi[todo]
                )
            )
        return out

    def _illinois(self, todo: Int, a: Float, b: Float, fa: Float, fb: Float) -> Float:
        """Where the surplus turns negative in [a, b] (fa >= 0 > fb) for accounts ``todo``."""
        root: Float = first_negative(
            todo.astype(np.intp), a, b, fa, fb, self.starts, self.data, self.currency_stable, 1e-14
        )
        return root
