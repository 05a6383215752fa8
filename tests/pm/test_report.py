"""Reports, Greeks aggregation, SPAN on an account and surfaces.

Independent checks: Greeks against finite differences of the engine's own revaluation (a
second method), SPAN's short option minimum and net option value against hand arithmetic,
surface interpolation against total-variance arithmetic."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _pm_reference import black

from crossmargin.model import (
    Account,
    Instrument,
    Kind,
    MarginSchedule,
    Market,
    OptionData,
    Position,
    VolSurface,
)
from crossmargin.pm import portfolio_margin_report
from crossmargin.pm.risk import account_risk
from crossmargin.rules import load_pm_rulebook

NOW = datetime(2026, 11, 25, 8, tzinfo=UTC)
F = 3_000.0


def eth_account(qty_call: float, strike: float = 3_300.0) -> tuple[Account, Market]:
    fut = Instrument(
        "ETH-27MAR27",
        Kind.FUTURE,
        "ETH",
        "USD",
        "USD",
        MarginSchedule.size_scaled(0.05, 0.025),
        expiry="2027-03-27",
    )
    call = Instrument(
        "ETH-C",
        Kind.OPTION,
        "ETH",
        "USD",
        "USD",
        expiry="2026-12-25",
        strike=strike,
        option_type="call",
    )
    put = Instrument(
        "ETH-P",
        Kind.OPTION,
        "ETH",
        "USD",
        "USD",
        expiry="2027-03-27",
        strike=2_500.0,
        option_type="put",
    )
    market = Market({i.symbol: i for i in (fut, call, put)}, {"ETH": F, "ETH-27MAR27": F}, "USD")
    positions = [
        Position("ETH-27MAR27", 2.0, F),
        Position("ETH-C", qty_call, 10.0),
        Position("ETH-P", 3.0, 10.0),
    ]
    return Account("e", {"USD": 50_000.0}, positions), market


VOLS = {"ETH-C": 0.7, "ETH-P": 0.8}


def test_greeks_match_engine_finite_differences() -> None:
    """Net coin delta and USD vega per underlying equal bumps of the engine's revaluation."""
    account, market = eth_account(-4.0)
    data = OptionData(NOW, vols=VOLS)
    report = portfolio_margin_report(account, market, load_pm_rulebook("okx-pm"), data)
    g = report.greeks["ETH"]["total"]
    h = 1e-4
    up = market.with_prices({"ETH": F * (1 + h), "ETH-27MAR27": F * (1 + h)})
    dn = market.with_prices({"ETH": F * (1 - h), "ETH-27MAR27": F * (1 - h)})

    def value(m: Market, vols: dict[str, float]) -> float:
        """USD value of the options plus the future's P&L, by the scalar reference."""
        fwd = m.prices["ETH"]
        t = {"ETH-C": 30 / 365, "ETH-P": 122 / 365}
        v = 2.0 * fwd
        v += -4.0 * black(fwd, 3_300.0, t["ETH-C"], vols["ETH-C"], True)
        v += 3.0 * black(fwd, 2_500.0, t["ETH-P"], vols["ETH-P"], False)
        return v

    fd_delta = (value(up, VOLS) - value(dn, VOLS)) / (2 * h * F)
    assert g["delta_coin"] == pytest.approx(fd_delta, rel=1e-6)
    assert g["delta_usd"] == pytest.approx(fd_delta * F, rel=1e-6)
    bumped = {k: v + 0.005 for k, v in VOLS.items()}
    lowered = {k: v - 0.005 for k, v in VOLS.items()}
    fd_vega = value(market, bumped) - value(market, lowered)  # per vol point (0.01)
    assert g["vega_usd"] == pytest.approx(fd_vega, rel=1e-4)
    assert set(report.greeks["ETH"]) == {"total", "2026-12-25", "2027-03-27"}
    by_expiry = sum(report.greeks["ETH"][e]["delta_coin"] for e in ("2026-12-25", "2027-03-27"))
    assert by_expiry == pytest.approx(g["delta_coin"])


