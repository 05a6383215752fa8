"""Load on the risk service over loopback, each figure beside a baseline timed in the same run.

A SQLite ledger of ``--accounts`` traders (one BTCUSDT position each, leverage 2x-41x, long and
short) is served by uvicorn in a child process; this process opens ``--subscribers``
WebSockets on ``/ws/risk/{account_id}`` (accounts spread over the book) and posts ticks to
``POST /prices``, each with its own mark. A view is the account's state, so a tick applied
before the previous tick's views went out supersedes them (conflation): every (tick,
subscriber) pair counts as delivered when the subscriber receives the view of that tick or of
a later one, and what is never delivered is counted missing.
Ticks go out two ways: ``--probe`` one at a time (each waits for its deliveries: the latency
of one tick with nothing queued), then ``--ticks`` on the clock every ``--interval-ms`` (open
loop, whether or not the previous one was answered: the load the goal names).

Figures (client clocks, ``time.perf_counter_ns``):

1. Tick to delivery: from sending a tick to each subscriber receiving a view at that tick or a
   later one (p50/p99 over every (tick, subscriber) pair), and from the service receiving a
   tick to each alert listener receiving the alerts it raised (goal p99 < 50 ms). Baselines:
   (a) an empty uvicorn WebSocket server in a second child fanning messages out to as many
   sockets as often (the view subscribers one every default view interval; the alert
   listeners, on every tick, as many as the run raised a tick on average: the transport
   alone) and (b) the engine's bare re-margin of the
   same book in this process (``RiskBook.apply_prices``: the risk work alone). The service's
   own histogram of tick received -> alert on the hub (``/metrics``) splits the alert figure
   into the service's part and the sockets'.
2. ``POST /prices`` answer time against ``evaluate_many`` of every account (the full health the
   service turns into views), in this process.
3. REST margin report: ``GET /accounts/{id}/margin`` p50/p99, idle and under the clocked ticks
   (goal p99 < 20 ms), against ``GET /healthz`` on the same server at the same time (the HTTP
   stack alone), the two in turn, one request every ``--interval-ms``. The REST caller is a
   client process of its own (as a trader's or a risk desk's would be), not the process that
   reads the 1,000 sockets.

With two CPUs or more the servers run on the first and the load on the others; the measuring
processes run without the cyclic collector's full pass (see :func:`no_collector`).
Bounded: each phase stops after ``--timeout`` seconds; what had not arrived is counted missing.
Run: ``python benchmarks/bench_service.py [--quick] [--seeded PATH]`` (``--seeded`` keeps the
seeded ledger at PATH and starts later runs from a copy of it).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
import numpy as np

BASE_PRICE = 60_000.0
WARM_UP = 20
"""Requests of each REST route sent, untimed, before the timed ones."""
SYMBOL = "BTCUSDT"


CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
"""The CPUs the run may use: with two or more, the servers get the first and the load (this
process and its REST client) the others, so the service and its load never take turns on one
core (on two cores, where the scheduler put them decided a run's tail)."""


SERVER_CPU = "CROSSMARGIN_BENCH_SERVER_CPU"
"""Set by this script for its server children: the CPU each moves itself to at start."""


def _to_server_cpu() -> None:
    """In a server child: move to the CPU the parent named, if it named one."""
    cpu = os.environ.get(SERVER_CPU)
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})


@contextlib.contextmanager
def no_collector() -> Iterator[None]:
    """The measuring side's cyclic collector off for the block (as ``timeit`` does): its full
    pass over the client's sockets and recorded deliveries stalls the client's loop 100-200 ms,
    which would count as the service's latency. Every run is bounded, so is what piles up; the
    service keeps its own policy (``crossmargin.service.collector``)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def account_ids(n: int) -> list[str]:
    """The seeded traders' ids."""
    return [f"acct{i:05d}" for i in range(n)]


