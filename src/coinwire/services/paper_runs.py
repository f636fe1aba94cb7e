"""Paper and live runs the server starts: strategies trading through this process's gateway, one asyncio task each.

A live run is a paper run on a live exchange: the same runtime, the gateway sending its
orders to the venue instead of the paper matching engine. The run's mode must be the mode of
every exchange it is given funds on, so real money never moves by a run started as paper.

A run belongs to the user who started it: its wallet set is funded from that user's own
account on each exchange of its balances (`demo:USDT=1000` and `demo2:BTC=0.1` make one set
over two exchanges, each share from the user's account there), and its orders and fills are
in those accounts, notified to whoever may read them.

A paper run cannot live in its own process the way a backtest does: it follows the
gateway's market data message by message and places orders between two messages (see
`engine/paper.py`), which only works next to the gateway. A strategy that raises fails its
own run and nothing else; a strategy that blocks the event loop would stall the gateway,
which is the price of that lockstep (and why backtests, which need none, get processes).

Its files are the same as a backtest's (`engine/runs.py`): written as it goes by the
worker's `RunControl` (user input read from `inbox.jsonl`, messages and log appended,
components rewritten) and completed with the report when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from coinwire.core.errors import CoinwireError, Conflict, InvalidInput
from coinwire.engine.paper import END_REACHED, RECORDING_ENDED, PaperRuntime
from coinwire.engine.report import build_report
from coinwire.engine.runs import RunOutcome, RunStore, parse_funds, parse_time
from coinwire.engine.runtime import StrategyFailed
from coinwire.engine.strategy import params_json, parse_params
from coinwire.engine.warmup import HistorySource
from coinwire.engine.worker import FLUSH_SECONDS, Controlled, RunControl
from coinwire.services.gateway import Gateway
from coinwire.services.signals import Signals
from coinwire.strategies.registry import load_strategy, strategy_name

__all__ = ["ControlledPaper", "PaperRuns", "finish_paper"]


class ControlledPaper(Controlled, PaperRuntime):
    """A paper run whose files are kept current between events."""


class _Running:
    __slots__ = ("control", "runtime", "task", "name", "report", "report_key")

    def __init__(self, runtime: ControlledPaper, control: RunControl, name: str = "") -> None:
        self.runtime = runtime
        self.control = control
        self.task: asyncio.Task[None] | None = None
        self.name = name
        self.report: dict[str, Any] | None = None  # the interim report, rebuilt when the run has moved on
        self.report_key: tuple[int, int, int] | None = None


class PaperRuns:
    """The paper runs of this server: start, stop, pass input on, save each when it ends."""

    def __init__(self, gateway: Gateway, store: RunStore, history: Sequence[HistorySource] = (),
                 signals: Signals | None = None) -> None:
        """`history`: where a run's warm-up candles come from, in the order tried (engine/warmup.py); `signals`: where
        the strategies' signals are stored and published (none: kept in the run's report only)."""
        self.gateway = gateway
        self.signals = signals
        self.store = store
        self.history = tuple(history)
        self.running: dict[str, _Running] = {}

    async def start(self, strategy_ref: str, request: Any, owner_id: int | None = None,
                    funded: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Check the request, take the run's funds from `owner_id`'s accounts (refusals raise here), then run it.

        `funded(wallet_set_id)`: called when the run's wallet set exists (see `PaperRuntime`).
        """
        if request.start is not None:
            raise InvalidInput("invalid_params", "a paper run starts now: `start` applies to backtests")
        if request.data:
            raise InvalidInput("invalid_params", "a paper run trades on the server's exchanges: `data` applies to backtests "
                               "(replay a recording with an exchange whose feed is 'replay')")
        if request.fill != "open" or request.liquidity != "volume":
            raise InvalidInput("invalid_params", "`fill` and `liquidity` apply to candle backtests; paper orders fill against the book")
        cls = load_strategy(strategy_ref)
        params = parse_params(cls, request.params)
        balances = request.balances
        funds = parse_funds(balances if isinstance(balances, list) else [f"{k}={v}" for k, v in balances.items()])
        for exchange in funds:
            mode = self.gateway.exchange(exchange).mode
            if mode != request.mode:
                raise InvalidInput("mode_mismatch", f"exchange {exchange} is a {mode} exchange; a {request.mode} run cannot trade on it "
                                   f"(start a {mode} run, or pick a {request.mode} exchange)")
        end = parse_time(request.end, "end")
        prefix = "lv" if mode == "live" else "pp"
        run_id = f"{prefix}-{secrets.token_hex(5)[:9]}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        runtime = ControlledPaper(run_id, self.gateway, funds, end=end, owner_id=owner_id, funded=funded, history=self.history,
                                  warmup=getattr(request, "warmup", "best_effort"), rules=getattr(request, "rules", ()))
        if self.signals is not None:
            runtime.signal_sink = self.signals.sink(run_id, owner_id)
        # refusals (a required warm-up that is short, funds the exchange cannot cover...) raise here, before any file exists
        await runtime.open(cls, params)
        name = strategy_name(cls)
        created = time.time()
        self.store.write_record(RunOutcome(run_id=run_id, strategy=name, mode=mode, status="running", params=params_json(params),
                                           created_at=created))
        control = RunControl(self.store.folder(run_id))
        runtime.control = control
        running = _Running(runtime, control, name)
        self.running[run_id] = running
        running.task = asyncio.create_task(self._run(running, name, params_json(params), created), name=f"paper run {run_id}")
        return {"run_id": run_id, "status": "running"}

    async def _run(self, running: _Running, name: str, params: dict[str, Any], created: float) -> None:
        runtime, control = running.runtime, running.control
        flusher = asyncio.create_task(self._flush_loop(running))
        try:
            await runtime.run()
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            runtime.control = None
            for component_id, _ in control.close():
                runtime.logs.append((runtime.now_ns(), "warning", f"input to {component_id!r} arrived after the run ended; not delivered"))
            outcome = finish_paper(runtime, name, params)
            outcome.created_at = created
            outcome.finished_at = time.time()
            self.store.save(outcome, runtime)
            self.running.pop(runtime.run_id, None)

    async def _flush_loop(self, running: _Running) -> None:
        """Input and files are also served when the strategy gets no callback for a while."""
        runtime = running.runtime
        while not runtime.done.is_set():
            await asyncio.sleep(FLUSH_SECONDS)
            if not runtime.started:
                continue
            async with runtime.turn:  # between two market messages, never within one's turn
                if runtime.done.is_set():
                    return
                try:
                    running.control.service(runtime, runtime.strategy)
                    await runtime.drain()
                except StrategyFailed as failure:
                    runtime.failure = failure
                    runtime.done.set()
                except CoinwireError as exc:
                    runtime.logs.append((runtime.now_ns(), "warning", exc.message))

    def interim_report(self, run_id: str) -> dict[str, Any] | None:
        """A running run's report so far (status `running`): equity, drawdown and trades to this instant.

        Rebuilt only when the run has moved on (its clock, fills or balances), so a dashboard
        polling every few seconds costs one build per change, not one per request.
        """
        running = self.running.get(run_id)
        if running is None:
            return None
        rt = running.runtime
        if not (rt.started and rt.report_markets()):
            return None
        key = (rt.now_ns(), len(rt.fills), len(rt.balance_points))
        if running.report_key != key:
            mode = self.gateway.exchange(rt.exchange).mode
            meta = {"run_id": rt.run_id, "strategy": running.name, "mode": mode, "status": "running", "exchange": rt.exchange,
                    "exchanges": rt.exchanges, "fills_against": "book"}
            running.report, running.report_key = build_report(rt, meta), key
        return running.report

    def owns(self, run_id: str) -> bool:
        return run_id in self.running

    def subscribed(self, owner_id: int, provider: str) -> list[str]:
        """The running runs of `owner_id` whose strategy subscribed to `provider`'s outside signals (`Strategy.on_signal`)."""
        return sorted(run_id for run_id, running in self.running.items()
                      if running.runtime.owner_id == owner_id and provider in running.runtime.signal_callbacks
                      and not running.runtime.done.is_set())

    async def control(self, run_id: str, action: str, factor: Decimal | None = None) -> dict[str, Any]:
        """Pause or resume a running run's entries, or scale its orders, between two of its turns (see `Runtime.pause_entries`)."""
        running = self.running.get(run_id)
        if running is None:
            raise Conflict("run_not_running", f"run {run_id} is not running")
        runtime = running.runtime
        async with runtime.turn:
            if action in ("pause", "resume"):
                runtime.pause_entries(action == "pause")
            else:
                assert factor is not None
                runtime.scale_orders(factor)
        return {"run_id": run_id, "entries_paused": runtime.entries_paused, "scale": str(runtime.order_scale)}

    async def stop(self, run_id: str) -> None:
        running = self.running.get(run_id)
        if running is None:
            raise Conflict("run_not_running", f"run {run_id} is not running")
        running.runtime.request_stop()
        if running.task is not None:
            await asyncio.shield(running.task)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(run_id) for run_id in list(self.running)), return_exceptions=True)


