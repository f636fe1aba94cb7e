"""The Feed port: a source of market data that publishes typed messages on subjects.

A feed first publishes a `Markets` message on `markets.<exchange>`, then book snapshots
and deltas on `book.*`, trades on `trade.*` and best bid/ask (`BookTicker`) or venue tickers (`Ticker`) on `ticker.*` (subjects from
`coinwire.messages.subject`). A consumer that sees a gap in the deltas asks the feed's
`SnapshotSource` for a fresh book, as it would ask a live exchange's REST depth endpoint.

A live feed can also say when a symbol's data stops or resumes flowing (`on_health`, a
`HealthHook`): recorded and synthetic feeds never stall, so only live feeds have one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Protocol, runtime_checkable

from coinwire.core.instruments import Instrument
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Markets, MarkPrice, Message, Ticker, TradeTick, subject

__all__ = ["Feed", "SnapshotSource", "Publish", "HealthHook", "subject_for"]

Publish = Callable[[str, Message], Awaitable[object]]
HealthHook = Callable[[str, bool], Awaitable[object]]  # (symbol, healthy) on every change

_KIND_BY_TYPE: dict[type, str] = {BookSnapshot: "book", BookDelta: "book", TradeTick: "trade", BookTicker: "ticker", Ticker: "ticker",
                                 MarkPrice: "mark"}


@runtime_checkable
class Feed(Protocol):
    """A market-data source: demo (synthetic), replay (recorded files) or live."""

    name: str
    exchange: str

    def instruments(self) -> list[Instrument]:
        """The markets this feed publishes (also announced in its first `Markets` message)."""
        ...

    async def run(self, publish: Publish) -> None:
        """Publish until the source ends (or forever); cancellation stops it cleanly."""
        ...

    async def close(self) -> None:
        """Release connections and files; `run` returns soon after."""
        ...


@runtime_checkable
class SnapshotSource(Protocol):
    """Where a consumer that lost the thread gets a full book (a REST depth request, live)."""

    def snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        """The current full book, or None when this source does not know it (yet)."""
        ...


def subject_for(message: Message) -> str:
    """The subject a feed publishes a market-data message on (`book.binance.usdt.btc`, ...)."""
    if isinstance(message, Markets):
        return subject("markets", message.exchange)
    kind = _KIND_BY_TYPE.get(type(message))
    if kind is None:
        raise TypeError(f"{type(message).__name__} is not a market-data message")
    return _subject(kind, message.exchange, message.symbol)  # type: ignore[union-attr]


@lru_cache(maxsize=4096)
def _subject(kind: str, exchange: str, symbol: str) -> str:
    return subject(kind, exchange, symbol)  # parses the symbol: worth remembering per message
