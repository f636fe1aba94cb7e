"""A scheduler apart from the gateway (`--roles scheduler`), as real processes over PostgreSQL, NATS and Redis.

The scheduler process claims each due tick in the store and sends its job to the gateway's process
(api/forwarding.py `kind="job"`), which runs it there (`Scheduler.run_job`: the owner checked as they
are now, the job checked again), where the runs and the market data are; the gateway's process runs
no scheduler loop of its own. alice's `run_strategy` schedule every 2 s starts paper runs that are
hers (bob sees none of them), each tick's outcome is recorded `ok`; the scheduler killed with -9, no
run starts; started again, runs start again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.remote.cluster import ready, shared_env
from tests.server import ServerProcess

pytestmark = pytest.mark.services

JOB = {"kind": "run_strategy", "strategy": "hodl", "mode": "paper", "balances": {"demo:USDT": "100"},
       "params": {"timeframe": "1s"}, "for": "1m"}


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=15.0, headers={"Authorization": f"Bearer {token}"})


def _runs(http: httpx.Client) -> set[str]:
    answer = http.get("/runs")
    assert answer.status_code == 200, answer.text
    return {r["run_id"] for r in answer.json()}


def _until(check: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout:g} s: {what() if callable(what) else what}")


def test_a_scheduler_apart_claims_each_tick_and_the_gateways_process_runs_its_job(tmp_path: Path) -> None:
    with shared_env() as env:
        gateway = ServerProcess(tmp_path / "gw", env={**env, "COINWIRE_ROLES": "gateway,marketdata,api,engine"})
        scheduler = ServerProcess(tmp_path / "sched", env={**env, "COINWIRE_ROLES": "scheduler"})
        for server in (gateway, scheduler):
            server.data_dir.mkdir()
        try:
            gateway.start(timeout=60)
            scheduler.start(wait_ready=False)
            ready(scheduler)
            tokens = gateway.users({"alice": "trader", "bob": "trader"})
            with _client(gateway.http, tokens["alice"]) as alice, _client(gateway.http, tokens["bob"]) as bob:
                made = alice.post("/api/v1/schedules", json={"name": "paper every 2 s", "every": "2s", "job": JOB})
                assert made.status_code == 201, made.text
                schedule = made.json()["id"]
                def state() -> str:
                    return f"{alice.get(f'/api/v1/schedules/{schedule}').json()}\n{scheduler.log()[-3000:]}"

                _until(lambda: len(_runs(alice)) >= 2, 30, lambda: "two runs started by the scheduler apart: " + state())
                last = alice.get(f"/api/v1/schedules/{schedule}").json()["last_tick"]
                assert last["outcome"] == "ok", last
                assert not _runs(bob)  # hers, not his
                scheduler.kill()
                time.sleep(3)
                stopped = _runs(alice)
                time.sleep(4)  # two periods: no process claims the ticks now
                assert _runs(alice) == stopped
                scheduler.start(wait_ready=False)
                ready(scheduler)
                _until(lambda: len(_runs(alice) - stopped) >= 1, 30, "a run started after the scheduler's restart")
                assert alice.delete(f"/api/v1/schedules/{schedule}").status_code in (200, 204)
                for run_id in _runs(alice):
                    alice.put(f"/runs/{run_id}/stop")
        finally:
            for server in (scheduler, gateway):
                server.stop()
