"""Runs: start a strategy in a mode, keep its outcome (report, log, components, message trail) on disk.

A run is stored as a directory under `<data_dir>/runs/<run_id>/`: `run.json` (what was asked
and its status), `report.json`, `messages.jsonl` (the hub), `log.jsonl` and one JSON file per
UI component. Backtest run ids are a digest of their inputs, so the same backtest twice is the
same run with byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import msgspec
import numpy as np

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.engine.backtest import BacktestConfig, BacktestRuntime, Series
from coinwire.engine.hub import HubMessage, page
from coinwire.engine.registry import load_strategy, strategy_name
from coinwire.engine.report import build_report
from coinwire.engine.runtime import Runtime, StrategyFailed
from coinwire.engine.strategy import parse_params

__all__ = ["RunOutcome", "RunStore", "parse_balances", "run_backtest", "backtest_run_id"]

_BALANCE = re.compile(r"^(?P<exchange>[a-z0-9_\-]+):(?P<currency>[A-Za-z0-9]+)=(?P<amount>[0-9.]+)$")


def parse_balances(values: Sequence[str]) -> tuple[str, dict[str, str]]:
    """`["binance:USDT=10000", "binance:BTC=0.5"]` -> ("binance", {"USDT": "10000", "BTC": "0.5"})."""
    if not values:
        raise InvalidInput("missing_balance", "give the run's funds, e.g. --balance binance:USDT=10000")
    exchanges: set[str] = set()
    balances: dict[str, str] = {}
    for value in values:
        m = _BALANCE.match(value.strip())
        if m is None:
            raise InvalidInput("invalid_balance", f"balance {value!r} must look like EXCHANGE:CURRENCY=AMOUNT, e.g. binance:USDT=10000")
        exchanges.add(m["exchange"])
        currency = m["currency"].upper()
        if currency in balances:
            raise InvalidInput("invalid_balance", f"{currency} is given twice")
        balances[currency] = m["amount"]
    if len(exchanges) != 1:
        raise InvalidInput("invalid_balance", f"a backtest trades on one exchange; got {', '.join(sorted(exchanges))}")
    return exchanges.pop(), balances


def backtest_run_id(strategy: str, params: dict[str, Any], config: BacktestConfig, series: Sequence[Series]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(json.dumps([strategy, {k: str(v) for k, v in sorted(params.items())}, msgspec.to_builtins(config)],
                             sort_keys=True).encode())
    for s in sorted(series, key=lambda s: (s.symbol, s.timeframe)):
        digest.update(f"{s.symbol}|{s.timeframe}|{s.n}".encode())
        digest.update(s.time_ns[[0, -1]].tobytes())
        digest.update(np.float64(s.close.sum()).tobytes())
    return "bt-" + digest.hexdigest()


class RunOutcome(msgspec.Struct):
    run_id: str
    strategy: str
    mode: str
    status: str  # finished | failed
    params: dict[str, Any]
    report: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None


def run_backtest(
    strategy_ref: str, raw_params: dict[str, Any], candles: Sequence[Any], config: BacktestConfig
) -> tuple[RunOutcome, BacktestRuntime]:
    """Run a backtest to its end. Bad input raises; a strategy that raises gives a `failed` outcome."""
    cls = load_strategy(strategy_ref)
    params = parse_params(cls, raw_params)
    series = [c if isinstance(c, Series) else Series.from_candles(c) for c in candles]
    name = strategy_name(cls)
    run_id = backtest_run_id(name, params, config, series)
    runtime = BacktestRuntime(run_id, series, config)
    outcome = RunOutcome(run_id=run_id, strategy=name, mode="backtest", status="finished",
                         params={k: str(v) if not isinstance(v, (bool, int, float, str)) else v for k, v in params.items()})
    try:
        runtime.run(cls, params)
    except StrategyFailed as failure:
        outcome.status = "failed"
        outcome.error = str(failure)
        outcome.traceback = failure.traceback
        runtime.logs.append((runtime.now_ns(), "error", failure.traceback))
    outcome.report = build_report(runtime, {"run_id": run_id, "strategy": name, "mode": "backtest", "status": outcome.status})
    return outcome, runtime


class RunStore:
    """Runs on disk, one directory each; writes are atomic per file (temp + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, run_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", run_id):
            raise NotFound("run_not_found", f"no run {run_id!r}")
        return self.root / run_id

    def save(self, outcome: RunOutcome, runtime: Runtime) -> Path:
        folder = self._dir(outcome.run_id)
        (folder / "components").mkdir(parents=True, exist_ok=True)
        encoder = msgspec.json.Encoder()
        _write(folder / "report.json", encoder.encode(outcome.report))
        _write(folder / "messages.jsonl", b"\n".join(encoder.encode(m.to_dict()) for m in runtime.hub) + b"\n")
        _write(folder / "log.jsonl", b"\n".join(encoder.encode({"ts": ts, "level": lv, "message": msg}) for ts, lv, msg in runtime.logs) + b"\n")
        for component in runtime.components.values():
            _write(folder / "components" / f"{component.id}.json", encoder.encode(component.to_dict()))
        summary = msgspec.structs.replace(outcome, report=None)
        _write(folder / "run.json", encoder.encode(summary))  # last: a run.json means the run is complete
        return folder

    def list(self) -> list[dict[str, Any]]:
        out = []
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            meta = folder / "run.json"
            if meta.is_file():
                out.append(json.loads(meta.read_bytes()))
        return out

    def get(self, run_id: str) -> dict[str, Any]:
        folder = self._dir(run_id)
        meta = folder / "run.json"
        if not meta.is_file():
            raise NotFound("run_not_found", f"no run {run_id!r}")
        run = json.loads(meta.read_bytes())
        report = folder / "report.json"
        run["report"] = json.loads(report.read_bytes()) if report.is_file() else None
        return run

    def messages(self, run_id: str, offset: int = 0, limit: int = 100, method: str | None = None,
                 direction: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        self.get(run_id)
        decoder = msgspec.json.Decoder()
        lines = (self._dir(run_id) / "messages.jsonl").read_bytes().splitlines()
        messages = [HubMessage(**decoder.decode(line)) for line in lines if line]
        total, selected = page(messages, offset, limit, method, direction)
        return total, [m.to_dict() for m in selected]

    def components(self, run_id: str) -> list[dict[str, Any]]:
        self.get(run_id)
        folder = self._dir(run_id) / "components"
        return [json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
