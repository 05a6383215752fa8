"""Invariants on random command streams (hypothesis), checked independently of the engine:

- conservation: deposits - withdrawals - the sum over all ledger accounts is exactly 0, and
  the stored postings sum to the same balances;
- after every liquidation pass no wallet is negative and no position is under maintenance;
  bad debt is written only while the insurance fund is empty;
- replaying the journal gives the live state bit for bit; a rejected command changes nothing.
"""

from __future__ import annotations

import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import create_engine, text

from crossmargin.ledger import Ledger, State
from crossmargin.ledger.journal import INSURANCE, EventKind, apply
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError

from .conftest import PG_ENV, postgres_url

ACCOUNTS = ("a", "b", "c")
amount = st.integers(1, 5_000).map(D)
qty = st.integers(-1_000, 1_000).filter(bool).map(lambda n: D(n) / 1000)
trade = st.tuples(
    st.just("trade"),
    st.sampled_from(ACCOUNTS),
    st.tuples(qty, st.sampled_from([None, 5, 20, 50]), st.sampled_from(["cross", "isolated"])),
)
op = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(ACCOUNTS), amount),
    st.tuples(st.just("withdraw"), st.sampled_from(ACCOUNTS), amount),
    st.tuples(st.just("insurance"), st.just(""), st.integers(0, 2_000).map(D)),
    trade,
    trade,
    st.tuples(st.just("price"), st.just(""), st.integers(-250, 250).map(lambda n: D(n) / 1000)),
    st.tuples(st.just("fund"), st.just(""), st.integers(-100, 100).map(lambda n: D(n) / 100_000)),
)


def run(ledger: Ledger, i: int, step: tuple[str, str, Any]) -> None:
    kind, who, arg = step
    key = f"k{i}"
    if kind == "deposit":
        ledger.deposit(key, who, arg)
    elif kind == "withdraw":
        ledger.withdraw(key, who, arg)
    elif kind == "insurance":
        if arg > 0:
            ledger.deposit_insurance(key, arg)
    elif kind == "trade":
        q, lev, mode = arg
        ledger.trade(key, who, "BTCUSDT", q, leverage=lev, margin_mode=mode)
    elif kind == "price":
        mark = ledger.state.prices["BTCUSDT"]
        ledger.price(key, "BTCUSDT", (mark * (1 + arg)).quantize(D("0.01")))
    else:
        ledger.fund(key, "BTCUSDT", arg)


def check_pass(ledger: Ledger, before: State, seq: int) -> None:
    """Walk the command's events from the state before it; then check every account."""
    state = before
    for event in ledger.store.events(after=seq):
        if event.kind == EventKind.BAD_DEBT:
            assert state.balance(INSURANCE) <= 0
        apply(state, event)
    assert state.to_json() == ledger.state.to_json()
    for name, value in ledger.state.balances.items():
        if name.startswith("trader:") and name[7:] not in ledger.state.positions:
            assert value >= 0, name
    for account in ledger.state.positions:
        health = ledger.health(account)
        assert all(p.status < Status.LIQUIDATABLE for p in health.positions)


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
    assert ledger.state.imbalance() == 0
    assert ledger.replay().to_json() == ledger.state.to_json()
    sums = {k: v for k, v in ledger.store.account_sums().items() if v}
    assert sums == {k: v for k, v in ledger.state.balances.items() if v}


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=1, max_size=25))
def test_random_streams_keep_the_invariants(steps: list[tuple[str, str, Any]]) -> None:
    with Ledger("sqlite://") as ledger:
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
