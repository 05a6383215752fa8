"""When the cyclic garbage collector makes its full passes, while the service runs.

A full pass walks every object the process holds; on a large book with many WebSocket clients
that is a few hundred thousand objects and stalls every thread for 100-200 ms, whenever the
allocator happens to trigger it: in the middle of a tick. While the service runs, what it
loaded at start (ledger state, book, views) is frozen out of the collector's reach
(``gc.freeze``), the allocator only triggers the young passes, and the full pass runs here
every ``Settings.gc_interval_s``, between ticks. Reference counting still frees everything
that is not in a cycle at once. On shutdown the collector's settings are put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from crossmargin.service.state import ServiceState

__all__ = ["full_passes_between_ticks"]

NEVER = 1_000_000_000
"""Young passes before the allocator would trigger a full one: never, in practice."""


_active = 0
_saved = gc.get_threshold()


@contextlib.asynccontextmanager
async def full_passes_between_ticks(state: ServiceState) -> AsyncIterator[None]:
    """While the block runs: the start-up objects frozen, full passes only every
    ``state.settings.gc_interval_s`` between ticks. Services that overlap in one process
    share the policy; the last one out puts the collector back."""
    global _active, _saved
    if not _active:
        _saved = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(_saved[0], _saved[1], NEVER)
    _active += 1
    task = asyncio.ensure_future(_every(state))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _active -= 1
        if not _active:
            gc.set_threshold(*_saved)
            gc.unfreeze()


async def _every(state: ServiceState) -> None:
    interval = state.settings.gc_interval_s
    while True:
        await asyncio.sleep(interval)
        await state.between_ticks(interval)
        gc.collect()
