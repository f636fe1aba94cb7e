"""Backtests on the candles a server recorded (`data: "recorded:EXCHANGE"`): the server reads its own store, for anyone who may run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.history.recorded_rows import MINUTES, T0, recorded_store
from tests.server import ServerProcess

PASSWORD = "recorded-password"


def _client(server: ServerProcess, username: str, role: str) -> httpx.Client:
    with server.client() as admin:
        admin.post("/api/v1/users", json={"username": username, "password": PASSWORD, "role": role}).raise_for_status()
    token = server.login(username, PASSWORD)["access_token"]
    return httpx.Client(base_url=server.http, timeout=60, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> Iterator[dict[str, httpx.Client]]:
    """Two traders (confined: the server's files are not theirs) and a viewer; the server has recorded demo candles."""

    async def record() -> None:
        store = await recorded_store(f"sqlite:///{server.data_dir / 'coinwire.db'}")
        await store.close()

    asyncio.run(record())
    clients = {name: _client(server, name, role) for name, role in (("rita", "trader"), ("rolf", "trader"), ("vic", "viewer"))}
    yield clients
    for client in clients.values():
        client.close()


def _body(data: Any, **changes: Any) -> dict[str, Any]:
    body = {"mode": "backtest", "balances": {"demo:USDT": "10000"}, "data": data,
            "params": {"timeframe": "5m", "fast": 3, "slow": 8}}
    return {**body, **changes}


def test_a_trader_backtests_on_the_recorded_candles_and_only_they_see_the_run(server: ServerProcess,
                                                                            users: dict[str, httpx.Client]) -> None:
    rita, rolf, vic = users["rita"], users["rolf"], users["vic"]
    started = rita.put("/runnables/ma_cross/start", json=_body("recorded:demo"))
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + 60
    while (run := rita.get(f"/runs/{run_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    assert run["status"] == "finished", run
    report = run["report"]
    assert report["entries"] > 2 and report["trades"][0]["exchange"] == "demo"
    assert rolf.get(f"/runs/{run_id}").status_code == 404  # another user's run
    assert run_id not in {r["run_id"] for r in rolf.get("/runs").json()}
    assert vic.put("/runnables/ma_cross/start", json=_body("recorded:demo")).status_code == 403  # a viewer starts nothing


@pytest.mark.parametrize(("data", "changes", "status", "code"), [
    ("recorded:nosuch", {}, 404, "unknown_exchange"),
    # the server records the demo's SOL/USDT live: inside the seeded rows' range there is none of it
    ("recorded:demo", {"params": {"symbol": "SOL/USDT", "timeframe": "5m"}, "end": T0 + MINUTES * 60}, 404, "recorded_missing"),
    ("recorded:demo", {"start": 2_000_000_000}, 404, "recorded_missing"),
    ("recorded:Demo!", {}, 422, "invalid_exchange"),
    ("recorded:kraken", {}, 422, "invalid_balance"),
], ids=["unknown-exchange", "symbol-not-recorded", "range-not-recorded", "bad-name", "other-exchange"])
def test_bad_recorded_data_is_refused_and_leaves_no_run(server: ServerProcess, users: dict[str, httpx.Client], data: str,
                                                        changes: dict[str, Any], status: int, code: str) -> None:
    before = set(Path(server.data_dir / "runs").iterdir()) if (server.data_dir / "runs").is_dir() else set()
    refused = users["rolf"].put("/runnables/ma_cross/start", json=_body(data, **changes))
    assert refused.status_code == status and refused.json()["error"]["code"] == code, refused.text
    after = set(Path(server.data_dir / "runs").iterdir()) if (server.data_dir / "runs").is_dir() else set()
    assert after == before
