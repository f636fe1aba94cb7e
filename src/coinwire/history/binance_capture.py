"""Parses raw Binance websocket captures (gzip, `<recv_ts_ns> <json>` per line) into coinwire messages.

A capture interleaves combined-stream messages `{"stream": "btcusdt@depth@100ms", "data": ...}`
(`depth` diffs, `trade`, `bookTicker`) with the REST depth snapshot `{"lastUpdateId", "bids",
"asks"}` taken while the diffs were buffered. Spot and USD-M futures captures share the
format; futures diffs carry `pu`, which becomes `BookDelta.prev_update_id` (core.book_sync chains
on `pu == previous u`, Binance's futures book sync). The recorded USD-M capture has no
`markPrice` stream, so its mark comes from the documented rule (core.margin.mark_price).

Decimal strings become integers at the instrument's precision exactly: a string with
non-zero digits beyond that precision is refused, never rounded.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from os import PathLike
from typing import Any, Final, Generic, TypeVar

import msgspec

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import PERPETUAL, Instrument
from coinwire.core.numbers import POW10
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick

__all__ = [
    "BINANCE_BTCUSDT",
    "BINANCE_USDM_BTCUSDT",
    "BINANCE_USDM_BTCUSDT_PERP",
    "CaptureParser",
    "MarketData",
    "PathArg",
    "capture_paths",
    "decimal_parser",
    "gzip_chunks",
    "iter_capture",
]

# Book sizes on the wire have 8 decimals and a few resting orders use 6 (older lot sizes), so
# sizes are kept at 8 decimals while orders still step in 0.00001 BTC.
BINANCE_BTCUSDT: Final = Instrument(
    exchange="binance",
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    price_decimals=2,
    size_decimals=8,
    tick=1,
    step=1000,
    min_size=1000,
    min_notional=5 * 10**18,
    maker_fee=100_000,
    taker_fee=100_000,
)

# USD-M perpetual (CCXT exchange id `binanceusdm`): tick 0.1 USDT, step 0.001 BTC.
BINANCE_USDM_BTCUSDT: Final = Instrument(
    exchange="binanceusdm",
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    price_decimals=1,
    size_decimals=3,
    tick=1,
    step=1,
    min_size=1,
    min_notional=100 * 10**18,
    maker_fee=20_000,
    taker_fee=50_000,
)

# The same market as the linear perpetual it is, in CCXT's unified form: what paper and backtests of
# perpetuals replay the capture as. Its leverage brackets and clearance fee are data
# (venues.brackets.perpetual_fields), added by whoever builds the venue.
BINANCE_USDM_BTCUSDT_PERP: Final = msgspec.structs.replace(
    BINANCE_USDM_BTCUSDT, symbol="BTC/USDT:USDT", kind=PERPETUAL, settle="USDT", funding_interval_s=8 * 3600
)

_CACHE_LIMIT: Final = 1 << 18  # distinct strings remembered per converter before starting over
_NS_PER_MS: Final = 1_000_000
_GZIP_WBITS: Final = 31  # zlib's gzip container

RawLevels = list[tuple[str, str]]
MarketData = BookSnapshot | BookDelta | TradeTick | BookTicker  # what a capture line becomes
_Data = TypeVar("_Data")


def decimal_parser(decimals: int, field: str) -> Callable[[str], int]:
    """A converter from a plain decimal string to integer units of 10**-decimals.

    Fast because it never builds a Decimal: drop the dot, `int()`, and check that the
    digits beyond the precision were zeros. Only unsigned plain decimals are accepted.
    """

    def parse(text: str) -> int:
        digits = text.replace(".", "", 1)
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidInput("invalid_number", f"{field} must be a plain decimal, got {text!r}", field=field)
        dot = text.find(".")
        extra = (len(text) - dot - 1 if dot >= 0 else 0) - decimals
        if extra <= 0:
            return int(digits) * POW10[-extra]
        units, rest = divmod(int(digits), POW10[extra])
        if rest:
            raise InvalidInput("too_precise", f"{field} {text} has more than {decimals} decimal places", field=field)
        return units

    return parse


class _Memo(dict[str, int]):
    """String -> units with the conversion done once per distinct string (levels repeat a lot)."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[str], int]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, key: str) -> int:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        value = self[key] = self.convert(key)
        return value


