"""The service on PostgreSQL: the ledger, the key table and the alert record in one schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from crossmargin.ledger import Ledger
from crossmargin.service.app import create_app
from crossmargin.service.settings import Settings, database_url
from crossmargin.service.state import ServiceState

from .conftest import BTC, TestClient

PG_ENV = "CROSSMARGIN_TEST_POSTGRES_URL"


@pytest.fixture
def pg_client() -> Iterator[tuple[TestClient, str]]:
    raw = os.environ.get(PG_ENV)
    if not raw:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    url = database_url(raw)
    schema = f"cm_service_{uuid.uuid4().hex[:12]}"
    state = ServiceState(Settings(db_url=url), Ledger(url, schema=schema))
    app = create_app(state=state)
    key = app.state.keys.create("operator")
    try:
        with TestClient(app) as client:
            yield client, key
    finally:
        state.close()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def test_service_on_postgres(pg_client: tuple[TestClient, str]) -> None:
    client, key = pg_client
    op = {"X-API-Key": key}
    assert client.get("/accounts").status_code == 401
    assert client.post("/prices", json={"prices": {BTC: 60_000}}, headers=op).status_code == 200
    assert client.post("/accounts/a/deposits", json={"amount": 1000}, headers=op).is_success
    fill = {"symbol": BTC, "qty": 0.1, "leverage": 20}
    assert client.post("/accounts/a/fills", json=fill, headers=op).is_success
    with client.websocket_connect("/ws/risk/a", headers=op) as ws:
        ws.receive_json()
        client.post("/prices", json={"prices": {BTC: 59_000}}, headers=op)
        assert ws.receive_json()["positions"][0]["mark"] == 59_000
    state: ServiceState = client.app.state.service  # type: ignore[attr-defined]
    state.record_alerts([{"id": "x1", "account_id": "a", "at": "2024-01-01T00:00:00+00:00"}])
    assert [a["id"] for a in state.records.alerts("a")] == ["x1"]
    assert client.get("/readyz").json()["status"] == "ready"


def test_url_names_the_driver() -> None:
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
