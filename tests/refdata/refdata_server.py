"""A local stand-in for the reference-data sources, answering in each one's documented format.

- OpenExchangeRates `GET /oxr/api/latest.json?app_id=` (https://docs.openexchangerates.org/reference/latest-json):
  `{"disclaimer", "license", "timestamp", "base": "USD", "rates": {...}}`; a wrong App ID gets their
  error body `{"error": true, "status": 401, "message": "invalid_app_id", "description": ...}`.
- ECB `GET /ecb/eurofxref-daily.xml`: the gesmes envelope with `<Cube time=...><Cube currency= rate=/>`.
- CoinGecko `GET /cg/api/v3/coins/markets?vs_currency=usd&order=market_cap_desc&per_page=&page=`.
- CoinMarketCap `GET /cmc/v1/cryptocurrency/listings/latest` and
  `/cmc/v2/cryptocurrency/price-performance-stats/latest`, behind the `X-CMC_PRO_API_KEY` header.

`garbage[name]` (name: oxr, ecb, cg, cmc) replaces the next answers with a raw body, `status[name]`
with an HTTP status. Nothing here imports coinwire.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from aiohttp import web

OXR_APP_ID = "test-app-id"
CMC_KEY = "test-cmc-key"

OXR_LATEST: dict[str, Any] = {
    "disclaimer": "Usage subject to terms: https://openexchangerates.org/terms",
    "license": "https://openexchangerates.org/license",
    "timestamp": 1723161600,
    "base": "USD",
    "rates": {"EUR": 0.915632, "GBP": 0.784321, "JPY": 146.9865, "CHF": 0.8601, "USD": 1},
}

ECB_DAILY = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
\t<gesmes:subject>Reference rates</gesmes:subject>
\t<gesmes:Sender>
\t\t<gesmes:name>European Central Bank</gesmes:name>
\t</gesmes:Sender>
\t<Cube>
\t\t<Cube time='2024-08-08'>
\t\t\t<Cube currency='USD' rate='1.0922'/>
\t\t\t<Cube currency='JPY' rate='160.64'/>
\t\t\t<Cube currency='GBP' rate='0.85773'/>
\t\t\t<Cube currency='CHF' rate='0.9393'/>
\t\t</Cube>
\t</Cube>
</gesmes:Envelope>
"""


def coingecko_coin(rank: int) -> dict[str, Any]:
    """A `/coins/markets` entry in CoinGecko's shape (their documented example's fields)."""
    names = {1: ("bitcoin", "btc", "Bitcoin", 61000.5), 2: ("ethereum", "eth", "Ethereum", 2600.12),
             3: ("tether", "usdt", "Tether", 1.0)}
    coin_id, symbol, name, price = names.get(rank, (f"coin-{rank}", f"c{rank}", f"Coin {rank}", 1.5 / rank))
    return {
        "id": coin_id, "symbol": symbol, "name": name, "image": f"https://example.invalid/{coin_id}.png",
        "current_price": price, "market_cap": round(price * 19_700_000 * (4 - min(rank, 3))),
        "market_cap_rank": rank, "fully_diluted_valuation": None, "total_volume": 25_000_000_000,
        "high_24h": price * 1.01, "low_24h": price * 0.99, "price_change_24h": -12.5,
        "price_change_percentage_24h": -0.02, "market_cap_change_24h": -1e9, "market_cap_change_percentage_24h": -0.1,
        "circulating_supply": 19_700_000.0, "total_supply": 21_000_000.0, "max_supply": 21_000_000.0,
        "ath": round(price * 1.2, 2), "ath_change_percentage": -16.7, "ath_date": "2024-03-14T07:10:36.635Z",
        "atl": 67.81, "atl_change_percentage": 90000.0, "atl_date": "2013-07-06T00:00:00.000Z", "roi": None,
        "last_updated": "2024-08-09T00:00:05.123Z",
    }


def cmc_listing(count: int) -> dict[str, Any]:
    data = [
        {"id": 1, "name": "Bitcoin", "symbol": "BTC", "slug": "bitcoin", "cmc_rank": 1, "num_market_pairs": 11000,
         "circulating_supply": 19700000, "total_supply": 19700000, "max_supply": 21000000, "infinite_supply": False,
         "last_updated": "2024-08-09T00:00:00.000Z", "date_added": "2010-07-13T00:00:00.000Z", "tags": ["mineable"],
         "platform": None, "self_reported_circulating_supply": None, "self_reported_market_cap": None,
         "quote": {"USD": {"price": 61000.5, "volume_24h": 25e9, "volume_change_24h": 1.2, "percent_change_1h": 0.1,
                           "percent_change_24h": -0.5, "percent_change_7d": 3.2, "market_cap": 1201709850000,
                           "market_cap_dominance": 54.1, "fully_diluted_market_cap": 1281010500000,
                           "last_updated": "2024-08-09T00:00:00.000Z"}}},
        {"id": 1027, "name": "Ethereum", "symbol": "ETH", "slug": "ethereum", "cmc_rank": 2, "num_market_pairs": 9000,
         "circulating_supply": 120000000, "total_supply": 120000000, "max_supply": None, "infinite_supply": True,
         "last_updated": "2024-08-09T00:00:00.000Z", "date_added": "2015-08-07T00:00:00.000Z", "tags": [],
         "platform": None, "self_reported_circulating_supply": None, "self_reported_market_cap": None,
         "quote": {"USD": {"price": 2600.12, "volume_24h": 12e9, "volume_change_24h": 2.1, "percent_change_1h": 0.2,
                           "percent_change_24h": -1.5, "percent_change_7d": 1.2, "market_cap": 312014400000,
                           "market_cap_dominance": 14.0, "fully_diluted_market_cap": 312014400000,
                           "last_updated": "2024-08-09T00:00:00.000Z"}}},
    ]
    return {"status": _cmc_status(), "data": data[:count]}


