"""Trading fee on a fill: ``fee = notional x rate``, in the settle asset.

Notional is the fill's position value at the fill price (linear: ``|qty| * contract_size *
price``; inverse: ``|qty| * contract_size / price``, coin), so a fee is >= 0 for a rate >= 0 and
a negative (maker rebate) rate pays the trader. The exact-money form the ledger charges is
:func:`crossmargin.maths.money.trade_fee`.
"""

from __future__ import annotations

from numba import njit

from crossmargin.maths.pnl import notional_of

__all__ = ["trade_fee_of"]


@njit(cache=True, inline="always", error_model="numpy")  # type: ignore[untyped-decorator]
def trade_fee_of(
    qty: float, contract_size: float, price: float, inverse: bool, rate: float
) -> float:
    """Fee of filling ``qty`` contracts at ``price``: notional times ``rate`` (a fraction)."""
    return notional_of(qty, contract_size, price, inverse) * rate  # type: ignore[no-any-return]
