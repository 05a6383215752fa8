"""The collector policy: start-up objects frozen and full passes run between ticks while the
service runs; the collector put back afterwards."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

import pytest

from crossmargin.model import CrossMarginError
from crossmargin.service.collector import NEVER, full_passes_between_ticks
from crossmargin.service.settings import Settings
from crossmargin.service.state import ServiceState


def test_full_passes_run_on_the_service_clock_and_the_collector_is_put_back(
    tmp_path: Path,
) -> None:
    before = gc.get_threshold()
    state = ServiceState(Settings(db_url=f"sqlite:///{tmp_path / 'l.db'}", gc_interval_s=1))
    full: list[float] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(time.monotonic())

    async def run() -> float:
        async with full_passes_between_ticks(state):
            began = time.monotonic()
            assert gc.get_threshold()[2] == NEVER
            assert gc.get_freeze_count() > 0
            gc.callbacks.append(seen)
            try:
                await asyncio.sleep(1.5)
            finally:
                gc.callbacks.remove(seen)
        return began

    try:
        began = asyncio.run(run())
    finally:
        state.close()
    # One full pass, made by the service's clock a second in, none before it.
    assert len(full) == 1
    assert 0.9 <= full[0] - began < 1.5
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_interval_is_checked() -> None:
    for bad in (0.0, -1.0, float("nan"), 1e9):
        with pytest.raises(CrossMarginError, match="gc_interval_s: must be 1-86400"):
            Settings(gc_interval_s=bad)
