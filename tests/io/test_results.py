"""The one serialiser of typed results: each rule checked against a plain hand-written value."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType

import numpy as np
import pytest

from crossmargin.io.results import INLINE, OPTIONAL, to_data, to_json
from crossmargin.maths.status import Status
from crossmargin.model import MarginMode


@dataclass(frozen=True)
class Inner:
    figure: float
    status: Status


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(metadata=INLINE)
    extra: Inner | None = field(default=None, metadata=OPTIONAL)
    rows: tuple[Inner, ...] = ()


def test_scalars() -> None:
    """Enums by lower-case label, non-finite floats as null, decimals as exact plain text,
    numpy scalars as Python numbers, dates as ISO text."""
    assert to_data(Status.MARGIN_CALL) == "margin_call"
    assert to_data(MarginMode.ISOLATED) == "isolated"
    assert [to_data(x) for x in (math.inf, -math.inf, math.nan, 1.5)] == [None, None, None, 1.5]
    assert to_data(Decimal("0E-8")) == "0"
    assert to_data(Decimal("1.2300")) == "1.23"
    assert to_data(Decimal("1E+3")) == "1000"
    assert to_data(Decimal("NaN")) is None
    for value, plain in ((np.float64(2.5), 2.5), (np.int64(7), 7), (np.bool_(True), True)):
        converted = to_data(value)
        assert converted == plain and type(converted) is type(plain)
    assert to_data(np.float64(np.inf)) is None
    assert to_data(date(2020, 3, 12)) == "2020-03-12"
    assert to_data(datetime(2020, 3, 12, 8, tzinfo=UTC)) == "2020-03-12T08:00:00+00:00"
    assert [to_data(x) for x in (None, True, 3, "x")] == [None, True, 3, "x"]


def test_containers_and_arrays() -> None:
    """Tuples and lists as lists, mappings (read-only ones too) as objects, arrays as nested
    lists with non-finite entries null."""
    assert to_data((1, (2.0, math.inf))) == [1, [2.0, None]]
    assert to_data(MappingProxyType({"USDC": 1.0, 2: math.nan})) == {"USDC": 1.0, "2": None}
    assert to_data(np.array([[1.0, np.nan], [3.0, 4.0]])) == [[1.0, None], [3.0, 4.0]]


def test_dataclasses_inline_and_optional() -> None:
    """Fields in declaration order; an INLINE field's keys join the parent's; an OPTIONAL field
    is left out when None."""
    outer = Outer("a", Inner(math.inf, Status.BANKRUPT), rows=(Inner(1.0, Status.HEALTHY),))
    assert to_data(outer) == {
        "name": "a",
        "figure": None,
        "status": "bankrupt",
        "rows": [{"figure": 1.0, "status": "healthy"}],
    }
    assert list(to_data(outer)) == ["name", "figure", "status", "rows"]
    with_extra = Outer("b", Inner(0.0, Status.HEALTHY), Inner(2.0, Status.LIQUIDATABLE))
    assert to_data(with_extra)["extra"] == {"figure": 2.0, "status": "liquidatable"}


def test_json_text_is_strict() -> None:
    """The JSON text parses back to the same data and never holds NaN or Infinity."""
    outer = Outer("a", Inner(math.nan, Status.HEALTHY))
    text = to_json(outer)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == to_data(outer)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot serialise a set"):
        to_data({1, 2})
