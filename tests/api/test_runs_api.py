"""The Runs API end to end through a real `coinwire serve` process: runs in their own processes, stop, input, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.signed_in import wait_for
from tests.conftest import shared_data
from tests.server import ServerProcess

DATA_1H = "binance-spot-1h/BTC_USDT-1h.json"
STRATEGIES = Path(__file__).resolve().parent / "runs_strategies.py"
MA_PARAMS = {"fast": 20, "slow": 50, "timeframe": "1h"}
RULE_SET = {"name": "stop", "scope": "run", "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": "10", "trail_pct": "5"}],
            "actions": [{"kind": "close_all"}]}


@pytest.fixture
def data() -> str:
    return str(shared_data(DATA_1H))


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(timeout=60) as client:
        yield client


def body(data_file: str, **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "backtest", "balances": {"binance:USDT": "10000"}, "params": dict(MA_PARAMS),
                           "fee": "0.001", "data": data_file}
    out.update(changes)
    return out


def user(name: str) -> str:
    return quote(f"{STRATEGIES}:{name}", safe="")


def start(api: httpx.Client, name: str, payload: dict[str, Any]) -> str:
    r = api.put(f"/runnables/{name}/start", json=payload)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "running"
    return str(r.json()["run_id"])


def finished(api: httpx.Client, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = wait_for(api, f"/runs/{run_id}", lambda r: r["status"] != "running")
    return run


def test_runnables_list_the_builtins_with_parameters_and_docs(api: httpx.Client) -> None:
    runnables = {r["name"]: r for r in api.get("/runnables").json()}
    assert {"hodl", "echo", "component_demo", "ma_cross", "trade_decider"} <= set(runnables)
    ma = runnables["ma_cross"]
    assert {"name": "fast", "type": "int", "default": 50} in ma["parameters"]
    assert {"name": "long_only", "type": "bool", "default": True} in ma["parameters"]
    assert "golden cross" in ma["module_doc"]


def test_a_backtest_started_by_the_server_reports_what_the_cli_reports(api: httpx.Client, server: ServerProcess, data: str,
                                                                        tmp_path: Path) -> None:
    run_id = start(api, "ma_cross", body(data))
    run = finished(api, run_id)
    assert run["status"] == "finished", run
    cli = subprocess.run(
        [sys.executable, "-m", "coinwire.cli", "--data-dir", str(tmp_path), "run", "ma_cross", "--data", data,
         "--balance", "binance:USDT=10000", "--fee", "0.001", "--json", "--no-save",
         *[a for k, v in MA_PARAMS.items() for a in ("--param", f"{k}={v}")]],
        capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    report = run["report"]
    assert report["entries"] > 10
    for key in set(expected) - {"run_id", "status", "error"}:
        assert report[key] == expected[key], key
    assert report["run_id"] == run_id != expected["run_id"]
    # the chart series: the equity curve from the start's 10000, and the candles the trades were made on
    assert report["equity"][0] == [report["start"], "10000"] and report["equity"][-1][1] == expected["equity"][-1][1]
    assert report["prices"]["BTC/USDT"]["timeframe"] == "6h" and len(report["prices"]["BTC/USDT"]["candles"]) > 100
    # listed first, with headline metrics; the CLI reads the same store
    listed = api.get("/runs").json()
    assert listed[0]["run_id"] == run_id
    assert listed[0]["metrics"]["final_equity"] == expected["final_equity"]
    shown = subprocess.run([sys.executable, "-m", "coinwire.cli", "--data-dir", str(server.data_dir), "runs", "show", run_id, "--json"],
                           capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["report"]["trades"] == expected["trades"]
    table = subprocess.run([sys.executable, "-m", "coinwire.cli", "--data-dir", str(server.data_dir), "runs", "list"],
                           capture_output=True, text=True, timeout=60, env={"COLUMNS": "200", "PATH": ""})
    assert run_id in table.stdout and "finished" in table.stdout


def test_messages_are_paged_and_filtered(api: httpx.Client, data: str) -> None:
    run_id = start(api, "ma_cross", body(data))
    assert finished(api, run_id)["status"] == "finished"
    trades = len(api.get(f"/runs/{run_id}").json()["report"]["trades"])
    first = api.get(f"/runs/{run_id}/messages", params={"limit": 5}).json()
    assert (first["offset"], first["limit"], len(first["messages"])) == (0, 5, 5)
    assert first["messages"][0]["method"] == "run.start" and [m["seq"] for m in first["messages"]] == [1, 2, 3, 4, 5]
    total = first["total"]
    last = api.get(f"/runs/{run_id}/messages", params={"offset": total - 2, "limit": 10}).json()
    assert [m["seq"] for m in last["messages"]] == [total - 1, total] and last["messages"][-1]["method"] == "run.stop"
    fills = api.get(f"/runs/{run_id}/messages", params={"method": "venue.fill", "limit": 1000}).json()
    assert fills["total"] == trades == len(fills["messages"])
    venue_in = api.get(f"/runs/{run_id}/messages", params={"method": "venue.", "direction": "in", "limit": 3, "offset": 2}).json()
    assert all(m["method"].startswith("venue.") and m["direction"] == "in" for m in venue_in["messages"])
    assert venue_in["total"] > trades and len(venue_in["messages"]) == 3
    for params in ({"limit": 0}, {"limit": 5000}, {"offset": -1}, {"limit": "x"}, {"direction": "sideways"}):
        r = api.get(f"/runs/{run_id}/messages", params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_params", params


def test_stop_ends_a_long_run_and_keeps_what_it_did(api: httpx.Client, data: str) -> None:
    run_id = start(api, user("Slow"), body(data, params={}))
    run = wait_for(api, f"/runs/{run_id}", lambda r: r.get("progress", {}).get("events", 0) >= 3)
    assert run["status"] == "running" and run["report"] is None
    assert run["progress"]["start"] <= run["progress"]["clock"] < run["progress"]["end"]
    began = time.monotonic()
    stopped = api.put(f"/runs/{run_id}/stop")
    assert stopped.status_code == 200 and time.monotonic() - began < 5
    run = stopped.json()
    assert run["status"] == "stopped" and run["error"] == "stopped on request"
    assert run["report"]["status"] == "stopped" and run["report"]["stopped_at"] < run["report"]["end"]
    candles = api.get(f"/runs/{run_id}/messages", params={"method": "market.candle"}).json()["total"]
    assert 3 <= candles < 5482
    again = api.put(f"/runs/{run_id}/stop")
    assert again.status_code == 409 and again.json()["error"]["code"] == "run_not_running"


def test_user_input_reaches_a_running_strategy_and_comes_back(api: httpx.Client, data: str) -> None:
    run_id = start(api, user("WaitsForInput"), body(data, params={"delay": 0.02}))
    components = wait_for(api, f"/runs/{run_id}/components", lambda cs: len(cs) == 2)
    assert [c["id"] for c in components] == ["echo", "form"] and components[0]["data"] == []
    r = api.put(f"/runs/{run_id}/components/form", json={"value": {"text": "hello"}})
    assert r.status_code == 202 and r.json() == {"run_id": run_id, "component_id": "form", "status": "queued"}
    api.put(f"/runs/{run_id}/components/form", json={"value": 42})
    echo = wait_for(api, f"/runs/{run_id}/components",
                    lambda cs: next(c for c in cs if c["id"] == "echo")["data"] == [[{"text": "hello"}], [42]], timeout=20)
    assert next(c for c in echo if c["id"] == "echo")["version"] == 3
    inputs = api.get(f"/runs/{run_id}/messages", params={"method": "ui.input"}).json()
    assert [m["params"] for m in inputs["messages"]] == [{"id": "form", "value": {"text": "hello"}}, {"id": "form", "value": 42}]
    assert all(m["direction"] == "in" for m in inputs["messages"])
    unknown = api.put(f"/runs/{run_id}/components/nope", json={"value": 1})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_component"
    no_value = api.put(f"/runs/{run_id}/components/form", json={"text": "hi"})
    assert no_value.status_code == 422 and no_value.json()["error"]["code"] == "invalid_params"
    assert api.put(f"/runs/{run_id}/stop").json()["status"] == "stopped"
    log = api.get(f"/runs/{run_id}/log").json()
    assert any("received {'text': 'hello'} on form" in line["message"] for line in log)
    late = api.put(f"/runs/{run_id}/components/form", json={"value": "too late"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "run_not_running"


def test_input_to_a_finished_backtest_is_refused(api: httpx.Client, data: str) -> None:
    run_id = start(api, "component_demo", body(data, params={"timeframe": "1h"}))
    assert finished(api, run_id)["status"] == "finished"
    ids = [c["id"] for c in api.get(f"/runs/{run_id}/components").json()]
    assert ids == ["fills", "order_form", "price"]
    r = api.put(f"/runs/{run_id}/components/order_form", json={"value": {"action": "buy", "fraction": 0.5}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "run_not_running"


def test_a_crashed_process_fails_its_run_only(api: httpx.Client, data: str) -> None:
    survivor = start(api, user("Slow"), body(data, params={}))
    crashed = start(api, user("Crashes"), body(data, params={}))
    run = finished(api, crashed)
    assert run["status"] == "failed" and "exited with code 3" in run["error"]
    log = api.get(f"/runs/{crashed}/log").json()
    assert any("about to take the interpreter down" in line["message"] for line in log)
    assert api.get(f"/runs/{survivor}").json()["status"] == "running"
    assert api.put(f"/runs/{survivor}/stop").json()["status"] == "stopped"


def test_a_raising_strategy_fails_with_its_traceback_in_the_log(api: httpx.Client, data: str) -> None:
    run_id = start(api, "ma_cross", body(data, params={"fast": 60, "slow": 50, "timeframe": "1h"}))
    run = finished(api, run_id)
    assert run["status"] == "failed" and "need 0 < fast < slow" in run["error"]
    assert any("Traceback" in line["message"] for line in api.get(f"/runs/{run_id}/log").json())


@pytest.mark.parametrize(
    ("name", "changes", "status", "code", "words"),
    [
        ("nope", {}, 404, "strategy_not_found", "unknown strategy 'nope'"),
        (quote("/no/such/file.py:Nope", safe=""), {}, 404, "strategy_not_found", "does not exist"),
        ("ma_cross", {"params": {"fats": 3}}, 422, "unknown_parameter", "did you mean 'fast'"),
        ("ma_cross", {"params": {"fast": "quick"}}, 422, "invalid_parameter", "must be int"),
        (user("Slow"), {"params": {"dleay": 1}}, 422, "unknown_parameter", "did you mean 'delay'"),
        ("ma_cross", {"start": "2021-01-02", "end": "2021-01-01"}, 422, "empty_range", "after its start"),
        ("ma_cross", {"start": 1609459200, "end": 1609459200}, 422, "empty_range", "after its start"),
        ("ma_cross", {"start": "2030-01-01"}, 422, "history_missing", "no candles"),
        ("ma_cross", {"params": {"timeframe": "5m"}}, 422, "timeframe_unavailable", "use timeframe=1h"),
        ("ma_cross", {"start": "yesterday"}, 422, "invalid_time", "ISO 8601"),
        ("ma_cross", {"data": None}, 422, "history_missing", "history store"),
        ("ma_cross", {"data": "/no/such/file.json"}, 422, "file_not_found", "no such file"),
        ("ma_cross", {"balances": {"binance:USDT": "0"}}, 422, "invalid_balance", "positive"),
        ("ma_cross", {"balances": ["binance:USDT=-5"]}, 422, "invalid_balance", "EXCHANGE:CURRENCY=AMOUNT"),
        ("ma_cross", {"balances": {}}, 422, "missing_balance", "balance"),
        ("ma_cross", {"balances": ["binance:USDT=1", "kraken:BTC=1"]}, 422, "invalid_balance", "one exchange"),
        ("ma_cross", {"mode": "live", "balances": {"demo:USDT": "10"}, "data": None}, 422, "mode_mismatch", "is a paper exchange"),
        ("ma_cross", {"mode": "paper", "balances": {"binance:USDT": "10"}, "data": None}, 404, "unknown_exchange", "unknown exchange"),
        ("ma_cross", {"mode": "paper", "balances": {"demo:USDT": "10"}}, 422, "invalid_params", "applies to backtests"),
        ("ma_cross", {"mode": "sideways"}, 422, "invalid_mode", "mode must be"),
        ("ma_cross", {"fill": "mid"}, 422, "invalid_fill", "fill must be"),
        ("ma_cross", {"fee": "2"}, 422, "invalid_fee", "between 0 and 1"),
        ("ma_cross", {"leverage": 5}, 422, "invalid_params", "leverage"),
        ("ma_cross", {"rules": [{**RULE_SET, "scope": "account", "scope_id": "1"}]}, 422, "invalid_rule_set", "scope 'run'"),
        ("ma_cross", {"rules": [{**RULE_SET, "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": 0}]}]},
         422, "out_of_range", "trail_pct"),
        ("ma_cross", {"rules": [{**RULE_SET, "actions": [{"kind": "sell_the_house"}]}]}, 422, "unknown_action_kind", "sell_the_house"),
        ("ma_cross", {"rules": [{**RULE_SET, "mood": "calm"}]}, 422, "invalid_rule_set", "mood"),
        ("ma_cross", {"mode": "paper", "balances": {"demo:USDT": "10"}, "data": None, "rules": [{**RULE_SET, "scope": "user"}]},
         422, "invalid_rule_set", "scope 'run'"),
    ],
)
def test_bad_start_requests_are_refused_up_front_and_leave_nothing(
    api: httpx.Client, data: str, name: str, changes: dict[str, Any], status: int, code: str, words: str
) -> None:
    before = api.get("/runs").json()
    r = api.put(f"/runnables/{name}/start", json=body(data, **changes))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert api.get("/runs").json() == before


def test_a_backtest_with_rule_sets_reports_their_firings(api: httpx.Client, data: str) -> None:
    run = finished(api, start(api, "hodl", body(data, params={"timeframe": "1h"}, end=1606780800 + 600 * 3600, rules=[RULE_SET])))
    assert run["status"] == "finished", run
    (firing,) = run["report"]["rule_firings"]
    assert firing["rule_set"] == "stop" and [a["kind"] for a in firing["actions"]] == ["close_all"]
    assert Decimal(firing["values"]["value"]) <= Decimal(firing["values"]["trigger"]) < Decimal(firing["values"]["peak"])
    assert [t["side"] for t in run["report"]["trades"]] == ["buy", "sell"] and run["report"]["trades"][1]["time"] == firing["time"]


def test_a_backtest_without_a_timeframe_runs_on_the_datas(api: httpx.Client, data: str) -> None:
    run = finished(api, start(api, "ma_cross", body(data, params={"fast": 20, "slow": 50})))  # ma_cross declares 5m
    assert run["status"] == "finished" and run["params"]["timeframe"] == "1h", run
    log = api.get(f"/runs/{run['run_id']}/log").text
    assert "timeframe 1h, the data's" in log


def test_malformed_bodies_and_unknown_runs(api: httpx.Client) -> None:
    r = api.put("/runnables/ma_cross/start", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "parse_error"
    r = api.put("/runnables/ma_cross/start", json=[1, 2])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_params"
    for method, path in (("GET", "/runs/bt-nope"), ("GET", "/runs/bt-nope/components"), ("GET", "/runs/bt-nope/messages"),
                         ("GET", "/runs/bt-nope/log"), ("PUT", "/runs/bt-nope/stop"), ("GET", "/runs/..%2F..%2Fetc")):
        r = api.request(method, path)
        assert r.status_code == 404 and r.json()["error"]["code"] in ("run_not_found", "not_found"), (path, r.text)
    r = api.put("/runs/bt-nope/components/x", json={"value": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "run_not_found"


def test_strategy_files_can_be_switched_off(tmp_path: Path, data: str) -> None:
    server = ServerProcess(tmp_path, env={"COINWIRE_ALLOW_USER_STRATEGIES": "false"})
    server.start()
    try:
        r = httpx.put(f"{server.http}/runnables/{user('Slow')}/start", json=body(data, params={}), timeout=30, headers=server.headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "user_strategies_disabled"
        r = httpx.put(f"{server.http}/runnables/hodl/start", json=body(data, params={"timeframe": "1h"}), timeout=30,
                      headers=server.headers)
        assert r.status_code == 202
    finally:
        server.stop()


def test_stopping_the_server_stops_its_runs(tmp_path: Path, data: str) -> None:
    server = ServerProcess(tmp_path)
    server.start()
    try:
        with server.client(timeout=30) as api:
            run_id = start(api, user("Slow"), body(data, params={}))
            wait_for(api, f"/runs/{run_id}", lambda r: r.get("progress", {}).get("events", 0) >= 1)
    finally:
        server.stop()
    record = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())
    assert record["status"] == "stopped"


def test_a_run_left_running_by_a_killed_server_is_settled_at_the_next_start(tmp_path: Path, data: str) -> None:
    server = ServerProcess(tmp_path)
    server.start()
    try:
        with server.client(timeout=30) as api:
            run_id = start(api, user("Slow"), body(data, params={}))
            wait_for(api, f"/runs/{run_id}", lambda r: r.get("progress", {}).get("events", 0) >= 1)
        server.kill()  # SIGKILL: no shutdown, the worker is orphaned and keeps running
        pid = json.loads((tmp_path / "runs" / run_id / "progress.json").read_text())["pid"]
        assert Path(f"/proc/{pid}").exists()
        server.start()
        with server.client(timeout=30) as api:
            run = api.get(f"/runs/{run_id}").json()
        assert run["status"] == "stopped" and run["report"]["status"] == "stopped"
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
    finally:
        server.stop()


async def test_a_paper_run_trades_through_the_gateway_and_hands_its_funds_back(api: httpx.Client, server: ServerProcess) -> None:
    from coinwire.api.client import RpcClient

    before = api.get("/runs").json()
    run_id = start(api, "hodl", {"mode": "paper", "balances": {"demo:USDT": "1000"}, "params": {"timeframe": "1s"}})
    assert run_id.startswith("pp-")
    running = wait_for(api, f"/runs/{run_id}/messages?method=venue.fill", lambda page: page["total"] >= 1, timeout=30)
    fill = running["messages"][0]["params"]
    assert fill["side"] == "buy" and fill["symbol"] == "BTC/USDT"
    interim = wait_for(api, f"/runs/{run_id}", lambda run: bool(run["report"] and run["report"]["trades"]), timeout=30)
    assert interim["status"] == "running" and interim["report"]["status"] == "running"  # the report so far, while it runs
    assert interim["report"]["entries"] == 1 and len(interim["report"]["equity"]) >= 1
    assert interim["report"]["initial_equity"] == pytest.approx(1000, rel=1e-9)
    assert interim["report"]["start"] <= interim["report"]["end"] <= time.time() + 1  # so far: it ends now
    async with RpcClient(server.ws) as rpc:
        orders = [o for o in await rpc.call("list_recent_orders", include_open=True, limit=1000) if o.get("run_id") == run_id]
        assert len(orders) == 1 and orders[0]["status"] == "done" and orders[0]["done_reason"] == "filled"
        wallet_set = await rpc.call("get_wallet_set", set_id=orders[0]["wallet_set_id"])
        assert wallet_set["active"] and wallet_set["run_id"] == run_id
    stopped = api.put(f"/runs/{run_id}/stop")
    assert stopped.status_code == 200, stopped.text
    run = stopped.json()
    assert run["status"] == "stopped" and run["mode"] == "paper"
    report = run["report"]
    assert report["fills_against"] == "book" and report["entries"] == 1 and len(report["trades"]) >= 1
    assert report["initial_equity"] == pytest.approx(1000, rel=1e-9)
    assert len(api.get("/runs").json()) == len(before) + 1
    async with RpcClient(server.ws) as rpc:  # the run's end handed its wallet set back
        wallet_set = await rpc.call("get_wallet_set", set_id=orders[0]["wallet_set_id"])
        assert not wallet_set["active"]
    # refusals: nothing is created
    for payload, status, code in (
        ({"mode": "paper", "balances": {"kraken:USDT": "10"}}, 404, "unknown_exchange"),
        ({"mode": "paper", "balances": {"demo:USDT": "100000000"}}, 400, "insufficient_funds"),
        ({"mode": "paper", "balances": {"demo:USDT": "10"}, "start": "2024-01-01"}, 422, "invalid_params"),
        ({"mode": "live", "balances": {"demo:USDT": "10"}}, 422, "mode_mismatch"),
    ):
        r = api.put("/runnables/hodl/start", json=payload)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert len(api.get("/runs").json()) == len(before) + 1


def test_a_paper_runs_signals_are_stored_once_per_change(api: httpx.Client) -> None:
    run_id = start(api, user("Signaller"), {"mode": "paper", "balances": {"demo:USDT": "1000"}, "params": {}})
    wait_for(api, f"/runs/{run_id}/messages?method=strategy.signal", lambda page: page["total"] >= 3, timeout=60)
    stopped = api.put(f"/runs/{run_id}/stop")
    assert stopped.status_code == 200, stopped.text
    reported = stopped.json()["report"]["signals"]
    values = [s["value"] for s in reported]
    assert len(values) >= 3 and all(a != b for a, b in zip(values, values[1:], strict=False))
    stored = wait_for(api, f"/api/v1/signals?run_id={run_id}", lambda answer: len(answer["signals"]) >= len(reported))
    assert [(s["time"], s["name"], s["value"]) for s in stored["signals"]] == [(s["time"], s["name"], s["value"]) for s in reported]
    assert {s["run_id"] for s in stored["signals"]} == {run_id}
