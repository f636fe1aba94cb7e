"""Portfolio candles over REST and /rpc on a real server: the one scope check, two users and a viewer, errors, paging.

The server's store is a database of its own on the test PostgreSQL server; the test writes each
portfolio's 15-minute candles into it with the portfolio candle store's upsert (what the
tracker writes), then reads them back through the routes. ann (a trader in Asia/Kathmandu),
ben (a trader), val (a viewer granted `view` on ann's account) and the admin.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from coinwire.core.portfolio import BUCKET_S, PortfolioCandle
from coinwire.store import Store
from coinwire.store.portfolio_candles import PortfolioCandleRow, write_portfolio_candles
from tests.api.signed_in import code_of, http, rpc
from tests.conftest import postgres_database
from tests.server import ServerProcess

T0 = 1_774_569_600  # 2026-03-27 00:00 UTC; Europe/London changes to summer time on the 29th
MAX_POINTS = 100
_decode = msgspec.json.Decoder(float_hook=Decimal).decode  # values are JSON numbers: read them exactly


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, store_url: str) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("portfolio")),
                         env={"COINWIRE_STORE_URL": store_url, "COINWIRE_OHLCV_MAX_POINTS": str(MAX_POINTS)})
    proc.start()
    yield proc
    proc.stop()


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return _decode(response.content)


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error


def series(n: int, base: int) -> list[PortfolioCandle]:
    """n exact 15-minute candles from T0, values around `base` (each portfolio its own)."""
    out = []
    for i in range(n):
        o, c = Decimal(base + i).scaleb(0) + Decimal("0.12345678"), Decimal(base + i + 1) + Decimal("0.12345678")
        out.append(PortfolioCandle(T0 + i * BUCKET_S, o, c + 2, o - 3, c, Decimal(i % 7) + Decimal("0.5"),
                                   "missing" if i in (10, 11) else "complete"))
    return out


def rows(candles: list[PortfolioCandle]) -> list[list[Any]]:
    return [[c.open_time, c.open, c.high, c.low, c.close, c.volume] for c in candles if c.status != "missing"]


@pytest.fixture(scope="module")
def world(server: ServerProcess, store_url: str) -> dict[str, Any]:
    """Users, their accounts, ann's wallet set and run, and candles stored for each portfolio."""
    tokens = server.users({"ann": "trader", "ben": "trader", "val": "viewer"})
    tokens["admin"] = server.token
    ids: dict[str, Any] = {}
    with http(server, tokens["ann"]) as ann, http(server, tokens["ben"]) as ben, server.client() as admin:
        users = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
        ids["user"] = users
        assert ann.put("/api/v1/me/preferences", json={"time_zone": "Asia/Kathmandu"}).status_code == 200
        ids["ann_account"] = min(a["id"] for a in ann.get("/api/v1/accounts").json() if a["role"] == "owner")
        ids["ben_account"] = min(a["id"] for a in ben.get("/api/v1/accounts").json() if a["role"] == "owner")
        granted = admin.put(f"/api/v1/accounts/{ids['ann_account']}/members/{users['val']}", json={"role": "view"})
        assert granted.status_code == 200, granted.text
        made = ann.post("/xwrap/v1/wallets/new", json={"run_id": "ann-run", "wallets": [
            {"exchange": "demo", "currency": "USDT", "allocation": "10"}]})
        assert made.status_code == 200, made.text
        ids["ann_set"] = made.json()["id"]
    ids["tokens"] = tokens
    portfolios = {
        ("account", str(ids["ann_account"]), "USD"): series(300, 1000),  # more than a page of 15m candles
        ("account", str(ids["ben_account"]), "USD"): series(8, 5000),
        ("user", str(users["ann"]), "USD"): series(8, 2000),
        ("user", str(users["ben"]), "USD"): series(8, 6000),
        ("wallet_set", str(ids["ann_set"]), "USD"): series(8, 3000),
        ("run", "ann-run", "USD"): series(8, 4000),
        ("account", str(ids["ann_account"]), "EUR"): series(8, 9000),  # another currency: not ann's
    }

    async def store_them() -> None:
        store = Store(store_url)
        await store.start()
        try:
            await write_portfolio_candles(store, [PortfolioCandleRow.of(s, i, cur, c, 1)
                                                  for (s, i, cur), cs in portfolios.items() for c in cs])
        finally:
            await store.close()

    asyncio.run(store_them())
    stale = ("account", str(ids["ann_account"]), "EUR")
    ids["candles"] = {(s, i): cs for (s, i, cur), cs in portfolios.items() if (s, i, cur) != stale}
    return ids


