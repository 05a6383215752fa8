"""Keys, who sees what, body size and rate limits, and no secrets at rest or in logs."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.websockets import WebSocketDisconnect

from crossmargin.service.security import RateLimiter, hash_key

from .conftest import BTC, TestClient, make_app

ACCOUNT_ROUTES = (
    ("get", "/accounts/{a}", None),
    ("get", "/accounts/{a}/margin", None),
    ("get", "/accounts/{a}/liquidation", None),
    ("get", "/accounts/{a}/crash", None),
    ("get", "/accounts/{a}/curve", None),
    ("get", "/accounts/{a}/pm-heatmap", None),
    ("post", "/accounts/{a}/deposits", {"amount": 1}),
    ("post", "/accounts/{a}/withdrawals", {"amount": 1}),
    ("post", "/accounts/{a}/fills", {"symbol": BTC, "qty": 0.001}),
    ("post", "/accounts/{a}/what-if", {"symbol": BTC, "qty": 0.001}),
)
OPERATOR_ROUTES = (
    ("post", "/prices", {"prices": {BTC: 60_000}}),
    ("post", "/portfolio", {"accounts": []}),
    ("post", "/portfolio/import", {"accounts": []}),
    ("get", "/scenarios", None),
    ("post", "/stress", {"moves": [-0.1]}),
    ("get", "/feeds", None),
    ("post", "/feeds/replay", {}),
    ("post", "/feeds/synthetic", {}),
    ("delete", "/feeds/x", None),
    ("get", "/keys", None),
    ("post", "/keys", {"role": "operator"}),
)


@pytest.fixture
def bob_key(app: FastAPI, client: TestClient, op: dict[str, str], alice: str) -> str:
    client.post("/accounts/bob/deposits", json={"amount": 1000}, headers=op)
    key: str = app.state.keys.create("account", "bob")
    return key


def _call(client: TestClient, method: str, path: str, body: object, key: str | None) -> int:
    headers = {} if key is None else {"X-API-Key": key}
    if body is None:
        return client.request(method, path, headers=headers).status_code
    return client.request(method, path, json=body, headers=headers).status_code


@pytest.mark.parametrize(("method", "path", "body"), ACCOUNT_ROUTES + OPERATOR_ROUTES)
def test_missing_and_unknown_keys_are_401(
    client: TestClient, alice: str, method: str, path: str, body: object
) -> None:
    url = path.format(a=alice)
    assert _call(client, method, url, body, None) == 401
    assert _call(client, method, url, body, "cm_" + "x" * 43) == 401


@pytest.mark.parametrize(("method", "path", "body"), ACCOUNT_ROUTES)
def test_another_accounts_key_is_403(
    client: TestClient, bob_key: str, alice: str, method: str, path: str, body: object
) -> None:
    seq = client.app.state.service.ledger.state.seq  # type: ignore[attr-defined]
    assert _call(client, method, path.format(a=alice), body, bob_key) == 403
    assert client.app.state.service.ledger.state.seq == seq  # type: ignore[attr-defined]


@pytest.mark.parametrize(("method", "path", "body"), ACCOUNT_ROUTES)
def test_own_key_is_let_in(
    client: TestClient, bob_key: str, method: str, path: str, body: object
) -> None:
    # bob holds no position: his curve is refused as bad input, not for want of rights.
    assert _call(client, method, path.format(a="bob"), body, bob_key) in (200, 201, 422)


@pytest.mark.parametrize(("method", "path", "body"), OPERATOR_ROUTES)
def test_account_key_on_book_routes_is_403(
    client: TestClient, bob_key: str, method: str, path: str, body: object
) -> None:
    assert _call(client, method, path, body, bob_key) == 403


def test_account_key_lists_only_its_account(client: TestClient, bob_key: str) -> None:
    views = client.get("/accounts", headers={"X-API-Key": bob_key}).json()
    assert [v["account_id"] for v in views] == ["bob"]


def test_websocket_keys(client: TestClient, bob_key: str, alice: str) -> None:
    for headers, code in (({}, 4401), ({"X-API-Key": bob_key}, 4403)):
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect(f"/ws/risk/{alice}", headers=headers) as ws,
        ):
            ws.receive_json()
        assert closed.value.code == code
    with client.websocket_connect(f"/ws/risk/bob?key={bob_key}") as ws:
        assert ws.receive_json()["account_id"] == "bob"


def test_unknown_account_over_websocket(client: TestClient, op: dict[str, str]) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws/risk/nobody", headers=op) as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 4404


def test_keys_are_stored_as_digests_only(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    key = app.state.keys.create("operator")
    app.state.service.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert key.encode() not in raw
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rows = db.execute("select digest, prefix from service_api_keys").fetchall()
    assert rows == [(hash_key(key), key[:11])]
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_body_above_the_limit_is_413(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_body_bytes=1000)
    headers = {"X-API-Key": app.state.keys.create("operator")}
    with TestClient(app) as client:
        big = {"prices": {BTC: 60_000}, "pad": "x" * 2000}
        r = client.post("/prices", json=big, headers=headers)
        assert r.status_code == 413
        assert r.json()["field"] == "body"

        def chunks() -> Iterator[bytes]:
            yield b'{"prices": {"BTCUSDT": 60000}, "pad": "'
            for _ in range(10):
                yield b"x" * 200
            yield b'"}'

        streamed = client.post(
            "/prices",
            content=chunks(),
            headers={**headers, "content-type": "application/json"},
        )
        assert streamed.status_code == 413
        assert app.state.service.ledger.state.seq == 0


def test_rate_limit_is_429_per_key(tmp_path: Path) -> None:
    app = make_app(tmp_path, rate_per_second=0.001, rate_burst=3)
    one = {"X-API-Key": app.state.keys.create("operator")}
    two = {"X-API-Key": app.state.keys.create("operator")}
    with TestClient(app) as client:
        codes = [client.get("/accounts", headers=one).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = client.get("/accounts", headers=one)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["reason"] == "rate limit exceeded"
        assert client.get("/accounts", headers=two).status_code == 200


def test_token_bucket_refills() -> None:
    bucket = RateLimiter(rate=2.0, burst=2)
    assert [bucket.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert bucket.take("k", now=0.5) == 0.0
    assert bucket.take("other", now=0.5) == 0.0


def test_demo_mode_lets_requests_without_a_key_act_as_operator(tmp_path: Path) -> None:
    closed = make_app(tmp_path)
    (tmp_path / "demo").mkdir()
    demo = make_app(tmp_path / "demo", demo=True)
    # Without the lifespan (no ``with``): the demo's replay does not start.
    assert TestClient(demo).get("/accounts").status_code == 200
    assert TestClient(closed).get("/accounts").status_code == 401


def test_no_key_reaches_the_logs(
    client: TestClient, op: dict[str, str], alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.get(f"/accounts/{alice}", headers=op)
        client.get(f"/accounts/{alice}", headers={"X-API-Key": op["X-API-Key"] + "x"})
        client.get(f"/accounts/{alice}?key={op['X-API-Key']}", headers=op)
    requests = [r for r in caplog.records if r.getMessage() == "request"]
    assert len(requests) == 3
    key = op["X-API-Key"]
    served = [r for r in caplog.records if r.name.startswith(("crossmargin", "uvicorn"))]
    assert served
    for record in served:
        assert key not in record.getMessage()
        assert all(key not in str(v) for v in record.__dict__.values())
    assert requests[0].__dict__["key"] == key[:11]
