"""Seeded synthetic books for tests and benchmarks, on the bundled Binance USDⓈ-M rulebook.

Shapes follow what exchange books look like: account sizes are Pareto distributed (a few
whales, many small accounts), a handful of instruments hold most positions (Zipf), sides are
mixed and about one position in ten is isolated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crossmargin.book.riskbook import BookColumns, BookParams
from crossmargin.model import CrossMarginError, Instrument, Market
from crossmargin.rules import load_rulebook

__all__ = [
    "REFERENCE_PRICES",
    "synthetic_book",
    "synthetic_document",
    "synthetic_market",
    "synthetic_recipe",
]

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
_CHUNK = 16_384


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
    lo: int = 0,
    hi: int | None = None,
) -> tuple[BookParams, BookColumns]:
    """Accounts ``lo`` to ``hi`` (default all) of a book of ``accounts`` accounts with about
    ``mean_positions`` positions each (one per symbol), re-indexed from 0.

    The number of positions is geometric (capped at the number of instruments); which
    instruments an account holds follows Zipf weights, drawn without replacement.

    Equity (USDT) is Pareto(1.5) from 1,000; gross leverage is lognormal around 3x, spread over
    the account's positions; entries are within a few percent of the mark; 10% of positions
    are isolated with margin at 10x; 10% of accounts hold part of their equity in BTC. Only
    the first ``used`` instruments (default all) are held.

    Each run of 16,384 accounts draws from its own seeded stream, so any range of accounts
    (a shard, built where it is used) equals that slice of the whole book; the columns are
    allocated once at their final size and filled run by run.
    """
    stop = accounts if hi is None else hi
    if not 0 <= lo <= stop <= accounts:
        raise CrossMarginError("hi", f"need 0 <= lo <= hi <= {accounts}, got {lo}, {stop}")
    params = BookParams.from_market(market, ["BTC"])
    n_inst = len(params.symbols) if used is None else min(used, len(params.symbols))
    first, last = lo // _CHUNK, -(-stop // _CHUNK)
    counts = [
        np.minimum(
            np.random.default_rng([seed, c, 0]).geometric(
                1.0 / mean_positions, min(_CHUNK, accounts - c * _CHUNK)
            ),
            n_inst,
        )
        for c in range(first, last)
    ]
    per_account = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    skip = lo - first * _CHUNK
    kept = per_account[skip : skip + stop - lo]
    total = int(kept.sum())
    n = stop - lo
    out = BookColumns(
        account_ids=tuple(f"acct-{k}" for k in range(lo, stop)),
        balances=np.zeros((n, len(params.assets))),
        account=np.empty(total, dtype=np.int32),
        instrument=np.empty(total, dtype=np.int32),
        qty=np.empty(total),
        entry=np.empty(total),
        isolated=np.empty(total, dtype=bool),
        isolated_margin=np.empty(total),
        leverage=np.full(total, np.nan),
    )
    filled = 0
    for c, count in zip(range(first, last), counts, strict=True):
        rng = np.random.default_rng([seed, c, 1])
        chunk_lo = c * _CHUNK
        owner, inst, columns = _chunk(rng, params, count, n_inst)
        a_lo, a_hi = max(lo, chunk_lo), min(stop, chunk_lo + len(count))
        take = (owner >= a_lo - chunk_lo) & (owner < a_hi - chunk_lo)
        k = int(take.sum())
        rows = slice(filled, filled + k)
        out.account[rows] = owner[take] + (chunk_lo - lo)
        out.instrument[rows] = inst[take]
        for name in ("qty", "entry", "isolated", "isolated_margin"):
            getattr(out, name)[rows] = columns[name][take]
        out.balances[a_lo - lo : a_hi - lo] = columns["balances"][a_lo - chunk_lo : a_hi - chunk_lo]
        filled += k
    return params, out


def synthetic_recipe(
    market: Market,
    accounts: int,
    seed: int = 0,
    mean_positions: float = 4.0,
    used: int | None = None,
) -> Callable[[int, int], tuple[BookParams, BookColumns]]:
    """``recipe(lo, hi)``: accounts ``lo`` to ``hi`` of that :func:`synthetic_book` (it pickles,
    so a Dask worker can build its own shard)."""
    return functools.partial(synthetic_book, market, accounts, seed, mean_positions, used)


def synthetic_document(accounts: int, seed: int = 0, mean_positions: float = 2.0) -> dict[str, Any]:
    """A portfolio document (decoded JSON) of ``accounts`` synthetic accounts on the bundled
    binance-usdm rulebook and its six markets (about 215 bytes per account as JSON at the
    default size: 75,000 accounts make a 16 MB document)."""
    market = synthetic_market(6)
    params, columns = synthetic_book(market, accounts, seed, mean_positions)
    order = np.argsort(columns.account, kind="stable")
    bounds = np.searchsorted(columns.account[order], np.arange(accounts + 1))
    rows = []
    for a in range(accounts):
        balances = {
            params.assets[k]: _short(v)
            for k, v in enumerate(columns.balances[a].tolist())
            if v != 0.0
        }
        positions: list[dict[str, Any]] = []
        for j in order[bounds[a] : bounds[a + 1]].tolist():
            position: dict[str, Any] = {
                "symbol": params.symbols[int(columns.instrument[j])],
                "qty": _short(columns.qty[j]),
                "entry_price": _short(columns.entry[j]),
            }
            if columns.isolated[j]:
                position["margin_mode"] = "isolated"
                position["isolated_margin"] = _short(columns.isolated_margin[j])
            positions.append(position)
        rows.append({"id": columns.account_ids[a], "balances": balances, "positions": positions})
    return {"rulebook": "binance-usdm", "prices": dict(market.prices), "accounts": rows}


def _short(value: float) -> float:
    """``value`` to 8 significant digits (a document's numbers as a venue would print them)."""
    return float(f"{float(value):.8g}")


def _chunk(
    rng: np.random.Generator, params: BookParams, counts: NDArray[np.int64], instruments: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], dict[str, NDArray[np.generic]]]:
    """One run of accounts holding ``counts`` positions each: owners (from 0), instruments
    and the other columns, sorted by owner then instrument."""
    accounts = len(counts)
    log_weight = -1.2 * np.log(np.arange(1, instruments + 1))
    keys = log_weight + rng.gumbel(size=(accounts, instruments))
    ranked = np.argsort(-keys, axis=1)
    take = np.arange(instruments) < counts[:, None]
    rows = np.broadcast_to(np.arange(accounts)[:, None], ranked.shape)
    held = np.sort(rows[take] * instruments + ranked[take])
    owner, inst = held // instruments, held % instruments
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
    balances[:, params.currency] = np.where(in_btc, 0.5, 1.0) * equity
    btc = params.assets.index("BTC")
    balances[:, btc] = np.where(in_btc, 0.5 * equity / REFERENCE_PRICES["BTC"], 0.0)
    columns: dict[str, NDArray[np.generic]] = {
        "qty": qty,
        "entry": mark * np.exp(0.03 * rng.standard_normal(len(owner))),
        "isolated": isolated,
        "isolated_margin": np.where(isolated, notional / 10.0, 0.0),
        "balances": balances,
    }
    return owner, inst, columns
