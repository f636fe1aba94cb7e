"""Stored rates over a real server: `GET /api/v1/rates/{exchange}/{symbol}` and `get_rates` answer exactly what the
store holds (SQLite and PostgreSQL), to any signed-in user; bad input answers its code; the `rate` push channel
reaches the connections that subscribed to it (narrowed by their patterns) and no other.

The rows are written into the server's own store by the test (the scheduler's every-minute job, which calls the
retriever, is not part of this server yet); the push test runs the server on NATS and publishes `Rate` messages
on its bus, as a retriever in any process of the deployment does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from coinwire.bus.nats import NatsBus
from coinwire.messages import Rate, subject
from coinwire.store import Store
from coinwire.store.rates import RateRow, insert_rates
from tests.conftest import NATS_URL, nats_namespace, postgres_database
from tests.server import ServerProcess

MINUTE = 60_000
DAY = 86_400_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A server with `rates_max_points` 50, on its SQLite file or a PostgreSQL database, and its store's URL."""
    data_dir = Path(tmp_path_factory.mktemp("rates"))
    env = {"COINWIRE_RATES_MAX_POINTS": "50", "COINWIRE_RECORD_RATES": "false"}  # only the rates a test writes are stored
    if request.param == "sqlite":
        proc = ServerProcess(data_dir, env=env)
        proc.start()
        yield proc, f"sqlite:///{data_dir / 'coinwire.db'}"
        proc.stop()
        return
    with postgres_database() as url:
        proc = ServerProcess(data_dir, env={**env, "COINWIRE_STORE_URL": url})
        proc.start()
        yield proc, url
        proc.stop()


@pytest.fixture(scope="module")
def stored(served: tuple[ServerProcess, str]) -> dict[str, Any]:
    """Rates of demo BTC/USDT over the last nine days (one every 3 hours, and the last hour's every minute), and of
    binance ETH/BTC (an exchange this server does not serve, fetched through CCXT): written into the server's store."""
    now = int(time.time() * 1000)
    newest = now - now % MINUTE - MINUTE
    minutes = sorted({newest - k * 180 * MINUTE for k in range(72)} | {newest - k * MINUTE for k in range(60)})
    btc = [RateRow(exchange="demo", symbol="BTC/USDT", minute_ms=m, price=Decimal(f"6{m // MINUTE % 10000:04d}.{m % 97:02d}"),
                   source="ticker", received_ms=m + 1_234) for m in minutes]
    eth = [RateRow(exchange="binance", symbol="ETH/BTC", minute_ms=newest, price=Decimal("0.04262000"), source="ccxt",
                   received_ms=newest + 99)]

    async def write() -> None:
        async with Store(served[1]) as store:
            assert len(await insert_rates(store, btc + eth)) == len(btc) + 1

    asyncio.run(write())
    return {"now": now, "btc": btc, "eth": eth}


@pytest.fixture(scope="module")
def viewer(served: tuple[ServerProcess, str]) -> str:
    return served[0].users({"vera": "viewer"})["vera"]