# --- raw payloads (field names are Binance's) -----------------------------------------------
class _Depth(msgspec.Struct):
    E: int
    U: int
    u: int
    b: RawLevels
    a: RawLevels
    pu: int = 0


class _Trade(msgspec.Struct):
    t: int
    p: str
    q: str
    T: int
    m: bool


class _Ticker(msgspec.Struct):
    u: int
    b: str
    B: str
    a: str
    A: str
    E: int = 0


class _Snapshot(msgspec.Struct):
    lastUpdateId: int
    bids: RawLevels
    asks: RawLevels
    E: int = 0


class _Envelope(msgspec.Struct, Generic[_Data]):
    data: _Data


class _AnyMsg(msgspec.Struct):
    stream: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")


_STREAM_PREFIX: Final = b'{"stream":"'
_STREAM_START: Final = len(_STREAM_PREFIX)
_snapshot_decoder = msgspec.json.Decoder(_Snapshot)
_any_decoder = msgspec.json.Decoder(_AnyMsg)
# stream kind -> (decoder of the whole combined-stream message, decoder of its `data`)
_DECODERS: Final[dict[str, tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]]]] = {
    kind: (msgspec.json.Decoder(_Envelope[raw]), msgspec.json.Decoder(raw))  # type: ignore[valid-type]
    for kind, raw in (("depth", _Depth), ("trade", _Trade), ("bookTicker", _Ticker))
}

_Handler = Callable[[bytes, int], MarketData | None]


def _skip(payload: bytes, recv_ts: int) -> None:
    return None


class CaptureParser:
    """Turns one capture payload into a coinwire message for one instrument.

    The stream name is read straight from the bytes (`{"stream":"btcusdt@trade",...`) so each
    line is decoded once, into a typed struct; other key orders take a slower path.
    Streams of other kinds (klines, ...) are skipped; another symbol's stream is an error.
    """

    __slots__ = ("instrument", "exchange", "symbol", "_market", "_price", "_size", "_builders", "_handlers")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.exchange = instrument.exchange
        self.symbol = instrument.symbol
        self._market = (instrument.base + instrument.quote).lower()
        self._price = _Memo(decimal_parser(instrument.price_decimals, "price"))
        self._size = _Memo(decimal_parser(instrument.size_decimals, "size"))
        self._builders: dict[str, Callable[[Any, int], MarketData]] = {
            "depth": self._delta,
            "trade": self._trade,
            "bookTicker": self._ticker,
        }
        self._handlers: dict[bytes, _Handler] = {}  # stream name -> decode + build

    def parse(self, payload: bytes, recv_ts: int) -> MarketData | None:
        """The message in one JSON payload (None for a stream kind coinwire does not model)."""
        if payload.startswith(_STREAM_PREFIX):
            stream = payload[_STREAM_START : payload.index(b'"', _STREAM_START)]
            handler = self._handlers.get(stream)
            if handler is None:
                handler = self._handlers[stream] = self._handler(stream.decode())
            return handler(payload, recv_ts)
        envelope = _any_decoder.decode(payload)
        if not envelope.stream:
            return self._snapshot(_snapshot_decoder.decode(payload), recv_ts)
        kind = self._kind(envelope.stream)
        if kind not in _DECODERS:
            return None
        return self._builders[kind](_DECODERS[kind][1].decode(envelope.data), recv_ts)

    def _handler(self, stream: str) -> _Handler:
        kind = self._kind(stream)
        if kind not in _DECODERS:
            return _skip
        decode = _DECODERS[kind][0].decode
        build = self._builders[kind]

        def handle(payload: bytes, recv_ts: int) -> MarketData:
            return build(decode(payload).data, recv_ts)

        return handle

    def _kind(self, stream: str) -> str:
        """`btcusdt@depth@100ms` -> `depth`, refusing another market's stream."""
        market, _, kind = stream.partition("@")
        if market != self._market:
            raise InvalidInput(
                "symbol_mismatch", f"stream {stream!r} is not {self.symbol}", stream=stream, symbol=self.symbol
            )
        return kind.partition("@")[0]

    def levels(self, raw: RawLevels) -> list[tuple[int, int]]:
        price = self._price
        size = self._size
        return [(price[p], size[q]) for p, q in raw]

    def _delta(self, d: _Depth, recv_ts: int) -> BookDelta:
        return BookDelta(
            self.exchange, self.symbol, d.E * _NS_PER_MS, d.U, d.u, self.levels(d.b), self.levels(d.a), d.pu
        )

    def _snapshot(self, s: _Snapshot, recv_ts: int) -> BookSnapshot:
        ts = s.E * _NS_PER_MS if s.E else recv_ts
        return BookSnapshot(self.exchange, self.symbol, ts, s.lastUpdateId, self.levels(s.bids), self.levels(s.asks))

    def _trade(self, t: _Trade, recv_ts: int) -> TradeTick:
        aggressor = "sell" if t.m else "buy"  # `m`: the buyer was the maker, so the seller took
        price = self._price[t.p]
        return TradeTick(self.exchange, self.symbol, t.T * _NS_PER_MS, str(t.t), price, self._size[t.q], aggressor)

    def _ticker(self, k: _Ticker, recv_ts: int) -> BookTicker:
        price = self._price
        size = self._size
        ts = k.E * _NS_PER_MS if k.E else recv_ts
        return BookTicker(self.exchange, self.symbol, ts, k.u, price[k.b], size[k.B], price[k.a], size[k.A])


