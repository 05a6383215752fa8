"""Load rulebook files and compile market entries into instruments.

A rulebook is a TOML file with a ``[rulebook]`` header (name, model, currency, source, as_of,
version), optional ``[collateral.ASSET]`` haircuts and ``[[markets]]`` entries. The margin
``model`` says how a market's fields become a :class:`MarginSchedule`:

- ``tiered``: ``tiers`` with maintenance rate, leverage cap and (optional) maintenance amount;
- ``hyperliquid``: leverage caps only; maintenance rate = 1 / (2 * max leverage);
- ``size_scaled``: ``initial_margin_rate`` and ``maintenance_margin_rate`` plus ``*_per_size``.

The same compiler reads the instruments of a portfolio document, which may use ccxt's names
(``base``, ``contractSize``, ``maxLeverage``, ``minNotional``, ``maintenanceMarginRate`` ...).

Tiers may be ccxt leverage tiers as ``fetch_leverage_tiers()`` returns them: ``minNotional``,
``maxNotional``, ``maintenanceMarginRate``, ``maxLeverage`` and ``maintenanceAmount`` are read,
or Binance's ``cum`` inside ``info`` when no maintenance amount is given; ``tier``, ``symbol``,
``currency`` and the rest of ``info`` are ignored. A capped last tier (Binance caps its last
bracket) is the venue's position limit (:attr:`MarginSchedule.position_limit`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crossmargin.maths.dydx import adjusted_initial_margin_fraction
from crossmargin.model import (
    CollateralRule,
    CrossMarginError,
    Instrument,
    Kind,
    MarginMode,
    MarginSchedule,
    Market,
)
from crossmargin.model.checks import finite, non_empty, numeric, positive
from crossmargin.rules.modes import AccountMode, collateral_rules, parse_account_modes

__all__ = [
    "MAX_RULEBOOK_BYTES",
    "MODELS",
    "Rulebook",
    "build_instrument",
    "bundled_names",
    "bundled_rulebooks",
    "load_rulebook",
    "read_rulebook",
]

MODELS = ("tiered", "hyperliquid", "size_scaled")
MAX_RULEBOOK_BYTES = 16 * 1024 * 1024
"""Largest rulebook file read (16 MiB)."""

_HEADER_KEYS = {
    "name",
    "title",
    "venue",
    "model",
    "currency",
    "source",
    "as_of",
    "version",
    "notes",
    "margin_call_ratio",
    "isolated_at_entry",
    "close_fee_rate",
    "account_mode",
}
_COLLATERAL_KEYS = {"ratio", "tiers", "stable", "source", "notes"}
_MARKET_KEYS = {
    "symbol",
    "kind",
    "underlying",
    "quote",
    "settle",
    "contract_size",
    "inverse",
    "expiry",
    "max_leverage",
    "tiers",
    "initial_margin_rate",
    "initial_margin_rate_per_size",
    "maintenance_margin_rate",
    "maintenance_margin_rate_per_size",
    "source",
    "as_of",
    "notes",
    "isolated_at_entry",
    "close_fee_rate",
    "open_interest_lower_cap",
    "open_interest_upper_cap",
    "strike",
    "option_type",
}
_TIER_KEYS = {
    "min_notional",
    "max_notional",
    "maintenance_margin_rate",
    "max_leverage",
    "maintenance_amount",
    "tier",
    "symbol",
    "currency",
    "info",
}
_ALIASES = {
    "base": "underlying",
    "contractSize": "contract_size",
    "maxLeverage": "max_leverage",
    "minNotional": "min_notional",
    "maxNotional": "max_notional",
    "maintenanceMarginRate": "maintenance_margin_rate",
    "maintenanceAmount": "maintenance_amount",
    "type": "kind",
}
_KINDS = {"swap": "perpetual", "perp": "perpetual", "futures": "future"}


def _canonical(data: Mapping[str, Any], allowed: set[str], path: str) -> dict[str, Any]:
    _mapping_or_error(data, path)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = _ALIASES.get(key, key)
        if name not in allowed:
            raise CrossMarginError(f"{path}.{key}" if path else key, "unknown field")
        if value is not None:
            out[name] = value
    return out


def _mapping_or_error(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise CrossMarginError(path, f"must be a table/object, got {type(data).__name__}")
    return data


def _field(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _number(data: Mapping[str, Any], name: str, path: str, default: float | None = None) -> float:
    if name not in data:
        if default is None:
            raise CrossMarginError(_field(path, name), "required")
        return default
    return finite(_field(path, name), data[name])


def _string(data: Mapping[str, Any], name: str, path: str, default: str | None = None) -> str:
    if name not in data:
        if default is None:
            raise CrossMarginError(_field(path, name), "required")
        return default
    return non_empty(_field(path, name), data[name])


def _tier_amount(tier: Mapping[str, Any], where: str) -> float | None:
    """The bracket's maintenance amount: ``maintenance_amount`` or, in a ccxt tier, Binance's
    ``cum`` inside ``info`` (a number or numeric text); ``None`` to derive it."""
    if "maintenance_amount" in tier:
        return finite(_field(where, "maintenance_amount"), tier["maintenance_amount"])
    info = tier.get("info")
    cum = info.get("cum") if isinstance(info, Mapping) else None
    if cum is None:
        return None
    return numeric(_field(where, "info.cum"), cum)


def _tier_rows(
    tiers: Any, model: str, max_leverage: float | None, path: str
) -> tuple[list[float], list[float], list[float], list[float | None], float]:
    """Floors, maintenance rates, leverage caps, maintenance amounts and the last bracket's cap
    (the position limit; ``inf`` when open)."""
    if not isinstance(tiers, list) or not tiers:
        raise CrossMarginError(path, "must be a non-empty list of tiers")
    floors: list[float] = []
    rates: list[float] = []
    levs: list[float] = []
    amounts: list[float | None] = []
    prev_cap = 0.0
    for t, raw in enumerate(tiers):
        where = f"{path}[{t}]"
        if t and prev_cap == math.inf:
            raise CrossMarginError(where, "follows an open tier (no max_notional)")
        tier = _canonical(raw, _TIER_KEYS, where)
        floor = _number(tier, "min_notional", where, 0.0 if t == 0 else None)
        cap = _number(tier, "max_notional", where, math.inf) if "max_notional" in tier else math.inf
        if floor != prev_cap:
            raise CrossMarginError(
                _field(where, "min_notional"), f"tiers must be contiguous: expected {prev_cap:g}"
            )
        if not cap > floor:
            raise CrossMarginError(_field(where, "max_notional"), "must be above min_notional")
        lev = tier.get("max_leverage", max_leverage)
        if lev is None:
            raise CrossMarginError(_field(where, "max_leverage"), "required")
        lev = positive(_field(where, "max_leverage"), lev)
        if lev < 1.0:
            raise CrossMarginError(_field(where, "max_leverage"), f"must be >= 1, got {lev}")
        if model == "hyperliquid" and "maintenance_margin_rate" not in tier:
            rate = 1.0 / (2.0 * lev)
        else:
            rate = _number(tier, "maintenance_margin_rate", where)
            if not 0.0 <= rate < 1.0:
                raise CrossMarginError(
                    _field(where, "maintenance_margin_rate"), f"must be within [0, 1), got {rate}"
                )
        floors.append(floor)
        rates.append(rate)
        levs.append(lev)
        amounts.append(_tier_amount(tier, where))
        prev_cap = cap
    return floors, rates, levs, amounts, prev_cap


def _schedule(data: Mapping[str, Any], model: str, path: str) -> MarginSchedule:
    at_entry = data.get("isolated_at_entry", False)
    if not isinstance(at_entry, bool):
        raise CrossMarginError(_field(path, "isolated_at_entry"), "must be true or false")
    fee = _number(data, "close_fee_rate", path, 0.0)
    if not 0.0 <= fee < 1.0:
        raise CrossMarginError(_field(path, "close_fee_rate"), f"must be within [0, 1), got {fee}")
    return replace(_rates(data, model, path), isolated_at_entry=at_entry, close_fee_rate=fee)


def _rates(data: Mapping[str, Any], model: str, path: str) -> MarginSchedule:
    max_lev = data.get("max_leverage")
    if model == "size_scaled":
        im = _number(data, "initial_margin_rate", path)
        return MarginSchedule.size_scaled(
            initial_rate=im,
            maintenance_rate=_number(data, "maintenance_margin_rate", path),
            initial_rate_per_size=_number(data, "initial_margin_rate_per_size", path, 0.0),
            maintenance_rate_per_size=_number(data, "maintenance_margin_rate_per_size", path, 0.0),
            max_leverage=math.inf
            if max_lev is None
            else positive(_field(path, "max_leverage"), max_lev),
        )
    if "tiers" in data:
        tiers = data["tiers"]
    elif model == "hyperliquid" and max_lev is not None:
        tiers = [{"min_notional": 0.0, "max_leverage": max_lev}]
    else:
        raise CrossMarginError(_field(path, "tiers"), f"required by the {model} margin model")
    floors, rates, levs, amounts, limit = _tier_rows(tiers, model, max_lev, _field(path, "tiers"))
    schedule = MarginSchedule.brackets(floors, rates, levs, amounts, limit)
    for t, tier in enumerate(schedule.tiers):
        if tier.min_notional * tier.maintenance_margin_rate - tier.maintenance_amount < -1e-9:
            raise CrossMarginError(
                f"{path}.tiers[{t}].maintenance_amount",
                "makes the maintenance margin negative at the bracket floor",
            )
    return schedule


def build_instrument(data: Mapping[str, Any], model: str, path: str = "") -> Instrument:
    """Compile one market entry (rulebook or document, snake_case or ccxt names)."""
    entry = _canonical(data, _MARKET_KEYS, path)
    symbol = _string(entry, "symbol", path)
    kind_name = str(entry.get("kind", "perpetual")).lower()
    kind_name = _KINDS.get(kind_name, kind_name)
    try:
        kind = Kind(kind_name)
    except ValueError:
        kinds = ", ".join(k.value for k in Kind)
        raise CrossMarginError(_field(path, "kind"), f"must be one of {kinds}") from None
    inverse = entry.get("inverse", False)
    if not isinstance(inverse, bool):
        raise CrossMarginError(_field(path, "inverse"), "must be true or false")
    underlying = _string(entry, "underlying", path)
    quote = _string(entry, "quote", path)
    settle = _string(entry, "settle", path, underlying if inverse else quote)
    margin = None if kind in (Kind.SPOT, Kind.OPTION) else _schedule(entry, model, path)
    strike = entry.get("strike")
    option_type = entry.get("option_type")
    max_lev = entry.get("max_leverage")
    expiry = entry.get("expiry")
    try:
        return Instrument(
            symbol=symbol,
            kind=kind,
            underlying=underlying,
            quote=quote,
            settle=settle,
            margin=margin,
            contract_size=_number(entry, "contract_size", path, 1.0),
            inverse=inverse,
            expiry=None if expiry is None else str(expiry),
            max_leverage=None if max_lev is None else _number(entry, "max_leverage", path),
            strike=None if strike is None else _number(entry, "strike", path),
            option_type=None if option_type is None else str(option_type).lower(),
        )
    except CrossMarginError as error:
        raise error.at(path) from None


def _collateral(asset: str, data: Mapping[str, Any], path: str) -> CollateralRule:
    entry = _canonical(data, _COLLATERAL_KEYS, path)
    stable = entry.get("stable", False)
    if not isinstance(stable, bool):
        raise CrossMarginError(_field(path, "stable"), "must be true or false")
    if ("ratio" in entry) == ("tiers" in entry):
        raise CrossMarginError(path, "give either ratio or tiers")
    try:
        if "ratio" in entry:
            return CollateralRule.flat(asset, _number(entry, "ratio", path), stable=stable)
        tiers = entry["tiers"]
        if not isinstance(tiers, list) or not tiers:
            raise CrossMarginError("tiers", "must be a non-empty list")
        bounds = tuple(float(t.get("up_to", math.inf)) for t in tiers)
        ratios = tuple(_number(t, "ratio", f"tiers[{i}]") for i, t in enumerate(tiers))
        return CollateralRule(asset, bounds, ratios, stable)
    except CrossMarginError as error:
        raise error.at(path) from None


@dataclass(frozen=True)
class Rulebook:
    """A venue's margin rules: header facts, collateral haircuts and market entries.

    ``collateral`` is the haircut table of the default account mode ``account_mode`` (or the
    top-level table of a rulebook without ``account_modes``).
    """

    name: str
    title: str
    venue: str
    model: str
    currency: str
    source: str
    as_of: str
    version: str
    notes: str
    margin_call_ratio: float
    collateral: Mapping[str, CollateralRule]
    instruments: Mapping[str, Instrument]
    entries: Mapping[str, Mapping[str, Any]]
    account_mode: str | None = None
    account_modes: Mapping[str, AccountMode] = field(default_factory=dict)

    def mode(self, name: str | None = None, path: str = "account_mode") -> AccountMode:
        """The account mode ``name`` (``None``: the venue's default); errors name ``path``."""
        chosen = self.account_mode if name is None else name
        if chosen is None:
            if name is not None:
                raise CrossMarginError(path, f"rulebook {self.name} has no account modes")
            return AccountMode(
                "default", self.title, self.source, "", tuple(MarginMode), self.collateral
            )
        if chosen not in self.account_modes:
            known = ", ".join(self.account_modes) or "none"
            raise CrossMarginError(path, f"no account mode {chosen!r} in {self.name} ({known})")
        return self.account_modes[chosen]

    def with_instruments(
        self,
        entries: Sequence[Mapping[str, Any]],
        path: str = "instruments",
        tiers: Sequence[tuple[str, Any, str]] = (),
        open_interest: Sequence[tuple[str, Any, str]] = (),
    ) -> dict[str, Instrument]:
        """Rulebook instruments plus ``entries``, which add or override by symbol, per field;
        then ``tiers`` as (symbol, tier list, field path) replace those markets' tiers, and
        ``open_interest`` as (symbol, open interest, field path) scales the initial margin rate
        of those with open-interest caps (dYdX, :mod:`crossmargin.maths.dydx`; open interest is
        a notional in the quote currency, USDC on dYdX; a market without caps is unchanged).

        Under the hyperliquid model a new ``max_leverage`` without ``tiers`` replaces the tiers.
        """
        instruments = dict(self.instruments)
        merged_entries: dict[str, Mapping[str, Any]] = dict(self.entries)
        for i, raw in enumerate(entries):
            where = f"{path}[{i}]"
            entry = _canonical(raw, _MARKET_KEYS, where)
            symbol = _string(entry, "symbol", where)
            merged = {**self.entries.get(symbol, {}), **entry}
            if self.model == "hyperliquid" and "max_leverage" in entry and "tiers" not in entry:
                merged.pop("tiers", None)
            instruments[symbol] = build_instrument(merged, self.model, where)
            merged_entries[symbol] = merged
        for symbol, rows, where in tiers:
            merged = {**merged_entries.get(symbol, {}), "symbol": symbol, "tiers": rows}
            instruments[symbol] = build_instrument(merged, self.model, where)
        for symbol, value, where in open_interest:
            if symbol not in instruments:
                raise CrossMarginError(where, f"unknown instrument {symbol!r}")
            caps = merged_entries.get(symbol, {})
            instruments[symbol] = _at_open_interest(instruments[symbol], caps, value, where)
        return instruments

    def market(
        self,
        prices: Mapping[str, float],
        entries: Sequence[Mapping[str, Any]] = (),
        currency: str | None = None,
        margin_call_ratio: float | None = None,
        account_mode: str | None = None,
        open_interest: Mapping[str, float] | None = None,
    ) -> Market:
        """A :class:`Market` under this rulebook at ``prices``, in ``account_mode`` (default:
        the venue's default mode), whose collateral table and margin-call ratio it takes.

        ``open_interest`` (symbol -> open interest notional, quote currency) raises the initial
        margin rate of markets with open-interest caps (dYdX).
        """
        mode = self.mode(account_mode)
        ratio = mode.margin_call_ratio or self.margin_call_ratio
        instruments = self.with_instruments(
            entries,
            open_interest=[
                (symbol, value, f"open_interest.{symbol}")
                for symbol, value in (open_interest or {}).items()
            ],
        )
        return Market(
            instruments,
            prices,
            currency or self.currency,
            mode.collateral,
            ratio if margin_call_ratio is None else margin_call_ratio,
        )


def _at_open_interest(
    instrument: Instrument, entry: Mapping[str, Any], value: Any, where: str
) -> Instrument:
    """``instrument`` with its initial rate scaled for open interest ``value``, between the
    caps of its market ``entry``; unchanged without caps."""
    oi = finite(where, value)
    if oi < 0:
        raise CrossMarginError(where, f"must be >= 0, got {oi}")
    upper = _number(entry, "open_interest_upper_cap", instrument.symbol, 0.0)
    if instrument.margin is None or upper == 0.0:
        return instrument
    lower = _number(entry, "open_interest_lower_cap", instrument.symbol, 0.0)
    rate = adjusted_initial_margin_fraction(instrument.margin.initial_rate, oi, lower, upper)
    return replace(instrument, margin=replace(instrument.margin, initial_rate=rate))


def _parse(data: Mapping[str, Any], origin: str) -> Rulebook:
    unknown = set(data) - {"rulebook", "collateral", "markets", "account_modes"}
    if unknown:
        raise CrossMarginError(f"{origin}:{sorted(unknown)[0]}", "unknown section")
    header = _canonical(data.get("rulebook", {}), _HEADER_KEYS, f"{origin}:rulebook")
    where = f"{origin}:rulebook"
    model = _string(header, "model", where)
    if model not in MODELS:
        raise CrossMarginError(f"{where}.model", f"must be one of {', '.join(MODELS)}")
    collateral = collateral_rules(data.get("collateral", {}), f"{origin}:collateral", _collateral)
    markets = data.get("markets", [])
    if not isinstance(markets, list):
        raise CrossMarginError(f"{origin}:markets", "must be an array of tables")
    instruments: dict[str, Instrument] = {}
    entries: dict[str, Mapping[str, Any]] = {}
    inherited = ("isolated_at_entry", "close_fee_rate")
    defaults: dict[str, Any] = {k: header[k] for k in inherited if k in header}
    for i, listed in enumerate(markets):
        raw = {**defaults, **_mapping_or_error(listed, f"{origin}:markets[{i}]")}
        instrument = build_instrument(raw, model, f"{origin}:markets[{i}]")
        if instrument.symbol in instruments:
            raise CrossMarginError(f"{origin}:markets[{i}].symbol", "duplicate symbol")
        instruments[instrument.symbol] = instrument
        entries[instrument.symbol] = _canonical(raw, _MARKET_KEYS, f"{origin}:markets[{i}]")
    ratio = _number(header, "margin_call_ratio", where, 0.8)
    modes = parse_account_modes(data.get("account_modes", {}), origin, _collateral)
    default_mode = header.get("account_mode")
    if modes and (not isinstance(default_mode, str) or default_mode not in modes):
        raise CrossMarginError(f"{where}.account_mode", f"must name one of {', '.join(modes)}")
    if not modes and default_mode is not None:
        raise CrossMarginError(f"{where}.account_mode", "no [account_modes] to choose from")
    if modes and collateral:
        raise CrossMarginError(
            f"{origin}:collateral", "give collateral per account mode ([account_modes.X])"
        )
    if isinstance(default_mode, str):
        collateral = dict(modes[default_mode].collateral)
    return Rulebook(
        name=_string(header, "name", where),
        title=_string(header, "title", where, ""),
        venue=_string(header, "venue", where, ""),
        model=model,
        currency=_string(header, "currency", where),
        source=_string(header, "source", where),
        as_of=_string({k: str(v) for k, v in header.items()}, "as_of", where),
        version=str(header.get("version", "1")),
        notes=str(header.get("notes", "")),
        margin_call_ratio=ratio,
        collateral=MappingProxyType(collateral),
        instruments=MappingProxyType(instruments),
        entries=MappingProxyType(entries),
        account_mode=default_mode,
        account_modes=MappingProxyType(modes),
    )


def bundled_names(folder: str) -> list[str]:
    """Names of the TOML rulebooks shipped in ``crossmargin/rules/<folder>``."""
    files = (resources.files("crossmargin.rules") / folder).iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml"))


def read_rulebook(
    folder: str, name_or_path: str | Path, field: str, what: str
) -> tuple[str, dict[str, Any]]:
    """(origin, TOML content) of the bundled ``name`` in ``folder`` or of a file path.

    Errors name ``field`` for an unknown name and the file for invalid TOML.
    """
    text_name = str(name_or_path)
    if text_name in bundled_names(folder):
        origin = f"{text_name}.toml"
        raw = (resources.files("crossmargin.rules") / folder / origin).read_bytes()
    else:
        path = Path(name_or_path)
        if not path.is_file():
            known = ", ".join(bundled_names(folder))
            raise CrossMarginError(
                field, f"no bundled {what} or file {text_name!r} (bundled: {known})"
            )
        origin = path.name
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_RULEBOOK_BYTES + 1)
        except OSError as error:
            raise CrossMarginError(field, f"cannot read {text_name}: {error.strerror}") from None
        if len(raw) > MAX_RULEBOOK_BYTES:
            limit = MAX_RULEBOOK_BYTES // 2**20
            raise CrossMarginError(field, f"{text_name} is larger than the {limit} MiB limit")
    try:
        return origin, tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CrossMarginError(origin, f"not valid TOML: {error}") from None


def bundled_rulebooks() -> list[Rulebook]:
    """Every margin rulebook shipped with the package, by name."""
    return [load_rulebook(name) for name in bundled_names("rulebooks")]


def load_rulebook(name_or_path: str | Path) -> Rulebook:
    """Load a bundled rulebook by name (``binance-usdm``) or any rulebook file by path."""
    origin, data = read_rulebook("rulebooks", name_or_path, "rulebook", "rulebook")
    return _parse(data, origin)