def url(scope: str, scope_id: object) -> str:
    return f"/api/v1/portfolio/{scope}/{scope_id}/ohlcv"


RANGE = {"start": T0, "end": T0 + 8 * BUCKET_S}


def test_each_owner_reads_their_portfolios_exactly(server: ServerProcess, world: dict[str, Any]) -> None:
    users = world["user"]
    with http(server, world["tokens"]["ann"]) as ann, http(server, world["tokens"]["ben"]) as ben:
        for scope, scope_id in (("user", users["ann"]), ("wallet_set", world["ann_set"]), ("run", "ann-run")):
            response = ann.get(url(scope, scope_id), params={**RANGE, "timeframe": "15m"})
            assert ok(response) == rows(world["candles"][(scope, str(scope_id))][:8])
            assert response.headers["X-Currency"] == "USD"
        response = ben.get(url("account", world["ben_account"]), params={**RANGE, "timeframe": "15m"})
        assert ok(response) == rows(world["candles"][("account", str(world["ben_account"]))])
        assert response.headers["X-Currency"] == "USD"
        assert b'"5000.12345678"' not in response.content and b"5000.12345678" in response.content  # numbers, not strings


def test_neither_user_sees_the_others_portfolios_and_unknown_ids_answer_the_same(server: ServerProcess, world: dict[str, Any]) -> None:
    users = world["user"]
    with http(server, world["tokens"]["ben"]) as ben, http(server, world["tokens"]["ann"]) as ann:
        for scope, scope_id in (("account", world["ann_account"]), ("user", users["ann"]), ("wallet_set", world["ann_set"]),
                                ("run", "ann-run"), ("account", 999_999), ("wallet_set", 999_999), ("run", "nobody-run"),
                                ("user", 999_999), ("planet", 1), ("account", "abc"), ("account", "-1"), ("user", "0x1")):
            refused(ben.get(url(scope, scope_id), params=RANGE), 404, "not_found")
        refused(ann.get(url("account", world["ben_account"]), params=RANGE), 404, "not_found")
        refused(ann.get(url("user", users["ben"]), params=RANGE), 404, "not_found")


def test_a_viewer_granted_an_account_sees_its_candles_in_the_owners_terms_but_not_the_owners_total(
        server: ServerProcess, world: dict[str, Any]) -> None:
    users = world["user"]
    with http(server, world["tokens"]["val"]) as val:
        response = val.get(url("account", world["ann_account"]), params={**RANGE, "timeframe": "15m"})
        assert ok(response) == rows(world["candles"][("account", str(world["ann_account"]))][:8])
        assert response.headers["X-Currency"] == "USD"
        refused(val.get(url("user", users["ann"]), params=RANGE), 404, "not_found")
        refused(val.get(url("wallet_set", world["ann_set"]), params=RANGE), 404, "not_found")
        assert ok(val.get(url("user", users["val"]), params=RANGE)) == []  # their own total: nothing tracked yet


