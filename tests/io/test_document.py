"""The document reader on its own: strict JSON, bounded reads, ccxt keys, account ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crossmargin.io.document import decode_json, parse_document, read_bounded
from crossmargin.model import CrossMarginError, MarginMode


def _error(call: Any, *args: Any) -> CrossMarginError:
    with pytest.raises(CrossMarginError) as caught:
        call(*args)
    return caught.value


def test_duplicate_keys_at_any_depth() -> None:
    error = _error(decode_json, '{"a": {"b": 1, "b": 2}}', "doc.json")
    assert (error.path, error.reason) == ("doc.json", "duplicate key 'b' in one object")


def test_deep_nesting_and_huge_integer_literals() -> None:
    assert _error(decode_json, "[" * 100_000, "d").reason == "nested too deeply"
    assert _error(decode_json, "9" * 5_000, "d").reason.startswith("not valid JSON: Exceeds")
    assert decode_json("1" + "0" * 400, "d") == 10**400


def test_reads_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 101)
    assert _error(read_bounded, path, 100).reason == "larger than the 0 MiB limit"
    assert read_bounded(path, 101) == b" " * 101


def _account(**fields: Any) -> dict[str, Any]:
    return {"accounts": [{"id": "a", **fields}]}


@pytest.mark.parametrize(("value", "shown"), [(None, "null"), (True, "bool"), ([1], "list")])
def test_account_ids_must_be_text(value: Any, shown: str) -> None:
    error = _error(parse_document, {"accounts": [{"id": value}]})
    assert error.path == "accounts[0].id"
    assert error.reason == f"must be a non-empty string, got {shown}"


def test_an_integer_account_id_is_its_text() -> None:
    assert parse_document({"accounts": [{"id": 17}]}).accounts[0].id == "17"


def _ccxt(**fields: Any) -> dict[str, Any]:
    position = {"symbol": "BTC/USDT:USDT", "contracts": 1.0, "side": "long", "entryPrice": 100.0}
    return _account(positions=[position | fields])


def test_ccxt_isolated_flag_without_margin_mode() -> None:
    doc = parse_document(_ccxt(marginMode=None, isolated=True, collateral=50.0, unrealizedPnl=5.0))
    (position,) = doc.accounts[0].positions
    assert position.margin_mode == MarginMode.ISOLATED
    assert position.isolated_margin == 45.0
    error = _error(parse_document, _ccxt(isolated="yes"))
    assert error.path == "accounts[0].positions[0].isolated"


def test_every_key_of_the_unified_position_is_accepted() -> None:
    """The keys of ccxt's own ``Position`` structure (``ccxt.base.types``), all left empty but
    the ones a position needs."""
    types = pytest.importorskip("ccxt.base.types")
    needed = {"symbol", "contracts", "side", "entryPrice"}
    keys = [k for k in types.Position.__annotations__ if k not in needed]
    assert {"isolated", "info", "contractSize", "collateral"} <= set(keys)
    doc = parse_document(_ccxt(**dict.fromkeys(keys)))
    assert doc.accounts[0].positions[0].qty == 1.0
    assert _error(parse_document, _ccxt(bogus=1)).path == "accounts[0].positions[0].bogus"


def test_a_ccxt_balance_with_a_bad_total() -> None:
    error = _error(parse_document, _account(balances={"total": {"USDT": "lots"}}))
    assert error.path == "accounts[0].balances.total.USDT"
