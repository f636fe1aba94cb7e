"""The scheduler's run kinds over a real RunManager (runs in their own processes): `strategy_step` reaches a running run's
`on_step` (and only its owner's), `run_strategy` starts a run as the schedule's owner and stops it after its period."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coinwire.auth.abilities import Principal
from coinwire.core.errors import NotFound
from coinwire.services.runs import RunManager
from coinwire.services.scheduler import RunStrategy, Scheduler, StrategyStep
from coinwire.store import Store
from tests.conftest import shared_data

STRATEGY = Path(__file__).resolve().parent / "scheduled_strategies.py"
T0 = 1_767_225_600_000
MINUTE = 60_000
TOM = Principal(user_id=7, username="tom", role="trader", plan="free")
TESS = Principal(user_id=8, username="tess", role="trader", plan="free")
ADMIN = Principal(user_id=1, username="admin", role="admin", plan="pro")


class Owners:
    """Run owners as the API keeps them (api.ownership.Owners behind api.schedules_routes.OwnersForSchedules): who started what."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        self.sets: dict[int, int] = {}

    def owns(self, run_id: str, user: Principal) -> bool:
        return user.is_admin or self.runs.get(run_id) == user.user_id

    async def started(self, run_id: str, user_id: int) -> None:
        self.runs[run_id] = user_id

    def funded(self, wallet_set_id: int, user_id: int) -> None:
        self.sets[wallet_set_id] = user_id


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Store, RunManager, Owners]]:
    manager = RunManager(tmp_path / "data", allow_user_strategies=True)
    await manager.open()
    async with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        yield store, manager, Owners()
    await manager.close()


def body(**changes: Any) -> dict[str, Any]:
    out = {"mode": "backtest", "balances": {"binance:USDT": "10000"}, "fee": "0.001", "data": str(shared_data("binance-spot-1h",
                                                                                                             "BTC_USDT-1h.json"))}
    return {**out, **changes}


async def _wait(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return found


async def test_a_strategy_step_reaches_the_owners_running_run(setup: tuple[Store, RunManager, Owners]) -> None:
    store, manager, owners = setup
    started = await manager.start(f"{STRATEGY}:Steps", body(), owner_id=TOM.user_id)
    run_id = started["run_id"]
    await owners.started(run_id, TOM.user_id)
    clock = lambda: T0 + 90_000  # noqa: E731 - a fixed test clock
    scheduler = Scheduler(store, {"strategy_step": StrategyStep(manager, owners)}, clock, record_rates=False)
    with pytest.raises(NotFound) as refused:  # tess may not drive tom's run: it is not found for her
        await scheduler.add({"name": "s", "every": "1m", "job": {"kind": "strategy_step", "run_id": run_id, "step": "x"}}, TESS)
    assert refused.value.code == "run_not_found"
    made = await scheduler.add({"name": "rebalance", "every": "1m",
                                "job": {"kind": "strategy_step", "run_id": run_id, "step": "rebalance"}}, TOM)
    assert await scheduler.run_due(T0 + 3 * MINUTE) == 1
    steps = await _wait(lambda: manager.store.messages(run_id, 0, 10, "schedule.step", None)[1], "the step message")
    assert [m["params"] for m in steps] == [{"name": "rebalance"}] and steps[0]["direction"] == "in"
    await _wait(lambda: any("scheduled step rebalance" in line["message"] for line in manager.store.log(run_id)), "on_step's log")
    await manager.stop(run_id)
    assert await scheduler.run_due(T0 + 4 * MINUTE) == 1  # the run is over: the tick records why
    view = await scheduler.get(made["id"], TOM)
    assert view["last_tick"]["outcome"] == "error" and view["last_tick"]["error"].startswith("run_not_running")


async def test_run_strategy_starts_a_run_as_the_owner_and_stops_it_after_its_period(setup: tuple[Store, RunManager, Owners]) -> None:
    store, manager, owners = setup
    periods: list[float] = []

    async def short(seconds: float) -> None:  # the period passes at once: what it was is recorded
        periods.append(seconds)
        await asyncio.sleep(0.5)

    kind = RunStrategy(manager, owners, sleep=short)
    scheduler = Scheduler(store, {"run_strategy": kind}, lambda: T0, record_rates=False)
    with pytest.raises(Exception) as refused:  # a trader may not run a strategy file on the server
        await scheduler.add({"name": "f", "every": "1h", "job": {"kind": "run_strategy", "strategy": f"{STRATEGY}:Steps",
                                                                  "for": "1h", **body()}}, TOM)
    assert getattr(refused.value, "code", None) == "forbidden"
    await scheduler.add({"name": "hourly", "every": "1h", "job": {"kind": "run_strategy", "strategy": f"{STRATEGY}:Steps",
                                                                   "for": "30m", **body(params={"delay": 0.05})}}, ADMIN)
    assert await scheduler.run_due(T0 + 60 * MINUTE) == 1
    (run_id,) = owners.runs
    assert owners.runs[run_id] == ADMIN.user_id and manager.get(run_id)["status"] in ("running", "stopped")
    await _wait(lambda: manager.get(run_id)["status"] == "stopped", "the stop at the end of the period")
    assert periods == [1800]
    await asyncio.sleep(1.0)  # the stop returns once the run's process is gone: give the stopper that time before closing
    await kind.close()
