"""Warm-up through a real `coinwire serve`: the run body's `warmup`, the run log's warm-up line, refusals that create nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(timeout=60) as client:
        yield client


def wait_log(api: httpx.Client, run_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = api.get(f"/runs/{run_id}/log").json()
        if any(line["message"].startswith("warm-up:") for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_a_required_warmup_on_the_demo_feed_starts_with_the_history_and_says_so(api: httpx.Client) -> None:
    r = api.put("/runnables/ma_cross/start", json={"mode": "paper", "balances": {"demo:USDT": "1000"},
                                                   "params": {"timeframe": "1m", "fast": 5, "slow": 30}, "warmup": "required"})
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    try:
        lines = wait_log(api, run_id)
        warm = [line for line in lines if line["message"].startswith("warm-up:")]
        assert len(warm) == 1 and warm[0]["level"] == "info", lines
        # recorded candles of the few minutes the server has run cannot cover 30: the demo feed's past does
        assert warm[0]["message"].startswith("warm-up: BTC/USDT 1m 30 candles from ")
        messages = api.get(f"/runs/{run_id}/messages?method=run.warmup").json()
        (series,) = messages["messages"][0]["params"]["series"]
        assert series == {"symbol": "BTC/USDT", "timeframe": "1m", "wanted": 30, "loaded": 30, "source": series["source"], "missing": ""}
    finally:
        api.put(f"/runs/{run_id}/stop")


def test_a_bad_warmup_policy_is_refused_and_creates_nothing(api: httpx.Client) -> None:
    before = len(api.get("/runs").json())
    r = api.put("/runnables/ma_cross/start", json={"mode": "paper", "balances": {"demo:USDT": "10"}, "warmup": "sometimes"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_warmup" and "best_effort" in error["message"]
    assert len(api.get("/runs").json()) == before


def test_a_warm_run_is_its_owners_alone(server: ServerProcess) -> None:
    """Two traders and a viewer: the warm-up's log and messages are the starter's; the viewer cannot start one."""
    tokens = server.users({"wendy": "trader", "walt": "trader", "wade": "viewer"})

    def client(name: str) -> httpx.Client:
        return httpx.Client(base_url=server.http, timeout=30, headers={"Authorization": f"Bearer {tokens[name]}"})

    payload = {"mode": "paper", "balances": {"demo:USDT": "100"}, "params": {"timeframe": "1m", "fast": 3, "slow": 12},
               "warmup": "required"}
    with client("wendy") as wendy, client("walt") as walt, client("wade") as wade:
        r = wendy.put("/runnables/ma_cross/start", json=payload)
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
        try:
            assert any(line["message"].startswith("warm-up: BTC/USDT 1m 12 candles") for line in wait_log(wendy, run_id))
            for other in (walt, wade):
                for path in (f"/runs/{run_id}/log", f"/runs/{run_id}/messages?method=run.warmup"):
                    answer = other.get(path)
                    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_run", answer.text
            refused = wade.put("/runnables/ma_cross/start", json=payload)
            assert refused.status_code == 403, refused.text
        finally:
            wendy.put(f"/runs/{run_id}/stop")