def _cmc_status(code: int = 0, message: str | None = None) -> dict[str, Any]:
    return {"timestamp": "2024-08-09T00:00:01.000Z", "error_code": code, "error_message": message, "elapsed": 10,
            "credit_count": 1, "notice": None}


def cmc_performance(ids: list[str]) -> dict[str, Any]:
    highs = {"1": (73750.07, "2024-03-14T07:10:36.000Z"), "1027": (4891.70, "2021-11-16T21:24:11.000Z")}
    data = {}
    for coin_id in ids:
        high, stamp = highs[coin_id]
        data[coin_id] = {
            "id": int(coin_id), "name": "x", "symbol": "x", "slug": "x", "last_updated": "2024-08-09T00:00:00.000Z",
            "periods": {"all_time": {
                "open_timestamp": "2013-04-28T00:00:00.000Z", "high_timestamp": stamp,
                "low_timestamp": "2013-07-05T00:00:00.000Z", "close_timestamp": "2024-08-09T00:00:00.000Z",
                "quote": {"USD": {"open": 135.3, "open_timestamp": "2013-04-28T00:00:00.000Z", "high": high,
                                  "high_timestamp": stamp, "low": 65.53, "low_timestamp": "2013-07-05T00:00:00.000Z",
                                  "close": 61000.5, "close_timestamp": "2024-08-09T00:00:00.000Z",
                                  "percent_change": 45000.1, "price_change": 60865.2}},
            }},
        }
    return {"status": _cmc_status(), "data": data}


class RefDataVenue:
    def __init__(self) -> None:
        self.garbage: dict[str, deque[str]] = {}
        self.status: dict[str, deque[int]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.coins = 5

    def fail(self, name: str, *bodies: str) -> None:
        self.garbage.setdefault(name, deque()).extend(bodies)

    def refuse(self, name: str, *statuses: int) -> None:
        self.status.setdefault(name, deque()).extend(statuses)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/oxr/api/latest.json", self._oxr)
        app.router.add_get("/ecb/eurofxref-daily.xml", self._ecb)
        app.router.add_get("/cg/api/v3/coins/markets", self._coingecko)
        app.router.add_get("/cmc/v1/cryptocurrency/listings/latest", self._cmc_listing)
        app.router.add_get("/cmc/v2/cryptocurrency/price-performance-stats/latest", self._cmc_performance)
        return app

    def _fault(self, name: str, request: web.Request) -> web.Response | None:
        self.requests.append((name, dict(request.query)))
        if self.status.get(name):
            return web.json_response({"error": "unavailable"}, status=self.status[name].popleft())
        if self.garbage.get(name):
            return web.Response(status=200, text=self.garbage[name].popleft(), content_type="application/json")
        return None

    async def _oxr(self, request: web.Request) -> web.StreamResponse:
        if (fault := self._fault("oxr", request)) is not None:
            return fault
        if request.query.get("app_id") != OXR_APP_ID:
            return web.json_response({"error": True, "status": 401, "message": "invalid_app_id",
                                      "description": "Invalid App ID provided."}, status=401)
        return web.json_response(OXR_LATEST)

    async def _ecb(self, request: web.Request) -> web.StreamResponse:
        return self._fault("ecb", request) or web.Response(body=ECB_DAILY, content_type="text/xml")

    async def _coingecko(self, request: web.Request) -> web.StreamResponse:
        if (fault := self._fault("cg", request)) is not None:
            return fault
        per_page, page = int(request.query["per_page"]), int(request.query["page"])
        ranks = range((page - 1) * per_page + 1, min(page * per_page, self.coins) + 1)
        return web.json_response([coingecko_coin(rank) for rank in ranks])

    async def _cmc_listing(self, request: web.Request) -> web.StreamResponse:
        if (fault := self._fault("cmc", request)) is not None:
            return fault
        if request.headers.get("X-CMC_PRO_API_KEY") != CMC_KEY:
            return web.json_response({"status": _cmc_status(1001, "This API Key is invalid.")}, status=401)
        return web.json_response(cmc_listing(int(request.query["limit"])))

    async def _cmc_performance(self, request: web.Request) -> web.StreamResponse:
        if (fault := self._fault("cmc", request)) is not None:
            return fault
        return web.json_response(cmc_performance(request.query["id"].split(",")))
