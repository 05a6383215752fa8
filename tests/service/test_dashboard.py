"""The dashboard as a person sees it: a real uvicorn server on a free loopback port over a SQLite
ledger of demo accounts, and Debian's Chromium (headless, driven by Playwright through
``executable_path``; no browser is downloaded). The page's figures are compared with the
service's own JSON; every request the page makes must stay on the loopback host, and the
browser console must stay free of errors. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from crossmargin.ledger import Deposit, Ledger, Price, Trade
from crossmargin.service.app import create_app
from crossmargin.service.pages import PLOTLY_JS
from crossmargin.service.settings import Settings

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "chromium not installed (Debian package)"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

BTC, ETH = 60_000.0, 3_000.0


def demo_ledger(url: str) -> None:
    """Five traders from calm to close to liquidation: cross longs and shorts at rising
    leverage, one isolated position, one holding BTC and ETH."""
    ledger = Ledger(url, venue="binance")
    try:
        results = ledger.execute(
            [
                Price("p:btc", "BTCUSDT", str(BTC)),
                Price("p:eth", "ETHUSDT", str(ETH)),
                Deposit("d:calm", "calm", "50000"),
                Trade("t:calm", "calm", "BTCUSDT", "0.1", leverage="2"),
                Deposit("d:short", "short", "5000"),
                Trade("t:short", "short", "BTCUSDT", "-0.5", leverage="10"),
                Deposit("d:pair", "pair", "10000"),
                Trade("t:pair1", "pair", "BTCUSDT", "0.5", leverage="5"),
                Trade("t:pair2", "pair", "ETHUSDT", "-5", leverage="5"),
                Deposit("d:iso", "iso", "3000"),
                Trade("t:iso", "iso", "BTCUSDT", "0.3", leverage="20", margin_mode="isolated"),
                Deposit("d:hot", "hot", "1000"),
                Trade("t:hot", "hot", "BTCUSDT", "0.6", leverage="50"),
            ]
        )
    finally:
        ledger.close()
    failed = [r for r in results if isinstance(r, Exception)]
    assert not failed, failed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    key: str

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"X-API-Key": self.key})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"X-API-Key": self.key, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'ledger.db'}"
    demo_ledger(url)
    app = create_app(Settings(db_url=url, rate_per_second=1e6, rate_burst=10**6))
    key = app.state.keys.create("operator", label="dashboard test")
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", key)
    uv.should_exit = True
    thread.join(30)


@dataclass
class Watch:
    """What the browser did: console errors, uncaught exceptions, hosts it asked."""

    errors: list[str] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[tuple[Any, Watch]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    watch = Watch()
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.on("request", lambda r: watch.hosts.add(urlsplit(r.url).hostname or r.url))
    yield page, watch
    context.close()


def number(text: str) -> float:
    """A figure as the page prints it (thousands commas, an optional % sign)."""
    return float(text.replace(",", "").replace("%", "").strip())


def book_ids(page: Any) -> list[str]:
    ids = page.eval_on_selector_all("#book tbody tr", "rs => rs.map(r => r.dataset.account)")
    return [str(x) for x in ids]


@needs_chromium
def test_book_lists_accounts_riskiest_first_and_follows_ticks(
    page: tuple[Any, Watch], server: Server, tmp_path: Path
) -> None:
    p, watch = page
    p.goto(f"{server.url}/?key={server.key}#/")
    p.wait_for_selector("body[data-ready=book]")
    views = server.get("/accounts")
    assert book_ids(p) == [v["account_id"] for v in views]
    assert len(views) == 5
    first = views[0]
    row = p.locator(f"#book tr[data-account='{first['account_id']}']")
    assert number(row.locator("td.equity").inner_text()) == pytest.approx(first["equity"], abs=0.01)
    assert row.locator(".status").inner_text().replace(" ", "_") == first["status"]
    p.screenshot(path=str(tmp_path / "book.png"), full_page=True)

    p.evaluate("window.notReloaded = true")
    server.post("/prices", {"prices": {"BTCUSDT": BTC * 0.985}})
    after = {v["account_id"]: v for v in server.get("/accounts")}
    calm = p.locator("#book tr[data-account='calm'] td.equity")
    expected = f"{after['calm']['equity']:,.2f}"
    p.wait_for_function(
        "([sel, text]) => document.querySelector(sel)?.textContent === text",
        arg=["#book tr[data-account='calm'] td.equity", expected],
        timeout=10_000,
    )
    assert calm.inner_text() == expected
    assert p.evaluate("window.notReloaded") is True
    assert book_ids(p) == [v["account_id"] for v in server.get("/accounts")]
    p.screenshot(path=str(tmp_path / "book-after-tick.png"), full_page=True)
    assert watch.errors == []
    assert watch.hosts == {"127.0.0.1"}


@needs_chromium
def test_account_page_shows_the_services_figures(
    page: tuple[Any, Watch], server: Server, tmp_path: Path
) -> None:
    p, watch = page
    p.goto(f"{server.url}/?key={server.key}#/")
    p.wait_for_selector("body[data-ready=book]")
    p.click("#book a[href='#/accounts/pair']")
    p.wait_for_selector("body[data-ready=account]")
    view = server.get("/accounts/pair")
    assert p.inner_text("#acct-id") == "pair"
    for gauge in ("gauge-equity", "gauge-im", "gauge-mm"):
        assert p.evaluate(f"document.getElementById('{gauge}').data.length") == 1
    shown_equity = p.evaluate("document.getElementById('gauge-equity').data[0].value")
    assert shown_equity == pytest.approx(view["equity"])
    mm = p.evaluate("document.getElementById('gauge-mm').data[0].value")
    assert mm == pytest.approx(100 * view["maintenance_margin"] / view["equity"])

    rows = p.locator("#positions tbody tr")
    assert rows.count() == len(view["positions"]) == 2
    for position in view["positions"]:
        row = p.locator(f"#positions tr[data-symbol='{position['symbol']}']")
        liquidation = number(row.locator("td.liquidation").inner_text())
        assert liquidation == pytest.approx(position["liquidation_price"], abs=0.01)
        distance = number(row.locator("td.distance").inner_text())
        assert distance == pytest.approx(100 * position["distance"], abs=0.01)

    curve = server.get("/accounts/pair/curve")
    p.wait_for_function("document.getElementById('curve-isolated').data?.length > 0")
    for side in ("cross", "isolated"):
        xs = p.evaluate(f"document.getElementById('curve-{side}').data[0].x")
        ys = p.evaluate(f"document.getElementById('curve-{side}').data[0].y")
        assert xs == pytest.approx([pt["price"] for pt in curve["points"]])
        assert ys == pytest.approx([pt[f"{side}_equity"] for pt in curve["points"]])
    heat = server.get("/accounts/pair/pm-heatmap")
    p.wait_for_function("document.getElementById('heatmap').data?.length > 0")
    z = p.evaluate("document.getElementById('heatmap').data[0].z")
    assert len(z) == len(heat["vol_moves"]) and len(z[0]) == len(heat["price_moves"])
    assert p.locator("#curve-cross .main-svg").count() > 0
    assert p.locator("#heatmap .main-svg").count() > 0
    p.screenshot(path=str(tmp_path / "account.png"), full_page=True)
    assert watch.errors == []
    assert watch.hosts == {"127.0.0.1"}


@needs_chromium
def test_account_page_follows_its_risk_channel(page: tuple[Any, Watch], server: Server) -> None:
    p, watch = page
    p.goto(f"{server.url}/?key={server.key}#/accounts/hot")
    p.wait_for_selector("body[data-ready=account]")
    p.wait_for_selector("#live.on")
    server.post("/prices", {"prices": {"BTCUSDT": BTC * 0.99}})
    mark = server.get("/accounts/hot")["positions"][0]["mark"]
    p.wait_for_function(
        "text => document.querySelector('#positions td.mark')?.textContent === text",
        arg=f"{mark:,.2f}",
        timeout=10_000,
    )
    assert watch.errors == []


@needs_chromium
def test_a_bad_key_is_shown_not_hidden(browser: Any, server: Server) -> None:
    context = browser.new_context()
    p = context.new_page()
    p.goto(f"{server.url}/?key=cm_wrong#/")
    p.wait_for_selector("#error:not([hidden])")
    assert "401" in p.inner_text("#error")
    context.close()


@needs_chromium
def test_alert_timeline_shows_alerts_as_they_fire(page: tuple[Any, Watch], server: Server) -> None:
    p, watch = page
    server.post("/accounts/short/alerts", {"kind": "margin_ratio", "threshold": 0.01})
    p.goto(f"{server.url}/?key={server.key}#/accounts/short")
    p.wait_for_selector("body[data-ready=account]")
    before = p.locator("#alerts li").count()
    server.post("/prices", {"prices": {"BTCUSDT": BTC * 1.005}})
    p.wait_for_function(f"document.querySelectorAll('#alerts li').length > {before}")
    newest = server.get("/alerts?account_id=short")[0]
    item = p.locator(f"#alerts li[data-alert='{newest['id']}']")
    assert "margin ratio" in item.inner_text()
    assert f"{100 * newest['value']:.2f}%" in item.inner_text()
    assert watch.errors == []


@needs_chromium
def test_venue_view_shows_hedges_and_what_a_liquidation_leaves(
    page: tuple[Any, Watch], server: Server, tmp_path: Path
) -> None:
    p, watch = page
    document = json.loads(
        resources.files("crossmargin.io").joinpath("examples/demo-venues.json").read_text()
    )
    request = urllib.request.Request(
        f"{server.url}/traders/demo-trader/venues",
        data=json.dumps(document).encode(),
        headers={"X-API-Key": server.key, "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    view = server.get("/traders/demo-trader/venues")
    p.goto(f"{server.url}/?key={server.key}#/venues")
    p.wait_for_selector("body[data-ready=venues]")
    block = p.locator(".venue[data-trader='demo-trader']")
    text = block.inner_text()
    for account in view["accounts"]:
        assert account["id"] in text and account["rulebook"]["title"] in text
    assert view["hedges"] and f"Hedge across venues: {view['hedges'][0]['underlying']}" in text
    for liquidation in view["liquidations"]:
        trigger = f"{liquidation['trigger_price']:,.2f}"
        assert f"If {liquidation['venue']} liquidates {liquidation['symbol']} at {trigger}" in text
    p.screenshot(path=str(tmp_path / "venues.png"), full_page=True)
    assert watch.errors == []
    assert watch.hosts == {"127.0.0.1"}


@needs_chromium
def test_an_account_key_sees_its_own_account_only(browser: Any, server: Server) -> None:
    key = server.post("/keys", {"role": "account", "account_id": "iso"})["key"]
    context = browser.new_context()
    p = context.new_page()
    p.goto(f"{server.url}/?key={key}#/")
    p.wait_for_selector("body[data-ready=book]")
    assert book_ids(p) == ["iso"]
    p.goto(f"{server.url}/#/accounts/calm")
    p.wait_for_selector("#error:not([hidden])")
    assert "403" in p.inner_text("#error")
    context.close()


def fetch(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a plain GET (no key: the page itself needs none)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_page_and_assets_are_served_locally(server: Server) -> None:
    status, kind, body = fetch(server.url + "/")
    assert status == 200 and kind.startswith("text/html")
    head = body.decode().split("<body>")[0]
    assert 'src="/static/plotly.min.js"' in head and "http" not in head
    status, kind, body = fetch(server.url + "/static/plotly.min.js")
    assert status == 200 and kind.startswith("text/javascript")
    assert body == PLOTLY_JS.read_bytes()
    assert fetch(server.url + "/static/dashboard.js")[1].startswith("text/javascript")
    status, kind, body = fetch(server.url + "/static/missing.js")
    assert status == 404 and "missing.js" in json.loads(body)["error"]
    assert fetch(server.url + "/static/..%2Fpages.py")[0] == 404
