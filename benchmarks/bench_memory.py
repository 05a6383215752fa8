"""Peak resident memory of building and re-margining a synthetic book, against the book's own
bytes, each size in a fresh process.

The baseline is the process's resident memory after the imports and a warm-up on a small
book (the interpreter, numpy, numba and the compiled kernels); the peak is the high-water mark
of resident memory after generating the columns, building the book and re-margining it.
Printed against the book's bytes: the peak above the memory held once the input columns exist
(what building and re-margining add: the book, its account ids and any temporaries), and the
peak above the baseline (the input columns included).

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
given = resident()
column_bytes = sum(getattr(columns, n).nbytes for n in (
    "balances", "account", "instrument", "qty", "entry", "isolated", "isolated_margin", "leverage"))
book = RiskBook(params, columns)
book.remargin()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
figures = {{"base": base, "given": given, "peak": peak, "book": book.nbytes,
           "columns": column_bytes, "positions": book.positions}}
print(json.dumps(figures))
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
        mib = 2**20
        build = r["peak"] - r["given"]
        whole = r["peak"] - r["base"]
        print(
            f"{accounts:,} accounts, {r['positions']:,} positions: book {r['book'] / mib:.0f}"
            f" MiB, input columns {r['columns'] / mib:.0f} MiB (baseline {r['base'] / mib:.0f}"
            " MiB)"
        )
        print(
            f"  building and re-margining, peak above the columns given: {build / mib:.0f} MiB"
            f" = {build / r['book']:.2f}x the book's bytes"
        )
        print(
            f"  generating the columns too, peak above the baseline: {whole / mib:.0f} MiB"
            f" = {whole / r['book']:.2f}x the book's bytes"
        )


if __name__ == "__main__":
    main()
