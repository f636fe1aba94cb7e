"""Runs: start a strategy in a mode, keep its outcome (report, log, components, message trail) on disk.

A run is stored as a directory under `<data_dir>/runs/<run_id>/`: `run.json` (what was asked
and its status), `report.json`, `messages.jsonl` (the hub), `log.jsonl` and one JSON file per
UI component. Backtest run ids from the CLI are a digest of their inputs, so the same backtest
twice is the same run with byte-identical files; runs the server starts get a fresh id each
(see `services/runs.py`), and their `run.json` says `running` until the worker replaces it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import numpy as np

from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.core.outside_signals import read_line
from coinwire.core.rollup import nests, parse_timeframe
from coinwire.engine.backtest import BacktestConfig, BacktestRuntime, PerpHistory, Series, timeframe_ns
from coinwire.engine.book_backtest import BookBacktestRuntime, capture_instrument
from coinwire.engine.hub import HubMessage, page
from coinwire.engine.message_pages import MessagePages
from coinwire.engine.registry import strategy_name
from coinwire.engine.report import build_report
from coinwire.engine.runtime import RunStopped, Runtime, StrategyFailed
from coinwire.engine.strategy import Strategy, StrategyParams, params_json, parse_params

if TYPE_CHECKING:
    from coinwire.store.store import Store

__all__ = [
    "HEADLINE", "PreparedRun", "prepare_any_backtest", "RunOutcome", "RunStopped", "RunStore", "backtest_run_id", "finish_backtest",
    "fit_timeframe", "load_candles", "parse_balances", "parse_funds", "parse_time", "prepare_backtest", "recorded_candles", "run_backtest",
]

HEADLINE = ("final_equity", "total_return", "sharpe", "max_drawdown", "entries", "exits", "fees")  # what a run list shows

_FUTURES_FILE = re.compile(r"^.+-(\w+)-futures\.(?:feather|json|json\.gz)$")  # freqtrade's PAIR-TF-futures trade candles
_BALANCE = re.compile(r"^(?P<exchange>[a-z0-9_\-]+):(?P<currency>[A-Za-z0-9]+)=(?P<amount>[0-9.]+)$")


def parse_funds(values: Sequence[str]) -> dict[str, dict[str, str]]:
    """`["binance:USDT=10000", "kraken:BTC=0.5"]` -> {"binance": {"USDT": "10000"}, "kraken": {"BTC": "0.5"}}.

    Exchanges keep the order they are first given in: the first is the run's default exchange.
    """
    if not values:
        raise InvalidInput("missing_balance", "give the run's funds, e.g. --balance binance:USDT=10000")
    funds: dict[str, dict[str, str]] = {}
    for value in values:
        m = _BALANCE.match(value.strip())
        if m is None:
            raise InvalidInput("invalid_balance", f"balance {value!r} must look like EXCHANGE:CURRENCY=AMOUNT, e.g. binance:USDT=10000")
        balances = funds.setdefault(m["exchange"], {})
        currency = m["currency"].upper()
        if currency in balances:
            raise InvalidInput("invalid_balance", f"{currency} on {m['exchange']} is given twice")
        balances[currency] = m["amount"]
    return funds


def parse_balances(values: Sequence[str]) -> tuple[str, dict[str, str]]:
    """`["binance:USDT=10000", "binance:BTC=0.5"]` -> ("binance", {"USDT": "10000", "BTC": "0.5"}): a backtest's one exchange."""
    funds = parse_funds(values)
    if len(funds) != 1:
        raise InvalidInput("invalid_balance", f"a backtest trades on one exchange; got {', '.join(sorted(funds))} "
                           "(a paper or live run can trade on several)")
    ((exchange, balances),) = funds.items()
    return exchange, balances


