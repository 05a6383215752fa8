"""The /feeds routes: a replay runs to its end, a synthetic walk and a ccxt feed start and stop."""

from __future__ import annotations

import time
from collections.abc import Mapping
from importlib import resources
from typing import Any

import pytest

from crossmargin.lab.replay import load_candles
from crossmargin.service.routes import feeds as feed_routes

from .conftest import BTC, TestClient


def _wait(client: TestClient, op: dict[str, str], feed_id: str, ticks: int) -> dict[str, Any]:
    """The feed once it applied ``ticks`` ticks (or stopped), waiting at most two minutes."""
    deadline = time.monotonic() + 120
    while True:
        (info,) = [f for f in client.get("/feeds", headers=op).json() if f["id"] == feed_id]
        if info["ticks"] >= ticks or not info["running"] or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def test_replay_runs_every_candle(client: TestClient, op: dict[str, str], alice: str) -> None:
    r = client.post(
        "/feeds/replay", json={"file": "btc_usd_1d_2025-10.csv", "speed": 1e9}, headers=op
    )
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["kind"] == "replay" and started["params"]["candles"] == 20
    info = _wait(client, op, started["id"], 60)
    assert info["ticks"] == 60 and info["error"] is None
    with resources.as_file(resources.files("crossmargin.data") / "btc_usd_1d_2025-10.csv") as f:
        close = float(load_candles(f)[-1].close)
    (position,) = client.get(f"/accounts/{alice}", headers=op).json()["positions"]
    assert position["mark"] == close
    assert client.delete(f"/feeds/{started['id']}", headers=op).json()["running"] is False
    assert client.get("/feeds", headers=op).json() == []


def test_synthetic_walk_starts_and_stops(
    client: TestClient, op: dict[str, str], alice: str
) -> None:
    body = {"interval": 0.01, "step": 60, "volatility": 0.5}
    started = client.post("/feeds/synthetic", json=body, headers=op).json()
    assert started["params"]["symbols"] == [BTC]
    info = _wait(client, op, started["id"], 3)
    assert info["ticks"] >= 3
    stopped = client.delete(f"/feeds/{started['id']}", headers=op).json()
    assert stopped["running"] is False
    default = client.post("/feeds/synthetic", json={}, headers=op).json()
    state = client.app.state.service  # type: ignore[attr-defined]
    assert default["params"]["volatility"] == state.volatility(BTC)
    client.delete(f"/feeds/{default['id']}", headers=op)


class _Recorded:
    """Stands in for ``CcxtSource``: a recorded ccxt ticker, no network."""

    closed = False

    def __init__(self, exchange_id: str) -> None:
        self.exchange_id = exchange_id

    async def fetch_ticker(self, symbol: str) -> Mapping[str, Any]:
        return {"symbol": symbol, "timestamp": 1597370495002, "markPrice": 59_900.0}

    async def close(self) -> None:
        type(self).closed = True


def test_ccxt_feed_route(
    client: TestClient, op: dict[str, str], alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_routes, "CcxtSource", _Recorded)
    body = {"exchange": "binanceusdm", "symbols": {BTC: "BTC/USDT:USDT"}, "interval": 0.2}
    started = client.post("/feeds/ccxt", json=body, headers=op).json()
    assert _wait(client, op, started["id"], 1)["ticks"] >= 1
    view = client.get(f"/accounts/{alice}", headers=op).json()
    assert view["positions"][0]["mark"] == 59_900
    client.delete(f"/feeds/{started['id']}", headers=op)
    assert _Recorded.closed