def seed(db_url: str, n: int) -> str:
    """A ledger of ``n`` traders holding BTCUSDT (80% of the deposit's leverage, 2x to 41x);
    an operator key for it."""
    from crossmargin.ledger import Deposit, Ledger, Price, Trade
    from crossmargin.service.records import Records
    from crossmargin.service.security import OPERATOR, KeyRing

    ledger = Ledger(db_url, venue="binance")
    try:
        ledger.execute([Price("seed:price", SYMBOL, str(BASE_PRICE))])
        commands: list[Deposit | Trade] = []
        for i, account in enumerate(account_ids(n)):
            leverage = 2 + i % 40
            qty = round(0.8 * 1_000 * leverage / BASE_PRICE, 3) * (1 if i % 2 == 0 else -1)
            commands.append(Deposit(f"seed:d:{i}", account, "1000"))
            commands.append(
                Trade(f"seed:t:{i}", account, SYMBOL, f"{qty:.3f}", leverage=str(leverage))
            )
        for k in range(0, len(commands), 2_000):
            results = ledger.execute(commands[k : k + 2_000])
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                raise SystemExit(f"seeding failed: {failed[0]}")
        return KeyRing(Records(ledger.store)).create(OPERATOR, label="bench")
    finally:
        ledger.close()


def seeded(db_url: str, path: Path, kept: Path | None, n: int) -> str:
    """:func:`seed` the ledger at ``path`` (``db_url``), or copy it from ``kept`` where an
    earlier run of ``n`` accounts left it (and leave a copy there for later runs, with its key
    beside it, named by ``n``; a ledger of another size kept there is replaced); the operator
    key."""
    key_file = None if kept is None else kept.with_name(f"{kept.name}.{n}.key")
    if kept is not None and key_file is not None and kept.exists() and key_file.exists():
        shutil.copyfile(kept, path)
        return key_file.read_text()
    key = seed(db_url, n)
    if kept is not None and key_file is not None:
        for other in kept.parent.glob(f"{kept.name}.*.key"):
            other.unlink()
        shutil.copyfile(path, kept)
        key_file.write_text(key)
    return key


def serve(db_url: str, port: int) -> None:
    """Child process: the service over ``db_url`` on loopback (rate limits out of the way)."""
    import uvicorn

    from crossmargin.service.app import create_app
    from crossmargin.service.settings import Settings

    settings = Settings(
        db_url=db_url, port=port, rate_per_second=1e9, rate_burst=10**9, log_level="warning"
    )
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        log_level="warning",
    )


def serve_echo(port: int) -> None:
    """Child process: an empty fan-out server on the same stack (uvicorn + Starlette): each
    message received on ``/fan`` is sent to every socket connected to ``/sub``."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    subscribers: set[WebSocket] = set()

    async def sub(ws: WebSocket) -> None:
        await ws.accept()
        subscribers.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            subscribers.discard(ws)

    async def fan(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                text = await ws.receive_text()
                await asyncio.gather(
                    *(s.send_text(text) for s in list(subscribers)), return_exceptions=True
                )
        except WebSocketDisconnect:
            pass

    app = Starlette(routes=[WebSocketRoute("/sub", sub), WebSocketRoute("/fan", fan)])
    with no_collector():
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws_ping_interval=None)


def start_child(args: list[str], port: int, wait: float) -> subprocess.Popen[bytes]:
    """Start this script in a child mode and wait (at most ``wait`` seconds) until ``port``
    accepts connections."""
    env = os.environ.copy()
    if len(CPUS) >= 2:
        env[SERVER_CPU] = str(CPUS[0])
    child = subprocess.Popen([sys.executable, __file__, *args], env=env)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"server {args[0]} exited with {child.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return child
        time.sleep(0.1)
    child.kill()
    raise SystemExit(f"server {args[0]} did not start")


def stop_child(child: subprocess.Popen[bytes]) -> None:
    """Stop a child server: SIGTERM, then SIGKILL if it is still busy after 10 s."""
    child.terminate()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(10)


def pct(values: list[float], q: float) -> float:
    """The ``q`` percentile of ``values`` (NaN when empty)."""
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Deliveries:
    """Send time of each tick (by its mark, in sending order), what each subscriber received
    (marks and receive times), and unmatched messages."""

    sent: dict[float, int] = field(default_factory=dict)
    received: list[list[tuple[float, int]]] = field(default_factory=list)
    unmatched: int = 0
    phase: str = "closed"
    alert_ms: dict[str, list[float]] = field(default_factory=dict)
    alerts_seen: dict[str, int] = field(default_factory=dict)

    def of(self, marks: list[float]) -> tuple[list[float], int, int]:
        """For every subscriber and tick at ``marks``: the time from sending the tick to the
        subscriber's first view at that tick or a later one (a view is the account's state:
        a later tick's view supersedes an earlier one not yet sent). The latencies, how many
        were answered by their own tick's view, and how many by a later one."""
        order = {m: k for k, m in enumerate(self.sent)}
        latencies: list[float] = []
        own = later = 0
        for views in self.received:
            ks = [order[m] for m, _ in views]
            times = [ns for _, ns in views]
            for mark in marks:
                i = order[mark]
                j = bisect.bisect_left(ks, i)
                if j == len(ks):
                    continue
                latencies.append((times[j] - self.sent[mark]) / 1e6)
                if ks[j] == i:
                    own += 1
                else:
                    later += 1
        return latencies, own, later

    def seen(self, mark: float) -> int:
        """Subscribers that received a view at ``mark`` or a later tick."""
        order = {m: k for k, m in enumerate(self.sent)}
        i = order[mark]
        return sum(bool(views) and order[views[-1][0]] >= i for views in self.received)


