"""Symbol spelling: `BTC/USDT` in JSON, `BTC_USDT` in URLs and subjects; both accepted on input."""

from __future__ import annotations

from coinwire.core.errors import InvalidInput

__all__ = ["normalize_symbol", "symbol_token", "split_symbol"]


def normalize_symbol(symbol: object) -> str:
    """Return the CCXT unified form `BASE/QUOTE` (upper case) of `BTC/USDT`, `btc_usdt`, ...

    A linear perpetual keeps its settle currency: `BTC/USDT:USDT` (`btc_usdt:usdt`).
    """
    if not isinstance(symbol, str) or not symbol:
        raise InvalidInput("invalid_symbol", f"symbol must be a string like 'BTC/USDT', got {symbol!r}")
    text = symbol.strip().upper().replace("_", "/")
    text, colon, settle = text.partition(":")
    base, sep, quote = text.partition("/")
    if (not sep or not base or not quote or "/" in quote or not base.isalnum() or not quote.isalnum()
            or (colon and not (settle.isalnum() and settle.isascii()))):
        raise InvalidInput("invalid_symbol", f"symbol must look like 'BTC/USDT', 'BTC_USDT' or 'BTC/USDT:USDT', got {symbol!r}")
    return f"{base}/{quote}:{settle}" if colon else f"{base}/{quote}"


def symbol_token(symbol: str) -> str:
    """`BTC/USDT` -> `BTC_USDT`, for places a slash cannot go."""
    return normalize_symbol(symbol).replace("/", "_")


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) currencies; a perpetual's settle currency is left out (`BTC/USDT:USDT` -> ("BTC", "USDT"))."""
    base, _, quote = normalize_symbol(symbol).partition(":")[0].partition("/")
    return base, quote
