"""Positions (one-way mode: one net position per symbol) and orders."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from crossmargin.model.checks import finite, non_empty, non_negative, positive
from crossmargin.model.errors import CrossMarginError

__all__ = ["MarginMode", "Order", "Position"]


class MarginMode(StrEnum):
    """Cross: the whole account backs the position. Isolated: only its own margin does."""

    CROSS = "cross"
    ISOLATED = "isolated"


@dataclass(frozen=True)
class Position:
    """A net position. ``qty`` > 0 is long, in contracts (of ``contract_size`` each).

    ``isolated_margin`` is the isolated wallet in the settle asset (isolated mode only);
    ``leverage`` is the leverage the trader chose (``None``: the bracket's maximum).
    """

    symbol: str
    qty: float
    entry_price: float
    margin_mode: MarginMode = MarginMode.CROSS
    isolated_margin: float | None = None
    leverage: float | None = None

    def __post_init__(self) -> None:
        non_empty("symbol", self.symbol)
        if finite("qty", self.qty) == 0.0:
            raise CrossMarginError("qty", "must not be 0 (leave closed positions out)")
        positive("entry_price", self.entry_price)
        if self.leverage is not None and positive("leverage", self.leverage) < 1.0:
            raise CrossMarginError("leverage", f"must be >= 1, got {self.leverage}")
        if self.margin_mode == MarginMode.ISOLATED:
            if self.isolated_margin is None:
                raise CrossMarginError("isolated_margin", "required for an isolated position")
            non_negative("isolated_margin", self.isolated_margin)
        elif self.isolated_margin is not None:
            raise CrossMarginError("isolated_margin", "only isolated positions carry one")

    @property
    def is_isolated(self) -> bool:
        """True in isolated margin mode."""
        return self.margin_mode == MarginMode.ISOLATED


@dataclass(frozen=True)
class Order:
    """A hypothetical fill for ``what_if``: signed ``qty`` (> 0 buys) at ``price``.

    ``price`` defaults to the mark price. ``margin_mode``, ``leverage`` and ``isolated_margin``
    apply when the order opens a new position (isolated margin defaults to the initial margin
    taken from the cross balance). ``fee_rate`` is charged on the fill notional.
    """

    symbol: str
    qty: float
    price: float | None = None
    margin_mode: MarginMode = MarginMode.CROSS
    leverage: float | None = None
    isolated_margin: float | None = None
    fee_rate: float = 0.0

    def __post_init__(self) -> None:
        non_empty("symbol", self.symbol)
        if finite("qty", self.qty) == 0.0:
            raise CrossMarginError("qty", "must not be 0")
        if self.price is not None:
            positive("price", self.price)
        if self.leverage is not None and positive("leverage", self.leverage) < 1.0:
            raise CrossMarginError("leverage", f"must be >= 1, got {self.leverage}")
        if self.isolated_margin is not None:
            non_negative("isolated_margin", self.isolated_margin)
        non_negative("fee_rate", self.fee_rate)
