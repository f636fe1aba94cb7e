"""The scheduler: users' jobs on a cron expression or an interval, each tick run at most once, and the job kinds.

A schedule is stored (coinwire.store.schedules) with its timing, its job (a kind and checked
parameters) and a misfire policy; `run_due(now)` claims every due tick by inserting its row
(the claim: a tick runs at most once across restarts, SIGKILLs and several processes), moves the
schedule's `next_at` on (compare and set), then runs the jobs it claimed and records each outcome.
`start()` runs `run_due` in a loop that sleeps until the next due tick (or until a schedule is
added or resumed); tests drive `run_due` with their own clock instead.

A tick claimed by a process that died before the job finished stays claimed and unfinished: it
is not run again (at most once; a job that must not be lost is an idempotent job the next tick
repeats, like the rate retriever). Its `outcome` reads `null` (shown as `unfinished`).

Job kinds are open: `Scheduler(kinds=...)` gets them from the composition root, where later
services register theirs (`daily_stats`). A kind checks a job's parameters for the user who adds
it (`check`, refusing with the same codes the matching API would) and runs one tick (`run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

import msgspec
import structlog

from coinwire.auth.abilities import Principal, can
from coinwire.auth.errors import Forbidden
from coinwire.auth.preferences import PreferencesRepository
from coinwire.auth.repository import AuthRepository
from coinwire.core.errors import CoinwireError, Conflict, InvalidInput, NotFound
from coinwire.core.rollup import parse_timeframe
from coinwire.core.schedules import Misfire, Spec, due_ticks, next_after, next_runs, parse_misfire, parse_spec
from coinwire.engine.strategy import parse_params
from coinwire.services.runs import RunManager, StartRequest
from coinwire.store import Store
from coinwire.store.schedules import SYSTEM_OWNER, ScheduleRow, ScheduleStore
from coinwire.strategies.registry import builtin_strategies

__all__ = ["Job", "JobKind", "RatesPort", "RunOwnership", "Scheduler", "SYSTEM", "MAX_SCHEDULES_PER_USER", "NEXT_RUNS",
           "RetrieveRates", "Housekeeping", "RunStrategy", "StrategyStep", "AddSchedule", "wall_ms"]

log = structlog.get_logger("coinwire.scheduler")

Job = ScheduleRow  # what a kind's `run` is given: the stored schedule, its owner and its checked parameters
MAX_SCHEDULES_PER_USER = 100
NEXT_RUNS = 5  # next run times in a schedule's view
MAX_WAIT_SECONDS = 60.0  # the loop looks at the store at least this often (schedules added by another process)
MAX_NAME = 64
# the server's own principal: what system schedules are checked and run as
SYSTEM = Principal(user_id=SYSTEM_OWNER, username="system", role="admin", plan="pro")


def wall_ms() -> int:
    """The wall clock in epoch milliseconds (the scheduler's default clock)."""
    return time.time_ns() // 1_000_000


class JobKind(Protocol):
    """One kind of job: `check` a job's parameters for the user who adds it (raise a clear error), `run` one tick."""

    name: str

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]: ...

    async def run(self, job: Job, tick_ms: int) -> None: ...


class RatesPort(Protocol):
    """The rate recorder (services.rates): stores one rate per market for the minute of `at_ms`; returns the rows written.

    `markets`: (exchange, symbol) pairs; None: every market with a running feed.
    """

    async def retrieve(self, at_ms: int, markets: Sequence[tuple[str, str]] | None = None) -> int: ...


class RunOwnership(Protocol):
    """Who owns runs (the API's owners table): scheduled runs are their schedule owner's, and steps reach only one's own runs."""

    def owns(self, run_id: str, user: Principal) -> bool: ...

    async def started(self, run_id: str, user_id: int) -> None: ...

    def funded(self, wallet_set_id: int, user_id: int) -> None: ...


