"""Alert rules per account and their evaluation with hysteresis.

A rule watches one figure of an account's view:

- ``margin_ratio``: maintenance margin / equity above ``threshold`` (1 is liquidation);
- ``crash_distance``: the smallest uniform price move that liquidates the account, as a
  fraction, below ``threshold``;
- ``liquidation_distance``: ``|mark - liquidation price| / mark`` of the closest position below
  ``threshold``;
- ``status_change``: the account's status differs from the last one reported;
- ``liquidation_probability``: the chance that a mark touches its position's liquidation price
  within ``horizon_days``, under the underlying's annualised realised volatility, above
  ``threshold`` (first passage of a driftless-price GBM,
  :func:`crossmargin.maths.first_passage.hit_probability`; the largest over the positions,
  exact for one position and a lower bound on the account's chance otherwise).

Hysteresis: a rule fires once when its figure crosses the threshold, then stays quiet until the
figure has cleared the threshold by ``band`` (same units as the figure) and ``cooldown_s``
seconds have passed since it fired. A status change fires at most once per ``cooldown_s``,
against the last status it reported, so a status flipping back within the cool-down says
nothing. A missing figure (no maintenance margin, no liquidating move) counts as clear.

:func:`evaluate` is pure: rules, their previous states and a view in; alerts and the new states
out. Alert ids are ``{rule_id}-{n}`` (the rule's n-th firing): the same firing evaluated by two
processes carries the same id, so receivers can drop the duplicate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from crossmargin.maths.first_passage import hit_probability
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError

__all__ = [
    "Alert",
    "AlertRule",
    "RuleKind",
    "RuleState",
    "evaluate",
    "evaluate_many",
    "parse_rule",
]

DAYS_PER_YEAR = 365.0


class RuleKind(StrEnum):
    """What a rule watches (see the module docstring)."""

    MARGIN_RATIO = "margin_ratio"
    CRASH_DISTANCE = "crash_distance"
    LIQUIDATION_DISTANCE = "liquidation_distance"
    STATUS_CHANGE = "status_change"
    LIQUIDATION_PROBABILITY = "liquidation_probability"


_ABOVE = {RuleKind.MARGIN_RATIO, RuleKind.LIQUIDATION_PROBABILITY}
"""Rules that fire when the figure rises past the threshold; the others when it falls below."""


class PositionLike(Protocol):
    """The fields of a position view a rule reads."""

    @property
    def symbol(self) -> str: ...
    @property
    def mark(self) -> float: ...
    @property
    def liquidation_price(self) -> float | None: ...
    @property
    def distance(self) -> float | None: ...


class ViewLike(Protocol):
    """The fields of an account view a rule reads (``crossmargin.service.state.AccountView``)."""

    @property
    def account_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def margin_ratio(self) -> float | None: ...
    @property
    def crash_distance(self) -> float | None: ...
    @property
    def positions(self) -> Sequence[PositionLike]: ...
    @property
    def at(self) -> str: ...


@dataclass(frozen=True)
class AlertRule:
    """One rule on one account. ``threshold`` is a ratio (``margin_ratio``), a fraction
    (``crash_distance``, ``liquidation_distance``), a probability
    (``liquidation_probability``) or unused (``status_change``); ``band`` is the hysteresis
    margin in the same units, ``cooldown_s`` the quiet time after a firing in seconds and
    ``horizon_days`` the first-passage horizon."""

    id: str
    account_id: str
    kind: RuleKind
    threshold: float = 0.0
    band: float = 0.0
    cooldown_s: float = 0.0
    horizon_days: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {**asdict(self), "kind": self.kind.value}


@dataclass(frozen=True)
class RuleState:
    """A rule's memory between evaluations: armed (ready to fire), when it last fired (epoch
    seconds), how many times it fired and the last status it reported."""

    armed: bool = True
    fired_at: float | None = None
    count: int = 0
    reported_status: str | None = None


@dataclass(frozen=True)
class Alert:
    """One firing. ``value`` is the figure that crossed ``threshold`` (for a status change, the
    new status's severity code, 0 healthy to 3 bankrupt, and ``detail`` names both statuses);
    ``symbol`` the position concerned where the rule is per position; ``at`` the view's time
    and ``received_ns`` when the tick that caused it arrived (``time.perf_counter_ns``)."""

    id: str
    account_id: str
    rule_id: str
    kind: str
    value: float
    threshold: float
    at: str
    received_ns: int
    symbol: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (a non-finite value, an infinite margin ratio, as ``None``)."""
        out = asdict(self)
        if not math.isfinite(self.value):
            out["value"] = None
        return out


Figure = tuple[float | None, str | None]
"""A rule's figure on a view (``None`` when there is none) and the position it comes from."""


def _figure(rule: AlertRule, view: ViewLike, chances: Mapping[str, Figure]) -> Figure:
    """The rule's figure; first-passage figures come computed in ``chances`` by rule id."""
    if rule.kind is RuleKind.MARGIN_RATIO:
        return view.margin_ratio, None
    if rule.kind is RuleKind.CRASH_DISTANCE:
        return view.crash_distance, None
    if rule.kind is RuleKind.LIQUIDATION_DISTANCE:
        near = [(p.distance, p.symbol) for p in view.positions if p.distance is not None]
        return min(near) if near else (None, None)
    return chances.get(rule.id, (None, None))


def _chances(
    pairs: Sequence[tuple[AlertRule, ViewLike]], volatility: Mapping[str, float]
) -> dict[str, Figure]:
    """The first-passage figure of each probability rule, every position of every view in one
    :func:`hit_probability` call: the largest chance over the view's positions."""
    owners: list[str] = []
    symbols: list[str] = []
    columns: list[tuple[float, float, float, float]] = []
    for rule, view in pairs:
        for p in view.positions:
            if p.liquidation_price is not None:
                owners.append(rule.id)
                symbols.append(p.symbol)
                sigma = volatility.get(p.symbol, 0.0)
                columns.append((p.mark, p.liquidation_price, sigma, rule.horizon_days))
    if not columns:
        return {}
    spot, barrier, sigma, days = np.asarray(columns, dtype=np.float64).T
    chances = hit_probability(spot, barrier, sigma, days / DAYS_PER_YEAR)
    out: dict[str, Figure] = {}
    for owner, symbol, chance in zip(owners, symbols, chances.tolist(), strict=True):
        best = out.get(owner)
        if best is None or (best[0] is not None and chance > best[0]):
            out[owner] = (chance, symbol)
    return out


def _epoch(at: str) -> float:
    try:
        return datetime.fromisoformat(at).timestamp()
    except ValueError:
        raise CrossMarginError("at", f"not an ISO date-time: {at!r}") from None


def _cooled(state: RuleState, rule: AlertRule, now: float) -> bool:
    return state.fired_at is None or now - state.fired_at >= rule.cooldown_s


def _status_rule(
    rule: AlertRule, state: RuleState, view: ViewLike, now: float, received_ns: int
) -> tuple[Alert | None, RuleState]:
    if state.reported_status is None:
        return None, replace(state, reported_status=view.status)
    if view.status == state.reported_status or not _cooled(state, rule, now):
        return None, state
    count = state.count + 1
    alert = Alert(
        id=f"{rule.id}-{count}",
        account_id=view.account_id,
        rule_id=rule.id,
        kind=rule.kind.value,
        value=float(Status[view.status.upper()]),
        threshold=rule.threshold,
        at=view.at,
        received_ns=received_ns,
        detail=f"{state.reported_status} -> {view.status}",
    )
    return alert, RuleState(True, now, count, view.status)


def _one(
    rule: AlertRule,
    state: RuleState,
    view: ViewLike,
    now: float,
    received_ns: int,
    chances: Mapping[str, Figure],
) -> tuple[Alert | None, RuleState]:
    if rule.kind is RuleKind.STATUS_CHANGE:
        return _status_rule(rule, state, view, now, received_ns)
    value, symbol = _figure(rule, view, chances)
    above = rule.kind in _ABOVE
    if value is None or math.isnan(value):
        crossed, cleared = False, True
    elif above:
        crossed, cleared = value > rule.threshold, value <= rule.threshold - rule.band
    else:
        crossed, cleared = value < rule.threshold, value >= rule.threshold + rule.band
    if not state.armed:
        if cleared and _cooled(state, rule, now):
            state = replace(state, armed=True)
        return None, state
    if not crossed:
        return None, state
    assert value is not None
    count = state.count + 1
    alert = Alert(
        id=f"{rule.id}-{count}",
        account_id=view.account_id,
        rule_id=rule.id,
        kind=rule.kind.value,
        value=value,
        threshold=rule.threshold,
        at=view.at,
        received_ns=received_ns,
        symbol=symbol,
        detail=f"{rule.kind.value} {value:.6g} {'>' if above else '<'} {rule.threshold:g}",
    )
    return alert, replace(state, armed=False, fired_at=now, count=count)


def evaluate(
    rules: Sequence[AlertRule],
    states: Mapping[str, RuleState],
    view: ViewLike,
    received_ns: int,
    volatility: Mapping[str, float] | None = None,
) -> tuple[list[Alert], dict[str, RuleState]]:
    """The alerts ``view`` raises under the account's ``rules`` and every rule's new state.

    ``states`` is by rule id (a rule without one starts armed); rules of other accounts are
    ignored. ``volatility`` is the annualised realised volatility by position symbol, read by
    ``liquidation_probability`` rules (a symbol without one has 0: never reached). Time is the
    view's ``at``.
    """
    mine = [rule for rule in rules if rule.account_id == view.account_id]
    return evaluate_many({view.account_id: mine}, states, [view], received_ns, volatility)


def evaluate_many(
    rules: Mapping[str, Sequence[AlertRule]],
    states: Mapping[str, RuleState],
    views: Sequence[ViewLike],
    received_ns: int,
    volatility: Mapping[str, float] | None = None,
) -> tuple[list[Alert], dict[str, RuleState]]:
    """:func:`evaluate` over many views at once (``rules`` by account id): the same alerts, in
    view order, with the first-passage chances of all of them computed together."""
    vols = volatility or {}
    pairs = [
        (rule, view)
        for view in views
        for rule in rules.get(view.account_id, ())
        if rule.kind is RuleKind.LIQUIDATION_PROBABILITY
    ]
    chances = _chances(pairs, vols)
    alerts: list[Alert] = []
    new_states: dict[str, RuleState] = {}
    epochs: dict[str, float] = {}
    for view in views:
        now = epochs.get(view.at)
        if now is None:
            now = epochs[view.at] = _epoch(view.at)
        for rule in rules.get(view.account_id, ()):
            alert, new_states[rule.id] = _one(
                rule, states.get(rule.id, RuleState()), view, now, received_ns, chances
            )
            if alert is not None:
                alerts.append(alert)
    return alerts, new_states


_FRACTIONS = {
    RuleKind.CRASH_DISTANCE,
    RuleKind.LIQUIDATION_DISTANCE,
    RuleKind.LIQUIDATION_PROBABILITY,
}
_RULE_KEYS = {"kind", "threshold", "band", "cooldown_s", "horizon_days"}


def _number(data: Mapping[str, Any], key: str, default: float, low: float = 0.0) -> float:
    raw = data.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise CrossMarginError(key, f"must be a finite number, got {raw!r}")
    if raw < low:
        raise CrossMarginError(key, f"must be >= {low:g}, got {raw!r}")
    return float(raw)


def parse_rule(data: Any, rule_id: str, account_id: str) -> AlertRule:
    """A rule from its JSON fields (``kind``, ``threshold``, ``band``, ``cooldown_s``,
    ``horizon_days``); errors name the field. Fractions and probabilities lie in [0, 1]."""
    if not isinstance(data, Mapping):
        raise CrossMarginError("rule", f"must be an object, got {type(data).__name__}")
    for key in data:
        if key not in _RULE_KEYS:
            raise CrossMarginError(str(key), "unknown field")
    raw_kind = data.get("kind")
    try:
        kind = RuleKind(str(raw_kind))
    except ValueError:
        names = ", ".join(k.value for k in RuleKind)
        raise CrossMarginError("kind", f"must be one of {names}, got {raw_kind!r}") from None
    if kind is not RuleKind.STATUS_CHANGE and "threshold" not in data:
        raise CrossMarginError("threshold", f"required for {kind.value}")
    threshold = _number(data, "threshold", 0.0)
    if kind in _FRACTIONS:
        _fraction("threshold", threshold)
    horizon = _number(data, "horizon_days", 1.0)
    if kind is RuleKind.LIQUIDATION_PROBABILITY and horizon <= 0.0:
        raise CrossMarginError("horizon_days", "must be > 0")
    return AlertRule(
        id=rule_id,
        account_id=account_id,
        kind=kind,
        threshold=threshold,
        band=_number(data, "band", 0.0),
        cooldown_s=_number(data, "cooldown_s", 0.0),
        horizon_days=horizon,
    )


def _fraction(key: str, value: float) -> float:
    if value > 1.0:
        raise CrossMarginError(key, f"must be a fraction in [0, 1], got {value:g}")
    return value
