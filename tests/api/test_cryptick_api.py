"""The seed's strategy API (`/cryptick/v1`, its appendix C) end to end through a real server, with a client written from it.

One server for the module: its history holds Binance BTC/USDT (5m and 1h) for backtests with the seed's body alone, and its
demo exchange runs paper runs that stay running while input is posted. Two traders and a viewer: runs never cross.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coinwire.engine.mhubrpc import ANSWERED_CALLS
from coinwire.history.formats import read_candles
from coinwire.history.store import HistoryStore, default_history_root
from tests.api.signed_in import wait_for
from tests.conftest import shared_data
from tests.server import ServerProcess

JAN_2021, FEB_2021 = 1609459200, 1612137600
# the seed's start body, as its appendix C shows it, on an exchange this server has history for
SEED_BODY = {"mode": "backtest", "start": JAN_2021, "end": FEB_2021,
             "balances": [{"exchange": "binance", "base": "USDT", "balance": 1000},
                          {"exchange": "binance", "base": "BTC", "balance": 0.01}]}
SEED_NAMES = ["HodlStrategy", "EchoStrategy", "DemoStrategy", "ComponentDemo", "EfficientFrontier"]


def seed_client(server: ServerProcess, token: str | None) -> httpx.Client:
    """A client of the seed's API as its appendix C documents it: GET and PUT with JSON under one base URL."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.http + "/cryptick/v1", timeout=60, headers=headers)


@pytest.fixture(scope="module")
def people(server: ServerProcess) -> Iterator[dict[str, httpx.Client]]:
    store = HistoryStore(default_history_root(server.data_dir))
    for timeframe in ("5m", "1h"):
        store.write(read_candles(shared_data(f"binance-spot-{timeframe}", f"BTC_USDT-{timeframe}.json")))
    tokens = server.users({"alice": "trader", "bob": "trader", "vera": "viewer"})
    clients = {name: seed_client(server, token) for name, token in tokens.items()}
    clients["anonymous"] = seed_client(server, None)
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def alices_backtest(people: dict[str, httpx.Client]) -> str:
    """HodlStrategy started with the seed's body alone (the seed's own example, on Binance), run to its end."""
    r = people["alice"].put("/runnables/HodlStrategy/start", json=SEED_BODY)
    assert r.status_code == 200, r.text
    run_id = r.json()
    assert isinstance(run_id, str)  # "returns run-ID": the id itself
    wait_for(people["alice"], f"/runs/{run_id}", lambda run: not run["running"])
    return run_id


