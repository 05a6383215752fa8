"""The WebSocket risk channel: ``/ws/risk/{account_id}`` sends the account's view on connect,
then each new view as the account changes (the key in ``X-API-Key`` or the ``key`` query
parameter). A bad key closes with 4401, another account's key with 4403, an unknown account
with 4404."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from crossmargin.service.errors import ApiError
from crossmargin.service.hub import Subscription
from crossmargin.service.security import websocket_principal
from crossmargin.service.state import ServiceState

__all__ = ["router"]

router = APIRouter()


@router.websocket("/ws/risk/{account_id}")
async def risk_channel(websocket: WebSocket, account_id: str) -> None:
    """Push the account's :class:`AccountView` on change."""
    state: ServiceState = websocket.app.state.service
    try:
        who = websocket_principal(websocket)
    except ApiError as error:
        await websocket.close(code=4000 + error.status, reason=error.reason)
        return
    if not who.may_see(account_id):
        await websocket.close(code=4403, reason="this key may not see that account")
        return
    if not state.known(account_id):
        await websocket.close(code=4404, reason="unknown account")
        return
    await websocket.accept()
    sub = state.hub.subscribe(f"risk:{account_id}")
    closed = asyncio.ensure_future(_closed(websocket))
    try:
        await websocket.send_json(state.view(account_id).to_data())
        async for message in _until(sub, closed):
            await websocket.send_json(message)
    except WebSocketDisconnect:
        pass
    finally:
        sub.close()
        closed.cancel()


async def _closed(websocket: WebSocket) -> None:
    """Returns when the client goes away (anything it sends is ignored)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _until(
    sub: Subscription, closed: asyncio.Future[None]
) -> AsyncIterator[dict[str, Any]]:
    """The subscription's messages until ``closed`` completes."""
    while True:
        nxt = asyncio.ensure_future(sub.__anext__())
        waiting: list[asyncio.Future[Any]] = [nxt, closed]
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if nxt not in done:
            nxt.cancel()
            return
        try:
            yield nxt.result()
        except StopAsyncIteration:
            return
