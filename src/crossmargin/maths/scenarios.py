"""The scenario engine: revalue every instrument once per scenario, then aggregate positions.

Step 1 (per instrument, independent of accounts): the risk array ``R[i, s]`` is the profit of one
long contract of instrument ``i`` under scenario ``s`` (> 0 is a gain), in the instrument's
settle asset, times the scenario's weight (covered fraction). Step 2 (per account): scenario
P&L = ``Q @ R`` with ``Q`` a sparse (rows x instruments) CSR matrix of signed contract
quantities; a row is an account or an (account, underlying) risk unit. The product runs in
blocks of rows so that the dense (rows x scenarios) P&L of a large population need not exist
whole; the worst case of a row is its largest loss over the scenarios.

Value of one contract (``cs`` = contract size, ``F`` the underlying's forward, ``V`` the Black-76
value per unit): linear delta-one ``cs * F``; inverse delta-one ``-cs / F`` (coin; ``cs`` in USD);
linear option ``cs * V``; inverse option ``cs * V / F`` (coin; ``cs`` in the underlying).

A scenario moves the forward to ``F * (1 + move)`` where ``move`` is the scenario's price move,
times the instrument's price range when the scenario is scaled (SPAN's multiples of the scan
range). A scenario may cap the move of delta-one rows (futures, perpetuals, spot) at +-their
price range: Deribit revalues them that way in its extended table, which is aimed at far
out-of-the-money options. Vols move by the scenario's vol move (in [-1, 1]) under
:class:`VolShock`, and the vol of an option comes from its own smile
``atm + skew * k + curvature * k**2`` with ``k = ln(K / F)``: sticky-strike keeps the base
``k``, sticky-delta re-reads the smile at the shocked forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from crossmargin.maths.black76 import price as black76_price

__all__ = [
    "InstrumentArrays",
    "ScenarioArrays",
    "VolShock",
    "aggregate",
    "contract_value",
    "pnl_blocks",
    "position_matrix",
    "risk_array",
    "scenario_forward",
    "shocked_vol",
    "to_numeraire",
    "worst",
]

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]

ROW_BLOCK = 65_536


@dataclass(frozen=True)
class InstrumentArrays:
    """One row per instrument. Delta-one rows ignore the option fields (strike may be NaN).

    ``t`` is in years; ``atm_vol``, ``skew`` and ``curvature`` define the smile at the base
    forward; ``price_range`` scales the scaled scenario moves.
    """

    forward: Float
    contract_size: Float
    inverse: Bool
    is_option: Bool
    is_call: Bool
    strike: Float
    t: Float
    atm_vol: Float
    skew: Float
    curvature: Float
    sticky_delta: Bool
    price_range: Float

    @property
    def size(self) -> int:
        """Number of instruments."""
        return int(self.forward.shape[0])

    def base_vol(self) -> Float:
        """Each option's vol at the base forward."""
        k = np.log(np.where(self.is_option, self.strike, 1.0) / self.forward)
        return smile(self.atm_vol, self.skew, self.curvature, k)


@dataclass(frozen=True)
class ScenarioArrays:
    """One column per scenario: price move, whether it is scaled, vol move, weight, time step
    and, optionally, whether delta-one rows' moves are capped at their price range."""

    price_move: Float
    scaled: Bool
    vol_move: Float
    weight: Float
    dt: Float
    delta_one_capped: Bool | None = None

    @property
    def size(self) -> int:
        """Number of scenarios."""
        return int(self.price_move.shape[0])


@dataclass(frozen=True)
class VolShock:
    """How a vol move of ``m`` in [-1, 1] changes a vol (fields broadcast per instrument).

    ``relative`` (Deribit PME): up = max(vol * (1 + up * m * w), floor_up), down =
    max(vol * (1 + down * m * w), floor) with ``w = (30 / max(dte, min_dte)) ** power`` and
    ``power`` = ``short_power`` below 30 days, ``long_power`` from 30 days.
    ``absolute`` (SPAN): vol + m * up, floored at ``floor``.
    """

    relative: bool = True
    up: ArrayLike = 0.0
    down: ArrayLike = 0.0
    short_power: ArrayLike = 0.0
    long_power: ArrayLike = 0.0
    floor_up: ArrayLike = 0.0
    floor: ArrayLike = 1e-4
    min_dte_days: float = 1.0


def smile(atm: ArrayLike, skew: ArrayLike, curvature: ArrayLike, k: ArrayLike) -> Float:
    """Vol at log-moneyness ``k``, floored at 1e-4."""
    vol = np.asarray(atm) + np.asarray(skew) * k + np.asarray(curvature) * np.square(k)
    return np.maximum(np.asarray(vol, dtype=np.float64), 1e-4)


def shocked_vol(vol: ArrayLike, dte_days: ArrayLike, move: ArrayLike, shock: VolShock) -> Float:
    """Vol after a vol move (see :class:`VolShock`); broadcasts."""
    sigma = np.asarray(vol, dtype=np.float64)
    m = np.asarray(move, dtype=np.float64)
    if not shock.relative:
        return np.maximum(sigma + m * np.asarray(shock.up, dtype=np.float64), shock.floor)
    dte = np.maximum(np.asarray(dte_days, dtype=np.float64), shock.min_dte_days)
    power = np.where(dte < 30.0, shock.short_power, shock.long_power)
    w = (30.0 / dte) ** power
    up = np.maximum(sigma * (1.0 + np.asarray(shock.up) * m * w), shock.floor_up)
    down = np.maximum(sigma * (1.0 + np.asarray(shock.down) * m * w), shock.floor)
    return np.where(m > 0, up, np.where(m < 0, down, sigma))


