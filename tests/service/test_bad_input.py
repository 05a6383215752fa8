"""Bad input answers 4xx with a JSON body naming the field, never 500, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import BTC, TestClient

FILLS = "/accounts/alice/fills"
CASES: tuple[tuple[str, str, Any, int, str], ...] = (
    ("post", "/accounts/alice/deposits", b"{not json", 422, "body"),
    ("post", "/prices", b'{"prices": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400, "body"),
    ("post", "/accounts/alice/deposits", {"amount": "ten"}, 422, "amount"),
    ("post", "/accounts/alice/deposits", {"amount": -5}, 422, "amount"),
    ("post", "/accounts/alice/deposits", {"amount": 0}, 422, "amount"),
    ("post", "/accounts/alice/deposits", {"amount": 1e300}, 422, "amount"),
    ("post", "/accounts/alice/deposits", {"amount": True}, 422, "amount"),
    ("post", "/accounts/alice/deposits", {"amount": [1]}, 422, "amount"),
    ("post", "/accounts/alice/deposits", {}, 422, "amount"),
    ("post", "/accounts/alice/deposits", {"amount": 1, "extra": 1}, 422, "extra"),
    ("post", "/accounts/alice/deposits", [1, 2], 422, "body"),
    ("post", "/accounts/bad%20id/deposits", {"amount": 1}, 422, "account"),
    ("post", "/accounts/alice/deposits", {"amount": 1, "key": ""}, 422, "key"),
    ("post", "/accounts/alice/withdrawals", {"amount": "1e-9"}, 422, "amount"),
    ("post", "/accounts/nobody/withdrawals", {"amount": 1}, 404, "account_id"),
    ("post", "/accounts/alice/fills", {"symbol": "DOGEUSDX", "qty": 1}, 422, "symbol"),
    ("post", "/accounts/alice/fills", {"symbol": BTC, "qty": 0}, 422, "qty"),
    ("post", "/accounts/alice/fills", {"symbol": BTC, "qty": 0.01, "price": 1}, 422, "price"),
    ("post", "/accounts/alice/fills", {"symbol": BTC, "qty": 1, "leverage": 0.5}, 422, "leverage"),
    ("post", FILLS, {"symbol": BTC, "qty": 1, "margin_mode": ""}, 422, "margin_mode"),
    ("post", "/accounts/nobody/fills", {"symbol": BTC, "qty": 1}, 404, "account_id"),
    ("post", "/accounts/alice/what-if", {"symbol": "NOPE", "qty": 1}, 422, "symbol"),
    ("post", "/accounts/alice/what-if", {"symbol": BTC, "qty": 0}, 422, "qty"),
    ("post", "/accounts/alice/what-if", {"symbol": BTC, "qty": "1"}, 422, "qty"),
    ("post", "/prices", {"prices": {"NOPE": 1}}, 422, "prices.NOPE"),
    ("post", "/prices", {"prices": {BTC: -1}}, 422, f"prices.{BTC}"),
    ("post", "/prices", {"prices": {BTC: 0}}, 422, f"prices.{BTC}"),
    ("post", "/prices", {"prices": {BTC: "abc"}}, 422, f"prices.{BTC}"),
    ("post", "/prices", {"prices": {}}, 422, "prices"),
    ("post", "/prices", {"prices": {BTC: 1}, "at": "yesterday"}, 422, "at"),
    ("post", "/prices", {"prices": {BTC: 1}, "at": "2020-01-01T00:00:00"}, 422, "at"),
    ("post", "/portfolio", {"accounts": "x"}, 422, "accounts"),
    ("post", "/portfolio", {"rulebook": "nope", "accounts": []}, 422, "rulebook"),
    ("post", "/portfolio/import", {"accounts": [{"id": "x"}]}, 422, "accounts[0].balances"),
    (
        "post",
        "/portfolio/import",
        {"accounts": [{"id": "alice", "balances": {"USDT": 1}}]},
        422,
        "accounts[0].id",
    ),
    ("post", "/stress", {"moves": [-2]}, 422, "scenarios.-200%.move"),
    ("post", "/stress", {}, 422, "moves"),
    ("post", "/stress", {"historical": ["1999-01-01"]}, 422, "scenario"),
    ("get", "/scenarios?rulebook=nope", None, 422, "rulebook"),
    ("get", "/scenarios?leg=1:bad", None, 422, "leg[0]"),
    ("get", "/scenarios?spot=-1", None, 422, "spot"),
    ("get", "/accounts/alice/curve?points=abc", None, 422, "points"),
    ("get", "/accounts/alice/curve?span=2", None, 422, "span"),
    ("get", "/accounts/alice/curve?symbol=ETHUSDT", None, 422, "symbol"),
    ("get", "/accounts/alice/pm-heatmap?rulebook=nope", None, 422, "rulebook"),
    ("get", "/accounts/nobody", None, 404, "account_id"),
    ("get", "/accounts/nobody/margin", None, 404, "account_id"),
    ("delete", "/feeds/nope", None, 404, "feed_id"),
    ("post", "/feeds/replay", {"file": "/etc/passwd"}, 422, "file"),
    ("post", "/feeds/replay", {"speed": 0}, 422, "speed"),
    ("post", "/feeds/synthetic", {"symbols": ["ETHUSDT"]}, 422, "symbols[0]"),
    ("post", "/feeds/synthetic", {"symbols": []}, 422, "symbols"),
    ("post", "/feeds/ccxt", {"exchange": "nope"}, 422, "exchange"),
    ("post", "/keys", {"role": "account"}, 422, "account_id"),
    ("post", "/keys", {"role": "god"}, 422, "role"),
    ("delete", "/keys/short", None, 422, "prefix"),
)


@pytest.mark.parametrize(("method", "path", "body", "code", "field"), CASES)
def test_bad_input_names_the_field_and_changes_nothing(
    client: TestClient,
    op: dict[str, str],
    alice: str,
    method: str,
    path: str,
    body: Any,
    code: int,
    field: str,
) -> None:
    state = client.app.state.service  # type: ignore[attr-defined]
    seq = state.ledger.state.seq
    view = state.view(alice)
    if isinstance(body, bytes):
        r = client.request(
            method, path, content=body, headers={**op, "content-type": "application/json"}
        )
    elif body is None:
        r = client.request(method, path, headers=op)
    else:
        r = client.request(method, path, json=body, headers=op)
    assert r.status_code == code, r.text
    answer = r.json()
    assert answer["field"] == field, answer
    assert answer["reason"]
    assert answer["error"] == f"{field}: {answer['reason']}"
    assert state.ledger.state.seq == seq
    assert state.view(alice) == view
