"""Invariants on random command streams (hypothesis), checked independently of the engine:

- conservation: deposits - withdrawals - the sum over all ledger accounts is exactly 0, and
  the stored postings sum to the same balances;
- after every price or funding command no margin wallet (cross wallet plus cross unrealised PnL,
  or isolated margin plus that position's PnL, recomputed here in exact decimals) has negative
  equity and no position is under maintenance. A deficit may only be written off as bad debt
  when the insurance fund is empty and ADL is exhausted (no other account holds a profitable
  opposite position, or the bankrupt position's contracts are all deleveraged), and the bad debt
  written equals the wallet's deficit exactly; ADL runs only once the fund is empty;
- replaying the journal gives the live state bit for bit; a rejected command changes nothing;
- the cached screening layout, updated only for the traders each command touched, holds the same
  rows and screens to the same per-trader equity and maintenance as one built from scratch.
"""

from __future__ import annotations

import contextlib
import uuid
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from sqlalchemy import create_engine, text

from crossmargin.book.riskbook import RiskBook
from crossmargin.ledger import Ledger, State
from crossmargin.ledger.context import Context
from crossmargin.ledger.journal import INSURANCE, EventKind, Holding, apply, isolated, trader
from crossmargin.ledger.liquidation import Screen
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError
from crossmargin.rules import load_rulebook
from crossmargin.rules.venue import load_venue

from .conftest import PG_ENV, postgres_url

ACCOUNTS = ("a", "b", "c")
amount = st.integers(1, 5_000).map(D)
qty = st.integers(-1_000, 1_000).filter(bool).map(lambda n: D(n) / 1000)
order = st.tuples(qty, st.sampled_from([None, 5, 20, 50]), st.sampled_from(["cross", "isolated"]))
trade = st.tuples(st.just("trade"), st.sampled_from(ACCOUNTS), order)
pair = st.tuples(st.just("pair"), st.sampled_from(ACCOUNTS), order)
op = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(ACCOUNTS), amount),
    st.tuples(st.just("withdraw"), st.sampled_from(ACCOUNTS), amount),
    st.tuples(st.just("insurance"), st.just(""), st.integers(0, 2_000).map(D)),
    trade,
    pair,
    pair,
    st.tuples(st.just("price"), st.just(""), st.integers(-40, 40).map(lambda n: D(n) / 1000)),
    st.tuples(st.just("price"), st.just(""), st.integers(-250, 250).map(lambda n: D(n) / 1000)),
    st.tuples(st.just("fund"), st.just(""), st.integers(-100, 100).map(lambda n: D(n) / 100_000)),
)


def run(ledger: Ledger, i: int, step: tuple[str, str, Any]) -> None:
    """One step; a ``pair`` also gives the next account the other side, where it can afford it."""
    kind, who, arg = step
    key = f"k{i}"
    if kind == "deposit":
        ledger.deposit(key, who, arg)
    elif kind == "withdraw":
        ledger.withdraw(key, who, arg)
    elif kind == "insurance":
        if arg > 0:
            ledger.deposit_insurance(key, arg)
    elif kind in ("trade", "pair"):
        q, lev, mode = arg
        ledger.trade(key, who, "BTCUSDT", q, leverage=lev, margin_mode=mode)
        if kind == "pair":
            other = ACCOUNTS[(ACCOUNTS.index(who) + 1) % len(ACCOUNTS)]
            with contextlib.suppress(CrossMarginError):
                ledger.trade(f"{key}:other", other, "BTCUSDT", -q, leverage=20)
    elif kind == "price":
        mark = ledger.state.prices["BTCUSDT"]
        ledger.price(key, "BTCUSDT", (mark * (1 + arg)).quantize(D("0.01")))
    else:
        ledger.fund(key, "BTCUSDT", arg)


def wallet_equity(state: State) -> dict[str, D]:
    """Exact equity per margin wallet at the marks (BTCUSDT contract size 1)."""
    equity: dict[str, D] = {k: v for k, v in state.balances.items() if k.startswith("trader:")}
    for account, book in state.positions.items():
        for symbol, h in book.items():
            upnl = h.qty * (state.prices[symbol] - h.entry)
            wallet = isolated(account, symbol) if h.mode == "isolated" else trader(account)
            equity[wallet] = equity.get(wallet, state.balance(wallet)) + upnl
    return equity


