"""GET /api/v1/ohlcv and the subscribe_ohlcv stream on a real `coinwire serve`: imported Binance history rolled
up in a user's time zone, paging, stable error codes, and live forming candles of the demo feed's trades."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from coinwire.history.formats import read_candles
from coinwire.history.store import HistoryStore
from tests.conftest import shared_data
from tests.server import ServerProcess

URL = "/api/v1/ohlcv/binance/BTC_USDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = Path(tmp_path_factory.mktemp("ohlcv"))
    HistoryStore(data_dir / "history").write(read_candles(shared_data("binance-spot-1h", "BTC_USDT-1h.json"), exchange="binance"))
    proc = ServerProcess(data_dir, env={"COINWIRE_OHLCV_MAX_POINTS": "100"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
async def rpc(server: ServerProcess) -> AsyncIterator[RpcClient]:
    async with RpcClient(server.ws) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_daily_candles_in_new_york_across_the_dst_change(http: httpx.Client) -> None:
    hourly = read_candles(shared_data("binance-spot-1h", "BTC_USDT-1h.json"))
    response = http.get(URL, params={"timeframe": "1d", "tz": "America/New_York", "start": "2021-03-13T05:00:00Z", "end": 1615780800})
    candles = ok(response)  # the seed's bare list
    assert "X-Next-Start" not in response.headers and "Link" not in response.headers
    # 13th (EST), 14th (23 hours), 15th starts 04:00 UTC (EDT) and is outside [start, end)
    assert [row[0] for row in candles] == [1615611600, 1615698000]
    for row, (lo, hi) in zip(candles, [(1615611600, 1615698000), (1615698000, 1615780800)], strict=True):
        day = hourly.slice(lo, hi)
        assert row[1:] == pytest.approx([day.open[0], day.high.max(), day.low.min(), day.close[-1], day.volume.sum()], rel=1e-12)
        assert row[1:5] == [day.open[0], day.high.max(), day.low.min(), day.close[-1]]


def test_long_ranges_are_paged(http: httpx.Client) -> None:
    first = http.get(URL, params={"timeframe": "1h", "start": "2021-01-01", "end": "2021-01-10"})
    assert len(ok(first)) == 100 and first.headers["X-Next-Start"] == str(1609459200 + 100 * 3600)
    link = first.headers["Link"]
    assert link.startswith("</api/v1/ohlcv/") and link.endswith('>; rel="next"')
    rest = http.get(link[1 : link.index(">")])  # follow the Link header as a client would
    assert ok(rest)[0][0] == 1609459200 + 100 * 3600 and rest.headers["X-Next-Start"] == str(1609459200 + 200 * 3600)


@pytest.mark.parametrize(
    "params,code",
    [
        ({"timeframe": "2y"}, "invalid_timeframe"),
        ({"tz": "Europe/Atlantis"}, "invalid_timezone"),
        ({"start": "2021-02-01", "end": "2021-01-01"}, "invalid_range"),
        ({"start": "last tuesday"}, "invalid_time"),
        ({"resolution": "1h"}, "invalid_params"),
    ],
)
def test_bad_input_has_stable_error_codes(http: httpx.Client, params: dict[str, str], code: str) -> None:
    response = http.get(URL, params=params)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_forming_candles_of_live_trades(http: httpx.Client) -> None:
    deadline = time.monotonic() + 10
    while not (candles := ok(http.get("/api/v1/ohlcv/demo/BTC_USDT", params={"timeframe": "1m"}))):
        assert time.monotonic() < deadline, "no forming candle after 10 s of demo trades"
        time.sleep(0.2)
    t, o, h, low, c, v = candles[-1]
    assert t % 60 == 0 and low <= min(o, c) <= max(o, c) <= h and v > 0


async def test_subscribe_ohlcv_streams_the_forming_candle(rpc: RpcClient) -> None:
    answer = await rpc.call("subscribe_ohlcv", exchange="demo", symbol="BTC/USDT", timeframe="1h", tz="Asia/Kolkata")
    assert isinstance(answer["subscription"], int)
    pushed = await rpc.notification("ohlcv", timeout=10)
    assert pushed["subscription"] == answer["subscription"] and pushed["tz"] == "Asia/Kolkata"
    t, o, h, low, c, v = pushed["candle"]
    assert (t + 19_800) % 3600 == 0  # the bucket starts on a Kolkata (+05:30) hour
    assert low <= min(o, c) <= max(o, c) <= h and v > 0
    assert await rpc.call("unsubscribe_ohlcv", subscription=answer["subscription"]) is True
    assert await rpc.call("unsubscribe_ohlcv", subscription=answer["subscription"]) is False
    with pytest.raises(RpcError) as info:
        await rpc.call("subscribe_ohlcv", exchange="demo", symbol="BTC/USDT", timeframe="7x")
    assert info.value.reason == "invalid_timeframe"
