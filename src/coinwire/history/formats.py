"""Candle file readers: freqtrade/CCXT OHLCV JSON, freqtrade feather, Binance kline CSV, CSV with a header, raw Binance captures, `.npy`.

Why sniff content rather than trust names alone: the same `.gz` ending holds a freqtrade
candle file or a raw websocket capture, and a CSV may or may not have a header. The names
still carry what the rows cannot: the symbol and timeframe of `BTC_USDT-5m.json`
(freqtrade) or `BTCUSDT-1h-2024-01.zip` (data.binance.vision), and freqtrade's futures names
say a perpetual (`XRP_USDT_USDT-1h-futures`: `XRP/USDT:USDT`) and what the prices are
(`-mark`, `-funding_rate`: the series' kind). Explicit arguments override
both; a timeframe that contradicts the rows' spacing is refused, never silently relabelled.

Every failure is an InvalidInput with a stable code: `unknown_format`, `empty_file`,
`invalid_row` (naming file and line or row), `missing_column`, `timeframe_mismatch`,
`symbol_required`, `exchange_required`, `no_candle_files`.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.symbols import normalize_symbol
from coinwire.core.trade_candles import TradeCandles
from coinwire.history.candles import RECORD_DTYPE, Candles, concat, timeframe_seconds
from coinwire.history.columnar import FEATHER_MAGIC, epoch_seconds, is_header_csv, read_feather, read_header_csv
from coinwire.messages import TradeTick

__all__ = [
    "CANDLE_SUFFIXES",
    "candle_kind",
    "capture_markets",
    "NameHints",
    "detect_format",
    "file_groups",
    "load_data_arg",
    "name_hints",
    "read_candles",
    "read_files",
    "timeframe_of_seconds",
]

CANDLE_SUFFIXES: Final = (".json", ".json.gz", ".csv", ".csv.gz", ".zip", ".npy", ".feather", ".gz")
# quote currencies tried, longest first, to split a Binance market id like BTCUSDT
_QUOTES: Final = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "GBP",
    "AUD", "JPY", "RUB", "UAH", "ZAR", "IDR", "PLN", "RON", "ARS", "MXN", "COP", "USD", "XRP", "DOGE", "TRX",
)  # fmt: skip
_FREQTRADE_NAME: Final = re.compile(
    r"(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<timeframe>[1-9][0-9]*[smhdwM])(?:-(?P<kind>[A-Za-z_]+))?"
)
# freqtrade's candle types in file names -> the series' kind (history.candles.KINDS)
_KIND_OF_NAME: Final = {
    None: "trade", "futures": "trade", "spot": "trade", "mark": "mark", "index": "index",
    "premiumindex": "premium_index", "funding_rate": "funding_rate",
}  # fmt: skip
_BINANCE_NAME: Final = re.compile(
    r"(?P<market>[A-Z0-9]+)-(?P<timeframe>[1-9][0-9]*[smhdwM])-\d{4}-\d{2}(?:-\d{2})?"
)
_CAPTURE_LINE: Final = re.compile(rb"\d+ \{")
_STREAM: Final = re.compile(rb'"stream":"([a-z0-9]+)@')
_HEAD: Final = 1 << 16  # bytes sniffed to identify a capture
_CSV_HEADER: Final = re.compile(rb"[A-Za-z_\"]")
_BINANCE_HEADER: Final = b"open_time,open,high,low,close,volume,close_time"  # data.binance.vision's kline header


class NameHints(NamedTuple):
    """What a file's name says: symbol and timeframe (None when it does not say)."""

    symbol: str | None
    timeframe: str | None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".json.gz", ".csv.gz", ".json", ".csv", ".zip", ".npy", ".feather", ".gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def split_market(market: str) -> str | None:
    """`BTCUSDT` -> `BTC/USDT` by the known quote currencies (None when none fits)."""
    market = market.upper()
    for quote in _QUOTES:
        if market.endswith(quote) and len(market) > len(quote):
            return f"{market[: -len(quote)]}/{quote}"
    return None


def name_hints(path: Path | str) -> NameHints:
    """Symbol and timeframe from `BTC_USDT-5m.json(.gz)`, `BTC_USDT_USDT-1h-futures.json` or `BTCUSDT-1h-2024-01.csv`."""
    stem = _stem(Path(path))
    match = _FREQTRADE_NAME.fullmatch(stem)
    if match:
        settle = f":{match['settle']}" if match["settle"] else ""
        return NameHints(f"{match['base']}/{match['quote']}{settle}".upper(), match["timeframe"])
    match = _BINANCE_NAME.fullmatch(stem)
    if match:
        return NameHints(split_market(match["market"]), match["timeframe"])
    return NameHints(None, None)


