"""services.scheduler with a test clock on SQLite and PostgreSQL: every tick once (five minutes, five runs), misfire
policies, pause and resume, two schedulers on one store, a SIGKILL mid-job and a restart, Europe/London DST, the
system `rates` schedule (record_rates) and housekeeping's retention."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from coinwire.auth.abilities import Principal
from coinwire.config import load_settings
from coinwire.core.errors import InvalidInput
from coinwire.services.scheduler import SYSTEM, Housekeeping, Job, RetrieveRates, Scheduler
from coinwire.store import Store
from coinwire.store.schedules import ScheduleStore
from tests.conftest import POSTGRES_URL, postgres_schema

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
TOM = Principal(user_id=7, username="tom", role="trader", plan="free")


class Recorder:
    """A job kind of the test's own: it records each tick it runs (and can fail on one)."""

    name = "record"

    def __init__(self, fail_on: int | None = None) -> None:
        self.ticks: list[tuple[int, int]] = []
        self.fail_on = fail_on

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]:
        if params.get("bad"):
            raise InvalidInput("invalid_job", "bad")
        return dict(params)

    async def run(self, job: Job, tick_ms: int) -> None:
        self.ticks.append((job.id, tick_ms))
        if tick_ms == self.fail_on:
            raise RuntimeError("the job's own bug")


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class RecordingRates:
    """A stand-in for the rates service (not in this tree): it remembers what it was asked to record."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, Sequence[tuple[str, str]] | None]] = []

    async def retrieve(self, at_ms: int, markets: Sequence[tuple[str, str]] | None = None) -> int:
        self.calls.append((at_ms, markets))
        return len(markets or [("every", "market")])


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", None
        return
    async with postgres_schema() as schema:
        yield POSTGRES_URL, schema


@pytest.fixture
async def store(store_url: tuple[str, str | None]) -> AsyncIterator[Store]:
    async with Store(store_url[0], schema=store_url[1]) as started:
        yield started


async def test_a_job_every_minute_for_five_minutes_runs_exactly_five_times(store: Store) -> None:
    clock, kind = Clock(), Recorder()
    scheduler = Scheduler(store, {"record": kind}, clock, record_rates=False)
    made = await scheduler.add({"name": "each minute", "every": "1m", "timezone": "Europe/London", "job": {"kind": "record"}}, TOM)
    assert made["next_runs"][0]["ms"] == T0 + MINUTE
    for second in range(0, 5 * 60 + 1, 7):  # the clock moves in 7 s steps: many passes per tick, some twice at one instant
        clock.now = T0 + second * 1000
        await scheduler.run_due(clock.now)
        await scheduler.run_due(clock.now)
    assert kind.ticks == [(made["id"], T0 + i * MINUTE) for i in range(1, 5)]  # 5:00 is not reached yet at 4:57 + 7 s steps
    clock.now = T0 + 5 * MINUTE
    assert await scheduler.run_due(clock.now) == 1
    assert await scheduler.run_due(clock.now) == 0
    assert kind.ticks == [(made["id"], T0 + i * MINUTE) for i in range(1, 6)]
    ticks = await ScheduleStore(store).ticks(made["id"])
    assert sorted(t.tick_at for t in ticks) == [T0 + i * MINUTE for i in range(1, 6)] and {t.outcome for t in ticks} == {"ok"}
    view = await scheduler.get(made["id"], TOM)
    assert view["last_tick"]["outcome"] == "ok" and view["next_runs"][0]["ms"] == T0 + 6 * MINUTE


async def test_misfire_skip_runs_the_latest_and_catch_up_the_latest_limit(store: Store) -> None:
    clock, kind = Clock(), Recorder()
    scheduler = Scheduler(store, {"record": kind}, clock, record_rates=False)
    skip = await scheduler.add({"name": "skip", "every": "1m", "job": {"kind": "record"}}, TOM)
    catch = await scheduler.add({"name": "catch", "every": "1m", "job": {"kind": "record"},
                                 "misfire": {"policy": "catch_up", "limit": 3}}, TOM)
    clock.now = T0 + 10 * MINUTE + 30_000  # ten ticks missed while nothing ran
    assert await scheduler.run_due(clock.now) == 4
    assert sorted(kind.ticks) == sorted([(skip["id"], T0 + 10 * MINUTE)] + [(catch["id"], T0 + i * MINUTE) for i in (8, 9, 10)])


async def test_a_failing_job_records_its_error_and_the_schedule_goes_on(store: Store) -> None:
    clock, kind = Clock(), Recorder(fail_on=T0 + MINUTE)
    scheduler = Scheduler(store, {"record": kind}, clock, record_rates=False)
    made = await scheduler.add({"name": "x", "every": "1m", "job": {"kind": "record"}}, TOM)
    clock.now = T0 + MINUTE
    await scheduler.run_due(clock.now)
    view = await scheduler.get(made["id"], TOM)
    assert (view["last_tick"]["outcome"], view["last_tick"]["error"]) == ("error", "internal_error: RuntimeError")
    clock.now = T0 + 2 * MINUTE
    await scheduler.run_due(clock.now)
    assert (await scheduler.get(made["id"], TOM))["last_tick"]["outcome"] == "ok"


async def test_paused_schedules_do_not_run_and_resume_from_now(store: Store) -> None:
    clock, kind = Clock(), Recorder()
    scheduler = Scheduler(store, {"record": kind}, clock, record_rates=False)
    made = await scheduler.add({"name": "p", "every": "1m", "job": {"kind": "record"},
                                "misfire": {"policy": "catch_up", "limit": 100}}, TOM)
    await scheduler.pause(made["id"], TOM)
    clock.now = T0 + 5 * MINUTE + 1
    assert await scheduler.run_due(clock.now) == 0
    resumed = await scheduler.resume(made["id"], TOM)
    assert resumed["next_runs"][0]["ms"] == T0 + 6 * MINUTE  # the paused ticks are not caught up
    clock.now = T0 + 6 * MINUTE
    assert await scheduler.run_due(clock.now) == 1 and kind.ticks == [(made["id"], T0 + 6 * MINUTE)]


async def test_two_schedulers_on_one_store_run_each_tick_once(store_url: tuple[str, str | None]) -> None:
    async with Store(store_url[0], schema=store_url[1]) as one, Store(store_url[0], schema=store_url[1]) as two:
        clock, kinds = Clock(), [Recorder(), Recorder()]
        schedulers = [Scheduler(s, {"record": k}, clock, record_rates=False, process_id=f"p{i}")
                      for i, (s, k) in enumerate(zip((one, two), kinds, strict=True))]
        made = [await schedulers[0].add({"name": f"s{i}", "every": "1m", "job": {"kind": "record"}}, TOM) for i in range(3)]
        for minute in range(1, 6):
            clock.now = T0 + minute * MINUTE
            await asyncio.gather(*(s.run_due(clock.now) for s in schedulers for _ in range(2)))
        ran = sorted(kinds[0].ticks + kinds[1].ticks)
        assert ran == sorted((m["id"], T0 + i * MINUTE) for m in made for i in range(1, 6))


async def test_cron_in_europe_london_fires_once_across_each_dst_change(store: Store) -> None:
    for start, expected in (("2025-03-29T12:00:00+00:00", ["2025-03-30T01:00:00+00:00", "2025-03-31T00:30:00+00:00"]),
                            ("2025-10-25T12:00:00+00:00", ["2025-10-26T00:30:00+00:00", "2025-10-27T01:30:00+00:00"])):
        from datetime import UTC, datetime

        begin = int(datetime.fromisoformat(start).timestamp() * 1000)
        clock, kind = Clock(begin), Recorder()
        scheduler = Scheduler(store, {"record": kind}, clock, record_rates=False)
        made = await scheduler.add({"name": f"night {start}", "cron": "30 1 * * *", "timezone": "Europe/London",
                                    "job": {"kind": "record"}}, TOM)
        for minute in range(0, 2 * 24 * 60, 5):  # two days, a pass every five minutes of the test clock
            clock.now = begin + minute * MINUTE
            await scheduler.run_due(clock.now)
        assert [datetime.fromtimestamp(t / 1000, UTC).isoformat() for _, t in kind.ticks] == expected
        await scheduler.remove(made["id"], TOM)


async def test_record_rates_keeps_the_system_schedule_and_false_removes_it(store: Store) -> None:
    clock, rates = Clock(), RecordingRates()
    kinds = {"retrieve_rates": RetrieveRates(rates)}
    on = Scheduler(store, kinds, clock, record_rates=True)
    await on.ensure_system()
    await on.ensure_system()  # once, however often a server starts
    (system,) = [s for s in await on.listed(SYSTEM) if s["name"] == "rates"]
    assert (system["every"], system["job"], system["misfire"]["policy"], system["system"]) == ("1m", {"kind": "retrieve_rates"},
                                                                                              "skip", True)
    assert await on.listed(TOM) == []  # no user sees the server's own schedule
    clock.now = T0 + 3 * MINUTE + 5
    await on.run_due(clock.now)
    assert rates.calls == [(T0 + 3 * MINUTE, None)]  # missed minutes: skip runs the latest only
    mine = await on.add({"name": "btc", "every": "1m", "job": {"kind": "retrieve_rates", "markets": [["binance", "BTC/USDT"]]}}, TOM)
    clock.now = T0 + 4 * MINUTE
    await on.run_due(clock.now)
    assert sorted(rates.calls[1:], key=str) == sorted([(T0 + 4 * MINUTE, None), (T0 + 4 * MINUTE, [("binance", "BTC/USDT")])], key=str)
    off = Scheduler(store, kinds, clock, record_rates=False)
    await off.ensure_system()
    assert [s["name"] for s in await off.listed(SYSTEM)] == ["btc"] and mine["job"]["markets"] == [["binance", "BTC/USDT"]]
    with pytest.raises(InvalidInput) as refused:
        await off.add({"name": "bad", "every": "1m", "job": {"kind": "retrieve_rates", "markets": "BTC"}}, TOM)
    assert refused.value.code == "invalid_job"


async def test_housekeeping_prunes_ticks_older_than_the_setting(store: Store) -> None:
    settings = load_settings(env={"COINWIRE_SCHEDULE_TICKS_KEPT_DAYS": "0.5", "COINWIRE_RECORD_RATES": "false"})
    assert (settings.schedule_ticks_kept_days, settings.record_rates) == (0.5, False)
    clock, kind = Clock(), Recorder()
    housekeeping = Housekeeping(store, int(settings.schedule_ticks_kept_days * 86_400_000))
    scheduler = Scheduler(store, {"record": kind, "housekeeping": housekeeping}, clock, record_rates=settings.record_rates)
    await scheduler.ensure_system()  # the daily housekeeping schedule
    made = await scheduler.add({"name": "hourly", "every": "1h", "job": {"kind": "record"},
                                "misfire": {"policy": "catch_up", "limit": 100}}, TOM)
    clock.now = T0 + 24 * 3_600_000  # 24 hourly ticks, then the housekeeping at midnight (run after them or with them)
    await scheduler.run_due(clock.now)
    # the housekeeping ran in the same pass, beside the hourly ticks: run it again now that every tick is finished
    await housekeeping.run(await ScheduleStore(store).get(made["id"]), clock.now)  # type: ignore[arg-type]
    kept = sorted(t.tick_at for t in await ScheduleStore(store).ticks(made["id"]))
    assert kept == [T0 + h * 3_600_000 for h in range(12, 25)]  # the last half day: 12:00 .. 24:00
    with pytest.raises(Exception) as refused:
        await scheduler.add({"name": "hk", "every": "1d", "job": {"kind": "housekeeping"}}, TOM)
    assert getattr(refused.value, "code", None) == "forbidden"


def _wait_for(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _child(url: str, folder: Path, schema: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "tests.services.scheduler_child", url, str(folder), *([schema] if schema else [])],
                            cwd=ROOT, env=env)


def _set_clock(folder: Path, ms: int) -> None:
    """The child's clock, replaced in one step: a child reading while it is written sees the old time or the new, never ''."""
    (folder / "clock.new").write_text(str(ms))
    os.replace(folder / "clock.new", folder / "clock")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_exactly_once_per_tick_across_a_sigkill_and_a_restart(tmp_path: Path, backend: str) -> None:
    """A child scheduler is killed in the middle of the third tick's job (its effect done, its finish not recorded);
    a new process continues: each of the five ticks is claimed once and its effect happened once."""
    url, schema_cm = (f"sqlite:///{tmp_path / 'store.db'}", None) if backend == "sqlite" else (POSTGRES_URL, postgres_schema())
    schema = None if schema_cm is None else await schema_cm.__aenter__()
    try:
        async with Store(url, schema=schema) as store:
            clock = Clock()
            scheduler = Scheduler(store, {"effect": _EffectCheck()}, clock, record_rates=False)
            made = await scheduler.add({"name": "every minute", "every": "1m", "job": {"kind": "effect"}}, TOM)
        _set_clock(tmp_path, T0)
        (tmp_path / "hang").write_text(str(T0 + 3 * MINUTE))
        effects = tmp_path / "effects"

        def effect_lines() -> list[int]:
            return [int(x) for x in effects.read_text().split()] if effects.exists() else []

        first = _child(url, tmp_path, schema)
        try:
            _wait_for(lambda: (tmp_path / f"ready-{first.pid}").exists(), "the first scheduler")
            for minute in (1, 2, 3):
                _set_clock(tmp_path, T0 + minute * MINUTE)
                _wait_for(lambda m=minute: len(effect_lines()) == m, f"tick {minute}")
            time.sleep(0.2)  # the third job hangs after its effect
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        second = _child(url, tmp_path, schema)
        try:
            _wait_for(lambda: (tmp_path / f"ready-{second.pid}").exists(), "the second scheduler")
            for minute in (4, 5):
                _set_clock(tmp_path, T0 + minute * MINUTE)
                _wait_for(lambda m=minute: len(effect_lines()) == m, f"tick {minute}")
            time.sleep(0.3)  # time for a wrong second run of tick 3 to show
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait()
        assert effect_lines() == [T0 + i * MINUTE for i in range(1, 6)]
        async with Store(url, schema=schema) as store:
            ticks = {t.tick_at: t for t in await ScheduleStore(store).ticks(made["id"])}
        assert sorted(ticks) == [T0 + i * MINUTE for i in range(1, 6)]
        assert {t: ticks[t].outcome for t in ticks} == {**{T0 + i * MINUTE: "ok" for i in (1, 2, 4, 5)}, T0 + 3 * MINUTE: None}
        assert ticks[T0 + 3 * MINUTE].claimed_by != ticks[T0 + 4 * MINUTE].claimed_by  # two processes
    finally:
        if schema_cm is not None:
            await schema_cm.__aexit__(None, None, None)


