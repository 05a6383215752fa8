"""One account's positions run through the scenario engine, grouped by underlying (risk unit).

Each unit's scenario P&L is in the unit's numeraire: the underlying coin when the rulebook
counts in coin (Deribit inverse portfolios), else USD. Under USD accounting, non-cash balances
join their unit as spot holdings (OKX risk units hold spot).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossmargin.maths.scenarios import (
    InstrumentArrays,
    VolShock,
    aggregate,
    contract_value,
    position_matrix,
    risk_array,
    to_numeraire,
)
from crossmargin.model import Account, CrossMarginError, Instrument, Market, OptionData
from crossmargin.pm.greeks import contract_greeks
from crossmargin.pm.instruments import (
    ScenarioInstruments,
    build_instruments,
    spot_instrument,
)
from crossmargin.rules import PmRulebook

__all__ = [
    "AccountRisk",
    "UnitMargin",
    "account_risk",
    "check_ranges",
    "option_values",
    "vol_shock",
]

Float = NDArray[np.float64]


@dataclass(frozen=True)
class AccountRisk:
    """Rows are the account's holdings (positions, then spot balances under USD accounting);
    ``compiled`` holds them as the scenario engine's arrays."""

    compiled: ScenarioInstruments
    instruments: tuple[Instrument, ...]
    qty: Float
    risk: Float
    greeks: dict[str, Float]
    units: tuple[str, ...]
    unit_of_row: NDArray[np.intp]
    unit_pnl: Float
    unit_forward: Float
    coin: bool

    def rows_of(self, underlying: str) -> NDArray[np.intp]:
        """Row indices of one unit."""
        return np.flatnonzero(self.unit_of_row == self.units.index(underlying))

    def unit_sum(self, per_contract: Float) -> Float:
        """``sum(qty * per_contract)`` per unit."""
        sums = np.bincount(self.unit_of_row, self.qty * per_contract, minlength=len(self.units))
        return sums.astype(np.float64)


def vol_shock(rulebook: PmRulebook, underlyings: tuple[str, ...]) -> VolShock:
    """Per-row vol shock parameters from ``[vol_shock]`` and the underlyings' tables.

    Relative shocks read vol_range_up, vol_range_down, short_term_vega_power,
    long_term_vega_power and min_vol_for_shock_up (absent: 0); absolute ones vol_scan_range.
    """

    def col(key: str) -> Float:
        return np.array([rulebook.param(u, key, 0.0) for u in underlyings], dtype=np.float64)

    spec = rulebook.vol_shock
    if not spec.get("relative", True):
        return VolShock(relative=False, up=col("vol_scan_range"))
    return VolShock(
        relative=True,
        up=col("vol_range_up"),
        down=col("vol_range_down"),
        short_power=col("short_term_vega_power"),
        long_power=col("long_term_vega_power"),
        floor_up=col("min_vol_for_shock_up"),
        min_dte_days=float(spec.get("min_dte_days", 1.0)),
    )


def check_ranges(rulebook: PmRulebook, compiled: ScenarioInstruments) -> None:
    """Every row's price range must keep the grid's lowest scaled move above a zero price."""
    grid = rulebook.grid.arrays
    lowest = float(np.min(np.where(grid.scaled, grid.price_move, 0.0)))
    for u, rng in zip(compiled.underlyings, compiled.arrays.price_range, strict=True):
        if rng <= 0.0 or 1.0 + lowest * rng <= 0.0:
            raise CrossMarginError(
                f"underlyings.{u}.price_range", f"{rng} moves the price to zero or below"
            )


def account_risk(
    account: Account, market: Market, rulebook: PmRulebook, data: OptionData
) -> AccountRisk:
    """Revalue the account's holdings over the rulebook's grid; errors name the position."""
    instruments: list[Instrument] = []
    qty: list[float] = []
    for i, position in enumerate(account.positions):
        try:
            instruments.append(market.instrument(position.symbol))
        except CrossMarginError as error:
            raise error.at(f"positions[{i}]") from None
        qty.append(position.qty)
    coin = rulebook.coin_accounting
    if not coin:
        for asset, amount in account.balances.items():
            if asset != market.currency and amount != 0.0 and asset in market.prices:
                instruments.append(spot_instrument(asset))
                qty.append(amount)
    if not instruments:
        raise CrossMarginError("positions", "nothing to margin: no positions")
    unders = tuple(dict.fromkeys(inst.underlying for inst in instruments))
    compiled = build_instruments(
        instruments, market, data, rulebook.scan_range, rulebook.sticky_delta
    )
    check_ranges(rulebook, compiled)
    arrays = compiled.arrays
    grid = rulebook.grid.arrays
    shock = vol_shock(rulebook, compiled.underlyings)
    risk = to_numeraire(risk_array(arrays, grid, shock), arrays, grid, coin)
    unit_of_row = np.array([unders.index(u) for u in compiled.underlyings], dtype=np.intp)
    q = np.array(qty, dtype=np.float64)
    units = position_matrix(unit_of_row, np.arange(len(q)), q, (len(unders), len(q)))
    pnl = aggregate(units, risk)
    forwards = np.array(
        [
            market.prices.get(u, float(arrays.forward[unders.index(u) == unit_of_row][0]))
            for u in unders
        ]
    )
    return AccountRisk(
        compiled,
        tuple(instruments),
        q,
        risk,
        contract_greeks(arrays),
        unders,
        unit_of_row,
        pnl,
        forwards,
        coin,
    )


def option_values(arrays: InstrumentArrays) -> Float:
    """USD value of one contract of each row: options at their base vol, 0 for delta-one."""
    v = contract_value(arrays, arrays.forward, arrays.base_vol(), arrays.t)
    return np.where(arrays.is_option, np.where(arrays.inverse, v * arrays.forward, v), 0.0)


@dataclass(frozen=True)
class UnitMargin:
    """Margin of one risk unit in its currency (coin or USD); ``pnl`` is the scenario vector the
    worst case is read from (after any offsets), ``forward`` converts coin to USD."""

    underlying: str
    currency: str
    forward: float
    pnl: Float
    worst_case: float
    worst_scenario: int
    add_ons: dict[str, float]
    initial: float
    maintenance: float
