"""Live rule sets on a real server: a rule set made over REST fires, its actions run, `rule_fired` reaches the right people.

tom's live portfolio stop on his account (a level far above its value: it holds at the first sample) fires: its
close_all leaves the account in USDT, and the firing is pushed to tom and to tess and vic, who may view that account,
never to tara (a trader without a grant). tess's dry run on her own account is recorded and pushed to her alone, and
her account is untouched. Each firing is listed by its rule set's owner over REST.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coinwire.api.client import RpcClient
from tests.api.signed_in import http, rpc
from tests.server import ServerProcess

USERS = {"tom": "trader", "tess": "trader", "tara": "trader", "vic": "viewer"}
FAR = "1000000000000"  # a floor above any account's value: the stop holds at its first sample


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("controller")), env={"COINWIRE_RECORD_RATES": "false"})
    proc.start()
    yield proc
    proc.stop()


def holdings(server: ServerProcess, token: str, account: int) -> dict[str, Decimal]:
    with http(server, token) as client:
        answer = client.get(f"/api/v1/accounts/{account}/balances")
        assert answer.status_code == 200, answer.text
    return {w["currency"]: Decimal(w["balance"]) for w in answer.json()["total"] if Decimal(w["balance"])}


async def pushes(client: RpcClient, until: float) -> list[dict[str, Any]]:
    """Every `rule_fired` push that arrives before `until` (monotonic seconds)."""
    out: list[dict[str, Any]] = []
    while (left := until - time.monotonic()) > 0:
        try:
            out.append(await client.notification("rule_fired", timeout=left))
        except TimeoutError:
            break
    return out


def test_a_live_stop_flattens_the_account_a_dry_run_trades_nothing_and_pushes_reach_only_readers(server: ServerProcess) -> None:
    tokens = server.users(USERS)
    with server.client() as admin:
        ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
    accounts = {}
    for name in ("tom", "tess"):
        with http(server, tokens[name]) as client:
            made = client.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": f"{name}'s guarded"})
            assert made.status_code == 201, made.text
            accounts[name] = made.json()["id"]
    with server.client() as admin:
        for viewer in ("tess", "vic"):
            admin.put(f"/api/v1/accounts/{accounts['tom']}/members/{ids[viewer]}", json={"role": "view"}).raise_for_status()
    before_tess = holdings(server, tokens["tess"], accounts["tess"])
    assert before_tess["BTC"] > 0 and holdings(server, tokens["tom"], accounts["tom"])["BTC"] > 0

    async def scenario() -> dict[str, list[dict[str, Any]]]:
        clients = {name: rpc(server, tokens[name]) for name in ("tom", "tess", "tara", "vic")}
        for client in clients.values():
            await client.connect()
        try:
            for client in clients.values():
                await client.call("subscribe", channels=["rule_fired"])
            with http(server, tokens["tom"]) as tom:
                made = tom.post("/api/v1/rulesets", json={
                    "name": "floor", "scope": "account", "scope_id": str(accounts["tom"]), "confirm": True,
                    "rules": [{"kind": "portfolio_stop", "value": FAR}], "actions": [{"kind": "close_all"}]})  # fmt: skip
                assert made.status_code == 201, made.text
            with http(server, tokens["tess"]) as tess:
                made = tess.post("/api/v1/rulesets", json={
                    "name": "floor", "scope": "account", "scope_id": str(accounts["tess"]), "mode": "dry_run",
                    "rules": [{"kind": "portfolio_stop", "value": FAR}], "actions": [{"kind": "close_all"}]})  # fmt: skip
                assert made.status_code == 201, made.text
            until = time.monotonic() + 15
            got = await asyncio.gather(*(pushes(c, until) for c in clients.values()))
            return dict(zip(clients, got, strict=True))
        finally:
            for client in clients.values():
                await client.close()

    got = asyncio.run(scenario())

    def of(name: str, account: int) -> list[dict[str, Any]]:
        return [p for p in got[name] if p["scope_id"] == str(account)]

    # tom's firing: stored (pending), then finished (done); to tom, tess and vic; never to tara
    toms = of("tom", accounts["tom"])
    assert [p["firing"]["actions"][0]["status"] for p in toms] == ["pending", "done"]
    assert of("tess", accounts["tom"]) == toms and of("vic", accounts["tom"]) == toms
    assert got["tara"] == []
    held = holdings(server, tokens["tom"], accounts["tom"])
    assert set(held) == {"USDT"}, held  # every coin sold into USDT
    sold = toms[-1]["firing"]["actions"][0]["detail"]["sold"]
    assert {key.rsplit(":", 1)[1] for key in sold} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}

    # tess's dry run: recorded, pushed to her alone, nothing traded
    hers = of("tess", accounts["tess"])
    assert len(hers) == 1 and hers[0]["firing"]["mode"] == "dry_run"
    assert hers[0]["firing"]["actions"][0]["status"] == "recorded"
    assert of("tom", accounts["tess"]) == [] and of("vic", accounts["tess"]) == []
    assert holdings(server, tokens["tess"], accounts["tess"]) == before_tess

    with http(server, tokens["tom"]) as tom:
        [rule_set] = tom.get("/api/v1/rulesets").json()
        [firing] = tom.get(f"/api/v1/rulesets/{rule_set['id']}/firings").json()
        assert firing["actions"][0]["status"] == "done" and Decimal(firing["values"]["value"]) <= Decimal(FAR)
    with http(server, tokens["tara"]) as tara:
        assert tara.get(f"/api/v1/rulesets/{rule_set['id']}/firings").status_code == 404


def test_a_rule_set_on_a_paper_run_pauses_scales_sells_and_stops_it(server: ServerProcess) -> None:
    tokens = server.users({"rita": "trader"})
    with http(server, tokens["rita"]) as rita:
        started = rita.put("/runnables/hodl/start", json={"mode": "paper", "balances": {"demo:USDT": "1000"},
                                                          "params": {"timeframe": "1s"}})  # fmt: skip
        assert started.status_code == 202, started.text
        run_id = str(started.json()["run_id"])
        deadline = time.monotonic() + 30
        while not rita.get(f"/runs/{run_id}/messages?method=venue.fill").json()["total"]:  # hodl has bought its BTC
            assert time.monotonic() < deadline, "the run never bought"
            time.sleep(0.05)
        made = rita.post("/api/v1/rulesets", json={
            "name": "guard", "scope": "run", "scope_id": run_id, "confirm": True,
            "rules": [{"kind": "portfolio_stop", "value": FAR}],
            "actions": [{"kind": "pause_entries"}, {"kind": "scale_orders", "factor": "0.5"}, {"kind": "close_all"},
                        {"kind": "stop_run"}]})  # fmt: skip
        assert made.status_code == 201, made.text
        rule_set = made.json()
        deadline = time.monotonic() + 30
        while True:
            firings = rita.get(f"/api/v1/rulesets/{rule_set['id']}/firings").json()
            if firings and all(a["status"] in ("done", "failed") for a in firings[0]["actions"]):
                break
            assert time.monotonic() < deadline, firings
            time.sleep(0.05)
        pause, scale, close, stop = firings[0]["actions"]
        assert (pause["status"], pause["detail"]["entries_paused"]) == ("done", True)
        assert (scale["status"], scale["detail"]["scale"]) == ("done", "0.5")
        assert close["status"] == "done" and [key.rsplit(":", 1)[1] for key in close["detail"]["sold"]] == ["BTC/USDT"]
        assert "/set" in next(iter(close["detail"]["sold"]))  # sold from the run's wallet set, not the account's own funds
        assert stop["status"] == "done" and stop["detail"]["status"] == "stopped"
        assert rita.get(f"/runs/{run_id}").json()["status"] == "stopped"
        assert rita.get(f"/runs/{run_id}/messages?method=controller.pause").json()["total"] >= 1