def candle_kind(path: Path | str) -> str:
    """What a file's prices are, from freqtrade's name: `-mark` mark, `-funding_rate` funding rates, else trades."""
    match = _FREQTRADE_NAME.fullmatch(_stem(Path(path)))
    suffix = match["kind"].lower() if match and match["kind"] else None
    kind = _KIND_OF_NAME.get(suffix)
    if kind is None:
        raise InvalidInput(
            "unknown_format", f"{path}: unknown candle type -{suffix} (known: futures, mark, index, premiumIndex, funding_rate)",
            path=str(path),
        )  # fmt: skip
    return kind


def timeframe_of_seconds(seconds: int) -> str:
    """The CCXT spelling of a bar length: 300 -> `5m`, 3600 -> `1h`, 86400 -> `1d`."""
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- raw bytes -----------------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    """The file's content, unpacked from gzip or from a zip holding one file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput("file_not_found", f"{path}: no such file", path=str(path)) from None
    except IsADirectoryError:
        raise InvalidInput("invalid_input", f"{path} is a directory, not a candle file", path=str(path)) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InvalidInput("invalid_file", f"{path}: broken gzip data: {exc}", path=str(path)) from exc
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise InvalidInput(
                    "unknown_format", f"{path}: a zip must hold exactly one CSV file, found {members}", path=str(path)
                )
            return archive.read(members[0])
    return raw


def detect_format(path: Path | str, content: bytes | None = None) -> str:
    """`ohlcv_json`, `feather`, `binance_csv`, `header_csv`, `binance_capture` or `npy`, from the (unpacked) content."""
    path = Path(path)
    if path.name.endswith(".npy"):
        return "npy"
    data = _read_bytes(path) if content is None else content
    if data.startswith(FEATHER_MAGIC):
        return "feather"
    head = data[:4096].lstrip()
    if not head:
        raise InvalidInput("empty_file", f"{path} is empty", path=str(path))
    if head[:1] in (b"[", b"{"):
        return "ohlcv_json"
    if _CAPTURE_LINE.match(head):
        return "binance_capture"
    first_line = head.split(b"\n", 1)[0].strip()
    if b"," in first_line and _CSV_HEADER.match(first_line) and not first_line.startswith(_BINANCE_HEADER):
        if is_header_csv(first_line):
            return "header_csv"
        raise InvalidInput(
            "missing_column",
            f"{path}: a CSV header must name a time column (date/timestamp/time) and open, high, low, close"
            f" (volume optional), got {first_line[:200].decode('utf-8', 'replace')!r}",
            path=str(path),
        )
    if first_line.count(b",") >= 5:
        return "binance_csv"
    raise InvalidInput(
        "unknown_format",
        f"{path}: not a known candle format (freqtrade/CCXT OHLCV JSON, freqtrade feather, Binance kline CSV, "
        f"CSV with a header, raw Binance capture, .npy)",
        path=str(path),
    )


# --- parsers: each returns (time in s, 5 float columns, hints from the content) --------------------------
class _Parsed(NamedTuple):
    time: np.ndarray
    columns: np.ndarray  # shape (rows, 5): open, high, low, close, volume
    symbol: str | None = None
    timeframe: str | None = None
    exchange: str | None = None


def _rows_to_arrays(rows: list[Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    """[[time, o, h, l, c, v, ...], ...] (numbers or numeric strings) to int64 times and a float block."""
    if not rows:
        return np.empty(0, np.int64), np.empty((0, 5))
    try:
        block = np.array([row[:6] for row in rows], dtype=np.float64)
        if block.ndim != 2 or block.shape[1] != 6:
            raise ValueError("ragged")
    except (ValueError, TypeError, IndexError):
        for number, row in enumerate(rows):
            try:
                if not isinstance(row, list) or len(row) < 6:
                    raise ValueError(f"expected [time, open, high, low, close, volume, ...], got {row!r:.80}")
                [float(v) for v in row[:6]]
            except (ValueError, TypeError) as exc:
                raise InvalidInput("invalid_row", f"{where} row {number}: {exc}", row=number) from None
        raise  # pragma: no cover - a failure above always names its row
    raw_time = np.array([row[0] for row in rows], dtype=np.int64)
    return epoch_seconds(raw_time), block[:, 1:]


def _parse_json(path: Path, data: bytes) -> _Parsed:
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidInput("invalid_file", f"{path}: invalid JSON: {exc}", path=str(path)) from exc
    hints: dict[str, str | None] = {}
    if isinstance(doc, dict):
        rows = doc.get("ohlcv", doc.get("candles"))
        hints = {k: doc.get(k) if isinstance(doc.get(k), str) else None for k in ("symbol", "timeframe", "exchange")}
    else:
        rows = doc
    if not isinstance(rows, list):
        raise InvalidInput(
            "unknown_format",
            f"{path}: JSON candles must be a list of [time, open, high, low, close, volume] "
            f"or an object with an 'ohlcv' list",
            path=str(path),
        )
    time, columns = _rows_to_arrays(rows, str(path))
    return _Parsed(time, columns, hints.get("symbol"), hints.get("timeframe"), hints.get("exchange"))


def _parse_csv(path: Path, data: bytes) -> _Parsed:
    lines = data.decode("utf-8", "replace").splitlines()
    skip = 1 if lines and _CSV_HEADER.match(lines[0].lstrip().encode()) else 0
    body = [line for line in lines[skip:] if line.strip()]
    try:
        # times are exact as float64: even µs stay below 2**53
        table = np.loadtxt(body, delimiter=",", usecols=range(6), dtype=np.float64, ndmin=2)
    except ValueError:
        for number, line in enumerate(lines[skip:], skip + 1):
            if not line.strip():
                continue
            cells = line.split(",")
            try:
                if len(cells) < 6:
                    raise ValueError(f"expected at least 6 columns, got {len(cells)}")
                int(cells[0])
                [float(c) for c in cells[1:6]]
            except ValueError as exc:
                raise InvalidInput("invalid_row", f"{path}:{number}: {exc}", path=str(path), line=number) from None
        raise  # pragma: no cover - a failure above always names its line
    return _Parsed(epoch_seconds(table[:, 0]), table[:, 1:], exchange="binance")


def _parse_feather(path: Path, data: bytes) -> _Parsed:
    return _Parsed(*read_feather(path, data))


def _parse_header_csv(path: Path, data: bytes) -> _Parsed:
    return _Parsed(*read_header_csv(path, data))


_PARSERS: Final = {
    "ohlcv_json": _parse_json, "feather": _parse_feather, "binance_csv": _parse_csv, "header_csv": _parse_header_csv,
}  # fmt: skip


def _capture_identity(path: Path, head: bytes) -> tuple[str, str]:
    """(symbol, exchange) of a raw Binance capture, from its first stream name and diff format."""
    stream = _STREAM.search(head)
    if stream is None:
        raise InvalidInput("unknown_format", f"{path}: capture without a combined-stream message", path=str(path))
    market = stream.group(1).decode().upper()
    symbol = split_market(market)
    if symbol is None:
        raise InvalidInput("symbol_required", f"{path}: cannot split market {market}: pass --symbol", path=str(path))
    return symbol, "binanceusdm" if b'"pu":' in head else "binance"  # USD-M diffs chain with `pu`


def _parse_capture(path: Path, data: bytes) -> _Parsed:
    return _capture_candles([path], *_capture_identity(path, data[:_HEAD]))


def _capture_candles(paths: list[Path], symbol: str, exchange: str) -> _Parsed:
    """The `trade` messages of capture files (one stream, in order) as 1-minute candles.

    Files are read as one stream because a minute can straddle two files; minutes
    without a trade are absent, never invented (core.trade_candles builds the bars).
    """
    from coinwire.history.binance_capture import iter_capture  # the one capture parser

    base, quote = symbol.split("/")
    # 8 decimals is what Binance prints, so no price or size is refused as too precise
    instrument = Instrument(exchange=exchange, symbol=symbol, base=base, quote=quote, price_decimals=8, size_decimals=8)
    series = TradeCandles(60, keep=1 << 40)
    for _, message in iter_capture(paths, instrument):
        if type(message) is TradeTick:
            series.add(message.ts, message.price, message.size)
    rows = list(series.candles.values())
    time = np.array([c[0] for c in rows], dtype=np.int64)
    columns = np.array([c[1:6] for c in rows], dtype=np.float64).reshape(-1, 5) / 1e8
    return _Parsed(time, columns, symbol, "1m", exchange)


def capture_markets(paths: Iterable[Path | str]) -> list[tuple[str, str, list[Path]]]:
    """The raw captures among `paths` (folders expanded, files sorted) per market: (symbol, exchange, files in order)."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    markets: dict[tuple[str, str], list[Path]] = {}
    for path in files:
        head = _capture_head(path)
        if head is not None:
            markets.setdefault(_capture_identity(path, head), []).append(path)
    return [(symbol, exchange, group) for (symbol, exchange), group in markets.items()]


