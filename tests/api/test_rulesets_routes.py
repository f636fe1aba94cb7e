"""Rule sets over REST and JSON-RPC on a real server: two traders and a viewer never cross, bad input stores nothing.

tom and tess (traders) each make rule sets on what they may trade; each lists only their own, and another's id answers
`rule_set_not_found` on every route and method, changing nothing. A scope the caller may not trade (another's account,
one only granted `view`, another's wallet set, run label or user portfolio) and an indicator series naming another's
account are refused with the scope's not-found code; vic (a viewer) lists his own (none) and may change nothing. A live
close_all needs `confirm`. Bad bodies (unknown kinds, out-of-range percentages, wrong shapes, junk JSON and query
values) answer 4xx with stable codes, never a 500, and store nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient
from tests.api.signed_in import code_of, http, rpc
from tests.server import ServerProcess

USERS = {"tom": "trader", "tess": "trader", "vic": "viewer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("rulesets")), env={"COINWIRE_RECORD_RATES": "false"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> dict[str, Any]:
    """Tokens, user ids, a paper account each for tom and tess (tess granted `view` on tom's, vic too), another of tom's
    granted to no one, tom's wallet set."""
    tokens = server.users(USERS)
    tokens["admin"] = server.token
    with server.client() as admin:
        ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
    accounts = {}
    for name, owner in (("tom", "tom"), ("tess", "tess"), ("tom_private", "tom")):
        with http(server, tokens[owner]) as client:
            made = client.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": f"{name}'s rules"})
            assert made.status_code == 201, made.text
            accounts[name] = made.json()["id"]
    with server.client() as admin:
        for viewer in ("tess", "vic"):
            admin.put(f"/api/v1/accounts/{accounts['tom']}/members/{ids[viewer]}", json={"role": "view"}).raise_for_status()

    async def wallet_set() -> int:
        async with rpc(server, tokens["tom"]) as client:
            made = await client.call("create_wallet_set", run_id="tom-run",
                                     wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "100", "account": accounts["tom"]}])
            return int(made["id"])

    return {"tokens": tokens, "ids": ids, "accounts": accounts, "wallet_set": asyncio.run(wallet_set())}


def stop(name: str, scope: str = "account", scope_id: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "scope": scope, "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": "5"}],
                            "actions": [{"kind": "close_all"}], **extra}
    if scope_id is not None:
        body["scope_id"] = str(scope_id)
    return body


def unstated(answer: Any) -> Any:
    """A rule set answer (or a list of them) without its live `status`: the controller moves that as it samples."""
    if isinstance(answer, list):
        return [unstated(item) for item in answer]
    return {k: v for k, v in answer.items() if k != "status"}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error


def names(client: httpx.Client) -> list[str]:
    return [r["name"] for r in ok(client.get("/api/v1/rulesets"))]


