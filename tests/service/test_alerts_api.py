"""Alert rules, webhooks and multi-venue views through the service: a rule fires on a tick and
reaches the WebSocket channels, the durable record and a signed webhook; keys see only their
own account; bad input is a 4xx naming the field."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from starlette.websockets import WebSocketDisconnect

from crossmargin.app.venues import parse_venues
from crossmargin.io.results import to_data
from crossmargin.service.alert_routes import AlertService
from crossmargin.service.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    WebhookSender,
    verify,
)

from .conftest import BTC, TestClient, make_app

SECRET = "webhook-secret-0123"
RULE = {"kind": "margin_ratio", "threshold": 0.04, "band": 0.01}


def _tick(client: TestClient, op: dict[str, str], price: float) -> None:
    r = client.post("/prices", json={"prices": {BTC: price}}, headers=op)
    assert r.status_code == 200, r.text


def _service(client: TestClient) -> AlertService:
    found: AlertService = client.app.state.alerts  # type: ignore[attr-defined]
    return found


def test_a_rule_fires_once_per_crossing_into_ws_and_the_record(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    """Alice: 1,000 USDT, 0.1 BTC long at 60,000 (Binance MMR 0.4 %): the margin ratio is
    about 0.024 there, 0.044 at 55,000, 0.054 at 54,000."""
    r = client.post(f"/accounts/{alice}/alerts", json=RULE, headers=op)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert client.get(f"/accounts/{alice}/alerts", headers=op).json() == [rule]
    with (
        client.websocket_connect("/ws/alerts", headers=op) as every,
        client.websocket_connect(f"/ws/alerts/{alice}", headers=op) as mine,
    ):
        for price in (55_000, 54_000, 60_000, 55_000):
            _tick(client, op, price)
        first, second = every.receive_json(), every.receive_json()
        assert mine.receive_json() == first
        assert mine.receive_json() == second
    assert (first["id"], second["id"]) == (f"{rule['id']}-1", f"{rule['id']}-2")
    assert first["account_id"] == alice and first["kind"] == "margin_ratio"
    assert 0.04 < first["value"] < 0.05
    assert first["threshold"] == 0.04 and first["received_ns"] > 0
    history = client.get("/alerts", headers=op).json()
    assert [a["id"] for a in history] == [second["id"], first["id"]]
    assert history[1] == first


class _Receiver(BaseHTTPRequestHandler):
    fail_first: ClassVar[int] = 1
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((dict(self.headers), body))
        status = 503 if len(type(self).seen) <= type(self).fail_first else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _wait(predicate: Any, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "not reached in time"
        time.sleep(0.01)


def test_a_webhook_gets_the_signed_alert_after_a_retry(
    client: TestClient, op: dict[str, str], alice: str, receiver: str
) -> None:
    service = _service(client)
    fast = RetryPolicy(attempts=3, base_s=0.01, max_delay_s=0.02)
    assert service.sender is not None
    service.sender = WebhookSender(
        client.app.state.alert_client,
        policy=fast,
        on_failure=service.failed,  # type: ignore[attr-defined]
    )
    r = client.post("/webhooks", json={"url": receiver, "secret": SECRET}, headers=op)
    assert r.status_code == 201, r.text
    assert "secret" not in r.json()
    client.post(f"/accounts/{alice}/alerts", json=RULE, headers=op)
    _tick(client, op, 55_000)
    _wait(lambda: len(_Receiver.seen) == 2)
    (first_headers, _), (headers, body) = _Receiver.seen
    alert = json.loads(body)
    assert alert["account_id"] == alice
    assert headers[DELIVERY_HEADER] == first_headers[DELIVERY_HEADER] == alert["id"]
    assert verify(
        SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=time.time()
    )
    assert client.get("/webhooks", headers=op).json() == [r.json()]


def test_a_webhook_given_up_is_counted(
    client: TestClient, op: dict[str, str], alice: str, receiver: str
) -> None:
    _Receiver.fail_first = 100
    try:
        service = _service(client)
        service.sender = WebhookSender(
            client.app.state.alert_client,  # type: ignore[attr-defined]
            policy=RetryPolicy(attempts=2, base_s=0.01),
            on_failure=service.failed,
        )
        client.post("/webhooks", json={"url": receiver, "secret": SECRET}, headers=op)
        client.post(f"/accounts/{alice}/alerts", json=RULE, headers=op)
        _tick(client, op, 55_000)
        _wait(lambda: service.state.metrics.webhook_failures._value.get() == 1)
        metrics = client.get("/metrics", headers=op).text
        assert "crossmargin_webhook_failures_total 1.0" in metrics
    finally:
        _Receiver.fail_first = 1


def test_rules_and_webhooks_belong_to_their_account(
    client: TestClient, op: dict[str, str], alice: str, app: FastAPI
) -> None:
    bob = {"X-API-Key": app.state.keys.create("account", "bob")}
    mine = {"X-API-Key": app.state.keys.create("account", alice)}
    assert client.post(f"/accounts/{alice}/alerts", json=RULE, headers=bob).status_code == 403
    assert client.get(f"/accounts/{alice}/alerts", headers=bob).status_code == 403
    rule = client.post(f"/accounts/{alice}/alerts", json=RULE, headers=mine).json()
    assert client.delete(f"/accounts/{alice}/alerts/{rule['id']}", headers=bob).status_code == 403
    hook = {"url": "http://127.0.0.1:9/h", "secret": SECRET}
    r = client.post("/webhooks", json={**hook, "account_id": alice}, headers=bob)
    assert r.status_code == 403
    made = client.post("/webhooks", json=hook, headers=mine).json()
    assert made["account_id"] == alice
    assert client.get("/webhooks", headers=bob).json() == []
    assert client.delete(f"/webhooks/{made['id']}", headers=bob).status_code == 404
    assert client.get("/alerts", params={"account_id": alice}, headers=bob).status_code == 403
    assert client.delete(f"/webhooks/{made['id']}", headers=mine).status_code == 204
    assert client.delete(f"/accounts/{alice}/alerts/{rule['id']}", headers=mine).status_code == 204
    assert client.delete(f"/accounts/{alice}/alerts/{rule['id']}", headers=mine).status_code == 404
    with pytest.raises(WebSocketDisconnect) as closed:
        client.websocket_connect(f"/ws/alerts/{alice}", headers=bob).__enter__()
    assert closed.value.code == 4403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "nope", "threshold": 1}, "kind"),
        ({"kind": "margin_ratio"}, "threshold"),
        ({"kind": "crash_distance", "threshold": 3}, "threshold"),
        ({"kind": "margin_ratio", "threshold": "high"}, "threshold"),
        ({"kind": "margin_ratio", "threshold": 1, "extra": 1}, "extra"),
    ],
)
def test_bad_rules_are_422_naming_the_field(
    client: TestClient, op: dict[str, str], alice: str, body: dict[str, Any], field: str
) -> None:
    r = client.post(f"/accounts/{alice}/alerts", json=body, headers=op)
    assert r.status_code == 422
    assert r.json()["field"].split(".")[0] == field
    assert client.get(f"/accounts/{alice}/alerts", headers=op).json() == []


def test_unknown_account_and_bad_webhook(client: TestClient, op: dict[str, str]) -> None:
    assert client.post("/accounts/nobody/alerts", json=RULE, headers=op).status_code == 404
    r = client.post("/webhooks", json={"url": "ftp://x/y", "secret": SECRET}, headers=op)
    assert (r.status_code, r.json()["field"]) == (422, "url")
    r = client.post("/webhooks", json={"url": "http://x/y", "secret": "short"}, headers=op)
    assert r.status_code == 422


HEDGE = {
    "trader": "t",
    "prices": {"BTC-PERP": 60000.0, "BTCUSDT": 60000.0},
    "accounts": [
        {
            "id": "t-hl",
            "venue": "hyperliquid",
            "balances": {"USDC": 10000},
            "positions": [{"symbol": "BTC-PERP", "qty": 1, "entry_price": 60000}],
        },
        {
            "id": "t-bn",
            "venue": "binance",
            "rulebook": "binance-usdm",
            "balances": {"USDT": 3000},
            "positions": [{"symbol": "BTCUSDT", "qty": -1, "entry_price": 60000}],
        },
    ],
}


def test_multi_venue_document_and_live_view(client: TestClient, op: dict[str, str]) -> None:
    r = client.post("/venues/evaluate", json=HEDGE, headers=op)
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(json.dumps(to_data(parse_venues(HEDGE))))
    assert client.put("/traders/t/venues", json=HEDGE, headers=op).status_code == 204
    assert client.get("/traders", headers=op).json() == ["t"]
    _tick(client, op, 61_000)
    live = client.get("/traders/t/venues", headers=op).json()
    marks = {p["symbol"]: p["mark_price"] for a in live["accounts"] for p in a["positions"]}
    assert marks == {"BTC-PERP": 61_000.0, "BTCUSDT": 61_000.0}
    assert client.get("/traders/nobody/venues", headers=op).status_code == 404


def test_bad_multi_venue_documents_are_422(client: TestClient, op: dict[str, str]) -> None:
    bad = {**HEDGE, "accounts": [{**HEDGE["accounts"][0], "venue": None}]}
    r = client.post("/venues/evaluate", json=bad, headers=op)
    assert (r.status_code, r.json()["field"]) == (422, "accounts[0].venue")
    r = client.put("/traders/t/venues", json={"accounts": "x"}, headers=op)
    assert r.status_code == 422
    assert client.get("/traders", headers=op).json() == []


def test_rules_and_webhooks_survive_a_restart(tmp_path: Path) -> None:
    """Kept in the ledger database: a new app on the same file reads them back."""
    first = make_app(tmp_path)
    key = first.state.keys.create("operator")
    op = {"X-API-Key": key}
    with TestClient(first) as client:
        client.post("/prices", json={"prices": {BTC: 60_000}}, headers=op)
        client.post("/accounts/alice/deposits", json={"amount": 100}, headers=op)
        rule = client.post("/accounts/alice/alerts", json=RULE, headers=op).json()
        other = client.post(
            "/accounts/alice/alerts", json={"kind": "status_change"}, headers=op
        ).json()
        hook = client.post(
            "/webhooks", json={"url": "http://127.0.0.1:9/h", "secret": SECRET}, headers=op
        ).json()
        assert client.delete(f"/accounts/alice/alerts/{other['id']}", headers=op).is_success
    first.state.service.close()
    second = make_app(tmp_path)
    with TestClient(second) as client:
        assert client.get("/accounts/alice/alerts", headers=op).json() == [rule]
        assert client.get("/webhooks", headers=op).json() == [hook]
        assert second.state.alerts.webhooks[hook["id"]].secret == SECRET
        assert client.delete("/accounts/alice/alerts", headers=op).status_code == 204
        assert client.get("/accounts/alice/alerts", headers=op).json() == []
    second.state.service.close()


def test_a_status_change_rule_starts_from_the_current_status(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    """The first tick after the rule is added already reports the change: a mark 0.03 % above
    alice's liquidation price puts her margin ratio between 0.8 and 1 (margin call)."""
    view = client.get(f"/accounts/{alice}", headers=op).json()
    assert view["status"] == "healthy"
    near = view["positions"][0]["liquidation_price"] * 1.0003
    client.post(f"/accounts/{alice}/alerts", json={"kind": "status_change"}, headers=op)
    with client.websocket_connect(f"/ws/alerts/{alice}", headers=op) as ws:
        _tick(client, op, round(near, 1))
        alert = ws.receive_json()
    assert alert["kind"] == "status_change"
    assert alert["detail"] == "healthy -> margin_call"


