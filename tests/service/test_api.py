"""The REST routes against the ledger and the engine they front."""

from __future__ import annotations

import math

import pytest

from crossmargin.app.portfolio import evaluate_portfolio, parse_portfolio
from crossmargin.app.whatif import check_order
from crossmargin.io.results import to_data
from crossmargin.model import Order
from crossmargin.service.state import ServiceState

from .conftest import BTC, TestClient

ENTRY = 60_000.0
QTY = 0.1
FEE = 0.0005 * QTY * ENTRY
"""Binance USD-M taker fee on alice's fill (binance liquidation rulebook: 0.05%)."""


def _state(client: TestClient) -> ServiceState:
    state: ServiceState = client.app.state.service  # type: ignore[attr-defined]
    return state


def _document(wallet: float, mark: float) -> dict[str, object]:
    """alice as a portfolio document: the same wallet, position and mark."""
    return {
        "rulebook": "binance-usdm",
        "prices": {BTC: mark},
        "accounts": [
            {
                "id": "alice",
                "balances": {"USDT": wallet},
                "positions": [{"symbol": BTC, "qty": QTY, "entry_price": ENTRY, "leverage": 20}],
            }
        ],
    }


def test_account_view_is_the_engines(client: TestClient, op: dict[str, str], alice: str) -> None:
    r = client.get(f"/accounts/{alice}", headers=op)
    assert r.status_code == 200
    body = r.json()
    health = _state(client).ledger.health(alice)
    assert body["equity"] == health.equity
    assert body["health"]["equity"] == health.equity
    assert body["maintenance_margin"] == health.maintenance_margin
    assert body["crash_distance"] == health.crash_distance
    (position,) = body["positions"]
    assert position["symbol"] == BTC
    assert position["liquidation_price"] == health.positions[0].liquidation_price
    assert position["bankruptcy_price"] == health.positions[0].bankruptcy_price
    mark, liq = position["mark"], position["liquidation_price"]
    assert position["distance"] == pytest.approx(abs(mark - liq) / mark)


