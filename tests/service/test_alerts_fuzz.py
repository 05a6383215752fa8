"""Schemathesis over the alert, webhook and multi-venue routes: whatever the generated request,
the answer is never a server error. Generation is derandomized, so every run sends the same
requests (among them rules that are created: a 201)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import BTC, TestClient, make_app

ROUTES = r"^/(accounts/\{account_id\}/alerts|webhooks|alerts|venues|traders)"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    app = make_app(path, rate_per_second=1e9, rate_burst=10**9)
    key = app.state.keys.create("operator")
    with TestClient(app) as client:
        op = {"X-API-Key": key}
        client.post("/prices", json={"prices": {BTC: 60_000}}, headers=op)
        client.post("/accounts/alice/deposits", json={"amount": 1000}, headers=op)
        yield client, key
    app.state.service.close()


def test_no_server_errors(served: tuple[TestClient, str]) -> None:
    client, key = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [r.ok() for r in schema.include(path_regex=ROUTES).get_all_operations()]
    assert len(operations) >= 10
    seen: dict[tuple[str, str, int], int] = {}
    calls = [0]
    for operation in operations:

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            calls[0] += 1
            if "account_id" in (case.path_parameters or {}) and calls[0] % 2:
                case.path_parameters["account_id"] = "alice"  # type: ignore[index]
            response = case.call(headers={"X-API-Key": key})
            assert response.status_code < 500, (case.method, case.path, response.text)
            where = (case.method, case.path, response.status_code)
            seen[where] = seen.get(where, 0) + 1

        call()
    assert any(code == 201 for _, _, code in seen)
