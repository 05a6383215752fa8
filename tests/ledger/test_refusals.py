"""Bad commands are refused cleanly, on both backends: a CrossMarginError naming the field, and
nothing written; amounts in range are kept exactly; identifiers never reach SQL as text."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, create_engine

from crossmargin.ledger import Ledger
from crossmargin.ledger.requests import Deposit, Price, Trade
from crossmargin.model import CrossMarginError

from .conftest import Database

Step = Callable[[Ledger], Any]

REFUSED: list[tuple[str, Step, str]] = [
    ("huge deposit", lambda lg: lg.deposit("x", "a", 10**16), "amount: must be at most"),
    ("int too big for a float", lambda lg: lg.deposit("x", "a", 10**400), "amount: must be at"),
    (
        "40-digit amount",
        lambda lg: lg.deposit("x", "a", "1.000000000000000000000000000000000000001"),
        "amount: at most 8 decimal places",
    ),
    ("funding rate 1e30", lambda lg: lg.fund("x", "BTCUSDT", 1e30), "rate: must be at most"),
    ("funding above the clamp", lambda lg: lg.fund("x", "BTCUSDT", "0.031"), "rate: must be"),
    ("300-character id", lambda lg: lg.deposit("x", "a" * 300, 1), "account: must be 1-64"),
    ("null id", lambda lg: lg.deposit("x", None, 1), "account: must be 1-64"),
    ("list id", lambda lg: lg.deposit("x", ["a"], 1), "account: must be 1-64"),
    ("id with a colon", lambda lg: lg.deposit("x", "a:b", 1), "account: must be 1-64"),
    ("key with NUL", lambda lg: lg.deposit("x\x00", "a", 1), "key: idempotency key"),
    ("key too long", lambda lg: lg.deposit("k" * 201, "a", 1), "key: idempotency key"),
    ("fill at 1e-30", lambda lg: lg.trade("x", "a", "BTCUSDT", 1, 1e-30), "price: at most 8"),
    (
        "fill far from the mark",
        lambda lg: lg.trade("x", "a", "BTCUSDT", "0.01", 1),
        "price: 1 is more than 5% from the mark",
    ),
    (
        "40-digit price",
        lambda lg: lg.price("x", "BTCUSDT", "6" * 40),
        "price: must be at most",
    ),
    ("price 0", lambda lg: lg.price("x", "BTCUSDT", 0), "price: must be >="),
    ("qty beyond range", lambda lg: lg.trade("x", "a", "BTCUSDT", 10**10), "qty: must be at"),
    ("leverage below 1", lambda lg: lg.trade("x", "a", "BTCUSDT", 1, leverage=0.5), "leverage"),
    ("maker not a bool", lambda lg: lg.trade("x", "a", "BTCUSDT", 1, maker="yes"), "maker"),
    ("unknown symbol", lambda lg: lg.price("x", "NOPE", 1), "symbol: unknown instrument"),
]


@pytest.fixture
def ledger(database: Database) -> Any:
    with Ledger(database.url, schema=database.schema) as lg:
        lg.deposit("open", "a", 10_000)
        lg.price("mark", "BTCUSDT", 60_000)
        yield lg


@pytest.mark.parametrize(("name", "step", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_commands_are_refused_naming_the_field(
    ledger: Ledger, name: str, step: Step, message: str
) -> None:
    before, seq = ledger.state.to_json(), ledger.store.last_seq()
    with pytest.raises(CrossMarginError) as raised:
        step(ledger)
    assert str(raised.value).startswith(message), str(raised.value)
    assert "\n" not in str(raised.value)
    assert ledger.state.to_json() == before
    assert ledger.store.last_seq() == seq


def test_large_amounts_are_kept_exactly(ledger: Ledger) -> None:
    """Above the old 64-bit units (9.2e10) and at the top of the range, to the last quantum."""
    ledger.deposit("big", "whale", "92233720368.54775808")
    ledger.deposit("top", "whale", "999999999999999.99999999")
    expected = D("92233720368.54775808") + D("999999999999999.99999999")
    assert ledger.state.balance("trader:whale") == expected
    assert ledger.store.account_sums()["trader:whale"] == expected
    assert ledger.replay().balance("trader:whale") == expected


def test_a_fill_off_the_band_is_taken_when_it_names_its_source(ledger: Ledger) -> None:
    receipt = ledger.trade("otc", "a", "BTCUSDT", "0.01", 50_000, price_source="otc:desk-7")
    (fill, _fee) = receipt.events
    assert fill.body["price"] == "50000" and fill.body["source"] == "otc:desk-7"


def test_a_batch_refuses_one_command_and_commits_the_rest(ledger: Ledger) -> None:
    results = ledger.execute(
        [
            Deposit("b1", "b", 100),
            Trade("b2", "nobody", "BTCUSDT", 1),
            Price("b3", "BTCUSDT", 60_100),
            Deposit("b1", "b", 100),
            Deposit("b1", "b", 200),
        ]
    )
    ok, refused, priced, again, reused = results
    assert not isinstance(ok, CrossMarginError) and not ok.duplicate
    assert isinstance(refused, CrossMarginError) and refused.path == "account"
    assert not isinstance(priced, CrossMarginError)
    assert not isinstance(again, CrossMarginError) and again.duplicate
    assert isinstance(reused, CrossMarginError) and reused.path == "key"
    assert ledger.state.balance("trader:b") == 100
    assert ledger.state.prices["BTCUSDT"] == 60_100


@pytest.mark.parametrize(
    "schema",
    ['x"; DROP TABLE events; --', "1abc", "a-b", "a" * 64, "", "public.events"],
)
def test_schema_names_are_identifiers_or_refused(schema: str, tmp_path: Path) -> None:
    with pytest.raises(CrossMarginError, match=r"^schema: must be"):
        Ledger(f"sqlite:///{tmp_path / 'l.db'}", schema=schema)


def test_a_journal_of_integer_units_migrates_to_exact_amounts(tmp_path: Path) -> None:
    """A database left at revision 0001 (postings in 64-bit units of 1e-8) opens at the newest
    revision with the same amounts, exactly."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    old = MetaData()
    version = Table("alembic_version", old, Column("version_num", String(32), primary_key=True))
    Table("commands", old, Column("key", String(200), primary_key=True),
          Column("digest", String(64)), Column("first_seq", BigInteger),
          Column("last_seq", BigInteger))  # fmt: skip
    events = Table("events", old, Column("seq", BigInteger, primary_key=True),
                   Column("kind", String(32)), Column("body", Text))  # fmt: skip
    postings = Table("postings", old, Column("seq", BigInteger, primary_key=True),
                     Column("leg", Integer, primary_key=True), Column("source", String(200)),
                     Column("target", String(200)), Column("units", BigInteger))  # fmt: skip
    Table("snapshots", old, Column("seq", BigInteger, primary_key=True), Column("state", Text))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(version.insert(), [{"version_num": "0001"}])
        conn.execute(
            events.insert(),
            [{"seq": 1, "kind": "deposit", "body": '{"account":"a","amount":"1234.5678901"}'}],
        )
        leg = {"seq": 1, "leg": 0, "source": "capital", "target": "trader:a"}
        conn.execute(postings.insert(), [{**leg, "units": 123456789010}])
    engine.dispose()
    with Ledger(url) as ledger:
        assert ledger.state.balance("trader:a") == D("1234.5678901")
        sums = ledger.store.account_sums()
        assert sums["trader:a"] == D("1234.5678901") and sums["capital"] == -D("1234.5678901")
        ledger.deposit("more", "a", "0.00000001")
        assert ledger.store.account_sums()["trader:a"] == D("1234.56789011")
