"""CME SPAN intra-commodity (calendar) spreads charged per pair of tiers, and price scan ranges
per expiry, through the whole SPAN assembly of ``cme-span``.

Source: CME, cmegroup.com/clearing/margins/spread-calc.html (methodology.md 1.2): outright
margins M2 $500, M3 $500, M4 $750; intra-commodity charges M2/M3 $200, M2/M4 $50, M3/M4 $0, so
+1 M2 / -1 M3 = $0 + $200 = $200, +1 M2 / -1 M4 = $250 + $50 = $300 and
+1 M3 / -1 M4 = $250 + $0 = $250. An outright future's price scan range is its outright margin.
CME's intras table (cmegroup.com/clearing/margins/intras.html) gives one charge per pair of
contract-month ranges, applied in priority order.

The expected figures are also computed here without the engine: the scan risk of futures is the
largest loss over CME's 16 scenarios (0, +-1/3, +-2/3, +-1 PSR twice each, then +-2 PSR at 35%),
and the intra charge matches opposite tier positions pair by pair in the listed order.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

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
from crossmargin.rules.portfolio import PmRulebook, parse_pm_rulebook

NOW = datetime(2026, 11, 25, 8, tzinfo=UTC)
PRICE = 10_000.0
OUTRIGHT = {"M2": 500.0, "M3": 500.0, "M4": 750.0}
DAYS = {"M2": 45, "M3": 75, "M4": 105}
CME_CHARGES = [("M2", "M3", 200.0), ("M2", "M4", 50.0), ("M3", "M4", 0.0)]
SCENARIOS = [(m, 1.0) for m in (0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3)]
SCENARIOS += [(m, 1.0) for m in (1, 1, -1, -1)] + [(2.0, 0.35), (-2.0, 0.35)]


def rulebook(charges: list[tuple[str, str, float]]) -> PmRulebook:
    """cme-span with an ``SP`` combined commodity: tiers M2 (to 60 days), M3 (to 90 days) and
    M4, each scanned at its outright margin, and the given spread charges (USD per spread)."""
    text = (resources.files("crossmargin.rules") / "pm" / "cme-span.toml").read_text("utf-8")
    doc: dict[str, Any] = tomllib.loads(text)
    doc["underlyings"]["SP"] = {"price_range": 0.05, "vol_scan_range": 0.0}
    doc["underlyings"]["SP"]["short_option_minimum"] = 0.0
    bounds = {"M2": 60, "M3": 90}
    tiers = [{"name": t, "price_range": OUTRIGHT[t] / PRICE} for t in ("M2", "M3", "M4")]
    for tier in tiers:
        if tier["name"] in bounds:
            tier["up_to_days"] = bounds[str(tier["name"])]
    spreads = [{"legs": [a, b], "charge": c} for a, b, c in charges]
    doc["intra"]["SP"] = {"tiers": tiers, "spreads": spreads}
    return parse_pm_rulebook(doc)


def market() -> Market:
    """Linear futures of one unit each at 10,000, expiring 45, 75 and 105 days out."""
    instruments = {
        f"SP-{m}": Instrument(
            f"SP-{m}",
            Kind.FUTURE,
            "SP",
            "USD",
            "USD",
            MarginSchedule.size_scaled(0.1, 0.05),
            expiry=(NOW + timedelta(days=DAYS[m])).isoformat(),
        )
        for m in OUTRIGHT
    }
    prices = {"SP": PRICE, **dict.fromkeys(instruments, PRICE)}
    return Market(instruments, prices, "USD")


def span_mm(legs: dict[str, float], charges: list[tuple[str, str, float]]) -> float:
    """The engine's SPAN requirement (MM) of a futures book ``month -> contracts``."""
    positions = [Position(f"SP-{m}", q, PRICE) for m, q in legs.items()]
    account = Account("cme", {"USD": 100_000.0}, positions)
    report = portfolio_margin_report(account, market(), rulebook(charges), OptionData(NOW))
    assert report.initial_margin == pytest.approx(1.1 * report.maintenance_margin)
    return report.maintenance_margin


def plain_span(legs: dict[str, float], charges: list[tuple[str, str, float]]) -> float:
    """Scan risk over the 16 scenarios plus the intra charges matched in order."""
    scan = max(-sum(q * OUTRIGHT[m] * move * w for m, q in legs.items()) for move, w in SCENARIOS)
    left = dict(legs)
    intra = 0.0
    for a, b, charge in charges:
        qa, qb = left.get(a, 0.0), left.get(b, 0.0)
        if qa * qb < 0:
            n = min(abs(qa), abs(qb))
            intra += n * charge
            left[a] = qa - n if qa > 0 else qa + n
            left[b] = qb - n if qb > 0 else qb + n
    return max(scan, 0.0) + intra


@pytest.mark.parametrize(
    ("near", "far", "expected"),
    [("M2", "M3", 200.0), ("M2", "M4", 300.0), ("M3", "M4", 250.0)],
)
def test_cme_spread_calc_examples(near: str, far: str, expected: float) -> None:
    """+1 near / -1 far: scan of the two months at their own PSRs plus that pair's charge."""
    legs = {near: 1.0, far: -1.0}
    assert plain_span(legs, CME_CHARGES) == pytest.approx(expected)
    assert span_mm(legs, CME_CHARGES) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("month", ["M2", "M3", "M4"])
def test_scan_range_per_expiry(month: str) -> None:
    """One long future: SPAN = its own month's outright margin ($500, $500, $750)."""
    assert span_mm({month: 1.0}, CME_CHARGES) == pytest.approx(OUTRIGHT[month], rel=1e-12)


@pytest.mark.parametrize(
    "charges",
    [CME_CHARGES, [CME_CHARGES[1], CME_CHARGES[0], CME_CHARGES[2]]],
)
def test_tiered_charges_follow_priority(charges: list[tuple[str, str, float]]) -> None:
    """+1 M2 against -1 M3 and -1 M4: the first listed pair takes M2's long ($200 first:
    $750 scan + $200; $50 first: $750 + $50); +2 M2 matches both ($250 either way)."""
    short_both = {"M2": 1.0, "M3": -1.0, "M4": -1.0}
    want = plain_span(short_both, charges)
    assert want == pytest.approx(750.0 + charges[0][2])
    assert span_mm(short_both, charges) == pytest.approx(want, rel=1e-12)
    long_two = {"M2": 2.0, "M3": -1.0, "M4": -1.0}
    assert plain_span(long_two, charges) == pytest.approx(250.0 + 250.0)
    assert span_mm(long_two, charges) == pytest.approx(500.0, rel=1e-12)
