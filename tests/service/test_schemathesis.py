"""Schemathesis against the service's OpenAPI document, in process, with an operator key:
whatever it sends, the service never answers with a server error."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from starlette.exceptions import StarletteDeprecationWarning

from crossmargin.service.app import create_app
from crossmargin.service.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

_folder = Path(tempfile.mkdtemp(prefix="crossmargin-fuzz-"))
app = create_app(
    Settings(db_url=f"sqlite:///{_folder / 'ledger.db'}", rate_per_second=1e9, rate_burst=10**9)
)
KEY = app.state.keys.create("operator", label="fuzz")
_seed = TestClient(app)
_headers = {"X-API-Key": KEY}
_seed.post("/prices", json={"prices": {"BTCUSDT": 60_000}}, headers=_headers)
_seed.post("/accounts/alice/deposits", json={"amount": 1000}, headers=_headers)
_seed.post("/accounts/alice/fills", json={"symbol": "BTCUSDT", "qty": 0.1}, headers=_headers)

schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
    # Polls an exchange over the network.
    path="/feeds/ccxt"
)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers=_headers)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
