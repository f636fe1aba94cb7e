"""Latest prices: every `ticker.*` message becomes the symbol's latest price in the cache, with its age.

Two kinds of message arrive on `ticker.<exchange>.<quote>.<base>`: a venue `Ticker` (the
ticker streamer: last price, maybe the touch, 24 h figures, exact decimals) and a book feed's
`BookTicker` (demo, replay, ccxt book feeds: best bid/ask as integers at the instrument's
precision, known from the feed's `Markets`). Both become one `TickerView`, whose `price` is
the last trade price when the venue gives one, else the mid of the touch.

Cache layout (the same on the in-process cache and on Redis, so an API process elsewhere
reads what the gateway process wrote):

    ticker:<exchange>:<BASE>_<QUOTE>   msgpack TickerView
    tickers:<exchange>                 msgpack sorted list of symbols with a ticker
    tickers                            msgpack sorted list of exchanges

Writes are coalesced: a symbol that ticks a hundred times between two flushes costs one
cache write (`flush_interval`, 0.25 s by default), so a busy all-market stream does not
turn into a Redis round trip per message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
import structlog

from coinwire.bus.base import Bus, Subscription
from coinwire.bus.subjects import matcher
from coinwire.cache.base import Cache
from coinwire.core.symbols import split_symbol, symbol_token
from coinwire.messages import BookTicker, Markets, Message, Ticker, subject
from coinwire.services.listening import stop_listening

__all__ = ["TickerView", "TickerService", "TickerReader", "TickerListener", "view_of_ticker", "ticker_key"]

log = structlog.get_logger("coinwire.tickers")

_NS = 1_000_000_000
_INDEX = "tickers"


class TickerView(msgspec.Struct, frozen=True, kw_only=True):
    """The latest price of one symbol on one exchange, from whichever ticker message came last."""

    exchange: str
    symbol: str
    ts: int  # ns, the venue's time for these figures
    received: int  # ns, when this process took it off the bus
    price: Decimal  # last trade price, else the mid of the touch
    source: str  # "ticker" (a venue ticker) | "book" (a book feed's best bid/ask)
    last: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    base_volume: Decimal | None = None
    quote_volume: Decimal | None = None

    @property
    def subject(self) -> str:
        return subject("ticker", self.exchange, self.symbol)

    def age(self, now_ns: int) -> float:
        """Seconds since the venue's timestamp (never negative: clocks differ a little)."""
        return max(0.0, (now_ns - self.ts) / _NS)

    def to_public(self, now_ns: int) -> dict[str, Any]:
        """JSON shape for the API: decimal strings, times in unix seconds, `age` in seconds."""
        base, quote = split_symbol(self.symbol)
        out: dict[str, Any] = {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "pair": symbol_token(self.symbol),
            "base": base,
            "quote": quote,
            "price": str(self.price),
        }
        for name in ("last", "bid", "ask", "open", "high", "low", "base_volume", "quote_volume"):
            value = getattr(self, name)
            out[name] = None if value is None else str(value)
        out.update(time=self.ts / _NS, received=self.received / _NS, age=round(self.age(now_ns), 3), source=self.source)
        return out


def ticker_key(exchange: str, symbol: str) -> str:
    return f"ticker:{exchange}:{symbol_token(symbol)}"


