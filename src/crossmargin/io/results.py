"""Typed results as JSON-ready data: the one place any result is serialised.

Frozen dataclasses become objects with their fields in declaration order, mappings become
objects, tuples and lists become lists. Enums (``Status``, ``MarginMode``) become their
lower-case label, non-finite floats become ``null``, decimals become exact plain text
(``0E-8`` -> ``"0"``), dates ISO text and numpy scalars and arrays plain Python numbers.

A dataclass field may carry ``metadata=INLINE`` (its object's keys join the parent's, so a
result that wraps a health figure keeps the health figures at the top level) or
``metadata=OPTIONAL`` (left out when ``None``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from enum import Enum
from math import isfinite
from types import MappingProxyType
from typing import Any

import msgspec
import numpy as np

__all__ = ["INLINE", "OPTIONAL", "to_data", "to_json", "to_json_bytes"]

INLINE: Mapping[str, str] = MappingProxyType({"json": "inline"})
OPTIONAL: Mapping[str, str] = MappingProxyType({"json": "optional"})


def to_data(value: Any) -> Any:
    """``value`` as JSON-ready data (``None``, bool, int, float, str, list, dict)."""
    convert = _BY_TYPE.get(type(value))
    if convert is not None:
        return convert(value)
    return _general(value)


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _same(value: Any) -> Any:
    return value


def _items(value: tuple[Any, ...] | list[Any]) -> list[Any]:
    return [to_data(item) for item in value]


_BY_TYPE: dict[type, Any] = {
    float: _float,
    str: _same,
    bool: _same,
    int: _same,
    type(None): _same,
    tuple: _items,
    list: _items,
}
"""How values of exactly these types convert; dataclasses and enums join on first sight."""


def _enum(value: Enum) -> str:
    label = getattr(value, "label", None)
    return label if isinstance(label, str) else value.name.lower()


def _general(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        _BY_TYPE[type(value)] = _enum
        return _enum(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else None
    if isinstance(value, np.ndarray | np.generic):
        return to_data(value.tolist())
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _BY_TYPE[type(value)] = _object
        return _object(value)
    if isinstance(value, Mapping):
        return {str(key): to_data(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [to_data(item) for item in value]
    raise TypeError(f"cannot serialise a {type(value).__name__}")


_LAYOUTS: dict[type, tuple[tuple[str, str | None], ...]] = {}


def _layout(kind: type) -> tuple[tuple[str, str | None], ...]:
    """Each field of dataclass ``kind`` with its JSON rule, in declaration order (read once
    per class)."""
    layout = _LAYOUTS.get(kind)
    if layout is None:
        fields = dataclasses.fields(kind)
        layout = _LAYOUTS[kind] = tuple((f.name, f.metadata.get("json")) for f in fields)
    return layout


def _object(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rule in _layout(type(value)):
        item = getattr(value, name)
        kind = type(item)
        data: Any
        if kind is float:
            data = item if isfinite(item) else None
        elif kind is str or kind is int or item is None:
            data = item
        else:
            data = to_data(item)
        if rule == "inline":
            out.update(data)
        elif not (rule == "optional" and data is None):
            out[name] = data
    return out


def to_json(value: Any, indent: int | None = 2) -> str:
    """``value`` as JSON text, indented unless ``indent`` is None (then compact, on one line;
    strict either way: no ``NaN`` or ``Infinity`` literals)."""
    if indent is None:
        return to_json_bytes(value).decode()
    return json.dumps(to_data(value), indent=indent, allow_nan=False)


def to_json_bytes(value: Any) -> bytes:
    """``value`` as compact one-line JSON, UTF-8 encoded (what :func:`to_json` gives unindented,
    without a text copy of a large result)."""
    return msgspec.json.encode(to_data(value))