PathArg = str | PathLike[str]


def capture_paths(paths: PathArg | Iterable[PathArg]) -> list[PathArg]:
    """One path or several, as a list (the order is the replay order)."""
    return [paths] if isinstance(paths, (str, PathLike)) else list(paths)


def gzip_chunks(path: PathArg) -> Iterator[tuple[bytes, bool]]:
    """The decompressed bytes of a gzip file of one or more members, a megabyte of input at a time, each with
    whether the file so far ends on a whole member.

    Why not gzip.open: a recording is written a member per flush (history.capture_writer), and a recorder
    killed mid-write leaves a cut last member; gzip.open raises on it and loses the lines before the cut,
    where this hands them out and says the end was cut.
    """
    inflate = zlib.decompressobj(_GZIP_WBITS)
    fed = False
    with open(path, "rb") as stream:
        while raw := stream.read(1 << 20):
            while raw:
                out = inflate.decompress(raw)
                fed = True
                raw = b""
                if inflate.eof:
                    raw, inflate, fed = inflate.unused_data, zlib.decompressobj(_GZIP_WBITS), False
                    if raw.strip(b"\0") == b"":
                        raw = b""  # zero padding after the last member, as gzip(1) allows
                yield out, not fed


def _gzip_lines(path: PathArg) -> Iterator[bytes]:
    """The lines of a capture file; a cut last member (a recorder killed mid-write) gives the lines up to the last whole one."""
    tail = b""
    whole = True
    for chunk, ends_whole in gzip_chunks(path):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        whole = ends_whole
        yield from lines
    if tail and whole:
        yield tail


def iter_capture(paths: PathArg | Iterable[PathArg], instrument: Instrument) -> Iterator[tuple[int, MarketData]]:
    """(local receive time ns, message) for every modelled line of the capture files, in order.

    A malformed line raises InvalidInput ("invalid_capture") naming the file and line.
    """
    parse = CaptureParser(instrument).parse
    for path in capture_paths(paths):
        for number, line in enumerate(_gzip_lines(path), 1):
            if not line.strip():
                continue
            try:
                space = line.index(b" ")
                recv_ts = int(line[:space])
                message = parse(line[space + 1 :], recv_ts)
            except (ValueError, msgspec.DecodeError) as exc:
                raise InvalidInput("invalid_capture", f"{path}:{number}: {exc}", path=str(path), line=number) from exc
            except InvalidInput as exc:
                raise InvalidInput(exc.code, f"{path}:{number}: {exc.message}", path=str(path), line=number) from exc
            if message is not None:
                yield recv_ts, message
