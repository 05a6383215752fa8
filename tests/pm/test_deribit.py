"""Deribit PM (venues.md 5.4) on a hand-computed portfolio: a short BTC perpetual and a short
strangle, all coin-settled. The expected numbers are recomputed here scenario by scenario with
the scalar reference formulas: the 9 x 3 standard table (+-16%, vol up/same/down with
volUp = max(vol (1 + 0.5 (30/dte)^p), 0.5)) with pnl_offset 0.6 on gains, the 8-point extended
table (vol up, factor 1, the perpetual held at +-16%, losses beyond the 100,000 USD dampener),
the roll and delta shocks of ``crossmargin.pm.deribit``, and MM = 0.8 x IM."""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import UTC, datetime

import numpy as np
import pytest
from _pm_reference import black, deribit_vol, ncdf

from crossmargin.model import (
    Account,
    Instrument,
    Kind,
    MarginSchedule,
    Market,
    OptionData,
    Position,
)
from crossmargin.pm import portfolio_margin_report
from crossmargin.pm.deribit import counted_pnl, delta_shock, roll_moves
from crossmargin.pm.standard_options import option_margin_rates
from crossmargin.rules import load_pm_rulebook

F0, T = 60_000.0, 30 / 365
NOW = datetime(2026, 11, 25, 8, tzinfo=UTC)
LEGS = [(70_000.0, True, 0.60), (50_000.0, False, 0.65)]  # strike, call, vol; short 1 each
PERP_USD = -30_000.0  # 3,000 contracts of 10 USD


def portfolio() -> tuple[Account, Market, OptionData]:
    perp = Instrument(
        "BTC-PERPETUAL",
        Kind.PERPETUAL,
        "BTC",
        "USD",
        "BTC",
        MarginSchedule.size_scaled(0.02, 0.01),
        contract_size=10.0,
        inverse=True,
    )
    opts = [
        Instrument(
            f"BTC-{k:.0f}-{'C' if c else 'P'}",
            Kind.OPTION,
            "BTC",
            "USD",
            "BTC",
            contract_size=1.0,
            inverse=True,
            expiry="2026-12-25",
            strike=k,
            option_type="call" if c else "put",
        )
        for k, c, _ in LEGS
    ]
    market = Market({i.symbol: i for i in (perp, *opts)}, {"BTC": F0, "BTC-PERPETUAL": F0}, "USD")
    positions = [Position("BTC-PERPETUAL", -3000.0, F0)]
    positions += [Position(o.symbol, -1.0, 0.01) for o in opts]
    vols = {o.symbol: v for o, (_, _, v) in zip(opts, LEGS, strict=True)}
    return Account("a", {"BTC": 2.0}, positions), market, OptionData(NOW, vols=vols)


def expected() -> dict[str, float]:
    """The hand computation (coin), independent of the engine."""
    moves = [(0.16 * i / 4, v, False) for i in range(-4, 5) for v in (1.0, 0.0, -1.0)]
    moves += [(m, 1.0, True) for m in (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)]
    pnls = []
    for move, vm, extended in moves:
        f = F0 * (1 + move)
        f_perp = F0 * (1 + min(max(move, -0.16), 0.16))
        pnl = PERP_USD * (1 / F0 - 1 / f_perp)
        for k, call, vol in LEGS:
            vs = deribit_vol(vol, 30.0, vm, 0.5, 0.25, 0.30, 0.13, 0.5)
            pnl -= black(f, k, T, vs, call) / f - black(F0, k, T, vol, call) / F0
        if extended:
            pnls.append(min(pnl + 100_000.0 / F0, 0.0))
        else:
            pnls.append(pnl * 0.6 if pnl > 0 else pnl)
    worst = -min(pnls)
    delta = PERP_USD / F0  # short inverse perp: -0.5 BTC
    opt_delta = 0.0
    roll = abs(delta) * 0.01  # a perpetual rolls at the minimum annualised move
    for k, call, vol in LEGS:
        sd = vol * math.sqrt(T)
        d1 = (math.log(F0 / k) + sd * sd / 2) / sd
        bs = ncdf(d1) if call else ncdf(d1) - 1
        leg = -(bs - black(F0, k, T, vol, call) / F0)  # cash-adjusted, short
        opt_delta += leg
        roll += abs(leg) * max(0.075 * T, 0.01)
    net = delta + opt_delta
    dshock = 0.1 * max(abs(net) - 20_000_000 / F0, 0.0)
    im = worst + roll + dshock
    return {"worst": worst, "roll": roll, "delta": dshock, "im": im, "mm": 0.8 * im}