# what the edge's length limits allow (a longer string is refused `too_long` before any check)
_Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
_Cron = Annotated[str, msgspec.Meta(max_length=200)]  # the schedules table's column
_Every = Annotated[str, msgspec.Meta(max_length=16)]
_Word = Annotated[str, msgspec.Meta(max_length=32)]


class MisfireBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    policy: _Word = "skip"
    limit: int | None = None


class AddSchedule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of `POST /api/v1/schedules` (and `add_schedule`): exactly one of `cron` and `every`."""

    name: _Name
    job: dict[str, Any]
    cron: _Cron | None = None
    every: _Every | None = None
    timezone: _Name | None = None  # default: the owner's preference time zone
    misfire: MisfireBody | None = None
    paused: bool = False


def _text(value: Any, field: str, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not value.isprintable() or not value.strip():
        raise InvalidInput("invalid_params", f"{field} must be 1 to {limit} printable characters", field=field)
    return value


def _no_extra(params: dict[str, Any], allowed: set[str], kind: str) -> None:
    extra = sorted(set(params) - allowed)
    if extra:
        raise InvalidInput("invalid_job", f"a {kind} job takes {', '.join(sorted(allowed)) or 'no parameters'}; "
                           f"unknown: {', '.join(extra)}", field="job")


def _iso(ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).isoformat()


# --- the scheduler --------------------------------------------------------------------------------
class Scheduler:
    """Stored schedules, their owner-scoped management, and the loop that runs their ticks."""

    def __init__(self, store: Store, kinds: Mapping[str, JobKind], clock: Callable[[], int] = wall_ms, *,
                 record_rates: bool = True, preferences: PreferencesRepository | None = None,
                 users: AuthRepository | None = None, max_wait: float = MAX_WAIT_SECONDS, process_id: str | None = None,
                 dispatch: Callable[[ScheduleRow, int], Awaitable[None]] | None = None) -> None:
        """`clock`: epoch ms. `record_rates`: keep the system schedule `rates` (every minute, every market with a feed).

        `dispatch`: where a claimed tick's job runs when not here (`run_job`): a scheduler process apart from the
        gateway sends it to the gateway's process, where the runs and the market data are (api/forwarding.py).

        `preferences`: where an owner's time zone is read when a schedule names none (UTC without it).
        `users`: where each tick finds its owner as they are now: a disabled owner's ticks do not run, and the job is
        checked again with the owner's current role (a trader made viewer starts no more runs). Without it, as they were.
        """
        self.repo = ScheduleStore(store)
        self.kinds = dict(kinds)
        self.dispatch = dispatch
        self.changed: list[Callable[[], None]] = []  # told when a schedule is added or resumed (other processes' loops wake)
        self.clock = clock
        self.record_rates = record_rates
        self.preferences = preferences
        self.users = users
        self.max_wait = max_wait
        self.process_id = process_id or f"{socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    # --- lifecycle ------------------------------------------------------------------------------
    async def ensure_system(self) -> None:
        """The server's own schedules: `rates` (when record_rates and a rate retriever is registered) and daily `housekeeping`."""
        wanted: dict[str, tuple[str, dict[str, Any]]] = {}
        if self.record_rates and "retrieve_rates" in self.kinds:
            wanted["rates"] = ("retrieve_rates", {})
        elif self.record_rates:
            log.warning("record_rates is on but no rate retriever is registered: rates are not recorded")
        if "housekeeping" in self.kinds:
            wanted["housekeeping"] = ("housekeeping", {})
        every = {"rates": "1m", "housekeeping": "1d"}
        for name in ("rates", "housekeeping"):
            found = await self.repo.find(SYSTEM_OWNER, name)
            if name not in wanted:
                if found is not None:
                    await self.repo.remove(found.id)
                continue
            if found is None:
                kind, params = wanted[name]
                spec = parse_spec(every=every[name], timezone="UTC")
                row = ScheduleRow(owner_id=SYSTEM_OWNER, name=name, every=spec.every, timezone="UTC", job_kind=kind,
                                  job_params=self.kinds[kind].check(params, SYSTEM), created_at=self.clock(),
                                  next_at=next_after(spec, self.clock()))
                with contextlib.suppress(Conflict):  # another process made it first
                    await self.repo.add(row)

    async def start(self) -> None:
        """Make the system schedules, then run due ticks in a loop until `close()`."""
        await self.ensure_system()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for kind in self.kinds.values():
            closing = getattr(kind, "close", None)
            if closing is not None:
                await closing()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due(self.clock())
                following = await self.repo.next_due_at()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler pass failed; trying again shortly")
                following = None
            wait = self.max_wait if following is None else min(self.max_wait, max(0.0, (following - self.clock()) / 1000))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    # --- running ticks --------------------------------------------------------------------------
    async def run_due(self, now: int) -> int:
        """Claim and run every tick due at `now` (ms); returns how many ticks this call ran."""
        claimed: list[tuple[ScheduleRow, list[int]]] = []
        for row in await self.repo.due(now):
            ticks, following = _due(row, now)
            mine = [t for t in ticks if await self.repo.claim(row.id, t, now, self.process_id)]
            await self.repo.advance(row.id, row.next_at, following)
            if mine:
                claimed.append((row, mine))
        results = await asyncio.gather(*(self._run_ticks(row, ticks) for row, ticks in claimed))
        return sum(results)

    async def _owner(self, row: ScheduleRow) -> Principal | None:
        """The schedule's owner as they are now (`owner_disabled` when they are disabled or gone); None: not known here."""
        if row.owner_id == SYSTEM_OWNER:
            return SYSTEM
        if self.users is None:
            return None
        user = await self.users.user_by_id(row.owner_id)
        if user is None or user.get("disabled"):
            raise Forbidden("owner_disabled", "the schedule's owner is disabled or removed: its jobs do not run")
        return Principal(user_id=row.owner_id, username=str(user["username"]), role=str(user["role"]), plan=str(user["plan"]))

    async def run_job(self, row: ScheduleRow, tick: int) -> None:
        """Run one claimed tick of a schedule: its owner checked as they are now, its job checked again, then run.

        The one path of a job (the claiming process's, or the gateway's process for a scheduler
        apart: api/forwarding.py `kind="job"`); raises the CoinwireError its tick records.
        """
        kind = self.kinds.get(row.job_kind)
        if kind is None:
            raise NotFound("unknown_job_kind", f"no job kind {row.job_kind!r} is registered on this server")
        owner = await self._owner(row)
        if owner is not None:  # checked again as the owner may now: a role, a run's owner can change
            kind.check(dict(row.job_params), owner)
        await kind.run(row, tick)

    async def _run_ticks(self, row: ScheduleRow, ticks: list[int]) -> int:
        for tick in ticks:
            outcome, error = "ok", None
            try:
                await (self.dispatch or self.run_job)(row, tick)
            except CoinwireError as exc:
                outcome, error = "error", f"{exc.code}: {exc.message}"
            except Exception as exc:  # a bug in a job: recorded on the tick and logged, the scheduler goes on
                log.exception("scheduled job failed", schedule=row.id, kind=row.job_kind, tick=tick)
                outcome, error = "error", f"internal_error: {type(exc).__name__}"
            await self.repo.finish(row.id, tick, self.clock(), outcome, error)
        return len(ticks)

    # --- management (owner-scoped) ----------------------------------------------------------------
    async def owned(self, schedule_id: object, user: Principal) -> ScheduleRow:
        """The schedule, when `user` may see it (its owner; admins: every one); `schedule_not_found` otherwise, the one place."""
        row = None
        if isinstance(schedule_id, int) and not isinstance(schedule_id, bool) and 0 < schedule_id < 2**63:
            row = await self.repo.get(schedule_id)
        if row is None or not (row.owner_id == user.user_id or user.is_admin):
            raise NotFound("schedule_not_found", f"no schedule {schedule_id}")
        return row

    async def listed(self, user: Principal) -> list[dict[str, Any]]:
        """The caller's schedules (admins: everyone's, the server's own included), oldest first, with their next runs."""
        rows = await self.repo.listed(None if user.is_admin else user.user_id)
        return await self._views(rows, 1)

    async def get(self, schedule_id: object, user: Principal) -> dict[str, Any]:
        """One schedule with its next NEXT_RUNS run times and its latest tick."""
        return (await self._views([await self.owned(schedule_id, user)], NEXT_RUNS))[0]

    async def add(self, body: AddSchedule | dict[str, Any], user: Principal) -> dict[str, Any]:
        """Check a whole new schedule (timing, job for this user, misfire), then store it; nothing is stored on a refusal."""
        if isinstance(body, AddSchedule):
            request = body
        elif not isinstance(body, dict):
            raise InvalidInput("invalid_params", "the schedule must be a JSON object")
        else:
            try:
                request = msgspec.convert(body, AddSchedule)
            except msgspec.ValidationError as exc:
                raise InvalidInput("invalid_params", f"invalid schedule: {exc}") from None
        name = _text(request.name, "name")
        timezone = request.timezone
        if timezone is None:
            timezone = (await self.preferences.get(user.user_id))["time_zone"] if self.preferences is not None else "UTC"
        spec = parse_spec(request.cron, request.every, timezone)
        misfire = parse_misfire(request.misfire.policy, request.misfire.limit) if request.misfire else parse_misfire()
        job = dict(request.job)
        kind_name = job.pop("kind", None)
        kind = self.kinds.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            raise InvalidInput("unknown_job_kind", f"job kind must be one of {', '.join(sorted(self.kinds))}, got {kind_name!r}",
                               field="job.kind")
        params = kind.check(job, user)
        if len(await self.repo.listed(user.user_id)) >= MAX_SCHEDULES_PER_USER:
            raise Conflict("too_many_schedules", f"one user may keep at most {MAX_SCHEDULES_PER_USER} schedules")
        now = self.clock()
        row = await self.repo.add(ScheduleRow(
            owner_id=user.user_id, name=name, cron=spec.cron, every=spec.every, timezone=spec.timezone, job_kind=kind.name,
            job_params=params, misfire_policy=misfire.policy, misfire_limit=misfire.limit, paused=request.paused,
            created_at=now, next_at=next_after(spec, now)))
        self._changed()
        return (await self._views([row], NEXT_RUNS))[0]

    async def remove(self, schedule_id: object, user: Principal) -> dict[str, Any]:
        row = await self.owned(schedule_id, user)
        await self.repo.remove(row.id)
        return {"id": row.id, "removed": True}

    async def pause(self, schedule_id: object, user: Principal) -> dict[str, Any]:
        row = await self.owned(schedule_id, user)
        await self.repo.set_paused(row.id, True)
        return await self.get(row.id, user)

    async def resume(self, schedule_id: object, user: Principal) -> dict[str, Any]:
        """Resume from now: the ticks a pause skipped are not run (the misfire policy is for outages, not pauses)."""
        row = await self.owned(schedule_id, user)
        spec, _ = _timing(row)
        await self.repo.set_paused(row.id, False, next_after(spec, self.clock()))
        self._changed()
        return await self.get(row.id, user)

    def wake(self) -> None:
        """Look at the store now: a schedule was added or resumed (here, or in another process: the composition root
        hears of those over the bus)."""
        self._wake.set()

    def _changed(self) -> None:
        self._wake.set()
        for listener in list(self.changed):
            listener()

    async def _views(self, rows: list[ScheduleRow], count: int) -> list[dict[str, Any]]:
        last = await self.repo.last_ticks([r.id for r in rows])
        now = self.clock()
        out = []
        for row in rows:
            spec, misfire = _timing(row)
            tz = ZoneInfo(row.timezone)
            upcoming = [] if row.paused else [max(row.next_at, now)] if row.next_at > now else []
            while len(upcoming) < count and not row.paused:
                upcoming += next_runs(spec, upcoming[-1] if upcoming else now, 1)
            tick = last.get(row.id)
            out.append({
                "id": row.id, "name": row.name, "owner_id": row.owner_id, "system": row.owner_id == SYSTEM_OWNER,
                "cron": row.cron, "every": row.every, "timezone": row.timezone,
                "job": {"kind": row.job_kind, **row.job_params},
                "misfire": {"policy": misfire.policy, "limit": misfire.limit},
                "paused": row.paused, "created_at": row.created_at,
                "next_runs": [{"at": _iso(t, tz), "ms": t} for t in upcoming[:count]],
                "last_tick": None if tick is None else {
                    "tick_at": tick.tick_at, "at": _iso(tick.tick_at, tz), "finished_at": tick.finished_at,
                    "outcome": tick.outcome or "unfinished", "error": tick.error},
            })
        return out


