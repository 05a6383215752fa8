"""Instruments and their margin schedules.

Every venue model (tiered brackets, Hyperliquid, size-scaled rates) compiles into one
``MarginSchedule``, so one set of formulas in ``crossmargin.maths`` serves them all:

    notional  n = |qty| * contract_size * mark          (linear, in the settle asset)
              n = |qty| * contract_size / mark          (inverse, in coin)
    size      s = |qty| * contract_size (linear, coins) or n (inverse, coins)
    MM = n * (mmr_k + maintenance_rate_per_size * s) - maintenance_amount_k   (k: bracket of n)
    IM = n * max(1 / leverage, initial_rate + initial_rate_per_size * s)

With ``isolated_at_entry`` (Bybit's classic isolated margin) an isolated position's IM and MM are
fixed at its entry-price value instead of following the mark. A ``close_fee_rate`` (Bybit's
taker fee) adds the estimated fee to close, priced at the leverage bankruptcy price, to both.

A finite ``max_notional`` on the last bracket is the venue's position limit (Binance caps its
last bracket): a position past it is still margined at the last bracket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from crossmargin.model.checks import finite, non_empty, non_negative, positive
from crossmargin.model.errors import CrossMarginError

__all__ = ["Instrument", "Kind", "MarginSchedule", "Tier", "continuity_amounts"]


class Kind(StrEnum):
    """Instrument kinds, named as ccxt names market types."""

    SPOT = "spot"
    PERPETUAL = "perpetual"
    FUTURE = "future"
    OPTION = "option"


@dataclass(frozen=True)
class Tier:
    """One notional bracket: maintenance rate, maintenance amount (``cum``) and leverage cap."""

    min_notional: float
    max_notional: float
    maintenance_margin_rate: float
    max_leverage: float
    maintenance_amount: float = 0.0

    def __post_init__(self) -> None:
        non_negative("min_notional", self.min_notional)
        if not self.max_notional > self.min_notional:
            raise CrossMarginError("max_notional", "must be above min_notional")
        rate = non_negative("maintenance_margin_rate", self.maintenance_margin_rate)
        if rate >= 1.0:
            raise CrossMarginError("maintenance_margin_rate", f"must be below 1, got {rate}")
        if not self.max_leverage >= 1.0:
            raise CrossMarginError("max_leverage", f"must be >= 1, got {self.max_leverage}")
        finite("maintenance_amount", self.maintenance_amount)


def continuity_amounts(
    floors: list[float], rates: list[float], given: list[float | None] | None = None
) -> list[float]:
    """Maintenance amounts that keep MM continuous across brackets.

    cum_i = cum_(i-1) + floor_i * (mmr_i - mmr_(i-1)), cum_0 = 0. A ``given`` amount is kept
    as is, and the brackets above it continue from it, so MM is continuous at every floor whose
    amount is derived.

    Source: Binance USDⓈ-M leverage brackets (``cum`` in GET /fapi/v1/leverageBracket).
    """
    listed = given or [None] * len(floors)
    amounts: list[float] = []
    for i, amount in enumerate(listed):
        if amount is None:
            below = amounts[-1] + floors[i] * (rates[i] - rates[i - 1]) if i else 0.0
            amounts.append(below)
        else:
            amounts.append(amount)
    return amounts


@dataclass(frozen=True)
class MarginSchedule:
    """Brackets by notional plus optional size-scaled rates (see the module docstring)."""

    tiers: tuple[Tier, ...]
    initial_rate: float = 0.0
    initial_rate_per_size: float = 0.0
    maintenance_rate_per_size: float = 0.0
    isolated_at_entry: bool = False
    close_fee_rate: float = 0.0

    def __post_init__(self) -> None:
        if not self.tiers:
            raise CrossMarginError("tiers", "need at least one tier")
        if self.tiers[0].min_notional != 0.0:
            raise CrossMarginError("tiers[0].min_notional", "the first tier must start at 0")
        for i in range(1, len(self.tiers)):
            if self.tiers[i].min_notional != self.tiers[i - 1].max_notional:
                raise CrossMarginError(
                    f"tiers[{i}].min_notional", "tiers must be contiguous (equal previous max)"
                )
        non_negative("initial_rate", self.initial_rate)
        non_negative("initial_rate_per_size", self.initial_rate_per_size)
        non_negative("maintenance_rate_per_size", self.maintenance_rate_per_size)
        if not 0.0 <= self.close_fee_rate < 1.0:
            rate = self.close_fee_rate
            raise CrossMarginError("close_fee_rate", f"must be within [0, 1), got {rate}")

    @classmethod
    def brackets(
        cls,
        floors: list[float],
        rates: list[float],
        max_leverage: list[float],
        amounts: list[float | None] | None = None,
        position_limit: float = math.inf,
    ) -> MarginSchedule:
        """Build brackets from floors; missing maintenance amounts follow the continuity rule.
        ``position_limit`` is the last bracket's cap (notional in the settle asset)."""
        derived = continuity_amounts(floors, rates, amounts)
        caps = [*floors[1:], position_limit]
        tiers = tuple(
            Tier(lo, hi, r, lev, d)
            for lo, hi, r, lev, d in zip(floors, caps, rates, max_leverage, derived, strict=True)
        )
        return cls(tiers)

    @property
    def position_limit(self) -> float:
        """Largest notional the venue lets a position reach (the last bracket's cap; ``inf``
        when it is open)."""
        return self.tiers[-1].max_notional

    @classmethod
    def size_scaled(
        cls,
        initial_rate: float,
        maintenance_rate: float,
        initial_rate_per_size: float = 0.0,
        maintenance_rate_per_size: float = 0.0,
        max_leverage: float = math.inf,
    ) -> MarginSchedule:
        """Deribit / dYdX style: rate = base + per_size * size, one bracket."""
        positive("initial_rate", initial_rate)
        lev = min(max_leverage, 1.0 / initial_rate)
        tier = Tier(0.0, math.inf, maintenance_rate, max(lev, 1.0), 0.0)
        return cls((tier,), initial_rate, initial_rate_per_size, maintenance_rate_per_size)

    @classmethod
    def hyperliquid(cls, floors: list[float], max_leverage: list[float]) -> MarginSchedule:
        """Hyperliquid: maintenance rate = 1 / (2 * max leverage) of the tier in force."""
        rates = [1.0 / (2.0 * lev) for lev in max_leverage]
        return cls.brackets(floors, rates, max_leverage)


