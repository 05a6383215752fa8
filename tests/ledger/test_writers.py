"""Many writers: four processes write one database at once (SQLite in WAL mode, PostgreSQL).

Each runs 1,000 mixed commands (deposits to its own and to shared accounts, trades, prices,
withdrawals, funding, and retries of its own earlier keys). Every command must be acknowledged,
refused or answered as a duplicate with a :class:`CrossMarginError` only; afterwards every
acknowledged command is in the journal once, the deposits and withdrawals in the state are
exactly those acknowledged, and money is conserved to the last unit.
"""

from __future__ import annotations

import contextlib
import os
import random
from decimal import Decimal as D

import pytest

from crossmargin.ledger import Ledger
from crossmargin.model import CrossMarginError

from .conftest import Database

WRITERS = 4
COMMANDS = 1_000
SHARED = ("s0", "s1", "s2", "s3")


def writer(database: Database, n: int, out: int) -> None:
    """Writer ``n``: one line per command, ``ack``/``dup``/``err`` KIND KEY AMOUNT."""
    rng = random.Random(n)
    own = [f"w{n}a{k}" for k in range(4)]
    done: list[tuple[str, str, str]] = []
    with os.fdopen(out, "w") as lines, Ledger(database.url, schema=database.schema) as ledger:
        price = D(60_000)
        for i in range(COMMANDS):
            key = f"w{n}-{i}"
            roll = rng.random()
            amount, kind = "", "?"
            try:
                if roll < 0.3:
                    account = rng.choice(own + list(SHARED))
                    amount = str(rng.randint(100, 2_000))
                    kind = "deposit"
                    receipt = ledger.deposit(key, account, amount)
                    done.append((key, account, amount))
                elif roll < 0.62:
                    qty = D(rng.randint(-20, 20) or 1) / 1000
                    account = rng.choice(own + list(SHARED))
                    kind = "trade"
                    receipt = ledger.trade(key, account, "BTCUSDT", qty)
                elif roll < 0.77 or not done:
                    price = (price * D(1 + rng.uniform(-0.01, 0.01))).quantize(D("0.01"))
                    kind = "price"
                    receipt = ledger.price(key, "BTCUSDT", price)
                elif roll < 0.87:
                    amount = str(rng.randint(1, 300))
                    account = rng.choice(own + list(SHARED))
                    kind = "withdraw"
                    receipt = ledger.withdraw(key, account, amount)
                elif roll < 0.92:
                    kind = "fund"
                    receipt = ledger.fund(key, "BTCUSDT", "0.0001")
                else:
                    key, account, amount = rng.choice(done)
                    kind = "retry"
                    receipt = ledger.deposit(key, account, amount)
                    amount = ""
                    with contextlib.suppress(CrossMarginError):
                        ledger.deposit(key, account, "0.5")
                        kind = "reused"
                reply = "dup" if receipt.duplicate else "ack"
            except CrossMarginError:
                reply = "err"
            except Exception as error:
                reply, kind = "raise", type(error).__name__
            lines.write(f"{reply} {kind} {key} {amount or '-'}\n")
            lines.flush()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the writers are forked processes")
def test_four_writers_lose_nothing_and_double_nothing(database: Database) -> None:
    with Ledger(database.url, schema=database.schema) as ledger:
        ledger.price("start", "BTCUSDT", 60_000)
    children = []
    for n in range(WRITERS):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                writer(database, n, write)
            finally:
                os._exit(0)
        os.close(write)
        children.append((pid, read))
    replies: list[list[str]] = []
    for pid, read in children:
        with os.fdopen(read) as lines:
            replies.extend(line.split() for line in lines)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    raised = [r for r in replies if r[0] == "raise"]
    assert not raised, raised[:5]
    assert len(replies) == WRITERS * COMMANDS
    acked = {r[2]: r for r in replies if r[0] == "ack"}
    retries = [r for r in replies if r[1] in ("retry", "reused")]
    assert retries and [r for r in retries if r[:2] != ["dup", "retry"]] == []
    with Ledger(database.url, schema=database.schema) as ledger:
        for key in acked:
            assert ledger.store.command(key) is not None, key
        deposited = sum((D(r[3]) for r in acked.values() if r[1] == "deposit"), start=D(0))
        withdrawn = sum((D(r[3]) for r in acked.values() if r[1] == "withdraw"), start=D(0))
        assert ledger.state.deposited == deposited
        assert ledger.state.withdrawn == withdrawn
        assert ledger.state.imbalance() == 0
        sums = {k: v for k, v in ledger.store.account_sums().items() if v}
        assert sums == {k: v for k, v in ledger.state.balances.items() if v}
        assert ledger.replay().to_json() == ledger.state.to_json()
        assert ledger.store.last_seq() == ledger.state.seq
