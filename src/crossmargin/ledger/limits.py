"""What the ledger accepts: exact decimals within a documented range, and well-formed ids.

Every value is checked before anything is decided or written; a bad one is a
:class:`~crossmargin.model.CrossMarginError` naming the field. Numbers are exact (floats by their
shortest repr), in canonical form (no exponent, no trailing zeros, so equal amounts give equal
command bodies), and within:

========== ================================= ==================
field      range                             decimal places
========== ================================= ==================
amount     0 < amount <= 10^15               8 (the quantum)
price      10^-8 <= price <= 10^9            8
qty        0 < abs(qty) <= 10^9              8
leverage   1 <= leverage <= 1,000            4
rate       abs(rate) <= the venue's cap      12
========== ================================= ==================

so that every amount the ledger derives (notional, PnL, balances) stays far inside the 30
integer digits the tables hold and the 60 digits :data:`DECIMALS` computes with. Account ids
are 1-64 characters of letters, digits and ``_ - . @ +``; idempotency keys 1-200 printable
characters.
"""

from __future__ import annotations

import math
import re
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

from crossmargin.model import CrossMarginError

__all__ = [
    "DECIMALS",
    "MAX_AMOUNT",
    "MAX_PRICE",
    "MAX_QTY",
    "Number",
    "account_id",
    "amount",
    "exact",
    "idempotency_key",
    "leverage",
    "price",
    "quantity",
    "rate",
]

Number = Decimal | int | float | str

DECIMALS = Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
"""The decimal context of every ledger computation: 60 digits, so products of values in range
are exact before they are rounded to the quantum."""

MAX_AMOUNT = Decimal(10) ** 15
MAX_PRICE = Decimal(10) ** 9
MIN_PRICE = Decimal("0.00000001")
MAX_QTY = Decimal(10) ** 9
MAX_LEVERAGE = Decimal(1000)

_ACCOUNT = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")


def exact(path: str, value: Number, places: int, high: Decimal) -> Decimal:
    """``value`` as an exact Decimal with ``abs(value) <= high`` and at most ``places`` decimal
    places, in canonical form."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise CrossMarginError(path, f"must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CrossMarginError(path, f"must be finite, got {value!r}")
        value = repr(value)
    if isinstance(value, str) and len(value) > 100:
        raise CrossMarginError(path, "too long for a number (> 100 characters)")
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise CrossMarginError(path, f"must be a number, got {value!r}") from None
    if not number.is_finite():
        raise CrossMarginError(path, f"must be finite, got {value!r}")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    canonical = Decimal((sign, digits, exponent))
    if canonical.is_zero():
        return Decimal(0)
    if canonical.copy_abs() > high:
        raise CrossMarginError(path, f"must be at most {high:,} in size, got {value}")
    if exponent < -places:
        raise CrossMarginError(path, f"at most {places} decimal places, got {value}")
    return Decimal(format(canonical, "f"))


def amount(path: str, value: Number) -> Decimal:
    """A money amount: > 0, at most :data:`MAX_AMOUNT`, 8 decimal places."""
    number = exact(path, value, 8, MAX_AMOUNT)
    if number <= 0:
        raise CrossMarginError(path, f"must be > 0, got {value!r}")
    return number


def price(path: str, value: Number) -> Decimal:
    """A price: within [:data:`MIN_PRICE`, :data:`MAX_PRICE`], 8 decimal places."""
    number = exact(path, value, 8, MAX_PRICE)
    if number < MIN_PRICE:
        raise CrossMarginError(path, f"must be >= {MIN_PRICE}, got {value!r}")
    return number


def quantity(path: str, value: Number) -> Decimal:
    """A signed number of contracts: not 0, at most :data:`MAX_QTY` in size, 8 places."""
    number = exact(path, value, 8, MAX_QTY)
    if number == 0:
        raise CrossMarginError(path, "must not be 0")
    return number


def leverage(path: str, value: Number) -> Decimal:
    """A chosen leverage: within [1, :data:`MAX_LEVERAGE`], 4 decimal places."""
    number = exact(path, value, 4, MAX_LEVERAGE)
    if number < 1:
        raise CrossMarginError(path, f"must be >= 1, got {value!r}")
    return number


def rate(path: str, value: Number, cap: Decimal) -> Decimal:
    """A funding rate (fraction per interval) within the venue's clamp ``[-cap, cap]``."""
    return exact(path, value, 12, cap)


def account_id(path: str, value: object) -> str:
    """A trader's id: 1-64 letters, digits or ``_ - . @ +``."""
    if not isinstance(value, str) or _ACCOUNT.fullmatch(value) is None:
        raise CrossMarginError(path, f"must be 1-64 letters, digits or _-.@+, got {_shown(value)}")
    return value


def idempotency_key(value: object) -> str:
    """An idempotency key: 1-200 printable characters."""
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
        raise CrossMarginError(
            "key", f"idempotency key must be 1-200 printable characters, got {_shown(value)}"
        )
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
