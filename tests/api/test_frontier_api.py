"""POST /api/v1/frontier on a real server: the CLI's object from the history store or server files; bad input with stable codes."""

from __future__ import annotations

import json
import math

import httpx
import numpy as np
import pytest

from coinwire.history.formats import read_candles
from coinwire.history.store import HistoryStore, default_history_root
from tests.conftest import shared_data
from tests.engine.test_cli_run import coinwire
from tests.server import ServerProcess

ASSETS = ["BTC/USDT", "ETH/USDT", "LTC/USDT", "XRP/USDT"]


@pytest.fixture(scope="module")
def stored(server: ServerProcess) -> ServerProcess:
    store = HistoryStore(default_history_root(server.data_dir))
    for symbol in ASSETS:
        store.write(read_candles(shared_data("binance-spot-1h", symbol.replace("/", "_") + "-1h.json")))
    return server


def post(server: ServerProcess, body: object) -> httpx.Response:
    return httpx.post(server.http + "/api/v1/frontier", json=body, timeout=60, headers=server.headers)


def test_frontier_from_the_history_store_equals_the_cli(stored: ServerProcess) -> None:
    r = post(stored, {"assets": ASSETS, "timeframe": "1h", "window": "90d", "points": 20, "cloud": 500,
                      "target_return": 0.1})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["assets"] == ASSETS and len(out["frontier"]) == 20 and len(out["cloud"]) == 500
    assert [s["asset"] for s in out["single_assets"]] == ASSETS
    assert math.isclose(out["target"]["return"], 0.1, rel_tol=1e-9)
    cli = coinwire(stored.data_dir, "frontier", "--data", str(shared_data("binance-spot-1h")), "--symbols", ",".join(ASSETS),
                   "--window", "90d", "--points", "20", "--json")
    want = json.loads(cli.stdout)
    for key in ("max_sharpe", "min_variance"):
        assert np.allclose(list(out[key]["weights"].values()), list(want[key]["weights"].values()), atol=1e-12)
    assert [p["volatility"] for p in out["frontier"]] == pytest.approx([p["volatility"] for p in want["frontier"]], rel=1e-12)
    front = np.interp([c[1] for c in out["cloud"]], [p["return"] for p in out["frontier"]], [p["volatility"] for p in out["frontier"]])
    assert all(c[0] >= f * (1 - 1e-3) for c, f in zip(out["cloud"], front, strict=True))  # chords lie above the curve: a loose check


def test_server_files_bounds_and_target_volatility(stored: ServerProcess) -> None:
    r = post(stored, {"assets": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "timeframe": "1h", "window": "all",
                      "data": [str(shared_data("binance-spot-1h"))], "upper": {"SOL/USDT": 0.2}, "points": 5})
    assert r.status_code == 200, r.text
    out = r.json()
    assert all(p["weights"]["SOL/USDT"] <= 0.2 + 1e-12 for p in out["frontier"])
    mid = out["frontier"][2]["volatility"]
    r = post(stored, {"assets": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "timeframe": "1h", "window": "all",
                      "data": [str(shared_data("binance-spot-1h"))], "upper": {"SOL/USDT": 0.2}, "target_volatility": mid})
    assert r.status_code == 200 and math.isclose(r.json()["target"]["volatility"], mid, rel_tol=1e-9)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"assets": ["BTC/USDT"], "timeframe": "1h"}, 422, "too_few_assets"),
    ({"assets": ["BTC/USDT", "BTC_USDT"], "timeframe": "1h"}, 422, "duplicate_assets"),
    ({"assets": ["BTC/USDT", "ETH/USDT"]}, 422, "history_missing"),
    ({"assets": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h", "window": "forever"}, 422, "invalid_window"),
    ({"assets": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h", "upper": 0.4}, 422, "infeasible_bounds"),
    ({"assets": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h", "upper": {"DOGE/USDT": 0.4}}, 422, "invalid_bounds"),
    ({"assets": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h", "target_return": 99.0}, 422, "target_out_of_range"),
    ({"assets": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h", "cloud": 10**9}, 422, "invalid_parameter"),
    ({"assets": ["BTC/USDT", "ETH/USDT"], "colour": "red"}, 422, "invalid_params"),
    ({"timeframe": "1h"}, 422, "invalid_params"),
])
def test_bad_requests_answer_a_stable_code(stored: ServerProcess, body: object, status: int, code: str) -> None:
    r = post(stored, body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_not_json_is_a_parse_error(server: ServerProcess) -> None:
    r = httpx.post(server.http + "/api/v1/frontier", content=b"{nope", timeout=10, headers=server.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "parse_error"
