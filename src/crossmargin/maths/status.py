"""Margin ratio and account status codes."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Status", "margin_ratio", "status"]


class Status(IntEnum):
    """Health, from best to worst; the integer order is the severity order."""

    HEALTHY = 0
    MARGIN_CALL = 1
    LIQUIDATABLE = 2
    BANKRUPT = 3

    @property
    def label(self) -> str:
        """Lower-case name used in reports (``margin_call``)."""
        return self.name.lower()


def margin_ratio(equity: ArrayLike, maintenance: ArrayLike) -> NDArray[np.float64]:
    """Maintenance / equity; ``inf`` when equity <= 0 under a requirement, 0 without one."""
    e = np.asarray(equity, dtype=np.float64)
    m = np.asarray(maintenance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = m / e
    return np.where(e > 0, ratio, np.where(m > 0, np.inf, 0.0))


def status(equity: ArrayLike, maintenance: ArrayLike, margin_call_ratio: float) -> NDArray[np.int8]:
    """Bankrupt if equity < 0, liquidatable if equity < MM, margin call past the warning ratio."""
    e = np.asarray(equity, dtype=np.float64)
    m = np.asarray(maintenance, dtype=np.float64)
    ratio = margin_ratio(e, m)
    codes = np.select(
        [e < 0, e < m, (ratio >= margin_call_ratio) & (m > 0)],
        [Status.BANKRUPT, Status.LIQUIDATABLE, Status.MARGIN_CALL],
        Status.HEALTHY,
    )
    return codes.astype(np.int8)
