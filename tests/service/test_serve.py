"""``crossmargin serve`` under uvicorn on a free port, and ``crossmargin keys``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from typer.testing import CliRunner

from crossmargin.cli import app as cli

from .conftest import BTC

runner = CliRunner()
CLI = [sys.executable, "-c", "from crossmargin.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not become ready")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A ``crossmargin serve`` process on a free port; its URL and database URL."""
    port = _free_port()
    db = f"sqlite:///{tmp_path / 'data' / 'ledger.db'}"
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base, db
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://localhost:{port}/" in out


def test_serve_answers_and_pushes_over_websocket(served: tuple[str, str]) -> None:
    base, db = served
    made = subprocess.run(
        [*CLI, "keys", "create", "--operator", "--db", db], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    headers = {"X-API-Key": key}
    assert httpx.get(f"{base}/accounts").status_code == 401
    httpx.post(f"{base}/prices", json={"prices": {BTC: 60_000}}, headers=headers)
    httpx.post(f"{base}/accounts/alice/deposits", json={"amount": 1000}, headers=headers)
    fill = {"symbol": BTC, "qty": 0.1, "leverage": 20}
    assert httpx.post(f"{base}/accounts/alice/fills", json=fill, headers=headers).is_success

    async def listen() -> tuple[dict[str, object], dict[str, object]]:
        url = base.replace("http", "ws") + f"/ws/risk/alice?key={key}"
        async with websockets.connect(url) as ws:
            first = json.loads(await ws.recv())
            async with httpx.AsyncClient() as client:
                tick = {"prices": {BTC: 59_000}}
                await client.post(f"{base}/prices", json=tick, headers=headers)
            second = json.loads(await asyncio.wait_for(ws.recv(), 30))
            return first, second

    first, second = asyncio.run(listen())
    assert first["positions"][0]["mark"] == 60_000  # type: ignore[index]
    assert second["positions"][0]["mark"] == 59_000  # type: ignore[index]
    assert "crossmargin_prices_processed_total 2.0" in httpx.get(f"{base}/metrics").text


def test_keys_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k' / 'ledger.db'}"
    made = runner.invoke(cli, ["keys", "create", "--account", "alice", "--db", db])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("cm_") and len(key) == 46
    listing = runner.invoke(cli, ["keys", "list", "--db", db])
    assert listing.exit_code == 0
    assert key[:11] in listing.stdout and key not in listing.stdout
    revoked = runner.invoke(cli, ["keys", "revoke", key[:11], "--db", db])
    assert "revoked 1" in revoked.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "--db", "sqlite:///x.db"], "error: --operator: give either"),
        (["keys", "revoke", "cm_nothing0", "--db", "{db}"], "error: prefix: no key"),
        (["serve", "--log-level", "loud", "--db", "{db}"], "error: --log-level"),
        (["serve", "--venue", "nowhere", "--db", "{db}"], "error: venue"),
        (["serve", "--view-interval", "-1", "--db", "{db}"], "error: view_interval_s: must be"),
        (["serve", "--view-interval", "nan", "--db", "{db}"], "error: view_interval_s: must be"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = runner.invoke(cli, [a.replace("{db}", db) for a in args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
