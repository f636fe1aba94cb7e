"""Analyser outputs and signals over REST and /rpc on a real server: the one series check with two users and a viewer,
errors, stored values read back exactly, a live balance stream, and signals of the caller's own runs only.

ann and ben are traders, val a viewer granted `view` on ann's account. The test writes stored values and signals into
the server's database with the store's own functions (what the analyser and the signal sink write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.core.analysis import analysis_key
from coinwire.store import Store
from coinwire.store.analysis import AnalysisRow, add_signal, insert_values
from tests.api.signed_in import code_of, http, rpc
from tests.conftest import postgres_database
from tests.server import DEMO_EXCHANGES, ServerProcess

S = 10**9


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, store_url: str) -> Iterator[ServerProcess]:
    exchanges = [{**DEMO_EXCHANGES[0], "symbols": ["BTC/USDT", "BTC/USDT:USDT"]}]  # a perpetual for the position series
    proc = ServerProcess(Path(tmp_path_factory.mktemp("analysis")), env={"COINWIRE_STORE_URL": store_url}, exchanges=exchanges)
    proc.start()
    yield proc
    proc.stop()


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error


@pytest.fixture(scope="module")
def world(server: ServerProcess, store_url: str) -> dict[str, Any]:
    tokens = server.users({"ann": "trader", "ben": "trader", "val": "viewer"})
    ids: dict[str, Any] = {"tokens": tokens}
    with http(server, tokens["ann"]) as ann, http(server, tokens["ben"]) as ben, server.client() as admin:
        users = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
        ids["user"] = users
        ids["ann_account"] = min(a["id"] for a in ann.get("/api/v1/accounts").json() if a["role"] == "owner")
        ids["ben_account"] = min(a["id"] for a in ben.get("/api/v1/accounts").json() if a["role"] == "owner")
        granted = admin.put(f"/api/v1/accounts/{ids['ann_account']}/members/{users['val']}", json={"role": "view"})
        assert granted.status_code == 200, granted.text
    series = {
        "ann": f"portfolio:account:{ids['ann_account']}:1h",
        "ann_total": f"portfolio:user:{users['ann']}:15m",
        "ben": f"portfolio:account:{ids['ben_account']}:1h",
        "market": "market:demo:BTC/USDT:1h",
    }
    ids["series"] = series
    values = {name: [(1_800_000_000 + i * 3600, 100.0 + i + 0.125 * n) for i in range(5)] for n, name in enumerate(series)}
    ids["values"] = values
    owners = {"ann": users["ann"], "ann_total": users["ann"], "ben": users["ben"], "market": None}

    async def store_them() -> None:
        store = Store(store_url)
        await store.start()
        try:
            rows = [AnalysisRow(key=analysis_key(series[name], "sma", [20]), time_ns=t * S, owner_id=owners[name],
                                series=series[name], indicator="sma", params=(20,), value=v)
                    for name, points in values.items() for t, v in points]
            await insert_values(store, rows)
            await add_signal(store, users["ann"], "pp-ann", "ma_cross", 10 * S, "above")
            await add_signal(store, users["ann"], "pp-ann", "ma_cross", 20 * S, "below")
            await add_signal(store, users["ben"], "pp-ben", "ma_cross", 15 * S, "above")
        finally:
            await store.close()

    asyncio.run(store_them())
    return ids


def get(client: httpx.Client, series: str, **extra: Any) -> httpx.Response:
    return client.get("/api/v1/analysis", params={"series": series, "indicator": "sma", "params": "20", **extra})


def test_owners_viewers_and_others(server: ServerProcess, world: dict[str, Any]) -> None:
    s, values, tokens = world["series"], world["values"], world["tokens"]
    with http(server, tokens["ann"]) as ann, http(server, tokens["ben"]) as ben, http(server, tokens["val"]) as val:
        mine = ok(get(ann, s["ann"]))
        assert mine["key"] == analysis_key(s["ann"], "sma", [20]) and mine["params"] == [20] and mine["indicator"] == "sma"
        assert mine["values"] == [[t, v] for t, v in values["ann"]]
        assert ok(get(ann, s["ann_total"]))["values"] == [[t, v] for t, v in values["ann_total"]]
        assert ok(get(ben, s["ben"]))["values"] == [[t, v] for t, v in values["ben"]]
        # ben may not read ann's account or total; an account that does not exist answers the same
        for series in (s["ann"], s["ann_total"], "portfolio:account:999999:1h", f"balance:{world['ann_account']}:USDT"):
            refused(get(ben, series), 404, "not_found")
        # val was granted ann's account: it, not ann's total, nor ben's
        assert ok(get(val, s["ann"]))["values"] == [[t, v] for t, v in values["ann"]]
        refused(get(val, s["ann_total"]), 404, "not_found")
        refused(get(val, s["ben"]), 404, "not_found")
        # a market is public to readers
        for client in (ann, ben, val):
            assert ok(get(client, s["market"]))["values"] == [[t, v] for t, v in values["market"]]
        # the range and the limit
        window = ok(get(ann, s["ann"], start=values["ann"][1][0], end=values["ann"][3][0]))["values"]
        assert window == [[t, v] for t, v in values["ann"][1:3]]
        assert ok(get(ann, s["ann"], limit=2))["values"] == [[t, v] for t, v in values["ann"][-2:]]


def test_bad_input_has_stable_codes(server: ServerProcess, world: dict[str, Any]) -> None:
    with http(server, world["tokens"]["ann"]) as ann:
        refused(get(ann, "market:nowhere:BTC/USDT:1h"), 400, "unknown_series")
        refused(get(ann, "candles:x"), 400, "unknown_series")
        refused(get(ann, "portfolio"), 400, "unknown_series")  # whose? only a rule set knows
        refused(get(ann, "portfolio:account:1:5m"), 400, "unknown_series")
        refused(ann.get("/api/v1/analysis", params={"series": world["series"]["market"], "indicator": "nope"}), 400,
                "unknown_indicator")
        refused(get(ann, world["series"]["market"], params="x"), 400, "invalid_parameter")
        refused(get(ann, world["series"]["market"], params="0"), 400, "invalid_parameter")
        refused(get(ann, world["series"]["market"], limit=0), 400, "invalid_params")
        refused(get(ann, world["series"]["market"], colour="red"), 400, "invalid_params")


def test_signals_are_the_callers_own(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens = world["tokens"]
    with http(server, tokens["ann"]) as ann, http(server, tokens["ben"]) as ben, http(server, tokens["val"]) as val:
        assert ok(ann.get("/api/v1/signals", params={"run_id": "pp-ann"}))["signals"] == [
            {"run_id": "pp-ann", "name": "ma_cross", "time": 10, "value": "above"},
            {"run_id": "pp-ann", "name": "ma_cross", "time": 20, "value": "below"}]
        assert ok(ben.get("/api/v1/signals", params={"run_id": "pp-ann"}))["signals"] == []
        assert [x["run_id"] for x in ok(ben.get("/api/v1/signals"))["signals"]] == ["pp-ben"]
        assert ok(val.get("/api/v1/signals"))["signals"] == []


async def test_a_live_balance_stream_and_its_scope(server: ServerProcess, world: dict[str, Any]) -> None:
    account = world["ann_account"]
    series = f"balance:{account}:USDT"
    async with rpc(server, world["tokens"]["ann"]) as ann, rpc(server, world["tokens"]["ben"]) as ben:
        assert await code_of(ben, "subscribe_analysis", series=series, indicator="value") == "not_found"
        assert await code_of(ben, "subscribe_analysis", series="market:demo:BTC/USDT:1h", indicator="rsi",
                             params=[0]) == "invalid_parameter"
        answer = await ann.call("subscribe_analysis", series=series, indicator="value")
        assert answer["key"] == analysis_key(series, "value") and answer["values"], answer
        before = answer["values"][-1][1]
        await ann.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.01", account=account)
        pushed = await ann.notification("analysis", timeout=20)
        assert pushed["subscription"] == answer["subscription"] and pushed["key"] == answer["key"]
        assert pushed["value"] < before  # USDT spent on the buy
        assert await ann.call("unsubscribe_analysis", subscription=answer["subscription"]) is True
        assert await ann.call("unsubscribe_analysis", subscription=answer["subscription"]) is False
    with http(server, world["tokens"]["ann"]) as rest:  # what was pushed was stored
        stored = ok(rest.get("/api/v1/analysis", params={"series": series, "indicator": "value"}))["values"]
        assert [pushed["time"], pushed["value"]] in stored


async def test_a_position_series_is_its_unrealised_pnl(server: ServerProcess, world: dict[str, Any]) -> None:
    account = world["ann_account"]
    series = f"position:{account}:BTC/USDT:USDT"
    async with rpc(server, world["tokens"]["ann"]) as ann, rpc(server, world["tokens"]["ben"]) as ben:
        assert await code_of(ben, "subscribe_analysis", series=series, indicator="value") == "not_found"
        answer = await ann.call("subscribe_analysis", series=series, indicator="value")
        assert answer["values"][-1][1] == 0.0  # flat: no unrealised PnL
        order = {"exchange": "demo", "pair": "BTC_USDT:USDT", "type": "market", "size": "0.01", "account": account}
        await ann.call("make_order", side="buy", **order)
        pushed = await ann.notification("analysis", timeout=20)
        (position,) = await ann.call("get_positions", exchange="demo", pair="BTC_USDT:USDT", account=account)
        assert pushed["value"] != 0.0 and abs(pushed["value"]) < float(position["notional"]) * 0.05
        await ann.call("make_order", side="sell", reduce_only=True, **order)
        while pushed["value"] != 0.0:  # closed: back to none
            pushed = await ann.notification("analysis", timeout=20)
        assert pushed["key"] == analysis_key(series, "value")
