"""Peak resident memory of building and re-margining a synthetic book, against the book's own
bytes, each size in a fresh process.

The baseline is the process's resident memory after the imports and a warm-up on a small
book (the interpreter, numpy, numba and the compiled kernels); the peak is the high-water mark
of resident memory after generating the columns, building the book and re-margining it. The
ratio printed is (peak - baseline) / the book's bytes: it includes the input columns.

    .venv/bin/python benchmarks/bench_memory.py [--accounts 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource
from crossmargin.book.riskbook import RiskBook
from crossmargin.lab.synthetic import synthetic_book, synthetic_market

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

market = synthetic_market(51)
RiskBook(*synthetic_book(market, 1_000, 0, 10.0, 50)).remargin()
base = resident()
params, columns = synthetic_book(market, {accounts}, 0, 10.0, 50)
column_bytes = sum(getattr(columns, n).nbytes for n in (
    "balances", "account", "instrument", "qty", "entry", "isolated", "isolated_margin", "leverage"))
book = RiskBook(params, columns)
book.remargin()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"base": base, "peak": peak, "book": book.nbytes, "columns": column_bytes,
                  "positions": book.positions}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, nargs="+", default=[1_000_000])
    for accounts in parser.parse_args().accounts:
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(accounts=accounts)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out)
        above = r["peak"] - r["base"]
        print(
            f"{accounts:,} accounts, {r['positions']:,} positions: book {r['book'] / 2**20:.0f}"
            f" MiB, input columns {r['columns'] / 2**20:.0f} MiB, peak above baseline"
            f" {above / 2**20:.0f} MiB = {above / r['book']:.2f}x the book's bytes"
            f" (baseline {r['base'] / 2**20:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
