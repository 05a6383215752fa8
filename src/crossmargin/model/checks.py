"""Field checks shared by the domain types: each raises CrossMarginError naming the field."""

from __future__ import annotations

import math
from typing import Any

from crossmargin.model.errors import CrossMarginError

__all__ = ["finite", "non_empty", "non_negative", "numeric", "positive"]


def numeric(field: str, value: Any) -> float:
    """:func:`finite` of a number or of numeric text, as venues' raw payloads give numbers."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise CrossMarginError(field, f"must be a number, got {value!r}") from None
    return finite(field, value)


def finite(field: str, value: float) -> float:
    """Return ``value`` as a float, refusing NaN, infinities and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CrossMarginError(field, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise CrossMarginError(field, "too large for a float") from None
    if not math.isfinite(number):
        raise CrossMarginError(field, f"must be finite, got {value!r}")
    return number


def positive(field: str, value: float) -> float:
    """Return ``value`` if finite and strictly positive."""
    number = finite(field, value)
    if number <= 0:
        raise CrossMarginError(field, f"must be > 0, got {value!r}")
    return number


def non_negative(field: str, value: float) -> float:
    """Return ``value`` if finite and not negative."""
    number = finite(field, value)
    if number < 0:
        raise CrossMarginError(field, f"must be >= 0, got {value!r}")
    return number


def non_empty(field: str, value: str) -> str:
    """Return ``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise CrossMarginError(field, f"must be a non-empty string, got {value!r}")
    return value
