"""Crash safety: SIGKILL a worker at random points while commands stream in, restart, retry.

After every restart the client resends each command it holds no acknowledgement for (and now
and then one it does, which must come back as a duplicate). At the end the journal must hold
every command exactly once, and the state must equal, bit for bit, that of a run that never
crashed (an independent second execution of the same commands in a fresh database).
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from crossmargin.ledger import Ledger
from crossmargin.model import CrossMarginError

from .conftest import Database
from .crash_worker import execute

WORKER = Path(__file__).with_name("crash_worker.py")


def commands(seed: int, count: int) -> list[dict[str, Any]]:
    """A seeded stream: deposits, trades and a falling then recovering price."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = [{"key": "p0", "op": "price", "price": "60000"}]
    for i in range(6):
        out.append({"key": f"d{i}", "op": "deposit", "account": f"t{i}", "amount": "2000"})
    price = D(60_000)
    for n in range(count):
        roll = rng.random()
        if roll < 0.45:
            qty = D(rng.randint(-30, 30) or 1) / 100
            out.append(
                {"key": f"t{n}", "op": "trade", "account": f"t{rng.randrange(6)}", "qty": str(qty)}
            )
        elif roll < 0.9:
            price = (price * D(1 + rng.uniform(-0.04, 0.035))).quantize(D("0.01"))
            out.append({"key": f"p{n + 1}", "op": "price", "price": str(price)})
        elif roll < 0.95:
            out.append({"key": f"f{n}", "op": "fund", "rate": "0.0003"})
        else:
            out.append(
                {
                    "key": f"e{n}",
                    "op": "deposit",
                    "account": f"t{rng.randrange(6)}",
                    "amount": "500",
                }
            )
    return out


def spawn(database: Database) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), database.url, database.schema or ""],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def send(proc: subprocess.Popen[str], command: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(command) + "\n")
    proc.stdin.flush()


def test_sigkill_loses_nothing_acknowledged_and_applies_nothing_twice(database: Database) -> None:
    stream = commands(seed=11, count=60)
    rng = random.Random(5)
    acked: set[str] = set()
    in_flight: str | None = None
    i = 0
    restarts = 0
    while i < len(stream):
        proc = spawn(database)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            if acked and rng.random() < 0.7:
                retry = stream[rng.randrange(i)]
                send(proc, retry)
                assert proc.stdout.readline().split() == ["dup", retry["key"]]
            budget = rng.randint(5, 30)
            while i < len(stream):
                send(proc, stream[i])
                budget -= 1
                if budget == 0:
                    time.sleep(rng.uniform(0.0, 0.01))
                    proc.kill()
                    in_flight = stream[i]["key"]
                    break
                reply, key = proc.stdout.readline().split()
                allowed = {"ack", "err"} | ({"dup"} if key == in_flight else set())
                assert key == stream[i]["key"] and reply in allowed
                acked.add(key)
                in_flight = None
                i += 1
        finally:
            proc.kill()
            proc.wait(timeout=30)
            proc.stdin.close()
            proc.stdout.close()
        restarts += 1
    assert restarts >= 3

    with Ledger("sqlite://") as clean:
        for command in stream:
            with contextlib.suppress(CrossMarginError):
                execute(clean, command)
        expected = clean.state.to_json()
        expected_seq = clean.state.seq
    with Ledger(database.url, schema=database.schema) as ledger:
        assert ledger.state.to_json() == expected
        assert ledger.store.last_seq() == expected_seq
        assert ledger.replay().to_json() == expected
        assert ledger.state.imbalance() == 0
        for key in acked:
            assert ledger.store.command(key) is not None