class _EffectCheck:
    """The parent's side of the child's `effect` kind: it only checks (the child runs it)."""

    name = "effect"

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]:
        return {}

    async def run(self, job: Job, tick_ms: int) -> None:
        raise AssertionError("the parent never runs ticks")


async def test_the_loop_wakes_for_a_new_schedule_and_runs_it_on_the_wall_clock(store: Store) -> None:
    kind = Recorder()
    scheduler = Scheduler(store, {"record": kind}, record_rates=False, max_wait=30.0)  # it must not wait 30 s for a new schedule
    await scheduler.start()
    try:
        await asyncio.sleep(0.2)  # the loop is asleep: nothing was due
        made = await scheduler.add({"name": "each second", "every": "1s", "job": {"kind": "record"}}, TOM)
        deadline = time.monotonic() + 10
        while len(kind.ticks) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ticks = [t for _, t in kind.ticks]
        assert len(ticks) >= 2 and ticks == sorted(set(ticks)) and all(t % 1000 == 0 for t in ticks)
        assert {i for i, _ in kind.ticks} == {made["id"]}
    finally:
        await scheduler.close()


async def test_each_tick_runs_as_its_owner_is_now_disabled_or_demoted_owners_run_nothing(store: Store) -> None:
    from coinwire.auth.repository import AuthRepository

    users = AuthRepository(store)
    admin_id = await users.add_user("ada", "x", "admin", "pro", 1)
    ada = Principal(user_id=admin_id, username="ada", role="admin", plan="pro")
    clock = Clock()
    scheduler = Scheduler(store, {"housekeeping": Housekeeping(store, MINUTE)}, clock, record_rates=False, users=users)
    made = await scheduler.add({"name": "tidy", "every": "1m", "job": {"kind": "housekeeping"}}, ada)  # admins only
    outcomes = []
    for minute, change in ((1, {}), (2, {"role": "trader"}), (3, {"role": "admin", "disabled": True}), (4, {"disabled": False})):
        if change:
            await users.update_user(admin_id, **change)
        clock.now = T0 + minute * MINUTE
        await scheduler.run_due(clock.now)
        tick = (await scheduler.get(made["id"], SYSTEM))["last_tick"]
        outcomes.append((tick["outcome"], (tick["error"] or "").split(":")[0]))
    assert outcomes == [("ok", ""), ("error", "forbidden"), ("error", "owner_disabled"), ("ok", "")]