class _Mark(msgspec.Struct):
    mark: float


class _View(msgspec.Struct):
    positions: list[_Mark] = []


class _Alert(msgspec.Struct):
    id: str
    received_ns: int


VIEW = msgspec.json.Decoder(_View)
ALERT = msgspec.json.Decoder(_Alert)
"""Decoders of only the fields the client reads (the rest of each message is skipped)."""


async def subscriber(
    session: aiohttp.ClientSession, url: str, out: Deliveries, ready: asyncio.Event
) -> None:
    """One risk WebSocket, read until cancelled: each view's mark names the tick it answers."""
    views: list[tuple[float, int]] = []
    out.received.append(views)
    async with session.ws_connect(url, max_msg_size=0) as ws:
        first = await ws.receive()
        if first.type != aiohttp.WSMsgType.TEXT:
            raise SystemExit(f"subscriber {url}: {first.type} {first.data}")
        ready.set()
        async for msg in ws:
            now = time.perf_counter_ns()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            view = VIEW.decode(msg.data)
            mark = view.positions[0].mark if view.positions else None
            if mark is None or mark not in out.sent:
                out.unmatched += 1
            else:
                views.append((mark, now))


async def listener(
    session: aiohttp.ClientSession, url: str, out: Deliveries, ready: asyncio.Event
) -> None:
    """One alerts WebSocket, read until cancelled: each alert carries ``received_ns``, when the
    service received the tick that raised it (``perf_counter_ns``: the same monotonic clock in
    every process here)."""
    async with session.ws_connect(url, max_msg_size=0) as ws:
        ready.set()
        async for msg in ws:
            now = time.perf_counter_ns()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            alert = ALERT.decode(msg.data)
            out.alert_ms.setdefault(out.phase, []).append((now - alert.received_ns) / 1e6)
            out.alerts_seen[alert.id] = out.alerts_seen.get(alert.id, 0) + 1


async def timed_gets(
    session: aiohttp.ClientSession,
    url: str,
    count: int,
    pause: float,
    deadline: float = math.inf,
) -> list[float]:
    """Up to ``count`` sequential GETs of ``url`` (``pause`` seconds apart, none running past
    ``deadline``): milliseconds each."""
    times = []
    for _ in range(count):
        if time.perf_counter() > deadline:
            break
        start = time.perf_counter_ns()
        try:
            left = None if math.isinf(deadline) else max(0.0, deadline - time.perf_counter())
            async with asyncio.timeout(left):
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"GET {url}: {response.status}")
        except TimeoutError:
            break
        times.append((time.perf_counter_ns() - start) / 1e6)
        if pause:
            await asyncio.sleep(pause)
    return times


async def rest_client(base: str, key: str, account: str, count: int, pause: float) -> None:
    """Child process: warm up, print ``ready``, wait for a line on stdin, then ``count``
    requests, ``pause`` seconds apart, ``GET /accounts/{account}/margin`` and ``GET /healthz``
    in turn (until a line on stdin says stop); print the milliseconds of each as JSON."""
    margin = f"/accounts/{account}/margin"
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"X-API-Key": key}
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        for path in (margin, "/healthz"):
            await timed_gets(session, path, WARM_UP, 0)
        loop = asyncio.get_running_loop()
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        stop = loop.run_in_executor(None, sys.stdin.readline)
        out: dict[str, list[float]] = {"margin": [], "health": []}
        for k in range(count):
            if stop.done():
                break
            name, path = ("margin", margin) if k % 2 == 0 else ("health", "/healthz")
            out[name] += await timed_gets(session, path, 1, 0)
            await asyncio.sleep(pause)
    print(json.dumps(out), flush=True)
    os._exit(0)


