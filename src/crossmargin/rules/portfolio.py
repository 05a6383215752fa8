"""Portfolio-margin rulebooks: TOML files with a header, a scenario grid and per-underlying data.

Layout (see ``crossmargin/rules/pm/*.toml``)::

    [rulebook]            name, title, model (cme-span | deribit-pm | okx-pm), source, as_of,
                          notes, model-level numbers (mm_factor, im_ratio, imr_factor ...) and
                          optionally standard_rulebook: the margin rulebook of the venue's
                          standard margin, used when a document names only the PM rulebook
    [grid]                the scenario grid (crossmargin.rules.grid)
    [vol_shock]           relative = true (Deribit style) or false (SPAN vol points)
    [underlyings.BTC]     per-underlying parameters; [underlyings.default] covers the rest
    [intra.BTC]           optional SPAN tiers and intra-commodity spreads of an underlying
                          ([intra.default] covers the rest): ``tiers`` nearest first, each
                          {name, up_to_days (left out on the last), price_range}: the scan
                          range of those expiries; ``spreads`` in priority order, each
                          {legs = [tier, tier], rate (x forward) and/or charge, per coin}
    [standard_options]    short-option IM/MM rates for the standard-margin comparison
    [[inter_spreads]]     optional credits between underlyings (legs, ratios, rate, cap,
                          priority): SPAN's inter-commodity credit, else a capped correlation
                          credit on the units' margins; none by default
    [mr7], [mr9]          OKX minimum charge and stablecoin-depeg bands
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crossmargin.maths.spreads import InterSpread, IntraSchedule, IntraSpread, IntraTier
from crossmargin.model import CrossMarginError
from crossmargin.model.checks import finite, non_empty, non_negative, positive
from crossmargin.rules.grid import ScenarioGrid, grid_from_table
from crossmargin.rules.loader import bundled_names, read_rulebook

__all__ = [
    "MODELS",
    "PmRulebook",
    "bundled_pm_rulebooks",
    "inter_spread_from_table",
    "intra_schedule_from_table",
    "load_pm_rulebook",
    "parse_pm_rulebook",
]

MODELS = ("cme-span", "deribit-pm", "okx-pm")


@dataclass(frozen=True)
class PmRulebook:
    """A loaded portfolio-margin rulebook (numbers as floats, tables as read-only mappings)."""

    name: str
    title: str
    model: str
    source: str
    as_of: str
    header: Mapping[str, Any]
    grid: ScenarioGrid
    vol_shock: Mapping[str, Any]
    underlyings: Mapping[str, Mapping[str, float]]
    standard_options: Mapping[str, Any]
    inter_spreads: tuple[InterSpread, ...]
    tables: Mapping[str, Any]
    intra: Mapping[str, IntraSchedule]

    def number(self, key: str, default: float | None = None) -> float:
        """A model-level number from the header."""
        if key not in self.header:
            if default is None:
                raise CrossMarginError(f"rulebook.{key}", "missing")
            return default
        return finite(f"rulebook.{key}", self.header[key])

    def param(self, underlying: str, key: str, default: float | None = None) -> float:
        """A per-underlying number, falling back to ``[underlyings.default]``, then ``default``."""
        table = self.underlyings.get(underlying, self.underlyings.get("default"))
        if table is None:
            raise CrossMarginError(f"underlyings.{underlying}", "no parameters for this underlying")
        if key not in table:
            if default is None:
                raise CrossMarginError(f"underlyings.{underlying}.{key}", "missing")
            return default
        return table[key]

    def intra_schedule(self, underlying: str) -> IntraSchedule | None:
        """The underlying's tiers and intra spreads (``[intra.default]`` otherwise), if any."""
        return self.intra.get(underlying, self.intra.get("default"))

    def scan_range(self, underlying: str, days: float) -> float:
        """Price scan range of an expiry ``days`` away: its tier's, else the underlying's."""
        schedule = self.intra_schedule(underlying)
        if schedule is None:
            return self.param(underlying, "price_range")
        return schedule.tier_of(days).price_range

    @property
    def standard_rulebook(self) -> str | None:
        """The margin rulebook of the venue's standard margin, when the PM rulebook names one."""
        name = self.header.get("standard_rulebook")
        return None if name is None else str(name)

    @property
    def coin_accounting(self) -> bool:
        """True when scenario P&L is counted in the underlying coin (Deribit inverse portfolios)."""
        return bool(self.header.get("accounting") == "coin")

    @property
    def sticky_delta(self) -> bool:
        """True for sticky-delta smiles under price shocks, False for sticky-strike."""
        return bool(self.header.get("sticky", "strike") == "delta")


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise CrossMarginError(key, "must be a table")
    return MappingProxyType(value)


def inter_spread_from_table(table: Mapping[str, Any], path: str) -> InterSpread:
    """Read ``legs``, ``ratios`` (default 1:1), ``rate`` in [0, 1] and optional ``cap``."""
    legs = table.get("legs")
    if not isinstance(legs, list) or len(legs) != 2 or legs[0] == legs[1]:
        raise CrossMarginError(f"{path}.legs", "need two different underlyings")
    ratios = table.get("ratios", [1.0, 1.0])
    if not isinstance(ratios, list) or len(ratios) != 2:
        raise CrossMarginError(f"{path}.ratios", "need one delta ratio per leg")
    rate = non_negative(f"{path}.rate", table.get("rate", 0.0))
    if rate > 1.0:
        raise CrossMarginError(f"{path}.rate", f"must be within [0, 1], got {rate}")
    return InterSpread(
        non_empty(f"{path}.legs[0]", legs[0]),
        non_empty(f"{path}.legs[1]", legs[1]),
        positive(f"{path}.ratios[0]", ratios[0]),
        positive(f"{path}.ratios[1]", ratios[1]),
        rate,
        math.inf if "cap" not in table else non_negative(f"{path}.cap", table["cap"]),
    )


