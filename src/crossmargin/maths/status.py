"""Margin ratio and account status codes."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numba import njit, vectorize
from numpy.typing import ArrayLike, NDArray

__all__ = ["Status", "margin_ratio", "margin_ratio_of", "status", "status_of"]


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


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def margin_ratio_of(equity: float, maintenance: float) -> float:
    """Maintenance / equity; ``inf`` when equity <= 0 under a requirement, 0 without one."""
    if equity > 0:
        return maintenance / equity
    return np.inf if maintenance > 0 else 0.0


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def status_of(equity: float, maintenance: float, margin_call_ratio: float) -> int:
    """Bankrupt if equity < 0, liquidatable if equity < MM, margin call past the warning ratio."""
    if equity < 0:
        return 3
    if equity < maintenance:
        return 2
    if maintenance > 0 and margin_ratio_of(equity, maintenance) >= margin_call_ratio:
        return 1
    return 0


@vectorize(["float64(float64, float64)"], cache=True)  # type: ignore[untyped-decorator]
def _margin_ratio(equity: float, maintenance: float) -> float:
    return margin_ratio_of(equity, maintenance)  # type: ignore[no-any-return]


@vectorize(["int8(float64, float64, float64)"], cache=True)  # type: ignore[untyped-decorator]
def _status(equity: float, maintenance: float, margin_call_ratio: float) -> int:
    return status_of(equity, maintenance, margin_call_ratio)  # type: ignore[no-any-return]


def margin_ratio(equity: ArrayLike, maintenance: ArrayLike) -> NDArray[np.float64]:
    """Maintenance / equity; ``inf`` when equity <= 0 under a requirement, 0 without one."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.asarray(_margin_ratio(equity, maintenance), dtype=np.float64)


def status(equity: ArrayLike, maintenance: ArrayLike, margin_call_ratio: float) -> NDArray[np.int8]:
    """Bankrupt if equity < 0, liquidatable if equity < MM, margin call past the warning ratio."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.asarray(_status(equity, maintenance, margin_call_ratio), dtype=np.int8)