def adl_exhausted(state: State, wallet: str, closed: D, adl: D) -> bool:
    """No more ADL for ``wallet``: its closed contracts (signed, BTCUSDT) are all deleveraged,
    or no other account holds a profitable position on the other side."""
    if closed == 0 or abs(adl) >= abs(closed):
        return True
    owner = wallet.split(":")[1]
    mark = state.prices["BTCUSDT"]
    return not any(
        h.qty * closed < 0 and h.qty * (mark - h.entry) > 0
        for account, book in state.positions.items()
        if account != owner
        for h in book.values()
    )


def check_pass(ledger: Ledger, before: State, seq: int) -> None:
    """Walk the command's events from the state before it; then check every account."""
    state = before
    covers = ledger.ctx.rules.insurance_covers
    closed: dict[str, D] = {}
    adl: dict[str, D] = {}
    for event in ledger.store.events(after=seq):
        b = event.body
        if event.kind == EventKind.LIQUIDATION_FILL:
            held = state.positions[b["account"]][b["symbol"]]
            wallet = (
                isolated(b["account"], b["symbol"])
                if held.mode == "isolated"
                else trader(b["account"])
            )
            closed[wallet] = closed.get(wallet, D(0)) - D(b["qty"])
        elif event.kind == EventKind.ADL_FILL:
            assert not covers or state.balance(INSURANCE) <= 0
            adl[b["beneficiary"]] = adl.get(b["beneficiary"], D(0)) - D(b["qty"])
        elif event.kind == EventKind.BAD_DEBT:
            wallet = b["wallet"]
            assert not covers or state.balance(INSURANCE) <= 0
            assert state.balance(wallet) == -D(b["amount"]) < 0
            assert adl_exhausted(state, wallet, closed.get(wallet, D(0)), adl.get(wallet, D(0)))
        apply(state, event)
    assert state.to_json() == ledger.state.to_json()
    for wallet, value in wallet_equity(ledger.state).items():
        assert value >= 0, (wallet, value)
    for account in ledger.state.positions:
        health = ledger.health(account)
        assert all(p.status < Status.LIQUIDATABLE for p in health.positions)


def book_rows(book: RiskBook) -> list[tuple[object, ...]]:
    """Every account's balances and positions in the book, by name."""
    c = book.columns()
    symbols, ids = book.params.symbols, c.account_ids
    rows: list[tuple[object, ...]] = [
        (ids[a], "balances", *c.balances[a].tolist()) for a in range(len(ids))
    ]
    for k in range(len(c.qty)):
        lev = float(c.leverage[k])
        rows.append(
            (
                ids[int(c.account[k])],
                symbols[int(c.instrument[k])],
                float(c.qty[k]),
                float(c.entry[k]),
                None if np.isnan(lev) else lev,
                bool(c.isolated[k]),
                float(c.isolated_margin[k]),
            )
        )
    return sorted(rows, key=repr)


def same_screen(live: Screen, fresh: Screen) -> None:
    """Same accounts, balances and positions, and the same figures (up to the rounding of
    incremental sums)."""
    assert sorted(live.book.account_ids) == sorted(fresh.book.account_ids)
    assert book_rows(live.book) == book_rows(fresh.book)
    order = [live.book.index_of(a) for a in fresh.book.account_ids]
    a, b = live.book.values(), fresh.book.values()
    for got, expected in ((a.equity, b.equity), (a.maintenance_margin, b.maintenance_margin)):
        np.testing.assert_allclose(got[order], expected, rtol=1e-12, atol=1e-6)
    assert a.status_code[order].tolist() == b.status_code.tolist()
    assert live.liquidatable() == fresh.liquidatable()


def check_layout(ledger: Ledger) -> None:
    """The incrementally kept screen against one built from the state alone."""
    same_screen(ledger.screen(), Screen(ledger.state, ledger.ctx))