def test_span_short_option_minimum_and_net_option_value() -> None:
    """A deep OTM short call: SOM (1.2% x F per coin) binds; MM = SOM + future/put risk - NOV."""
    account = Account(
        "s",
        {"USD": 1.0},
        [Position("ETH-C", -50.0, 1.0)],
    )
    _, market = eth_account(-50.0, strike=30_000.0)
    rulebook = load_pm_rulebook("cme-span")
    report = portfolio_margin_report(account, market, rulebook, OptionData(NOW, vols=VOLS))
    unit = report.units[0]
    som = 0.012 * F * 50.0
    assert unit.maintenance_margin == pytest.approx(som)
    assert unit.add_ons["short_option_minimum"] == pytest.approx(som - unit.worst_case)
    nov = -50.0 * black(F, 30_000.0, 30 / 365, 0.7, True)
    assert report.maintenance_margin == pytest.approx(som - nov)
    assert report.initial_margin == pytest.approx(1.1 * report.maintenance_margin)


def test_span_long_future_scan_is_the_price_scan_range() -> None:
    """One long future four months out: scan = its tier's PSR (cme-span's ETH "months 3+",
    37% of F), IM = 1.1 MM."""
    fut = Instrument(
        "ETH-F",
        Kind.FUTURE,
        "ETH",
        "USD",
        "USD",
        MarginSchedule.size_scaled(0.05, 0.025),
        expiry="2027-03-27",
    )
    market = Market({"ETH-F": fut}, {"ETH": F, "ETH-F": F}, "USD")
    account = Account("f", {"USD": 10_000.0}, [Position("ETH-F", 1.0, F)])
    report = portfolio_margin_report(account, market, load_pm_rulebook("cme-span"), OptionData(NOW))
    assert report.worst_case == pytest.approx(0.37 * F)
    assert report.worst_scenario.price_move == pytest.approx(-0.37)
    assert report.maintenance_margin == pytest.approx(0.37 * F)


def test_surface_total_variance_interpolation() -> None:
    """Between nodes the ATM vol interpolates total variance linearly; flat outside."""
    s = VolSurface((7.0, 30.0), (0.8, 0.6))
    var = (0.8**2 * 7 + (0.6**2 * 30 - 0.8**2 * 7) * (14 - 7) / 23) / 14
    assert s.atm_vol(14.0) == pytest.approx(math.sqrt(var))
    assert s.atm_vol(1.0) == pytest.approx(0.8)
    assert s.atm_vol(90.0) == pytest.approx(0.6)


@pytest.mark.parametrize("sticky", ["strike", "delta"])
def test_surface_skew_sticky_strike_or_delta(sticky: str, tmp_path: Path) -> None:
    """With skew -0.2, a put's shocked vol reads the smile at ln(K/F) (base F or shocked F)."""
    text = (Path(__file__).parents[2] / "src/crossmargin/rules/pm/okx-pm.toml").read_text()
    path = tmp_path / "okx-sticky.toml"
    path.write_text(text.replace('sticky = "strike"', f'sticky = "{sticky}"'))
    rulebook = load_pm_rulebook(path)
    account, market = eth_account(-1.0)
    surface = VolSurface((30.0, 122.0), (0.7, 0.7), skew=-0.2)
    risk = account_risk(account, market, rulebook, OptionData(NOW, surfaces={"ETH": surface}))
    s = 0  # -12% move
    f_s = F * (1 + rulebook.grid.arrays.price_move[s] * 0.12)
    k = math.log(2_500.0 / (f_s if sticky == "delta" else F))
    vol0 = 0.7 - 0.2 * math.log(2_500.0 / F)
    t = 122 / 365
    want = black(f_s, 2_500.0, t, 0.7 - 0.2 * k, False) - black(F, 2_500.0, t, vol0, False)
    assert risk.risk[2, s] == pytest.approx(want, rel=1e-10)
