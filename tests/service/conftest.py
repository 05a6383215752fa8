"""Fixtures of the service tests: an app over a fresh SQLite ledger, its operator key, a
client (lifespan running) and an account holding a BTC position."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette asks for its httpx fork; the pinned httpx works the same for these tests.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from crossmargin.service.app import create_app
from crossmargin.service.settings import Settings

BTC = "BTCUSDT"


def make_app(tmp_path: Path, **settings: Any) -> FastAPI:
    """A service app over a new SQLite ledger in ``tmp_path``."""
    return create_app(Settings(db_url=f"sqlite:///{tmp_path / 'ledger.db'}", **settings))


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return make_app(tmp_path)


@pytest.fixture
def operator_key(app: FastAPI) -> str:
    key: str = app.state.keys.create("operator", label="tests")
    return key


@pytest.fixture
def op(operator_key: str) -> dict[str, str]:
    """Headers carrying the operator key."""
    return {"X-API-Key": operator_key}


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def alice(client: TestClient, op: dict[str, str]) -> str:
    """Account ``alice``: 1,000 USDT and 0.1 BTC long at 20x, the mark at 60,000."""
    assert client.post("/prices", json={"prices": {BTC: 60_000}}, headers=op).status_code == 200
    r = client.post("/accounts/alice/deposits", json={"amount": 1000}, headers=op)
    assert r.status_code == 201, r.text
    r = client.post(
        "/accounts/alice/fills", json={"symbol": BTC, "qty": 0.1, "leverage": 20}, headers=op
    )
    assert r.status_code == 201, r.text
    return "alice"
