"""A running server whose live exchange is unreachable: its breakers open, /readyz and /metrics say so, orders elsewhere work.

`binance` is live, its feed and venue pointed at a local port nobody listens on (every REST call
is refused: a network failure). With `COINWIRE_BREAKER_FAILURES=2` its `feed:binance` and
`ccxt:binance` breakers open after two failures each; the process stays ready (200) with the
open breakers among its reasons, and the demo exchange still takes orders.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient
from tests.server import DEMO_EXCHANGES, ServerProcess, free_port

NOBODY = free_port()
URLS = {"api.public": f"http://127.0.0.1:{NOBODY}/api/v3", "api.private": f"http://127.0.0.1:{NOBODY}/api/v3",
        "api.sapi": f"http://127.0.0.1:{NOBODY}/sapi/v1", "api.ws.spot": f"ws://127.0.0.1:{NOBODY}/stream/ws"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("breakers")
    exchanges = [
        *DEMO_EXCHANGES,
        {"name": "binance", "mode": "live", "feed": "ccxt", "symbols": ["BTC/USDT"], "poll_interval": 0.2,
         "ccxt_websocket": False, "ccxt_urls": URLS, "ccxt_timeout": 1.0,
         "ccxt_options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    ]
    env = {"COINWIRE_BINANCE_API_KEY": "test-key-not-used", "COINWIRE_BINANCE_SECRET": "test-secret-not-used",
           "COINWIRE_BREAKER_FAILURES": "2", "COINWIRE_BREAKER_RESET_SECONDS": "600"}
    proc = ServerProcess(data, exchanges=exchanges, env=env)
    proc.start(wait_ready=False)
    try:
        yield proc
    finally:
        proc.stop()


def _readyz_until(proc: ServerProcess, done: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(proc.http + "/readyz", timeout=1.0)
            last = (r.status_code, r.json())
            if done(*last):
                return dict(last[1])
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"/readyz not as expected in {timeout}s (last: {last}):\n{proc.log()}")


def _open(report: dict[str, Any]) -> set[str]:
    return {r["dependency"] for r in report["reasons"] if r["code"] == "breaker_open"}


async def test_open_breakers_are_reasons_and_gauges_while_the_process_stays_ready_and_trades(server: ServerProcess) -> None:
    report = _readyz_until(server, lambda status, body: status == 200 and {"feed:binance", "ccxt:binance"} <= _open(body)
                           and body["exchanges"].get("demo") == "ready")
    assert report["ready"] is True and report["status"] == "degraded"
    reason = next(r for r in report["reasons"] if r.get("dependency") == "feed:binance")
    assert "paused" in reason["message"] and "127.0.0.1" not in reason["message"]  # no internal detail on a public page
    with server.client() as admin:
        metrics = admin.get("/metrics").text
    for name in ("feed:binance", "ccxt:binance"):
        assert f'coinwire_breaker_state{{dependency="{name}"}} 2.0' in metrics
        assert f'coinwire_breaker_opens_total{{dependency="{name}"}} 1.0' in metrics
    async with RpcClient(server.ws) as rpc:  # the dependency that is down degrades binance only
        order = await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.01")
        assert order["status"] in ("closed", "open", "filled") or order.get("id")
    assert httpx.get(server.http + "/readyz", timeout=5).status_code == 200
