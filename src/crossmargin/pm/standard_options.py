"""Standard (non-portfolio) margin of options, per unit of underlying (venues.md 3.2 and 5.3).

In coin per unit of underlying, with ``U`` the underlying price, ``mark`` the option value in
coin and ``OTM = max(K - U, 0)`` for calls, ``max(U - K, 0)`` for puts:

    short IM = max(im_floor, im_base - OTM / U) x factor + mark
    short MM = mm_rate x factor + mark                      (call)
             = max(mm_rate, mm_rate x mark) x factor + mark (put)
    short put IM = max(IM, MM) when ``put_im_at_least_mm`` (Deribit)
    long IM = MM = 0 (the premium is paid up front and is the most a long can lose)

Deribit: im_base 0.15, im_floor 0.10, mm_rate 0.075; OKX: 0.15, 0.10 and c = mm_rate. A linear
(USD-settled) option's margin is the coin amount times ``U``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossmargin.model.checks import finite

__all__ = ["option_margin_rates", "standard_option_margin"]

Float = NDArray[np.float64]


def option_margin_rates(
    underlying: ArrayLike,
    strike: ArrayLike,
    mark_coin: ArrayLike,
    is_call: ArrayLike,
    params: Mapping[str, Any],
) -> tuple[Float, Float]:
    """Short-option IM and MM in coin per unit of underlying (see the module docstring)."""
    u = np.asarray(underlying, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    mark = np.asarray(mark_coin, dtype=np.float64)
    call = np.asarray(is_call, dtype=bool)
    p = {
        key: finite(f"standard_options.{key}", params[key])
        for key in ("im_base", "im_floor", "mm_rate", "factor")
    }
    otm = np.where(call, np.maximum(k - u, 0.0), np.maximum(u - k, 0.0))
    im = np.maximum(p["im_floor"], p["im_base"] - otm / u) * p["factor"] + mark
    c = p["mm_rate"]
    mm = np.where(call, c, np.maximum(c, c * mark)) * p["factor"] + mark
    if params.get("put_im_at_least_mm", False):
        im = np.where(call, im, np.maximum(im, mm))
    return im, mm


def standard_option_margin(
    qty: ArrayLike,
    contract_size: ArrayLike,
    underlying: ArrayLike,
    strike: ArrayLike,
    value: ArrayLike,
    is_call: ArrayLike,
    inverse: ArrayLike,
    params: Mapping[str, Any],
) -> tuple[Float, Float]:
    """IM and MM of option positions in their settle asset; ``value`` is per unit of underlying
    in the settle asset (coin for inverse, USD for linear). Longs need nothing further."""
    u = np.asarray(underlying, dtype=np.float64)
    inv = np.asarray(inverse, dtype=bool)
    mark = np.where(inv, value, np.asarray(value, dtype=np.float64) / u)
    im, mm = option_margin_rates(u, strike, mark, is_call, params)
    units = np.where(np.asarray(qty) < 0, -np.asarray(qty) * np.asarray(contract_size), 0.0)
    scale = np.where(inv, 1.0, u)
    return units * im * scale, units * mm * scale