def parse_time(value: str | int | None, field: str) -> int | None:
    """Unix seconds, or an ISO 8601 date/time (UTC unless it says otherwise) -> unix seconds."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CoinwireError("invalid_time", f"{field} must be unix seconds or an ISO 8601 date, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def load_candles(data: Sequence[str] | None, exchange: str, cls: type[Strategy], params: dict[str, Any], data_path: Path) -> list[Any]:
    """Candles for a backtest: the given files or folders, else the history store at the strategy's symbol and timeframe."""
    from coinwire.history import load_data_arg
    from coinwire.history.store import HistoryStore, default_history_root

    if data:
        candles: list[Any] = []
        for item in data:
            candles += load_data_arg(Path(item), exchange=exchange)
        return candles
    declared = cls.parameters()
    symbol = params.get("symbol", declared.get("symbol"))
    timeframe = params.get("timeframe", declared.get("timeframe"))
    if not symbol or not timeframe:
        raise CoinwireError("history_missing", "pass --data, or give the strategy a symbol and timeframe stored in history")
    return [HistoryStore(default_history_root(data_path)).load(exchange, symbol, timeframe)]


async def recorded_candles(store: Store, data: Sequence[str] | None, cls: type[Strategy], params: dict[str, Any],
                           config: BacktestConfig, known: Collection[str] = ()) -> list[Any] | None:
    """The candles `data` asks for when it is `["recorded:EXCHANGE"]` (history.recorded), None when it names files.

    Only the strategy's `symbol` is read when it has one (a recording may hold thousands of markets); the
    range is the backtest's. The recorded exchange must be the one the balances are on.
    """
    from coinwire.history.recorded import is_recorded, load_recorded, recorded_exchange

    specs = [item for item in data or () if is_recorded(item)]
    if not specs:
        return None
    if len(specs) != len(data or ()) or len(specs) > 1:
        raise InvalidInput("invalid_data", "recorded:EXCHANGE is a backtest's whole data: one of it, and no files beside it")
    exchange = recorded_exchange(specs[0])
    symbol = params.get("symbol", cls.parameters().get("symbol"))
    found = await load_recorded(store, exchange, [str(symbol)] if symbol else None, config.start, config.end, known)
    if exchange != config.exchange:
        raise InvalidInput("invalid_balance", f"the balances are on {config.exchange} and the candles recorded on {exchange}: "
                           f"give the balances as {exchange}:CURRENCY=AMOUNT", exchange=exchange)
    return found


SIGNALS_FILE = "signals.jsonl"  # recorded outside signals, beside a backtest's candles (docs/SIGNALS.md)


def load_recorded_signals(data: Sequence[str]) -> list[dict[str, Any]]:
    """The outside signals recorded beside the candles: `signals.jsonl` in each data folder (or a data file's folder).

    One normalised signal a line (core.outside_signals.read_line; what GET /api/v1/signals/{provider}/received
    answers), ordered by time, a file's order kept for equal times. A bad line is refused naming the file and line.
    """
    folders = dict.fromkeys(Path(item) if Path(item).is_dir() else Path(item).parent for item in data)
    found: list[dict[str, Any]] = []
    for folder in folders:
        path = folder / SIGNALS_FILE
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = msgspec.json.decode(line)
            except msgspec.DecodeError:
                raise InvalidInput("invalid_signal", f"{path}:{number}: not JSON", field="line") from None
            found.append(read_line(raw, f"{path}:{number}"))
    return sorted(found, key=lambda signal: signal["ts"])


def backtest_run_id(strategy: str, params: dict[str, Any], config: BacktestConfig, series: Sequence[Series],
                    signals: Sequence[dict[str, Any]] = ()) -> str:
    digest = hashlib.blake2b(digest_size=8)
    if signals:  # only then: ids of runs without recorded signals never change
        digest.update(msgspec.json.encode(list(signals)))
    digest.update(json.dumps([strategy, {k: str(v) for k, v in sorted(params.items())}, _config_key(config)],
                             sort_keys=True).encode())
    for s in sorted(series, key=lambda s: (s.symbol, s.timeframe)):
        digest.update(f"{s.symbol}|{s.timeframe}|{s.n}".encode())
        digest.update(s.time_ns[[0, -1]].tobytes())
        digest.update(np.float64(s.close.sum()).tobytes())
    return "bt-" + digest.hexdigest()


