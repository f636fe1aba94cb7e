"""Reference-data sources against a local server in each source's documented format; the service on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from prometheus_client import REGISTRY

from coinwire.refdata.repository import RefDataRepository
from coinwire.refdata.service import RefDataService
from coinwire.refdata.sources import (
    CoinGecko,
    CoinMarketCap,
    EcbRates,
    OpenExchangeRates,
    SourceError,
    parse_coingecko,
    parse_ecb,
    parse_openexchangerates,
)
from tests.feeds.binance_server import ServerRunner
from tests.refdata.refdata_server import CMC_KEY, OXR_APP_ID, RefDataVenue
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

NOW = 1723200000 * 10**9  # 2024-08-09 10:40 UTC


@pytest.fixture
async def venue() -> RefDataVenue:
    return RefDataVenue()


@pytest.fixture
async def base_url(venue: RefDataVenue) -> AsyncIterator[str]:
    runner = ServerRunner(venue)
    await runner.start()
    yield f"http://127.0.0.1:{runner.port}"
    await runner.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def fetches(source: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("coinwire_refdata_fetches_total", {"source": source, "outcome": outcome}) or 0.0


async def test_openexchangerates_latest(base_url: str, http: httpx.AsyncClient) -> None:
    rates = await OpenExchangeRates(OXR_APP_ID, f"{base_url}/oxr/api/latest.json").fetch(http)
    assert (rates.source, rates.base, rates.ts) == ("openexchangerates", "USD", 1723161600 * 10**9)
    assert rates.rates == {"EUR": Decimal("0.915632"), "GBP": Decimal("0.784321"), "JPY": Decimal("146.9865"),
                           "CHF": Decimal("0.8601")}
    with pytest.raises(SourceError) as caught:  # a wrong App ID: their 401 error body
        await OpenExchangeRates("wrong", f"{base_url}/oxr/api/latest.json").fetch(http)
    assert caught.value.code == "source_http_error"


async def test_ecb_daily_reference_rates(base_url: str, http: httpx.AsyncClient) -> None:
    rates = await EcbRates(f"{base_url}/ecb/eurofxref-daily.xml").fetch(http)
    assert rates.base == "EUR" and rates.rates["USD"] == Decimal("1.0922") and rates.rates["GBP"] == Decimal("0.85773")
    assert rates.ts == int(dt.datetime(2024, 8, 8, 14, 0, tzinfo=dt.UTC).timestamp()) * 10**9  # 16:00 CEST


async def test_coingecko_pages_through_the_top_n(base_url: str, http: httpx.AsyncClient, venue: RefDataVenue) -> None:
    venue.coins = 300
    coins = await CoinGecko(f"{base_url}/cg/api/v3", api_key="demo-key").fetch(http, 260)
    assert len(coins) == 260 and [c.rank for c in coins[:3]] == [1, 2, 3]
    assert [q["page"] for _, q in venue.requests] == ["1", "2"] and venue.requests[0][1]["per_page"] == "250"
    btc = coins[0]
    assert (btc.coin_id, btc.symbol, btc.price, btc.ath) == ("bitcoin", "BTC", Decimal("61000.5"), Decimal("73200.6"))
    assert btc.ath_ts == int(dt.datetime(2024, 3, 14, 7, 10, 36, 635000, tzinfo=dt.UTC).timestamp() * 10**6) * 1000
    assert btc.market_cap == Decimal(round(61000.5 * 19_700_000 * 3))


async def test_coinmarketcap_listing_with_all_time_highs(base_url: str, http: httpx.AsyncClient) -> None:
    coins = await CoinMarketCap(CMC_KEY, f"{base_url}/cmc").fetch(http, 2)
    assert [(c.coin_id, c.symbol, c.rank) for c in coins] == [("1", "BTC", 1), ("1027", "ETH", 2)]
    assert coins[0].ath == Decimal("73750.07") and coins[1].market_cap == Decimal("312014400000")
    with pytest.raises(SourceError) as caught:
        await CoinMarketCap("wrong", f"{base_url}/cmc").fetch(http, 2)
    assert caught.value.code == "source_http_error"


@pytest.mark.parametrize("body", [
    "", "{", "[]", '{"base": "USD", "timestamp": 1, "rates": {}}', '{"base": "usd", "timestamp": 1, "rates": {"EUR": 1}}',
    '{"base": "USD", "timestamp": "yesterday", "rates": {"EUR": 0.9}}', '{"base": "USD", "timestamp": 1, "rates": {"EUR": -0.9}}',
    '{"base": "USD", "timestamp": 1, "rates": {"EUR": "a lot"}}', '{"error": true, "status": 429, "message": "not_allowed"}',
])
def test_openexchangerates_garbage_is_named(body: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_openexchangerates(body.encode())
    assert caught.value.code == "source_garbage"


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b"<Cube", ECB_EMPTY := b"<a xmlns='x'><Cube/></a>"])
def test_ecb_garbage_is_named(body: bytes) -> None:
    with pytest.raises(SourceError, match="ecb"):
        parse_ecb(body)


@pytest.mark.parametrize("body", ['{"coins": []}', "[]", '[{"id": "x"}]', '[{"id": "x", "symbol": "x", "market_cap_rank": 1, '
                                  '"current_price": 0, "last_updated": "2024-08-09T00:00:00Z"}]'])
def test_coingecko_garbage_is_named(body: str) -> None:
    with pytest.raises(SourceError):
        parse_coingecko(body.encode())


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


async def test_service_stores_keeps_the_last_good_value_and_restarts_from_the_store(
    database: Database, base_url: str, venue: RefDataVenue  # noqa: F811 - the fixture
) -> None:
    clock = Clock()
    async with database.store() as store:
        repository = RefDataRepository(store)
        service = RefDataService(repository, fx=EcbRates(f"{base_url}/ecb/eurofxref-daily.xml"),
                                 coins=CoinGecko(f"{base_url}/cg/api/v3"), top=3, clock=clock)
        await service.start(loops=False)
        assert service.fx is None and service.coins == [] and service.age("ecb") is None
        assert await service.refresh_fx() and await service.refresh_coins()
        assert service.fx is not None and service.fx.rates["USD"] == Decimal("1.0922")
        assert [c.symbol for c in service.coins] == ["BTC", "ETH", "USDT"]
        good_fx, good_coins = service.fx, service.coins
        garbage_before = fetches("ecb", "source_garbage")

        venue.fail("ecb", "<html>502 Bad Gateway</html>")
        venue.fail("cg", '{"status": {"error_code": 429}}')
        clock.now += 3600 * 10**9
        assert not await service.refresh_fx() and not await service.refresh_coins()
        assert service.fx == good_fx and service.coins == good_coins  # the last good values stay in use
        assert fetches("ecb", "source_garbage") == garbage_before + 1
        status = {s["source"]: s for s in service.status()}
        assert status["ecb"]["error"]["code"] == "source_garbage" and status["coingecko"]["error"]["code"] == "source_garbage"
        ecb_age = (clock.now - good_fx.ts) / 1e9
        assert status["ecb"]["age"] == round(ecb_age, 3)
        assert REGISTRY.get_sample_value("coinwire_refdata_age_seconds", {"source": "ecb"}) == pytest.approx(ecb_age)

        venue.refuse("ecb", 503)
        assert not await service.refresh_fx() and service.errors["ecb"].code == "source_http_error"
        assert await service.refresh_fx() and "ecb" not in service.errors  # back: the same snapshot, stored once
        await service.close()

        restarted = RefDataService(repository, fx=EcbRates(f"{base_url}/ecb/eurofxref-daily.xml"),
                                   coins=CoinGecko(f"{base_url}/cg/api/v3"), top=3, clock=clock)
        await restarted.start(loops=False)
        assert restarted.fx == good_fx and restarted.coins == good_coins
        await restarted.close()
        async with store.engine.connect() as conn:
            from sqlalchemy import text

            assert (await conn.execute(text("SELECT count(*) FROM fx_rates"))).scalar_one() == 4
            assert (await conn.execute(text("SELECT count(*) FROM coin_stats"))).scalar_one() == 3