def _capture_head(path: Path) -> bytes | None:
    """The first bytes of a gzip capture file, or None when the file is not a capture."""
    if not path.name.endswith(".gz") or path.name.endswith((".json.gz", ".csv.gz")):
        return None
    from coinwire.history.binance_capture import gzip_chunks  # the one reader of capture files

    head = b""
    try:
        for chunk, _ in gzip_chunks(path):
            head += chunk
            if len(head) >= _HEAD:
                break
    except (OSError, zlib.error):
        return None
    head = head[:_HEAD]
    return head if _CAPTURE_LINE.match(head) else None


def _parse_npy(path: Path) -> tuple[np.ndarray, str | None]:
    try:
        records = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InvalidInput("invalid_file", f"{path}: not a readable .npy file: {exc}", path=str(path)) from exc
    if records.dtype != RECORD_DTYPE:
        raise InvalidInput("unknown_format", f"{path}: .npy of {records.dtype}, not candle records", path=str(path))
    return records, path.parent.name or None


# --- one file --------------------------------------------------------------------------------------------
def read_candles(
    path: Path | str, exchange: str | None = None, symbol: str | None = None, timeframe: str | None = None,
    *, default_exchange: str | None = None,
) -> Candles:
    """The candles of one file. Arguments override what the name or content says; `default_exchange`
    labels a file when neither the arguments, the content nor the folder name say its exchange."""
    path = Path(path)
    hints = name_hints(path)
    if path.name.endswith(".npy"):
        records, folder = _parse_npy(path)
        key = _key(path, exchange or folder, symbol or hints.symbol, timeframe or hints.timeframe, None, default_exchange)
        if not len(records):
            raise InvalidInput("empty_file", f"{path} holds no candles", path=str(path))
        return Candles.from_records(*key, records)
    data = _read_bytes(path)
    kind = detect_format(path, data)
    parsed = _PARSERS.get(kind, _parse_capture)(path, data)
    return _build(path, kind, parsed, exchange, symbol, timeframe, default_exchange)


