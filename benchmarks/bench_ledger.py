"""Ledger throughput and liquidation-pass speed, each as a ratio to a baseline of the same run.

1. Events/s written through ``Ledger`` commands (one durable transaction per command), against
   (a) the raw INSERT of the same event and posting rows with one commit per command (same
   durability, no engine) and (b) the same rows in one ``executemany`` transaction.
   SQLite (WAL, synchronous=FULL) always; PostgreSQL when CROSSMARGIN_TEST_POSTGRES_URL is set.
2. Liquidation screens/s over ``--book`` accounts (default 100,000) holding BTC perps: a new
   BTC mark ticks the ledger's risk book (every holder re-margined) and the accounts under the
   trigger are listed, against one ``crossmargin.health.evaluate`` per account (measured on a
   sample and scaled to the book).
3. Keeping that risk book in step after one account's fill, by an account already in the book
   or a new one: ``Screen.sync`` against building the screen afresh.

Usage: ``python benchmarks/bench_ledger.py [--commands N] [--book N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from crossmargin.health import evaluate
from crossmargin.ledger import Ledger
from crossmargin.ledger.context import Context
from crossmargin.ledger.journal import Holding, State, trader
from crossmargin.ledger.liquidation import Screen, model_account, model_market
from crossmargin.ledger.store import events, make_engine, migrate, postings
from crossmargin.rules import load_rulebook
from crossmargin.rules.venue import load_venue


def _commands(ledger: Ledger, n: int) -> float:
    """Run ``n`` commands (deposits, trades, prices); return events per second."""
    rng = random.Random(1)
    ledger.price("p0", "BTCUSDT", 60_000)
    start_seq = ledger.state.seq
    t0 = time.perf_counter()
    for i in range(n):
        roll = i % 4
        name = f"t{i % 200}"
        if roll == 0 or trader(name) not in ledger.state.balances:
            ledger.deposit(f"d{i}", name, 1_000)
        elif roll == 3:
            ledger.price(f"p{i}", "BTCUSDT", 60_000 + rng.randint(-300, 300))
        else:
            ledger.trade(f"t{i}", name, "BTCUSDT", Decimal(rng.randint(-5, 5) or 1) / 1000)
    elapsed = time.perf_counter() - t0
    return (ledger.state.seq - start_seq) / elapsed


def _raw(
    url: str, schema: str | None, ledger_url: str, ledger_schema: str | None
) -> tuple[float, float]:
    """Insert the rows the ledger wrote, per command and in one batch; events per second each."""
    with Ledger(ledger_url, schema=ledger_schema) as source, source.store.engine.connect() as conn:
        event_rows = [dict(r._mapping) for r in conn.execute(select(events).order_by(events.c.seq))]
        legs: dict[int, list[dict[str, object]]] = {}
        for r in conn.execute(select(postings)):
            legs.setdefault(r.seq, []).append(dict(r._mapping))
    posting_rows = [legs.get(int(e["seq"]), []) for e in event_rows]
    results = []
    for batched in (False, True):
        engine = make_engine(url, schema)
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM events"))
            conn.execute(text("DELETE FROM postings"))
        t0 = time.perf_counter()
        if batched:
            with engine.begin() as conn:
                conn.execute(insert(events), event_rows)
                conn.execute(insert(postings), [r for ps in posting_rows for r in ps])
        else:
            with engine.connect() as conn:
                for ev, ps in zip(event_rows, posting_rows, strict=True):
                    conn.execute(insert(events), [ev])
                    if ps:
                        conn.execute(insert(postings), ps)
                    conn.commit()
        results.append(len(event_rows) / (time.perf_counter() - t0))
        engine.dispose()
    return results[0], results[1]


def bench_events(commands: int) -> None:
    targets: list[tuple[str, str, str | None]] = []
    tmp = Path(tempfile.mkdtemp())
    targets.append(("sqlite", f"sqlite:///{tmp / 'ledger.db'}", None))
    pg = os.environ.get("CROSSMARGIN_TEST_POSTGRES_URL")
    if pg:
        pg_url = pg.replace("postgresql://", "postgresql+psycopg://", 1)
        targets.append(("postgresql", pg_url, f"cm_bench_{uuid.uuid4().hex[:8]}"))
    else:
        print("postgresql: skipped (set CROSSMARGIN_TEST_POSTGRES_URL)")
    for name, url, schema in targets:
        with Ledger(url, schema=schema) as ledger:
            rate = _commands(ledger, commands)
        raw_url = f"sqlite:///{tmp / 'raw.db'}" if name == "sqlite" else url
        raw_schema = None if schema is None else schema + "_raw"
        per_commit, batch = _raw(raw_url, raw_schema, url, schema)
        print(
            f"{name}: ledger {rate:,.0f} events/s; raw INSERT, commit per command "
            f"{per_commit:,.0f}/s (ratio {rate / per_commit:.2f}); one executemany "
            f"{batch:,.0f}/s (ratio {rate / batch:.3f})"
        )
        if schema is not None:
            engine = create_engine(url)
            with engine.begin() as conn:
                for s in (schema, raw_schema):
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{s}" CASCADE'))
            engine.dispose()


def bench_passes(size: int) -> None:
    rng = random.Random(2)
    book_state = State()
    book_state.prices["BTCUSDT"] = Decimal(60_000)
    for i in range(size):
        name = f"t{i:06d}"
        book_state.balances[trader(name)] = Decimal(rng.choice((500, 1_000, 5_000, 20_000)))
        qty = Decimal(rng.randint(-200, 200) or 1) / 1000
        book_state.positions[name] = {"BTCUSDT": Holding(qty, Decimal(60_000))}
    ctx = Context(dict(load_rulebook("binance-usdm").instruments), "USDT", load_venue("binance"))
    t0 = time.perf_counter()
    screen = Screen(book_state, ctx)
    build = time.perf_counter() - t0
    marks = iter([Decimal(59_400), Decimal(60_000)] * 50)

    def one_pass() -> None:
        book_state.prices["BTCUSDT"] = next(marks)
        screen.sync(book_state, ())
        screen.liquidatable()

    one_pass()
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        one_pass()
    per_pass = (time.perf_counter() - t0) / reps
    timings = {}
    for kind in ("existing", "new"):
        reps_update = 20
        t0 = time.perf_counter()
        for k in range(reps_update):
            name = f"t{rng.randrange(size):06d}" if kind == "existing" else f"t{k:06d}b"
            book_state.balances[trader(name)] = Decimal(1_000)
            book_state.positions[name] = {"BTCUSDT": Holding(Decimal("0.05"), Decimal(60_500))}
            screen.sync(book_state, {name})
        timings[kind] = (time.perf_counter() - t0) / reps_update
    market = model_market(book_state, ctx)
    sample = [f"t{i:06d}" for i in range(0, size, max(size // 200, 1))][:200]
    t0 = time.perf_counter()
    for name in sample:
        evaluate(model_account(book_state, name, "USDT"), market)
    per_account = (time.perf_counter() - t0) / len(sample)
    baseline = per_account * size
    print(
        f"liquidation screen over {size:,} accounts: {1 / per_pass:,.1f} passes/s "
        f"(tick and list {per_pass * 1e3:.2f} ms); "
        f"evaluate() per account {1 / baseline:.4f} passes/s; ratio {baseline / per_pass:,.0f}x"
    )
    for kind, update in timings.items():
        print(
            f"risk book after a fill by one {kind} account: sync "
            f"{update * 1e3:.2f} ms, fresh screen {build:.2f} s; ratio {build / update:,.0f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=2_000)
    parser.add_argument("--book", type=int, default=100_000)
    args = parser.parse_args()
    bench_events(args.commands)
    bench_passes(args.book)


if __name__ == "__main__":
    main()