def get(server: ServerProcess, path: str, token: str | None, **query: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(server.http + path, params=query, headers=headers, timeout=10)


def view(rows: list[RateRow]) -> list[dict[str, Any]]:
    return [{"time": r.minute_ms, "price": str(r.price), "source": r.source} for r in rows]


def every_page(server: ServerProcess, token: str, path: str, **query: Any) -> tuple[list[dict[str, Any]], int]:
    """All rates of a range, following `Link` from page to page; and how many pages there were."""
    rates, pages = [], 0
    url: str | None = server.http + path
    params: dict[str, Any] | None = query
    while url is not None:
        answer = httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rates += body["rates"]
        pages += 1
        assert len(body["rates"]) <= 50
        link = answer.headers.get("Link")
        assert (link is None) == (body["next"] is None)
        if link is not None:
            assert answer.headers["X-Next-Since"] == str(body["next"])
        url, params = (server.http + link[1:link.index(">")], None) if link else (None, None)
    return rates, pages


def test_the_last_week_is_exactly_what_was_stored_oldest_first_to_a_viewer(
    served: tuple[ServerProcess, str], stored: dict[str, Any], viewer: str
) -> None:
    server = served[0]
    week_ago = stored["now"] - 7 * DAY
    expected = view([r for r in stored["btc"] if r.minute_ms >= week_ago + MINUTE])  # the boundary row: 1 min of margin
    rates, pages = every_page(server, viewer, "/api/v1/rates/demo/BTC_USDT", since="7d")
    assert [r for r in rates if r["time"] >= week_ago + MINUTE] == expected
    assert len(rates) - len(expected) <= 1 and pages == -(-len(rates) // 50) and pages > 2
    assert all(a["time"] < b["time"] for a, b in zip(rates, rates[1:], strict=False))
    first = get(server, "/api/v1/rates/demo/BTC_USDT", viewer, since="7d").json()
    assert first["exchange"] == "demo" and first["symbol"] == "BTC/USDT" and first["pair"] == "BTC_USDT"
    assert first["next"] == first["rates"][-1]["time"] + MINUTE


def test_since_and_until_take_durations_ms_seconds_and_iso_and_the_symbol_any_case(
    served: tuple[ServerProcess, str], stored: dict[str, Any], viewer: str
) -> None:
    server, btc = served[0], stored["btc"]
    lo, hi = btc[-40].minute_ms, btc[-10].minute_ms
    expected = view([r for r in btc if lo <= r.minute_ms < hi])
    iso = datetime.fromtimestamp(lo / 1000, UTC).isoformat()
    for since in (str(lo), str(lo // 1000), iso):
        body = get(server, "/api/v1/rates/demo/BTC_USDT", viewer, since=since, until=str(hi)).json()
        assert body["rates"] == expected and body["next"] is None, since
    before = int(time.time() * 1000)
    hour = get(server, "/api/v1/rates/demo/btc_usdt", viewer, since="30m").json()["rates"]
    after = int(time.time() * 1000)
    # the rates of the last 30 minutes as the server's clock read it: the module's rates end a minute before they were
    # stored, so on a loaded machine the window holds fewer of them than 30
    fewest = sum(1 for r in btc if r.minute_ms >= after - 30 * MINUTE)
    most = sum(1 for r in btc if r.minute_ms >= before - 31 * MINUTE)
    assert fewest <= len(hour) <= most and 1 <= len(hour) <= 31, (fewest, len(hour), most)
    assert hour == view([r for r in btc if r.minute_ms >= hour[0]["time"]])
    binance = get(server, "/api/v1/rates/binance/ETH_BTC", viewer).json()  # not served here, but stored: known
    assert binance["rates"] == view(stored["eth"])


async def test_get_rates_over_json_rpc_answers_as_the_route(
    served: tuple[ServerProcess, str], stored: dict[str, Any], viewer: str
) -> None:
    server = served[0]
    lo, hi = stored["btc"][-30].minute_ms, stored["btc"][-1].minute_ms
    route = get(server, "/api/v1/rates/demo/BTC_USDT", viewer, since=str(lo), until=str(hi)).json()
    async with RpcClient(f"{server.ws_anonymous}?access_token={viewer}") as rpc:
        assert await rpc.call("get_rates", exchange="demo", symbol="BTC_USDT", since=lo, until=hi) == route
        with pytest.raises(RpcError) as refused:
            await rpc.call("get_rates", exchange="demo", symbol="BTC_USDT", since="a week")
        assert refused.value.reason == "invalid_time"


def test_bad_input_answers_its_code_and_nobody_signed_out_reads(served: tuple[ServerProcess, str], stored: dict[str, Any],
                                                                viewer: str) -> None:
    server = served[0]
    cases = [
        ({"since": "a week"}, "BTC_USDT", "demo", 400, "invalid_time"),
        ({"since": "1M"}, "BTC_USDT", "demo", 400, "invalid_time"),  # a month has no fixed length
        ({"until": "yesterday"}, "BTC_USDT", "demo", 400, "invalid_time"),
        ({"since": "1h", "until": "2h"}, "BTC_USDT", "demo", 400, "invalid_range"),
        ({"sinse": "7d"}, "BTC_USDT", "demo", 400, "invalid_params"),
        ({}, "BTCUSDT", "demo", 400, "invalid_symbol"),
        ({}, "DOGE_USDT", "demo", 404, "unknown_symbol"),
        ({}, "BTC_USDT", "nowhere", 404, "unknown_exchange"),
        ({}, "BTC_USDT", "binance", 404, "unknown_symbol"),  # binance has rates stored, but of ETH/BTC only
    ]
    for query, symbol, exchange, status, code in cases:
        answer = get(server, f"/api/v1/rates/{exchange}/{symbol}", viewer, **query)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (query, symbol, exchange, answer.text)
        assert answer.json()["error"]["message"]
    empty = get(server, "/api/v1/rates/demo/ETH_USDT", viewer)  # a market served here that has no rate yet
    assert empty.status_code == 200 and empty.json()["rates"] == []
    assert get(server, "/api/v1/rates/demo/BTC_USDT", None).status_code == 401


# --- the `rate` push channel, through a real server on NATS ---------------------------------------------------------


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with nats_namespace() as namespace:
        proc = ServerProcess(Path(tmp_path_factory.mktemp("rates-nats")),
                             env={"COINWIRE_BUS_URL": NATS_URL, "COINWIRE_BUS_NAMESPACE": namespace, "COINWIRE_RECORD_RATES": "false"})
        proc.start()
        try:
            yield proc, namespace
        finally:
            proc.stop()


async def _drain(rpc: RpcClient, seconds: float = 0.5) -> list[dict[str, Any]]:
    """The `rate` notifications that reach `rpc` within `seconds`."""
    got = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            name, params = await asyncio.wait_for(rpc.notifications.get(), left)
        except TimeoutError:
            break
        if name == "rate":
            got.append(params)
    return got


async def test_the_rate_channel_reaches_its_subscribers_by_pattern_and_no_one_else(nats_server: tuple[ServerProcess, str]) -> None:
    server, namespace = nats_server
    tokens = server.users({"rita": "viewer", "ron": "trader", "nina": "trader"})
    bus = NatsBus(NATS_URL, namespace)
    await bus.start()
    url = server.ws_anonymous + "?access_token="
    try:
        async with RpcClient(url + tokens["rita"]) as every, RpcClient(url + tokens["ron"]) as narrowed, \
                RpcClient(url + tokens["nina"]) as silent:
            answer = await every.call("subscribe", channels=["rate"])
            assert "rate" in answer["channels"] and answer["rates"] == ["rate.>"]
            answer = await narrowed.call("subscribe", channels=["rate"], rates=["demo.usdt.btc"])
            assert answer["rates"] == ["rate.demo.usdt.btc"]
            await silent.call("subscribe", channels=["ticker"], tickers=["ticker.demo.usdt.btc"])
            btc = Rate("demo", "BTC/USDT", 1_764_000_000_000, Decimal("61000.10"), "ticker")
            eth = Rate("binance", "ETH/BTC", 1_764_000_000_000, Decimal("0.04262000"), "ccxt")
            await bus.publish(subject("rate", btc.exchange, btc.symbol), btc)
            await bus.publish(subject("rate", eth.exchange, eth.symbol), eth)
            first = {"exchange": "demo", "symbol": "BTC/USDT", "pair": "BTC_USDT", "time": 1_764_000_000_000,
                     "price": "61000.10", "source": "ticker"}
            second = {"exchange": "binance", "symbol": "ETH/BTC", "pair": "ETH_BTC", "time": 1_764_000_000_000,
                      "price": "0.04262000", "source": "ccxt"}
            assert await _drain(every, 2.0) == [first, second]
            assert await _drain(narrowed, 0.3) == [first]
            assert await _drain(silent, 0.3) == []
            await every.call("unsubscribe", channels=["rate"])
            await bus.publish(subject("rate", btc.exchange, btc.symbol), btc)
            assert await _drain(narrowed, 2.0) == [first]
            assert await _drain(every, 0.3) == []
            with pytest.raises(RpcError) as refused:
                await silent.call("subscribe", channels=["rate"], rates=[])
            assert refused.value.reason == "invalid_pattern"
    finally:
        await bus.close()
