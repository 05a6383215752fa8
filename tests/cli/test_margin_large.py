"""``crossmargin margin`` on a large document takes the batched path: the same result as the
one-account path (``evaluate_portfolio``, account by account), JSON unindented."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from crossmargin.app.portfolio import evaluate_portfolio, parse_portfolio
from crossmargin.cli import app
from crossmargin.cli.margin import LARGE_DOCUMENT, evaluate_large
from crossmargin.io.results import to_data
from crossmargin.lab.synthetic import synthetic_document

runner = CliRunner()


def same(a: Any, b: Any, path: str) -> None:
    """Equal data; floats to 1e-12 relative (1e-9 absolute near 0)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{k}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b)) + 1e-9, (path, a, b)
    else:
        assert a == b or (isinstance(a, float) and math.isclose(a, b)), (path, a, b)


def test_large_document_equals_one_account_path(tmp_path: Path) -> None:
    """1,100 synthetic accounts (cross and isolated positions, USDT and BTC collateral): every
    figure as ``evaluate_portfolio`` gives it, through the API and the command line."""
    document = synthetic_document(LARGE_DOCUMENT + 100, seed=3)
    portfolio = parse_portfolio(document)
    expected = to_data(evaluate_portfolio(portfolio))
    same(to_data(evaluate_large(portfolio)), expected, "result")
    path = tmp_path / "large.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(app, ["margin", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    same(json.loads(result.stdout), expected, "cli")


def test_large_document_bad_account_is_named(tmp_path: Path) -> None:
    """A bad position deep in a large document names its account, as the small path does."""
    document = synthetic_document(LARGE_DOCUMENT, seed=4)
    huge = {"symbol": "BTCUSDT", "qty": 1e308, "entry_price": 1e308}
    document["accounts"][700]["positions"] = [huge]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(app, ["margin", str(path), "--json"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: accounts[700].positions[0]"), result.stderr
