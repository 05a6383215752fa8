"""Random bracket portfolios against an independent plain implementation written here.

The plain side follows Binance's published definitions (FAQ b3c689c1f50a44cabb3a84e663b81d93,
venues.md 1.2-1.3) with nothing but floats and loops: MM = notional x MMR_k - cum_k in the
bracket of the notional, cum by the continuity rule from the bracket below (given or derived),
and the liquidation price by the published formula, trying every bracket and keeping the
solutions that fall inside their bracket. Half the instruments cap their last tier, the venue's
position limit: a position past it is margined at the last tier (the plain side lets the last
bracket run on) and flagged ``over_limit``.
"""

from __future__ import annotations

import math
import random

import pytest

from crossmargin import (
    Account,
    Instrument,
    Kind,
    MarginMode,
    MarginSchedule,
    Market,
    Position,
    evaluate,
)


def _brackets(
    rng: random.Random,
) -> tuple[list[float], list[float], list[float], list[float | None]]:
    """Floors, rates, leverage caps and amounts (some given, some left out)."""
    count = rng.randint(1, 6)
    floors = [0.0]
    for _ in range(count - 1):
        floors.append(floors[-1] + rng.choice([5e3, 2e4, 1e5, 5e5]) * rng.randint(1, 5))
    rates = sorted(rng.uniform(0.002, 0.2) for _ in range(count))
    leverage = [max(1.0, 0.5 / r) for r in rates]
    amounts: list[float | None] = []
    cum = 0.0
    for k in range(count):
        if k:
            cum += floors[k] * (rates[k] - rates[k - 1])
        amounts.append(round(cum, 6) if rng.random() < 0.5 else None)
    return floors, rates, leverage, amounts


def _plain_amounts(
    floors: list[float], rates: list[float], given: list[float | None]
) -> list[float]:
    out: list[float] = []
    for k, amount in enumerate(given):
        if amount is not None:
            out.append(amount)
        elif k == 0:
            out.append(0.0)
        else:
            out.append(out[k - 1] + floors[k] * (rates[k] - rates[k - 1]))
    return out


def _plain_mm(notional: float, floors: list[float], rates: list[float], cums: list[float]) -> float:
    k = max(i for i, f in enumerate(floors) if f <= notional)
    return notional * rates[k] - cums[k]


def _plain_liquidation(
    wb: float, tmm1: float, upnl1: float, qty: float, entry: float, mark: float, book: tuple
) -> float | None:
    floors, rates, cums = book
    side = 1.0 if qty > 0 else -1.0
    size = abs(qty)
    caps = [*floors[1:], math.inf]
    found = []
    for floor, cap, mmr, cum in zip(floors, caps, rates, cums, strict=True):
        lp = (wb - tmm1 + upnl1 + cum - side * size * entry) / (size * mmr - side * size)
        if lp > 0 and floor * (1 - 1e-12) <= lp * size <= cap * (1 + 1e-12):
            found.append(lp)
    return min(found, key=lambda p: abs(p - mark)) if found else None


@pytest.mark.parametrize("seed", range(60))
def test_random_bracket_portfolios_match_the_plain_implementation(seed: int) -> None:
    rng = random.Random(seed)
    instruments, books, marks, limits = {}, {}, {}, {}
    for n in range(rng.randint(1, 3)):
        symbol = f"X{n}USDT"
        floors, rates, leverage, given = _brackets(rng)
        limit = floors[-1] + rng.choice([5e4, 1e6]) if rng.random() < 0.5 else math.inf
        schedule = MarginSchedule.brackets(floors, rates, leverage, given, position_limit=limit)
        limits[symbol] = limit
        instruments[symbol] = Instrument(symbol, Kind.PERPETUAL, f"X{n}", "USDT", "USDT", schedule)
        books[symbol] = (floors, rates, _plain_amounts(floors, rates, given))
        marks[symbol] = rng.uniform(10.0, 50_000.0)
    positions = []
    for symbol, mark in marks.items():
        # notionals from 1,000 to 10M: from the first bracket to past the last floor, where a
        # venue's capped last tier would end
        qty = rng.choice([-1, 1]) * 10 ** rng.uniform(3, 7) / mark
        entry = mark * rng.uniform(0.8, 1.2)
        if rng.random() < 0.3:
            margin = abs(qty) * entry * rng.uniform(0.05, 0.5)
            positions.append(Position(symbol, qty, entry, MarginMode.ISOLATED, margin))
        else:
            positions.append(Position(symbol, qty, entry))
    balance = rng.uniform(0.0, 2e6)
    market = Market(instruments, marks, "USDT")
    health = evaluate(Account("r", {"USDT": balance}, positions), market)

    mms = {}
    pnls = {}
    for p in positions:
        floors, rates, cums = books[p.symbol]
        mms[p.symbol] = _plain_mm(abs(p.qty) * marks[p.symbol], floors, rates, cums)
        pnls[p.symbol] = p.qty * (marks[p.symbol] - p.entry_price)
    equity = balance + sum(pnls[p.symbol] + (p.isolated_margin or 0.0) for p in positions)
    scale = max(1.0, abs(equity))
    assert health.equity == pytest.approx(equity, rel=1e-9, abs=1e-9 * scale)
    assert health.maintenance_margin == pytest.approx(sum(mms.values()), rel=1e-9, abs=1e-9)
    cross = [p for p in positions if not p.is_isolated]
    for p, row in zip(positions, health.positions, strict=True):
        assert row.maintenance_margin == pytest.approx(mms[p.symbol], rel=1e-9, abs=1e-9)
        assert row.over_limit == (abs(p.qty) * marks[p.symbol] > limits[p.symbol])
        if p.is_isolated:
            wb, tmm1, upnl1 = p.isolated_margin or 0.0, 0.0, 0.0
        else:
            others = [o for o in cross if o.symbol != p.symbol]
            wb = balance
            tmm1 = sum(mms[o.symbol] for o in others)
            upnl1 = sum(pnls[o.symbol] for o in others)
        expected = _plain_liquidation(
            wb, tmm1, upnl1, p.qty, p.entry_price, marks[p.symbol], books[p.symbol]
        )
        if expected is None:
            assert row.liquidation_price is None
        else:
            assert row.liquidation_price == pytest.approx(expected, rel=1e-6)
