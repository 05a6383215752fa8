"""The ledger's commands as plain values, for :meth:`crossmargin.ledger.Ledger.execute` (many in
one transaction) and :class:`crossmargin.ledger.writer.Writer` (a background group commit).

Each carries its idempotency ``key``; the fields are those of the :class:`Ledger` method of the
same name (``Deposit`` is :meth:`Ledger.deposit`, and so on), checked when the command runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossmargin.ledger.limits import Number

__all__ = ["Command", "Deposit", "DepositInsurance", "Fund", "Price", "Trade", "Withdraw"]


@dataclass(frozen=True)
class Deposit:
    """Credit ``amount`` to ``account`` (opened on first use)."""

    key: str
    account: str
    amount: Number


@dataclass(frozen=True)
class DepositInsurance:
    """Pay ``amount`` from outside into the insurance fund."""

    key: str
    amount: Number


@dataclass(frozen=True)
class Withdraw:
    """Pay ``amount`` out of ``account``."""

    key: str
    account: str
    amount: Number


@dataclass(frozen=True)
class Trade:
    """Fill ``qty`` contracts (> 0 buys) of ``symbol`` at ``price`` (default: the mark)."""

    key: str
    account: str
    symbol: str
    qty: Number
    price: Number | None = None
    maker: bool = False
    margin_mode: str = "cross"
    leverage: Number | None = None
    price_source: str | None = None


@dataclass(frozen=True)
class Price:
    """Record a mark price of ``symbol`` and liquidate at it."""

    key: str
    symbol: str
    price: Number


@dataclass(frozen=True)
class Fund:
    """Settle one funding interval of ``symbol`` at ``rate``."""

    key: str
    symbol: str
    rate: Number


Command = Deposit | DepositInsurance | Withdraw | Trade | Price | Fund