class RestClient:
    """A :func:`rest_client` child: :meth:`start` once it is warm, :meth:`result` at the end."""

    def __init__(self, child: asyncio.subprocess.Process) -> None:
        self.child = child

    @classmethod
    async def open(cls, base: str, key: str, account: str, count: int, pause: float) -> RestClient:
        args = ["--rest-client", base, key, account, str(count), str(pause)]
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        if (await child.stdout.readline()).strip() != b"ready":
            raise SystemExit("REST client did not start")
        return cls(child)

    def _say(self, line: bytes) -> None:
        assert self.child.stdin is not None
        self.child.stdin.write(line)

    def start(self) -> None:
        self._say(b"go\n")

    async def result(self, wait: float = 0.0) -> dict[str, list[float]]:
        """What it measured: at once after its requests, else after ``wait`` seconds (it is
        told to stop then)."""
        assert self.child.stdout is not None
        reading = asyncio.ensure_future(self.child.stdout.readline())
        done, _ = await asyncio.wait([reading], timeout=wait)
        if not done:
            self._say(b"stop\n")
        figures: dict[str, list[float]] = json.loads(await reading)
        await self.child.wait()
        return figures


Histogram = list[tuple[float, float]]


async def hub_histogram(session: aiohttp.ClientSession) -> Histogram:
    """The service's tick-to-alert histogram from ``/metrics`` (the time from a tick's arrival
    to its alert on the hub, before any socket): (upper bound in ms, cumulative count) per
    bucket."""
    async with session.get("/metrics") as response:
        text = await response.text()
    out = []
    for row in text.splitlines():
        if row.startswith("crossmargin_tick_to_alert_seconds_bucket{"):
            bound = row.split('le="')[1].split('"')[0]
            upper = math.inf if bound == "+Inf" else float(bound) * 1e3
            out.append((upper, float(row.rsplit(" ", 1)[1])))
    return out


def within(bound_ms: float, before: Histogram, after: Histogram) -> float:
    """The share of what was observed between two histograms at most ``bound_ms`` (a bucket
    bound: exact)."""
    counts = {upper: a - b for (upper, a), (_, b) in zip(after, before, strict=True)}
    total = counts.get(math.inf, 0.0)
    return counts[bound_ms] / total if total > 0 else math.nan