def _config_key(config: BacktestConfig) -> dict[str, Any]:
    """The config as a run id digests it: without `rules` when there are none, so ids of runs without rules never change."""
    out: dict[str, Any] = msgspec.to_builtins(config)
    if not out.get("rules"):
        out.pop("rules", None)
    return out


class RunOutcome(msgspec.Struct):
    run_id: str
    strategy: str
    mode: str
    status: str  # running | finished | failed | stopped
    params: dict[str, Any]
    report: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    metrics: dict[str, Any] | None = None  # the report's HEADLINE figures, so a run list need not read reports
    created_at: float | None = None  # wall clock, unix seconds: runs the server starts (CLI runs stay byte-identical)
    finished_at: float | None = None


class PreparedRun(NamedTuple):
    """A backtest checked and ready: every refusal of bad input has happened by now."""

    cls: type[Strategy]
    params: StrategyParams
    name: str
    runtime: BacktestRuntime | BookBacktestRuntime
    timeframe_note: str | None = None  # says the timeframe was taken from the data (the user gave none), to show them


def prepare_any_backtest(
    cls: type[Strategy], raw_params: dict[str, Any], data: Sequence[str] | None, config: BacktestConfig, data_path: Path,
    run_id: str | None = None, candle_cls: type[BacktestRuntime] = BacktestRuntime,
    book_cls: type[BookBacktestRuntime] = BookBacktestRuntime,
) -> PreparedRun:
    """A backtest over what `data` holds: recorded order books (raw captures) fill against the book, candles against candles.

    `cls` is resolved by the caller (`coinwire.strategies.registry.load_strategy`: a built-in's name or a file).
    """
    from coinwire.history.capture_writer import read_instruments
    from coinwire.history.formats import capture_markets

    captures = capture_markets(Path(item) for item in data) if data else []
    if not captures:
        signals = load_recorded_signals(data or ())
        futures = load_perpetual(data, config.exchange, cls, raw_params) if data else None
        if futures is not None:
            candles, perpetuals = futures
            return prepare_backtest(cls, raw_params, candles, config, run_id=run_id, runtime_cls=candle_cls, perpetuals=perpetuals,
                                    signals=signals)
        candles = load_candles(data, config.exchange, cls, raw_params, data_path)
        return prepare_backtest(cls, raw_params, candles, config, run_id=run_id, runtime_cls=candle_cls, signals=signals)
    if len(captures) > 1:
        found = ", ".join(f"{symbol} ({exchange})" for symbol, exchange, _ in captures)
        raise InvalidInput("invalid_data", f"an L2 backtest replays one market's recording; the data holds {found}")
    symbol, source, files = captures[0]
    params = parse_params(cls, raw_params)
    name = strategy_name(cls)
    wanted = str(params.get("symbol", cls.parameters().get("symbol", "")))
    perpetual = source == "binanceusdm" and wanted.partition(":")[0] == symbol and ":" in wanted
    recorded = read_instruments(files[0].parent).get(symbol.replace("/", "").lower())  # a `coinwire record` folder's
    instrument = capture_instrument(symbol, source, config.exchange, config.fee, perpetual=perpetual, recorded=recorded)
    if run_id is None:
        digest = hashlib.blake2b(digest_size=8)
        digest.update(json.dumps([name, {k: str(v) for k, v in sorted(params.items())}, _config_key(config)],
                                 sort_keys=True).encode())
        for path in files:
            digest.update(f"{path.name}|{path.stat().st_size}".encode())
        run_id = "bt-" + digest.hexdigest()
    return PreparedRun(cls, params, name, book_cls(run_id, files, instrument, config))


