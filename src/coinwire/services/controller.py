"""The controller: evaluates users' live rule sets on their portfolios' samples and runs the actions a firing journals.

Why this shape:
- One evaluation per tracker sample. Each enabled `live` or `dry_run` rule set listens to the
  portfolio tracker on its scope; every pass that values that portfolio becomes a
  `core.rules.Sample` (the value, the prices its position rules name, the analyser outputs its
  indicator rules read) evaluated by the pure `core.rules.evaluate` in the owner's time zone.
  Samples queue and are evaluated one at a time, in order, so a rule set's state has one writer.
- Journal before acting. A firing is stored with one command row per action in ONE transaction
  (`RuleStore.add_firing`) before anything is done; only then are its commands run, in order,
  each attempt marked `running` (attempts counted) before it starts and its outcome stored after.
  At start every command not finished is resumed in the same order, so a crash at any instant
  leaves either nothing done (the firing not stored: the next sample decides again) or a journal
  the next start completes; `controller_actions` makes each step safe to repeat.
- Retries. A command whose venue is unreachable, whose webhook did not answer or whose market
  had no liquidity stays `pending` and is tried again after a backoff (doubling, capped); the
  later commands of the same firing wait for it, other firings do not.
- State saved, throttled. Evaluation changes a rule set's state on most samples (a new peak);
  it is written at most every `save_every` seconds per rule set, at every firing and at stop.
  A restart loses at most that much of a peak, never a firing.
- dry_run: every command is stored `recorded` (what it would have done), a notification is
  still sent (the rule set's `notify` actions, or one saying it fired), nothing is traded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import structlog

from coinwire.core.errors import InvalidInput, NotFound, NotReady
from coinwire.core.portfolio import PortfolioCandle
from coinwire.core.rules import (
    IndicatorRule,
    PositionTrailingStop,
    RuleSet,
    RuleSetState,
    Sample,
    evaluate,
    new_state,
    price_key,
    rule_outputs,
    rule_set_dict,
)
from coinwire.services.analyser import Analyser
from coinwire.services.controller_actions import ActionContext, ActionRunner, Notify, Outcome, RunControl, firing_data, firing_text
from coinwire.services.gateway import Gateway
from coinwire.services.portfolio_tracker import PortfolioTracker
from coinwire.services.rule_sets import RuleSets, firing_view, rule_set_of
from coinwire.store.rules import CommandRow, RuleSetRow, RuleStore

__all__ = ["Controller", "FiredListener"]

log = structlog.get_logger("coinwire.controller")

FiredListener = Callable[[RuleSetRow, dict[str, Any]], object]  # (rule set, firing view): the `rule_fired` push
_S: Final = 1_000_000_000
_EVALUATED_MODES: Final = frozenset({"live", "dry_run"})
_FINISHED: Final = frozenset({"done", "failed", "recorded"})
_ZONE_TTL_NS: Final = 60 * _S


ZoneOf = Callable[[int], Awaitable[str]]  # a user's time zone name (auth.preferences: `time_zone`)


@dataclass
class _Live:
    """One evaluated rule set: its spec, its state, what it listens to."""

    row: RuleSetRow
    id: int
    owner_id: int
    name: str
    scope: str
    scope_id: str
    spec: RuleSet
    state: RuleSetState
    stops: list[Callable[[], None]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the analysis keys its indicator rules read
    saved_at: int = 0
    dirty: bool = False


@dataclass
class _Command:
    """One journaled action of a firing, in memory while it is not finished."""

    ctx: ActionContext
    action: dict[str, Any]
    status: str = "pending"
    attempts: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    due: float = 0.0  # monotonic seconds


class Controller:
    """Evaluates live rule sets on tracker samples; journals firings; runs their commands exactly once."""

    def __init__(
        self,
        rule_sets: RuleSets | None,
        rule_store: RuleStore,
        tracker: PortfolioTracker,
        gateway: Gateway,
        runs: RunControl | None,
        notifications: Notify,
        analyser: Analyser | None = None,
        clock: Callable[[], int] = time.time_ns,
        *,
        zone_of: ZoneOf | None = None,
        save_every: float = 2.0,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
        webhook_attempts: int = 8,
        runner: ActionRunner | None = None,
    ) -> None:
        self.rule_sets = rule_sets
        self.store = rule_store
        self.tracker = tracker
        self.gateway = gateway
        self.analyser = analyser
        self.clock = clock
        self.zone_of = zone_of
        self.save_every = save_every
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.webhook_attempts = webhook_attempts
        self.notify = notifications
        self.runner = runner if runner is not None else ActionRunner(gateway, runs, notifications)
        self.listeners: list[FiredListener] = []
        self.live: dict[int, _Live] = {}
        self.commands: list[_Command] = []
        self.firings = 0
        self._samples: asyncio.Queue[tuple[int, Decimal, int]] = asyncio.Queue()  # (rule set, value, time ns)
        self._wake = asyncio.Event()
        self._zones: dict[int, tuple[str, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_changes: Callable[[], None] | None = None

    # --- life -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume the commands not finished, attach every enabled rule set, then evaluate and execute in tasks."""
        rows = await self.store.list_for(None)
        by_id = {row.id: row for row in rows}
        for command in await self.store.pending_commands():  # by firing, then seq: the order they run in
            await self._resume(command, by_id)
        for row in rows:
            self._attach(row)
        if self.rule_sets is not None:
            self._stop_changes = self.rule_sets.listen(self._changed)
        self._tasks = [asyncio.create_task(self._evaluate_loop(), name="controller-evaluate"),
                       asyncio.create_task(self._execute_loop(), name="controller-execute")]

    async def close(self) -> None:
        """Stop listening and working; save every rule set's state (commands not finished resume at the next start)."""
        if self._stop_changes is not None:
            self._stop_changes()
            self._stop_changes = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for live in list(self.live.values()):
            self._detach(live.id)
            if live.dirty:
                await self.store.save_state(live.id, live.state.to_dict())
        await self.runner.close()

    # --- rule sets in and out ----------------------------------------------------------------------
    def _changed(self, event: str, row: RuleSetRow) -> None:
        """A rule set was created, updated, enabled, disabled or deleted: follow it with a fresh state (a new reference)."""
        self._detach(row.id)
        if event != "deleted":
            self._attach(row, fresh=event in ("created", "updated", "enabled"))

    def _attach(self, row: RuleSetRow, fresh: bool = False) -> None:
        if not row.enabled:
            return
        try:
            spec = rule_set_of(row)  # the spec with the row's name, scope and enabled flag
        except InvalidInput as exc:  # a row the service validated; one that no longer parses is left alone
            log.warning("rule set does not parse: not evaluated", rule_set=row.id, error=exc.code, message=str(exc))
            return
        if spec.mode not in _EVALUATED_MODES:
            return
        state = new_state(spec)
        if row.state and not fresh:
            try:
                state = RuleSetState.from_dict(row.state)
            except (KeyError, TypeError, ValueError, ArithmeticError):
                state = new_state(spec)
            if len(state.rules) != len(spec.rules):
                state = new_state(spec)
        scope_id = row.scope_id or str(row.owner_id)
        live = _Live(row, row.id, row.owner_id, row.name, spec.scope, scope_id, spec, state, dirty=fresh)
        rule_set_id = live.id
        live.stops.append(self.tracker.listen(spec.scope, scope_id, lambda candle, closed: self._on_candle(rule_set_id, candle, closed)))
        self._track_indicators(live)
        self.live[rule_set_id] = live
        try:  # the value now is the first sample: a quiet market (no pass of the tracker) still gives the reference
            self._samples.put_nowait((rule_set_id, self.tracker.value_now(spec.scope, scope_id), self.clock()))
        except (NotFound, NotReady):
            pass  # not valued yet: its first pass is the first sample

    def _detach(self, rule_set_id: int) -> None:
        live = self.live.pop(rule_set_id, None)
        if live is not None:
            for stop in live.stops:
                stop()

    def _track_indicators(self, live: _Live) -> None:
        """Ask the analyser for every output the rule set's indicator rules read, `other` included (`portfolio` = the
        rule set's own scope), so a cross of two outputs (SMA 20 below SMA 50) is computed for as long as the set lives."""
        if self.analyser is None:
            return
        for rule in live.spec.rules:
            if not isinstance(rule, IndicatorRule):
                continue
            for key, series, indicator, params in rule_outputs(rule, live.scope, live.scope_id):
                try:
                    live.stops.append(self.analyser.track(key, series, indicator, list(params), live.owner_id))
                except InvalidInput as exc:  # checked when stored; a series gone since (an account closed) never holds
                    log.warning("indicator rule not tracked", rule_set=live.id, series=series, error=exc.code)
                    continue
                live.keys.append(key)

    # --- evaluation ------------------------------------------------------------------------------------
    def _on_candle(self, rule_set_id: int, candle: PortfolioCandle, closed: bool) -> None:
        """The tracker's listener (kept cheap: it runs in the tracker's pass): the forming candle's close is a sample."""
        if not closed:
            self._samples.put_nowait((rule_set_id, candle.close, self.clock()))

    async def _evaluate_loop(self) -> None:
        while True:
            item = await self._samples.get()
            try:
                await self._evaluate(*item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rule evaluation failed", rule_set=item[0])

    async def _evaluate(self, rule_set_id: int, value: Decimal, time_ns: int) -> None:
        live = self.live.get(rule_set_id)
        if live is None:
            return
        sample = Sample(time_ns, value, self._prices(live), self._analysis(live))
        tz = await self._zone(live.owner_id)
        firing = evaluate(live.spec, live.state, sample, tz)
        live.dirty = True
        if firing is None:
            if time_ns - live.saved_at >= self.save_every * _S:
                await self._save(live, time_ns)
            return
        await self._fire(live, firing.time_ns, dict(firing.values))  # the state after it is stored with it

    async def _save(self, live: _Live, now: int) -> None:
        if self.live.get(live.id) is not live:
            return  # disabled, changed or deleted meanwhile: its row's state is the service's now
        await self.store.save_state(live.id, live.state.to_dict())
        live.saved_at = now
        live.dirty = False

    def _prices(self, live: _Live) -> dict[str, Decimal]:
        """The mid of each market a position rule names (core.rules.price_key: `SYMBOL` or `exchange:SYMBOL`)."""
        out: dict[str, Decimal] = {}
        for rule in live.spec.rules:
            if not isinstance(rule, PositionTrailingStop):
                continue
            names = [rule.exchange] if rule.exchange is not None else sorted(self.gateway.venues)
            for name in names:
                venue = self.gateway.venues.get(name)
                market = venue.market(rule.symbol) if venue is not None else None
                if market is None:
                    continue
                bid, ask = market.engine.book.best_bid(), market.engine.book.best_ask()
                if bid is not None and ask is not None:
                    out[price_key(rule.symbol, rule.exchange)] = (Decimal(bid) + Decimal(ask)).scaleb(-market.instrument.price_decimals) / 2
                    break
        return out

    def _analysis(self, live: _Live) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.analyser is None:
            return out
        for key in live.keys:
            value = self.analyser.latest(key)
            if value is not None:
                out[key] = value
        return out

    async def _zone(self, owner_id: int) -> str:
        if self.zone_of is None:
            return "UTC"
        now = time.monotonic_ns()
        known = self._zones.get(owner_id)
        if known is not None and now - known[1] < _ZONE_TTL_NS:
            return known[0]
        try:
            zone = await self.zone_of(owner_id)
        except Exception:  # noqa: BLE001 - the store unreachable for a moment: the last zone known, else UTC
            return known[0] if known is not None else "UTC"
        self._zones[owner_id] = (zone, now)
        return zone

    # --- firing: journal, then act ------------------------------------------------------------------
    async def _fire(self, live: _Live, time_ns: int, values: dict[str, str]) -> None:
        """Store the firing, its commands and the state after it (one transaction), push it, then queue its commands."""
        spec = live.spec
        actions = list(rule_set_dict(spec)["actions"])
        dry = spec.mode == "dry_run"
        firing = await self.store.add_firing(live.id, live.owner_id, time_ns, values, spec.mode, actions, self.clock(),
                                             status="recorded" if dry else "pending", state=live.state.to_dict())
        live.saved_at, live.dirty = time_ns, False
        self.firings += 1
        log.info("rule set fired", rule_set=live.id, firing=firing.id, mode=spec.mode, values=values)
        made = [self._command(live.row, spec.mode, firing.id, c.seq, time_ns, values, c.spec) for c in firing.commands]
        if dry:  # recorded, nothing done: what each would have done is its detail; the owner is told once
            for cmd in made:
                cmd.status, cmd.detail = "recorded", {"would": f"{cmd.action.get('kind')} on {live.scope} {live.scope_id}"}
                await self.store.update_command(cmd.ctx.command_id, "recorded", cmd.detail, 0, self.clock())
            ctx = ActionContext(f"{firing.id}:-", firing.id, -1, live.id, live.name, live.owner_id, live.scope, live.scope_id,
                                spec.mode, time_ns, values)
            message = next((a.get("message") for a in actions if a.get("kind") == "notify" and a.get("message")), None)
            await self.notify(live.owner_id, "rule_fired", f"firing:{firing.id}", f"Rule set {live.name!r} fired (dry run)",
                              str(message or firing_text(ctx)), firing_data(ctx))
        await self._publish(live.id, firing.id)  # as stored: its actions pending (or recorded)
        if not dry:
            self.commands += made
            self._wake.set()

    @staticmethod
    def _command(row: RuleSetRow, mode: str, firing_id: int, index: int, time_ns: int, values: dict[str, Any],
                 action: dict[str, Any]) -> _Command:
        ctx = ActionContext(f"{firing_id}:{index}", firing_id, index, row.id, row.name, row.owner_id, row.scope,
                            row.scope_id or str(row.owner_id), mode, time_ns, {k: str(v) for k, v in values.items()})
        return _Command(ctx, dict(action))

    async def _resume(self, row: CommandRow, rule_sets: dict[int, RuleSetRow]) -> None:
        """A command a previous process journaled and did not finish: back in the queue, with what it did so far.

        It acts where its rule set's row says (its owner and scope), as it would have before the restart.
        """
        rule_set = rule_sets.get(row.rule_set_id)
        if rule_set is None:  # deleted with its firings: nothing of it is left to finish
            return
        firing = next((f for f in await self.store.firings(row.rule_set_id, limit=1000) if f.id == row.firing_id), None)
        if firing is None:
            return
        cmd = self._command(rule_set, firing.mode, row.firing_id, row.seq, firing.time_ns, dict(firing.values), row.spec)
        cmd.attempts, cmd.detail = row.attempts, dict(row.detail)
        self.commands.append(cmd)
        log.info("command resumed", command=cmd.ctx.command_id, kind=row.kind, attempts=row.attempts)

    # --- execution ---------------------------------------------------------------------------------
    async def _execute_loop(self) -> None:
        while True:
            try:
                wait = await self._run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("command execution failed")
                wait = self.retry_base
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def _run_due(self) -> float:
        """Run the first unfinished command of each firing when due; the seconds until the next one is due."""
        now = time.monotonic()
        heads: dict[int, _Command] = {}
        for cmd in self.commands:
            heads.setdefault(cmd.ctx.firing_id, cmd)
        next_due = 3600.0
        for cmd in heads.values():
            while cmd is not None and cmd.due <= now:
                await self._attempt(cmd)
                if cmd.status not in _FINISHED:
                    break
                cmd = self._next_of(cmd)  # type: ignore[assignment]
            if cmd is not None and cmd.status not in _FINISHED:
                next_due = min(next_due, max(cmd.due - time.monotonic(), 0.0))
        return next_due

    def _next_of(self, cmd: _Command) -> _Command | None:
        for other in self.commands:
            if other.ctx.firing_id == cmd.ctx.firing_id:
                return other
        return None

    async def _attempt(self, cmd: _Command) -> None:
        """One attempt: `running` stored (attempt counted) first, then the outcome; finished commands leave the queue."""
        cmd.attempts += 1
        await self.store.update_command(cmd.ctx.command_id, "running", cmd.detail, cmd.attempts, self.clock())

        async def progress(detail: dict[str, Any]) -> None:
            cmd.detail = detail
            await self.store.update_command(cmd.ctx.command_id, "running", detail, cmd.attempts, self.clock())

        try:
            outcome = await self.runner.run(cmd.ctx, cmd.action, cmd.detail, progress)
        except Exception as exc:
            log.exception("action failed", command=cmd.ctx.command_id)
            outcome = Outcome("failed", {**cmd.detail, "error": "action_error", "message": repr(exc)})
        if outcome.status == "pending" and cmd.action.get("kind") == "webhook" and cmd.attempts >= self.webhook_attempts:
            outcome = Outcome("failed", {**outcome.detail, "gave_up_after": cmd.attempts})
        cmd.status, cmd.detail = outcome.status, outcome.detail
        stored = "pending" if outcome.status == "pending" else outcome.status
        await self.store.update_command(cmd.ctx.command_id, stored, outcome.detail, cmd.attempts, self.clock())
        if outcome.status == "pending":
            cmd.due = time.monotonic() + min(self.retry_base * 2 ** (cmd.attempts - 1), self.retry_max)
            return
        self.commands.remove(cmd)
        log.info("command finished", command=cmd.ctx.command_id, status=outcome.status, kind=cmd.action.get("kind"))
        if not any(c.ctx.firing_id == cmd.ctx.firing_id for c in self.commands):
            await self._publish(cmd.ctx.rule_set_id, cmd.ctx.firing_id)  # every action of the firing has finished

    # --- the `rule_fired` push -----------------------------------------------------------------------
    async def _publish(self, rule_set_id: int, firing_id: int) -> None:
        """Push a firing as the API shows it (services.rule_sets.firing_view), read back from the journal."""
        if not self.listeners:
            return
        row = await self.store.get(rule_set_id)
        firing = next((f for f in await self.store.firings(rule_set_id, limit=20) if f.id == firing_id), None)
        if row is None or firing is None:
            return
        view = firing_view(firing)
        for listener in list(self.listeners):
            try:
                listener(row, view)
            except Exception:
                log.exception("rule_fired listener failed", rule_set=rule_set_id)