def quantile(q: float, before: Histogram, after: Histogram) -> float:
    """The ``q`` quantile of what was observed between two histograms, interpolated within
    its bucket as Prometheus' ``histogram_quantile`` does (ms; ``nan`` with nothing)."""
    counts = [(upper, a - b) for (upper, a), (_, b) in zip(after, before, strict=True)]
    if not counts or counts[-1][1] <= 0:
        return math.nan
    rank = q * counts[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in counts:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


async def open_all(
    count: int, connect: Callable[[asyncio.Event], Awaitable[None]]
) -> list[asyncio.Task[None]]:
    """Start ``count`` connections (50 at a time) and wait until each has its first message."""
    tasks = []
    for start in range(0, count, 50):
        events = [asyncio.Event() for _ in range(min(50, count - start))]
        tasks += [asyncio.create_task(connect(e)) for e in events]
        waiting = [asyncio.create_task(e.wait()) for e in events]
        done, _ = await asyncio.wait(waiting, timeout=30)
        if len(done) < len(events):
            raise SystemExit("subscribers did not connect")
    return tasks


@dataclass
class Phase:
    """One way of sending ticks: how many, how long sending took, each POST's answer time and
    each (tick, subscriber)'s delivery latency (milliseconds), how many of those were answered
    by the tick's own view and how many by a later tick's, and how many were expected."""

    ticks: int
    sent_for_s: float
    failed: int
    tick_ms: list[float]
    delivery_ms: list[float]
    own: int
    later: int
    expected: int
    alert_ms: list[float]
    hub_ms: tuple[float, float, float]

    @property
    def delivered(self) -> int:
        return len(self.delivery_ms)


@dataclass
class Run:
    """What one load run measured (milliseconds)."""

    closed: Phase
    open: Phase
    unmatched: int
    rules: int
    listeners: int
    alerts: int
    alert_deliveries: int
    idle_rest: dict[str, list[float]]
    loaded_rest: dict[str, list[float]]


def tick_mark(i: int) -> float:
    """Tick ``i``'s BTCUSDT mark: 0.2% below and above the seeded price in turn (so margin
    ratios cross the alert thresholds set at that price on every tick), distinct for each."""
    return round(BASE_PRICE * (1 + (0.002 if i % 2 else -0.002)) + 0.01 * i, 2)


async def load(base: str, key: str, opts: argparse.Namespace) -> Run:
    """Subscribe, then tick one at a time (each waits for its deliveries: the latency without
    queueing) and then on the clock every ``interval_ms`` (open loop: the load of the goal)."""
    ids = account_ids(opts.accounts)
    session = aiohttp.ClientSession(
        base,
        headers={"X-API-Key": key},
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None),
    )
    async with session:
        idle = await RestClient.open(base, key, ids[0], opts.rest, 0)
        idle.start()
        idle_rest = await idle.result(opts.timeout)
        out = Deliveries()
        views = opts.subscribers - opts.listeners
        watched = [ids[k * opts.accounts // views] for k in range(views)]
        for account in watched[: opts.rules]:
            async with session.get(f"/accounts/{account}") as response:
                ratio = (await response.json())["margin_ratio"]
            rule = {"kind": "margin_ratio", "threshold": ratio}
            async with session.post(f"/accounts/{account}/alerts", json=rule) as response:
                if response.status != 201:
                    raise SystemExit(f"alert rule: {response.status} {await response.text()}")
        views_of = iter(watched)
        subs = await open_all(
            views,
            lambda ready: subscriber(session, f"/ws/risk/{next(views_of)}?key={key}", out, ready),
        )
        subs += await open_all(
            opts.listeners,
            lambda ready: listener(session, f"/ws/alerts?key={key}", out, ready),
        )
        answered: dict[float, float] = {}
        failed: list[float] = []

        async def tick(mark: float, deadline: float) -> None:
            start = time.perf_counter_ns()
            out.sent[mark] = start
            post = session.post("/prices", json={"prices": {SYMBOL: mark}})
            try:
                async with asyncio.timeout(max(0.0, deadline - time.perf_counter())):
                    async with post as response:
                        await response.read()
                        if response.status != 200:
                            failed.append(mark)
            except TimeoutError:
                return
            answered[mark] = (time.perf_counter_ns() - start) / 1e6

        def phase(marks: list[float], sent_for: float, hub: tuple[Histogram, Histogram]) -> Phase:
            latencies, own, later = out.of(marks)
            return Phase(
                len(marks),
                sent_for,
                sum(m in failed for m in marks),
                [answered[m] for m in marks if m in answered],
                latencies,
                own,
                later,
                len(marks) * views,
                out.alert_ms.get(out.phase, []),
                (quantile(0.5, *hub), quantile(0.99, *hub), within(50.0, *hub)),
            )

        began = time.perf_counter()
        deadline = began + opts.timeout
        before_closed = await hub_histogram(session)
        closed = [tick_mark(i) for i in range(opts.probe)]
        for mark in closed:
            if time.perf_counter() > deadline:
                break
            await tick(mark, deadline)
            while out.seen(mark) < views:
                if time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.001)
        await asyncio.sleep(0.2)
        before_open = await hub_histogram(session)
        closed_phase = phase(closed, time.perf_counter() - began, (before_closed, before_open))
        out.phase = "open"

        rest = await RestClient.open(base, key, ids[-1], opts.rest, opts.interval_ms / 1e3)
        began = time.perf_counter()
        deadline = began + opts.timeout
        rest.start()
        marks = [tick_mark(opts.probe + i) for i in range(opts.ticks)]
        ticks = []
        for i, mark in enumerate(marks):
            ticks.append(asyncio.create_task(tick(mark, deadline)))
            due = began + (i + 1) * opts.interval_ms / 1e3
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent_for = time.perf_counter() - began
        rest_under_ticks = asyncio.ensure_future(rest.result(0.0))
        await asyncio.wait(ticks, timeout=max(0.1, deadline - time.perf_counter()))
        while marks and out.seen(marks[-1]) < views:
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        open_phase = phase(marks, sent_for, (before_open, await hub_histogram(session)))
        loaded_rest = await rest_under_ticks
        for t in [*subs, *ticks]:
            t.cancel()
        await asyncio.gather(*subs, *ticks, return_exceptions=True)
        return Run(
            closed_phase,
            open_phase,
            out.unmatched,
            opts.rules,
            opts.listeners,
            len(out.alerts_seen),
            sum(out.alerts_seen.values()),
            idle_rest,
            loaded_rest,
        )


async def echo_fanout(
    port: int, subscribers: int, rounds: int, interval: float, burst: int = 1
) -> list[float]:
    """The same fan-out through the empty server: ``rounds`` of ``burst`` messages, a round
    every ``interval`` seconds, to ``subscribers`` sockets; milliseconds from each send to each
    receipt."""
    latencies: list[float] = []
    sent: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector) as session:

        async def sub(ready: asyncio.Event) -> None:
            async with session.ws_connect("/sub") as ws:
                ready.set()
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    latencies.append((time.perf_counter_ns() - sent[msg.data]) / 1e6)

        tasks = await open_all(subscribers, sub)
        await asyncio.sleep(0.2)
        async with session.ws_connect("/fan") as fan:
            began = time.perf_counter()
            for i in range(rounds):
                for b in range(burst):
                    text = json.dumps({"tick": i, "message": b, "prices": {SYMBOL: BASE_PRICE}})
                    sent[text] = time.perf_counter_ns()
                    await fan.send_str(text)
                await asyncio.sleep(max(0.0, began + (i + 1) * interval - time.perf_counter()))
            deadline = time.perf_counter() + 30
            expected = rounds * burst * subscribers
            while len(latencies) < expected and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def engine_baselines(db_url: str, repeat: int) -> tuple[list[float], list[float]]:
    """The bare engine on the same accounts, in this process (milliseconds each, after a
    warm-up): the ledger's risk book ticked to a new mark (``RiskBook.apply_prices``: the
    columnar re-margin), and ``evaluate_many`` of every account at the mark (the full health,
    liquidation prices and crash distances the service turns into views)."""
    from crossmargin.health import evaluate_many
    from crossmargin.ledger import Ledger
    from crossmargin.ledger.liquidation import model_market, traders

    ledger = Ledger(db_url, venue="binance")
    try:
        book = ledger.risk_book()
        ticks = []
        for i in range(repeat + 1):
            start = time.perf_counter_ns()
            book.apply_prices({SYMBOL: BASE_PRICE * (1 + 0.001 * (i % 7))})
            if i:
                ticks.append((time.perf_counter_ns() - start) / 1e6)
        accounts = [ledger.account(a) for a in sorted(traders(ledger.state))]
        market = model_market(ledger.state, ledger.ctx)
        evaluations = []
        for i in range(min(repeat, 5) + 1):
            start = time.perf_counter_ns()
            evaluate_many(accounts, market)
            if i:
                evaluations.append((time.perf_counter_ns() - start) / 1e6)
        return ticks, evaluations
    finally:
        ledger.close()