def finish_paper(runtime: PaperRuntime, name: str, params: dict[str, Any]) -> RunOutcome:
    """The outcome of an ended paper run: failed if the strategy raised, finished at its end time, else stopped."""
    mode = runtime.gateway.exchange(runtime.exchange).mode
    outcome = RunOutcome(run_id=runtime.run_id, strategy=name, mode=mode, status="finished", params=params)
    if runtime.failure is not None:
        outcome.status = "failed"
        outcome.error = str(runtime.failure)
        outcome.traceback = runtime.failure.traceback
        runtime.logs.append((runtime.now_ns(), "error", runtime.failure.traceback))
    elif runtime.error is not None:
        outcome.status = "failed"
        outcome.error = f"{runtime.error.code}: {runtime.error.message}"
        runtime.logs.append((runtime.now_ns(), "error", outcome.error))
    elif runtime.stop_reason and runtime.stop_reason not in (END_REACHED, RECORDING_ENDED):
        outcome.status = "stopped"
        outcome.error = runtime.stop_reason
    meta = {"run_id": runtime.run_id, "strategy": name, "mode": mode, "status": outcome.status, "exchange": runtime.exchange,
            "exchanges": runtime.exchanges, "fills_against": "book"}
    if runtime.started and runtime.report_markets():
        outcome.report = build_report(runtime, meta)
    else:
        outcome.report = {**meta, "trades": [], "note": "the run ended before its exchange had a synced book"}
    return outcome


