"""``crossmargin compare``: each column equals ``crossmargin margin`` of the same document under
that rulebook (or margin mode), translations keep sizes, skipped rulebooks say why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin.app.compare import compare_modes, mode_documents, rulebook_documents
from crossmargin.app.portfolio import load_portfolio, parse_portfolio
from crossmargin.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "src" / "crossmargin" / "io" / "examples"
DOCUMENTS = [EXAMPLES / n for n in ("demo-binance.json", "demo-hyperliquid.json")]
DERIBIT_PM = EXAMPLES / "demo-deribit-pm.json"
FIGURES = ("equity", "initial_margin", "maintenance_margin", "margin_ratio", "crash_distance")


def _margin(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, ["margin", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _same(column: dict[str, Any], margin: dict[str, Any]) -> None:
    """Every account's figures and every position's prices, as ``margin --json`` gives them
    (the standard-margin block for a standard view of a PM document)."""
    assert len(column["accounts"]) == len(margin["accounts"])
    for mine, theirs in zip(column["accounts"], margin["accounts"], strict=True):
        assert mine["id"] == theirs["id"]
        standard = theirs.get("standard_margin") if column.get("standard_view") else None
        source = {**theirs, **standard} if standard else theirs
        for name in (*FIGURES, "status"):
            if name == "crash_distance" and standard:
                continue
            assert mine[name] == source[name], (column["name"], name)
        for p, q in zip(mine["positions"], theirs["positions"], strict=True):
            assert p["symbol"] == q["symbol"]
            for name in (
                "qty",
                "initial_margin",
                "maintenance_margin",
                "liquidation_price",
                "bankruptcy_price",
                "max_leverage",
            ):
                assert p[name] == q[name], (column["name"], p["symbol"], name)


@pytest.mark.parametrize("document", [*DOCUMENTS, DERIBIT_PM], ids=lambda p: p.stem)
def test_every_rulebook_column_is_margin_of_that_document(tmp_path: Path, document: Path) -> None:
    """An untranslated column is ``margin DOC --rulebook NAME``; a translated one is ``margin``
    of its translated document (written out) under NAME."""
    result = runner.invoke(app, ["compare", str(document), "--json"])
    assert result.exit_code == 0, result.output
    columns = {c["name"]: c for c in json.loads(result.stdout)["columns"]}
    specs = {s.name: s for s in rulebook_documents(document)}
    assert columns.keys() == specs.keys()
    compared = 0
    for name, column in columns.items():
        if "skipped" in column:
            assert column["skipped"] and not column["accounts"]
            continue
        if column["translated"]:
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(specs[name].document))
            _same(column, _margin([str(path), "--rulebook", name]))
        else:
            _same(column, _margin([str(document), "--rulebook", name]))
        compared += 1
    assert compared >= 3
    if document == DERIBIT_PM:
        assert columns["deribit-inverse"]["standard_view"]


def test_translation_keeps_sizes_and_prices() -> None:
    """Binance BTCUSDT (1 BTC contracts) to Hyperliquid BTC-PERP: the same coins at the same
    mark; non-dollar balances stay for the venue's collateral rules to price."""
    spec = next(s for s in rulebook_documents(DOCUMENTS[0]) if s.name == "hyperliquid")
    assert spec.document is not None and spec.symbols["BTCUSDT"] == "BTC-PERP"
    moved = parse_portfolio(spec.document)
    source = load_portfolio(DOCUMENTS[0])
    for a, b in zip(source.accounts, moved.accounts, strict=True):
        coins = {
            source.market.instrument(p.symbol).underlying: p.qty
            * source.market.instrument(p.symbol).contract_size
            for p in a.positions
        }
        moved_coins = {
            moved.market.instrument(p.symbol).underlying: p.qty
            * moved.market.instrument(p.symbol).contract_size
            for p in b.positions
        }
        assert moved_coins == pytest.approx(coins)
    assert moved.market.prices["BTC-PERP"] == source.market.prices["BTCUSDT"]
    assert moved.accounts[0].balances["USDC"] == 20000.0
    assert moved.accounts[0].balances["BTC"] == 0.5


@pytest.mark.parametrize("document", [*DOCUMENTS, DERIBIT_PM], ids=lambda p: p.stem)
def test_mode_columns_are_margin_of_their_documents(tmp_path: Path, document: Path) -> None:
    result = runner.invoke(app, ["compare", str(document), "--modes", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["across"] == "mode"
    specs = {s.name: s for s in mode_documents(document)}
    for column in payload["columns"]:
        spec = specs[column["name"]]
        if spec.document is None:
            assert column["skipped"]
            continue
        path = tmp_path / f"{column['name']}.json"
        path.write_text(json.dumps(spec.document))
        _same(column, _margin([str(path)]))


def test_isolated_wallets_are_the_cross_initial_margins() -> None:
    """Each isolated wallet is the position's IM under cross, taken out of the settle balance
    (USDC on Hyperliquid) into which the cross column put the document's 300 USDC ETH wallet."""
    specs = {s.name: s for s in mode_documents(DOCUMENTS[1])}
    isolated = specs["isolated"].document
    assert isolated is not None
    cross = compare_modes(DOCUMENTS[1]).columns[0]
    assert cross.name == "cross"
    im = {p.symbol: p.initial_margin for p in cross.accounts[0].positions}
    wallets = {p["symbol"]: p["isolated_margin"] for p in isolated["accounts"][0]["positions"]}
    assert wallets == pytest.approx(im)
    assert all(p["margin_mode"] == "isolated" for p in isolated["accounts"][0]["positions"])
    assert isolated["accounts"][0]["balances"]["USDC"] == pytest.approx(10300.0 - sum(im.values()))


def test_pm_document_compares_pm_rulebooks() -> None:
    result = runner.invoke(app, ["compare", str(DERIBIT_PM), "--json"])
    assert result.exit_code == 0, result.output
    columns = {c["name"]: c for c in json.loads(result.stdout)["columns"]}
    for name in ("deribit-pm", "okx-pm", "cme-span"):
        assert not columns[name].get("skipped"), columns[name]
    assert "do not move venue" in columns["binance-coinm"]["skipped"]


def test_table_and_report(tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    result = runner.invoke(app, ["compare", str(DOCUMENTS[0]), "--report", str(page)])
    assert result.exit_code == 0, result.output
    assert "hyperliquid (translated)" in result.stdout
    assert "skipped" in result.stdout
    assert 'id="venue-comparison"' in page.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(DOCUMENTS[0]), "--only", "nosuch"], "error: rulebook: no bundled rulebook 'nosuch'"),
        ([str(DOCUMENTS[0]), "--rulebook", "hyperliquid"], "error: rulebook: goes with --modes"),
        (["missing.json"], "error: missing.json: cannot read"),
    ],
)
def test_compare_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