def _timing(row: ScheduleRow) -> tuple[Spec, Misfire]:
    return (Spec(timezone=row.timezone, cron=row.cron, every=row.every),
            Misfire(policy="catch_up" if row.misfire_policy == "catch_up" else "skip", limit=row.misfire_limit))


def _due(row: ScheduleRow, now: int) -> tuple[list[int], int]:
    spec, misfire = _timing(row)
    return due_ticks(spec, row.next_at, now, misfire)


# --- job kinds ------------------------------------------------------------------------------------
class RetrieveRates:
    """`retrieve_rates`: one rate per market for the tick's minute through the rates port; `markets` optional [[exchange, symbol]]."""

    name = "retrieve_rates"

    def __init__(self, port: RatesPort) -> None:
        self.port = port

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]:
        _no_extra(params, {"markets"}, self.name)
        markets = params.get("markets")
        if markets is None:
            return {}
        if not isinstance(markets, list) or not 1 <= len(markets) <= 1000 or not all(
                isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) and 0 < len(x) <= 64 for x in m) for m in markets):
            raise InvalidInput("invalid_job", "markets must be a list of 1 to 1000 [exchange, symbol] pairs, "
                               "e.g. [[\"binance\", \"BTC/USDT\"]]", field="job.markets")
        return {"markets": [[str(e), str(s)] for e, s in markets]}

    async def run(self, job: Job, tick_ms: int) -> None:
        markets = job.job_params.get("markets")
        await self.port.retrieve(tick_ms, None if markets is None else [(e, s) for e, s in markets])


