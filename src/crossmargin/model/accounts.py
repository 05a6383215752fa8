"""Accounts: balances per asset (the cross wallet) and positions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from crossmargin.model.checks import finite, non_empty
from crossmargin.model.errors import CrossMarginError
from crossmargin.model.positions import Position

__all__ = ["Account"]


@dataclass(frozen=True)
class Account:
    """An account: ``balances`` (asset -> amount, negative = owed) back every cross position.

    Isolated positions carry their own margin, which is not part of ``balances``.
    One-way mode: at most one position per symbol.
    """

    id: str
    balances: Mapping[str, float] = field(default_factory=dict)
    positions: tuple[Position, ...] = ()

    def __init__(
        self,
        id: str,
        balances: Mapping[str, float] | None = None,
        positions: Iterable[Position] = (),
    ) -> None:
        non_empty("id", id)
        checked = {}
        for asset, amount in (balances or {}).items():
            non_empty("balances", asset)
            checked[asset] = finite(f"balances.{asset}", amount)
        listed = tuple(positions)
        seen: set[str] = set()
        for i, position in enumerate(listed):
            if not isinstance(position, Position):
                raise CrossMarginError(f"positions[{i}]", "must be a Position")
            if position.symbol in seen:
                raise CrossMarginError(
                    f"positions[{i}].symbol",
                    f"second position in {position.symbol} (one-way mode: one per symbol)",
                )
            seen.add(position.symbol)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "balances", MappingProxyType(checked))
        object.__setattr__(self, "positions", listed)

    def position(self, symbol: str) -> Position | None:
        """The position in ``symbol``, if any."""
        return next((p for p in self.positions if p.symbol == symbol), None)
