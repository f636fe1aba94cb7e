"""Portfolio candles over REST and /rpc on a real server: the one scope check, two users and a viewer, errors, paging.

The server's store is a database of its own on the test PostgreSQL server; the test writes each
portfolio's 15-minute candles into it with the portfolio candle store's upsert (what the
tracker writes), then reads them back through the routes. ann (a trader in Asia/Kathmandu),
ben (a trader), val (a viewer granted `view` on ann's account) and the admin.
"""

from __future__ import annotations

import asyncio
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
from tests.api.signed_in import http
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
