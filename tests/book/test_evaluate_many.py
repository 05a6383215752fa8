"""``evaluate_many`` (every account through each kernel once, the market compiled once) against
``evaluate`` account by account: the one-account path is the second method, and every field
of every result must agree (summation order aside)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from _book_cases import books, market
from hypothesis import given, settings

from crossmargin import Account, CrossMarginError, Position
from crossmargin.health import evaluate, evaluate_many


def same(a: Any, b: Any, path: str) -> None:
    """Equal field by field; floats to 1e-12 relative (1e-9 absolute near 0)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{k}]")
    elif isinstance(a, float) and isinstance(b, float):
        equal = a == b or (math.isnan(a) and math.isnan(b))
        assert equal or abs(a - b) <= 1e-12 * max(abs(a), abs(b)) + 1e-9, (path, a, b)
    else:
        assert a == b, (path, a, b)


@settings(max_examples=40, deadline=None)
@given(books())
def test_many_equals_one_by_one(accounts: list[Account]) -> None:
    """Random books of linear, isolated-at-entry and inverse size-scaled perpetuals with tiered
    BTC collateral."""
    m = market()
    many = evaluate_many(accounts, m)
    for k, account in enumerate(accounts):
        same(evaluate(account, m), many[k], f"accounts[{k}]")


def test_accounts_it_cannot_batch_go_one_by_one() -> None:
    """An account with a position the market cannot price is evaluated alone, so it raises the
    error ``evaluate`` gives; the others are still batched."""
    m = market()
    good = Account("a", {"USDT": 1_000.0}, [Position("BTCUSDT", 0.01, 60_000.0)])
    unknown = Account("b", {"USDT": 1_000.0}, [Position("NOPE", 1.0, 1.0)])
    same(evaluate(good, m), evaluate_many([good], m)[0], "good")
    with pytest.raises(CrossMarginError) as alone:
        evaluate(unknown, m)
    with pytest.raises(CrossMarginError) as batched:
        evaluate_many([good, unknown], m)
    assert str(batched.value) == str(alone.value)
