"""Leverage brackets and liquidation fees of perpetuals, read from the data files shipped with coinwire.

`data/binance_usdm_brackets.json` holds Binance USD-M's `GET /fapi/v1/leverageBracket`
answer for the shared symbols (its own field names and decimal strings) and each symbol's
liquidation clearance fee. The core never reads files: a venue or a backtest loads the
tables here and builds its `Instrument`s with them (`perpetual_fields`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from coinwire.core.instruments import LeverageBracket
from coinwire.core.numbers import ATTO_DECIMALS, to_units

__all__ = ["BracketTable", "load_brackets", "parse_leverage_brackets", "perpetual_fields", "venue_symbol",
           "BINANCE_FUNDING_INTERVAL_S"]

BINANCE_FUNDING_INTERVAL_S = 8 * 3600  # Binance USD-M funds every 8 hours (00:00, 08:00, 16:00 UTC) for these symbols
_FILES = {"binanceusdm": "binance_usdm_brackets.json", "binance": "binance_usdm_brackets.json"}


class BracketTable:
    """One exchange's brackets and liquidation fees by venue symbol (`BTCUSDT`)."""

    def __init__(self, brackets: Mapping[str, tuple[LeverageBracket, ...]], liquidation_fees: Mapping[str, int]) -> None:
        self.brackets = dict(brackets)
        self.liquidation_fees = dict(liquidation_fees)

    def for_symbol(self, symbol: str) -> tuple[tuple[LeverageBracket, ...], int] | None:
        """The brackets and clearance fee (1e-8) of a unified (`BTC/USDT:USDT`) or venue (`BTCUSDT`) symbol; None if unknown."""
        raw = venue_symbol(symbol)
        if raw not in self.brackets:
            return None
        return self.brackets[raw], self.liquidation_fees.get(raw, 0)


def venue_symbol(symbol: str) -> str:
    """`BTC/USDT:USDT` (or `BTC_USDT_USDT`) -> `BTCUSDT`, Binance's linear perpetual name; a venue name stays as it is."""
    base_quote = symbol.split(":")[0]
    for separator in ("/", "_"):
        if separator in base_quote:
            base, quote = base_quote.split(separator)[:2]
            return f"{base}{quote}"
    return symbol


def parse_leverage_brackets(payload: list[dict[str, Any]]) -> dict[str, tuple[LeverageBracket, ...]]:
    """Binance's `/fapi/v1/leverageBracket` payload -> exact brackets by venue symbol (the shipped file's form).

    A live account's tiers arrive through CCXT's unified form instead: `ccxt_markets.brackets_from_tiers`.
    """
    result: dict[str, tuple[LeverageBracket, ...]] = {}
    for entry in payload:
        tiers = sorted(entry["brackets"], key=lambda b: Decimal(str(b["notionalFloor"])))
        result[str(entry["symbol"])] = tuple(
            LeverageBracket(
                floor=to_units(str(b["notionalFloor"]), ATTO_DECIMALS, "notionalFloor"),
                cap=to_units(str(b["notionalCap"]), ATTO_DECIMALS, "notionalCap"),
                max_leverage=int(b["initialLeverage"]),
                mmr=to_units(str(b["maintMarginRatio"]), 8, "maintMarginRatio"),
                maint_amount=to_units(str(b["cum"]), ATTO_DECIMALS, "cum"),
            )
            for b in tiers
        )
    return result


@cache
def load_brackets(exchange: str) -> BracketTable | None:
    """The shipped table of `exchange` (None when coinwire ships none for it); read once."""
    name = _FILES.get(exchange)
    if name is None:
        return None
    text = resources.files("coinwire.venues").joinpath("data", name).read_text(encoding="utf-8")
    document = json.loads(text)
    fees = {symbol: to_units(rate, 8, "liquidation_fee") for symbol, rate in document["liquidation_fee"].items()}
    return BracketTable(parse_leverage_brackets(document["brackets"]), fees)


def perpetual_fields(exchange: str, symbol: str) -> dict[str, object]:
    """The `Instrument` keyword arguments a perpetual of `exchange` gets from the shipped data (empty when unknown)."""
    table = load_brackets(exchange)
    found = table.for_symbol(symbol) if table is not None else None
    if found is None:
        return {}
    brackets, fee = found
    return {"brackets": brackets, "liquidation_fee": fee, "funding_interval_s": BINANCE_FUNDING_INTERVAL_S}
