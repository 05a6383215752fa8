"""The service's lock-free read path: each account's model kept between changes, the market
published after each, and what they must always equal: the ledger's own account and marks."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from crossmargin.ledger import Deposit, Receipt, Trade
from crossmargin.ledger.liquidation import model_market
from crossmargin.model import Market
from crossmargin.service.settings import Settings
from crossmargin.service.state import ServiceState

from .conftest import BTC, TestClient

ETH = "ETHUSDT"


def _state(path: Path) -> ServiceState:
    return ServiceState(Settings(db_url=f"sqlite:///{path / 'ledger.db'}"))


def _truth(state: ServiceState, account_id: str) -> tuple[object, Market]:
    """The ledger's own model account and its marks, an unmarked holding at its entry."""
    account = state.ledger.account(account_id)
    market = model_market(state.ledger.state, state.ledger.ctx)
    entries = {p.symbol: p.entry_price for p in account.positions if p.symbol not in market.prices}
    return account, Market(market.instruments, {**market.prices, **entries}, market.currency)


def _same(state: ServiceState, account_id: str) -> None:
    account, market = state.priced(account_id)
    want_account, want_market = _truth(state, account_id)
    assert account == want_account
    assert dict(market.prices) == dict(want_market.prices)


@pytest.fixture
def state(tmp_path: Path) -> ServiceState:
    s = _state(tmp_path)
    s.ledger.price("p0", BTC, Decimal(60_000))
    s.ledger.deposit("d0", "alice", Decimal(1000))
    s.ledger.trade("t0", "alice", BTC, Decimal("0.1"), leverage=Decimal(20))
    s.refresh_views(["alice"])
    return s


def test_a_model_is_kept_from_its_first_read_until_the_account_changes(
    state: ServiceState,
) -> None:
    assert state.kept("alice") is None
    account, market = state.priced("alice")
    assert state.kept("alice") == (account, market)
    assert market.prices[BTC] == 60_000.0

    async def tick(price: float) -> None:
        await state.apply_prices({BTC: price})

    asyncio.run(tick(59_500))
    kept = state.kept("alice")
    assert kept is not None
    assert kept[0] is account
    assert kept[1].prices[BTC] == 59_500.0

    async def deposit() -> None:
        def work() -> None:
            (receipt,) = state.ledger.execute([Deposit("d1", "alice", 250)])
            assert isinstance(receipt, Receipt)
            state.after_command([receipt])

        await state.run(work)

    asyncio.run(deposit())
    assert state.kept("alice") is None
    _same(state, "alice")
    assert state.priced("alice")[0].balances["USDT"] == account.balances["USDT"] + 250

    asyncio.run(tick(40_000))
    assert state.kept("alice") is None
    assert state.priced("alice")[0].positions == ()
    with pytest.raises(KeyError):
        state.priced("nobody")


def test_an_unmarked_holding_is_valued_at_its_entry(state: ServiceState) -> None:
    state.ledger.deposit("d-eth", "bob", Decimal(5000))
    state.ledger.trade(
        "t-eth", "bob", ETH, Decimal(1), Decimal(3000), leverage=Decimal(10), price_source="otc"
    )
    state.refresh_views(["bob"])
    assert ETH not in state.ledger.state.prices
    market = state.priced("bob")[1]
    assert market.prices[ETH] == 3000.0
    _same(state, "bob")


def test_another_writers_trade_reaches_the_kept_model_with_the_next_tick(
    tmp_path: Path, state: ServiceState
) -> None:
    """Two service processes on one ledger: a fill through one is caught up by the other at
    its next command, and its kept model is dropped then."""
    before = state.priced("alice")[0]
    other = _state(tmp_path)
    try:
        other.ledger.execute([Trade("t-other", "alice", BTC, Decimal("0.05"))])
    finally:
        other.close()
    kept = state.kept("alice")
    assert kept is not None and kept[0] is before

    async def tick() -> None:
        await state.apply_prices({BTC: 60_100})

    asyncio.run(tick())
    _same(state, "alice")
    assert state.priced("alice")[0].positions[0].qty == pytest.approx(0.15)


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("price"), st.floats(40_000, 80_000)),
        st.tuples(st.just("deposit"), st.sampled_from(["a", "b", "c"]), st.integers(1, 5_000)),
        st.tuples(
            st.just("trade"),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([BTC, ETH]),
            st.sampled_from(["-0.05", "0.02", "0.1", "-0.3"]),
        ),
        st.tuples(st.just("fund"), st.sampled_from(["0.0001", "-0.0003"])),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_STEPS)
def test_every_read_equals_the_ledger_after_any_sequence(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[object, ...]]
) -> None:
    """Whatever ticks, money, trades (refused ones too) and funding come, in whatever order,
    each account's read is the ledger's own account at its own marks."""
    state = _state(tmp_path_factory.mktemp("reads"))
    try:
        state.ledger.price("p0", BTC, Decimal(60_000))
        for name in ("a", "b", "c"):
            state.ledger.deposit(f"d0-{name}", name, Decimal(2_000))
        state.refresh_views()

        async def run() -> None:
            for k, step in enumerate(steps):
                if step[0] == "price":
                    await state.apply_prices({BTC: step[1]})
                else:

                    def work(step: tuple[object, ...] = step, k: int = k) -> None:
                        ledger = state.ledger
                        if step[0] == "deposit":
                            money = Deposit(f"d{k}", str(step[1]), str(step[2]))
                            receipts = ledger.execute([money])
                        elif step[0] == "trade":
                            symbol = str(step[2])
                            quote = (3_000, "otc") if symbol == ETH else (None, None)
                            trade = Trade(
                                f"t{k}",
                                str(step[1]),
                                symbol,
                                str(step[3]),
                                quote[0],
                                leverage=10,
                                price_source=quote[1],
                            )
                            receipts = ledger.execute([trade])
                        else:
                            receipts = [ledger.fund(f"f{k}", BTC, str(step[1]))]
                        state.after_command([r for r in receipts if isinstance(r, Receipt)])

                    await state.run(work)
                for name in ("a", "b", "c"):
                    _same(state, name)

        asyncio.run(run())
    finally:
        state.close()


def test_the_margin_report_does_not_wait_for_the_ledger_lock(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    """While another thread holds the ledger's lock (as a tick being applied does), the margin
    report and the crash distance of an account read before still answer."""
    state: ServiceState = client.app.state.service
    first = client.get(f"/accounts/{alice}/margin", headers=op).json()
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with state.lock:
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        margin = client.get(f"/accounts/{alice}/margin", headers=op)
        crash = client.get(f"/accounts/{alice}/crash", headers=op)
        still_held = not release.is_set()
    finally:
        release.set()
        holder.join()
    assert still_held
    assert margin.status_code == 200 and margin.json() == first
    assert crash.status_code == 200 and crash.json()["crash_distance"] is not None
