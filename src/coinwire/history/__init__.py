"""Candle history: the Candles series, readers of candle files, a perpetual's futures data, and the on-disk HistoryStore."""

from coinwire.history.candles import COLUMNS, KINDS, RECORD_DTYPE, Candles, concat, format_time, timeframe_seconds
from coinwire.history.formats import detect_format, file_groups, load_data_arg, name_hints, read_candles, read_files
from coinwire.history.futures import FundingRate, FuturesData, load_futures
from coinwire.history.store import HistoryStore, SeriesInfo, default_history_root

__all__ = [
    "COLUMNS",
    "KINDS",
    "FundingRate",
    "FuturesData",
    "RECORD_DTYPE",
    "Candles",
    "HistoryStore",
    "SeriesInfo",
    "concat",
    "default_history_root",
    "detect_format",
    "file_groups",
    "format_time",
    "load_data_arg",
    "load_futures",
    "name_hints",
    "read_candles",
    "read_files",
    "timeframe_seconds",
]
