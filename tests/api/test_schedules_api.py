"""Schedules over REST and JSON-RPC on a real server: two traders and a viewer never cross, bad input stores nothing.

tom and tess each add schedules; each lists only their own, another's id answers `schedule_not_found` on every route
and method (get, remove, pause, resume) and changes nothing of theirs; vic (a viewer) lists his own (none) and may not
add. Every refusal (bad cron, unknown zone, unknown kind, a strategy file from a trader, housekeeping from a trader, a
step for another user's run) stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

USERS = {"tom": "trader", "tess": "trader", "vic": "viewer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("schedules")), env={"COINWIRE_RECORD_RATES": "false"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    out = server.users(USERS)
    out["admin"] = server.token
    return out


def http(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=30, headers={"Authorization": f"Bearer {token}"})


def every_minute(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "every": "1m", "job": {"kind": "run_strategy", "strategy": "hodl", "mode": "backtest", "for": "1h"},
            **extra}


def test_add_list_get_pause_resume_remove_over_rest(server: ServerProcess, tokens: dict[str, str]) -> None:
    with http(server, tokens["tom"]) as tom:
        tom.put("/api/v1/me/preferences", json={"time_zone": "Europe/London"}).raise_for_status()
        r = tom.post("/api/v1/schedules", json={"name": "weekday open", "cron": "0 9 * * 1-5",
                                                "job": {"kind": "run_strategy", "strategy": "ma_cross", "mode": "backtest",
                                                        "params": {"fast": 5, "slow": 20}, "for": "8h"},
                                                "misfire": {"policy": "catch_up", "limit": 2}})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["timezone"] == "Europe/London"  # the owner's preference when none is given
        assert made["job"] == {"kind": "run_strategy", "strategy": "ma_cross", "mode": "backtest", "params": {"fast": 5, "slow": 20},
                               "for": "8h"}
        assert made["misfire"] == {"policy": "catch_up", "limit": 2} and made["last_tick"] is None
        assert len(made["next_runs"]) == 5 and all(run["at"][11:16] == "09:00" for run in made["next_runs"])
        assert [run["ms"] for run in made["next_runs"]] == sorted(run["ms"] for run in made["next_runs"])
        listed = tom.get("/api/v1/schedules").json()
        assert [s["id"] for s in listed] == [made["id"]] and len(listed[0]["next_runs"]) == 1
        assert tom.get(f"/api/v1/schedules/{made['id']}").json()["name"] == "weekday open"
        paused = tom.post(f"/api/v1/schedules/{made['id']}/pause").json()
        assert paused["paused"] is True and paused["next_runs"] == []
        resumed = tom.post(f"/api/v1/schedules/{made['id']}/resume").json()
        assert resumed["paused"] is False and len(resumed["next_runs"]) == 5
        taken = tom.post("/api/v1/schedules", json=every_minute("weekday open"))
        assert (taken.status_code, taken.json()["error"]["code"]) == (409, "schedule_name_taken")
        assert tom.delete(f"/api/v1/schedules/{made['id']}").json() == {"id": made["id"], "removed": True}
        assert tom.get(f"/api/v1/schedules/{made['id']}").json()["error"]["code"] == "schedule_not_found"


async def test_users_never_cross_and_a_viewer_lists_but_does_not_add(server: ServerProcess, tokens: dict[str, str]) -> None:
    with http(server, tokens["tom"]) as tom, http(server, tokens["tess"]) as tess, http(server, tokens["vic"]) as vic, \
            http(server, tokens["admin"]) as admin:
        mine = tom.post("/api/v1/schedules", json=every_minute("mine")).json()
        theirs = tess.post("/api/v1/schedules", json=every_minute("mine")).json()  # the same name: names are per owner
        assert mine["id"] != theirs["id"]
        before = tess.get(f"/api/v1/schedules/{theirs['id']}").json()
        for verb, path in (("GET", ""), ("DELETE", ""), ("POST", "/pause"), ("POST", "/resume")):
            r = tom.request(verb, f"/api/v1/schedules/{theirs['id']}{path}")
            assert (r.status_code, r.json()["error"]["code"]) == (404, "schedule_not_found"), (verb, path)
            unknown = tom.request(verb, f"/api/v1/schedules/{10**12}{path}")
            assert unknown.json() == r.json() | {"error": {**r.json()["error"], "message": f"no schedule {10**12}"}}
        assert tess.get(f"/api/v1/schedules/{theirs['id']}").json() == before  # nothing of hers changed
        assert [s["id"] for s in tom.get("/api/v1/schedules").json()] == [mine["id"]]
        assert [s["id"] for s in tess.get("/api/v1/schedules").json()] == [theirs["id"]]
        assert vic.get("/api/v1/schedules").json() == []
        refused = vic.post("/api/v1/schedules", json=every_minute("vic's"))
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
        assert vic.get(f"/api/v1/schedules/{theirs['id']}").json()["error"]["code"] == "schedule_not_found"
        every = {s["id"] for s in admin.get("/api/v1/schedules").json()}
        assert {mine["id"], theirs["id"]} <= every  # admins see everyone's (and the server's own)
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as rpc:
            assert [s["id"] for s in await rpc.call("list_schedules")] == [mine["id"]]
            for method in ("get_schedule", "remove_schedule", "pause_schedule", "resume_schedule"):
                with pytest.raises(RpcError) as refused_rpc:
                    await rpc.call(method, id=theirs["id"])
                assert refused_rpc.value.data["code"] == "schedule_not_found", method
            added = await rpc.call("add_schedule", **every_minute("over rpc", timezone="UTC"))
            assert (await rpc.call("pause_schedule", id=added["id"]))["paused"] is True
            assert (await rpc.call("remove_schedule", id=added["id"]))["removed"] is True
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['vic']}") as rpc:
            assert await rpc.call("list_schedules") == []
            with pytest.raises(RpcError) as refused_rpc:
                await rpc.call("add_schedule", **every_minute("vic's"))
            assert refused_rpc.value.data["code"] == "forbidden"
        assert tess.get(f"/api/v1/schedules/{theirs['id']}").json() == before
        tom.delete(f"/api/v1/schedules/{mine['id']}")
        tess.delete(f"/api/v1/schedules/{theirs['id']}")


BAD = [
    ({"name": "b", "cron": "61 * * * *", "job": {"kind": "run_strategy", "strategy": "hodl", "for": "1h"}}, 400, "invalid_cron"),
    ({"name": "b", "cron": "* * * *", "job": {"kind": "run_strategy", "strategy": "hodl", "for": "1h"}}, 400, "invalid_cron"),
    ({"name": "b", "every": "1m", "timezone": "Mars/Olympus", "job": {"kind": "run_strategy", "strategy": "hodl", "for": "1h"}},
     400, "invalid_timezone"),
    ({"name": "b", "every": "1m", "job": {"kind": "mine_bitcoin"}}, 400, "unknown_job_kind"),
    ({"name": "b", "every": "1m", "job": {"strategy": "hodl"}}, 400, "unknown_job_kind"),
    ({"name": "b", "every": "1m", "job": {"kind": "run_strategy", "strategy": "/tmp/evil.py:Evil", "for": "1h"}}, 403, "forbidden"),
    ({"name": "b", "every": "1m", "job": {"kind": "run_strategy", "strategy": "no_such", "for": "1h"}}, 403, "forbidden"),  # runs API: same
    ({"name": "b", "every": "1m", "job": {"kind": "run_strategy", "strategy": "ma_cross", "params": {"fats": 3}, "for": "1h"}},
     400, "unknown_parameter"),
    ({"name": "b", "every": "1m", "job": {"kind": "run_strategy", "strategy": "hodl"}}, 400, "invalid_job"),
    ({"name": "b", "every": "1m", "job": {"kind": "housekeeping"}}, 403, "forbidden"),
    ({"name": "b", "every": "1m", "job": {"kind": "strategy_step", "run_id": "bt-nobody", "step": "rebalance"}}, 404, "run_not_found"),
    ({"name": "b", "every": "1m", "misfire": {"policy": "sometimes"}, "job": {"kind": "housekeeping"}}, 400, "invalid_misfire"),
    ({"name": "", "every": "1m", "job": {"kind": "run_strategy", "strategy": "hodl", "for": "1h"}}, 400, "invalid_params"),
    ({"name": "b", "cron": "* * * * *", "every": "1m", "job": {"kind": "housekeeping"}}, 400, "invalid_schedule"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD)
def test_bad_input_answers_its_code_and_stores_nothing(server: ServerProcess, tokens: dict[str, str], body: dict[str, Any],
                                                       status: int, code: str) -> None:
    with http(server, tokens["tess"]) as tess:
        before = tess.get("/api/v1/schedules").json()
        r = tess.post("/api/v1/schedules", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert tess.get("/api/v1/schedules").json() == before