def contract_value(
    inst: InstrumentArrays, forward: ArrayLike, vol: ArrayLike, t: ArrayLike
) -> Float:
    """Value of one contract in its settle asset (see the module docstring); broadcasts."""
    col = (slice(None),) + (None,) * (np.ndim(forward) - 1)
    f = np.asarray(forward, dtype=np.float64)
    cs = inst.contract_size[col]
    inv = inst.inverse[col]
    option = black76_price(f, inst.strike[col], t, vol, inst.is_call[col], inv)
    delta_one = np.where(inv, -cs / f, cs * f)
    return np.where(inst.is_option[col], cs * option, delta_one)


def scenario_forward(inst: InstrumentArrays, scen: ScenarioArrays) -> Float:
    """Forward of every (instrument, scenario): ``F * (1 + move)`` (see the module docstring)."""
    col = (slice(None), None)
    rng = inst.price_range[col]
    move = np.where(scen.scaled, scen.price_move * rng, scen.price_move)
    if scen.delta_one_capped is not None:
        capped = scen.delta_one_capped & ~inst.is_option[col]
        move = np.where(capped, np.clip(move, -rng, rng), move)
    return np.asarray(inst.forward[col] * (1.0 + move), dtype=np.float64)


def risk_array(inst: InstrumentArrays, scen: ScenarioArrays, shock: VolShock) -> Float:
    """Weighted profit of one long contract per (instrument, scenario), in the settle asset."""
    col = (slice(None), None)
    f_s = scenario_forward(inst, scen)
    t_s = np.maximum(inst.t[col] - scen.dt, 0.0)
    strike = np.where(inst.is_option, inst.strike, 1.0)[col]
    k = np.log(strike / np.where(inst.sticky_delta[col], f_s, inst.forward[col]))
    vol = smile(inst.atm_vol[col], inst.skew[col], inst.curvature[col], k)
    vol_s = shocked_vol(vol, t_s * 365.0, scen.vol_move, _per_row(shock, col))
    base = contract_value(inst, inst.forward, inst.base_vol(), inst.t)
    return (contract_value(inst, f_s, vol_s, t_s) - base[col]) * scen.weight


def _per_row(shock: VolShock, col: tuple[slice, None]) -> VolShock:
    """The shock with per-instrument parameter arrays turned into columns."""

    def c(x: ArrayLike) -> ArrayLike:
        return np.asarray(x)[col] if np.ndim(x) == 1 else x

    return VolShock(
        shock.relative,
        c(shock.up),
        c(shock.down),
        c(shock.short_power),
        c(shock.long_power),
        c(shock.floor_up),
        c(shock.floor),
        shock.min_dte_days,
    )


def to_numeraire(risk: Float, inst: InstrumentArrays, scen: ScenarioArrays, coin: bool) -> Float:
    """Risk array in USD (``coin`` False) or in the underlying coin, at each scenario's price.

    Coin-settled P&L converts to USD at the shocked forward; USD P&L converts to coin likewise.
    """
    col = (slice(None), None)
    f_s = scenario_forward(inst, scen)
    if coin:
        return np.where(inst.inverse[col], risk, risk / f_s)
    return np.where(inst.inverse[col], risk * f_s, risk)


def position_matrix(
    rows: ArrayLike, instrument: ArrayLike, qty: ArrayLike, shape: tuple[int, int]
) -> sparse.csr_matrix:
    """(rows x instruments) CSR matrix of signed contracts; repeated (row, instrument) pairs add."""
    q = np.asarray(qty, dtype=np.float64)
    return sparse.csr_matrix((q, (np.asarray(rows), np.asarray(instrument))), shape=shape)


def pnl_blocks(
    positions: sparse.csr_matrix, risk: Float, block: int = ROW_BLOCK
) -> Iterator[tuple[slice, Float]]:
    """Scenario P&L ``positions @ risk`` by blocks of ``block`` rows: (rows, dense P&L)."""
    n = positions.shape[0]
    for lo in range(0, n, block):
        part = positions if lo == 0 and n <= block else positions[lo : lo + block]
        yield slice(lo, min(lo + block, n)), np.asarray(part @ risk, dtype=np.float64)


def aggregate(positions: sparse.csr_matrix, risk: Float, block: int = ROW_BLOCK) -> Float:
    """Scenario P&L of every row of ``positions`` (rows x ``risk``'s columns), built by blocks."""
    out = np.empty((positions.shape[0], risk.shape[1]), dtype=np.float64)
    for rows, pnl in pnl_blocks(positions, risk, block):
        out[rows] = pnl
    return out


def worst(pnl: Float) -> tuple[Float, NDArray[np.intp]]:
    """Largest loss (>= 0) and its scenario index along the last axis (P&L > 0 is a gain)."""
    idx = np.argmin(pnl, axis=-1)
    low = np.take_along_axis(pnl, np.expand_dims(idx, -1), axis=-1)[..., 0]
    return np.maximum(-low, 0.0), idx
