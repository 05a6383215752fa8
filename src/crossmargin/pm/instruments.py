"""The compiled instrument set the scenario engine revalues.

Option inputs beside the market come as :class:`~crossmargin.model.OptionData`. Forwards: an
option is valued on its underlying's index price (``market.asset_price(underlying)``, zero
basis, zero rates), a future or perpetual on its own mark.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time

import numpy as np

from crossmargin.maths.scenarios import InstrumentArrays
from crossmargin.model import CrossMarginError, Instrument, Kind, Market, OptionData

__all__ = [
    "ScenarioInstruments",
    "build_instruments",
    "spot_instrument",
    "years_to_expiry",
]

YEAR_DAYS = 365.0
EXPIRY_TIME = time(8, 0, tzinfo=UTC)


def years_to_expiry(expiry: str, now: datetime, path: str = "expiry") -> float:
    """Years from ``now`` to an ISO expiry (a bare date means 08:00 UTC, Deribit's fixing)."""
    try:
        when = datetime.fromisoformat(expiry)
    except ValueError:
        raise CrossMarginError(path, f"not an ISO date: {expiry!r}") from None
    if len(expiry) == 10:
        when = datetime.combine(when.date(), EXPIRY_TIME)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds() / (YEAR_DAYS * 86400.0)


@dataclass(frozen=True)
class ScenarioInstruments:
    """Instruments compiled into arrays, with their symbols and underlyings in row order."""

    symbols: tuple[str, ...]
    underlyings: tuple[str, ...]
    arrays: InstrumentArrays


def build_instruments(
    instruments: Iterable[Instrument],
    market: Market,
    data: OptionData,
    scan_range: Callable[[str, float], float],
    sticky_delta: bool = False,
) -> ScenarioInstruments:
    """Compile ``instruments`` (derivatives or spot) for the engine; errors name the field.
    ``scan_range(underlying, days to expiry)`` gives each row's price range."""
    rows: list[tuple[float, ...]] = []
    symbols: list[str] = []
    unders: list[str] = []
    for inst in instruments:
        path = f"instruments.{inst.symbol}"
        rows.append(_row(inst, market, data, path))
        symbols.append(inst.symbol)
        unders.append(inst.underlying)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 10)
    n = len(rows)
    arrays = InstrumentArrays(
        forward=table[:, 0],
        contract_size=table[:, 1],
        inverse=table[:, 2] > 0,
        is_option=table[:, 3] > 0,
        is_call=table[:, 4] > 0,
        strike=table[:, 5],
        t=table[:, 6],
        atm_vol=table[:, 7],
        skew=table[:, 8],
        curvature=table[:, 9],
        sticky_delta=np.full(n, sticky_delta),
        price_range=np.array(
            [scan_range(u, float(t) * YEAR_DAYS) for u, t in zip(unders, table[:, 6], strict=True)],
            dtype=np.float64,
        ),
    )
    return ScenarioInstruments(tuple(symbols), tuple(unders), arrays)


def _row(inst: Instrument, market: Market, data: OptionData, path: str) -> tuple[float, ...]:
    t = 0.0
    if inst.expiry:
        t = years_to_expiry(inst.expiry, data.valuation_time, f"{path}.expiry")
        if t <= 0.0:
            raise CrossMarginError(f"{path}.expiry", f"expired at {inst.expiry}")
    if inst.kind != Kind.OPTION:
        spot = inst.kind == Kind.SPOT
        forward = market.asset_price(inst.underlying) if spot else market.mark(inst.symbol)
        return (forward, inst.contract_size, float(inst.inverse), 0, 0, math.nan, t, 0, 0, 0)
    forward = market.asset_price(inst.underlying)
    strike = float(inst.strike or math.nan)
    skew = curvature = 0.0
    if inst.symbol in data.vols:
        atm = data.vols[inst.symbol]
    elif inst.underlying in data.surfaces:
        surface = data.surfaces[inst.underlying]
        atm, skew, curvature = surface.atm_vol(t * YEAR_DAYS), surface.skew, surface.curvature
    else:
        raise CrossMarginError(f"vols.{inst.symbol}", "missing vol (or surface for underlying)")
    call = inst.option_type == "call"
    return (
        forward,
        inst.contract_size,
        float(inst.inverse),
        1,
        float(call),
        strike,
        t,
        atm,
        skew,
        curvature,
    )


def spot_instrument(asset: str) -> Instrument:
    """A linear spot holding of ``asset`` (one coin per contract) for USD-numeraire models."""
    return Instrument(f"{asset}:spot", Kind.SPOT, asset, "USD", "USD")