def line(label: str, values: list[float], base: list[float], base_label: str) -> None:
    """One figure's p50/p99 beside its baseline's, and the ratio of the p99s."""
    p50, p99, b50, b99 = pct(values, 50), pct(values, 99), pct(base, 50), pct(base, 99)
    print(
        f"{label:<31} p50 {p50:8.2f} p99 {p99:8.2f} ms | {base_label:<33} "
        f"p50 {b50:7.2f} p99 {b99:7.2f} ms | p99 x{p99 / b99:.1f}"
    )


def report(
    run: Run,
    echo: tuple[list[float], list[float]],
    engine: tuple[list[float], list[float]],
) -> None:
    """Print the figures, each beside its baseline."""
    remargin, evaluations = engine
    echo_views, echo_alerts = echo
    for name, ph in (("one tick at a time", run.closed), ("a tick every interval", run.open)):
        print(
            f"{name}: {ph.ticks} ticks sent in {ph.sent_for_s:.2f} s ({ph.failed} failed); "
            f"{ph.delivered} of {ph.expected} (tick, subscriber) pairs delivered: {ph.own} by "
            f"the tick's own view, {ph.later} by a later tick's (conflated), "
            f"{ph.expected - ph.delivered} missing at the time limit"
        )
        line("  tick -> view delivered", ph.delivery_ms, echo_views, "empty fan-out to as many")
        line("  tick received -> alert out", ph.alert_ms, echo_alerts, "empty fan-out to as many")
        print(
            f"  {'of which on the hub':<29} p50 {ph.hub_ms[0]:8.2f} p99 {ph.hub_ms[1]:8.2f} ms"
            f" | the service's own histogram (/metrics, within buckets): {ph.hub_ms[2]:.0%}"
            " of the alerts on the hub within 50 ms"
        )
        line("  tick -> view delivered", ph.delivery_ms, remargin, "engine: RiskBook.apply_prices")
        line("  POST /prices answered", ph.tick_ms, evaluations, "engine: evaluate_many, all")
    print(
        f"alerts: {run.alerts} raised by {run.rules} rules, {run.alert_deliveries} of "
        f"{run.alerts * run.listeners} deliveries to {run.listeners} listeners made; "
        f"views matching no tick: {run.unmatched}"
    )
    idle, loaded = run.idle_rest, run.loaded_rest
    line("GET margin report, idle", idle["margin"], idle["health"], "GET /healthz, idle")
    line(
        "GET margin report, under ticks",
        loaded["margin"],
        loaded["health"],
        "GET /healthz, under the same ticks",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (1k accounts)")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--ticks", type=int, default=300, help="ticks sent on the clock")
    parser.add_argument("--probe", type=int, default=10, help="ticks sent one at a time")
    parser.add_argument("--listeners", type=int, default=100, help="of them on /ws/alerts")
    parser.add_argument("--rules", type=int, default=10, help="accounts with an alert rule")
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument(
        "--rest", type=int, default=400, help="REST requests per phase (margin, healthz in turn)"
    )
    parser.add_argument("--seeded", type=Path, help="keep the seeded ledger here and reuse it")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per phase at most")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--rest-client", nargs=5, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.serve or opts.echo:
        _to_server_cpu()
    if opts.serve:
        serve(opts.serve[0], int(opts.serve[1]))
        return
    if opts.echo:
        serve_echo(opts.echo)
        return
    if opts.rest_client:
        base, key, account, count, pause = opts.rest_client
        with no_collector():
            asyncio.run(rest_client(base, key, account, int(count), float(pause)))
        return
    from crossmargin.service.settings import Settings

    if len(CPUS) >= 2:
        os.sched_setaffinity(0, CPUS[1:])
    if opts.quick:
        opts.accounts, opts.subscribers, opts.ticks, opts.probe, opts.rest = 1_000, 100, 50, 10, 50
        opts.listeners, opts.rules = 20, 5
        opts.timeout = min(opts.timeout, 30.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db_url = f"sqlite:///{path}"
        started = time.perf_counter()
        key = seeded(db_url, path, opts.seeded, opts.accounts)
        print(
            f"{opts.accounts} accounts seeded in {time.perf_counter() - started:.1f} s; "
            f"{opts.subscribers} subscribers, {opts.ticks} ticks every {opts.interval_ms:g} ms"
        )
        engine = engine_baselines(db_url, 20)
        port, echo_port = free_port(), free_port()
        started = time.perf_counter()
        server = start_child(["--serve", db_url, str(port)], port, 600)
        print(f"service up in {time.perf_counter() - started:.1f} s (views of every account)")
        try:
            with no_collector():
                figures = asyncio.run(load(f"http://127.0.0.1:{port}", key, opts))
        finally:
            stop_child(server)
        # The transport baselines carry what the service sent: the view subscribers a view
        # every view interval, the alert listeners as many alerts a tick as the run raised.
        views, every = opts.subscribers - opts.listeners, Settings().view_interval_s
        rounds = max(1, int(opts.ticks * opts.interval_ms / 1e3 / every))
        burst = max(1, round(figures.alerts / max(1, figures.closed.ticks + figures.open.ticks)))
        echo_server = start_child(["--echo", str(echo_port)], echo_port, 60)
        try:
            with no_collector():
                echo = (
                    asyncio.run(echo_fanout(echo_port, views, rounds, every)),
                    asyncio.run(
                        echo_fanout(
                            echo_port, opts.listeners, opts.ticks, opts.interval_ms / 1e3, burst
                        )
                    ),
                )
        finally:
            stop_child(echo_server)
        print(f"empty fan-out to the alert listeners: {burst} message(s) a tick, as the run")
        report(figures, echo, engine)


if __name__ == "__main__":
    main()