def _price(last: Decimal | None, bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    if last is not None:
        return last
    if bid is not None and ask is not None:
        return (bid + ask) / 2
    return bid if bid is not None else ask


def view_of_ticker(message: Ticker, received: int) -> TickerView | None:
    """The view of a venue ticker (None when it carries no price at all)."""
    price = _price(message.last, message.bid, message.ask)
    if price is None:
        return None
    return TickerView(
        exchange=message.exchange, symbol=message.symbol, ts=message.ts, received=received, price=price, source="ticker",
        last=message.last, bid=message.bid, ask=message.ask, open=message.open, high=message.high, low=message.low,
        base_volume=message.base_volume, quote_volume=message.quote_volume,
    )


def _view_of_book_ticker(message: BookTicker, price_decimals: int, received: int) -> TickerView:
    scale = Decimal(1).scaleb(-price_decimals)
    bid = message.bid * scale if message.bid > 0 else None
    ask = message.ask * scale if message.ask > 0 else None
    price = _price(None, bid, ask)
    if price is None:
        raise ValueError("a book ticker with both sides empty")
    return TickerView(exchange=message.exchange, symbol=message.symbol, ts=message.ts, received=received, price=price,
                      source="book", bid=bid, ask=ask)


TickerListener = Callable[[str, TickerView], Awaitable[None]]


class TickerService:
    """Keeps the cache's latest prices current from the bus, and tells listeners (push streams) of each."""

    def __init__(self, bus: Bus, cache: Cache, *, clock: Callable[[], int] = time.time_ns, flush_interval: float = 0.25) -> None:
        self.bus = bus
        self.cache = cache
        self.listeners: list[TickerListener] = []
        self.flush_interval = flush_interval
        self.skipped = 0  # book tickers of markets no feed announced
        self._clock = clock
        self._decimals: dict[tuple[str, str], int] = {}  # (exchange, symbol) -> price decimals
        self._pending: dict[str, TickerView] = {}
        self._known: dict[str, set[str]] = {}  # exchange -> symbols already in the index
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    async def start(self) -> None:
        self._subs.append(await self.bus.subscribe("markets.>", self._on_message))
        self._subs.append(await self.bus.subscribe("ticker.>", self._on_message))
        self._task = asyncio.create_task(self._flush_loop(), name="ticker-flush")

    async def close(self) -> None:
        await stop_listening(self._subs, self._task)
        self._task = None
        await self.flush()

    async def _on_message(self, subject_: str, message: Message) -> None:
        if isinstance(message, Markets):
            for inst in message.instruments:
                self._decimals[(inst.exchange, inst.symbol)] = inst.price_decimals
            return
        received = self._clock()
        if isinstance(message, Ticker):
            view = view_of_ticker(message, received)
        elif isinstance(message, BookTicker):
            decimals = self._decimals.get((message.exchange, message.symbol))
            if decimals is None:
                self.skipped += 1
                return
            try:
                view = _view_of_book_ticker(message, decimals, received)
            except ValueError:
                return
        else:
            return
        if view is None:
            return
        self._pending[ticker_key(view.exchange, view.symbol)] = view
        for listener in self.listeners:
            try:
                await listener(subject_, view)
            except Exception:  # a push stream's failure must not stop the prices
                log.exception("ticker listener failed", subject=subject_)

    async def flush(self) -> None:
        """Write what arrived since the last flush (one write per symbol), and index new symbols."""
        async with self._flushing:
            if not self._pending:
                return
            pending, self._pending = self._pending, {}
            await self.cache.set_many({key: _encode(view) for key, view in pending.items()})
            new: dict[str, set[str]] = {}
            for view in pending.values():
                if view.symbol not in self._known.get(view.exchange, ()):
                    new.setdefault(view.exchange, set()).add(view.symbol)
            if new:
                await self._index(new)

    async def _index(self, new: dict[str, set[str]]) -> None:
        """Merge new symbols into the index keys (read first: another process may have indexed others)."""
        keys = [_INDEX] + [f"{_INDEX}:{exchange}" for exchange in new]
        stored = await self.cache.get_many(keys)
        exchanges = set(_decode_list(stored.get(_INDEX))) | set(new)
        updates = {_INDEX: _encode(sorted(exchanges))}
        for exchange, symbols in new.items():
            key = f"{_INDEX}:{exchange}"
            known = set(_decode_list(stored.get(key))) | symbols
            self._known[exchange] = known
            updates[key] = _encode(sorted(known))
        await self.cache.set_many(updates)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:  # the cache is down: keep the prices and try again next time
                log.exception("ticker flush failed")


class TickerReader:
    """Reads the latest prices from the cache (any process: the in-process cache or Redis)."""

    def __init__(self, cache: Cache, clock: Callable[[], int] = time.time_ns) -> None:
        self.cache = cache
        self.clock = clock

    async def exchanges(self) -> list[str]:
        return _decode_list(await self.cache.get(_INDEX))

    async def get(self, exchange: str, symbol: str) -> TickerView | None:
        data = await self.cache.get(ticker_key(exchange, symbol))
        return None if data is None else _decode_view(data)

    async def tickers(self, pattern: str = "ticker.>") -> list[TickerView]:
        """Every latest price whose subject `pattern` selects (`ticker.binance.usdt.*`), by exchange and symbol."""
        selects = matcher(pattern)
        exchanges = await self.exchanges()
        indexes = await self.cache.get_many(f"{_INDEX}:{e}" for e in exchanges)
        keys = [
            ticker_key(exchange, symbol)
            for exchange in exchanges
            for symbol in _decode_list(indexes.get(f"{_INDEX}:{exchange}"))
            if selects(subject("ticker", exchange, symbol))
        ]
        found = await self.cache.get_many(keys)
        views = [_decode_view(found[k]) for k in keys if k in found]
        return sorted(views, key=lambda v: (v.exchange, v.symbol))


_encoder = msgspec.msgpack.Encoder()
_view_decoder = msgspec.msgpack.Decoder(TickerView)
_list_decoder = msgspec.msgpack.Decoder(list[str])


def _encode(value: object) -> bytes:
    return _encoder.encode(value)


def _decode_view(data: bytes) -> TickerView:
    return _view_decoder.decode(data)


def _decode_list(data: bytes | None) -> list[str]:
    return [] if data is None else _list_decoder.decode(data)
