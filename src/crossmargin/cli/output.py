"""What every lab command writes: the table or ``--json``, ``--csv``, ``--parquet``,
``--report`` (offline HTML) and ``--png`` (the report's charts), plus ``--seed`` and the
progress bar.

A command declares the shared options with the ``Annotated`` aliases below, gathers them in
:class:`Outputs` and hands its typed result to :func:`emit`::

    def simulate(..., seed: SeedOption = 0, as_json: JsonOption = False,
                 csv: CsvOption = None, parquet: ParquetOption = None,
                 report: ReportOption = None, png: PngOption = None) -> None:
        outputs = Outputs(as_json, csv, parquet, report, png)
        outputs.check()                      # bad paths: error + exit 2 before the work
        result = ...                         # a frozen dataclass
        emit(result, outputs, rows=result.rows, table=lambda: print_it(result),
             report=lambda: build_report(result))

- stdout carries the table, or the JSON of the whole result (``crossmargin.io.results``, the
  one serialiser) with ``--json``; "wrote PATH" notes go to stderr, so ``--json`` output stays
  parseable.
- ``--csv PATH`` and ``--parquet PATH`` write ``rows``: a sequence of dataclasses or mappings,
  one record each, flattened by :func:`flatten` (nested objects become ``outer.inner``
  columns, lists JSON text, enums labels, non-finite floats empty/null). CSV leaves ``None``
  empty; Parquet keeps column types (pyarrow).
- ``--report PATH`` writes ``crossmargin.lab.report.render_html`` of the
  :class:`~crossmargin.lab.report.Report` that ``report()`` builds (called only when asked);
  ``--png DIR`` exports that report's charts as ``DIR/<slug>.png``.
- :func:`progress` is a rich progress bar on stderr, drawn only on a terminal.
"""

from __future__ import annotations

import csv as csv_module
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crossmargin.cli.render import JsonOption, emit_json
from crossmargin.io.results import to_data
from crossmargin.lab.report import Report, export_pngs, write_report
from crossmargin.model import CrossMarginError
from crossmargin.model.extras import needs_extra

__all__ = [
    "CsvOption",
    "JsonOption",
    "Outputs",
    "ParquetOption",
    "PngOption",
    "ReportOption",
    "SeedOption",
    "emit",
    "flatten",
    "progress",
    "table_rows",
    "write_csv",
    "write_parquet",
]

Cell = float | int | str | bool | None

CsvOption = Annotated[
    Path | None, typer.Option("--csv", help="Write the result's rows as CSV to this file.")
]
ParquetOption = Annotated[
    Path | None,
    typer.Option("--parquet", help="Write the result's rows as Parquet to this file."),
]
ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Write an HTML report with interactive plots (opens offline)."),
]
PngOption = Annotated[
    Path | None, typer.Option("--png", help="Export the report's charts as PNG into this folder.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same result).")]

_notes = Console(stderr=True)


@dataclass(frozen=True)
class Outputs:
    """The output options of one command run."""

    as_json: bool = False
    csv: Path | None = None
    parquet: Path | None = None
    report: Path | None = None
    png: Path | None = None

    def check(self) -> None:
        """Each file's folder exists (a CrossMarginError naming the option otherwise), so a
        long run does not fail at its end."""
        for option, path in (("csv", self.csv), ("parquet", self.parquet), ("report", self.report)):
            if path is not None and not path.parent.is_dir():
                raise CrossMarginError(option, f"no such folder: {path.parent}")
            if path is not None and path.is_dir():
                raise CrossMarginError(option, f"is a folder: {path}")
        if self.png is not None and self.png.exists() and not self.png.is_dir():
            raise CrossMarginError("png", f"not a folder: {self.png}")


def flatten(record: Any) -> dict[str, Cell]:
    """One record (a dataclass or mapping) as flat columns: nested objects become
    ``outer.inner`` keys, lists JSON text, everything else as :func:`to_data` renders it."""
    data = to_data(record)
    if not isinstance(data, dict):
        raise TypeError(f"a row must be an object, got {type(record).__name__}")
    out: dict[str, Cell] = {}
    _flatten_into(out, "", data)
    return out


def _flatten_into(out: dict[str, Cell], prefix: str, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten_into(out, f"{name}.", value)
        elif isinstance(value, list):
            out[name] = json.dumps(value, allow_nan=False)
        else:
            out[name] = value


def table_rows(records: Sequence[Any]) -> list[dict[str, Cell]]:
    """:func:`flatten` of every record, every row with every column (missing ones ``None``)."""
    flat = [flatten(r) for r in records]
    columns = list(dict.fromkeys(k for row in flat for k in row))
    return [{c: row.get(c) for c in columns} for row in flat]


def write_csv(path: Path, records: Sequence[Any]) -> Path:
    """``records`` as CSV with a header line; ``None`` is an empty field."""
    rows = table_rows(records)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv_module.writer(handle)
        if rows:
            writer.writerow(rows[0].keys())
        for row in rows:
            writer.writerow(["" if v is None else v for v in row.values()])
    return path


def write_parquet(path: Path, records: Sequence[Any]) -> Path:
    """``records`` as a Parquet table (int columns holding floats become float64)."""
    with needs_extra("lab", "--parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq
    rows = table_rows(records)
    columns = list(rows[0]) if rows else []
    arrays = {}
    for column in columns:
        values = [row[column] for row in rows]
        present = [v for v in values if v is not None]
        mixed_numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in present
        ) and any(isinstance(v, float) for v in present)
        if mixed_numbers:
            values = [None if v is None else float(v) for v in values]
        arrays[column] = pa.array(values)
    pq.write_table(pa.table(arrays), path)
    return path


def emit(
    result: Any,
    outputs: Outputs,
    *,
    rows: Sequence[Any],
    table: Callable[[], None],
    report: Callable[[], Report] | None = None,
) -> None:
    """Print ``result`` (``table()``, or its JSON with ``--json``) and write the files the
    options ask for; ``--report``/``--png`` without a ``report`` builder is an error."""
    if (outputs.report is not None or outputs.png is not None) and report is None:
        raise CrossMarginError("report", "this command has no report")
    if outputs.as_json:
        emit_json(result)
    else:
        table()
    written: list[Path] = []
    if outputs.csv is not None:
        written.append(write_csv(outputs.csv, rows))
    if outputs.parquet is not None:
        written.append(write_parquet(outputs.parquet, rows))
    if report is not None and (outputs.report is not None or outputs.png is not None):
        built = report()
        if outputs.report is not None:
            written.append(write_report(outputs.report, built))
        if outputs.png is not None:
            written.extend(export_pngs(built, outputs.png))
    for path in written:
        _notes.print(f"wrote {path}", highlight=False)


@contextmanager
def progress(label: str) -> Iterator[Progress]:
    """A progress bar on stderr labelled ``label``, drawn only when stderr is a terminal
    (``add_task``/``advance`` as in rich)."""
    terminal = Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=terminal,
        disable=not terminal.is_terminal or not sys.stderr.isatty(),
        transient=True,
    ) as bar:
        yield bar