def test_hand_computed_short_perp_and_short_strangle() -> None:
    """Worst case, roll shock, delta shock, IM and MM = 0.8 IM in BTC and in USD."""
    account, market, data = portfolio()
    report = portfolio_margin_report(account, market, load_pm_rulebook("deribit-pm"), data)
    unit = report.units[0]
    want = expected()
    assert unit.currency == "BTC"
    assert unit.worst_case == pytest.approx(want["worst"], rel=1e-9)
    assert unit.add_ons["roll_shock"] == pytest.approx(want["roll"], rel=1e-9)
    assert unit.add_ons["delta_shock"] == pytest.approx(want["delta"], rel=1e-9)
    assert unit.initial_margin == pytest.approx(want["im"], rel=1e-9)
    assert unit.maintenance_margin == pytest.approx(0.8 * unit.initial_margin, rel=1e-12)
    assert report.initial_margin == pytest.approx(want["im"] * F0, rel=1e-9)
    assert report.maintenance_margin == pytest.approx(want["mm"] * F0, rel=1e-9)
    assert len(unit.risk_array) == 35
    keys = {"underlying", "scenario", "kind", "price_move", "vol_move"}
    assert {f.name for f in fields(report.worst_scenario)} == keys


def test_standard_margin_side_by_side() -> None:
    """Standard IM = the perpetual's size-scaled IM + each short option's venues.md 5.3 IM."""
    account, market, data = portfolio()
    report = portfolio_margin_report(account, market, load_pm_rulebook("deribit-pm"), data)
    perp_im = 30_000.0 * 0.02  # 2% of 0.5 BTC notional, in USD
    options_im = 0.0
    for k, call, vol in LEGS:
        mark = black(F0, k, T, vol, call) / F0
        otm = max(k - F0, 0.0) if call else max(F0 - k, 0.0)
        im = max(0.15 - otm / F0, 0.10) + mark
        if not call:
            im = max(im, max(0.075, 0.075 * mark) + mark)
        options_im += im * F0
    assert report.standard_initial_margin == pytest.approx(perp_im + options_im, rel=1e-9)
    assert report.saving == pytest.approx(
        report.standard_initial_margin - report.initial_margin, rel=1e-12
    )


def test_vector_d2_standard_option_rates() -> None:
    """venues.md 5.3, vector D2 (U = 60,000, mark = 0.01 BTC)."""
    params = load_pm_rulebook("deribit-pm").standard_options
    im, mm = option_margin_rates(
        60_000.0, [66_000.0, 54_000.0, 62_000.0], 0.01, [True, False, True], params
    )
    assert im.tolist() == pytest.approx([0.11, 0.11, 0.12666666666666668], abs=1e-12)
    assert mm.tolist() == pytest.approx([0.085, 0.085, 0.085], abs=1e-12)


def test_kernels_broadcast_over_accounts() -> None:
    """pnl_offset, the extended dampener, roll moves and the delta shock on many rows."""
    pnl = np.array([[1.0, -2.0, -3.0, 4.0], [3.0, 0.5, -0.5, -2.0]])
    extended = np.array([False, False, True, True])
    counted = counted_pnl(pnl, extended, [0.6, 0.5], [1.0, 1.0])
    np.testing.assert_allclose(counted, [[0.6, -2.0, -2.0, 0.0], [1.5, 0.25, 0.0, -1.0]])
    moves = roll_moves([0.0, 0.5], 0.075, 0.01)
    assert moves.tolist() == pytest.approx([0.01, 0.0375])
    shock = delta_shock([1000.0, 1.0], 50_000.0, 0.1, 20_000_000.0)
    assert shock.tolist() == pytest.approx([0.1 * (1000.0 - 400.0), 0.0])
