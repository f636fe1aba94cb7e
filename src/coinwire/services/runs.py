"""RunManager: starts strategy runs (backtests in their own processes, paper and live runs next to the gateway), stops them,
passes input on.

The run directory (see `engine/runs.py`, `engine/worker.py` and `services/run_worker.py`) is the source of truth: the
manager only keeps the child processes it started. A run is `running` until its worker writes
`finished`, `failed` or `stopped`; a worker that dies without doing so (a crash, a kill) is
marked here: `stopped` if a stop was asked for, otherwise `failed` with the process's output
(stderr included) appended to the run log. Other runs never notice.

Runs live as long as the server that started them: closing the manager stops them (they save
as `stopped` with a partial report), and a `running` record found at start-up, left by a
server that died, is stopped or marked failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec

from coinwire.core.errors import CoinwireError, Conflict, DomainError, InvalidInput, NotFound
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.runs import RunStore, parse_balances, parse_time, recorded_candles
from coinwire.engine.strategy import Strategy, params_json, parse_params
from coinwire.engine.warmup import HistorySource, parse_policy
from coinwire.engine.worker import Job
from coinwire.history.recorded import is_recorded, recorded_exchange
from coinwire.history.store import HistoryStore, default_history_root, path_inside
from coinwire.services.gateway import Gateway
from coinwire.services.paper_runs import PaperRuns
from coinwire.services.run_worker import MODULE as WORKER_MODULE
from coinwire.services.signals import Signals
from coinwire.store.store import Store
from coinwire.strategies.registry import builtin_strategies

__all__ = ["RunManager", "StartRequest", "Forbidden", "RUN_STATUSES", "RunListener"]

# told `run_started`, `run_stopped` (finished or stopped) or `run_failed` with the run's id, owner, strategy, mode,
# status and error (the notifier's `on_run`); a listener's failure is its own, never the run's
RunListener = Callable[[str, dict[str, Any]], Awaitable[None]]

RUN_STATUSES = ("running", "finished", "failed", "stopped")
HANDSHAKE_SECONDS = 120.0  # a worker loads its history before it answers; big files take a while
STOP_GRACE_SECONDS = 5.0  # after SIGTERM, before SIGKILL
OUTPUT_TAIL = 8000  # characters of a crashed worker's output copied into its run log


class Forbidden(DomainError):
    """The server's settings do not allow this (HTTP 403)."""

    http_status = 403
    rpc_code = -32005


class StartRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `PUT /runnables/{name}/start`."""

    mode: str = "backtest"
    start: int | str | None = None
    end: int | str | None = None
    balances: dict[str, str | int | float] | list[str] = msgspec.field(default_factory=dict)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    fee: str | float = "0.001"
    fill: str = "open"
    liquidity: str = "volume"
    intrabar: str = "pessimistic"  # candle backtests: the path assumed inside a bar (pessimistic, ohlc, olhc)
    data: str | list[str] | None = None
    # paper and live runs: `best_effort` starts without the history it could not load (the run log says what is
    # missing); `required` refuses to start with `warmup_unavailable` (engine/warmup.py)
    warmup: str = "best_effort"
    # rule sets scoped to the run, each in core.rules' JSON form (docs/RULES.md "Rules in backtests"); checked before it starts
    rules: list[dict[str, Any]] = msgspec.field(default_factory=list)


@dataclass
class _Child:
    process: asyncio.subprocess.Process
    watcher: asyncio.Task[None] | None = None
    stop_requested: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class RunManager:
    """Runs under `<data_dir>/runs`, and the worker processes of those this server started."""

    def __init__(self, data_path: Path, allow_user_strategies: bool, stop_grace: float = STOP_GRACE_SECONDS,
                 gateway: Gateway | None = None, history: Sequence[HistorySource] = (),
                 listeners: Sequence[RunListener] = (), signals: Signals | None = None, store: Store | None = None,
                 exchanges: Sequence[str] = ()) -> None:
        """`history`: where paper and live runs find their warm-up candles, in the order tried (services/warm_history.py);
        `signals`: where paper and live runs' strategy signals are stored and published;
        `store`: where backtests with `data: "recorded:EXCHANGE"` read the candles recorded from trades (`exchanges`: those configured)."""
        self.data_path = data_path
        self.store = RunStore(data_path / "runs")
        self.allow_user_strategies = allow_user_strategies
        self.stop_grace = stop_grace
        self._children: dict[str, _Child] = {}
        self.paper = PaperRuns(gateway, self.store, history, signals) if gateway is not None else None
        self.listeners = list(listeners)
        self._owners: dict[str, int | None] = {}  # run id -> who started it (this server's runs)
        self.candle_store = store
        self.exchanges = list(exchanges)

    async def _tell(self, event: str, run_id: str) -> None:
        """The listeners hear of a run's start or end, with what its record says."""
        if not self.listeners:
            return
        try:
            run = self.store.get(run_id)
        except NotFound:
            return
        info = {"run_id": run_id, "owner_id": self._owners.get(run_id), "strategy": run.get("strategy"), "mode": run.get("mode"),
                "status": run.get("status"), "reason": run.get("error")}
        for listener in self.listeners:
            try:
                await listener(event, info)
            except Exception:  # noqa: BLE001 - a listener's failure must not fail the run's start or stop
                pass

    async def _ended(self, run_id: str) -> None:
        try:
            status = self.store.record(run_id).status
        except NotFound:
            return
        if status != "running":
            await self._tell("run_failed" if status == "failed" else "run_stopped", run_id)

    # --- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Settle runs a previous server left `running`: stop their workers if alive, else mark them failed."""
        for run in self.store.list():
            if run["status"] != "running":
                continue
            pid = self._worker_pid(run["run_id"])
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                await self._wait_gone(pid, self.stop_grace)
            self._settle(run["run_id"], stopped=False, reason="the server that started this run exited before it finished")

    async def close(self) -> None:
        """Stop every run this server started (each saves itself as `stopped`)."""
        await asyncio.gather(*(self.stop(run_id) for run_id in list(self._children)), return_exceptions=True)
        if self.paper is not None:
            await self.paper.close()

    # --- what can run -------------------------------------------------------------------------
    def runnables(self) -> list[dict[str, Any]]:
        out = []
        for name, cls in sorted(builtin_strategies().items()):
            declared = cls.parameters()
            defaults = params_json(declared)
            params = [{"name": k, "type": _type_name(v), "default": defaults[k]} for k, v in declared.items()]
            out.append({"name": name, "doc": (cls.__doc__ or "").strip(), "module_doc": (sys.modules[cls.__module__].__doc__ or "").strip(),
                        "parameters": params})
        return out

    # --- start --------------------------------------------------------------------------------
    async def start(self, name: str, body: Any, confined: bool = False, owner_id: int | None = None,
                    funded: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Check the request, start its worker, wait for the worker's own checks; then the run is `running`.

        `confined`: the caller may not read the server's other files, so `data` paths must lie in the history directory.
        `owner_id`: who starts it; a paper or live run spends that user's accounts (a backtest has its own funds), and
        `funded(wallet_set_id)` is told the wallet set it gets.
        """
        request = _request(body)
        if request.mode in ("paper", "live"):
            if self.paper is None:
                raise InvalidInput("mode_not_available", f"this server has no gateway to run {request.mode} on")
            started = await self.paper.start(self._strategy_ref(name), request, owner_id, funded)
            self._owners[started["run_id"]] = owner_id
            await self._tell("run_started", started["run_id"])
            return started
        job = self._job(name, request, confined)
        folder = self.store.folder(job.run_id)
        folder.mkdir(parents=True)
        try:
            job = await self._recorded(job, request, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # a refused request leaves nothing behind
            raise
        (folder / "job.json").write_bytes(msgspec.json.encode(job))
        with open(folder / "output.log", "ab") as output:  # noqa: ASYNC230 - a local file, opened once per run
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", WORKER_MODULE, str(folder),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=output, start_new_session=True,
            )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), HANDSHAKE_SECONDS)
        except TimeoutError:
            process.kill()
            line = b""
        answer = _decode_handshake(line)
        if not answer.get("ready"):
            await process.wait()
            error = answer.get("error") or {"code": "worker_failed", "message": "the run's process exited before it started: "
                                             + _tail(folder / "output.log", 2000), "http_status": 500}
            shutil.rmtree(folder, ignore_errors=True)  # a refused request leaves nothing behind
            raise _refusal(error)
        child = _Child(process)
        self._children[job.run_id] = child
        child.watcher = asyncio.create_task(self._watch(job.run_id, child), name=f"run {job.run_id}")
        self._owners[job.run_id] = owner_id
        await self._tell("run_started", job.run_id)
        return {"run_id": job.run_id, "status": "running"}

    def _job(self, name: str, request: StartRequest, confined: bool = False) -> Job:
        if request.mode != "backtest":
            raise InvalidInput("invalid_mode", f"mode must be 'backtest', 'paper' or 'live', got {request.mode!r}")
        strategy = self._strategy_ref(name)
        if strategy in builtin_strategies():
            parse_params(builtin_strategies()[strategy], request.params)  # user files are checked by their worker
        balances = request.balances
        exchange, amounts = parse_balances(balances if isinstance(balances, list) else [f"{k}={v}" for k, v in balances.items()])
        for currency, amount in amounts.items():
            try:
                positive = Decimal(amount) > 0
            except InvalidOperation:
                positive = False
            if not positive:
                raise InvalidInput("invalid_balance", f"the balance of {currency} must be a positive amount, got {amount!r}")
        config = BacktestConfig(exchange=exchange, balances=amounts, fee=str(request.fee), fill=request.fill, liquidity=request.liquidity,
                                intrabar=request.intrabar, start=parse_time(request.start, "start"), end=parse_time(request.end, "end"),
                                rules=request.rules)
        data = [request.data] if isinstance(request.data, str) else list(request.data or [])
        for i, item in enumerate(data):
            if is_recorded(item):  # read from this server's store, whoever asks (`_recorded`)
                recorded_exchange(item)
                continue
            if confined:  # outside the history directory answers like a missing file: existence is not told
                data[i] = str(path_inside(item, default_history_root(self.data_path)))
                continue
            path = Path(item).expanduser()
            if not path.exists():
                raise InvalidInput("file_not_found", f"data {item}: no such file or folder on the server", path=item)
            data[i] = str(path.resolve())
        # random part first: a run's client_oids start with the first 12 characters of its id
        run_id = f"bt-{secrets.token_hex(5)[:9]}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        return Job(run_id=run_id, mode=request.mode, strategy=strategy, params=request.params, config=config, data=data,
                   data_path=str(self.data_path.resolve()), created_at=time.time())

    async def _recorded(self, job: Job, request: StartRequest, folder: Path) -> Job:
        """`data: "recorded:EXCHANGE"`: the server reads its store and hands the worker the candles as files in the run's folder.

        Why files: the worker is another process, without the server's store connection (or, on SQLite, its
        not yet written journal); `.npy` series (history.store) are what the history store keeps anyway.
        """
        if not any(is_recorded(item) for item in job.data):
            return job
        if self.candle_store is None:
            raise InvalidInput("recorded_unavailable", "this server has no store of recorded candles")
        builtin = builtin_strategies().get(job.strategy)
        cls = builtin if builtin is not None else Strategy  # a strategy file is the worker's to import: every symbol is read
        found = await recorded_candles(self.candle_store, job.data, cls, request.params, job.config, self.exchanges)
        history = HistoryStore(folder / "recorded")
        paths = [history.write(candles, merge=False).path for candles in found or ()]
        return msgspec.structs.replace(job, data=paths)

    def strategy_ref(self, name: str) -> str:
        """What `name` runs: a built-in's name, or a strategy file's resolved `path:Class`; refused as `start` would refuse it."""
        return self._strategy_ref(name)

    def _strategy_ref(self, name: str) -> str:
        if ":" in name and name.split(":", 1)[0].endswith(".py"):
            if not self.allow_user_strategies:
                raise Forbidden("user_strategies_disabled", "this server does not run strategy files (allow_user_strategies = false); "
                                "use a built-in strategy")
            path_text, class_name = name.rsplit(":", 1)
            path = Path(path_text).expanduser()
            if not path.is_file():
                raise NotFound("strategy_not_found", f"strategy file {path_text} does not exist on the server")
            return f"{path.resolve()}:{class_name}"
        builtins = builtin_strategies()
        if name not in builtins:
            raise NotFound("strategy_not_found", f"unknown strategy {name!r}; built-ins: {', '.join(sorted(builtins))}, "
                           "or path/to/file.py:ClassName")
        return name

    # --- watch, stop, input -------------------------------------------------------------------
    async def _watch(self, run_id: str, child: _Child) -> None:
        code = await child.process.wait()
        try:
            self._settle(run_id, stopped=child.stop_requested, reason=(
                f"stopped: the run's process did not stop within {self.stop_grace:g} s and was killed" if child.stop_requested
                else f"the run's process exited with code {code} before it finished"))
        finally:
            self._children.pop(run_id, None)
            child.done.set()
        await self._ended(run_id)

    def _settle(self, run_id: str, stopped: bool, reason: str) -> None:
        """A worker is gone: if it did not write its final status, write it here, with its output in the run log."""
        try:
            record = self.store.record(run_id)
        except NotFound:
            return
        if record.status != "running":
            return
        folder = self.store.folder(run_id)
        output = _tail(folder / "output.log", OUTPUT_TAIL)
        lines = [{"ts": time.time_ns(), "level": "warning" if stopped else "error", "message": reason}]
        if output.strip():
            lines.append({"ts": time.time_ns(), "level": "error", "message": "process output:\n" + output})
        with open(folder / "log.jsonl", "ab") as log:
            log.write(b"".join(msgspec.json.encode(line) + b"\n" for line in lines))
        record.status = "stopped" if stopped else "failed"
        record.error = reason
        record.finished_at = time.time()
        self.store.write_record(record)

    async def stop(self, run_id: str) -> dict[str, Any]:
        """Ask the worker to stop (SIGTERM: it saves at the next event boundary); kill it after the grace period."""
        record = self.store.record(run_id)
        if record.status != "running":
            raise Conflict("run_not_running", f"run {run_id} is already {record.status}")
        if self.paper is not None and self.paper.owns(run_id):
            await self.paper.stop(run_id)
            await self._ended(run_id)
            return self.store.get(run_id)
        child = self._children.get(run_id)
        if child is None:  # running per its record, but not ours (a previous server's): settle it
            pid = self._worker_pid(run_id)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                await self._wait_gone(pid, self.stop_grace)
            self._settle(run_id, stopped=True, reason="stopped on request")
            return self.store.get(run_id)
        child.stop_requested = True
        if child.process.returncode is None:
            child.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(child.done.wait()), self.stop_grace)
        except TimeoutError:
            if child.process.returncode is None:
                child.process.kill()
            await child.done.wait()
        return self.store.get(run_id)

    async def control(self, run_id: str, action: str, factor: Decimal | str | None = None) -> dict[str, Any]:
        """Pause or resume a running paper or live run's entries, or scale its orders (a rule set's action on a run scope).

        A backtest runs in its own process on its own clock: its rule sets act inside it, so it is not controlled from here.
        """
        if action not in ("pause", "resume", "scale"):
            raise InvalidInput("invalid_action", f"a run is controlled with pause, resume or scale, not {action!r}")
        value = None
        if action == "scale":
            try:
                value = Decimal(str(factor)) if factor is not None else None
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite():
                raise InvalidInput("invalid_factor", f"scale needs a factor above 0 and at most 10, got {factor!r}")
        record = self.store.record(run_id)
        if record.status != "running":
            raise Conflict("run_not_running", f"run {run_id} is {record.status}: only a running run is controlled")
        if self.paper is None or not self.paper.owns(run_id):
            raise Conflict("run_not_controllable", f"run {run_id} is a {record.mode} run in its own process: pause and scale apply "
                           "to paper and live runs (a backtest's rule sets act inside it)")
        return await self.paper.control(run_id, action, value)

    def post_input(self, run_id: str, component_id: str, value: Any) -> dict[str, Any]:
        """Queue `value` for a component of a running run; its worker delivers it at the next event boundary."""
        record = self.store.record(run_id)
        if record.status != "running":
            raise Conflict("run_not_running", f"run {run_id} is {record.status}: input reaches running runs only")
        known = [c["id"] for c in self.store.components(run_id)]
        if component_id not in known:
            raise NotFound("unknown_component",
                           f"run {run_id} has no component {component_id!r} (components: {', '.join(known) or 'none yet'})")
        self._to_inbox(run_id, {"component_id": component_id, "value": value})
        return {"run_id": run_id, "component_id": component_id, "status": "queued"}

    def post_step(self, run_id: str, name: str) -> dict[str, Any]:
        """Queue a scheduled step for a running run; its worker calls the strategy's `on_step(name)` at the next event boundary."""
        record = self.store.record(run_id)
        if record.status != "running":
            raise Conflict("run_not_running", f"run {run_id} is {record.status}: scheduled steps reach running runs only")
        self._to_inbox(run_id, {"step": name})
        return {"run_id": run_id, "step": name, "status": "queued"}

    def post_signal(self, owner_id: int, signal: dict[str, Any]) -> list[str]:
        """Queue an outside signal (core.outside_signals' form) for every running run of `owner_id` subscribed to its provider.

        Through each run's inbox, like component input: its `RunControl` hands it to the strategy at
        the next event boundary. Paper and live runs only: a backtest runs on its own clock and
        replays the signals recorded beside its candles instead (engine/runs.py, `signals.jsonl`).
        Answers the runs it was queued for.
        """
        runs = self.paper.subscribed(owner_id, signal["provider"]) if self.paper is not None else []
        for run_id in runs:
            self._to_inbox(run_id, {"signal": signal})
        return runs

    def _to_inbox(self, run_id: str, item: dict[str, Any]) -> None:
        line = msgspec.json.encode(item) + b"\n"
        fd = os.open(self.store.folder(run_id) / "inbox.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)  # one write with O_APPEND: whole lines, even with several writers
        finally:
            os.close(fd)

    # --- reading ------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        return self.store.list()

    def get(self, run_id: str) -> dict[str, Any]:
        run = self.store.get(run_id)
        progress = self.store.folder(run_id) / "progress.json"
        if run["status"] == "running" and self.paper is not None and self.paper.owns(run_id):
            run["report"] = self.paper.interim_report(run_id)  # paper and live runs: their report so far
        if run["status"] == "running" and progress.is_file():
            try:
                run["progress"] = {k: v for k, v in json.loads(progress.read_bytes()).items() if k != "pid"}
            except ValueError:
                pass
        return run

    # --- helpers ------------------------------------------------------------------------------
    def _worker_pid(self, run_id: str) -> int | None:
        """The pid of this run's worker if it is alive and really is that worker (pids get reused)."""
        try:
            pid = int(json.loads((self.store.folder(run_id) / "progress.json").read_bytes())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        folder = str(self.store.folder(run_id)).encode()
        return pid if WORKER_MODULE.encode() in cmdline and folder in cmdline else None

    @staticmethod
    async def _wait_gone(pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists() and _alive(pid):  # noqa: ASYNC240 - /proc is in memory
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _request(body: Any) -> StartRequest:
    if not isinstance(body, dict):
        raise InvalidInput("invalid_params", "the request body must be a JSON object")
    try:
        request = msgspec.convert(body, StartRequest)
    except msgspec.ValidationError as exc:
        raise InvalidInput("invalid_params", f"invalid start request: {exc}") from None
    parse_policy(request.warmup)
    return request


def _decode_handshake(line: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(line)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _refusal(error: dict[str, Any]) -> CoinwireError:
    """The worker's refusal as the same error class it raised (so the HTTP status matches)."""
    status = int(error.pop("http_status", 400))
    code, message = str(error.pop("code", "error")), str(error.pop("message", ""))
    kind: type[CoinwireError] = {404: NotFound, 409: Conflict}.get(status, InvalidInput if status < 500 else CoinwireError)
    exc = kind(code, message, **error)
    exc.http_status = status
    return exc


def _tail(path: Path, chars: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars * 4))
            return f.read().decode(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


def _type_name(value: Any) -> str:
    return "any" if value is None else "decimal" if isinstance(value, Decimal) else type(value).__name__

