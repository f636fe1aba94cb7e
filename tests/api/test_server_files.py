"""The server's own files are admins': a trader starts only built-in strategies and reads `data` only from the history directory."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from coinwire.history.store import default_history_root
from tests.conftest import shared_data
from tests.server import ServerProcess

DATA_1H = "binance-spot-1h/BTC_USDT-1h.json"
ASSETS = ["BTC_USDT", "ETH_USDT", "LTC_USDT", "XRP_USDT"]
MARKER_STRATEGY = '''
from pathlib import Path

Path(__file__).with_suffix(".ran").write_text("imported")  # proof the file's code ran on the server

from coinwire.engine.strategy import Strategy


class Marker(Strategy):
    symbol = "BTC/USDT"
    timeframe = "1h"
'''


@pytest.fixture(scope="module")
def trader(server: ServerProcess) -> Iterator[httpx.Client]:
    """A signed-in trader on the `pro` plan (the frontier is a pro feature)."""
    with server.client() as admin:
        made = admin.post("/api/v1/users", json={"username": "trudy", "password": "trudy-password", "role": "trader", "plan": "pro"})
        made.raise_for_status()
    token = server.login("trudy", "trudy-password")["access_token"]
    with httpx.Client(base_url=server.http, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _backtest(data: str | list[str], **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "backtest", "balances": {"binance:USDT": "10000"}, "fee": "0.001", "data": data,
                           "params": {"fast": 20, "slow": 50, "timeframe": "1h"}}
    out.update(changes)
    return out


def _wait_done(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (run := client.get(f"/runs/{run_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return dict(run)


def test_a_trader_cannot_start_a_strategy_file_and_its_code_never_runs(server: ServerProcess, trader: httpx.Client, tmp_path: Path) -> None:
    source = tmp_path / "marker_strategy.py"
    source.write_text(MARKER_STRATEGY)
    marker = source.with_suffix(".ran")
    for ref in (f"{source}:Marker", "/usr/lib/python3.11/this.py:X", "/no/such/file.py:X"):
        r = trader.put(f"/runnables/{quote(ref, safe='')}/start", json=_backtest(str(shared_data(DATA_1H)), params={}))
        assert r.status_code == 403, (ref, r.text)
        error = r.json()["error"]
        assert error["code"] == "forbidden" and "only admins" in error["message"] and "ma_cross" in error["message"], error
    time.sleep(0.5)
    assert not marker.exists(), "the trader's request imported the file"
    with server.client(timeout=60) as admin:  # an admin still runs strategy files
        r = admin.put(f"/runnables/{quote(f'{source}:Marker', safe='')}/start", json=_backtest(str(shared_data(DATA_1H)), params={}))
        assert r.status_code == 202, r.text
        assert _wait_done(admin, r.json()["run_id"])["status"] == "finished"
    assert marker.read_text() == "imported"


def test_a_traders_data_paths_must_lie_in_the_history_directory(server: ServerProcess, trader: httpx.Client) -> None:
    outside = str(shared_data(DATA_1H))  # exists on the server, outside its history directory
    answers = []
    for path in (outside, "/no/such/file.json", "/etc/hostname", str(default_history_root(server.data_dir) / ".." / "coinwire.db")):
        r = trader.put("/runnables/ma_cross/start", json=_backtest(path))
        assert r.status_code == 422, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == "file_not_found", (path, error)
        answers.append(error["message"].replace(path, "<path>"))
    assert len(set(answers)) == 1, answers  # one answer, whether or not the file exists elsewhere
    inside = default_history_root(server.data_dir) / "uploads" / "BTC_USDT-1h.json"
    inside.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(outside, inside)
    r = trader.put("/runnables/ma_cross/start", json=_backtest(str(inside)))
    assert r.status_code == 202, r.text
    assert _wait_done(trader, r.json()["run_id"])["status"] == "finished"
    with server.client(timeout=60) as admin:  # admins still name any file on the server
        r = admin.put("/runnables/ma_cross/start", json=_backtest(outside))
        assert r.status_code == 202, r.text
        assert _wait_done(admin, r.json()["run_id"])["status"] == "finished"


def test_a_traders_frontier_data_must_lie_in_the_history_directory(server: ServerProcess, trader: httpx.Client) -> None:
    outside = str(shared_data("binance-spot-1h"))
    body = {"assets": [a.replace("_", "/") for a in ASSETS], "timeframe": "1h", "points": 5}
    answers = []
    for path in (outside, "/no/such/folder", "/etc"):
        r = trader.post("/api/v1/frontier", json={**body, "data": [path]})
        assert r.status_code == 422, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == "file_not_found", (path, error)
        answers.append(error["message"].replace(path, "<path>"))
    assert len(set(answers)) == 1, answers
    folder = default_history_root(server.data_dir) / "binance-spot-1h"
    folder.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS:
        shutil.copy(shared_data("binance-spot-1h", f"{asset}-1h.json"), folder)
    r = trader.post("/api/v1/frontier", json={**body, "data": [str(folder)]})
    assert r.status_code == 200 and r.json()["max_sharpe"], r.text
    with server.client(timeout=60) as admin:
        r = admin.post("/api/v1/frontier", json={**body, "data": [outside]})
        assert r.status_code == 200, r.text


def test_an_admins_strategy_file_that_prints_or_exits_at_import_is_a_stable_refusal(server: ServerProcess, tmp_path: Path) -> None:
    """What a file prints while it is imported goes to the run's log, not the handshake: the worker's own answer comes through."""
    chatty = tmp_path / "chatty.py"
    chatty.write_text('print("The Zen of Python, by Tim Peters")\n' + MARKER_STRATEGY)
    exits = tmp_path / "exits.py"
    exits.write_text("raise SystemExit(3)\n")
    misnamed = tmp_path / "misnamed.py"  # the callback style of the other `on_*` methods: refused, never a silent run
    misnamed.write_text("from coinwire.engine.strategy import Strategy\n\n\n"
                        "class M(Strategy):\n    def on_candle(self, candle):\n        pass\n")
    cases = ((f"{chatty}:X", 404, "strategy_not_found"), (f"{exits}:X", 422, "strategy_not_loadable"),
             (f"{misnamed}:M", 422, "strategy_callback_misnamed"))
    with server.client(timeout=60) as admin:
        for ref, status, code in cases:
            r = admin.put(f"/runnables/{quote(ref, safe='')}/start", json=_backtest(str(shared_data(DATA_1H)), params={}))
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (ref, r.text)
        r = admin.put(f"/runnables/{quote(f'{chatty}:Marker', safe='')}/start", json=_backtest(str(shared_data(DATA_1H)), params={}))
        assert r.status_code == 202, r.text
        assert _wait_done(admin, r.json()["run_id"])["status"] == "finished"
