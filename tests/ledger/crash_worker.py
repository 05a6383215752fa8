"""Ledger worker for the crash test: one JSON command per stdin line, one reply line each.

Usage: ``python crash_worker.py URL [SCHEMA]``. Replies ``ack KEY`` (new) or ``dup KEY``
(retried) only after the command is committed, or ``err KEY`` for a refused command.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from crossmargin.ledger import Ledger
from crossmargin.model import CrossMarginError


def execute(ledger: Ledger, command: dict[str, Any]) -> bool:
    """Run one command; True if it was a retry of an accepted one."""
    key, op = command["key"], command["op"]
    if op == "deposit":
        return ledger.deposit(key, command["account"], command["amount"]).duplicate
    if op == "trade":
        return ledger.trade(key, command["account"], "BTCUSDT", command["qty"]).duplicate
    if op == "price":
        return ledger.price(key, "BTCUSDT", command["price"]).duplicate
    return ledger.fund(key, "BTCUSDT", command["rate"]).duplicate


def main() -> None:
    url = sys.argv[1]
    schema = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    with Ledger(url, schema=schema) as ledger:
        print("ready", flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            try:
                reply = "dup" if execute(ledger, command) else "ack"
            except CrossMarginError:
                reply = "err"
            print(f"{reply} {command['key']}", flush=True)


if __name__ == "__main__":
    main()
