"""Bad input that used to get through: each is one line naming the field, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin.cli import app

DATA = Path(__file__).parents[1] / "data"
EXAMPLE = DATA / "readme-example.json"
PM_DOC = DATA / "deribit-pm.json"
runner = CliRunner()


def _doc(tmp_path: Path, change: Any) -> Path:
    doc = json.loads(EXAMPLE.read_text())
    change(doc)
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    return path


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.json"
    path.write_text(text)
    return path


def _one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def _account(field: str, value: Any) -> Any:
    return lambda d: d["accounts"][0].__setitem__(field, value)


def _position(field: str, value: Any) -> Any:
    return lambda d: d["accounts"][0]["positions"][0].__setitem__(field, value)


BAD_DOCUMENTS = [
    (lambda d: d.update(rulebook=True), "error: rulebook: must be a non-empty string, got True"),
    (lambda d: d.update(rulebook=["x"]), "error: rulebook: must be a non-empty string"),
    (lambda d: d.update(rulebook=3), "error: rulebook: must be a non-empty string, got 3"),
    (lambda d: d.update(portfolio_margin=False), "error: portfolio_margin: must be a non-empty"),
    (lambda d: d.update(portfolio_margin=[]), "error: portfolio_margin: must be a non-empty"),
    (lambda d: d.update(portfolio_margin=1.5), "error: portfolio_margin: must be a non-empty"),
    (_account("id", None), "error: accounts[0].id: must be a non-empty string, got null"),
    (_account("id", True), "error: accounts[0].id: must be a non-empty string, got bool"),
    (_account("id", ["a"]), "error: accounts[0].id: must be a non-empty string, got list"),
    (_account("id", {"a": 1}), "error: accounts[0].id: must be a non-empty string, got dict"),
    (_position("qty", -1e308), "error: accounts[0].positions[0].qty: too large: its notional"),
    (
        lambda d: d["accounts"][0]["balances"].update(USDC=1e308, BTC=1e308),
        "error: accounts[0].balances.BTC: too large: its value overflows",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_DOCUMENTS)
def test_bad_documents(tmp_path: Path, change: Any, message: str) -> None:
    doc = _doc(tmp_path, change)
    if "BTC" in message:
        data = json.loads(doc.read_text())
        data["prices"]["BTC"] = 60_000.0
        doc.write_text(json.dumps(data))
    assert _one_line_error(["margin", str(doc), "--json"]).startswith(message)


BIG = "1" + "0" * 400


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"USDC": 10000.0', f'"USDC": {BIG}', "accounts[0].balances.USDC: too large for a float"),
        ('"qty": -0.5', f'"qty": -{BIG}', "accounts[0].positions[0].qty: too large for a float"),
        ('"BTC-PERP": 63287.0', f'"BTC-PERP": {BIG}', "prices.BTC-PERP: too large for a float"),
        ('"entry_price": 60000.0', f'"entry_price": {BIG}', "positions[0].entry_price: too large"),
        ('"leverage": 10', f'"leverage": {BIG}', "accounts[0].positions[1].leverage: too large"),
        ('"max_leverage": 50', f'"max_leverage": {BIG}', "max_leverage: too large for a float"),
        ('"isolated_margin": 300.0', f'"isolated_margin": {BIG}', "isolated_margin: too large"),
    ],
)
def test_integers_too_large_for_a_float(tmp_path: Path, old: str, new: str, message: str) -> None:
    """JSON integers have no size limit; 10**400 in any numeric field is refused by name."""
    text = EXAMPLE.read_text()
    assert old in text
    line = _one_line_error(["margin", str(_text(tmp_path, text.replace(old, new)))])
    assert message in line, line


def test_json_nested_100000_deep(tmp_path: Path) -> None:
    path = _text(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert _one_line_error(["margin", str(path)]) == f"error: {path}: nested too deeply"


def test_duplicated_keys(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('"rulebook": "hyperliquid",', '"rulebook": "x", ' * 2)
    line = _one_line_error(["margin", str(_text(tmp_path, text))])
    assert line == f"error: {tmp_path / 'doc.json'}: duplicate key 'rulebook' in one object"


def test_an_endless_file_is_read_with_a_bound() -> None:
    """/dev/zero never ends: reading stops past the 64 MiB limit."""
    line = _one_line_error(["margin", "/dev/zero"])
    assert line == "error: /dev/zero: larger than the 64 MiB limit"


def test_a_file_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crossmargin.io.document.MAX_DOCUMENT_BYTES", 100)
    path = _text(tmp_path, EXAMPLE.read_text())
    assert _one_line_error(["margin", str(path)]).endswith("larger than the 0 MiB limit")


def test_a_folder_as_document(tmp_path: Path) -> None:
    assert _one_line_error(["margin", str(tmp_path)]).startswith(f"error: {tmp_path}: cannot read")


def test_an_unreadable_rulebook_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rulebook = tmp_path / "venue.toml"
    rulebook.write_text("[rulebook]\n")

    opened = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        """As a file without read permission opens for anyone but root."""
        if self == rulebook:
            raise PermissionError(13, "Permission denied")
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    line = _one_line_error(["margin", str(EXAMPLE), "--rulebook", str(rulebook)])
    assert line == f"error: rulebook: cannot read {rulebook}: Permission denied"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "error: --qty: Input should be a valid number"),
        ("", "error: --qty: Input should be a valid number"),
    ],
)
def test_what_if_qty_not_a_number(value: str, message: str) -> None:
    args = ["what-if", str(EXAMPLE), "--account", "a1", "--symbol", "BTC-PERP", "--qty", value]
    assert _one_line_error(args).startswith(message)


def test_what_if_qty_whose_fill_overflows() -> None:
    args = ["what-if", str(EXAMPLE), "--account", "a1", "--symbol", "BTC-PERP", "--qty", "1e308"]
    assert _one_line_error(args) == "error: qty: too large: the fill's value overflows"


def test_usage_errors_are_one_line() -> None:
    assert _one_line_error(["margin"]) == "error: Missing argument 'portfolio'."
    assert _one_line_error(["margin", str(EXAMPLE), "--bogus"]) == (
        "error: No such option: --bogus"
    )
    assert _one_line_error(["nope"]) == "error: No such command 'nope'."


@pytest.mark.parametrize("where", ["missing/heat.png", "."])
def test_png_into_a_missing_folder_or_onto_a_folder(tmp_path: Path, where: str) -> None:
    target = tmp_path / where
    line = _one_line_error(["scenarios", str(PM_DOC), "--png", str(target)])
    assert line.startswith("error: --png: ")
    assert not (tmp_path / "missing").exists()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("crossmargin 0.")