def test_the_owners_zone_is_the_default_and_any_zone_may_be_asked(server: ServerProcess, world: dict[str, Any]) -> None:
    candles = [c for c in world["candles"][("account", str(world["ann_account"]))] if c.status != "missing"]
    with http(server, world["tokens"]["ann"]) as ann:
        span = {"start": T0, "end": T0 + 300 * BUCKET_S}
        kathmandu = ok(ann.get(url("account", world["ann_account"]), params={**span, "timeframe": "1d"}))
        # Kathmandu (+05:45) days start at 18:15 UTC: the first holds the candles before T0 + 18h15m
        midnight = T0 + 18 * 3600 + 15 * 60
        first = [c for c in candles if c.open_time < midnight]
        assert [row[0] for row in kathmandu] == [midnight - 86_400, midnight, midnight + 86_400, midnight + 2 * 86_400]
        assert kathmandu[0][1:] == [first[0].open, max(c.high for c in first), min(c.low for c in first), first[-1].close,
                                    sum((c.volume for c in first), Decimal(0))]
        assert kathmandu[1][1] == candles[len(first)].open
        utc = ok(ann.get(url("account", world["ann_account"]), params={**span, "timeframe": "1d", "tz": "UTC"}))
        assert [row[0] for row in utc] == [T0, T0 + 86_400, T0 + 2 * 86_400, T0 + 3 * 86_400]
        assert utc[0][5] == sum((c.volume for c in candles if c.open_time < T0 + 86_400), Decimal(0))
        admin_view = ok(httpx.get(server.http + url("account", world["ann_account"]), headers=server.headers,
                                  params={**span, "timeframe": "1d"}))
        assert admin_view == kathmandu  # whoever reads, the owner's zone


def test_long_ranges_are_paged_with_the_market_routes_headers(server: ServerProcess, world: dict[str, Any]) -> None:
    with http(server, world["tokens"]["ann"]) as ann:
        first = ann.get(url("account", world["ann_account"]), params={"start": T0, "end": T0 + 300 * BUCKET_S, "timeframe": "15m"})
        page = ok(first)
        assert len(page) == MAX_POINTS - 2  # 100 buckets, two of them missing (left out)
        assert first.headers["X-Next-Start"] == str(T0 + MAX_POINTS * BUCKET_S)
        link = first.headers["Link"]
        assert link.startswith("</api/v1/portfolio/account/") and link.endswith('>; rel="next"')
        rest: list[Any] = []
        following: str | None = link[1: link.index(">")]
        while following:
            response = ann.get(following)
            rest += ok(response)
            following = response.headers["Link"][1: response.headers["Link"].index(">")] if "Link" in response.headers else None
        assert page + rest == rows(world["candles"][("account", str(world["ann_account"]))])


@pytest.mark.parametrize(("params", "code"), [
    ({"timeframe": "5m"}, "invalid_timeframe"),
    ({"timeframe": "1y"}, "invalid_timeframe"),
    ({"timeframe": ""}, "invalid_timeframe"),
    ({"tz": "Mars/Olympus"}, "invalid_timezone"),
    ({"tz": "x" * 500}, "invalid_timezone"),
    ({"start": "yesterday"}, "invalid_time"),
    ({"end": "99999999999999999999999"}, "invalid_time"),
    ({"start": T0 + 10, "end": T0}, "invalid_range"),
    ({"scope": "account"}, "invalid_params"),
])
def test_bad_queries_answer_400_with_the_market_routes_codes(server: ServerProcess, world: dict[str, Any], params: dict[str, Any],
                                                             code: str) -> None:
    with http(server, world["tokens"]["ann"]) as ann:
        refused(ann.get(url("account", world["ann_account"]), params=params), 400, code)
        market = ann.get("/api/v1/ohlcv/demo/BTC_USDT", params=params)
        if code != "invalid_timeframe" or params["timeframe"] != "5m":  # 5m is a market timeframe, not a portfolio one
            refused(market, 400, code)


def test_an_unsigned_caller_is_refused(server: ServerProcess, world: dict[str, Any]) -> None:
    response = httpx.get(server.http + url("account", world["ann_account"]))
    assert response.status_code == 401


