"""Commands: idempotency, bad input, pre-trade checks, funding, replay and durability."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal as D

import pytest

from crossmargin.ledger import Ledger
from crossmargin.ledger.funding import load_funding
from crossmargin.model import CrossMarginError

from .conftest import Database


@pytest.fixture
def ledger(database: Database) -> Iterator[Ledger]:
    with Ledger(database.url, schema=database.schema) as opened:
        opened.deposit("d", "a", 10_000)
        opened.price("p", "BTCUSDT", 60_000)
        yield opened


def test_retried_command_is_applied_once(ledger: Ledger) -> None:
    """The same key and body twice: one deposit, and the retry answers with the same events."""
    first = ledger.deposit("k", "a", 5)
    again = ledger.deposit("k", "a", "5.00")
    assert not first.duplicate and again.duplicate
    assert again.events == first.events and again.first_seq == first.first_seq
    assert ledger.state.balance("trader:a") == D(10_005)


def test_same_key_with_another_body_is_refused(ledger: Ledger) -> None:
    """A key names one command: reusing it for another amount is an error and changes nothing."""
    ledger.deposit("k", "a", 5)
    before = ledger.state.to_json()
    with pytest.raises(CrossMarginError, match="reused with another body") as error:
        ledger.deposit("k", "a", 6)
    assert error.value.path == "key"
    assert ledger.state.to_json() == before


BAD: list[tuple[str, Callable[[Ledger], object], str]] = [
    ("unknown account", lambda lg: lg.withdraw("x", "nobody", 1), "account"),
    ("unknown account trade", lambda lg: lg.trade("x", "nobody", "BTCUSDT", 1), "account"),
    ("negative deposit", lambda lg: lg.deposit("x", "a", -1), "amount"),
    ("zero deposit", lambda lg: lg.deposit("x", "a", 0), "amount"),
    ("NaN deposit", lambda lg: lg.deposit("x", "a", float("nan")), "amount"),
    ("infinite deposit", lambda lg: lg.deposit("x", "a", "Infinity"), "amount"),
    ("sub-unit deposit", lambda lg: lg.deposit("x", "a", "0.000000001"), "amount"),
    ("text amount", lambda lg: lg.deposit("x", "a", "ten"), "amount"),
    ("withdraw above balance", lambda lg: lg.withdraw("x", "a", "10000.01"), "amount"),
    ("unknown instrument", lambda lg: lg.trade("x", "a", "DOGEBTC", 1), "symbol"),
    ("unknown instrument price", lambda lg: lg.price("x", "NOPE", 1), "symbol"),
    ("zero qty", lambda lg: lg.trade("x", "a", "BTCUSDT", 0), "qty"),
    ("NaN qty", lambda lg: lg.trade("x", "a", "BTCUSDT", float("nan")), "qty"),
    ("negative price", lambda lg: lg.trade("x", "a", "BTCUSDT", 1, -5), "price"),
    ("bad mode", lambda lg: lg.trade("x", "a", "BTCUSDT", 1, margin_mode="hedge"), "margin_mode"),
    ("empty key", lambda lg: lg.deposit("", "a", 1), "key"),
]


@pytest.mark.parametrize(("call", "path"), [(c, p) for _, c, p in BAD], ids=[n for n, _, _ in BAD])
def test_bad_input_raises_and_changes_nothing(
    ledger: Ledger, call: Callable[[Ledger], object], path: str
) -> None:
    """Each bad command raises CrossMarginError naming the field; state and journal unchanged."""
    before, seq = ledger.state.to_json(), ledger.store.last_seq()
    with pytest.raises(CrossMarginError) as error:
        call(ledger)
    assert error.value.path == path
    assert ledger.state.to_json() == before
    assert ledger.store.last_seq() == seq
    assert ledger.store.command("x") is None


def test_order_beyond_initial_margin_is_rejected(ledger: Ledger) -> None:
    """10,000 of equity: 1.6 BTC at 60,000 is 96,000 of notional; at 10x IM is 9,600 (accepted),
    at 10x 1.7 BTC needs 10,200 > 10,000 - fee (rejected by orders.what_if)."""
    with pytest.raises(CrossMarginError, match="initial margin breached"):
        ledger.trade("x", "a", "BTCUSDT", "1.7", leverage=10)
    assert "a" not in ledger.state.positions
    ledger.trade("ok", "a", "BTCUSDT", "1.6", leverage=10)
    assert ledger.state.positions["a"]["BTCUSDT"].qty == D("1.6")


def test_leverage_above_the_bracket_cap_is_rejected(ledger: Ledger) -> None:
    """125x is allowed only below 50,000 of notional (venues.md 1.2): 1 BTC at 60,000 is refused."""
    with pytest.raises(CrossMarginError, match="bracket leverage exceeded"):
        ledger.trade("x", "a", "BTCUSDT", 1, leverage=125)
    ledger.trade("ok", "a", "BTCUSDT", "0.5", leverage=125)


def test_withdrawal_is_limited_to_the_available_balance(ledger: Ledger) -> None:
    """Long 1 BTC at 60,000 and 10x: IM 6,000, fee 30, wallet 9,970; available 3,970 exactly."""
    ledger.trade("t", "a", "BTCUSDT", 1, leverage=10)
    with pytest.raises(CrossMarginError, match="available"):
        ledger.withdraw("w1", "a", "3970.01")
    ledger.withdraw("w2", "a", "3970")
    assert ledger.state.balance("trader:a") == D(6_000)


def test_funding_from_the_bundled_series(ledger: Ledger) -> None:
    """Binance BTCUSDT funding 2020-03-01 00:00 was 0.049317% (bundled excerpt of the real series).

    A 1 BTC long at mark 60,000 pays 60,000 x 0.00049317 = 29.5902; a 0.5 short receives 14.7951.
    """
    rate = load_funding()[0]
    assert (str(rate.time), rate.rate) == ("2020-03-01 00:00:00", D("0.00049317"))
    ledger.deposit("d2", "b", 10_000)
    ledger.trade("t1", "a", "BTCUSDT", 1, maker=True)
    ledger.trade("t2", "b", "BTCUSDT", "-0.5", maker=True)
    wallets = ledger.state.balance("trader:a"), ledger.state.balance("trader:b")
    ledger.fund("f", "BTCUSDT", rate.rate)
    assert ledger.state.balance("trader:a") == wallets[0] - D("29.5902")
    assert ledger.state.balance("trader:b") == wallets[1] + D("14.7951")
    assert ledger.state.imbalance() == 0


def test_reopen_replay_and_snapshots(database: Database) -> None:
    """Reopening (with snapshots) gives the same state, bit for bit, as a replay of the journal;
    a replay to an earlier event gives the state as it was then; postings agree with balances."""
    with Ledger(database.url, schema=database.schema, snapshot_every=3) as lg:
        lg.deposit("d", "a", 1_000)
        lg.price("p", "BTCUSDT", 60_000)
        lg.trade("t", "a", "BTCUSDT", "0.1")
        early = lg.state.to_json()
        seq = lg.state.seq
        lg.price("p2", "BTCUSDT", 61_000)
        lg.trade("t2", "a", "BTCUSDT", "-0.05")
        live = lg.state.to_json()
        assert lg.store.snapshot() is not None
    with Ledger(database.url, schema=database.schema) as lg:
        assert lg.state.to_json() == live
        assert lg.replay().to_json() == live
        assert lg.replay(seq).to_json() == early
        assert lg.replay(seq, from_snapshot=True).to_json() == early
        sums = lg.store.account_sums()
        assert {k: v for k, v in sums.items() if v} == {
            k: v for k, v in lg.state.balances.items() if v
        }


def test_take_changed_names_the_traders_each_change_moved(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Money and positions name their traders; a mark alone names none unless it liquidates;
    funding names every holder; another writer's events name theirs once caught up; a reload
    (a failed transaction) may have changed anyone."""
    with (
        Ledger(database.url, schema=database.schema) as one,
        Ledger(database.url, schema=database.schema) as other,
    ):
        assert one.take_changed() is None
        one.price("p0", "BTCUSDT", 60_000)
        assert one.take_changed() == set()
        one.deposit("d-a", "a", 1_000)
        one.deposit("d-b", "b", 10_000)
        assert one.take_changed() == {"a", "b"}
        one.trade("t-a", "a", "BTCUSDT", D("0.2"), leverage=20)
        one.trade("t-b", "b", "BTCUSDT", D("0.1"), leverage=5)
        assert one.take_changed() == {"a", "b"}
        assert one.take_changed() == set()
        one.price("p1", "BTCUSDT", 59_900)
        assert one.take_changed() == set()
        one.fund("f", "BTCUSDT", "0.0001")
        assert one.take_changed() == {"a", "b"}
        one.price("p2", "BTCUSDT", 55_000)
        assert one.take_changed() == {"a"}
        assert one.state.positions.get("a", {}) == {}
        other.deposit("d-c", "c", 500)
        one.price("p3", "BTCUSDT", 55_100)
        assert one.take_changed() == {"c"}
        one.execute([])
        assert one.take_changed() == set()

        def lost(*_: object) -> None:
            raise RuntimeError("connection lost")

        before = one.state.balance("trader:b")
        monkeypatch.setattr(one.store, "append", lost)
        with pytest.raises(RuntimeError):
            one.deposit("d-lost", "b", 1)
        assert one.take_changed() is None
        assert one.state.balance("trader:b") == before
