"""The lab commands' shared outputs: rows flattened once, CSV and Parquet round trips, JSON of
the whole result on stdout with file notes on stderr, bad output paths refused up front."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from crossmargin.cli.output import Outputs, emit, flatten, table_rows, write_csv, write_parquet
from crossmargin.lab.report import Report, Section, venue_bars
from crossmargin.maths.status import Status
from crossmargin.model import CrossMarginError


@dataclass(frozen=True)
class Inner:
    low: float
    high: float


@dataclass(frozen=True)
class Row:
    name: str
    count: int
    value: float
    status: Status
    band: Inner
    tags: tuple[str, ...]
    maybe: float | None = None


ROWS = (
    Row("a", 1, 1.5, Status.HEALTHY, Inner(0.0, 2.0), ("x",), None),
    Row("b", 2, math.inf, Status.BANKRUPT, Inner(-1.0, 3.0), (), 4.0),
)


@dataclass(frozen=True)
class Result:
    title: str
    rows: tuple[Row, ...]


def test_flatten_names_nested_columns() -> None:
    assert flatten(ROWS[0]) == {
        "name": "a",
        "count": 1,
        "value": 1.5,
        "status": "healthy",
        "band.low": 0.0,
        "band.high": 2.0,
        "tags": '["x"]',
        "maybe": None,
    }
    assert flatten(ROWS[1])["value"] is None


def test_csv_round_trip(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rows.csv", ROWS)
    with path.open(newline="", encoding="utf-8") as handle:
        back = list(csv.DictReader(handle))
    expected = table_rows(ROWS)
    assert [list(r) for r in back] == [list(r) for r in expected]
    for got, want in zip(back, expected, strict=True):
        for key, value in want.items():
            if value is None:
                assert got[key] == ""
            elif isinstance(value, float):
                assert float(got[key]) == value
            else:
                assert got[key] == str(value)


def test_parquet_round_trip_keeps_types(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "rows.parquet", ROWS)
    table = pq.read_table(path)
    assert table.to_pylist() == table_rows(ROWS)
    assert str(table.schema.field("count").type) == "int64"
    assert str(table.schema.field("maybe").type) == "double"


def test_parquet_mixed_int_and_float_column_is_float(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "m.parquet", [{"v": 1}, {"v": 2.5}, {"v": None}])
    assert pq.read_table(path).to_pylist() == [{"v": 1.0}, {"v": 2.5}, {"v": None}]


def test_emit_json_stdout_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = Result("t", ROWS)
    outputs = Outputs(
        True, tmp_path / "r.csv", tmp_path / "r.parquet", tmp_path / "r.html", tmp_path / "png"
    )
    outputs.check()
    report = Report("t", (Section("bars", venue_bars(["a"], {"IM": [1.0]})),))
    emit(result, outputs, rows=result.rows, table=lambda: print("TABLE"), report=lambda: report)
    out, err = capsys.readouterr()
    assert json.loads(out)["rows"][1]["status"] == "bankrupt"
    assert "TABLE" not in out
    for name in ("r.csv", "r.parquet", "r.html", "png/venue-comparison.png"):
        assert (tmp_path / name).is_file()
        assert str(tmp_path / name) in err.replace("\n", "")


def test_emit_table_without_files(capsys: pytest.CaptureFixture[str]) -> None:
    emit(Result("t", ()), Outputs(), rows=(), table=lambda: print("TABLE"))
    assert capsys.readouterr().out == "TABLE\n"


def test_bad_outputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CrossMarginError, match="csv: no such folder"):
        Outputs(csv=tmp_path / "missing" / "r.csv").check()
    with pytest.raises(CrossMarginError, match="report: is a folder"):
        Outputs(report=tmp_path).check()
    (tmp_path / "file").write_text("")
    with pytest.raises(CrossMarginError, match="png: not a folder"):
        Outputs(png=tmp_path / "file").check()
    with pytest.raises(CrossMarginError, match="report: this command has no report"):
        emit(None, Outputs(report=tmp_path / "r.html"), rows=(), table=lambda: None)