# --- the live feed over /rpc ---------------------------------------------------------------------
async def test_subscribe_checks_the_scope_like_the_route(server: ServerProcess, world: dict[str, Any]) -> None:
    async with rpc(server, world["tokens"]["ben"]) as ben:
        assert await code_of(ben, "subscribe_portfolio_ohlcv", scope="account", id=world["ann_account"]) == "not_found"
        assert await code_of(ben, "subscribe_portfolio_ohlcv", scope="user", id=world["user"]["ann"]) == "not_found"
        assert await code_of(ben, "subscribe_portfolio_ohlcv", scope="planet", id=1) == "not_found"
        assert await code_of(ben, "subscribe_portfolio_ohlcv", scope="account", id=world["ben_account"], timeframe="5m") == \
            "invalid_timeframe"
        answer = await ben.call("subscribe_portfolio_ohlcv", scope="account", id=world["ben_account"], timeframe="15m",
                                tz="UTC", **RANGE)
        assert (answer["scope"], answer["id"], answer["currency"], answer["tz"]) == ("account", str(world["ben_account"]), "USD", "UTC")
        assert [[r[0], *(Decimal(str(v)) for v in r[1:])] for r in answer["candles"]] == \
            rows(world["candles"][("account", str(world["ben_account"]))])
        assert await ben.call("unsubscribe_portfolio_ohlcv", subscription=answer["subscription"]) is True
        assert await ben.call("unsubscribe_portfolio_ohlcv", subscription=answer["subscription"]) is False


def _bounded(candle: list[Any]) -> None:
    o, h, lo, c, v = (Decimal(str(x)) for x in candle[1:])
    assert lo <= min(o, c) and h >= max(o, c) and v >= 0, candle


async def test_the_forming_candle_arrives_live_and_a_viewers_stream_ends_with_the_grant(server: ServerProcess,
                                                                                        world: dict[str, Any]) -> None:
    account = world["ann_account"]
    async with rpc(server, world["tokens"]["ann"]) as ann, rpc(server, world["tokens"]["val"]) as val:
        answer = await ann.call("subscribe_portfolio_ohlcv", scope="account", id=account, timeframe="1h")
        assert answer["tz"] == "Asia/Kathmandu" and answer["timeframe"] == "1h"  # the owner's zone by default
        seen = await val.call("subscribe_portfolio_ohlcv", scope="account", id=account, timeframe="15m", tz="UTC")
        bid = Decimal((await ann.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
        await ann.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.01", account=account)
        pushed = await ann.notification("portfolio_ohlcv", timeout=20)
        assert (pushed["subscription"], pushed["scope"], pushed["id"], pushed["tz"]) == \
            (answer["subscription"], "account", str(account), "Asia/Kathmandu")
        now = int(time.time())
        assert now - 3600 < pushed["candle"][0] <= now and (pushed["candle"][0] - (T0 - 45 * 60)) % 3600 == 0  # a +05:45 hour
        _bounded(pushed["candle"])
        mine = await val.notification("portfolio_ohlcv", timeout=20)
        assert mine["subscription"] == seen["subscription"] and mine["candle"][0] in (now - now % BUCKET_S, now - now % BUCKET_S - BUCKET_S)
        _bounded(mine["candle"])
        deadline = time.monotonic() + 20
        while Decimal(str(mine["candle"][5])) < bid * Decimal("0.01") * Decimal("0.9") and time.monotonic() < deadline:
            mine = await val.notification("portfolio_ohlcv", timeout=20)  # the fill's notional shows as volume
        assert Decimal(str(mine["candle"][5])) >= bid * Decimal("0.01") * Decimal("0.9")
        with http(server, world["tokens"]["ann"]) as rest:  # the GET answers the forming bucket too, as the feed pushed it
            bucket = int(mine["candle"][0])
            forming = ok(rest.get(url("account", account), params={"timeframe": "15m", "tz": "UTC", "start": bucket}))
            assert forming and forming[-1][0] >= bucket
            _bounded(forming[-1])
        with server.client() as admin:
            assert admin.delete(f"/api/v1/accounts/{account}/members/{world['user']['val']}").status_code in (200, 204)
        await ann.call("make_order", exchange="demo", pair="BTC_USDT", side="sell", type="market", size="0.01", account=account)
        while True:
            last = await val.notification("portfolio_ohlcv", timeout=20)
            if "ended" in last:
                break
        assert last == {"subscription": seen["subscription"], "ended": "not_found"}
        assert await code_of(val, "subscribe_portfolio_ohlcv", scope="account", id=account) == "not_found"
        with http(server, world["tokens"]["val"]) as rest:
            refused(rest.get(url("account", account)), 404, "not_found")
        assert await val.call("unsubscribe_portfolio_ohlcv", subscription=seen["subscription"]) is False
