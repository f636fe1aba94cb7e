"""Api replicas apart from the gateway, as real processes over PostgreSQL, NATS and Redis (docs/SCALING.md "Commands across processes").

One gateway process (`--roles gateway,marketdata`: the demo feed and the paper exchange, no HTTP API)
and two api replicas (`--roles api`). A trader signs in on replica A and trades on both; a WebSocket
subscriber on B gets the fills of an order placed on A with the seqs a replay on A gives; another
user cannot see or cancel those orders through either replica, a viewer cannot trade; a wallet set
made on A is pushed, after an order on it, to its owner's subscription on B and not to another
user's there; a rule set's firing reaches its owner's connections on both replicas and not another
user's; a portfolio's forming candles and an analysis value stream to her connection on a
replica from the gateway's process, refused to another user and a viewer; the routes that need the
gateway's memory (accounts, runs) answer through either replica as from one process, each user's
own; the gateway
killed, the replicas answer `gateway_unavailable` within their wait; started again, the same
client_oid and Idempotency-Key answer the one order placed before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.api.test_outside_signals_api import signed
from tests.remote.cluster import Replicas, ready, replicas_cluster, shared_env
from tests.server import ServerProcess

pytestmark = pytest.mark.services


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Replicas]:
    with replicas_cluster(tmp_path, gateway_roles="gateway,marketdata,tracker,engine") as started:
        yield started


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=15.0, headers={"Authorization": f"Bearer {token}"})


def _buy(http: httpx.Client, oid: str, key: str | None = None, kind: str = "market", **extra: Any) -> httpx.Response:
    body = {"exchange": "demo", "pair": "BTC_USDT", "type": kind, "side": "buy", "size": "0.01", "client_oid": oid, **extra}
    return http.post("/xwrap/v1/orders/new", json=body, headers={"Idempotency-Key": key} if key else {})


async def _drain(client: RpcClient, quiet: float = 0.5) -> list[tuple[str, Any]]:
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(await asyncio.wait_for(client.notifications.get(), quiet))
    return got


async def _first_of(client: RpcClient, names: set[str], timeout: float) -> dict[str, Any]:
    """The first notification of each of `names` (others are dropped), waiting at most `timeout` for all."""
    got: dict[str, Any] = {}

    async def wait() -> None:
        while len(got) < len(names):
            name, params = await client.notifications.get()
            if name in names:
                got.setdefault(name, params)

    await asyncio.wait_for(wait(), timeout)
    return got


def _seqs(notes: list[tuple[str, Any]]) -> list[tuple[str, int]]:
    return sorted((m, int(p["seq"])) for m, p in notes if m in ("order", "trade"))


async def test_two_replicas_serve_one_gateway_as_one_process_would(cluster: Replicas) -> None:
    a, b = cluster.a, cluster.b
    tokens = a.users({"alice": "trader", "bob": "trader", "vera": "viewer"})
    with _client(a.http, tokens["alice"]) as alice_a, _client(b.http, tokens["alice"]) as alice_b:
        async with RpcClient(f"{b.ws_anonymous}?access_token={tokens['alice']}") as watcher:
            placed = _buy(alice_a, "first")  # her first order opens her paper account, in the gateway's process
            assert placed.status_code == 200, placed.text
            order = placed.json()
            assert (order["status"], order["filled_size"]) == ("done", "0.01")
            account = int(order["account"])
            seen = _seqs(await _drain(watcher))
        assert {m for m, _ in seen} == {"order", "trade"} and ("order", int(order["seq"])) in seen, seen
        # a replay on A from the start gives what B saw live, the same seqs
        async with RpcClient(f"{a.ws_anonymous}?access_token={tokens['alice']}&account={account}&since=0") as replay:
            assert _seqs(await _drain(replay)) == seen
        # a resting order placed on B, listed on A, cancelled on A
        rest = _buy(alice_b, "resting", kind="limit", limit="1000")
        assert rest.status_code == 200 and rest.json()["status"] == "open", rest.text
        assert rest.json()["id"] in [o["id"] for o in alice_a.get("/xwrap/v1/orders/open").json()]
        # a wallet set made on A is read on B
        made = alice_a.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": "demo", "currency": "USDT", "allocation": "100"}]})
        assert made.status_code == 200, made.text
        assert str(made.json()["id"]) in alice_b.get("/xwrap/v1/wallets/sets").json()
        # bob sees nor cancels alice's order through either replica; vera cannot trade
        for url in (a.http, b.http):
            with _client(url, tokens["bob"]) as bob:
                gone = bob.post("/xwrap/v1/orders/cancel", json={"order_id": rest.json()["id"]})
                assert (gone.status_code, gone.json()["error"]["code"]) == (404, "order_not_found"), gone.text
                assert rest.json()["id"] not in [o["id"] for o in bob.get("/xwrap/v1/orders/open").json()]
            with _client(url, tokens["vera"]) as vera:
                refused = _buy(vera, "nope")
                assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden"), refused.text
        cancelled = alice_a.post("/xwrap/v1/orders/cancel", json={"order_id": rest.json()["id"]})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "done", cancelled.text
        # a bad parameter answers as one process does: 400 and its code
        bad = alice_b.post("/xwrap/v1/orders/new", json={"exchange": "demo", "pair": "BTC_USDT", "side": "up"})
        assert bad.status_code == 400 and bad.json()["error"]["code"], bad.text
        async with RpcClient(f"{b.ws_anonymous}?access_token={tokens['alice']}") as rpc:
            with pytest.raises(RpcError) as missing:  # a forwarded JSON-RPC error keeps its code and data
                await rpc.call("cancel_order", order_id=10**9)
            assert (missing.value.code, missing.value.data["code"]) == (-32001, "order_not_found")
            # a wallet set's pushes come over the bus from the gateway's commits; the sets a subscription names are
            # checked where the ledger is (another's, or an invented one, is unknown)
            set_id = int(made.json()["id"])
            with pytest.raises(RpcError) as foreign:
                await rpc.call("subscribe", channels=["wallet_set"], wallet_sets=[set_id + 1000])
            assert foreign.value.data["code"] == "unknown_wallet_set"
            await rpc.call("subscribe", channels=["wallet_set"], wallet_sets=[set_id])
            async with RpcClient(f"{b.ws_anonymous}?access_token={tokens['bob']}") as bobs:
                await bobs.call("subscribe", channels=["wallet_set"])  # every set he may read: none of hers
                async with RpcClient(f"{a.ws_anonymous}?access_token={tokens['alice']}") as trader:
                    await trader.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market",
                                      size="0.001", wallet_set_id=set_id, client_oid="on-the-set")
                pushed = await rpc.notification("wallet_set", timeout=10)
                assert pushed["id"] == set_id and {w["currency"] for w in pushed["wallets"]} >= {"USDT", "BTC"}, pushed
                with pytest.raises(TimeoutError):
                    await bobs.notification("wallet_set", timeout=1.0)
            await rpc.call("subscribe", channels=["import_progress"])  # it comes over the bus (test_import_progress_bus.py)
            # the controller's firings come over the bus from the gateway's process: to her on B and on A, not to bob
            await rpc.call("subscribe", channels=["rule_fired"])
            async with RpcClient(f"{b.ws_anonymous}?access_token={tokens['bob']}") as bobs, \
                    RpcClient(f"{a.ws_anonymous}?access_token={tokens['alice']}") as hers_on_a:
                for listener in (bobs, hers_on_a):
                    await listener.call("subscribe", channels=["rule_fired"])
                made_rule = alice_b.post("/api/v1/rulesets", json={
                    "name": "floor", "scope": "account", "scope_id": str(account), "mode": "dry_run",
                    "rules": [{"kind": "portfolio_stop", "value": "1000000000000"}], "actions": [{"kind": "notify"}]})
                assert made_rule.status_code == 201, made_rule.text
                for listener in (rpc, hers_on_a):
                    fired = await listener.notification("rule_fired", timeout=20)
                    assert (fired["rule_set_id"], fired["scope_id"]) == (made_rule.json()["id"], str(account)), fired
                with pytest.raises(TimeoutError):
                    await bobs.notification("rule_fired", timeout=1.0)
                assert alice_a.delete(f"/api/v1/rulesets/{made_rule.json()['id']}").status_code in (200, 204)
            # the tracker's forming candles and the analyser's values are fed in the gateway's process and pushed back
            # to this replica's connection (api/remote_streams.py); another user or a viewer is refused there
            candles = await rpc.call("subscribe_portfolio_ohlcv", scope="account", id=account, timeframe="15m")
            balance = await rpc.call("subscribe_analysis", series=f"balance:{account}:USDT", indicator="value")
            for name, token in (("bob", tokens["bob"]), ("vera", tokens["vera"])):
                async with RpcClient(f"{b.ws_anonymous}?access_token={token}") as other:
                    for method, params in (("subscribe_portfolio_ohlcv", {"scope": "account", "id": account}),
                                           ("subscribe_analysis", {"series": f"balance:{account}:USDT", "indicator": "value"})):
                        with pytest.raises(RpcError) as hidden:
                            await other.call(method, **params)
                        assert hidden.value.data["code"] in ("not_found", "account_not_found"), (name, method, hidden.value)
            async with RpcClient(f"{a.ws_anonymous}?access_token={tokens['alice']}") as trader:
                await trader.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001",
                                  client_oid="moves-the-balance")
            firsts = await _first_of(rpc, {"portfolio_ohlcv", "analysis"}, timeout=15)
            forming, value = firsts["portfolio_ohlcv"], firsts["analysis"]
            assert forming["subscription"] == candles["subscription"] and len(forming["candle"]) == 6, forming
            assert value["subscription"] == balance["subscription"] and value["key"] == f"balance.{account}.USDT:value()", value
            assert await rpc.call("unsubscribe_analysis", subscription=balance["subscription"]) is True
            assert await rpc.call("unsubscribe_analysis", subscription=balance["subscription"]) is False
        # the routes that need the gateway's (or the engine's) memory are sent there whole: the same answers on both
        # replicas, each user's own, a viewer refused by the replica's guard
        listed = alice_b.get("/api/v1/accounts")
        assert listed.status_code == 200 and account in [a["id"] for a in listed.json()], listed.text
        assert alice_a.get("/api/v1/accounts").json() == listed.json()
        started = alice_b.put("/runnables/hodl/start", json={"mode": "paper", "balances": {"demo:USDT": "100"},
                                                             "params": {"timeframe": "1s"}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert alice_a.get(f"/runs/{run_id}").json()["status"] == "running"
        assert run_id in [r["run_id"] for r in alice_a.get("/runs").json()]
        for url in (a.http, b.http):
            with _client(url, tokens["bob"]) as bob:
                hidden = bob.get(f"/runs/{run_id}")
                assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "unknown_run"), hidden.text
                assert run_id not in [r["run_id"] for r in bob.get("/runs").json()]
                assert account not in [x["id"] for x in bob.get("/api/v1/accounts").json()]
                assert bob.get(f"/api/v1/accounts/{account}").status_code == 404
            with _client(url, tokens["vera"]) as vera:
                assert vera.put("/runnables/hodl/start", json={"mode": "paper", "balances": {"demo:USDT": "1"}}).status_code == 403
        stopped = alice_a.put(f"/runs/{run_id}/stop")
        assert stopped.status_code == 200, stopped.text
        # an outside signal through either replica reaches her signal run in the gateway's process: by her signals key
        # (its own credential, which the public route checks there) and signed with the secret made through the other
        trader = alice_b.put("/runnables/signal_trader/start", json={"mode": "paper", "balances": {"demo:USDT": "1000"},
                                                                     "params": {"provider": "tradingview"}})
        assert trader.status_code == 202, trader.text
        signal_run = trader.json()["run_id"]
        key = alice_b.post("/api/v1/api_keys", json={"name": "tv", "scopes": ["signals:tradingview"]}).json()["key"]
        alert = {"ticker": "BINANCE:BTCUSDT", "exchange": "BINANCE", "action": None, "contracts": "0.001", "price": "30000"}
        by_key = httpx.post(a.http + "/api/v1/signals/tradingview", json=alert, headers={"Authorization": f"Bearer {key}"},
                            timeout=15)
        assert by_key.status_code == 200 and by_key.json()["run_ids"] == [signal_run], by_key.text
        secret = alice_a.post("/api/v1/signals/tradingview/secret").json()
        raw = json.dumps(alert).encode()
        by_hmac = httpx.post(b.http + secret["url"], content=raw, timeout=15, headers=signed(secret["secret"], raw))
        assert by_hmac.status_code == 200 and by_hmac.json()["run_ids"] == [signal_run], by_hmac.text
        assert alice_a.put(f"/runs/{signal_run}/stop").status_code == 200
        unknown = [http.get("/api/v1/accounts/999999") for http in (alice_a, alice_b)]
        assert [(r.status_code, r.json()) for r in unknown] == [(404, unknown[0].json())] * 2

        with a.client() as admin:  # the replica's round trips to the gateway's process, on its /metrics
            assert 'coinwire_forwarded_call_seconds_count{outcome="ok"}' in admin.get("/metrics").text
        # the gateway killed: a call waits gateway_wait_seconds, then gateway_unavailable (503), on either replica
        first = _buy(alice_a, "again", key="k-again")
        assert first.status_code == 200, first.text
        async with RpcClient(f"{a.ws_anonymous}?access_token={tokens['alice']}") as chart:
            stream = await chart.call("subscribe_portfolio_ohlcv", scope="account", id=account)
            cluster.gateway.kill()
            for http in (alice_a, alice_b):
                started = time.monotonic()
                down = _buy(http, "during", key="k-during")
                waited = time.monotonic() - started
                assert (down.status_code, down.json()["error"]["code"]) == (503, "gateway_unavailable"), down.text
                assert cluster.wait_seconds - 0.2 <= waited <= cluster.wait_seconds + 2.0, waited
            # the stream's feeder died with the gateway's process: the replica ends it, so the chart subscribes again
            deadline = time.monotonic() + 20
            while not (pushed := await chart.notification("portfolio_ohlcv", timeout=deadline - time.monotonic())).get("ended"):
                pass
            assert pushed == {"subscription": stream["subscription"], "ended": "gateway_unavailable"}, pushed
        cluster.gateway.start(timeout=40)
        # the same client_oid, or the same Idempotency-Key, answers the one order placed before the kill
        for http, key in ((alice_b, "k-again"), (alice_a, None)):
            repeat = _buy(http, "again", key=key)
            assert repeat.status_code == 200 and repeat.json()["id"] == first.json()["id"], repeat.text
        later = _buy(alice_b, "during", key="k-during")  # never placed while the gateway was down: placed once now
        assert later.status_code == 200 and later.json()["status"] == "done", later.text
        oids = [o["client_order_id"] for o in alice_a.get("/xwrap/v1/orders/recent", params={"limit": 50}).json()]
        mine = [o for o in oids if not o.startswith("pp-")]  # pp-...: the paper run's orders, in her account too
        assert sorted(mine) == sorted(["first", "resting", "on-the-set", "moves-the-balance", "again", "during"]), oids
        # a forwarded route's repeat with the same Idempotency-Key answers the first answer (one account opened)
        opened = [alice_b.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": "second"},
                                  headers={"Idempotency-Key": "acct-1"})
                  for _ in range(2)]
        assert opened[0].status_code == 201 and opened[1].json() == opened[0].json(), opened[0].text


@pytest.mark.slow
def test_a_replica_reaches_the_standby_gateway_once_it_holds_the_lease(tmp_path: Path) -> None:
    """Two gateway processes on one store (a holder and a standby, marketdata apart) and a replica: the holder killed,
    an order sent to the replica waits until the standby holds the lease and serves, then is placed there, once."""
    with shared_env(wait_seconds=15.0) as env:
        market = ServerProcess(tmp_path / "md", env={**env, "COINWIRE_ROLES": "marketdata"})
        first = ServerProcess(tmp_path / "gw1", env={**env, "COINWIRE_ROLES": "gateway"})
        standby = ServerProcess(tmp_path / "gw2", env={**env, "COINWIRE_ROLES": "gateway"})
        replica = ServerProcess(tmp_path / "api", env={**env, "COINWIRE_ROLES": "api"})
        for server in (market, first, standby, replica):
            server.data_dir.mkdir()
        try:
            market.start(wait_ready=False)
            ready(market)
            first.start(timeout=40)
            standby.start(wait_ready=False)  # waits for the lease: serves nothing
            replica.start(wait_ready=False)
            ready(replica)
            with replica.client(timeout=30.0) as admin:
                placed = _buy(admin, "before")
                assert placed.status_code == 200, placed.text
                first.kill()
                started = time.monotonic()
                after = _buy(admin, "after", key="k-after")
                waited = time.monotonic() - started
                assert after.status_code == 200 and after.json()["status"] == "done", after.text
                assert waited < 15.0, waited  # the standby took the 3-second lease over, restored, and answered
                again = _buy(admin, "after", key="k-after")
                assert again.json()["id"] == after.json()["id"]
                oids = sorted(o["client_order_id"] for o in admin.get("/xwrap/v1/orders/recent", params={"limit": 10}).json())
                assert oids == ["after", "before"], oids
        finally:
            for server in (replica, standby, first, market):
                server.stop()
