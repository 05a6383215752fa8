"""Portfolio-margin rulebooks: TOML files with a header, a scenario grid and per-underlying data.

Layout (see ``crossmargin/rules/pm/*.toml``)::

    [rulebook]            name, title, model (cme-span | deribit-pm | okx-pm), source, as_of,
                          notes, model-level numbers (mm_factor, im_ratio, imr_factor ...) and
                          optionally standard_rulebook: the margin rulebook of the venue's
                          standard margin, used when a document names only the PM rulebook
    [grid]                the scenario grid (crossmargin.rules.grid)
    [vol_shock]           relative = true (Deribit style) or false (SPAN vol points)
    [underlyings.BTC]     per-underlying parameters; [underlyings.default] covers the rest
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

from crossmargin.maths.spreads import InterSpread
from crossmargin.model import CrossMarginError
from crossmargin.model.checks import finite, non_empty, non_negative, positive
from crossmargin.rules.grid import ScenarioGrid, grid_from_table
from crossmargin.rules.loader import bundled_names, read_rulebook

__all__ = [
    "MODELS",
    "PmRulebook",
    "bundled_pm_rulebooks",
    "inter_spread_from_table",
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
    )


def bundled_pm_rulebooks() -> list[str]:
    """Names of the portfolio-margin rulebooks shipped with the package."""
    return bundled_names("pm")


def load_pm_rulebook(name_or_path: str | Path) -> PmRulebook:
    """Load a bundled PM rulebook by name, or a TOML file by path."""
    _, doc = read_rulebook("pm", name_or_path, "rulebook", "PM rulebook")
    return parse_pm_rulebook(doc)
