"""Importing a portfolio document (ccxt structures included) into the ledger."""

from __future__ import annotations

from typing import Any

from .conftest import BTC, TestClient

CCXT_POSITION = {
    "symbol": "BTC/USDT:USDT",
    "contracts": 0.2,
    "contractSize": 1,
    "side": "short",
    "entryPrice": 61000.0,
    "marginMode": "cross",
    "leverage": 10,
}


def _document(**account: Any) -> dict[str, Any]:
    base = {"id": "imp", "balances": {"USDT": 5000.0}, "positions": [CCXT_POSITION]}
    return {"prices": {BTC: 60_000.0}, "accounts": [{**base, **account}]}


def test_import_opens_the_accounts_once(client: TestClient, op: dict[str, str]) -> None:
    client.post("/prices", json={"prices": {BTC: 60_000}}, headers=op)
    r = client.post("/portfolio/import", json=_document(), headers=op)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refused"] == []
    (view,) = body["accounts"]
    (position,) = view["positions"]
    assert position["qty"] == -0.2 and position["entry"] == 61_000
    # Short 0.2 from 61,000 at a 60,000 mark: 200 USDT up, less the ledger's taker fee (0.05%).
    assert view["equity"] == 5000 + 0.2 * (61_000 - 60_000) - 0.0005 * 0.2 * 61_000
    state = client.app.state.service  # type: ignore[attr-defined]
    seq = state.ledger.state.seq
    again = client.post("/portfolio/import", json=_document(), headers=op)
    assert again.status_code == 200
    assert state.ledger.state.seq == seq
    other = client.post("/portfolio/import", json=_document(balances={"USDT": 1.0}), headers=op)
    assert other.status_code == 422
    assert other.json()["field"] == "accounts[0].id"


def test_import_checks_the_whole_document_first(client: TestClient, op: dict[str, str]) -> None:
    document = _document()
    document["accounts"].append({"id": "second", "balances": {"USDT": 10.0, "BTC": 1.0}})
    r = client.post("/portfolio/import", json=document, headers=op)
    assert r.status_code == 422
    assert r.json()["field"] == "accounts[1].balances.BTC"
    assert client.app.state.service.ledger.state.seq == 0  # type: ignore[attr-defined]


def test_a_refused_order_is_reported(client: TestClient, op: dict[str, str]) -> None:
    client.post("/prices", json={"prices": {BTC: 60_000}}, headers=op)
    r = client.post("/portfolio/import", json=_document(balances={"USDT": 100.0}), headers=op)
    assert r.status_code == 200
    (refused,) = r.json()["refused"]
    assert refused["field"] == "accounts[0].positions[0].order"
    assert r.json()["accounts"][0]["positions"] == []