def test_create_read_change_enable_and_delete_over_rest(server: ServerProcess, world: dict[str, Any]) -> None:
    account = world["accounts"]["tom"]
    with http(server, world["tokens"]["tom"]) as tom:
        refused(tom.post("/api/v1/rulesets", json=stop("crud", scope_id=account)), 400, "confirmation_required")
        assert "crud" not in names(tom)
        made = ok(tom.post("/api/v1/rulesets", json={**stop("crud", scope_id=account), "confirm": True}), 201)
        assert set(made) == {"id", "owner_id", "name", "scope", "scope_id", "mode", "after", "cooldown", "enabled", "rules", "actions",
                             "status", "created", "updated"}
        assert (made["owner_id"], made["scope"], made["scope_id"], made["mode"], made["after"], made["enabled"]) == \
            (world["ids"]["tom"], "account", str(account), "live", "once", True)
        assert made["rules"] == [{"kind": "portfolio_trailing_stop", "arm_pct": "10", "trail_pct": "5"}]
        assert made["actions"][0]["kind"] == "close_all"
        assert made["status"]["rules"][0]["kind"] == "portfolio_trailing_stop" and made["status"]["rules"][0]["armed"] is False
        one = f"/api/v1/rulesets/{made['id']}"
        read = ok(tom.get(one))  # the same rule set; its live state moves once the controller has sampled it (a reference)
        assert {k: v for k, v in read.items() if k != "status"} == {k: v for k, v in made.items() if k != "status"}
        assert read["status"]["rules"][0]["kind"] == "portfolio_trailing_stop" and read["status"]["rules"][0]["armed"] is False
        taken = tom.post("/api/v1/rulesets", json={**stop("crud", scope_id=account), "confirm": True})
        refused(taken, 409, "rule_set_name_taken")
        # a dry run needs no confirmation; the whole rule set is replaced
        changed = ok(tom.put(one, json=stop("crud 2", scope="user", mode="dry_run", after="rearm", cooldown="1h")))
        assert (changed["name"], changed["scope"], changed["scope_id"], changed["mode"], changed["cooldown"]) == \
            ("crud 2", "user", str(world["ids"]["tom"]), "dry_run", "1h")
        assert changed["created"] == made["created"] and changed["updated"] >= made["updated"]
        assert ok(tom.post(f"{one}/disable"))["enabled"] is False
        assert ok(tom.post(f"{one}/enable"))["enabled"] is True  # dry run: no confirmation
        assert ok(tom.get(f"{one}/firings")) == []
        assert ok(tom.get(f"{one}/firings", params={"limit": "5", "before": "123"})) == []
        ok(tom.put(one, json={**stop("crud 2", scope_id=account, enabled=False)}))  # live but disabled: no confirmation yet
        refused(tom.post(f"{one}/enable"), 400, "confirmation_required")
        assert ok(tom.get(one))["enabled"] is False
        assert ok(tom.post(f"{one}/enable", json={"confirm": True}))["enabled"] is True
        assert ok(tom.delete(one)) == {"id": made["id"], "deleted": True}
        refused(tom.get(one), 404, "rule_set_not_found")
        refused(tom.delete(one), 404, "rule_set_not_found")


def test_each_scope_is_checked_for_trading(server: ServerProcess, world: dict[str, Any]) -> None:
    tom_account, tess_account = world["accounts"]["tom"], world["accounts"]["tess"]
    with http(server, world["tokens"]["tom"]) as tom, http(server, world["tokens"]["tess"]) as tess:
        ok(tom.post("/api/v1/rulesets", json=stop("on my set", "wallet_set", world["wallet_set"], mode="dry_run")), 201)
        ok(tom.post("/api/v1/rulesets", json=stop("on my run", "run", "tom-run", mode="dry_run")), 201)
        mine = ok(tom.post("/api/v1/rulesets", json=stop("whole", "user", mode="dry_run")), 201)
        assert mine["scope_id"] == str(world["ids"]["tom"])  # omitted: the caller's own portfolio
        before = names(tess)
        for body, status, code in [
            (stop("x", scope_id=tom_account, mode="dry_run"), 404, "account_not_found"),  # only granted view: not tradable
            (stop("x", scope_id=999_999, mode="dry_run"), 404, "account_not_found"),
            (stop("x", scope_id="01x", mode="dry_run"), 404, "account_not_found"),
            (stop("x", "wallet_set", world["wallet_set"], mode="dry_run"), 404, "unknown_wallet_set"),
            (stop("x", "wallet_set", 987_654, mode="dry_run"), 404, "unknown_wallet_set"),
            (stop("x", "run", "tom-run", mode="dry_run"), 404, "unknown_run"),
            (stop("x", "run", "never-started", mode="dry_run"), 404, "unknown_run"),
            (stop("x", "user", world["ids"]["tom"], mode="dry_run"), 404, "user_not_found"),
            (stop("x", "account", mode="dry_run"), 400, "invalid_rule_set"),  # an account scope names its account
            ({**stop("x", scope_id=tess_account, mode="dry_run"),
              "rules": [{"kind": "indicator", "series": f"balance:{world['accounts']['tom_private']}:USDT", "indicator": "sma",
                         "params": [5], "op": "below", "threshold": "1"}]}, 404, "account_not_found"),
            ({**stop("x", scope_id=tess_account, mode="dry_run"),
              "rules": [{"kind": "indicator", "series": f"portfolio:wallet_set:{world['wallet_set']}:1h", "indicator": "sma",
                         "params": [5], "op": "below", "threshold": "1"}]}, 404, "unknown_wallet_set"),
            ({**stop("x", scope_id=tess_account, mode="dry_run"),  # crossing another's balance: `other` is checked too
              "rules": [{"kind": "indicator", "series": "market:demo:BTC/USDT:1h", "indicator": "sma", "params": [5],
                         "op": "cross_above", "other": f"balance.{world['accounts']['tom_private']}.USDT:value()"}]},
             404, "account_not_found"),
        ]:
            refused(tess.post("/api/v1/rulesets", json=body), status, code)
        assert names(tess) == before  # nothing stored
        ok(tess.post("/api/v1/rulesets", json=stop("on mine", scope_id=tess_account, mode="dry_run")), 201)
        readable = {**stop("reads tom's", scope_id=tess_account, mode="dry_run"),  # an account she may view: readable
                    "rules": [{"kind": "indicator", "series": f"balance:{tom_account}:USDT", "indicator": "sma", "params": [5],
                               "op": "below", "threshold": "1"}]}
        ok(tess.post("/api/v1/rulesets", json=readable), 201)