def load_perpetual(data: Sequence[str], exchange: str, cls: type[Strategy],
                   params: dict[str, Any]) -> tuple[list[Any], dict[str, PerpHistory]] | None:
    """A perpetual's trade candles, mark candles and funding rates when `data` is one folder in freqtrade's futures layout
    holding the strategy's symbol (`XRP/USDT:USDT`); None otherwise (a spot backtest's data).

    The timeframe is the strategy's `timeframe` when given, else its default when the folder has it, else the finest there.
    """
    from coinwire.history.futures import load_futures

    declared = cls.parameters()
    symbol = str(params.get("symbol", declared.get("symbol", "")))
    if len(data) != 1 or ":" not in symbol or not Path(data[0]).is_dir():
        return None
    folder = Path(data[0])
    token = symbol.replace("/", "_").replace(":", "_")
    found = sorted({m.group(1) for p in folder.iterdir() if (m := _FUTURES_FILE.match(p.name)) and p.name.startswith(f"{token}-")},
                   key=timeframe_ns)
    if not found:
        return None
    timeframe = str(params.get("timeframe", declared.get("timeframe", found[0])))
    if "timeframe" not in params and timeframe not in found:
        timeframe = found[0]
    loaded = load_futures(folder, symbol, timeframe, exchange)
    mark = None if loaded.mark_candles is None else Series.from_candles(loaded.mark_candles)
    candles = Series.from_candles(loaded.candles)
    return [candles], {candles.symbol: PerpHistory(mark, [(f.ts, f.rate) for f in loaded.funding], loaded.gaps)}


def prepare_backtest(
    cls: type[Strategy], raw_params: dict[str, Any], candles: Sequence[Any], config: BacktestConfig,
    run_id: str | None = None, runtime_cls: type[BacktestRuntime] = BacktestRuntime,
    perpetuals: dict[str, PerpHistory] | None = None, signals: Sequence[dict[str, Any]] = (),
) -> PreparedRun:
    """Check the strategy's parameters, clip the history and fund the wallet set: bad input raises here.

    `perpetuals`: the symbols of `candles` that are perpetuals, with their mark candles and funding rates;
    `signals`: recorded outside signals to replay at their times (`load_recorded_signals`).
    """
    series = [c if isinstance(c, Series) else Series.from_candles(c) for c in candles]
    name = strategy_name(cls)
    raw_params, note = fit_timeframe(cls, name, raw_params, series)
    params = parse_params(cls, raw_params)
    run_id = run_id or backtest_run_id(name, params, config, series, signals)
    runtime = runtime_cls(run_id, series, config, perpetuals) if perpetuals else runtime_cls(run_id, series, config)
    runtime.recorded_signals = list(signals)
    if note is None:
        return PreparedRun(cls, params, name, runtime)
    runtime.logs.append((runtime.now_ns(), "info", note))
    return PreparedRun(cls, params, name, runtime, note)


def fit_timeframe(
    cls: type[Strategy], name: str, raw_params: dict[str, Any], series: Sequence[Series]
) -> tuple[dict[str, Any], str | None]:
    """The strategy's timeframe checked against the candles given, before anything runs.

    Why: a strategy's declared timeframe (ma_cross: 5m) is a guess made without the data; on
    `BTC_USDT-1h.json` it used to run the whole backtest and fail at the end. So with no
    `timeframe` given, the data's own timeframe is used (unless the declared one is loaded
    as it is), and a note says so; a `timeframe` given that the loaded candles cannot make
    (only timeframes whose UTC buckets are whole runs of the finest loaded bars, core.rollup.nests) is refused with
    `timeframe_unavailable`, naming the data's timeframe. Strategies without a `timeframe`
    parameter, or whose symbol is not in the data, are left to the runtime.
    """
    declared = cls.parameters()
    if "timeframe" not in declared or not series:
        return raw_params, None
    symbol = raw_params.get("symbol", declared.get("symbol")) if "symbol" in declared else None
    mine = [s for s in series if s.symbol == symbol] if symbol is not None else list(series)
    if not mine:
        return raw_params, None
    finest: dict[str, Series] = {}  # per symbol: the bars the runtime trades on and rolls up
    for s in mine:
        if s.symbol not in finest or s.tf_ns < finest[s.symbol].tf_ns:
            finest[s.symbol] = s
    loaded = {s.timeframe for s in mine}
    data_timeframes = sorted({s.timeframe for s in finest.values()}, key=timeframe_ns)
    what = f"{' and '.join(data_timeframes)} candles of {', '.join(sorted(finest))}"
    given = raw_params.get("timeframe")
    if given is None:
        default = declared["timeframe"]
        if default in loaded or len(data_timeframes) != 1:
            return raw_params, None
        chosen = data_timeframes[0]
        return {**raw_params, "timeframe": chosen}, (
            f"timeframe {chosen}, the data's: {name}'s default {default} is not in the {what}")
    wanted = parse_timeframe(str(given))
    if str(given) in loaded or all(nests(parse_timeframe(s.timeframe), wanted) for s in finest.values()):
        return raw_params, None
    raise InvalidInput(
        "timeframe_unavailable",
        f"timeframe {given} cannot be made from the {what} (only {data_timeframes[-1]} or what rolls up from it): "
        f"use timeframe={data_timeframes[-1]}",
        timeframe=str(given), data_timeframe=data_timeframes[-1],
    )


