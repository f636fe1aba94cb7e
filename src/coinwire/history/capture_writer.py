"""Writes market data as raw Binance-format capture files: the format history.binance_capture reads back.

Why Binance's format for every exchange: the replay feed and the L2 backtest already read it
(`<recv_ts_ns> <json>` a line, combined-stream messages and REST depth snapshots), so a
recording of the demo feed or of any CCXT exchange backtests on its order book with no second
reader. A market's stream name is its base and quote run together (`btcusdt`); its instrument
(precision, steps, fees), which the format cannot carry, goes beside the captures in
`instruments.jsonl`, one line per market, so the backtest trades the market it recorded.

Why a file of gzip members: every flush compresses the whole lines buffered since the last one
as one complete gzip member, written at the end of the file. A full disk refuses a member,
which is then cut off again (`ftruncate`), so the file stays a valid gzip stream of whole
records; a process killed mid-write leaves at most one cut member, which the reader drops
(binance_capture reads up to the last whole record).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Final

import msgspec

from coinwire.core.instruments import Instrument
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Ticker, TradeTick

__all__ = ["INSTRUMENTS_FILE", "CaptureFile", "capture_line", "market_token", "read_instruments", "write_instruments"]

INSTRUMENTS_FILE: Final = "instruments.jsonl"  # not a candle file name (.json) nor a capture (.gz): readers of the folder skip it
_NS_PER_MS: Final = 1_000_000
_encode = msgspec.json.Encoder().encode
_instrument = msgspec.json.Decoder(Instrument)


def market_token(instrument: Instrument) -> str:
    """The market in stream names, `btcusdt`: what binance_capture.CaptureParser expects of the instrument."""
    return (instrument.base + instrument.quote).lower()


def _units(value: int, decimals: int) -> str:
    return f"{Decimal(value).scaleb(-decimals):f}"


def _levels(levels: Iterable[tuple[int, int]], inst: Instrument) -> list[tuple[str, str]]:
    return [(_units(p, inst.price_decimals), _units(q, inst.size_decimals)) for p, q in levels]


def capture_line(recv_ts: int, message: BookSnapshot | BookDelta | TradeTick | BookTicker | Ticker, inst: Instrument) -> bytes:
    """One capture line (with its newline) for a market-data message of `inst`'s market.

    Event times are Binance's milliseconds, so a message read back has its time to the millisecond.
    """
    market = market_token(inst)
    upper = market.upper()
    ms = message.ts // _NS_PER_MS
    if isinstance(message, BookSnapshot):  # the REST depth snapshot: no stream
        payload: object = {"lastUpdateId": message.last_update_id, "E": ms, "bids": _levels(message.bids, inst),
                           "asks": _levels(message.asks, inst)}
    elif isinstance(message, BookDelta):
        data: dict[str, object] = {"e": "depthUpdate", "E": ms, "s": upper, "U": message.first_update_id,
                                   "u": message.last_update_id, "b": _levels(message.bids, inst), "a": _levels(message.asks, inst)}
        if message.prev_update_id:
            data["pu"] = message.prev_update_id  # futures diffs chain on `pu`
        payload = {"stream": f"{market}@depth@100ms", "data": data}
    elif isinstance(message, TradeTick):
        trade_id = int(message.trade_id) if message.trade_id.isdigit() else zlib.crc32(message.trade_id.encode())
        payload = {"stream": f"{market}@trade", "data": {
            "e": "trade", "E": ms, "s": upper, "t": trade_id, "p": _units(message.price, inst.price_decimals),
            "q": _units(message.size, inst.size_decimals), "T": ms, "m": message.aggressor == "sell"}}
    elif isinstance(message, BookTicker):
        payload = {"stream": f"{market}@bookTicker", "data": {
            "u": message.update_id, "s": upper, "b": _units(message.bid, inst.price_decimals),
            "B": _units(message.bid_size, inst.size_decimals), "a": _units(message.ask, inst.price_decimals),
            "A": _units(message.ask_size, inst.size_decimals), "E": ms}}
    else:  # a venue's 24 h ticker, as Binance's `@ticker` stream (kept in the recording; the replay models book and trades)
        fields = {"c": message.last, "b": message.bid, "a": message.ask, "o": message.open, "h": message.high, "l": message.low,
                  "v": message.base_volume, "q": message.quote_volume}
        payload = {"stream": f"{market}@ticker", "data": {"e": "24hrTicker", "E": ms, "s": upper,
                                                          **{k: str(v) for k, v in fields.items() if v is not None}}}
    return b"%d %s\n" % (recv_ts, _encode(payload))


class CaptureFile:
    """One capture file, written as a gzip member per `flush()` of whole lines (see the module docstring).

    The file is created on the first flush that has lines, so a market that sent nothing leaves no file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0  # bytes of whole members on disk
        self.lines = 0  # lines on disk
        self._pending: list[bytes] = []
        self._fd: int | None = None

    def add(self, line: bytes) -> None:
        self._pending.append(line)

    def flush(self) -> None:
        """Write what is buffered as one gzip member; on any OSError (a full disk) the file is cut back to its last member."""
        if not self._pending:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        block = gzip.compress(b"".join(self._pending), compresslevel=6, mtime=0)
        view = memoryview(block)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            os.ftruncate(self._fd, self.size)
            os.lseek(self._fd, self.size, os.SEEK_SET)
            raise
        self.size += len(block)
        self.lines += len(self._pending)
        self._pending.clear()

    def discard(self) -> None:
        """Close without writing what is buffered (after a full disk)."""
        self._pending.clear()
        self.close()

    def close(self) -> None:
        """Flush (a full disk keeps the file at its last member and raises) and close."""
        try:
            self.flush()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def write_instruments(folder: Path, instruments: Iterable[Instrument]) -> None:
    """Append the recorded markets' instruments to the folder's `instruments.jsonl` (a later line wins)."""
    with open(folder / INSTRUMENTS_FILE, "ab") as out:
        out.write(b"".join(_encode(inst) + b"\n" for inst in instruments))


def read_instruments(folder: Path) -> dict[str, Instrument]:
    """The instruments recorded beside the captures in `folder`, by market token (`btcusdt`); empty when none were."""
    try:
        raw = (folder / INSTRUMENTS_FILE).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out: dict[str, Instrument] = {}
    for line in raw.splitlines():
        try:
            inst = _instrument.decode(line)
        except msgspec.DecodeError:
            continue  # a line cut by a full disk or a kill: the line before it for that market still counts
        out[market_token(inst)] = inst
    return out