def intra_schedule_from_table(table: Mapping[str, Any], path: str) -> IntraSchedule:
    """Read ``tiers`` and ``spreads`` (see the module docstring); errors name the field."""
    raw_tiers = table.get("tiers")
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise CrossMarginError(f"{path}.tiers", "must be a non-empty list of tiers")
    tiers: list[IntraTier] = []
    for i, raw in enumerate(raw_tiers):
        where = f"{path}.tiers[{i}]"
        if not isinstance(raw, Mapping):
            raise CrossMarginError(where, "must be a table")
        name = non_empty(f"{where}.name", raw.get("name", ""))
        if any(t.name == name for t in tiers):
            raise CrossMarginError(f"{where}.name", f"duplicate tier {name!r}")
        last = i == len(raw_tiers) - 1
        if "up_to_days" not in raw and not last:
            raise CrossMarginError(f"{where}.up_to_days", "required (only the last tier is open)")
        days = (
            math.inf
            if "up_to_days" not in raw
            else positive(f"{where}.up_to_days", raw["up_to_days"])
        )
        if tiers and days <= tiers[-1].up_to_days:
            raise CrossMarginError(f"{where}.up_to_days", "tiers must be nearest first")
        rng = positive(f"{where}.price_range", raw.get("price_range", 0.0))
        tiers.append(IntraTier(name, days, rng))
    raw_spreads = table.get("spreads", [])
    if not isinstance(raw_spreads, list):
        raise CrossMarginError(f"{path}.spreads", "must be a list of spreads")
    names = {t.name for t in tiers}
    spreads = []
    for i, raw in enumerate(raw_spreads):
        where = f"{path}.spreads[{i}]"
        legs = raw.get("legs") if isinstance(raw, Mapping) else None
        if not isinstance(legs, list) or len(legs) != 2 or legs[0] == legs[1]:
            raise CrossMarginError(f"{where}.legs", "need two different tiers")
        for j, leg in enumerate(legs):
            if leg not in names:
                raise CrossMarginError(f"{where}.legs[{j}]", f"no tier {leg!r}")
        spreads.append(
            IntraSpread(
                legs[0],
                legs[1],
                non_negative(f"{where}.rate", raw.get("rate", 0.0)),
                non_negative(f"{where}.charge", raw.get("charge", 0.0)),
            )
        )
    return IntraSchedule(tuple(tiers), tuple(spreads))


def parse_pm_rulebook(doc: Mapping[str, Any]) -> PmRulebook:
    """Validate a parsed TOML document into a :class:`PmRulebook`."""
    head = _table(doc, "rulebook")
    for key in ("name", "model", "source", "as_of"):
        non_empty(f"rulebook.{key}", head.get(key, ""))
    if head["model"] not in MODELS:
        raise CrossMarginError("rulebook.model", f"must be one of {', '.join(MODELS)}")
    if head.get("sticky", "strike") not in ("strike", "delta"):
        raise CrossMarginError("rulebook.sticky", "must be 'strike' or 'delta'")
    if "standard_rulebook" in head:
        non_empty("rulebook.standard_rulebook", head["standard_rulebook"])
    unders = {}
    for name, table in _table(doc, "underlyings").items():
        if not isinstance(table, dict):
            raise CrossMarginError(f"underlyings.{name}", "must be a table")
        unders[name] = MappingProxyType(
            {k: finite(f"underlyings.{name}.{k}", v) for k, v in table.items()}
        )
    spreads = doc.get("inter_spreads", [])
    if not isinstance(spreads, list):
        raise CrossMarginError("inter_spreads", "must be an array of tables")
    return PmRulebook(
        name=head["name"],
        title=head.get("title", head["name"]),
        model=head["model"],
        source=head["source"],
        as_of=str(head["as_of"]),
        header=head,
        grid=grid_from_table(_table(doc, "grid")),
        vol_shock=_table(doc, "vol_shock"),
        underlyings=MappingProxyType(unders),
        standard_options=_table(doc, "standard_options"),
        inter_spreads=tuple(
            inter_spread_from_table(s, f"inter_spreads[{i}]")
            for i, s in sorted(enumerate(spreads), key=lambda e: e[1].get("priority", 0))
        ),
        tables=MappingProxyType(dict(doc)),
        intra=MappingProxyType(
            {
                name: intra_schedule_from_table(table, f"intra.{name}")
                for name, table in _table(doc, "intra").items()
            }
        ),
    )


def bundled_pm_rulebooks() -> list[str]:
    """Names of the portfolio-margin rulebooks shipped with the package."""
    return bundled_names("pm")


def load_pm_rulebook(name_or_path: str | Path) -> PmRulebook:
    """Load a bundled PM rulebook by name, or a TOML file by path."""
    _, doc = read_rulebook("pm", name_or_path, "rulebook", "PM rulebook")
    return parse_pm_rulebook(doc)