def finish_backtest(prepared: PreparedRun) -> RunOutcome:
    """Run a prepared backtest to its end; a raising strategy gives `failed`, a stop request `stopped`."""
    cls, params, name, runtime = prepared.cls, prepared.params, prepared.name, prepared.runtime
    run_id = runtime.run_id
    outcome = RunOutcome(run_id=run_id, strategy=name, mode="backtest", status="finished",
                         params=params_json(params))
    meta: dict[str, Any] = {}
    try:
        runtime.run(cls, params)
    except StrategyFailed as failure:
        outcome.status = "failed"
        outcome.error = str(failure)
        outcome.traceback = failure.traceback
        runtime.logs.append((runtime.now_ns(), "error", failure.traceback))
    except RunStopped as stop:
        outcome.status = "stopped"
        outcome.error = str(stop) or "stopped on request"
        meta["stopped_at"] = runtime.now_ns() // 1_000_000_000
        runtime.logs.append((runtime.now_ns(), "warning", outcome.error))
    if runtime.halted is not None and outcome.status == "finished":  # a rule set's stop_run
        outcome.status = "stopped"
        outcome.error = runtime.halted
    if isinstance(runtime, BookBacktestRuntime):
        meta["fills_against"] = "book"
    else:  # the path assumed inside a bar, and how many bars it decided (both legs of an OCO inside the bar's range)
        meta["intrabar"] = runtime.config.intrabar
        meta["bars_with_both_legs"] = runtime.sim.bars_with_both_legs
    outcome.report = build_report(runtime, {"run_id": run_id, "strategy": name, "mode": "backtest", "status": outcome.status, **meta})
    return outcome


def run_backtest(
    cls: type[Strategy], raw_params: dict[str, Any], candles: Sequence[Any], config: BacktestConfig
) -> tuple[RunOutcome, BacktestRuntime | BookBacktestRuntime]:
    """Run a backtest to its end. Bad input raises; a strategy that raises gives a `failed` outcome."""
    prepared = prepare_backtest(cls, raw_params, candles, config)
    return finish_backtest(prepared), prepared.runtime


