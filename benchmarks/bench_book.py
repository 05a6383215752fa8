"""Risk book scaling: 10k -> 100k (-> 1M with --large) accounts, every figure a ratio to a
baseline timed in the same run, medians after warm-up runs (the cold start printed apart).

Baselines (see ``baselines.py``, each checked against the book's figures first):

- the fused floor: one compiled pass over the bytes a re-margin reads and writes;
- plain numpy, one pass per quantity then one ``bincount`` per account sum;
- per-position objects in the style of nautilus_trader's margin accounts (timed on a sample of
  positions, compared per position);
- ``evaluate`` looped over a sample of accounts, at the same crash-distance resolution.

    .venv/bin/python benchmarks/bench_book.py [--large]
"""

from __future__ import annotations

import argparse

import numpy as np

from baselines import numpy_multipass, per_position_margin, position_objects
from crossmargin.book.riskbook import RiskBook
from crossmargin.lab.bench import median_time, run_bench
from crossmargin.lab.synthetic import synthetic_book, synthetic_market
from crossmargin.maths.risk import CROSS_MM

SAMPLE_POSITIONS = 200_000


def baselines(accounts: int, remargin_s: float) -> dict[str, float]:
    """The numpy multi-pass and per-position baselines on the same synthetic book (without
    the tick probe), each checked against the book's maintenance margins first."""
    params, columns = synthetic_book(synthetic_market(51), accounts, 0, 10.0, 50)
    book = RiskBook(params, columns)
    sums = numpy_multipass(params, columns)
    np.testing.assert_allclose(sums[2], book._acc[:accounts, CROSS_MM], rtol=1e-9, atol=1e-6)
    numpy_s = median_time(lambda: numpy_multipass(params, columns), 3)
    rows = slice(0, min(SAMPLE_POSITIONS, len(columns.qty)))
    objects = position_objects(params, columns, rows)
    per_account = per_position_margin(objects)
    first = int(columns.account[0])
    last = int(columns.account[rows.stop - 1])
    if first != last:
        assert abs(per_account[first][2] - sums[2][first]) <= 1e-9 * max(1.0, sums[2][first])
    objects_s = median_time(lambda: per_position_margin(objects), 3) / len(objects)
    book_ns = 1e9 * remargin_s / book.positions
    return {
        "numpy_s": numpy_s,
        "numpy_vs_book": numpy_s / remargin_s,
        "objects_ns": 1e9 * objects_s,
        "objects_vs_book": 1e9 * objects_s / book_ns,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", action="store_true", help="also run 1M accounts")
    args = parser.parse_args()
    sizes = [10_000, 100_000, *([1_000_000] if args.large else [])]
    rows = [run_bench(n) for n in sizes]
    print(
        f"cold start (first build and kernel calls in a process): {rows[0]['cold_start_s']:.2f} s"
    )
    print(
        f"{'accounts':>10} {'positions':>10} {'remargin':>9} {'/floor':>7} {'ns/pos':>7} "
        f"{'liq M/s':>8} {'tick ms':>8} {'PM scans/s':>11} {'eval us':>8} {'eval/book':>9} "
        f"{'B/pos':>6}"
    )
    for r in rows:
        print(
            f"{r['accounts']:>10,} {r['positions']:>10,} {r['remargin_s']:>8.3f}s "
            f"{r['remargin_vs_floor']:>7.2f} {r['remargin_ns_per_position']:>7.1f} "
            f"{r['liquidation_positions_per_s'] / 1e6:>8.1f} {r['tick_ms']:>8.3f} "
            f"{r['pm_account_scans_per_s']:>11.3g} {r['evaluate_10_positions_us']:>8.0f} "
            f"{r['evaluate_vs_book']:>8.1f}x {r['bytes_per_position']:>6.1f}"
        )
    last = rows[-1]
    extra = baselines(last["accounts"], last["remargin_s"])
    print(
        "columns: /floor = full re-margin over one fused compiled pass over the bytes it reads"
        " and writes; liq M/s = positions per second of liquidation prices (one core); eval us ="
        " one evaluate() of a 10-position account; eval/book = evaluate() per account over the"
        " book's per-account margins, liquidation prices and crash distance (both at"
        f" {last['crash_points']} points, step {last['crash_step']})"
    )
    print(
        f"at {last['accounts']:,} accounts: plain numpy multi-pass {extra['numpy_s']:.3f} s ="
        f" {extra['numpy_vs_book']:.1f}x the book's full re-margin; per-position objects"
        f" {extra['objects_ns']:.0f} ns per position = {extra['objects_vs_book']:.0f}x the"
        " book's re-margin per position"
    )


if __name__ == "__main__":
    main()