def _build(
    path: Path, kind: str, parsed: _Parsed, exchange: str | None, symbol: str | None, timeframe: str | None,
    default_exchange: str | None = None,
) -> Candles:
    """Candles from parsed rows: arguments over content over the name; the timeframe checked against the rows."""
    hints = name_hints(path)
    if not len(parsed.time):
        raise InvalidInput("empty_file", f"{path} holds no candles", path=str(path))
    steps = np.diff(parsed.time)
    spacing = _common_step(steps)
    exchange_, symbol_, timeframe_ = _key(
        path,
        exchange or parsed.exchange,
        symbol or parsed.symbol or hints.symbol,
        timeframe or parsed.timeframe or hints.timeframe,
        spacing,
        default_exchange,
    )
    if spacing is not None and spacing != timeframe_seconds(timeframe_) and kind != "binance_capture":
        raise InvalidInput(
            "timeframe_mismatch",
            f"{path}: the rows are {timeframe_of_seconds(spacing)} apart but the timeframe is {timeframe_}",
            path=str(path),
            timeframe=timeframe_,
            rows_timeframe=timeframe_of_seconds(spacing),
        )
    cols = parsed.columns
    series_kind = "trade" if kind == "binance_capture" else candle_kind(path)
    try:
        return Candles(
            exchange_, symbol_, timeframe_, parsed.time, cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4],
            kind=series_kind,
        )  # fmt: skip
    except InvalidInput as exc:
        raise InvalidInput(exc.code, f"{path}: {exc.message}", path=str(path), **exc.data) from None


def _common_step(steps: np.ndarray) -> int | None:
    """The most frequent positive spacing between rows (None with fewer than two rows)."""
    positive = steps[steps > 0]
    if not len(positive):
        return None
    values, counts = np.unique(positive, return_counts=True)
    return int(values[np.argmax(counts)])


def _key(
    path: Path, exchange: str | None, symbol: str | None, timeframe: str | None, spacing: int | None,
    default_exchange: str | None = None,
) -> tuple[str, str, str]:
    if symbol is None:
        raise InvalidInput(
            "symbol_required", f"{path}: the name does not say the symbol (like BTC_USDT-5m.json): pass --symbol", path=str(path)
        )
    if timeframe is None:
        if spacing is None:
            raise InvalidInput("timeframe_required", f"{path}: cannot tell the timeframe: pass --timeframe", path=str(path))
        timeframe = timeframe_of_seconds(spacing)
    timeframe_seconds(timeframe)
    if exchange is None:
        exchange = _exchange_from_folder(path, default_exchange)
    return exchange, normalize_symbol(symbol), timeframe


