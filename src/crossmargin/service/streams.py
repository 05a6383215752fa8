"""WebSocket channels over the hub, shared by every ``/ws/...`` route.

The key comes in ``X-API-Key`` or the ``key`` query parameter; a bad key closes the socket with
``4000 + status`` (4401, 4429), a key that may not see the account with 4403, an unknown
account with 4404. A channel sends its first messages on connect, then every hub message until
the client goes away (what the client sends is ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from crossmargin.service.errors import ApiError
from crossmargin.service.hub import Subscription, encode
from crossmargin.service.security import Principal, websocket_principal
from crossmargin.service.state import ServiceState

__all__ = ["caller", "forward"]


async def caller(
    websocket: WebSocket, account_id: str | None = None, *, operator: bool = False
) -> Principal | None:
    """The socket's principal, or ``None`` once the socket is closed for a bad key, a key that
    may not see ``account_id`` (or is not an operator's when ``operator``) or an unknown
    account."""
    try:
        who = websocket_principal(websocket)
    except ApiError as error:
        await websocket.close(code=4000 + error.status, reason=error.reason)
        return None
    if operator and not who.is_operator:
        await websocket.close(code=4403, reason="needs an operator key")
        return None
    if account_id is not None:
        if not who.may_see(account_id):
            await websocket.close(code=4403, reason="this key may not see that account")
            return None
        state: ServiceState = websocket.app.state.service
        if not state.known(account_id):
            await websocket.close(code=4404, reason="unknown account")
            return None
    return who


async def forward(
    websocket: WebSocket,
    channel: str,
    first: Iterable[Mapping[str, Any]] = (),
    *,
    kind: str | None = None,
) -> None:
    """Accept the socket, send ``first``, then each message of the hub's ``channel`` (tagged
    ``"type": kind`` when given) until the client disconnects."""
    state: ServiceState = websocket.app.state.service
    await websocket.accept()
    sub = state.hub.subscribe(channel)
    closed = asyncio.ensure_future(_closed(websocket, sub))
    try:
        for message in first:
            await websocket.send_text(encode(message))
        if kind is None:
            async for text in sub.texts():
                await websocket.send_text(text)
        else:
            async for message in sub:
                await websocket.send_text(encode({"type": kind, **message}))
    except WebSocketDisconnect:
        pass
    finally:
        sub.close()
        closed.cancel()


async def _closed(websocket: WebSocket, sub: Subscription) -> None:
    """Ends ``sub`` when the client goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    sub.close()
