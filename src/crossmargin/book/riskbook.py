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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossmargin.book.kernels import (
    MAX_INSTRUMENTS,
    BookState,
    apply_slot,
    count_buckets,
    finish_accounts,
    group_by_account,
    is_sorted,
    liquidation_slots,
    place_positions,
    remargin_blocks,
    resum_account,
    tick_instruments,
)
from crossmargin.health import CRASH_POINTS, CRASH_STEP
from crossmargin.maths.collateral import collateral_table, collateral_units
from crossmargin.maths.liquidation import down_grid, up_grid
from crossmargin.maths.risk import (
    BRACKET,
    CAP,
    COLLATERAL,
    CROSS_EQUITY,
    CROSS_IM,
    CROSS_MM,
    EQUITY,
    FIELDS,
    IM,
    ISO_BAD,
    MM,
    NOTIONAL,
    PNL,
    POSITION,
    ROW_FIELDS,
    Holdings,
    crash_moves,
    holdings_analysis,
    holdings_risk,
    instrument_terms,
    record_figures,
    record_statuses,
)
from crossmargin.maths.status import Status
from crossmargin.maths.tiers import MarginArrays
from crossmargin.model import Account, CrossMarginError, MarginMode, Market, Position

__all__ = [
    "AccountAnalysis",
    "AccountRisk",
    "BookColumns",
    "BookParams",
    "CrashDistances",
    "Liquidations",
    "PositionRisk",
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
        up_to, ratios = collateral_table(rules)
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


_STATUSES = np.array(list(Status), dtype=object)


@dataclass(frozen=True)
class Valuation:
    """Per-account figures in the account currency (arrays over accounts).

    ``available`` is cross equity above cross IM, floored at 0; ``cross_equity`` is the
    collateral value plus the cross positions' PnL. ``status_code`` holds the
    integer value of each account's :class:`~crossmargin.maths.status.Status` (for vector
    work: ``values.status_code >= Status.LIQUIDATABLE``); ``status`` the members themselves.
    """

    equity: Float
    initial_margin: Float
    maintenance_margin: Float
    margin_ratio: Float
    available: Float
    cross_equity: Float
    status_code: I8

    @property
    def status(self) -> NDArray[np.object_]:
        """Each account's :class:`~crossmargin.maths.status.Status` (an object array)."""
        out: NDArray[np.object_] = _STATUSES[self.status_code]
        return out


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
    """Liquidation price of every position (NaN where none), with its account and instrument
    (positions in the book's order: by account block, then instrument and mode)."""

    account: I32
    instrument: I32
    price: Float


@dataclass(frozen=True)
class PositionRisk:
    """Every open position (grouped by account): its account and instrument indices, signed
    contracts, entry price, mode, and in the account currency its notional, PnL, equity
    contribution (PnL, plus the margin if isolated), IM and MM; its bracket's max leverage and
    its bracket (0 is the first)."""

    account: I32
    instrument: I32
    qty: Float
    entry: Float
    isolated: Bool
    notional: Float
    unrealized_pnl: Float
    equity: Float
    initial_margin: Float
    maintenance_margin: Float
    max_leverage: Float
    bracket: Int


@dataclass(frozen=True)
class AccountRisk:
    """One account of the book: cross equity, IM and MM (account currency), its status and
    its positions."""

    id: str
    cross_equity: float
    cross_initial_margin: float
    cross_maintenance_margin: float
    status: Status
    positions: PositionRisk


@dataclass(frozen=True)
class CrashDistances:
    """Per account (``account``: sorted indices): signed smallest uniform moves down (<= 0) and
    up (>= 0) that make it liquidatable (NaN where none in range), the smaller magnitude of the
    two in ``distance``."""

    account: Int
    down: Float
    up: Float
    distance: Float


@dataclass(frozen=True)
class AccountAnalysis:
    """Accounts ``account`` (sorted indices) as a one-account ``evaluate`` reports them, at the
    book's current prices: their ``values`` and ``crash`` moves; per position (account by
    account, account ``k``'s from ``starts[k]`` to ``starts[k + 1]``) its instrument, signed
    contracts, entry price, mode, mark, and liquidation and bankruptcy prices (NaN where
    none)."""

    account: Int
    values: Valuation
    crash: CrashDistances
    starts: Int
    instrument: Int
    qty: Float
    entry: Float
    isolated: Bool
    mark: Float
    liquidation: Float
    bankruptcy: Float


def _position_risk(owner: ArrayLike, positions: NDArray[np.void], rows: Float) -> PositionRisk:
    """:class:`PositionRisk` of kernel ``positions`` (:data:`POSITION` rows) owned by ``owner``
    with their figures ``rows`` (``ROW_FIELDS`` columns)."""
    return PositionRisk(
        np.asarray(owner).astype(np.int32),
        positions["instrument"].astype(np.int32),
        positions["qty"].copy(),
        positions["entry"].copy(),
        positions["isolated"].copy(),
        rows[:, NOTIONAL],
        rows[:, PNL],
        rows[:, EQUITY],
        rows[:, IM],
        rows[:, MM],
        rows[:, CAP],
        rows[:, BRACKET].astype(np.intp),
    )


def _valuation(acc: Float, status: I8) -> Valuation:
    """The figures of account records ``acc`` with their ``status`` (taken as is)."""
    out = np.empty((6, len(acc)))
    record_figures(acc, out)
    equity, initial, maintenance, ratio, available, cross = out
    return Valuation(equity, initial, maintenance, ratio, available, cross, status)


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
    c, lev = columns, columns.leverage
    bad: dict[str, Callable[[], Bool]] = {
        "account": lambda: (c.account < 0) | (c.account >= accounts),
        "instrument": lambda: (c.instrument < 0) | (c.instrument >= instruments),
        "qty": lambda: ~np.isfinite(c.qty) | (c.qty == 0),
        "entry": lambda: ~(np.isfinite(c.entry) & (c.entry > 0)),
        "isolated_margin": lambda: ~(np.isfinite(c.isolated_margin) & (c.isolated_margin >= 0)),
        "leverage": lambda: ~(np.isnan(lev) | (np.isfinite(lev) & (lev >= 1))),
    }
    for name, check in bad.items():
        mask = check()
        if mask.any():
            raise CrossMarginError(f"{name}[{int(np.argmax(mask))}]", "out of range")


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

    _SLOTS = ("_owner", "_qty", "_entry", "_lev", "_margin", "_hint")
    _ACCOUNTS = ("_bal", "_acc", "_status")

    def __init__(self, params: BookParams, columns: BookColumns) -> None:
        self.params = params
        self._symbols = {s: k for k, s in enumerate(params.symbols)}
        self._asset_index = {a: k for k, a in enumerate(params.assets)}
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
        self._terms = instrument_terms(
            params.contract_size, params.inverse, params.settle, params.schedule
        )
        self._brackets = np.ascontiguousarray(params.schedule.brackets)
        account = np.ascontiguousarray(columns.account, dtype=np.int32)
        instrument = np.ascontiguousarray(columns.instrument, dtype=np.int32)
        isolated = np.ascontiguousarray(columns.isolated, dtype=bool)
        order = (
            np.zeros(0, dtype=np.intp)
            if is_sorted(account)
            else np.argsort(account, kind="stable").astype(np.intp)
        )
        counts = np.zeros(self._buckets_for(n_acc), dtype=np.intp)
        self._holders = np.zeros(self._n_inst, dtype=np.intp)
        args = (account, instrument, isolated, order, self.BLOCK, self._n_inst)
        if count_buckets(*args, counts, self._holders) >= 0:
            raise CrossMarginError("instrument", "second position of an account in one instrument")
        caps = _capacity(counts)
        self._start = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.intp)
        self._count = counts
        self._cap = caps
        self._used = int(caps.sum())
        self._garbage = 0
        size = self._used
        self._owner: I32 = np.zeros(size, dtype=np.int32)
        self._qty: Float = np.zeros(size)
        self._entry: Float = np.ones(size)
        self._lev: Float = np.full(size, np.nan)
        self._margin: Float = np.zeros(size)
        self._hint: NDArray[np.uint8] = np.zeros(size, dtype=np.uint8)
        source = (
            account,
            instrument,
            isolated,
            *(
                np.ascontiguousarray(c, dtype=np.float64)
                for c in (columns.qty, columns.entry, columns.leverage, columns.isolated_margin)
            ),
        )
        slots = (self._owner, self._qty, self._entry, self._lev, self._margin)
        place_positions(source, order, self.BLOCK, self._n_inst, self._start.copy(), slots)
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
        return _valuation(self._acc[:n], self._status[:n].copy())

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
            self._margin[slots],
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
        count = tick_instruments(self._state(), ticked, old, changes)
        pairs = changes[: 2 * count].reshape(count, 2)
        accounts, first = np.unique(pairs[:, 0], return_index=True)
        moved = accounts[self._status[accounts] != pairs[first, 1]]
        return TickResult(self, moved, holders)

    def set_marks(self, marks: ArrayLike) -> None:
        """Every instrument's mark from an array in the book's instrument order, then a full
        re-margin: :meth:`apply_prices` for marks only, when thousands of marks move at once
        (a simulation step whose instruments are per-path copies). Marks of instruments no
        position holds may be anything; held ones must be finite and > 0 (else
        CrossMarginError ``marks``, the book unchanged)."""
        values = np.asarray(marks, dtype=np.float64)
        if values.shape != self._mark.shape:
            raise CrossMarginError("marks", f"need {len(self._mark)} marks, got {values.shape}")
        held = self._holders > 0
        if not (np.isfinite(values[held]) & (values[held] > 0.0)).all():
            raise CrossMarginError("marks", "held instruments need finite positive marks")
        self._mark[:] = values
        self.remargin()

    def set_sizes(self, qty: ArrayLike, entry: ArrayLike) -> None:
        """Every open position's signed quantity (contracts) and entry price, in the order
        :meth:`columns` lists them, then a full re-margin (on bad input CrossMarginError
        ``qty`` or ``entry``, the book unchanged). A bulk rewrite of the position columns: a
        simulation moves each path's prices by rescaling its positions (for linear contracts
        without size-scaled rates, ``qty * g`` contracts entered at ``entry / g`` have at the
        mark every amount ``qty`` entered at ``entry`` has at ``g`` times the mark)."""
        slots, _, _ = self._live()
        q = np.asarray(qty, dtype=np.float64)
        e = np.asarray(entry, dtype=np.float64)
        if q.shape != slots.shape or e.shape != slots.shape:
            raise CrossMarginError("qty", f"need {len(slots)} quantities and entries")
        if not (np.isfinite(q) & (q != 0.0)).all():
            raise CrossMarginError("qty", "must be finite and non-zero")
        if not (np.isfinite(e) & (e > 0.0)).all():
            raise CrossMarginError("entry", "must be finite and > 0")
        self._qty[slots] = q
        self._entry[slots] = e
        self.remargin()

    def remargin(self) -> None:
        """Recompute every position's contribution and every account's sums and status from
        scratch at the current prices (:meth:`values` derives the figures).

        Collateral values are kept current by balance and asset-price changes, so this pass
        reads only the position columns and the account records.
        """
        remargin_blocks(self._state())

    def value_at(self, prices: Mapping[str, float]) -> Valuation:
        """Figures of every account at ``prices`` (merged over the current ones), leaving the
        book unchanged: the stress-test valuation. It re-margins into fresh account records
        (one pass over the positions, as :meth:`remargin`), so nothing is saved and restored."""
        n = self.accounts
        acc = np.empty((n, FIELDS))
        status = np.empty(n, dtype=np.int8)
        self.remargin_at(prices, acc, status)
        return _valuation(acc, status)

    def remargin_at(self, prices: Mapping[str, float], records: Float, status: I8) -> None:
        """Every account's record (:data:`~crossmargin.maths.risk.FIELDS` sums, the collateral
        value first) and status at ``prices`` (merged over the current ones) into ``records``
        (accounts, FIELDS) and ``status`` (accounts,), leaving the book unchanged:
        :meth:`value_at` into the caller's arrays, for a loop over many scenarios."""
        marks, assets = self._parse_prices(prices)
        n = self.accounts
        if records.shape != (n, FIELDS) or status.shape != (n,):
            raise CrossMarginError("records", f"need shapes ({n}, {FIELDS}) and ({n},)")
        mark, asset_price = self._mark.copy(), self._asset_price.copy()
        for i, price in marks.items():
            mark[i] = price
        for k, price in assets.items():
            asset_price[k] = price
        factor = self._factor
        if assets:
            px = asset_price / asset_price[self.params.currency]
            px = np.where(np.isfinite(px), px, 0.0)
            factor = px[self.params.settle]
            records[:, COLLATERAL] = self._collateral(self._bal[:n], px)
        else:
            records[:, COLLATERAL] = self._acc[:n, COLLATERAL]
        state = self._state()._replace(marks=mark, factor=factor, acc=records, status=status)
        remargin_blocks(state)

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
        self._acc[a, COLLATERAL] = self._collateral(self._bal[rows], self._to_currency())[0]
        self._finish(rows)

    def set_balances(self, account_ids: Sequence[str], asset: str, amounts: ArrayLike) -> None:
        """Set one asset's balance (asset units) of many accounts, added if new, and re-value
        them in one pass: a round of funding payments or a batch of deposits."""
        if asset not in self._asset_index:
            raise CrossMarginError(f"balances.{asset}", "unknown asset")
        values = np.asarray(amounts, dtype=np.float64)
        if values.shape != (len(account_ids),):
            raise CrossMarginError(f"balances.{asset}", "one amount per account")
        if not np.isfinite(values).all():
            raise CrossMarginError(f"balances.{asset}", "must be finite")
        for name in account_ids:
            if name not in self._id_index:
                self.add_account(name)
        rows = np.array([self._id_index[name] for name in account_ids], dtype=np.intp)
        k = self._asset_index[asset]
        if values.any():
            self._check_assets(np.array([k]))
        self._bal[rows, k] = values
        self._acc[rows, COLLATERAL] = self._collateral(self._bal[rows], self._to_currency())
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
        self._put(a, i, position, self._find(a, i))
        self._finish(np.array([a], dtype=np.intp))

    def _put(self, a: int, i: int, position: Position, found: tuple[int, bool] | None) -> None:
        """Write ``position`` (instrument ``i``) of account ``a`` into its slot (``found``: the
        slot and mode it has now, if any); the caller refreshes the account."""
        iso = position.is_isolated
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
        self._margin[slot] = position.isolated_margin or 0.0
        self._hint[slot] = 0
        self._apply(slot, i, iso, 1)

    def set_account(self, account: Account) -> None:
        """Make the book hold ``account`` as it is (added if new): its balances, its positions
        and none other; spot holdings must be given as balances. Its sums are then recomputed
        from scratch."""
        for asset in account.balances:
            if asset not in self._asset_index:
                raise CrossMarginError(f"balances.{asset}", "unknown asset")
        wanted: dict[int, Position] = {}
        for k, position in enumerate(account.positions):
            i = self._instrument(position.symbol, f"positions[{k}].symbol")
            self._check_priced(np.array([i]))
            wanted[i] = position
        if account.id not in self._id_index:
            self.add_account(account.id)
        a = self.index_of(account.id)
        balances = np.array([account.balances.get(x, 0.0) for x in self.params.assets])
        if not np.isfinite(balances).all():
            raise CrossMarginError("balances", "must be finite")
        if (balances != self._bal[a]).any():
            self._check_assets(np.flatnonzero(balances != 0.0))
            self._bal[a] = balances
            rows = np.array([a], dtype=np.intp)
            self._acc[a, COLLATERAL] = self._collateral(self._bal[rows], self._to_currency())[0]
        slots, inst, isolated = self._live(np.array([a // self.BLOCK]))
        mine = np.flatnonzero(self._owner[slots] == a)
        held = {int(inst[m]): (int(slots[m]), bool(isolated[m])) for m in mine.tolist()}
        for i in sorted(set(held) - set(wanted), reverse=True):
            slot, iso = held[i]
            self._apply(slot, i, iso, -1)
            self._drop(slot, self._bucket(a, i, iso))
            self._holders[i] -= 1
        for i, position in wanted.items():
            self._put(a, i, position, self._find(a, i) if i in held else None)
        resum_account(self._state(), a)

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
        """Liquidation price of every position at the current prices (closed form), each
        against its account's record."""
        n = self.positions
        out = (np.empty(n), np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32))
        liquidation_slots(self._state(), out)
        return Liquidations(out[1], out[2], out[0])

    def crash_distances(
        self, rows: ArrayLike | None = None, points: int = CRASH_POINTS, step: int = CRASH_STEP
    ) -> CrashDistances:
        """Crash distance of accounts ``rows`` (default all), as ``evaluate`` finds it: the
        first sign change of the smallest margin surplus along ``points`` moves each side,
        refined to 1e-14 (:func:`crossmargin.maths.risk.crash_moves`, scanning every
        ``step``-th point first)."""
        all_rows = np.arange(self.accounts) if rows is None else np.asarray(rows)
        picked = np.unique(all_rows).astype(np.intp)
        holdings, _, _ = self._holdings(picked)
        out = np.empty((len(picked), 2))
        local = np.arange(len(picked), dtype=np.intp)
        crash_moves(holdings, local, down_grid(points), up_grid(points), step, out)
        down, up = out[:, 0], out[:, 1]
        return CrashDistances(picked, -down, up, np.fmin(down, up))

    def position_risk(self, rows: ArrayLike | None = None) -> PositionRisk:
        """The figures of every open position of accounts ``rows`` (default all) at the
        current prices, account by account."""
        all_rows = np.arange(self.accounts) if rows is None else np.asarray(rows)
        picked = np.unique(all_rows).astype(np.intp)
        holdings, owner, _ = self._holdings(picked)
        figures = np.empty((len(owner), ROW_FIELDS))
        holdings_risk(holdings, np.empty((len(picked), FIELDS)), figures)
        return _position_risk(owner, holdings.positions, figures)

    def analysis(self, rows: ArrayLike | None = None) -> AccountAnalysis:
        """Everything ``evaluate`` reports of accounts ``rows`` (default all): their figures,
        crash moves and every position's liquidation and bankruptcy prices, with the
        account-risk kernel's analytics run once over all of them (the fused call
        ``evaluate`` makes)."""
        all_rows = np.arange(self.accounts) if rows is None else np.asarray(rows)
        picked = np.unique(all_rows).astype(np.intp)
        holdings, _, inst = self._holdings(picked)
        grids = down_grid(CRASH_POINTS), up_grid(CRASH_POINTS)
        _, _, liquidation, bankruptcy, moves, figures, status, _ = holdings_analysis(
            holdings, *grids, CRASH_STEP
        )
        down, up = moves[:, 0], moves[:, 1]
        equity, initial, maintenance, ratio, available, cross = figures.T.copy()
        positions = holdings.positions
        return AccountAnalysis(
            picked,
            Valuation(equity, initial, maintenance, ratio, available, cross, status),
            CrashDistances(picked, -down, up, np.fmin(down, up)),
            holdings.starts,
            inst,
            positions["qty"].copy(),
            positions["entry"].copy(),
            positions["isolated"].astype(bool),
            self._mark[inst],
            liquidation,
            bankruptcy,
        )

    def account_risk(self, account_id: str) -> AccountRisk:
        """One account's cross figures, status and positions, read off its record."""
        a = self.index_of(account_id)
        record = self._acc[a]
        return AccountRisk(
            account_id,
            float(record[COLLATERAL] + record[CROSS_EQUITY]),
            float(record[CROSS_IM]),
            float(record[CROSS_MM]),
            Status(int(self._status[a])),
            self.position_risk([a]),
        )

    def trial(self, account: Account, prices: Mapping[str, float] | None = None) -> AccountRisk:
        """``account``'s figures as if the book held it, at the book's marks (``prices``
        standing in for some), without changing the book: the pre-trade check of an order
        (one account-risk kernel call; no liquidation-price or crash-distance search)."""
        n = len(account.positions)
        positions = np.zeros(n, dtype=POSITION)
        for k, position in enumerate(account.positions):
            row = positions[k]
            row["instrument"] = self._instrument(position.symbol, f"positions[{k}].symbol")
            row["qty"] = position.qty
            row["entry"] = position.entry_price
            row["leverage"] = math.nan if position.leverage is None else position.leverage
            row["margin"] = position.isolated_margin or 0.0
            row["isolated"] = position.is_isolated
        marks = self._mark
        if prices:
            marks = marks.copy()
            for symbol, price in prices.items():
                marks[self._instrument(symbol, f"prices.{symbol}")] = price
        self._check_priced_at(marks, positions["instrument"].astype(np.intp))
        balances = np.zeros((1, len(self.params.assets)))
        for asset, amount in account.balances.items():
            if asset not in self._asset_index:
                raise CrossMarginError(f"balances.{asset}", "unknown asset")
            balances[0, self._asset_index[asset]] = amount
        params = self.params
        holdings = Holdings(
            np.array([0, n], dtype=np.intp),
            positions,
            self._terms,
            self._brackets,
            marks,
            collateral_units(balances, params.up_to, params.ratios),
            self._to_currency(),
            params.stable,
            bool(params.stable[params.currency]),
            params.margin_call_ratio,
        )
        record = np.empty((1, FIELDS))
        rows = np.empty((n, ROW_FIELDS))
        holdings_risk(holdings, record, rows)
        status = np.empty(1, dtype=np.int8)
        record_statuses(record, params.margin_call_ratio, status)
        return AccountRisk(
            account.id,
            float(record[0, COLLATERAL] + record[0, CROSS_EQUITY]),
            float(record[0, CROSS_IM]),
            float(record[0, CROSS_MM]),
            Status(int(status[0])),
            _position_risk(np.zeros(n, dtype=np.int32), positions, rows),
        )

    def liquidatable(self, multiple: float = 1.0) -> Int:
        """Accounts (indices) whose cross equity is below ``multiple`` x the cross maintenance
        margin, or with an isolated position under ``multiple`` x its own maintenance margin:
        what a venue with that liquidation trigger would liquidate now."""
        if not (math.isfinite(multiple) and multiple > 0):
            raise CrossMarginError("multiple", f"must be a positive number, got {multiple}")
        n = self.accounts
        acc = self._acc[:n]
        cross = acc[:, COLLATERAL] + acc[:, CROSS_EQUITY] < multiple * acc[:, CROSS_MM]
        if multiple == 1.0:
            isolated = acc[:, ISO_BAD] >= 65536.0
        else:
            isolated = np.zeros(n, dtype=bool)
            risk = self.position_risk()
            under = risk.isolated & (risk.equity < multiple * risk.maintenance_margin)
            isolated[risk.account[under]] = True
        hit: Int = np.flatnonzero(cross | isolated)
        return hit

    # ------------------------------------------------------------------ internals

    def _instrument(self, symbol: str, path: str) -> int:
        try:
            return self._symbols[symbol]
        except KeyError:
            raise CrossMarginError(path, f"unknown instrument {symbol!r}") from None

    def _check_priced(self, instruments: Int) -> None:
        self._check_priced_at(self._mark, instruments)

    def _check_priced_at(self, marks: Float, instruments: Int) -> None:
        for i in instruments.tolist():
            if not np.isfinite(marks[i]):
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
        self._acc[:n, COLLATERAL] = self._collateral(self._bal[:n], px)

    def _buckets_for(self, accounts: int) -> int:
        return -(-max(accounts, 1) // self.BLOCK) * self._n_inst * 2

    def _bucket(self, account: Any, instrument: Any, isolated: Any) -> Any:
        """Bucket of (account, instrument, mode); works on scalars and arrays."""
        return (account // self.BLOCK * self._n_inst + instrument) * 2 + isolated

    def _state(self) -> BookState:
        """What the bucket kernels take (views of the book's arrays)."""
        n = self.accounts
        return BookState(
            self.BLOCK,
            self._n_inst,
            self._start,
            self._count,
            self._mark,
            self._factor,
            self._terms,
            self._brackets,
            self._owner,
            self._qty,
            self._entry,
            self._lev,
            self._margin,
            self._hint,
            self._acc[:n],
            self._status[:n],
            self.params.margin_call_ratio,
        )

    def _holdings(self, picked: Int) -> tuple[Holdings, I32, Int]:
        """The positions of accounts ``picked`` (sorted indices) grouped by account, with the
        current market: the input of the account-risk kernel's analytics. Also each
        position's account and instrument."""
        subset = len(picked) != self.accounts
        slots, inst, isolated = self._live(np.unique(picked // self.BLOCK) if subset else None)
        owner = self._owner[slots]
        if subset:
            keep = np.isin(owner, picked)
            slots, inst, isolated = slots[keep], inst[keep], isolated[keep]
            local = np.searchsorted(picked, owner[keep])
        else:
            local = owner.astype(np.intp)
        counts = np.bincount(local, minlength=len(picked))
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        positions = np.empty(len(slots), dtype=POSITION)
        group_by_account(self._state(), slots, inst, isolated, local, starts, positions)
        inst = positions["instrument"].astype(np.intp)
        owner = np.repeat(picked, counts).astype(np.int32)
        params = self.params
        holdings = Holdings(
            starts,
            positions,
            self._terms,
            self._brackets,
            self._mark,
            collateral_units(self._bal[picked], params.up_to, params.ratios),
            self._to_currency(),
            params.stable,
            bool(params.stable[params.currency]),
            params.margin_call_ratio,
        )
        return holdings, owner, inst

    def _live(self, blocks: Int | None = None) -> tuple[Int, Int, Bool]:
        """Every open position's slot, instrument and isolated flag, bucket by bucket (only
        the buckets of account ``blocks`` if given)."""
        per_block = 2 * self._n_inst
        if blocks is None:
            buckets = np.arange(len(self._count))
        else:
            buckets = (blocks[:, None] * per_block + np.arange(per_block)).reshape(-1)
        counts = self._count[buckets]
        bucket = np.repeat(buckets, counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = (np.repeat(self._start[buckets], counts) + offsets).astype(np.intp)
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
        apply_slot(self._state(), slot, instrument, isolated, sign)

    def _finish(self, rows: Int) -> None:
        finish_accounts(self._state(), rows)

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