def _exchange_from_folder(path: Path, default: str | None = None) -> str:
    """freqtrade keeps `user_data/data/<exchange>/`; shared data names folders `binance-spot-1h` and
    `binance-usdm-futures` (CCXT's `binanceusdm`, tried before `binance`).
    A folder named otherwise gives `default`, for readers that need no exchange (the frontier)."""
    import ccxt  # only when no exchange was given: importing it takes most of a second

    folder = path.resolve().parent.name.lower()
    words = re.split(r"[-_.]", folder)
    for candidate in (folder, "".join(words[:2]), words[0]):
        if candidate in ccxt.exchanges:
            return str(candidate)
    if default is not None:
        return default
    raise InvalidInput(
        "exchange_required",
        f"{path}: cannot tell the exchange (the folder {folder!r} is not a CCXT exchange id): pass --exchange",
        path=str(path),
    )


# --- files or a folder (the engine's --data) ---------------------------------------------------------------
def _candle_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(CANDLE_SUFFIXES) and "-trades" not in p.name and not p.name.startswith(".")
    )


def file_groups(paths: Iterable[Path | str]) -> list[list[Path]]:
    """The files in reading units: each candle file alone, and the capture files of one market
    together in the given order (a minute may straddle two capture files)."""
    groups: list[list[Path]] = []
    captures: dict[tuple[str, str], list[Path]] = {}
    for item in paths:
        path = Path(item)
        head = _capture_head(path)
        if head is None:
            groups.append([path])
            continue
        identity = _capture_identity(path, head)
        if identity not in captures:
            captures[identity] = []
            groups.append(captures[identity])
        captures[identity].append(path)
    return groups


def read_files(
    paths: Iterable[Path | str], exchange: str | None = None, symbol: str | None = None, timeframe: str | None = None,
    *, default_exchange: str | None = None,
) -> list[Candles]:
    """Candles of several files, one per series (sorted by key): parts of a series are merged,
    later files winning, and capture files of one market are read as one stream."""
    series: dict[tuple[str, str, str, str], list[Candles]] = defaultdict(list)
    for group in file_groups(paths):
        if len(group) == 1:
            candles = read_candles(group[0], exchange, symbol, timeframe, default_exchange=default_exchange)
        else:
            head = _capture_head(group[0]) or b""
            parsed = _capture_candles(group, *_capture_identity(group[0], head))
            candles = _build(group[0], "binance_capture", parsed, exchange, symbol, timeframe, default_exchange)
        series[candles.series_key].append(candles)
    return [concat(parts) for _, parts in sorted(series.items())]


def load_data_arg(
    path_or_dir: Path | str,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    *,
    default_exchange: str | None = None,
) -> list[Candles]:
    """Candles for `--data FILE_OR_DIR`: a file (symbol and timeframe override its name), or every
    candle file in a folder, where symbol and timeframe select the series instead. Files of one
    series (the two days of a capture) are merged; the result is sorted by key."""
    path = Path(path_or_dir)
    if not path.exists():
        raise InvalidInput("file_not_found", f"{path}: no such file or folder", path=str(path))
    if path.is_file():
        return [read_candles(path, exchange, symbol, timeframe, default_exchange=default_exchange)]
    wanted_symbol = normalize_symbol(symbol) if symbol else None
    if timeframe is not None:
        timeframe_seconds(timeframe)
    files = _candle_files(path)
    chosen = [
        f
        for f in files
        if _may_match(name_hints(f), wanted_symbol, timeframe)
    ]
    found = [
        c
        for c in read_files(chosen, exchange, default_exchange=default_exchange)
        if (wanted_symbol is None or c.symbol == wanted_symbol) and (timeframe is None or c.timeframe == timeframe)
        and c.kind == "trade"  # a perpetual's mark and funding files are read by history.futures
    ]
    if not found:
        wanted = " ".join(x for x in (wanted_symbol, timeframe) if x) or "candles"
        names = ", ".join(f.name for f in files[:12]) + (" ..." if len(files) > 12 else "") or "no candle files"
        raise InvalidInput("no_candle_files", f"{path}: no {wanted} here (found: {names})", path=str(path))
    return found


def _may_match(hints: NameHints, symbol: str | None, timeframe: str | None) -> bool:
    """False only when the name says another symbol or timeframe (saves reading the file)."""
    if symbol and hints.symbol and normalize_symbol(hints.symbol) != symbol:
        return False
    return not (timeframe and hints.timeframe and hints.timeframe != timeframe)
