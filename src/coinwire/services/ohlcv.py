"""The seed's OHLCV answer for a paper market: candles built from the public trades seen so far."""

from __future__ import annotations

import time
from typing import Any

from coinwire.core.candles import rollup
from coinwire.core.errors import InvalidInput
from coinwire.core.symbols import symbol_token

__all__ = ["ohlcv_points"]

_FREQS = {"highest": None, "daily": 86_400}


def ohlcv_points(market: Any, start: int | None, end: int | None, received_before: int | None, freq: str) -> dict[str, Any]:
    """Points are `[time, low, high, open, close, volume, received_at]`, as in the seed."""
    if freq not in _FREQS:
        raise InvalidInput("invalid_freq", f"freq must be one of {sorted(_FREQS)}, got {freq!r}")
    if start is not None and end is not None and start > end:
        raise InvalidInput("invalid_range", "start is after end")
    inst = market.instrument
    candles = market.candles.between(start, end, received_before)
    seconds = _FREQS[freq]
    if seconds:
        candles = rollup(candles, seconds)
    points = [
        [c[0], inst.price_str(c[3]), inst.price_str(c[2]), inst.price_str(c[1]), inst.price_str(c[4]), inst.size_str(c[5]), c[6]]
        for c in candles
    ]
    return {
        "exchange": inst.exchange,
        "pair": symbol_token(inst.symbol),
        "generated_at": int(time.time()),
        "points": points,
    }
