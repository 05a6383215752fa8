"""The market an account is margined against: instruments, prices, collateral rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from crossmargin.model.assets import CollateralRule
from crossmargin.model.checks import finite, non_empty, positive
from crossmargin.model.errors import CrossMarginError
from crossmargin.model.instruments import Instrument

__all__ = ["Market"]


@dataclass(frozen=True, init=False)
class Market:
    """Instruments by symbol, prices, collateral rules and the account currency.

    ``prices`` maps an instrument symbol to its mark price (in its quote currency) and an asset to
    its price in a common numeraire; the account ``currency`` is worth 1 when it has no price, so
    a USD(T)-margined book needs prices only for its non-cash assets. Assets missing from a
    non-empty ``collateral`` table count at ratio 0 (not accepted as margin), except ``currency``.
    ``margin_call_ratio`` is the maintenance / equity ratio at which an account is warned.
    ``memo`` holds what callers derive from this (immutable) market once and reuse, by name;
    it takes no part in equality.
    """

    instruments: Mapping[str, Instrument]
    prices: Mapping[str, float]
    collateral: Mapping[str, CollateralRule]
    currency: str
    margin_call_ratio: float
    memo: dict[str, object] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        prices: Mapping[str, float],
        currency: str,
        collateral: Mapping[str, CollateralRule] | None = None,
        margin_call_ratio: float = 0.8,
    ) -> None:
        non_empty("currency", currency)
        for symbol, price in prices.items():
            positive(f"prices.{symbol}", price)
        ratio = finite("margin_call_ratio", margin_call_ratio)
        if not 0.0 < ratio <= 1.0:
            raise CrossMarginError("margin_call_ratio", f"must be within (0, 1], got {ratio}")
        for symbol, instrument in instruments.items():
            if instrument.symbol != symbol:
                raise CrossMarginError(f"instruments.{symbol}", "key differs from its symbol")
        object.__setattr__(self, "instruments", MappingProxyType(dict(instruments)))
        object.__setattr__(
            self, "prices", MappingProxyType({k: float(v) for k, v in prices.items()})
        )
        object.__setattr__(self, "collateral", MappingProxyType(dict(collateral or {})))
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "margin_call_ratio", ratio)
        object.__setattr__(self, "memo", {})

    def instrument(self, symbol: str) -> Instrument:
        """The instrument ``symbol``, or an error naming it."""
        try:
            return self.instruments[symbol]
        except KeyError:
            raise CrossMarginError("symbol", f"unknown instrument {symbol!r}") from None

    def mark(self, symbol: str) -> float:
        """Mark price of ``symbol`` in its quote currency."""
        try:
            return self.prices[symbol]
        except KeyError:
            raise CrossMarginError(f"prices.{symbol}", "missing mark price") from None

    def asset_price(self, asset: str) -> float:
        """Price of ``asset`` in the numeraire (the currency is 1 unless priced)."""
        if asset in self.prices:
            return self.prices[asset]
        if asset == self.currency:
            return 1.0
        raise CrossMarginError(f"prices.{asset}", f"missing price for asset {asset}")

    def to_currency(self, asset: str) -> float:
        """Units of the account currency that one unit of ``asset`` is worth."""
        return self.asset_price(asset) / self.asset_price(self.currency)

    def collateral_rule(self, asset: str) -> CollateralRule:
        """The haircut for ``asset`` (see the class docstring for the defaults)."""
        if asset in self.collateral:
            return self.collateral[asset]
        if not self.collateral or asset == self.currency:
            return CollateralRule.flat(asset, 1.0, stable=asset == self.currency)
        return CollateralRule.flat(asset, 0.0)

    def with_prices(self, prices: Mapping[str, float]) -> Market:
        """The same market with some prices replaced."""
        merged = {**self.prices, **prices}
        return Market(
            self.instruments, merged, self.currency, self.collateral, self.margin_call_ratio
        )
