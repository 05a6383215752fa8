"""Crash safety: SIGKILL the writer at every kind of point, reopen, resend, compare.

A child process (forked, so a kill point costs milliseconds) opens a fresh ledger and runs a
fixed stream of every command kind (deposits, cross and isolated trades, refused orders and
withdrawals, prices that liquidate, bankrupt and deleverage, funding, withdrawals), with a
snapshot every few events. It kills itself with SIGKILL at one chosen point: before the k-th SQL
statement or commit it sends (first open's schema creation included, snapshot writes included),
or right after a command committed but before it was acknowledged. The parent then reopens the
database, resends every command from the first one without an acknowledgement, and resends a
few acknowledged ones, which must come back as duplicates. The result must equal an
uninterrupted run: the same events, balances, positions and insurance fund; the stored postings,
a replay and a replay from the newest snapshot all agree; every acknowledged command is in the
journal once, and the journal is gapless.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, event

from crossmargin.ledger import Ledger, Receipt
from crossmargin.model import CrossMarginError

from .conftest import Database

STREAM: list[tuple[Any, ...]] = [
    ("price", "p0", "60000"),
    ("deposit", "d1", "a", "10000"),
    ("deposit", "d2", "b", "10000"),
    ("deposit", "d3", "c", "3000"),
    ("deposit", "d4", "e", "6000"),
    ("trade", "t1", "a", "1.5", 20, "cross"),
    ("trade", "t2", "b", "-0.8", None, "cross"),
    ("trade", "t3", "c", "0.2", 10, "isolated"),
    ("trade", "t4", "e", "-0.6", None, "cross"),
    ("fund", "f1", "0.0001"),
    ("withdraw", "w1", "b", "100"),
    ("withdraw", "w2", "a", "999999"),
    ("price", "p1", "59000"),
    ("trade", "t5", "c", "0.05", 10, "isolated"),
    ("price", "p2", "58000"),
    ("fund", "f2", "-0.0002"),
    ("price", "p3", "42000"),
    ("deposit", "d5", "a", "500"),
    ("price", "p4", "45000"),
    ("trade", "t6", "e", "0.2", None, "cross"),
    ("withdraw", "w3", "e", "50"),
    ("fund", "f3", "0.0001"),
    ("price", "p5", "47000"),
]
"""Refused on the way: w2 (above the available balance) and t5 (isolated margin short of
initial margin). p3 is a 27.6% gap: ``a`` is liquidated bankrupt, deleveraged against the
shorts, and the rest is bad debt."""

SNAPSHOT_EVERY = 5


def run(ledger: Ledger, step: tuple[Any, ...]) -> Receipt:
    kind, key, *args = step
    if kind == "price":
        return ledger.price(key, "BTCUSDT", args[0])
    if kind == "deposit":
        return ledger.deposit(key, *args)
    if kind == "withdraw":
        return ledger.withdraw(key, *args)
    if kind == "fund":
        return ledger.fund(key, "BTCUSDT", args[0])
    account, qty, leverage, mode = args
    return ledger.trade(key, account, "BTCUSDT", qty, leverage=leverage, margin_mode=mode)


def _open(database: Database) -> Ledger:
    return Ledger(database.url, schema=database.schema, snapshot_every=SNAPSHOT_EVERY)


@contextlib.contextmanager
def counting(stop: int | None) -> Iterator[list[int]]:
    """Count every statement and commit any engine sends; SIGKILL this process before the
    ``stop``-th."""
    seen = [0]

    def tick(*_: Any) -> None:
        seen[0] += 1
        if seen[0] == stop:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(Engine, "before_cursor_execute", tick)
    event.listen(Engine, "commit", tick)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", tick)
        event.remove(Engine, "commit", tick)


def child(database: Database, write: int, statement: int | None, unacked: int | None) -> None:
    """The writer: runs the stream, one reply line per command on ``write``; dies as told."""
    with os.fdopen(write, "w") as out, counting(statement), _open(database) as ledger:
        for n, step in enumerate(STREAM):
            try:
                run(ledger, step)
                reply = "ack"
            except CrossMarginError:
                reply = "err"
            if n == unacked:
                os.kill(os.getpid(), signal.SIGKILL)
            out.write(f"{reply} {step[1]}\n")
            out.flush()


def crash(database: Database, statement: int | None, unacked: int | None) -> dict[str, str]:
    """Fork the writer, let it die at its point; the replies it sent before, by key."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            child(database, write, statement, unacked)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as lines:
        replies = dict(reversed(line.split()) for line in lines)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed or (statement is None and unacked is None), status
    return replies


@dataclass(frozen=True)
class Outcome:
    state: str
    events: list[tuple[str, str]]
    commands: dict[str, tuple[int, int]]


def outcome(ledger: Ledger) -> Outcome:
    """The journal's events, the state they imply and the event range of every command."""
    ranges = {}
    for step in STREAM:
        stored = ledger.store.command(step[1])
        if stored is not None:
            ranges[step[1]] = (stored.first_seq, stored.last_seq)
    return Outcome(
        ledger.state.to_json(),
        [(str(e.kind), e.to_json()) for e in ledger.store.events()],
        ranges,
    )


def statements(database: Database) -> int:
    """Statements and commits of one uninterrupted run (first open included)."""
    with counting(None) as seen, _open(database) as ledger:
        for step in STREAM:
            with contextlib.suppress(CrossMarginError):
                run(ledger, step)
    return seen[0]


def resume_and_check(database: Database, replies: dict[str, str], expected: Outcome) -> None:
    acked = [s for s in STREAM if replies.get(s[1]) == "ack"]
    first = next((n for n, s in enumerate(STREAM) if s[1] not in replies), len(STREAM))
    with _open(database) as ledger:
        for step in acked[:: max(1, len(acked) // 3)]:
            assert run(ledger, step).duplicate
        for step in STREAM[first:]:
            with contextlib.suppress(CrossMarginError):
                run(ledger, step)
        got = outcome(ledger)
        assert got.state == expected.state
        assert got.events == expected.events
        assert ledger.replay().to_json() == expected.state
        assert ledger.replay(from_snapshot=True).to_json() == expected.state
        assert ledger.state.imbalance() == 0
        sums = {k: v for k, v in ledger.store.account_sums().items() if v}
        assert sums == {k: v for k, v in ledger.state.balances.items() if v}
        assert ledger.store.last_seq() == len(expected.events)
        assert got.commands == expected.commands
        assert {s[1] for s in acked} <= set(got.commands)


def reset(database: Database) -> None:
    """Empty the database for the next kill point."""
    if database.schema is None:
        path = database.url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(database.url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE'))
    engine.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="kill points fork the writer")
def test_sigkill_at_every_kind_of_point_restarts_cleanly(database: Database) -> None:
    total = statements(database)
    with _open(database) as ledger:
        expected = outcome(ledger)
        kinds = {kind for kind, _ in expected.events}
    assert {"liquidation_fill", "adl_fill", "funding", "withdrawal", "bad_debt"} <= kinds
    reset(database)
    points: list[tuple[int | None, int | None]] = [(k, None) for k in range(1, 25)]
    points += [(k, None) for k in range(25, total + 1, max(1, (total - 25) // 70))]
    points += [(None, n) for n in range(0, len(STREAM), 2)]
    assert len(points) >= 100
    for statement, unacked in points:
        replies = crash(database, statement, unacked)
        resume_and_check(database, replies, expected)
        reset(database)
