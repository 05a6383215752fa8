"""Risk book scaling: 10k -> 100k (-> 1M with --large) accounts, figures as ratios.

Every timing is set against a baseline measured in the same run: the re-margin against one
numpy pass over the position columns, the per-account book time against ``evaluate`` looped
over a sample, the tick against the 10k-account book's tick, the re-margin per position
against the smallest book's.

    .venv/bin/python benchmarks/bench_book.py [--large]
"""

from __future__ import annotations

import argparse

from crossmargin.lab.bench import run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", action="store_true", help="also run 1M accounts")
    args = parser.parse_args()
    sizes = [10_000, 100_000, *([1_000_000] if args.large else [])]
    rows = [run_bench(n) for n in sizes]
    base = rows[0]
    print(
        f"{'accounts':>10} {'positions':>10} {'remargin':>10} {'floor x':>8} {'ns/pos':>7} "
        f"{'vs 10k':>7} {'tick ms':>8} {'holders':>8} {'tick/10k':>9} {'PM scans/s':>11} "
        f"{'vs eval':>8} {'B/pos':>6}"
    )
    for r in rows:
        per_position = r["remargin_s"] / r["positions"]
        print(
            f"{r['accounts']:>10,} {r['positions']:>10,} {r['remargin_s']:>9.3f}s "
            f"{r['floor_ratio']:>8.1f} {1e9 * per_position:>7.0f} "
            f"{per_position / (base['remargin_s'] / base['positions']):>7.2f} "
            f"{r['tick_ms']:>8.2f} {r['tick_holders']:>8,} "
            f"{r['tick_ms'] / base['tick_ms']:>9.2f} {r['pm_account_scans_per_s']:>11.3g} "
            f"{r['speedup_vs_single_account']:>7.1f}x {r['bytes_per_position']:>6.1f}"
        )
    last = rows[-1]
    margins_us = last["book_us_per_account"] - last["crash_us_per_account"]
    print(
        f"per account: evaluate {last['evaluate_us_per_account']:.0f} us; book "
        f"{last['book_us_per_account']:.0f} us, of which crash distance "
        f"{last['crash_us_per_account']:.0f} us; margins and liquidation prices alone "
        f"{last['evaluate_us_per_account'] / margins_us:.0f}x"
        " faster than evaluate"
    )


if __name__ == "__main__":
    main()