def test_wallet_after_a_fill_is_the_deposit_less_the_fee(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    body = client.get(f"/accounts/{alice}", headers=op).json()
    assert body["health"]["wallet_balance"] == pytest.approx(1000 - FEE)
    assert body["equity"] == pytest.approx(1000 - FEE)


def test_list_is_riskiest_first(client: TestClient, op: dict[str, str], alice: str) -> None:
    client.post("/accounts/bob/deposits", json={"amount": 500}, headers=op)
    views = client.get("/accounts", headers=op).json()
    assert [v["account_id"] for v in views] == ["alice", "bob"]


def test_margin_report_is_crossmargin_margin_json(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    report = client.get(f"/accounts/{alice}/margin", headers=op).json()
    expected = to_data(evaluate_portfolio(parse_portfolio(_document(1000 - FEE, ENTRY))))
    assert report["rulebook"] == expected["rulebook"]
    (got,), (want,) = report["accounts"], expected["accounts"]
    for name in ("equity", "initial_margin", "maintenance_margin", "margin_ratio", "status"):
        assert got[name] == pytest.approx(want[name]), name
    assert got["positions"][0]["liquidation_price"] == pytest.approx(
        want["positions"][0]["liquidation_price"]
    )


def test_portfolio_route_margins_a_document(client: TestClient, op: dict[str, str]) -> None:
    document = _document(1000.0, 59_000.0)
    r = client.post("/portfolio", json=document, headers=op)
    assert r.status_code == 200
    assert r.json() == to_data(evaluate_portfolio(parse_portfolio(document)))


def test_portfolio_takes_ccxt_positions(client: TestClient, op: dict[str, str]) -> None:
    ccxt_position = {
        "symbol": "BTC/USDT:USDT",
        "contracts": 0.1,
        "contractSize": 1,
        "side": "long",
        "entryPrice": 60000.0,
        "marginMode": "cross",
        "leverage": 20,
    }
    document = {
        "rulebook": "binance-usdm",
        "prices": {BTC: 60_000.0},
        "accounts": [{"id": "a", "balances": {"USDT": 1000.0}, "positions": [ccxt_position]}],
    }
    r = client.post("/portfolio", json=document, headers=op)
    assert r.status_code == 200, r.text
    (account,) = r.json()["accounts"]
    assert account["positions"][0]["symbol"] == BTC
    assert account["positions"][0]["qty"] == 0.1


def test_liquidation_and_bankruptcy_prices(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    (p,) = client.get(f"/accounts/{alice}/liquidation", headers=op).json()["positions"]
    # A lone cross long: bankrupt where the wallet is gone, wallet + qty (P - entry) = 0
    # (Binance counts no closing fee), so P = entry - wallet / qty.
    assert p["bankruptcy_price"] == pytest.approx(ENTRY - (1000 - FEE) / QTY)
    assert p["bankruptcy_price"] < p["liquidation_price"] < p["mark"]


def test_crash_distance(client: TestClient, op: dict[str, str], alice: str) -> None:
    body = client.get(f"/accounts/{alice}/crash", headers=op).json()
    (p,) = client.get(f"/accounts/{alice}/liquidation", headers=op).json()["positions"]
    # One linear position: the crash is the move that takes the mark to its liquidation price.
    assert body["crash_move_down"] == pytest.approx(p["liquidation_price"] / ENTRY - 1, rel=1e-6)
    assert body["crash_distance"] == pytest.approx(-body["crash_move_down"])
    assert body["crash_move_up"] is None


def test_deposit_retry_is_applied_once(client: TestClient, op: dict[str, str]) -> None:
    first = client.post("/accounts/carol/deposits", json={"amount": 100, "key": "d1"}, headers=op)
    again = client.post("/accounts/carol/deposits", json={"amount": 100, "key": "d1"}, headers=op)
    assert first.status_code == again.status_code == 201
    assert again.json()["duplicate"] is True
    assert again.json()["account"]["equity"] == 100


def test_withdrawal_and_its_limit(client: TestClient, op: dict[str, str], alice: str) -> None:
    ok = client.post(f"/accounts/{alice}/withdrawals", json={"amount": "100.5"}, headers=op)
    assert ok.status_code == 201
    assert ok.json()["account"]["equity"] == pytest.approx(1000 - FEE - 100.5)
    seq = _state(client).ledger.state.seq
    too_much = client.post(f"/accounts/{alice}/withdrawals", json={"amount": 5000}, headers=op)
    assert too_much.status_code == 422
    assert too_much.json()["field"] == "amount"
    assert _state(client).ledger.state.seq == seq


def test_fill_beyond_initial_margin_is_refused(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    seq = _state(client).ledger.state.seq
    r = client.post(f"/accounts/{alice}/fills", json={"symbol": BTC, "qty": 10}, headers=op)
    assert r.status_code == 422
    assert r.json()["field"] == "order"
    assert _state(client).ledger.state.seq == seq


def test_what_if_is_check_order(client: TestClient, op: dict[str, str], alice: str) -> None:
    state = _state(client)
    r = client.post(f"/accounts/{alice}/what-if", json={"symbol": BTC, "qty": 0.05}, headers=op)
    assert r.status_code == 200
    portfolio = parse_portfolio(_document(1000 - FEE, ENTRY))
    expected = to_data(check_order(portfolio, alice, Order(BTC, 0.05)))
    assert r.json()["accepted"] is expected["accepted"] is True
    assert r.json()["after"]["initial_margin"] == pytest.approx(expected["after"]["initial_margin"])
    assert float(state.ledger.state.positions[alice][BTC].qty) == QTY


def test_curve_cross_equity_is_wallet_plus_pnl(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    r = client.get(f"/accounts/{alice}/curve", params={"points": 11, "span": 0.2}, headers=op)
    assert r.status_code == 200
    body = r.json()
    assert body["symbol"] == BTC
    assert len(body["points"]) == 11
    wallet = 1000 - FEE
    for point in body["points"]:
        price = ENTRY * (1 + point["move"])
        assert point["price"] == pytest.approx(price)
        assert point["cross_equity"] == pytest.approx(wallet + QTY * (price - ENTRY))
    # Isolated at its initial margin, the position liquidates much closer to the mark.
    assert body["cross_liquidation_price"] < body["isolated_liquidation_price"] < ENTRY
    mid = body["points"][5]
    assert mid["move"] == 0 and mid["cross_status"] == "healthy"


def test_pm_heatmap(client: TestClient, op: dict[str, str], alice: str) -> None:
    r = client.get(f"/accounts/{alice}/pm-heatmap", headers=op)
    assert r.status_code == 200
    body = r.json()
    assert body["rulebook"] == "deribit-pm"
    assert len(body["cells"]) == len(body["vol_moves"])
    assert all(len(row) == len(body["price_moves"]) for row in body["cells"])
    # A linear long gains with the price whatever the vol: each row rises left to right.
    for row in body["cells"]:
        values = [v for v in row if v is not None]
        assert values == sorted(values)
    j = body["price_moves"].index(0.0)
    assert all(math.isclose(row[j], 0.0, abs_tol=1e-9) for row in body["cells"])


def test_scenarios_grid(client: TestClient, op: dict[str, str]) -> None:
    r = client.get("/scenarios", params={"leg": ["1:perp"], "spot": 50_000}, headers=op)
    assert r.status_code == 200
    body = r.json()
    assert body["rulebook"] == "deribit-pm"
    assert body["currency"] == "BTC"
    standard = [row for row in body["scenarios"] if row["kind"] == "standard"]
    assert len(standard) >= 27
    for row in standard:
        # One coin long: USD P&L spot x move, counted in coin at the shocked price.
        move = row["price_move"]
        assert row["pnl"] == pytest.approx(50_000 * move / (50_000 * (1 + move)))


def test_stress(client: TestClient, op: dict[str, str], alice: str) -> None:
    scenarios = {"moves": [-0.05, -0.3], "historical": ["2020-03-12"]}
    r = client.post("/stress", json=scenarios, headers=op)
    assert r.status_code == 200
    body = r.json()
    crash = client.get(f"/accounts/{alice}/crash", headers=op).json()["crash_distance"]
    liquidated = {s["name"]: s["liquidated"] for s in body["scenarios"]}
    assert liquidated["-5%"] == int(crash < 0.05) == 0
    assert liquidated["-30%"] == int(crash < 0.3) == 1
    assert body["worst"][0]["account_id"] == alice
    assert body["worst"][0]["worst_scenario"] == "2020-03-12"
    wallet = 1000 - FEE
    move = 4736.21 / 7945.36 - 1
    assert body["worst"][0]["worst_loss"] == pytest.approx(wallet - (wallet + QTY * ENTRY * move))


def test_prices_liquidate(client: TestClient, op: dict[str, str], alice: str) -> None:
    liq = client.get(f"/accounts/{alice}/liquidation", headers=op).json()["positions"][0]
    r = client.post("/prices", json={"prices": {BTC: liq["liquidation_price"] - 100}}, headers=op)
    assert r.status_code == 200
    view = client.get(f"/accounts/{alice}", headers=op).json()
    assert view["positions"] == []
    metrics = client.get("/metrics").text
    assert "crossmargin_liquidations_total 1.0" in metrics


def test_ops_routes(client: TestClient, op: dict[str, str], alice: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["accounts"] == 1
    text = client.get("/metrics").text
    assert "crossmargin_prices_processed_total 1.0" in text
    assert 'crossmargin_accounts{status="healthy"} 1.0' in text
    assert "crossmargin_tick_to_alert_seconds_bucket" in text
    assert "crossmargin_webhook_failures_total 0.0" in text


def test_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/accounts",
        "/accounts/{account_id}/margin",
        "/accounts/{account_id}/curve",
        "/prices",
        "/portfolio",
        "/stress",
        "/feeds/replay",
        "/metrics",
    ):
        assert path in paths


def test_keys_route(client: TestClient, op: dict[str, str], alice: str) -> None:
    made = client.post("/keys", json={"role": "account", "account_id": alice}, headers=op)
    assert made.status_code == 201
    key = made.json()["key"]
    mine = {"X-API-Key": key}
    assert client.get(f"/accounts/{alice}", headers=mine).status_code == 200
    listed = client.get("/keys", headers=op).json()
    assert any(k["prefix"] == key[:11] and k["account_id"] == alice for k in listed)
    assert all("key" not in k for k in listed)
    assert client.delete(f"/keys/{key[:11]}", headers=op).json() == {"revoked": 1}
    assert client.get(f"/accounts/{alice}", headers=mine).status_code == 401
    assert client.delete(f"/keys/{key[:11]}", headers=op).status_code == 404


def test_book_channel(client: TestClient, op: dict[str, str], alice: str) -> None:
    with client.websocket_connect("/ws/book", headers=op) as ws:
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot"
        assert [v["account_id"] for v in snapshot["accounts"]] == [alice]
        client.post("/prices", json={"prices": {BTC: 59_500}}, headers=op)
        tick = ws.receive_json()
    assert tick["type"] == "tick"
    assert tick["prices"] == {BTC: 59_500}
    assert tick["changed"] == 1
    assert [v["account_id"] for v in tick["views"]] == [alice]
    assert tick["views"][0]["positions"][0]["mark"] == 59_500
    assert tick["statuses"] == {"healthy": 1}