def test_an_account_key_hears_only_its_own_alerts(
    client: TestClient, op: dict[str, str], alice: str, app: FastAPI
) -> None:
    client.post("/accounts/bob/deposits", json={"amount": 1000}, headers=op)
    client.post("/accounts/bob/fills", json={"symbol": BTC, "qty": 0.1, "leverage": 20}, headers=op)
    for account in (alice, "bob"):
        client.post(f"/accounts/{account}/alerts", json=RULE, headers=op)
    bob = {"X-API-Key": app.state.keys.create("account", "bob")}
    with client.websocket_connect("/ws/alerts", headers=bob) as ws:
        _tick(client, op, 55_000)
        heard = ws.receive_json()
    assert heard["account_id"] == "bob"
    history = client.get("/alerts", headers=bob).json()
    assert [a["account_id"] for a in history] == ["bob"]
    assert {a["account_id"] for a in client.get("/alerts", headers=op).json()} == {alice, "bob"}


def test_a_restart_goes_on_counting_so_no_alert_id_is_reused(tmp_path: Path) -> None:
    """A rule fires, the service restarts on the same ledger, the rule fires again: the new
    alert has the next id (not the first one again), and the record keeps both."""
    app = make_app(tmp_path)
    op = {"X-API-Key": app.state.keys.create("operator", label="tests")}
    with TestClient(app) as client:
        _tick(client, op, 60_000)
        client.post("/accounts/alice/deposits", json={"amount": 1000}, headers=op)
        fill = {"symbol": BTC, "qty": 0.1, "leverage": 20}
        assert client.post("/accounts/alice/fills", json=fill, headers=op).status_code == 201
        rule = client.post("/accounts/alice/alerts", json=RULE, headers=op).json()
        _tick(client, op, 55_000)
        _tick(client, op, 60_000)
    app.state.service.close()
    again = make_app(tmp_path)
    with TestClient(again) as client:
        _tick(client, op, 55_000)
        history = client.get("/alerts", headers=op).json()
    assert [a["id"] for a in history] == [f"{rule['id']}-2", f"{rule['id']}-1"]
