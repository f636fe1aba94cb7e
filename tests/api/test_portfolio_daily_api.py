"""GET /api/v1/portfolio/{scope}/{id}/daily on a real server: the server's own pass records the days at the owner's
midnight (New York, across the autumn DST change), the owner and whom they let in read them, nobody else (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from coinwire.api.portfolio_daily_routes import MAX_DAYS
from coinwire.core.daily_stats import missing_day
from coinwire.core.portfolio import BUCKET_S, PortfolioCandle
from coinwire.store.portfolio_candles import PortfolioCandleRow, write_portfolio_candles
from coinwire.store.portfolio_daily import write_days
from coinwire.store.store import Store
from tests.server import ServerProcess

FIRST = int(datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp())
PAST = date(2026, 10, 31) - timedelta(days=MAX_DAYS + 4)  # tess's days recorded before, up to the day before the candles
LAST_CLOSE = int(datetime(2026, 11, 4, 12, tzinfo=UTC).timestamp())


def value(end: int) -> Decimal:
    return Decimal(2000) + Decimal((end - FIRST) // BUCKET_S) / 8


def candles(scope_id: str) -> list[PortfolioCandleRow]:
    return [PortfolioCandleRow.of("account", scope_id, "USD", PortfolioCandle(t, value(t + BUCKET_S), value(t + BUCKET_S),
                                                                              value(t + BUCKET_S), value(t + BUCKET_S), Decimal(0)),
                                  (t + BUCKET_S) * 10**9)
            for t in range(FIRST, LAST_CLOSE, BUCKET_S)]


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def days_of(client: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


def test_days_are_the_owners_and_land_at_their_midnight(tmp_path: Path, store_env: dict[str, str]) -> None:
    server = ServerProcess(tmp_path, env=store_env)
    server.start()
    try:
        tokens = server.users({"tom": "trader", "tess": "trader", "vic": "viewer"})
        clients = {name: httpx.Client(base_url=server.http, timeout=10, headers={"Authorization": f"Bearer {t}"})
                   for name, t in tokens.items()}
        ids = {name: c.get("/api/v1/me").json()["id"] for name, c in clients.items()}
        accounts = {name: clients[name].get("/api/v1/accounts").json()[0]["id"] for name in ("tom", "tess")}
        r = clients["tom"].put("/api/v1/me/preferences", json={"time_zone": "America/New_York"})
        assert r.status_code == 200, r.text
    finally:
        server.stop()
    url = store_env.get("COINWIRE_STORE_URL", f"sqlite:///{tmp_path / 'coinwire.db'}")

    async def write() -> None:  # what the tracker would have written those days
        async with Store(url, journal=url.startswith("sqlite")) as store:
            await write_portfolio_candles(store, candles(str(accounts["tom"])) + candles(str(accounts["tess"])))
            # and a long past of tess's days (as an earlier server recorded them, up to 2026-10-31): more than a page
            await write_days(store, "account", str(accounts["tess"]), [
                missing_day(PAST + timedelta(days=i), UTC, "USD") for i in range(MAX_DAYS + 5)], now_ns=1)

    asyncio.run(write())
    server.start()  # its first daily stats pass records the days since
    try:
        tom, tess, vic = clients["tom"], clients["tess"], clients["vic"]
        mine = f"/api/v1/portfolio/account/{accounts['tom']}/daily"
        deadline = time.monotonic() + 20
        while len(days := days_of(tom, mine, end="2026-11-03")) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        # the tracker, running now, marks the buckets since 2026-11-04 missing: those days hold no figures
        assert all(d["status"] == "missing" and d["closing"] is None for d in days_of(tom, mine, start="2026-11-04"))
        # New York: 2026-11-01 is 25 hours (clocks go back); the days end at 04:00 UTC, then 05:00 UTC
        assert [(d["day"], d["start"], d["end"]) for d in days] == [
            ("2026-11-01", int(datetime(2026, 11, 1, 4, tzinfo=UTC).timestamp()), int(datetime(2026, 11, 2, 5, tzinfo=UTC).timestamp())),
            ("2026-11-02", int(datetime(2026, 11, 2, 5, tzinfo=UTC).timestamp()), int(datetime(2026, 11, 3, 5, tzinfo=UTC).timestamp())),
            ("2026-11-03", int(datetime(2026, 11, 3, 5, tzinfo=UTC).timestamp()), int(datetime(2026, 11, 4, 5, tzinfo=UTC).timestamp())),
        ]
        first, second = days[0], days[1]
        assert first["status"] == "recorded" and Decimal(first["closing"]) == value(first["end"])
        assert first["opening"] is None and first["pnl"] is None  # no value was captured at its opening midnight
        assert Decimal(second["opening"]) == value(second["start"]) and \
            Decimal(second["pnl"]) == value(second["end"]) - value(second["start"])
        assert (second["deposits"], second["trades"], second["currency"]) == ("0", 0, "USD")
        assert [d["day"] for d in days_of(tom, mine, start="2026-11-02", end="2026-11-02")] == ["2026-11-02"]

        # nobody else's: the other trader and a viewer get the same not_found as an unknown account
        for who in (tess, vic):
            refused(who.get(mine), 404, "not_found")
        refused(tom.get("/api/v1/portfolio/account/987654/daily"), 404, "not_found")
        refused(tom.get(f"/api/v1/portfolio/planet/{accounts['tom']}/daily"), 404, "not_found")
        hers = days_of(tess, f"/api/v1/portfolio/account/{accounts['tess']}/daily", start="2026-11-01", end="2026-11-03")
        assert [d["day"] for d in hers] == ["2026-11-01", "2026-11-02", "2026-11-03"] and hers[0]["start"] % 86_400 == 0  # UTC
        page = tess.get(f"/api/v1/portfolio/account/{accounts['tess']}/daily", params={"end": "2026-11-03"})
        assert len(page.json()) == MAX_DAYS and page.json()[0]["day"] == PAST.isoformat()
        following = (PAST + timedelta(days=MAX_DAYS)).isoformat()
        assert page.headers["X-Next-Start"] == following and 'rel="next"' in page.headers["Link"]
        rest = tess.get(page.headers["Link"].split(">")[0].lstrip("<"))
        assert [d["day"] for d in rest.json()] == [(PAST + timedelta(days=MAX_DAYS + i)).isoformat()
                                                   for i in range(5)] + ["2026-11-01", "2026-11-02", "2026-11-03"]
        assert "X-Next-Start" not in rest.headers
        # a view grant lets the viewer read it; the admin reads any
        with server.client() as admin:
            grant = admin.put(f"/api/v1/accounts/{accounts['tom']}/members/{ids['vic']}", json={"role": "view"})
            assert grant.status_code == 200, grant.text
            assert days_of(admin, mine, end="2026-11-03") == days
        assert days_of(vic, mine, end="2026-11-03") == days

        # bad input: stable codes, 400
        refused(tom.get(mine, params={"start": "2026-13-01"}), 400, "invalid_date")
        refused(tom.get(mine, params={"end": "yesterday"}), 400, "invalid_date")
        refused(tom.get(mine, params={"start": "2026-11-03", "end": "2026-11-01"}), 400, "invalid_range")
        refused(tom.get(mine, params={"tz": "UTC"}), 400, "invalid_params")
    finally:
        for c in clients.values():
            c.close()
        server.stop()
