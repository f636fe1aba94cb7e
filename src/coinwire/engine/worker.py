"""A run in its own process: `python -m coinwire.services.run_worker RUN_DIR` runs the job in `RUN_DIR/job.json`.

The server (`services/runs.py`) starts one worker per run, so a strategy that hangs, leaks or
crashes the interpreter takes only its own run down. The protocol, all through the run directory
except the first line:

- The worker checks everything first (strategy, parameters, history for the range, balances),
  writes `run.json` with status `running`, then ONE JSON line on stdout: `{"ready": true}`, or
  `{"error": {code, message, http_status}}` and exit 2. Every other stdout write, a strategy
  file's prints while it is imported included, goes to `output.log` (where the server also
  sends stderr).
- While it runs it appends hub messages and log lines, rewrites changed components and
  `progress.json` at least every FLUSH_SECONDS, so the API can show a run in progress.
- User input arrives as lines `{"component_id", "value"}` appended to `inbox.jsonl`; it reaches
  the strategy through `Runtime.deliver_input` (the only entry) at the next event boundary;
  a scheduled step (services.scheduler's `strategy_step`) as a line `{"step": name}`, delivered
  by `Runtime.deliver_step` (the strategy's `on_step`) at the same boundary; an outside signal
  (services.outside_signals) as `{"signal": {provider, method, ts, params}}`, delivered by
  `Runtime.deliver_outside_signal` (the strategy's `on_signal` callbacks) at the same boundary.
- SIGTERM stops the run at the next event boundary: status `stopped`, with its partial report.
- At the end `RunStore.save` writes every file; `run.json` last.

Backtests are the only mode today; a paper worker would use the same job file, inbox and flush
with a wall clock and a feed instead of `ControlledBacktest`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import msgspec

from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.core.outside_signals import read_line
from coinwire.engine.backtest import BacktestConfig, BacktestRuntime
from coinwire.engine.book_backtest import BookBacktestRuntime
from coinwire.engine.runs import RunOutcome, RunStopped, RunStore, finish_backtest, prepare_any_backtest
from coinwire.engine.runtime import SIGNAL_CALL, Runtime
from coinwire.engine.strategy import Strategy

__all__ = ["FLUSH_SECONDS", "Controlled", "ControlledBacktest", "ControlledBookBacktest", "Job", "RunControl", "main"]

FLUSH_SECONDS = 0.25  # how stale the files of a running run may be
POLL_SECONDS = 0.05  # how often the inbox is read


class Job(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the server asks a worker to run (written by the server as job.json)."""

    run_id: str
    mode: str
    strategy: str  # a built-in name or an absolute `file.py:ClassName`
    params: dict[str, Any]
    config: BacktestConfig
    data: list[str]  # candle files or folders; empty: the history store under data_path
    data_path: str
    created_at: float


class RunControl:
    """The worker's side of the channel: input read from the inbox, the stop flag, the periodic flush."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.inbox = folder / "inbox.jsonl"
        self.inputs: deque[tuple[str, Any]] = deque()
        self.steps: deque[str] = deque()  # scheduled steps (`{"step": name}` lines), delivered as on_step
        self.signals: deque[dict[str, Any]] = deque()  # outside signals (`{"signal": {...}}` lines), to on_signal callbacks
        self.stop_requested = False
        self._next_flush = 0.0  # flush at the first event boundary: components made in on_start show at once
        self._offset = 0
        self._sent_messages = self._sent_logs = 0
        self._versions: dict[str, int] = {}
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read_inbox, name="inbox", daemon=True)
        self._reader.start()

    def request_stop(self, *_: Any) -> None:
        self.stop_requested = True

    def due(self) -> bool:
        return (self.stop_requested or bool(self.inputs) or bool(self.steps) or bool(self.signals)
                or time.monotonic() >= self._next_flush)

    def service(self, runtime: Runtime, strategy: Any) -> None:
        """At an event boundary: stop if asked, deliver queued input, write what changed."""
        if self.stop_requested:
            self.flush(runtime)
            raise RunStopped("stopped on request")
        while self.inputs and strategy is not None:
            component_id, value = self.inputs.popleft()
            try:
                runtime.deliver_input(strategy, component_id, value)
            except CoinwireError as exc:  # e.g. a component the strategy has since replaced
                runtime.logs.append((runtime.now_ns(), "warning", f"input to {component_id!r} refused: {exc.message}"))
        while self.steps and strategy is not None:
            runtime.deliver_step(strategy, self.steps.popleft())
        while self.signals and strategy is not None:
            runtime.deliver_outside_signal(self.signals.popleft())
        self.flush(runtime)

    def flush(self, runtime: Runtime) -> None:
        encode = msgspec.json.encode
        messages = runtime.hub.messages[self._sent_messages :]
        if messages:
            _append(self.folder / "messages.jsonl", b"".join(encode(m.to_dict()) + b"\n" for m in messages))
            self._sent_messages += len(messages)
        logs = runtime.logs[self._sent_logs :]
        if logs:
            _append(self.folder / "log.jsonl", b"".join(encode({"ts": ts, "level": lv, "message": msg}) + b"\n" for ts, lv, msg in logs))
            self._sent_logs += len(logs)
        for component in runtime.components.values():
            if self._versions.get(component.id) != component.version:
                (self.folder / "components").mkdir(exist_ok=True)
                _replace(self.folder / "components" / f"{component.id}.json", encode(component.to_dict()))
                self._versions[component.id] = component.version
        write_progress(self.folder, runtime)
        self._next_flush = time.monotonic() + FLUSH_SECONDS

    def close(self) -> list[tuple[str, Any]]:
        """Stop reading; returns input that arrived too late to be delivered."""
        self._closed.set()
        self._reader.join(1.0)
        self._read_once()
        left = list(self.inputs)
        self.inputs.clear()
        return left

    def _read_inbox(self) -> None:
        while not self._closed.wait(POLL_SECONDS):
            self._read_once()

    def _read_once(self) -> None:
        try:
            with open(self.inbox, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
        for line in data[:end].splitlines():
            try:
                item = json.loads(line)
                if "step" in item:
                    self.steps.append(str(item["step"]))
                elif "signal" in item:
                    self.signals.append(read_line(item["signal"], "inbox"))
                else:
                    self.inputs.append((str(item["component_id"]), item.get("value")))
            except (ValueError, KeyError, TypeError, CoinwireError):
                continue  # the server writes whole JSON lines; anything else is not ours
        self._offset += end


class Controlled(Runtime):
    """A runtime with the worker's channel served between events (input, stop, flush)."""

    control: RunControl | None = None

    def call(self, where: str, callback: Callable[..., Any], *args: Any) -> Any:
        control = self.control
        # not from inside a delivery of the inbox's own items: the next would overtake the one being delivered
        if control is not None and where not in ("on_start", "on_input") and not where.startswith(SIGNAL_CALL) and control.due():
            control.service(self, self._strategy)
        return super().call(where, callback, *args)


