"""Invariants of account health on random accounts, markets and margin schedules."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from crossmargin import (
    Account,
    CollateralRule,
    Instrument,
    Kind,
    MarginMode,
    MarginSchedule,
    Market,
    Position,
    evaluate,
)
from crossmargin.health import AccountHealth

SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def schedules(draw: st.DrawFn, coins: float) -> MarginSchedule:
    """Tiered brackets (continuity amounts) or a size-scaled schedule.

    Size-scaled slopes keep the rate at a position of ``coins`` below ~30%, as venues do.
    """
    if draw(st.booleans()):
        n = draw(st.integers(1, 5))
        floors = [0.0]
        for _ in range(n - 1):
            floors.append(floors[-1] + draw(st.floats(100.0, 200_000.0)))
        rates = sorted(draw(st.lists(st.floats(0.002, 0.2), min_size=n, max_size=n)))
        levs = [max(1.0, 0.5 / r) for r in rates]
        return MarginSchedule.brackets(floors, rates, levs)
    im = draw(st.floats(0.01, 0.2))
    slope = st.just(0.0) | st.floats(1e-4, 0.1)
    return MarginSchedule.size_scaled(im, im / 2, draw(slope) / coins, draw(slope) / coins)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Account, Market]:
    """An account of 1-4 positions (linear or inverse, cross or isolated) and its market."""
    n = draw(st.integers(1, 4))
    instruments: dict[str, Instrument] = {}
    prices: dict[str, float] = {"BTC": draw(st.floats(1_000, 100_000))}
    positions = []
    for i in range(n):
        symbol = f"P{i}"
        inverse = draw(st.booleans())
        mark = prices["BTC"] if inverse else draw(st.floats(1.0, 50_000.0))
        cs = 100.0 if inverse else 1.0
        notional_usd = draw(st.floats(100.0, 500_000.0))
        schedule = draw(schedules(notional_usd / mark))
        settle = "BTC" if inverse else "USDT"
        quote = "USD" if inverse else "USDT"
        instruments[symbol] = Instrument(
            symbol,
            Kind.PERPETUAL,
            "BTC" if inverse else f"U{i}",
            quote,
            settle,
            schedule,
            cs,
            inverse,
        )
        prices[symbol] = mark
        units = notional_usd / cs if inverse else notional_usd / mark
        qty = units if draw(st.booleans()) else -units
        entry = mark * draw(st.floats(0.8, 1.2))
        if draw(st.booleans()):
            iso_usd = notional_usd * draw(st.floats(0.02, 0.5))
            iso = iso_usd / prices["BTC"] if inverse else iso_usd
            positions.append(Position(symbol, qty, entry, MarginMode.ISOLATED, iso))
        else:
            positions.append(Position(symbol, qty, entry))
    btc_rule = CollateralRule("BTC", (2.0, math.inf), (0.95, draw(st.floats(0.0, 0.9))))
    collateral = {"USDT": CollateralRule.flat("USDT", 1.0, stable=True), "BTC": btc_rule}
    balances = {"USDT": draw(st.floats(0, 1_000_000)), "BTC": draw(st.floats(0, 10))}
    return Account("p", balances, positions), Market(instruments, prices, "USDT", collateral)


def _surplus_of(health: AccountHealth, symbol: str) -> tuple[float, float]:
    """(equity - requirement, scale) backing ``symbol`` in the account currency."""
    row = next(p for p in health.positions if p.symbol == symbol)
    if row.margin_mode == "isolated":
        return row.equity - row.maintenance_margin, abs(row.equity) + row.maintenance_margin
    cross = health.cross_equity - health.cross_maintenance_margin
    return cross, abs(health.cross_equity) + health.cross_maintenance_margin


@SETTINGS
@given(scenarios())
def test_equity_is_the_sum_of_its_parts(case: tuple[Account, Market]) -> None:
    """equity = collateral value + every position's PnL + isolated margins, all in the currency;
    cross equity = collateral value + cross PnL."""
    account, market = case
    health = evaluate(account, market)
    derivatives = [p for p in health.positions if p.kind != "spot"]
    iso = [p for p in derivatives if p.margin_mode == "isolated"]
    margins = sum(p.equity - p.unrealized_pnl for p in iso)
    assert health.unrealized_pnl == pytest.approx(
        sum(p.unrealized_pnl for p in derivatives), rel=1e-12, abs=1e-6
    )
    assert health.equity == pytest.approx(
        health.collateral_value + health.unrealized_pnl + margins, rel=1e-12, abs=1e-6
    )
    cross_pnl = sum(p.unrealized_pnl for p in derivatives if p.margin_mode == "cross")
    assert health.cross_equity == pytest.approx(
        health.collateral_value + cross_pnl, rel=1e-12, abs=1e-6
    )
    cross_mm = sum(p.maintenance_margin for p in health.positions if p.margin_mode == "cross")
    assert health.cross_maintenance_margin == pytest.approx(cross_mm, rel=1e-12, abs=1e-9)


@SETTINGS
@given(scenarios())
def test_equity_equals_requirement_at_each_liquidation_price(case: tuple[Account, Market]) -> None:
    """Re-valuing at a reported liquidation price (other prices still) leaves a zero surplus."""
    account, market = case
    health = evaluate(account, market)
    for row in health.positions:
        if row.liquidation_price is None:
            continue
        moved = market.with_prices({row.symbol: row.liquidation_price})
        surplus, scale = _surplus_of(evaluate(account, moved), row.symbol)
        assert abs(surplus) <= 1e-9 * scale


@SETTINGS
@given(scenarios(), st.floats(1.0001, 3.0))
def test_higher_price_never_lowers_a_long(case: tuple[Account, Market], up: float) -> None:
    """Raising the mark of a long position never lowers the equity backing it."""
    account, market = case
    for position in account.positions:
        if position.qty <= 0:
            continue
        raised = market.with_prices({position.symbol: market.prices[position.symbol] * up})
        before = evaluate(account, market)
        after = evaluate(account, raised)
        assert after.equity >= before.equity - 1e-9 * abs(before.equity)


@SETTINGS
@given(scenarios(), st.floats(0.0, 1e6), st.floats(0.0, 1.0))
def test_cross_never_worse_than_isolated(
    case: tuple[Account, Market], margin_usd: float, extra: float
) -> None:
    """A position moved from isolated (margin M) into a cross account whose other positions
    leave non-negative free margin liquidates no earlier than it would isolated.

    Compared on the adverse side of the mark (below for a long, above for a short): a size-scaled
    inverse contract can also have a root on the favourable side, where its coin size explodes.
    """
    account, market = case
    target = account.positions[0]
    instrument = market.instrument(target.symbol)
    to_settle = market.to_currency(instrument.settle)
    margin = margin_usd / to_settle
    isolated = Account(
        "iso",
        {},
        [dataclasses.replace(target, margin_mode=MarginMode.ISOLATED, isolated_margin=margin)],
    )
    # Rest of the cross account: other positions at their mark (no PnL), cash covering their MM.
    rest = [
        dataclasses.replace(
            p,
            entry_price=market.prices[p.symbol],
            margin_mode=MarginMode.CROSS,
            isolated_margin=None,
        )
        for p in account.positions[1:]
    ]
    rest_mm = evaluate(Account("rest", {}, rest), market).maintenance_margin
    cash = margin_usd + rest_mm * (1 + extra)
    cross_target = dataclasses.replace(target, margin_mode=MarginMode.CROSS, isolated_margin=None)
    plain = {"USDT": CollateralRule.flat("USDT", 1.0, stable=True)}
    flat_market = Market(market.instruments, market.prices, "USDT", plain)
    cross = Account("cross", {"USDT": cash}, [cross_target, *rest])
    iso_lp = evaluate(isolated, flat_market).positions[0].liquidation_price
    cross_lp = evaluate(cross, flat_market).positions[0].liquidation_price
    mark = market.prices[target.symbol]
    side = 1 if target.qty > 0 else -1
    assume(iso_lp is not None and side * (mark - iso_lp) > 0)
    assert iso_lp is not None
    if cross_lp is None or side * (mark - cross_lp) <= 0:
        return
    assert side * (iso_lp - cross_lp) >= -1e-9 * iso_lp


@SETTINGS
@given(scenarios(), st.floats(1.0, 2.0))
def test_tightening_rates_never_lowers_requirements(
    case: tuple[Account, Market], factor: float
) -> None:
    """Scaling every maintenance rate up (amounts re-derived) never lowers MM."""
    account, market = case
    tighter = {}
    for symbol, instrument in market.instruments.items():
        margin = instrument.margin
        assert margin is not None
        floors = [t.min_notional for t in margin.tiers]
        rates = [min(t.maintenance_margin_rate * factor, 0.99) for t in margin.tiers]
        levs = [t.max_leverage for t in margin.tiers]
        schedule = dataclasses.replace(
            MarginSchedule.brackets(floors, rates, levs),
            initial_rate=margin.initial_rate,
            initial_rate_per_size=margin.initial_rate_per_size,
            maintenance_rate_per_size=margin.maintenance_rate_per_size * factor,
        )
        tighter[symbol] = dataclasses.replace(instrument, margin=schedule)
    base = evaluate(account, market)
    tight = evaluate(account, Market(tighter, market.prices, "USDT", market.collateral))
    assert tight.maintenance_margin >= base.maintenance_margin * (1 - 1e-12)


@SETTINGS
@given(scenarios())
def test_crash_distance_is_the_first_liquidating_move(case: tuple[Account, Market]) -> None:
    """At the crash distance the account is at its limit; a grid of smaller moves never breaches."""
    account, market = case
    health = evaluate(account, market)
    assume(health.crash_distance is not None and health.crash_distance > 1e-6)
    assert health.crash_distance is not None

    def worst(move: float) -> float:
        moved = {k: v * (1 + move) for k, v in market.prices.items() if k != "USDT"}
        h = evaluate(account, market.with_prices(moved))
        surplus = [h.cross_equity - h.cross_maintenance_margin]
        surplus += [
            p.equity - p.maintenance_margin for p in h.positions if p.margin_mode == "isolated"
        ]
        return min(surplus)

    for signed in (health.crash_move_down, health.crash_move_up):
        if signed is None:
            continue
        inside = np.linspace(0.0, signed, 50)[:-1]
        if abs(signed) == health.crash_distance:
            assert all(worst(m) >= -1e-7 * (1 + abs(worst(0.0))) for m in inside)
        assert worst(signed * 1.0001 + math.copysign(1e-9, signed)) < 0
