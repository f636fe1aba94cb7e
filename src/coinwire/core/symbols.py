"""Symbol spelling: `BTC/USDT` in JSON, `BTC_USDT` in URLs and subjects; both accepted on input."""

from __future__ import annotations

from coinwire.core.errors import InvalidInput

__all__ = ["normalize_symbol", "symbol_token", "split_symbol"]


def normalize_symbol(symbol: object) -> str:
    """Return the CCXT unified form `BASE/QUOTE` (upper case) of `BTC/USDT`, `btc_usdt`, ..."""
    if not isinstance(symbol, str) or not symbol:
        raise InvalidInput("invalid_symbol", f"symbol must be a string like 'BTC/USDT', got {symbol!r}")
    text = symbol.strip().upper().replace("_", "/")
    base, sep, quote = text.partition("/")
    if not sep or not base or not quote or "/" in quote or not base.isalnum() or not quote.isalnum():
        raise InvalidInput("invalid_symbol", f"symbol must look like 'BTC/USDT' or 'BTC_USDT', got {symbol!r}")
    return f"{base}/{quote}"


def symbol_token(symbol: str) -> str:
    """`BTC/USDT` -> `BTC_USDT`, for places a slash cannot go."""
    return normalize_symbol(symbol).replace("/", "_")


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = normalize_symbol(symbol).partition("/")
    return base, quote
