"""The WebSocket risk channels (keys and close codes: :mod:`crossmargin.service.streams`):

- ``/ws/risk/{account_id}``: the account's view on connect, then each new view as it changes;
- ``/ws/book`` (operator): ``{"type": "snapshot", "accounts": [...]}`` (every view, riskiest
  first) on connect, then after each tick the ``book`` message (``"type": "tick"``: marks,
  accounts per status, the views that changed).
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from crossmargin.service.state import ServiceState
from crossmargin.service.streams import caller, forward

__all__ = ["router"]

router = APIRouter()


@router.websocket("/ws/risk/{account_id}")
async def risk_channel(websocket: WebSocket, account_id: str) -> None:
    """Push the account's :class:`AccountView` on change."""
    if await caller(websocket, account_id) is None:
        return
    state: ServiceState = websocket.app.state.service
    view = await state.run(lambda: state.view(account_id))
    await forward(websocket, f"risk:{account_id}", [view.to_data()])


@router.websocket("/ws/book")
async def book_channel(websocket: WebSocket) -> None:
    """Push the book: every view on connect, then each tick's changes."""
    if await caller(websocket, operator=True) is None:
        return
    state: ServiceState = websocket.app.state.service
    views = await state.run(state.views)
    snapshot = {"type": "snapshot", "accounts": [v.to_data() for v in views]}
    await forward(websocket, "book", [snapshot], kind="tick")