class Housekeeping:
    """`housekeeping` (admins): prunes claimed ticks older than the retention (`schedule_ticks_kept_days`), keeping each latest."""

    name = "housekeeping"

    def __init__(self, store: Store, kept_ms: int) -> None:
        self.repo = ScheduleStore(store)
        self.kept_ms = kept_ms

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]:
        _no_extra(params, set(), self.name)
        if not user.is_admin:
            raise Forbidden("forbidden", "housekeeping prunes every user's schedule history: only admins schedule it")
        return {}

    async def run(self, job: Job, tick_ms: int) -> None:
        pruned = await self.repo.prune_ticks(tick_ms - self.kept_ms)
        log.info("housekeeping: schedule ticks pruned", pruned=pruned)


def _principal(user_id: int) -> Principal:
    return SYSTEM if user_id == SYSTEM_OWNER else Principal(user_id=user_id, username="", role="trader", plan="free")


class RunStrategy:
    """`run_strategy`: starts a run (the runs API's start body plus `strategy` and `for`) as the owner, stops it after `for`."""

    name = "run_strategy"

    def __init__(self, manager: RunManager, owners: RunOwnership | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.manager = manager
        self.owners = owners
        self.sleep = sleep
        self._stoppers: set[asyncio.Task[None]] = set()

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]:
        job = dict(params)
        strategy = job.pop("strategy", None)
        period = job.pop("for", None)
        if not can(user, "manage", "run"):
            raise Forbidden("forbidden", "your role may not start runs")
        if not isinstance(strategy, str) or not strategy:
            raise InvalidInput("invalid_job", "a run_strategy job names its `strategy` (a built-in, e.g. ma_cross)", field="job.strategy")
        builtin = builtin_strategies()
        if strategy not in builtin and not can(user, "admin", "server_files"):
            raise Forbidden("forbidden", "only admins may schedule a strategy from a file (it runs that file's code on the server); "
                            f"built-in strategies: {', '.join(sorted(builtin))}")
        self.manager.strategy_ref(strategy)  # user_strategies_disabled, strategy_not_found
        try:
            request = msgspec.convert(job, StartRequest)
        except msgspec.ValidationError as exc:
            raise InvalidInput("invalid_job", f"invalid run start: {exc}", field="job") from None
        if strategy in builtin:
            parse_params(builtin[strategy], request.params)
        if period is None:
            raise InvalidInput("invalid_job", "a run_strategy job says how long each run lasts: `for`, e.g. \"1h\"", field="job.for")
        try:
            frame = parse_timeframe(period)
        except InvalidInput:
            frame = None
        if frame is None or frame.utc_seconds is None:
            raise InvalidInput("invalid_job", f"`for` is how long each run lasts, like 30m, 1h or 1d, got {period!r}", field="job.for")
        return {"strategy": strategy, "for": str(frame), **job}

    async def run(self, job: Job, tick_ms: int) -> None:
        params = dict(job.job_params)
        strategy, period = params.pop("strategy"), params.pop("for")
        owner = job.owner_id

        def funded(wallet_set_id: int) -> None:
            if self.owners is not None:
                self.owners.funded(wallet_set_id, owner)

        started = await self.manager.start(strategy, params, confined=strategy in builtin_strategies(),
                                           owner_id=None if owner == SYSTEM_OWNER else owner, funded=funded)
        run_id = str(started["run_id"])
        if self.owners is not None and owner != SYSTEM_OWNER:
            await self.owners.started(run_id, owner)
        stopper = asyncio.create_task(self._stop_after(run_id, parse_timeframe(period).utc_seconds or 0), name=f"stop {run_id}")
        self._stoppers.add(stopper)
        stopper.add_done_callback(self._stoppers.discard)

    async def _stop_after(self, run_id: str, seconds: float) -> None:
        await self.sleep(seconds)
        try:
            await self.manager.stop(run_id)
        except CoinwireError as exc:  # it ended by itself (a backtest's range, a failure): nothing to stop
            log.info("scheduled run already over at the end of its period", run_id=run_id, code=exc.code)

    async def close(self) -> None:
        for task in list(self._stoppers):
            task.cancel()
        await asyncio.gather(*self._stoppers, return_exceptions=True)


class StrategyStep:
    """`strategy_step`: calls `on_step(step)` of a running run its owner owns (`run_not_found` for anyone else's)."""

    name = "strategy_step"

    def __init__(self, manager: RunManager, owners: RunOwnership | None = None) -> None:
        self.manager = manager
        self.owners = owners

    def _require(self, run_id: str, user: Principal) -> None:
        if self.owners is not None and not self.owners.owns(run_id, user):
            raise NotFound("run_not_found", f"no run {run_id!r}")
        self.manager.store.record(run_id)  # run_not_found when there is none

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]:
        _no_extra(params, {"run_id", "step"}, self.name)
        if not can(user, "manage", "run"):
            raise Forbidden("forbidden", "your role may not drive runs")
        run_id = _text(params.get("run_id"), "job.run_id", 128)
        step = _text(params.get("step", "step"), "job.step")
        self._require(run_id, user)
        return {"run_id": run_id, "step": step}

    async def run(self, job: Job, tick_ms: int) -> None:
        run_id = job.job_params["run_id"]
        self._require(run_id, _principal(job.owner_id))
        self.manager.post_step(run_id, job.job_params["step"])
