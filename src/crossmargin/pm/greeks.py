"""Greeks per contract and their sums per account, underlying and expiry, in coin and USD.

Per contract, with ``F`` the underlying's forward and values in the settle asset:

- ``delta_coin`` = F * dValue/dF expressed in coin: the exposure in units of the underlying.
  Linear: ``cs * N(d1)`` (``cs`` for a future); coin-settled option: ``cs * (delta - V / F)``
  (Deribit's cash-adjusted delta); inverse future ``cs / F``. ``delta_usd = delta_coin * F``.
- ``gamma``: Black-76 gamma of the USD value, coin per USD (0 for delta-one).
- ``vega_usd`` per vol point (0.01), ``theta_usd`` per calendar day; ``*_coin`` = USD / F.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from crossmargin.maths.black76 import greeks as black76_greeks
from crossmargin.maths.scenarios import InstrumentArrays

__all__ = ["GREEK_FIELDS", "aggregate_greeks", "contract_greeks"]

Float = NDArray[np.float64]
GREEK_FIELDS = (
    "delta_coin",
    "delta_usd",
    "gamma",
    "vega_usd",
    "vega_coin",
    "theta_usd",
    "theta_coin",
)


def contract_greeks(inst: InstrumentArrays) -> dict[str, Float]:
    """Greeks of one long contract of each instrument (see the module docstring)."""
    f, cs = inst.forward, inst.contract_size
    strike = np.where(inst.is_option, inst.strike, f)
    t = np.where(inst.is_option, inst.t, 1.0)
    lin = black76_greeks(f, strike, t, inst.base_vol(), inst.is_call)
    inv = black76_greeks(f, strike, t, inst.base_vol(), inst.is_call, inverse=True)
    opt = inst.is_option
    option_delta = np.where(inst.inverse, f * inv.delta, lin.delta)
    delta_coin = cs * np.where(opt, option_delta, np.where(inst.inverse, 1.0 / f, 1.0))
    vega = np.where(opt, cs * lin.vega / 100.0, 0.0)
    theta = np.where(opt, cs * lin.theta / 365.0, 0.0)
    return {
        "delta_coin": delta_coin,
        "delta_usd": delta_coin * f,
        "gamma": np.where(opt, cs * lin.gamma, 0.0),
        "vega_usd": vega,
        "vega_coin": vega / f,
        "theta_usd": theta,
        "theta_coin": theta / f,
    }


def aggregate_greeks(
    underlyings: Sequence[str],
    expiries: Sequence[str | None],
    qty: Float,
    per_contract: dict[str, Float],
) -> dict[str, dict[str, dict[str, float]]]:
    """Sums of ``qty * greek`` per underlying, with a ``total`` and one entry per expiry
    (``perpetual`` for undated rows)."""
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for i, (u, e) in enumerate(zip(underlyings, expiries, strict=True)):
        for key in ("total", e or "perpetual"):
            bucket = out[u].setdefault(key, dict.fromkeys(GREEK_FIELDS, 0.0))
            for name in GREEK_FIELDS:
                bucket[name] += float(qty[i] * per_contract[name][i])
    return dict(out)