def paired(messages: list[dict[str, Any]], call_method: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(call, its result or error) for every call of `call_method` that was answered."""
    calls = {m["response_method"]: m for m in messages if m["method"] == call_method and "response_method" in m}
    return [(calls[m["method"]], m) for m in messages if ("result" in m or "error" in m) and m["method"] in calls]


def test_a_seed_client_lists_starts_lists_posts_input_reads_mhubrpc_and_stops(people: dict[str, httpx.Client], alices_backtest: str,
                                                                              server: ServerProcess) -> None:
    alice = people["alice"]
    runnables = alice.get("/runnables").json()
    assert runnables[:5] == SEED_NAMES and "ma_cross" in runnables
    # the backtest: the seed's record and coinwire's report
    run = alice.get(f"/runs/{alices_backtest}").json()
    assert {k: run[k] for k in ("mode", "run_id", "running", "strategy")} == {
        "mode": "backtesting", "run_id": alices_backtest, "running": False, "strategy": "HodlStrategy"}
    assert run["status"] == "finished" and [t["side"] for t in run["report"]["trades"]] == ["buy"]
    assert run["report"]["start"] >= JAN_2021 and run["report"]["end"] <= FEB_2021
    answer = alice.get(f"/runs/{alices_backtest}/messages")  # "returns all messages": a month of 5-minute candles at once
    messages, total = answer.json(), int(answer.headers["x-total-count"])
    assert total > 8000 and len(messages) == total and "x-next-offset" not in answer.headers
    assert all(m["mhubrpc"] == "0.0.1" for m in messages) and messages[0]["method"] == "run.start"
    ((call, result),) = paired(messages, "venue.make_order")
    assert result == {"mhubrpc": "0.0.1", "method": call["response_method"], "result": result["result"]}
    assert result["result"]["status"] == "filled" and result["result"]["client_oid"] == call["params"]["client_oid"]
    native = httpx.get(f"{server.http}/runs/{alices_backtest}/messages", params={"format": "mhubrpc", "limit": 1000},
                       headers=alice.headers).json()
    assert native["messages"] == messages[:1000] and native["total"] == len(messages)
    # a paper run of the demo strategy stays running: its components take input as the seed sends it, unwrapped
    r = alice.put("/runnables/DemoStrategy/start", json={"mode": "paper", "balances": [{"exchange": "demo", "base": "USDT",
                                                                                          "balance": 1000}],
                                                          "params": {"timeframe": "1s"}})
    assert r.status_code == 200, r.text
    paper = r.json()
    listed = alice.get("/runs").json()
    assert listed[paper] == {"mode": "paper", "run_id": paper, "running": True, "strategy": "DemoStrategy"}
    assert listed[alices_backtest]["mode"] == "backtesting" and set(listed) >= {paper, alices_backtest}
    components = wait_for(alice, f"/runs/{paper}/components", lambda cs: len(cs) == 3)
    assert sorted(c["id"] for c in components) == ["controls", "fills", "price"]
    r = alice.put(f"/runs/{paper}/components/controls", json={"action": "buy", "fraction": 0.1})
    assert r.status_code == 200, r.text
    messages = wait_for(alice, f"/runs/{paper}/messages", lambda ms: bool(paired(ms, "venue.make_order")), timeout=30)
    assert {"mhubrpc": "0.0.1", "method": "ui.input", "params": {"id": "controls", "value": {"action": "buy", "fraction": 0.1}}} in messages
    ((call, result),) = paired(messages, "venue.make_order")
    assert call["params"]["side"] == "buy" and result["result"]["client_oid"] == call["params"]["client_oid"]
    assert set(messages[0]) == {"mhubrpc", "method", "params"} and messages[0]["method"] == "run.start"  # a notification
    stopped = alice.put(f"/run/{paper}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"mode": "paper", "run_id": paper, "running": False, "strategy": "DemoStrategy"}
    assert alice.get("/runs").json()[paper]["running"] is False


def test_a_seed_client_reads_every_message_of_a_long_run_in_one_call(people: dict[str, httpx.Client], alices_backtest: str,
                                                                     server: ServerProcess) -> None:
    """Appendix C: the messages route "returns all messages that went through the message hub during a run". A client
    written from it makes one call and follows no header: it must get them all, not the first page of a long backtest."""
    alice = people["alice"]
    native = alice.get(f"/runs/{alices_backtest}/messages", params={"format": "native"})
    assert native.status_code == 200, native.text
    records, total = native.json(), int(native.headers["x-total-count"])
    assert total > 1000 and [m["seq"] for m in records] == list(range(1, total + 1))  # each once, in order
    assert "x-next-offset" not in native.headers and "link" not in native.headers
    seed = alice.get(f"/runs/{alices_backtest}/messages").json()
    assert len(seed) == total and all(m["mhubrpc"] == "0.0.1" for m in seed)
    calls = [int(m["response_method"]) for m in seed if "response_method" in m]
    assert calls == [m["seq"] for m in records if m["direction"] == "out" and m["method"] in ANSWERED_CALLS]  # once, in order
    answered = [int(m["method"]) for m in seed if "result" in m or "error" in m]
    assert sorted(answered) == calls  # every call a seed client waits on is answered, once; the rest are notifications
    # the same as the native route's pages (which keep their 1000 a page), followed to the end
    pages: list[dict[str, Any]] = []
    while len(pages) < total:
        page = httpx.get(f"{server.http}/runs/{alices_backtest}/messages", headers=alice.headers,
                         params={"format": "mhubrpc", "offset": len(pages), "limit": 1000}).json()
        assert page["total"] == total and 0 < len(page["messages"]) <= 1000
        pages += page["messages"]
    assert seed == pages
    # an explicit window still pages, and says where the rest starts
    window = alice.get(f"/runs/{alices_backtest}/messages", params={"offset": 1000, "limit": 500})
    assert window.json() == seed[1000:1500] and window.headers["x-total-count"] == str(total)
    assert window.headers["x-next-offset"] == "1500" and "offset=1500" in window.headers["link"]
    candles = alice.get(f"/runs/{alices_backtest}/messages", params={"method": "market.", "format": "native"})
    expected = [m for m in records if m["method"].startswith("market.")]
    assert len(expected) > 1000 and candles.json() == expected and candles.headers["x-total-count"] == str(len(expected))


def refused(r: httpx.Response, status: int, code: str) -> str:
    """The seed's error shape: exactly {"error": "<message>"}, the stable code in X-Error-Code."""
    assert (r.status_code, r.headers.get("x-error-code")) == (status, code), r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return str(body["error"])


def test_bad_input_unknown_runs_other_users_and_viewers_get_the_seeds_error_shape(people: dict[str, httpx.Client],
                                                                                  alices_backtest: str) -> None:
    alice, bob, vera = people["alice"], people["bob"], people["vera"]
    before = alice.get("/runs").json()
    assert "NoSuchStrategy" in refused(alice.put("/runnables/NoSuchStrategy/start", json=SEED_BODY), 404, "strategy_not_found")
    refused(alice.put("/runnables/HodlStrategy/start", content=b"{not json", headers={"Content-Type": "application/json"}),
            400, "parse_error")
    refused(alice.put("/runnables/HodlStrategy/start", json=[1, 2]), 422, "invalid_params")
    refused(alice.put("/runnables/HodlStrategy/start", json={**SEED_BODY, "mode": "sideways"}), 422, "invalid_mode")
    refused(alice.put("/runnables/HodlStrategy/start", json={**SEED_BODY, "balances": [{"exchange": "binance", "base": "USDT"}]}),
            422, "invalid_balance")
    refused(alice.put("/runnables/HodlStrategy/start", json={**SEED_BODY, "colour": "red"}), 422, "invalid_params")
    # the seed's example verbatim: no gdax history on this server
    gdax = {**SEED_BODY, "balances": [{"exchange": "gdax", "base": "USD", "balance": 1000}, {"exchange": "gdax", "base": "BTC",
                                                                                              "balance": 10}]}
    assert "gdax" in refused(alice.put("/runnables/HodlStrategy/start", json=gdax), 422, "history_missing")
    assert alice.get("/runs").json() == before  # nothing was started
    for r in (alice.get("/runs/bt-nope"), alice.get("/runs/bt-nope/components"), alice.get("/runs/bt-nope/messages"),
              alice.put("/run/bt-nope/stop"), alice.put("/runs/bt-nope/components/x", json=1)):
        refused(r, 404, "unknown_run")
    refused(alice.put(f"/run/{alices_backtest}/stop"), 409, "run_not_running")
    refused(alice.put(f"/runs/{alices_backtest}/components/price", content=b""), 422, "invalid_params")
    refused(alice.get(f"/runs/{alices_backtest}/messages", params={"format": "xml"}), 422, "invalid_params")
    # another trader: alice's run does not exist for bob, and is not listed
    assert alices_backtest not in bob.get("/runs").json()
    for r in (bob.get(f"/runs/{alices_backtest}"), bob.get(f"/runs/{alices_backtest}/messages"),
              bob.get(f"/runs/{alices_backtest}/components"), bob.put(f"/run/{alices_backtest}/stop"),
              bob.put(f"/runs/{alices_backtest}/components/price", json={"a": 1})):
        refused(r, 404, "unknown_run")
    # a viewer reads, starts nothing; no one signed in gets nothing
    assert vera.get("/runnables").json()[:5] == SEED_NAMES and vera.get("/runs").json() == {}
    refused(vera.put("/runnables/HodlStrategy/start", json=SEED_BODY), 403, "forbidden")
    refused(vera.get(f"/runs/{alices_backtest}"), 404, "unknown_run")
    refused(people["anonymous"].get("/runs"), 401, "unauthenticated")
    refused(alice.get("/strategies"), 404, "not_found")  # no such route: the seed's shape too
    refused(alice.post("/runs"), 405, "method_not_allowed")


def test_both_apis_are_in_openapi(server: ServerProcess) -> None:
    paths = httpx.get(server.http + "/openapi.json", timeout=10).json()["paths"]
    assert {"/cryptick/v1/runs", "/cryptick/v1/run/{run_id}/stop", "/cryptick/v1/runs/{run_id}/components/{component_id}",
            "/runs", "/runs/{run_id}/stop"} <= set(paths)
