"""The REST routes against the ledger and the engine they front."""

from __future__ import annotations

from crossmargin.service.state import ServiceState

from .conftest import BTC, TestClient


def test_account_view_after_a_fill_is_the_engines(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    r = client.get(f"/accounts/{alice}", headers=op)
    assert r.status_code == 200
    body = r.json()
    state: ServiceState = client.app.state.service  # type: ignore[attr-defined]
    health = state.ledger.health(alice)
    assert body["equity"] == health.equity
    assert body["maintenance_margin"] == health.maintenance_margin
    (position,) = body["positions"]
    assert position["symbol"] == BTC
    assert position["liquidation_price"] == health.positions[0].liquidation_price
    mark, liq = position["mark"], position["liquidation_price"]
    assert position["distance"] == abs(mark - liq) / mark


def test_prices_move_the_view_and_ws_pushes_it(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    with client.websocket_connect(f"/ws/risk/{alice}", headers=op) as ws:
        first = ws.receive_json()
        r = client.post("/prices", json={"prices": {BTC: 58_000}}, headers=op)
        assert r.status_code == 200
        assert r.json()["changed"] == [alice]
        pushed = ws.receive_json()
    assert first["positions"][0]["mark"] == 60_000
    assert pushed["positions"][0]["mark"] == 58_000
    assert pushed["equity"] < first["equity"]


def test_no_key_is_401(client: TestClient) -> None:
    r = client.get("/accounts")
    assert r.status_code == 401
    assert r.json()["field"] == "X-API-Key"