def test_users_never_cross_and_a_viewer_changes_nothing(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens = world["tokens"]
    with http(server, tokens["tom"]) as tom, http(server, tokens["tess"]) as tess, http(server, tokens["vic"]) as vic, \
            server.client() as admin:
        theirs = ok(tom.post("/api/v1/rulesets", json=stop("private", "user", mode="dry_run")), 201)
        one = f"/api/v1/rulesets/{theirs['id']}"
        assert "private" not in names(tess)
        for client in (tess, vic):
            refused(client.get(one), 404, "rule_set_not_found")
            refused(client.get(f"{one}/firings"), 404, "rule_set_not_found")
        refused(tess.put(one, json=stop("stolen", "user", mode="dry_run")), 404, "rule_set_not_found")
        refused(tess.post(f"{one}/disable"), 404, "rule_set_not_found")
        refused(tess.post(f"{one}/enable"), 404, "rule_set_not_found")
        refused(tess.delete(one), 404, "rule_set_not_found")
        # vic, a viewer: lists his own (none), creates and changes nothing, not even on the account he may view
        assert ok(vic.get("/api/v1/rulesets")) == []
        refused(vic.post("/api/v1/rulesets", json=stop("v", "user", mode="dry_run")), 403, "forbidden")
        refused(vic.post("/api/v1/rulesets", json=stop("v", scope_id=world["accounts"]["tom"], mode="dry_run")), 403, "forbidden")
        for method, path in (("PUT", one), ("DELETE", one), ("POST", f"{one}/enable"), ("POST", f"{one}/disable")):
            refused(vic.request(method, path, json=stop("v", "user") if method == "PUT" else None), 403, "forbidden")
        assert unstated(ok(tom.get(one))) == unstated(theirs)  # unchanged by all of that
        assert theirs["id"] in [r["id"] for r in ok(admin.get("/api/v1/rulesets"))]  # admins see everyone's


async def test_the_same_over_json_rpc(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens, account = world["tokens"], world["accounts"]["tess"]
    async with rpc(server, tokens["tess"]) as tess, rpc(server, tokens["tom"]) as tom, rpc(server, tokens["vic"]) as vic:
        assert await code_of(tess, "create_rule_set", **stop("rpc", scope_id=account)) == "confirmation_required"
        made = await tess.call("create_rule_set", **stop("rpc", scope_id=account), confirm=True)
        assert made["scope_id"] == str(account) and made["enabled"] is True
        assert [r["id"] for r in await tess.call("list_rule_sets") if r["name"] == "rpc"] == [made["id"]]
        assert (await tess.call("get_rule_set", id=made["id"]))["name"] == "rpc"
        changed = await tess.call("update_rule_set", id=made["id"], **stop("rpc 2", scope_id=account, mode="dry_run"))
        assert (changed["name"], changed["mode"]) == ("rpc 2", "dry_run")
        assert (await tess.call("disable_rule_set", id=made["id"]))["enabled"] is False
        assert (await tess.call("enable_rule_set", id=made["id"]))["enabled"] is True
        assert await tess.call("get_rule_firings", id=made["id"], limit=10) == []
        for method, params in [("get_rule_set", {}), ("update_rule_set", stop("x", "user", mode="dry_run")),
                               ("delete_rule_set", {}), ("enable_rule_set", {}), ("disable_rule_set", {}), ("get_rule_firings", {})]:
            assert await code_of(tom, method, id=made["id"], **params) == "rule_set_not_found"
        assert await code_of(vic, "create_rule_set", **stop("v", "user", mode="dry_run")) == "forbidden"
        assert await code_of(vic, "delete_rule_set", id=made["id"]) == "forbidden"
        assert await code_of(tom, "create_rule_set", **stop("x", scope_id=account, mode="dry_run")) == "account_not_found"
        bad = {**stop("x", scope_id=account, mode="dry_run"), "rules": [{"kind": "moon_phase"}]}
        assert await code_of(tess, "create_rule_set", **bad) == "unknown_rule_kind"
        nowhere = {**stop("x", scope_id=account, mode="dry_run"), "rules": [_indicator("market:demo:NOPE/USDT:1h")]}
        assert await code_of(tess, "create_rule_set", **nowhere) == "unknown_series"
        assert await code_of(tess, "create_rule_set", **stop("x", scope_id=account, mode="dry_run"), colour="red") == "invalid_params"
        assert (await tess.call("get_rule_set", id=made["id"]))["name"] == "rpc 2"
        assert await tess.call("delete_rule_set", id=made["id"]) == {"id": made["id"], "deleted": True}


def _tess_account(world: dict[str, Any]) -> int:
    return int(world["accounts"]["tess"])


def _indicator(series: str, other: str | None = None) -> dict[str, Any]:
    """An SMA 20 rule on `series`, against a threshold or `other`."""
    compared: dict[str, Any] = {"threshold": "1"} if other is None else {"other": other}
    return {"kind": "indicator", "series": series, "indicator": "sma", "params": [20], "op": "cross_below", **compared}


BAD_BODIES: list[tuple[Any, str]] = [
    ({"rules": [{"kind": "moon_phase"}]}, "unknown_rule_kind"),
    ({"actions": [{"kind": "sell_the_house"}]}, "unknown_action_kind"),
    ({"rules": [{"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": 0}]}, "out_of_range"),
    ({"rules": [{"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": 100}]}, "out_of_range"),
    ({"rules": [{"kind": "portfolio_trailing_stop", "arm_pct": -1, "trail_pct": 5}]}, "out_of_range"),
    ({"rules": [{"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": 5, "extra": 1}]}, "invalid_rule_set"),
    ({"rules": []}, "out_of_range"),
    ({"actions": []}, "out_of_range"),
    ({"rules": "all of them"}, "invalid_rule_set"),
    ({"actions": [{"kind": "scale_orders", "factor": 11}]}, "out_of_range"),
    ({"after": "rearm"}, "invalid_rule_set"),  # rearm needs a cooldown
    ({"mode": "yolo"}, "invalid_rule_set"),
    ({"name": " "}, "out_of_range"),
    ({"name": "n" * 101}, "out_of_range"),
    ({"name": 5}, "invalid_rule_set"),
    ({"scope": "galaxy"}, "invalid_rule_set"),
    ({"colour": "red"}, "invalid_params"),
    ({"id": 5}, "invalid_params"),
    ({"confirm": "yes"}, "invalid_params"),
    # a series or `other` that names no market here, or no analyser output, is refused rather than stored to never fire
    ({"rules": [_indicator("market:nowhere:BTC/USDT:1h")]}, "unknown_series"),
    ({"rules": [_indicator("market:demo:NOPE/USDT:1h")]}, "unknown_series"),
    ({"rules": [_indicator("market:demo:BTC/USDT:1h", other="market.demo.NOPE-USDT.1h:sma(50)")]}, "unknown_series"),
    ({"rules": [_indicator("market:demo:BTC/USDT:1h", other="market.demo.BTC-USDT.1h:sma")]}, "unknown_series"),
    ({"rules": [_indicator("market:demo:BTC/USDT:1h", other="the moon")]}, "unknown_series"),
]


@pytest.mark.parametrize(("change", "code"), BAD_BODIES)
def test_bad_bodies_are_refused_with_a_code_and_store_nothing(server: ServerProcess, world: dict[str, Any], change: dict[str, Any],
                                                              code: str) -> None:
    with http(server, world["tokens"]["tess"]) as tess:
        before = ok(tess.get("/api/v1/rulesets"))
        body = {**stop("bad", scope_id=_tess_account(world), mode="dry_run"), **change}
        response = tess.post("/api/v1/rulesets", json=body)
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] == code, response.text
        assert unstated(ok(tess.get("/api/v1/rulesets"))) == unstated(before)


def test_junk_never_answers_a_500(server: ServerProcess, world: dict[str, Any]) -> None:
    with http(server, world["tokens"]["tess"]) as tess:
        made = ok(tess.post("/api/v1/rulesets", json=stop("junk target", "user", mode="dry_run")), 201)
        one = f"/api/v1/rulesets/{made['id']}"
        before = ok(tess.get("/api/v1/rulesets"))
        for method, path, content in [
            ("POST", "/api/v1/rulesets", b"{not json"), ("POST", "/api/v1/rulesets", b"[1, 2]"), ("POST", "/api/v1/rulesets", b'"x"'),
            ("POST", "/api/v1/rulesets", b"null"), ("POST", "/api/v1/rulesets", b""), ("PUT", one, b"[]"), ("PUT", one, b"{}"),
            ("POST", f"{one}/enable", b'{"confirm": true, "x": 1}'), ("POST", f"{one}/disable", b'{"a": 1}'),
            ("DELETE", one, b'{"a": 1}'), ("GET", f"{one}/firings?limit=0", b""), ("GET", f"{one}/firings?limit=abc", b""),
            ("GET", f"{one}/firings?before=-1", b""), ("GET", f"{one}/firings?colour=red", b""), ("GET", f"{one}?x=1", b""),
            ("GET", "/api/v1/rulesets/99999999999999999999999", b""), ("GET", "/api/v1/rulesets/0", b""),
            ("GET", "/api/v1/rulesets/-1", b""),
            ("POST", "/api/v1/rulesets", b'{"name": "deep", "rules": ' + b"[" * 500 + b"]" * 500 + b"}"),
        ]:
            response = tess.request(method, path, content=content, headers={"Content-Type": "application/json"})
            assert 400 <= response.status_code < 500, (method, path, content[:40], response.text)
            assert response.json()["error"]["code"], response.text
        assert unstated(ok(tess.get("/api/v1/rulesets"))) == unstated(before)


async def test_rule_fired_is_a_channel_a_viewer_may_subscribe(server: ServerProcess, world: dict[str, Any]) -> None:
    async with RpcClient(f"{server.ws_anonymous}?access_token={world['tokens']['vic']}") as vic:
        answer = await vic.call("subscribe", channels=["rule_fired"])
        assert "rule_fired" in answer["channels"]
