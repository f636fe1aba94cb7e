"""CaptureRecorder: writes what a feed publishes on the bus (books, trades, tickers) as raw capture files, one per market.

The files are the raw Binance capture format (history.capture_writer), which the replay feed
and the L2 backtest read, so a recording of any feed backtests on its order book. A market's
file starts with its book: the snapshot the feed publishes first, so the recorder subscribes
before the feed runs. Lines are flushed every `flush_seconds` as whole records, so a kill loses
at most that much; a full disk (any OSError while writing) stops the recording with every file
cut back to its last whole record, and `failure` says why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coinwire.bus.base import Bus, Subscription
from coinwire.core.instruments import Instrument
from coinwire.history.capture_writer import CaptureFile, capture_line, market_token, write_instruments
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Markets, Message, Ticker, TradeTick
from coinwire.services.listening import stop_listening

__all__ = ["CaptureRecorder"]

_RECORDED = (BookSnapshot, BookDelta, TradeTick, BookTicker, Ticker)


class CaptureRecorder:
    """Records `exchange`'s markets (`symbols`, or every market its feed announces) into `folder`.

    The markets come from the feed's `Markets` message. `await start()`, then `await close()`.
    """

    def __init__(self, bus: Bus, folder: Path, exchange: str, symbols: Iterable[str] | None = None, *,
                 flush_seconds: float = 1.0, clock: Callable[[], int] = time.time_ns) -> None:
        self.bus = bus
        self.folder = folder
        self.exchange = exchange
        self.symbols = set(symbols) if symbols else None
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.instruments: dict[str, Instrument] = {}
        self.files: dict[str, CaptureFile] = {}
        self.failure: OSError | None = None  # why the recording stopped early (a full disk)
        self.stopped = asyncio.Event()  # set when the recording stops early
        self._stamp = datetime.fromtimestamp(clock() / 1e9, UTC).strftime("%Y%m%dT%H%M%S")
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for pattern in ("markets.>", "book.>", "trade.>", "ticker.>"):
            self._subs.append(await self.bus.subscribe(pattern, self._on_message, inline=True))
        self._task = asyncio.create_task(self._loop(), name="coinwire-capture-recorder")

    def _announce(self, instruments: Iterable[Instrument]) -> None:
        """Start a file for each market of ours not yet recorded."""
        new = [i for i in instruments if i.exchange == self.exchange and i.symbol not in self.instruments
               and (self.symbols is None or i.symbol in self.symbols)]
        if not new:
            return
        write_instruments(self.folder, new)
        for inst in new:
            self.instruments[inst.symbol] = inst
            path = self.folder / f"{self.exchange}_{market_token(inst)}_{self._stamp}.gz"
            for n in range(2, 1000):  # a recording started in the same second into the same folder: never append to it
                if not path.exists():
                    break
                path = self.folder / f"{self.exchange}_{market_token(inst)}_{self._stamp}-{n}.gz"
            self.files[inst.symbol] = CaptureFile(path)

    def _on_message(self, subject: str, message: Message) -> None:
        if self.failure is not None:
            return
        if isinstance(message, Markets):
            if message.exchange == self.exchange:
                self._announce(message.instruments)
            return
        if not isinstance(message, _RECORDED) or message.exchange != self.exchange:
            return
        file = self.files.get(message.symbol)
        if file is not None:
            file.add(capture_line(self.clock(), message, self.instruments[message.symbol]))

    def flush(self) -> None:
        """Write every file's buffered lines; a write that fails stops the recording (files stay whole)."""
        if self.failure is not None:
            return
        for file in self.files.values():
            try:
                file.flush()
            except OSError as exc:
                self.failure = exc
                self.stopped.set()  # whoever runs the recorder says why (`failure`)
                return

    async def _loop(self) -> None:
        while self.failure is None:
            await asyncio.sleep(self.flush_seconds)
            self.flush()

    async def close(self) -> None:
        """Stop listening, write what is buffered (unless the disk is full) and close every file."""
        await stop_listening(self._subs, self._task)
        self._task = None
        self.flush()
        for file in self.files.values():
            if self.failure is not None:
                file.discard()  # the disk is full: what was not written stays out, the file ends on a whole record
                continue
            try:
                file.close()
            except OSError as exc:
                self.failure = exc
                self.stopped.set()

    def summary(self) -> list[dict[str, Any]]:
        """Per market: its file, whole lines and bytes on disk."""
        return [{"symbol": symbol, "path": str(f.path), "lines": f.lines, "bytes": f.size} for symbol, f in sorted(self.files.items())
                if f.size]
