"""``crossmargin margin --json`` on a large document, end to end: a synthetic document of
75,000 accounts (about 16 MB) written to a temporary directory and margined by the command line
in a subprocess (wall clock, median of repeated runs after a warm-up run that also fills the
compiled-code cache). The baseline, timed in the same run, is the parse/serialise floor:
``json.loads`` of the document plus ``json.dumps`` of the command's output, in this process.

    .venv/bin/python benchmarks/bench_document.py [--accounts N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crossmargin.lab.synthetic import synthetic_document

_MAIN = "from crossmargin.cli import main; main()"


def run_cli(path: Path) -> tuple[float, bytes]:
    """Wall-clock seconds of one ``crossmargin margin PATH --json`` and its output."""
    command = [sys.executable, "-c", _MAIN, "margin", str(path), "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=75_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.json"
        path.write_text(json.dumps(synthetic_document(args.accounts, seed=0)))
        raw = path.read_bytes()
        _, output = run_cli(path)
        cli_s = statistics.median(run_cli(path)[0] for _ in range(args.repeat))
    result = json.loads(output)
    floors = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        json.loads(raw)
        json.dumps(result)
        floors.append(time.perf_counter() - start)
    floor_s = statistics.median(floors)
    print(
        f"{args.accounts:,} accounts, {len(raw) / 1e6:.1f} MB in, {len(output) / 1e6:.1f} MB out:"
        f" crossmargin margin --json {cli_s:.2f} s wall = {cli_s / floor_s:.1f}x the"
        f" parse/serialise floor (json.loads of the document + json.dumps of the result,"
        f" {floor_s:.2f} s)"
    )


if __name__ == "__main__":
    main()
