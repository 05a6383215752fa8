"""Properties of the fill formulas on random inputs, float and exact-money alike.

- a fill conserves value: at any later mark, the old position's PnL plus the fill's own PnL
  equals the realized PnL plus the new position's PnL (linear and inverse);
- averaging is order independent: adding two fills in either order gives the same entry;
- each ``Decimal`` formula in :mod:`crossmargin.maths.money` agrees with its float twin to float
  precision (plus the 1e-8 rounding of money amounts).

The expectations are written plainly here from the definitions of PnL (linear ``q c (m - e)``,
inverse ``q c (1/e - 1/m)``).
"""

from __future__ import annotations

import math
from decimal import Decimal as D

from hypothesis import assume, given, settings, strategies as st

from crossmargin.maths.adl import bankruptcy_price_of
from crossmargin.maths.entry import (
    average_entry_of,
    closed_qty_of,
    realized_pnl_of,
    released_margin_of,
)
from crossmargin.maths.fees import trade_fee_of
from crossmargin.maths.funding import funding_payment_of
from crossmargin.maths.money import (
    QUANTUM,
    average_entry,
    bankruptcy_price,
    funding_payment,
    realized_pnl,
    released_margin,
    trade_fee,
)

SETTINGS = settings(max_examples=200, deadline=None)

quantities = st.decimals(D("-1000"), D("1000"), places=3).filter(lambda q: q != 0)
magnitudes = st.decimals(D("0.001"), D("1000"), places=3)
prices = st.decimals(D("0.01"), D("200000"), places=2)
rates = st.decimals(D("-0.01"), D("0.01"), places=6)
sizes = st.sampled_from([D(1), D("0.001"), D(100)])
amounts = st.decimals(D("-1000000"), D("1000000"), places=8)


def pnl(qty: float, size: float, entry: float, mark: float, inverse: bool) -> float:
    """Plain PnL of ``qty`` contracts from ``entry`` to ``mark``."""
    if inverse:
        return qty * size * (1 / entry - 1 / mark)
    return qty * size * (mark - entry)


def close(exact: D, approx: float, scale: float) -> bool:
    """``approx`` within float error of ``scale`` (and one quantum) of ``exact``."""
    return math.isclose(float(exact), approx, rel_tol=1e-12, abs_tol=float(QUANTUM) + 1e-13 * scale)


@SETTINGS
@given(quantities, prices, quantities, prices, prices, sizes, st.booleans())
def test_a_fill_conserves_value(q: D, e: D, f: D, p: D, m: D, size: D, inverse: bool) -> None:
    """Position ``q`` @ ``e``, fill ``f`` @ ``p``, later mark ``m``."""
    qty, entry, fill, price, mark, cs = map(float, (q, e, f, p, m, size))
    realized = realized_pnl_of(qty, cs, entry, fill, price, inverse)
    closed = closed_qty_of(qty, fill)
    left = qty + fill
    if closed == 0:
        new_entry = average_entry_of(qty, entry, fill, price, inverse)
    elif abs(fill) <= abs(qty):
        new_entry = entry
    else:
        new_entry = price
    before = pnl(qty, cs, entry, mark, inverse) + pnl(fill, cs, price, mark, inverse)
    after = realized + (pnl(left, cs, new_entry, mark, inverse) if left != 0 else 0.0)
    legs = [
        abs(x) * cs * (1 / y + 1 / mark if inverse else y + mark)
        for x, y in ((qty, entry), (fill, price))
    ]
    assert math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-9 * sum(legs))


@SETTINGS
@given(magnitudes, prices, magnitudes, prices, magnitudes, prices, st.booleans(), st.booleans())
def test_averaging_is_order_independent(
    q: D, e: D, a: D, pa: D, b: D, pb: D, short: bool, inverse: bool
) -> None:
    """``q`` @ ``e`` grown by ``a`` @ ``pa`` then ``b`` @ ``pb``, or ``b`` first: one entry."""
    sign = -1.0 if short else 1.0
    qty, add1, add2 = sign * float(q), sign * float(a), sign * float(b)
    one = average_entry_of(qty, float(e), add1, float(pa), inverse)
    one = average_entry_of(qty + add1, one, add2, float(pb), inverse)
    two = average_entry_of(qty, float(e), add2, float(pb), inverse)
    two = average_entry_of(qty + add2, two, add1, float(pa), inverse)
    assert math.isclose(one, two, rel_tol=1e-12)
    if not inverse:
        exact = average_entry(D(sign) * q, e, D(sign) * a, pa)
        exact = average_entry(D(sign) * (q + a), exact, D(sign) * b, pb)
        other = average_entry(D(sign) * q, e, D(sign) * b, pb)
        other = average_entry(D(sign) * (q + b), other, D(sign) * a, pa)
        assert abs(exact - other) <= 2 * QUANTUM


@SETTINGS
@given(quantities, sizes, prices, rates)
def test_fee_and_funding_agree_with_their_float_twins(q: D, size: D, p: D, r: D) -> None:
    qty, cs, price, rate = map(float, (q, size, p, r))
    scale = abs(qty) * cs * price
    assert close(trade_fee(q, size, p, r), trade_fee_of(qty, cs, price, False, rate), scale)
    assert close(
        funding_payment(q, size, p, r), funding_payment_of(qty, cs, price, False, rate), scale
    )


@SETTINGS
@given(magnitudes, prices, quantities, prices, sizes, st.booleans())
def test_fill_split_agrees_with_its_float_twin(
    q: D, e: D, f: D, p: D, size: D, short: bool
) -> None:
    qty = -q if short else q
    fq, fe, ff, fp, cs = map(float, (qty, e, f, p, size))
    scale = abs(fq) * cs * (fe + fp)
    exact = realized_pnl(qty, size, e, f, p)
    assert close(exact, realized_pnl_of(fq, cs, fe, ff, fp, False), scale)
    margin = D(1000)
    assert close(released_margin(margin, qty, f), released_margin_of(1000.0, fq, ff), 1000.0)
    if (qty > 0) == (f > 0):
        exact_entry = average_entry(qty, e, f, p)
        assert close(exact_entry, average_entry_of(fq, fe, ff, fp, False), fe + fp)


@SETTINGS
@given(prices, amounts, quantities, sizes)
def test_bankruptcy_price_agrees_with_its_float_twin(m: D, d: D, q: D, size: D) -> None:
    mark, deficit, qty, cs = map(float, (m, d, q, size))
    approx = bankruptcy_price_of(mark, deficit, qty, cs, False)
    assume(approx > 1.0)
    assert close(bankruptcy_price(m, d, q, size), approx, mark + abs(deficit / (qty * cs)))
