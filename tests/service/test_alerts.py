"""Alert rules: each kind fires on its crossing, hysteresis keeps a flapping figure quiet, and
the first-passage rule agrees with the reflection formula written out here."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from hypothesis import given, settings, strategies as st

from crossmargin.maths.first_passage import realised_volatility
from crossmargin.model import CrossMarginError
from crossmargin.service.alerts import (
    AlertRule,
    RuleKind,
    RuleState,
    evaluate,
    evaluate_many,
    parse_rule,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Pos:
    symbol: str = "BTCUSDT"
    mark: float = 60000.0
    liquidation_price: float | None = 50000.0
    distance: float | None = 1.0 / 6.0


@dataclass(frozen=True)
class View:
    account_id: str = "a1"
    status: str = "healthy"
    margin_ratio: float | None = 0.2
    crash_distance: float | None = 0.3
    positions: tuple[Pos, ...] = field(default_factory=lambda: (Pos(),))
    at: str = T0.isoformat()


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def _run(rule: AlertRule, views: list[View]) -> list[list[str]]:
    """Alert ids fired at each view, carrying the state along."""
    states: dict[str, RuleState] = {}
    out = []
    for n, view in enumerate(views):
        alerts, states = evaluate([rule], states, view, received_ns=n)
        out.append([a.id for a in alerts])
    return out


def test_margin_ratio_fires_once_above_and_rearms_below_the_band() -> None:
    rule = AlertRule("r", "a1", RuleKind.MARGIN_RATIO, threshold=0.8, band=0.1)
    ratios = [0.5, 0.85, 0.9, 0.75, 0.82, 0.69, 0.81]
    views = [View(margin_ratio=r, at=_at(i)) for i, r in enumerate(ratios)]
    fired = _run(rule, views)
    assert fired == [[], ["r-1"], [], [], [], [], ["r-2"]]


def test_alert_fields() -> None:
    rule = AlertRule("r", "a1", RuleKind.MARGIN_RATIO, threshold=0.8)
    alerts, states = evaluate([rule], {}, View(margin_ratio=0.9), received_ns=123)
    (alert,) = alerts
    assert (alert.account_id, alert.rule_id, alert.kind) == ("a1", "r", "margin_ratio")
    assert (alert.value, alert.threshold, alert.received_ns) == (0.9, 0.8, 123)
    assert alert.at == T0.isoformat()
    assert states["r"] == RuleState(False, T0.timestamp(), 1, None)
    assert alert.as_dict()["id"] == "r-1"


def test_infinite_margin_ratio_serialises_as_null() -> None:
    rule = AlertRule("r", "a1", RuleKind.MARGIN_RATIO, threshold=1.0)
    (alert,), _ = evaluate([rule], {}, View(margin_ratio=math.inf), received_ns=0)
    assert alert.as_dict()["value"] is None


def test_crash_distance_fires_below() -> None:
    rule = AlertRule("r", "a1", RuleKind.CRASH_DISTANCE, threshold=0.1, band=0.02)
    distances: list[float | None] = [0.2, 0.09, 0.05, 0.11, 0.13, 0.08, None, 0.01]
    views = [View(crash_distance=d, at=_at(i)) for i, d in enumerate(distances)]
    assert _run(rule, views) == [[], ["r-1"], [], [], [], ["r-2"], [], ["r-3"]]


def test_liquidation_distance_takes_the_closest_position() -> None:
    rule = AlertRule("r", "a1", RuleKind.LIQUIDATION_DISTANCE, threshold=0.05)
    view = View(
        positions=(
            Pos("ETHUSDT", distance=0.2),
            Pos("BTCUSDT", distance=0.04),
            Pos("SOLUSDT", liquidation_price=None, distance=None),
        )
    )
    (alert,), _ = evaluate([rule], {}, view, received_ns=0)
    assert (alert.symbol, alert.value) == ("BTCUSDT", 0.04)


def test_status_change_reports_against_the_last_reported_status() -> None:
    rule = AlertRule("r", "a1", RuleKind.STATUS_CHANGE, cooldown_s=60.0)
    statuses = ["healthy", "margin_call", "healthy", "margin_call", "liquidatable"]
    times = [0, 10, 20, 30, 100]
    views = [View(status=s, at=_at(t)) for s, t in zip(statuses, times, strict=True)]
    states: dict[str, RuleState] = {}
    details = []
    for view in views:
        alerts, states = evaluate([rule], states, view, received_ns=0)
        details.append([(a.detail, a.value) for a in alerts])
    assert details == [
        [],
        [("healthy -> margin_call", 1.0)],
        [],
        [],
        [("margin_call -> liquidatable", 2.0)],
    ]


def test_cooldown_holds_the_rearm() -> None:
    rule = AlertRule("r", "a1", RuleKind.MARGIN_RATIO, threshold=0.8, cooldown_s=60.0)
    times_ratios = [(0, 0.9), (10, 0.1), (20, 0.9), (70, 0.1), (80, 0.9)]
    views = [View(margin_ratio=r, at=_at(t)) for t, r in times_ratios]
    assert _run(rule, views) == [["r-1"], [], [], [], ["r-2"]]


def test_other_accounts_rules_are_ignored() -> None:
    rule = AlertRule("r", "a2", RuleKind.MARGIN_RATIO, threshold=0.0)
    assert evaluate([rule], {}, View(), received_ns=0) == ([], {})


def _reflection(spot: float, barrier: float, sigma: float, years: float) -> float:
    """P(a driftless-price GBM touches ``barrier`` < ``spot`` within ``years``): Shreve,
    Stochastic Calculus for Finance II, 7.2 (running minimum of a Brownian motion with drift
    nu = -sigma^2/2 in log price), written out plainly."""

    def n(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    b = math.log(barrier / spot)
    nu = -0.5 * sigma * sigma
    root = sigma * math.sqrt(years)
    return n((b - nu * years) / root) + math.exp(2 * nu * b / sigma**2) * n((b + nu * years) / root)


def test_first_passage_rule_matches_the_reflection_formula() -> None:
    """Volatility of the bundled BTC/USDT 2h closes of March 2020 (Binance)."""
    text = resources.files("crossmargin.data").joinpath("btc_usdt_2h_2020-03.csv").read_text()
    closes = [float(row["close"]) for row in csv.DictReader(io.StringIO(text))]
    sigma = realised_volatility(closes, 2 * 3600.0)
    assert 0.5 < sigma < 3.0
    expected = _reflection(60000.0, 50000.0, sigma, 7.0 / 365.0)
    assert 0.01 < expected < 0.99
    below = AlertRule("lo", "a1", RuleKind.LIQUIDATION_PROBABILITY, expected - 1e-6, horizon_days=7)
    above = AlertRule("hi", "a1", RuleKind.LIQUIDATION_PROBABILITY, expected + 1e-6, horizon_days=7)
    alerts, _ = evaluate([below, above], {}, View(), 0, {"BTCUSDT": sigma})
    (alert,) = alerts
    assert alert.rule_id == "lo"
    assert alert.value == pytest.approx(expected, rel=1e-12)
    assert alert.symbol == "BTCUSDT"


def test_first_passage_without_volatility_or_liquidation_price_is_quiet() -> None:
    rule = AlertRule("r", "a1", RuleKind.LIQUIDATION_PROBABILITY, 0.0)
    assert evaluate([rule], {}, View(), 0)[0] == []
    flat = View(positions=(Pos(liquidation_price=None, distance=None),))
    assert evaluate([rule], {}, flat, 0, {"BTCUSDT": 0.8})[0] == []


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.1, 5.0),
    st.floats(0.001, 0.5),
    st.lists(st.floats(0.0, 0.999), min_size=1, max_size=60),
)
def test_a_ratio_inside_the_band_fires_at_most_once(
    threshold: float, band: float, positions: list[float]
) -> None:
    """Every ratio lies in (threshold - band, threshold + band): it may cross the threshold
    many times but never clears the band, so one alert at most."""
    rule = AlertRule("r", "a1", RuleKind.MARGIN_RATIO, threshold=threshold, band=band)
    ratios = [threshold - band + 2.0 * band * u + 1e-12 for u in positions]
    ratios = [r for r in ratios if threshold - band < r]
    views = [View(margin_ratio=r, at=_at(i)) for i, r in enumerate(ratios)]
    assert sum(len(ids) for ids in _run(rule, views)) <= 1


def test_parse_rule() -> None:
    rule = parse_rule({"kind": "crash_distance", "threshold": 0.1, "band": 0.02}, "r1", "a1")
    assert rule == AlertRule("r1", "a1", RuleKind.CRASH_DISTANCE, 0.1, 0.02)
    assert parse_rule({"kind": "status_change"}, "r2", "a1").kind is RuleKind.STATUS_CHANGE
    assert replace(rule, band=0.0).as_dict()["kind"] == "crash_distance"


@pytest.mark.parametrize(
    ("data", "field_path"),
    [
        ({"kind": "nope", "threshold": 1}, "kind"),
        ({"kind": "margin_ratio"}, "threshold"),
        ({"kind": "margin_ratio", "threshold": "x"}, "threshold"),
        ({"kind": "margin_ratio", "threshold": math.nan}, "threshold"),
        ({"kind": "margin_ratio", "threshold": -1}, "threshold"),
        ({"kind": "crash_distance", "threshold": 5}, "threshold"),
        ({"kind": "liquidation_probability", "threshold": 0.1, "horizon_days": 0}, "horizon_days"),
        ({"kind": "margin_ratio", "threshold": 1, "color": "red"}, "color"),
        ({"kind": "margin_ratio", "threshold": True}, "threshold"),
        ([], "rule"),
    ],
)
def test_bad_rules_name_the_field(data: object, field_path: str) -> None:
    with pytest.raises(CrossMarginError) as caught:
        parse_rule(data, "r", "a1")
    assert caught.value.path == field_path


def test_many_views_at_once_are_each_view_alone() -> None:
    """``evaluate_many`` computes every first-passage chance in one call: the same alerts and
    states as one ``evaluate`` per view."""
    views = [
        View(
            account_id=f"a{k}",
            margin_ratio=0.1 * k,
            at=_at(k),
            positions=(
                Pos(liquidation_price=60000.0 * (1 - 0.02 * (k + 1)), distance=0.02 * (k + 1)),
                Pos(
                    "ETHUSDT",
                    mark=3000.0,
                    liquidation_price=3000.0 * (1 + 0.03 * k),
                    distance=0.03 * k,
                ),
            ),
        )
        for k in range(6)
    ]
    rules = {
        v.account_id: [
            AlertRule(f"{v.account_id}-p", v.account_id, RuleKind.LIQUIDATION_PROBABILITY, 0.3),
            AlertRule(f"{v.account_id}-m", v.account_id, RuleKind.MARGIN_RATIO, 0.25),
            AlertRule(f"{v.account_id}-d", v.account_id, RuleKind.LIQUIDATION_DISTANCE, 0.05),
        ]
        for v in views
    }
    vols = {"BTCUSDT": 0.7, "ETHUSDT": 0.9}
    together = evaluate_many(rules, {}, views, 5, vols)
    alone: tuple[list[object], dict[str, RuleState]] = ([], {})
    for view in views:
        alerts, states = evaluate(rules[view.account_id], {}, view, 5, vols)
        alone[0].extend(alerts)
        alone[1].update(states)
    assert together == alone
    assert {a.kind for a in together[0]} == {
        "liquidation_probability",
        "margin_ratio",
        "liquidation_distance",
    }
