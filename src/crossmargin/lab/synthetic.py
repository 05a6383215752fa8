"""Seeded synthetic books for tests and benchmarks, on the bundled Binance USDⓈ-M rulebook.

Shapes follow what exchange books look like: account sizes are Pareto distributed (a few
whales, many small accounts), a handful of instruments hold most positions (Zipf), sides are
mixed and about one position in ten is isolated.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crossmargin.book.riskbook import BookColumns, BookParams
from crossmargin.model import Instrument, Market
from crossmargin.rules import load_rulebook

__all__ = ["REFERENCE_PRICES", "synthetic_book", "synthetic_market"]

REFERENCE_PRICES = {
    "BTCUSDT": 60_000.0,
    "ETHUSDT": 3_000.0,
    "SOLUSDT": 150.0,
    "BNBUSDT": 550.0,
    "XRPUSDT": 0.6,
    "DOGEUSDT": 0.15,
    "BTC": 60_000.0,
    "ETH": 3_000.0,
}
"""Round reference marks (USDT) for the synthetic market; not a market snapshot."""
_CHUNK = 65_536


def synthetic_market(instruments: int = 6) -> Market:
    """The binance-usdm rulebook at round prices; beyond its six markets, copies of their
    bracket schedules under made-up symbols (``SYN007USDT``) fill ``instruments`` markets."""
    rulebook = load_rulebook("binance-usdm")
    base = [i for i in rulebook.instruments.values() if i.is_derivative]
    chosen: dict[str, Instrument] = {}
    prices = {k: v for k, v in REFERENCE_PRICES.items() if k not in rulebook.instruments}
    for k in range(instruments):
        model = base[k % len(base)]
        if k < len(base):
            chosen[model.symbol] = model
            prices[model.symbol] = REFERENCE_PRICES.get(model.symbol, 1.0)
            continue
        symbol = f"SYN{k:03d}USDT"
        chosen[symbol] = Instrument(
            symbol, model.kind, f"SYN{k:03d}", model.quote, model.settle, model.margin
        )
        prices[symbol] = float(10.0 ** (k % 5))
    return Market(
        chosen, prices, rulebook.currency, rulebook.collateral, rulebook.margin_call_ratio
    )


def synthetic_book(
    market: Market,
    accounts: int,
    seed: int = 0,
    mean_positions: float = 4.0,
    used: int | None = None,
) -> tuple[BookParams, BookColumns]:
    """``accounts`` accounts with about ``mean_positions`` positions each (one per symbol).

    The number of positions is geometric (capped at the number of instruments); which
    instruments an account holds follows Zipf weights, drawn without replacement.

    Equity (USDT) is Pareto(1.5) from 1,000; gross leverage is lognormal around 3x, spread over
    the account's positions; entries are within a few percent of the mark; 10% of positions
    are isolated with margin at 10x; 10% of accounts hold part of their equity in BTC. Only
    the first ``used`` instruments (default all) are held.
    """
    rng = np.random.default_rng(seed)
    params = BookParams.from_market(market, ["BTC"])
    n_inst = len(params.symbols) if used is None else min(used, len(params.symbols))
    owner, inst = _holdings(rng, accounts, n_inst, mean_positions)
    equity = (rng.pareto(1.5, accounts) + 1.0) * 1_000.0
    leverage = rng.lognormal(np.log(3.0), 0.6, accounts)
    weight = rng.exponential(size=len(owner))
    weight /= np.bincount(owner, weights=weight, minlength=accounts)[owner]
    notional = equity[owner] * leverage[owner] * weight
    mark = params.mark[inst]
    qty = (
        np.where(rng.random(len(owner)) < 0.55, 1.0, -1.0)
        * notional
        / (mark * params.contract_size[inst])
    )
    isolated = rng.random(len(owner)) < 0.1
    balances = np.zeros((accounts, len(params.assets)))
    in_btc = rng.random(accounts) < 0.1
    btc = params.assets.index("BTC")
    balances[:, params.currency] = np.where(in_btc, 0.5, 1.0) * equity
    balances[:, btc] = np.where(in_btc, 0.5 * equity / REFERENCE_PRICES["BTC"], 0.0)
    columns = BookColumns(
        account_ids=tuple(f"acct-{k}" for k in range(accounts)),
        balances=balances,
        account=owner.astype(np.int32),
        instrument=inst.astype(np.int32),
        qty=qty,
        entry=mark * np.exp(0.03 * rng.standard_normal(len(owner))),
        isolated=isolated,
        isolated_margin=np.where(isolated, notional / 10.0, 0.0),
        leverage=np.full(len(owner), np.nan),
    )
    return params, columns


def _holdings(
    rng: np.random.Generator, accounts: int, instruments: int, mean_positions: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Owner and instrument of every position, sorted by owner then instrument.

    Each account takes its first ``count`` instruments in the order of Zipf-weighted Gumbel
    keys, which samples without replacement in proportion to the weights.
    """
    log_weight = -1.2 * np.log(np.arange(1, instruments + 1))
    counts = np.minimum(rng.geometric(1.0 / mean_positions, accounts), instruments)
    owners, insts = [], []
    for lo in range(0, accounts, _CHUNK):
        n = counts[lo : lo + _CHUNK]
        keys = log_weight + rng.gumbel(size=(len(n), instruments))
        ranked = np.argsort(-keys, axis=1)
        take = np.arange(instruments) < n[:, None]
        rows = np.broadcast_to(np.arange(lo, lo + len(n))[:, None], ranked.shape)
        held = np.sort(rows[take] * instruments + ranked[take])
        owners.append(held // instruments)
        insts.append(held % instruments)
    return np.concatenate(owners), np.concatenate(insts)
