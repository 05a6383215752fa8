"""Ledger throughput, latency, replay and liquidation-pass speed, each as a ratio to a baseline
timed in the same run (medians of repeats, after a warm-up that compiles the kernels).

1. Commands/s for a realistic mix (deposits, trades at mixed leverage, prices that liquidate,
   funding) run through :meth:`Ledger.execute` in batches of 1, 64 and 1,024 commands (one
   durable transaction per batch), against a bulk insert of the same rows (commands, events,
   postings) in one ``executemany`` transaction into a fresh database: the floor of writing
   those rows. Latency: a command is acknowledged when its batch commits, so p50/p99 are those
   of the batches' durations. SQLite (WAL, synchronous=FULL) always; PostgreSQL when
   CROSSMARGIN_TEST_POSTGRES_URL is set.
2. Replay: events/s of opening the ledger from its journal alone, and from its newest snapshot.
3. Liquidation screens/s over ``--book`` accounts (default 100,000) holding BTC perps: a new
   BTC mark ticks the ledger's risk book (every holder re-margined) and the accounts under the
   trigger are listed, against one ``crossmargin.health.evaluate`` per account (measured on a
   sample and scaled to the book).
4. Keeping that risk book in step after one account's fill, by an account already in the book
   or a new one: ``Screen.sync`` against building the screen afresh.

Usage: ``python benchmarks/bench_ledger.py [--commands N] [--book N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from crossmargin.health import evaluate
from crossmargin.ledger import Command, Deposit, Fund, Ledger, Price, Trade
from crossmargin.ledger.context import Context
from crossmargin.ledger.journal import Holding, State, trader
from crossmargin.ledger.liquidation import Screen, model_account, model_market
from crossmargin.ledger.store import Store, commands, events, postings
from crossmargin.rules import load_rulebook
from crossmargin.rules.venue import load_venue

BATCHES = (1, 64, 1_024)
REPEATS = 3


def mix(n: int, traders: int = 200, seed: int = 1) -> list[Command]:
    """``n`` commands after the opening deposits: 25% deposits, 40% trades at leverages from
    10x to the bracket maximum, 30% prices (a random walk with a 4% drop now and then, which
    liquidates the most leveraged), 5% funding."""
    rng = random.Random(seed)
    out: list[Command] = [Price("p0", "BTCUSDT", 60_000)]
    out += [Deposit(f"open{k}", f"t{k}", rng.choice((300, 1_000, 5_000))) for k in range(traders)]
    price = Decimal(60_000)
    for i in range(n):
        roll = rng.random()
        name = f"t{rng.randrange(traders)}"
        if roll < 0.25:
            out.append(Deposit(f"d{i}", name, rng.randint(50, 1_000)))
        elif roll < 0.65:
            qty = Decimal(rng.randint(-40, 40) or 1) / 1_000
            leverage = rng.choice((None, 10, 20, 50, 100))
            out.append(Trade(f"t{i}", name, "BTCUSDT", qty, leverage=leverage))
        elif roll < 0.95:
            move = -0.04 if rng.random() < 0.03 else rng.uniform(-0.004, 0.0045)
            price = (price * Decimal(1 + move)).quantize(Decimal("0.1"))
            out.append(Price(f"p{i}", "BTCUSDT", price))
        else:
            out.append(Fund(f"f{i}", "BTCUSDT", rng.choice(("0.0001", "-0.0001", "0.0003"))))
    return out


@contextmanager
def database(name: str, tmp: Path) -> Iterator[tuple[str, str | None]]:
    """A fresh database of backend ``name`` (SQLite file or PostgreSQL schema), dropped after."""
    if name == "sqlite":
        yield f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}", None
        return
    raw = os.environ["CROSSMARGIN_TEST_POSTGRES_URL"]
    url = raw.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"cm_bench_{uuid.uuid4().hex[:8]}"
    try:
        yield url, schema
    finally:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def run_batches(ledger: Ledger, stream: list[Command], size: int) -> list[float]:
    """Run ``stream`` in batches of ``size``; each batch's duration (its commands' latency)."""
    durations = []
    for k in range(0, len(stream), size):
        t0 = time.perf_counter()
        ledger.execute(stream[k : k + size])
        durations.append(time.perf_counter() - t0)
    return durations


def bulk_insert(source: Ledger, url: str, schema: str | None) -> float:
    """Seconds to insert the rows ``source`` wrote into a fresh store in one transaction."""
    with source.store.reading() as conn:
        rows = [
            [dict(r._mapping) for r in conn.execute(select(table))]
            for table in (commands, events, postings)
        ]
    target = Store(url, schema)
    t0 = time.perf_counter()
    with target.writing() as conn:
        for table, table_rows in zip((commands, events, postings), rows, strict=True):
            if table_rows:
                conn.execute(insert(table), table_rows)
    elapsed = time.perf_counter() - t0
    target.close()
    return elapsed


def bench_commands(count: int) -> None:
    backends = ["sqlite"]
    if os.environ.get("CROSSMARGIN_TEST_POSTGRES_URL"):
        backends.append("postgresql")
    else:
        print("postgresql: skipped (set CROSSMARGIN_TEST_POSTGRES_URL)")
    tmp = Path(tempfile.mkdtemp())
    with database("sqlite", tmp) as (url, schema), Ledger(url, schema=schema) as warm:
        run_batches(warm, mix(300, seed=99), 64)
    for backend in backends:
        for size in BATCHES:
            n = count if size > 1 else max(count // 4, 200)
            stream = mix(n)
            rates, ratios, latencies = [], [], []
            for _ in range(REPEATS):
                with database(backend, tmp) as (url, schema), Ledger(url, schema=schema) as led:
                    durations = run_batches(led, stream, size)
                    elapsed = sum(durations)
                    with database(backend, tmp) as (raw_url, raw_schema):
                        floor = bulk_insert(led, raw_url, raw_schema)
                rates.append(len(stream) / elapsed)
                ratios.append(floor / elapsed)
                latencies.extend(durations)
            cuts = statistics.quantiles(latencies, n=100)
            print(
                f"{backend}, batch {size:>5,}: {statistics.median(rates):,.0f} commands/s = "
                f"{statistics.median(ratios):.3f} x a bulk insert of the same rows; latency "
                f"p50 {cuts[49] * 1e3:.2f} ms, p99 {cuts[98] * 1e3:.2f} ms "
                f"({len(stream):,} commands, median of {REPEATS})"
            )
        with database(backend, tmp) as (url, schema), Ledger(url, schema=schema) as led:
            stream = mix(count)
            half = len(stream) // 2
            run_batches(led, stream[:half], 1_024)
            led.snapshot()
            run_batches(led, stream[half:], 1_024)
            snap = led.store.snapshot()
            assert snap is not None
            for label, from_snapshot, replayed in (
                ("the journal alone", False, led.state.seq),
                ("the newest snapshot", True, led.state.seq - snap[0]),
            ):
                times = []
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    led.replay(from_snapshot=from_snapshot)
                    times.append(time.perf_counter() - t0)
                elapsed = statistics.median(times)
                print(
                    f"{backend}: replay from {label}: {replayed:,} events in "
                    f"{elapsed * 1e3:,.0f} ms ({replayed / elapsed:,.0f} events/s)"
                )


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
    bench_commands(args.commands)
    bench_passes(args.book)


if __name__ == "__main__":
    main()