class RunStore:
    """Runs on disk, one directory each; writes are atomic per file (temp + rename).

    `run.json` is the record: its `status` says whether the run is complete. While a run is
    running, its worker appends whole lines to `messages.jsonl` and `log.jsonl` and rewrites
    changed components; readers ignore a last line that is not finished yet.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, run_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", run_id):
            raise NotFound("run_not_found", f"no run {run_id!r}")
        return self.root / run_id

    def folder(self, run_id: str) -> Path:
        """Where a run's files are (whether or not it exists yet)."""
        return self._dir(run_id)

    def save(self, outcome: RunOutcome, runtime: Runtime) -> Path:
        folder = self._dir(outcome.run_id)
        (folder / "components").mkdir(parents=True, exist_ok=True)
        encoder = msgspec.json.Encoder()
        _write(folder / "report.json", encoder.encode(outcome.report))
        _write(folder / "messages.jsonl", b"".join(encoder.encode(m.to_dict()) + b"\n" for m in runtime.hub))
        _write(folder / "log.jsonl",
               b"".join(encoder.encode({"ts": ts, "level": lv, "message": msg}) + b"\n" for ts, lv, msg in runtime.logs))
        for component in runtime.components.values():
            _write(folder / "components" / f"{component.id}.json", encoder.encode(component.to_dict()))
        self.write_record(outcome)  # last: the status in run.json says the files above are complete
        return folder

    def write_record(self, outcome: RunOutcome) -> None:
        """Write `run.json` (the report stays in report.json; its headline figures go in `metrics`)."""
        folder = self._dir(outcome.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        metrics = {k: outcome.report.get(k) for k in HEADLINE} if outcome.report else outcome.metrics
        _write(folder / "run.json", msgspec.json.encode(msgspec.structs.replace(outcome, report=None, metrics=metrics)))

    def record(self, run_id: str) -> RunOutcome:
        meta = self._dir(run_id) / "run.json"
        try:
            return msgspec.json.decode(meta.read_bytes(), type=RunOutcome)
        except FileNotFoundError:
            raise NotFound("run_not_found", f"no run {run_id!r}") from None

    def list(self) -> list[dict[str, Any]]:
        """Every run, newest first (server runs by start time, CLI runs by when they were stored)."""
        found: list[tuple[float, dict[str, Any]]] = []
        if not self.root.is_dir():
            return []
        for folder in self.root.iterdir():
            meta = folder / "run.json"
            try:
                run = json.loads(meta.read_bytes())
                when = run.get("created_at") or meta.stat().st_mtime
            except (FileNotFoundError, NotADirectoryError, ValueError):
                continue  # not a run, or replaced while we looked
            found.append((when, run))
        found.sort(key=lambda item: (item[0], item[1]["run_id"]), reverse=True)
        return [run for _, run in found]

    def get(self, run_id: str) -> dict[str, Any]:
        folder = self._dir(run_id)
        meta = folder / "run.json"
        if not meta.is_file():
            raise NotFound("run_not_found", f"no run {run_id!r}")
        run: dict[str, Any] = json.loads(meta.read_bytes())
        report = folder / "report.json"
        run["report"] = json.loads(report.read_bytes()) if report.is_file() else None
        return run

    def messages(self, run_id: str, offset: int = 0, limit: int = 100, method: str | None = None,
                 direction: str | None = None) -> tuple[int, builtins.list[dict[str, Any]]]:
        self.get(run_id)
        lines = _complete_lines(self._dir(run_id) / "messages.jsonl")
        if method is None and direction is None:  # decode just the page
            return len(lines), [json.loads(line) for line in lines[offset : offset + limit]]
        decoder = msgspec.json.Decoder()
        messages = [HubMessage(**decoder.decode(line)) for line in lines]
        total, selected = page(messages, offset, limit, method, direction)
        return total, [m.to_dict() for m in selected]

    def message_pages(self, run_id: str, offset: int = 0, limit: int | None = None, method: str | None = None,
                      direction: str | None = None) -> MessagePages:
        """The run's messages (all of them unless `limit`) read a page at a time: an answer of every message of a long
        run is streamed, not held whole (engine/message_pages.py)."""
        self.get(run_id)
        return MessagePages(self._dir(run_id) / "messages.jsonl", offset, limit, method, direction)

    def log(self, run_id: str) -> builtins.list[dict[str, Any]]:
        self.get(run_id)
        return [json.loads(line) for line in _complete_lines(self._dir(run_id) / "log.jsonl")]

    def components(self, run_id: str) -> builtins.list[dict[str, Any]]:
        self.get(run_id)
        folder = self._dir(run_id) / "components"
        return [json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def _complete_lines(path: Path) -> list[bytes]:
    """The finished lines of a JSON-lines file that a worker may be appending to right now."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data[: data.rfind(b"\n") + 1].split(b"\n") if line]


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