@dataclass(frozen=True)
class Instrument:
    """A tradable market. Field names follow ccxt's market structure where it has one.

    ``contract_size`` is in the underlying for linear contracts and in quote currency (USD) for
    inverse ones. ``settle`` is where PnL and margin are paid: the quote for linear contracts, the
    underlying coin for inverse ones. Spot instruments carry no margin schedule.
    """

    symbol: str
    kind: Kind
    underlying: str
    quote: str
    settle: str
    margin: MarginSchedule | None = None
    contract_size: float = 1.0
    inverse: bool = False
    expiry: str | None = None
    max_leverage: float | None = None
    strike: float | None = None
    option_type: str | None = None

    def __post_init__(self) -> None:
        non_empty("symbol", self.symbol)
        non_empty("underlying", self.underlying)
        non_empty("quote", self.quote)
        non_empty("settle", self.settle)
        positive("contract_size", self.contract_size)
        if self.max_leverage is not None and not self.max_leverage >= 1.0:
            raise CrossMarginError("max_leverage", f"must be >= 1, got {self.max_leverage}")
        if self.kind == Kind.OPTION:
            self._check_option()
        elif self.strike is not None or self.option_type is not None:
            raise CrossMarginError("strike", "only options carry a strike and option_type")
        if self.kind == Kind.FUTURE and not self.expiry:
            raise CrossMarginError("expiry", "a dated future needs an expiry date")
        if self.kind not in (Kind.SPOT, Kind.OPTION) and self.margin is None:
            raise CrossMarginError("tiers", f"{self.kind} instrument needs a margin schedule")
        if self.kind == Kind.SPOT and self.inverse:
            raise CrossMarginError("inverse", "spot instruments cannot be inverse")

    def _check_option(self) -> None:
        """European option: strike > 0, option_type call/put, an expiry; margin comes from the
        option rules, so the schedule is optional. ``inverse`` means coin-settled (premium in the
        underlying coin); an option's ``contract_size`` is in the underlying either way."""
        if self.strike is None:
            raise CrossMarginError("strike", "an option needs a strike")
        positive("strike", self.strike)
        if self.option_type not in ("call", "put"):
            raise CrossMarginError(
                "option_type", f"must be 'call' or 'put', got {self.option_type!r}"
            )
        if not self.expiry:
            raise CrossMarginError("expiry", "an option needs an expiry date")

    @property
    def is_option(self) -> bool:
        """True for European options."""
        return self.kind == Kind.OPTION

    @property
    def is_derivative(self) -> bool:
        """True for contracts that carry margin (everything but spot)."""
        return self.kind != Kind.SPOT
