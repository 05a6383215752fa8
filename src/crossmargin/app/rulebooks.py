"""The bundled rulebooks of every kind, with their source and date."""

from __future__ import annotations

from dataclasses import dataclass, field

from crossmargin.io.results import OPTIONAL
from crossmargin.rules import bundled_pm_rulebooks, bundled_rulebooks, load_pm_rulebook
from crossmargin.rules.venue import bundled_venues, load_venue

__all__ = ["RulebookEntry", "rulebook_catalog"]


@dataclass(frozen=True, kw_only=True)
class RulebookEntry:
    """One bundled rulebook. ``kind``: ``margin``, ``portfolio_margin`` or ``liquidation``;
    ``model`` is a liquidation rulebook's venue. Title, currency, version and markets are
    known for margin rulebooks only."""

    kind: str
    name: str
    title: str | None = field(default=None, metadata=OPTIONAL)
    model: str
    currency: str | None = field(default=None, metadata=OPTIONAL)
    as_of: str
    version: str | None = field(default=None, metadata=OPTIONAL)
    source: str
    markets: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)


def rulebook_catalog() -> tuple[RulebookEntry, ...]:
    """Margin, then portfolio-margin, then liquidation rulebooks, each kind by name."""
    margin = [
        RulebookEntry(
            kind="margin",
            name=b.name,
            title=b.title,
            model=b.model,
            currency=b.currency,
            as_of=b.as_of,
            version=b.version,
            source=b.source,
            markets=tuple(sorted(b.instruments)),
        )
        for b in bundled_rulebooks()
    ]
    pm = [
        RulebookEntry(
            kind="portfolio_margin", name=r.name, model=r.model, as_of=r.as_of, source=r.source
        )
        for r in map(load_pm_rulebook, bundled_pm_rulebooks())
    ]
    liquidation = [
        RulebookEntry(
            kind="liquidation",
            name=v.name,
            model=v.venue,
            as_of=v.as_of,
            source=" ".join(v.sources),
        )
        for v in map(load_venue, bundled_venues())
    ]
    return (*margin, *pm, *liquidation)
