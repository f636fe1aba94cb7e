"""PublicTrades: each market's most recent public trades, kept in a small ring, filled from the bus.

Every feed (demo, replay, ccxt) publishes the market's public trades as `TradeTick` on
`trade.<exchange>.<quote>.<base>`, the subjects the candle recorder folds into candles. This
service keeps the newest `size` of each market as they happened, for
`GET /api/v1/trades/{exchange}/{symbol}` (`recent()`), and tells its `listeners` of each one
(the `public_trades` push channel). Prices and sizes become exact decimal strings through the
instrument announced on `markets.<exchange>`; trades of a market never announced are counted
in `unknown` and dropped. The rings live in the process that subscribes, on any bus (in
process or NATS): they are a window on the live stream, not a store, and start empty.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from coinwire.bus.base import Bus, Subscription
from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.instruments import Instrument
from coinwire.core.symbols import normalize_symbol, symbol_token
from coinwire.messages import Markets, Message, TradeTick

__all__ = ["PublicTrades", "PublicTradeListener", "RING_SIZE", "DEFAULT_LIMIT", "trade_view"]

log = structlog.get_logger("coinwire.public_trades")

RING_SIZE = 200  # trades kept per market: a screenful of "recent trades" and then some
DEFAULT_LIMIT = 50

PublicTradeListener = Callable[[str, dict[str, Any]], Awaitable[None]]  # subject, trade view


def trade_view(inst: Instrument, trade: TradeTick) -> dict[str, Any]:
    """The JSON shape of one public trade: decimal strings, `time` in unix seconds, `side` the taker's."""
    return {
        "exchange": trade.exchange,
        "symbol": trade.symbol,
        "pair": symbol_token(trade.symbol),
        "id": trade.trade_id,
        "time": trade.ts / 1e9,
        "price": inst.price_str(trade.price),
        "amount": inst.size_str(trade.size),
        "side": trade.aggressor,
    }


class PublicTrades:
    """Subscribe with `await start()`; `recent()` answers from the rings; `await close()` stops."""

    def __init__(self, bus: Bus, size: int = RING_SIZE) -> None:
        if size < 1:
            raise ValueError("a ring keeps at least one trade")
        self.bus = bus
        self.size = size
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.rings: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        self.listeners: list[PublicTradeListener] = []
        self.unknown = 0  # trades of a market whose `markets` message was never seen
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._subs.append(await self.bus.subscribe("markets.>", self._on_message))
        self._subs.append(await self.bus.subscribe("trade.>", self._on_message))

    async def close(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()

    async def _on_message(self, subject: str, message: Message) -> None:
        if isinstance(message, Markets):
            for instrument in message.instruments:
                self.instruments[(message.exchange, instrument.symbol)] = instrument
                self.rings.setdefault((message.exchange, instrument.symbol), deque(maxlen=self.size))
            return
        if not isinstance(message, TradeTick):
            return
        key = (message.exchange, message.symbol)
        inst = self.instruments.get(key)
        if inst is None:
            self.unknown += 1
            return
        view = trade_view(inst, message)
        self.rings[key].append(view)
        for listener in self.listeners:
            try:
                await listener(subject, view)
            except Exception:  # a push stream's failure must not stop the rings
                log.exception("public trade listener failed", subject=subject)

    def recent(self, exchange: str, symbol: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest `limit` trades of a market (default 50, or the ring's size), newest first; [] before its first.

        Raises `invalid_limit` (not 1..size), `invalid_symbol`, and NotFound `unknown_exchange` /
        `unknown_symbol` for a market no feed announced.
        """
        if limit is None:
            limit = min(DEFAULT_LIMIT, self.size)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.size:
            raise InvalidInput("invalid_limit", f"limit must be a whole number from 1 to {self.size}, got {limit!r}", field="limit")
        sym = normalize_symbol(symbol)
        ring = self.rings.get((exchange, sym))
        if ring is None:
            if not any(ex == exchange for ex, _ in self.rings):
                known = sorted({ex for ex, _ in self.rings})
                raise NotFound("unknown_exchange", f"no feed announced exchange {exchange!r}; known: {known}", exchange=exchange)
            raise NotFound("unknown_symbol", f"exchange {exchange} has no market {sym}", exchange=exchange, symbol=sym)
        out = []
        for view in reversed(ring):
            out.append(view)
            if len(out) == limit:
                break
        return out
