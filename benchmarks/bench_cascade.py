"""A 100k-account, 900-step liquidation cascade (the bundled 10 October 2025 case on
Binance and Hyperliquid, with a throughput cap low enough that liquidations go on to the
horizon), every figure a ratio to baselines timed in the same run:

- the floor: the same books re-margined at the same marks step by step (``apply_prices`` on
  each venue's book along the cascade's own mark path) with no liquidation logic: what the
  cascade costs beyond re-margining is its liquidation, fund and ADL work;
- naive: :func:`crossmargin.health.evaluate` account by account, every step, on a sample of
  accounts, scaled to the whole book and horizon (re-margin only, no liquidation): what a
  per-account loop over the core engine would cost for the re-margining alone.

The cascade runs once after a warm-up run on a small book (it takes tens of seconds); the
floor and the naive sample are medians of three. The run is one process: every step couples
all accounts through the price (the index of all venues' forced flow), so a sharded run
(``crossmargin.lab.distributed``) would need a barrier and a gather of the flows per step,
900 round trips, while the liquidations mutate the shards' books; on a two-core machine that
costs more than it spreads.

    .venv/bin/python benchmarks/bench_cascade.py [--accounts N] [--steps N]
"""

from __future__ import annotations

import argparse
import time

from crossmargin.book.riskbook import RiskBook
from crossmargin.health import evaluate
from crossmargin.lab.bench import median_time
from crossmargin.lab.cascade import load_config, run_cascade, synthetic_population
from crossmargin.rules.venue import load_venue

SAMPLE_ACCOUNTS = 300
SAMPLE_STEPS = 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--throughput", type=float, default=0.00008)
    args = parser.parse_args()
    config, _ = load_config(
        "oct-2025", accounts=args.accounts, steps=args.steps, throughput=args.throughput
    )
    run_cascade(load_config("oct-2025", accounts=2_000, steps=50)[0])
    start = time.perf_counter()
    result = run_cascade(config)
    cascade_s = time.perf_counter() - start

    total = sum(v.share for v in config.venues)
    books = []
    for k, spec in enumerate(config.venues):
        rules = load_venue(spec.rules)
        n = max(1, round(config.accounts * spec.share / total))
        market, params, columns = synthetic_population(rules, config, n, config.seed * 1000 + k)
        books.append((params, columns, market))
    paths = [v.marks["BTC"] for v in result.venues]

    built = [(RiskBook(params, columns), params.symbols[0]) for params, columns, _ in books]

    def floor() -> None:
        for (book, symbol), path in zip(built, paths, strict=True):
            for price in path:
                book.apply_prices({symbol: price})

    floor_s = median_time(floor, 3)

    params, columns, market = books[0]
    sample = columns.to_accounts(params, range(min(SAMPLE_ACCOUNTS, len(columns.account_ids))))
    symbol = params.symbols[0]
    steps_sampled = paths[0][:SAMPLE_STEPS]

    def naive() -> None:
        for price in steps_sampled:
            at = market.with_prices({symbol: price})
            for account in sample:
                evaluate(account, at)

    per_account_step = median_time(naive, 3) / (len(sample) * len(steps_sampled))
    accounts = sum(v.accounts for v in result.venues)
    naive_s = per_account_step * accounts * result.steps

    liquidated = sum(v.liquidated_accounts for v in result.venues)
    print(
        f"cascade: {accounts:,} accounts on {len(result.venues)} venues, {result.steps} steps "
        f"({result.rounds} liquidating, {liquidated:,} accounts liquidated, BTC index low "
        f"{result.drawdown['BTC']:.1%}): {cascade_s:.2f} s, "
        f"{accounts * result.steps / cascade_s / 1e6:.2f} M account-steps/s"
    )
    print(
        f"floor (same books re-margined at the same marks each step, no liquidation): "
        f"{floor_s:.2f} s; cascade / floor = {cascade_s / floor_s:.2f}x"
    )
    print(
        f"naive (evaluate per account per step, {len(sample)} accounts x "
        f"{len(steps_sampled)} steps, scaled): {naive_s:.0f} s; "
        f"naive / cascade = {naive_s / cascade_s:.0f}x"
    )


if __name__ == "__main__":
    main()