class ControlledBacktest(Controlled, BacktestRuntime):
    """The candle backtest, served between events."""


class ControlledBookBacktest(Controlled, BookBacktestRuntime):
    """The L2 backtest, served between events."""


def write_progress(folder: Path, runtime: Runtime) -> None:
    _replace(folder / "progress.json", msgspec.json.encode({
        "pid": os.getpid(), "clock": runtime.now_ns() // 1_000_000_000, "start": runtime.start_ns // 1_000_000_000,
        "end": runtime.end_ns // 1_000_000_000, "events": runtime.events, "messages": len(runtime.hub),
    }))


def main(argv: list[str], load: Callable[[str], type[Strategy]]) -> int:
    """The worker process: `load` resolves the job's strategy (the entry point, services/run_worker.py, passes the registry's)."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m coinwire.services.run_worker RUN_DIR\n")
        return 64
    folder = Path(argv[0])
    job = msgspec.json.decode((folder / "job.json").read_bytes(), type=Job)
    store = RunStore(folder.parent)
    # stdout is the server's pipe for the ONE handshake line: keep it aside, and send what a
    # strategy file prints while it is imported to output.log (with stderr), so it cannot spoil the line
    sys.stdout.flush()
    pipe = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        if job.mode != "backtest":
            raise InvalidInput("mode_not_available", f"{job.mode} runs are not available yet; mode must be 'backtest'")
        prepared = prepare_any_backtest(load(job.strategy), job.params, job.data, job.config, Path(job.data_path), run_id=job.run_id,
                                        candle_cls=ControlledBacktest, book_cls=ControlledBookBacktest)
    except CoinwireError as exc:
        _handshake(pipe, {"error": {**exc.to_dict(), "http_status": exc.http_status}})
        return 2
    runtime = cast(Controlled, prepared.runtime)
    store.write_record(RunOutcome(run_id=job.run_id, strategy=prepared.name, mode=job.mode, status="running",
                                  params=job.params, created_at=job.created_at))
    write_progress(folder, runtime)
    control = RunControl(folder)
    signal.signal(signal.SIGTERM, control.request_stop)
    _handshake(pipe, {"ready": True})
    _redirect_stdout(folder / "output.log")
    runtime.control = control
    outcome = finish_backtest(prepared)
    runtime.control = None
    for component_id, _ in control.close():
        runtime.logs.append((runtime.now_ns(), "warning", f"input to {component_id!r} arrived after the run ended; not delivered"))
    outcome.created_at = job.created_at
    outcome.finished_at = time.time()
    store.save(outcome, runtime)
    write_progress(folder, runtime)
    return 0


def _handshake(pipe: Any, payload: dict[str, Any]) -> None:
    """The one line the server waits for; the pipe is closed after it (nothing else is read from it)."""
    pipe.write(json.dumps(payload) + "\n")
    pipe.close()


def _redirect_stdout(path: Path) -> None:
    """After the handshake, what the strategy prints goes to the run's output.log, not a pipe nobody reads."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.close(fd)


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