def check_stream(ledger: Ledger, steps: list[tuple[str, str, Any]]) -> None:
    """Run ``steps`` on ``ledger``, checking every invariant along the way and at the end."""
    for name in ACCOUNTS:
        ledger.deposit(f"open:{name}", name, 2_000)
    ledger.price("start", "BTCUSDT", 60_000)
    for i, step in enumerate(steps):
        before, seq = ledger.state.to_json(), ledger.state.seq
        try:
            run(ledger, i, step)
        except CrossMarginError:
            assert ledger.state.to_json() == before
            assert ledger.store.last_seq() == seq
            continue
        if step[0] in ("price", "fund"):
            check_pass(ledger, State.from_json(before), seq)
        check_layout(ledger)
    assert ledger.state.imbalance() == 0
    assert ledger.replay().to_json() == ledger.state.to_json()
    sums = {k: v for k, v in ledger.store.account_sums().items() if v}
    assert sums == {k: v for k, v in ledger.state.balances.items() if v}


VENUES = ("binance", "hyperliquid", "dydx")
BINANCE_BRACKETS = load_rulebook("binance-usdm").instruments
ADL_THEN_BAD_DEBT = [
    ("trade", "a", (D("0.9"), 50, "cross")),
    ("trade", "b", (D("-0.5"), 20, "cross")),
    ("price", "", D("-0.1")),
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(VENUES), st.lists(op, min_size=1, max_size=30))
@example("binance", ADL_THEN_BAD_DEBT)
@example("dydx", [("insurance", "", D(1_000)), *ADL_THEN_BAD_DEBT])
def test_random_streams_keep_the_invariants(venue: str, steps: list[tuple[str, str, Any]]) -> None:
    """Every venue's rules, over the Binance brackets. The explicit examples bankrupt a long
    whose deficit outlives the fund, is partly deleveraged against the one profitable short,
    and leaves the rest as bad debt."""
    with Ledger("sqlite://", venue=venue, instruments=BINANCE_BRACKETS, currency="USDT") as ledger:
        check_stream(ledger, steps)


@pytest.mark.skipif(postgres_url() is None, reason=f"PostgreSQL tests need {PG_ENV}")
@settings(max_examples=15, deadline=None)
@given(st.lists(op, min_size=1, max_size=25))
def test_random_streams_keep_the_invariants_on_postgresql(
    steps: list[tuple[str, str, Any]],
) -> None:
    url = postgres_url()
    assert url is not None
    schema = f"cm_prop_{uuid.uuid4().hex[:12]}"
    try:
        with Ledger(url, schema=schema) as ledger:
            check_stream(ledger, steps)
    finally:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


NAMES = ("a", "b", "c", "d", "e", "f", "g")
holding = st.none() | st.tuples(
    st.integers(-500, 500).filter(bool).map(lambda n: D(n) / 100),
    st.sampled_from(["cross", "isolated"]),
    st.sampled_from([None, D(10)]),
)
traders_st = st.dictionaries(
    st.sampled_from(NAMES), st.tuples(st.integers(0, 9_000).map(D), holding)
)


def make_state(traders: dict[str, tuple[D, Any]]) -> State:
    state = State(prices={"BTCUSDT": D(60_000), "ETHUSDT": D(3_000)})
    for name, (wallet, held) in traders.items():
        state.balances[trader(name)] = wallet
        if held is not None:
            q, mode, lev = held
            symbol = "ETHUSDT" if name in "bdfz" else "BTCUSDT"
            state.positions[name] = {symbol: Holding(q, D(59_000), mode, lev)}
            state.balances[isolated(name, symbol)] = wallet / 10
    return state


@settings(max_examples=80, deadline=None)
@given(traders_st, traders_st)
def test_screen_sync_matches_a_rebuild(
    first: dict[str, tuple[D, Any]], changes: dict[str, tuple[D, Any]]
) -> None:
    """Traders added, re-laid, or closed out: the screen brought in step holds what a fresh
    one holds and gives the same per-trader figures and liquidation list."""
    ctx = Context(dict(BINANCE_BRACKETS), "USDT", load_venue("binance"))
    base = {"0": (D(1_000), (D(1), "cross", None)), "z": (D(1_000), (D(-1), "cross", None))}
    before = make_state({**base, **first})
    after = make_state({**base, **first, **changes})
    screen = Screen(before, ctx)
    screen.sync(after, set(changes))
    same_screen(screen, Screen(after, ctx))
