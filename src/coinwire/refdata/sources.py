"""Reference-data sources: fiat FX rates (OpenExchangeRates, ECB) and top-coin market data (CoinGecko, CoinMarketCap).

Each source fetches over HTTP and parses its own documented payload into exact types:

- OpenExchangeRates `GET /api/latest.json?app_id=KEY`: `{"timestamp": s, "base": "USD", "rates": {"EUR": 0.92, ...}}`;
- ECB daily reference rates `eurofxref-daily.xml`: `<Cube time="YYYY-MM-DD"><Cube currency="USD" rate="1.0922"/>...`,
  euro based, published around 16:00 CET on TARGET working days;
- CoinGecko `GET /api/v3/coins/markets?vs_currency=usd&order=market_cap_desc&per_page=N&page=P`:
  a list of `{id, symbol, name, current_price, market_cap, market_cap_rank, ath, ath_date, last_updated}`;
- CoinMarketCap `GET /v1/cryptocurrency/listings/latest?limit=N&convert=USD` (`data[].cmc_rank`,
  `data[].quote.USD.{price, market_cap}`) and, for the all-time high,
  `GET /v2/cryptocurrency/price-performance-stats/latest?id=..&time_period=all_time`
  (`data[id].periods.all_time.quote.USD.high`, `high_timestamp`); both with the `X-CMC_PRO_API_KEY` header.

A payload that is not what the documentation promises raises `SourceError("source_garbage")`
naming what is wrong; the caller logs it, counts it and keeps its last good value. Numbers
are read from the JSON text as Decimals (never through a float).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
import msgspec

__all__ = [
    "FxRates", "CoinStat", "SourceError", "FxSource", "CoinSource", "OpenExchangeRates", "EcbRates", "CoinGecko",
    "CoinMarketCap", "parse_openexchangerates", "parse_ecb", "parse_coingecko", "parse_coinmarketcap",
]

_NS = 1_000_000_000
_CURRENCY = re.compile(r"[A-Z]{3}")
_ECB_NS = {"e": "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"}
_ECB_PUBLISHED = dt.time(16, 0)  # "around 16:00 CET" (Europe/Berlin keeps CET/CEST)
_CET = ZoneInfo("Europe/Berlin")
_decode_json = msgspec.json.Decoder(float_hook=Decimal).decode  # numbers as the exact decimals the source wrote


class FxRates(msgspec.Struct, frozen=True):
    """One source's fiat rates: 1 `base` = `rates[q]` q, as of `ts` (ns, the source's own time)."""

    source: str
    base: str
    ts: int
    rates: dict[str, Decimal]


class CoinStat(msgspec.Struct, frozen=True, kw_only=True):
    """One coin of a top-N list: rank, USD price, market cap and all-time high, as of `ts` (ns)."""

    source: str
    coin_id: str  # the source's own id ("bitcoin", "1")
    symbol: str  # upper case ("BTC")
    name: str
    rank: int
    price: Decimal  # USD
    market_cap: Decimal | None = None  # USD
    ath: Decimal | None = None  # USD
    ath_ts: int | None = None  # ns
    ts: int


class SourceError(Exception):
    """A source could not give data: `source_unreachable`, `source_http_error` or `source_garbage`."""

    def __init__(self, code: str, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.code = code
        self.source = source


class FxSource(Protocol):
    name: str

    async def fetch(self, http: httpx.AsyncClient) -> FxRates: ...


class CoinSource(Protocol):
    name: str

    async def fetch(self, http: httpx.AsyncClient, top: int) -> list[CoinStat]: ...


# --- parsing helpers ------------------------------------------------------------------------------
def _garbage(source: str, message: str) -> SourceError:
    return SourceError("source_garbage", source, message)


def _json(source: str, body: bytes) -> Any:
    try:
        return _decode_json(body)
    except msgspec.DecodeError as exc:
        raise _garbage(source, f"not JSON ({exc})") from None


def _positive(source: str, value: object, what: str, *, optional: bool = False) -> Decimal | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _garbage(source, f"{what} is not a number: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _garbage(source, f"{what} is not a number: {value!r}") from None
    if not number.is_finite() or number <= 0:
        if optional and number == 0:
            return None
        raise _garbage(source, f"{what} must be positive, got {value!r}")
    return number


def _iso_ns(source: str, value: object, what: str) -> int:
    if not isinstance(value, str):
        raise _garbage(source, f"{what} is not a timestamp: {value!r}")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _garbage(source, f"{what} is not an ISO 8601 timestamp: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return calendar.timegm(moment.utctimetuple()) * _NS + moment.microsecond * 1000


def _rates(source: str, raw: object, base: str) -> dict[str, Decimal]:
    if not isinstance(raw, Mapping) or not raw:
        raise _garbage(source, "no rates")
    rates: dict[str, Decimal] = {}
    for code, value in raw.items():
        if not isinstance(code, str) or not _CURRENCY.fullmatch(code):
            raise _garbage(source, f"{code!r} is not a currency code")
        if code != base:
            rates[code] = _positive(source, value, f"rate {code}")  # type: ignore[assignment]
    if not rates:
        raise _garbage(source, "no rates besides the base")
    return rates


# --- FX -----------------------------------------------------------------------------------------
def parse_openexchangerates(body: bytes, source: str = "openexchangerates") -> FxRates:
    data = _json(source, body)
    if not isinstance(data, Mapping):
        raise _garbage(source, "the answer is not an object")
    if data.get("error"):
        raise _garbage(source, f"error {data.get('status')}: {data.get('message')} {data.get('description', '')}".strip())
    base, stamp = data.get("base"), data.get("timestamp")
    if not isinstance(base, str) or not _CURRENCY.fullmatch(base):
        raise _garbage(source, f"base {base!r} is not a currency code")
    if isinstance(stamp, bool) or not isinstance(stamp, int) or stamp <= 0:
        raise _garbage(source, f"timestamp {stamp!r} is not unix seconds")
    return FxRates(source, base, stamp * _NS, _rates(source, data.get("rates"), base))


def parse_ecb(body: bytes, source: str = "ecb") -> FxRates:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise _garbage(source, f"not XML ({exc})") from None
    day = root.find("e:Cube/e:Cube[@time]", _ECB_NS)
    if day is None:
        raise _garbage(source, "no <Cube time=...> element")
    try:
        date = dt.date.fromisoformat(day.get("time", ""))
    except ValueError:
        raise _garbage(source, f"time {day.get('time')!r} is not a date") from None
    published = dt.datetime.combine(date, _ECB_PUBLISHED, _CET)
    raw = {cube.get("currency"): cube.get("rate") for cube in day.findall("e:Cube", _ECB_NS)}
    return FxRates(source, "EUR", int(published.timestamp()) * _NS, _rates(source, raw, "EUR"))


class OpenExchangeRates:
    """Latest rates from openexchangerates.org (USD based on the free plan); needs an App ID."""

    name = "openexchangerates"

    def __init__(self, app_id: str, url: str = "https://openexchangerates.org/api/latest.json") -> None:
        if not app_id:
            raise ValueError("OpenExchangeRates needs an App ID")
        self.app_id = app_id
        self.url = url

    async def fetch(self, http: httpx.AsyncClient) -> FxRates:
        return parse_openexchangerates(await _get(http, self.name, self.url, params={"app_id": self.app_id}), self.name)


class EcbRates:
    """The ECB's euro reference rates of the latest working day (no key)."""

    name = "ecb"

    def __init__(self, url: str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml") -> None:
        self.url = url

    async def fetch(self, http: httpx.AsyncClient) -> FxRates:
        return parse_ecb(await _get(http, self.name, self.url), self.name)


# --- coins --------------------------------------------------------------------------------------
def parse_coingecko(body: bytes, source: str = "coingecko") -> list[CoinStat]:
    data = _json(source, body)
    if not isinstance(data, list):
        raise _garbage(source, "the answer is not a list of coins")
    out: list[CoinStat] = []
    for index, coin in enumerate(data):
        if not isinstance(coin, Mapping):
            raise _garbage(source, f"coin {index} is not an object")
        coin_id, symbol, rank = coin.get("id"), coin.get("symbol"), coin.get("market_cap_rank")
        if not isinstance(coin_id, str) or not isinstance(symbol, str) or not coin_id or not symbol:
            raise _garbage(source, f"coin {index} has no id or symbol")
        if rank is None:
            continue  # CoinGecko lists coins it cannot rank (no market cap) last: not part of a top N
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise _garbage(source, f"{coin_id}: market_cap_rank {rank!r}")
        ath_date = coin.get("ath_date")
        out.append(CoinStat(
            source=source, coin_id=coin_id, symbol=symbol.upper(), name=str(coin.get("name") or symbol), rank=rank,
            price=_positive(source, coin.get("current_price"), f"{coin_id} current_price"),  # type: ignore[arg-type]
            market_cap=_positive(source, coin.get("market_cap"), f"{coin_id} market_cap", optional=True),
            ath=_positive(source, coin.get("ath"), f"{coin_id} ath", optional=True),
            ath_ts=None if ath_date is None else _iso_ns(source, ath_date, f"{coin_id} ath_date"),
            ts=_iso_ns(source, coin.get("last_updated"), f"{coin_id} last_updated"),
        ))
    if not out:
        raise _garbage(source, "no ranked coins")
    return out


def parse_coinmarketcap(listing: bytes, performance: bytes | None = None, source: str = "coinmarketcap") -> list[CoinStat]:
    """Coins of a `listings/latest` answer, with all-time highs from `price-performance-stats/latest` when given."""
    data = _cmc_data(source, listing)
    if not isinstance(data, list):
        raise _garbage(source, "listings data is not a list")
    highs: dict[str, tuple[Decimal | None, int | None]] = {}
    if performance is not None:
        stats = _cmc_data(source, performance)
        entries = stats.values() if isinstance(stats, Mapping) else stats if isinstance(stats, list) else None
        if entries is None:
            raise _garbage(source, "price performance data is neither an object nor a list")
        for entry in entries:
            try:
                period = entry["periods"]["all_time"]
                high = period["quote"]["USD"].get("high")
                stamp = period["quote"]["USD"].get("high_timestamp") or period.get("high_timestamp")
                highs[str(entry["id"])] = (
                    _positive(source, high, f"{entry['id']} all-time high", optional=True),
                    None if stamp is None else _iso_ns(source, stamp, f"{entry['id']} high_timestamp"),
                )
            except (KeyError, TypeError, AttributeError):
                raise _garbage(source, "a price performance entry lacks periods.all_time.quote.USD") from None
    out: list[CoinStat] = []
    for index, coin in enumerate(data):
        try:
            coin_id, symbol, rank, usd = str(coin["id"]), coin["symbol"], coin["cmc_rank"], coin["quote"]["USD"]
        except (KeyError, TypeError):
            raise _garbage(source, f"coin {index} lacks id, symbol, cmc_rank or quote.USD") from None
        if not isinstance(symbol, str) or isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise _garbage(source, f"coin {index}: symbol {symbol!r}, cmc_rank {rank!r}")
        ath, ath_ts = highs.get(coin_id, (None, None))
        out.append(CoinStat(
            source=source, coin_id=coin_id, symbol=symbol.upper(), name=str(coin.get("name") or symbol), rank=rank,
            price=_positive(source, usd.get("price"), f"{symbol} price"),  # type: ignore[arg-type]
            market_cap=_positive(source, usd.get("market_cap"), f"{symbol} market_cap", optional=True),
            ath=ath, ath_ts=ath_ts,
            ts=_iso_ns(source, usd.get("last_updated") or coin.get("last_updated"), f"{symbol} last_updated"),
        ))
    if not out:
        raise _garbage(source, "no coins")
    return out


def _cmc_data(source: str, body: bytes) -> Any:
    payload = _json(source, body)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("status"), Mapping):
        raise _garbage(source, "the answer has no status object")
    status = payload["status"]
    if status.get("error_code") not in (0, "0", None):
        raise _garbage(source, f"error {status.get('error_code')}: {status.get('error_message')}")
    return payload.get("data")


class CoinGecko:
    """Top coins by market cap from CoinGecko (an API key is optional: demo or pro, sent as its header)."""

    name = "coingecko"
    _PAGE = 250  # the largest page CoinGecko serves

    def __init__(self, url: str = "https://api.coingecko.com/api/v3", api_key: str = "", pro: bool = False) -> None:
        self.url = url.rstrip("/")
        self.headers = {("x-cg-pro-api-key" if pro else "x-cg-demo-api-key"): api_key} if api_key else {}

    async def fetch(self, http: httpx.AsyncClient, top: int) -> list[CoinStat]:
        out: list[CoinStat] = []
        page = 1
        while len(out) < top:
            per_page = min(self._PAGE, top)
            params = {"vs_currency": "usd", "order": "market_cap_desc", "per_page": per_page, "page": page}
            body = await _get(http, self.name, f"{self.url}/coins/markets", params=params, headers=self.headers)
            coins = parse_coingecko(body, self.name)
            out += coins
            if len(coins) < per_page:
                break
            page += 1
        return out[:top]


class CoinMarketCap:
    """Top coins from CoinMarketCap (needs a key): listings, then all-time highs for those coins."""

    name = "coinmarketcap"

    def __init__(self, api_key: str, url: str = "https://pro-api.coinmarketcap.com") -> None:
        if not api_key:
            raise ValueError("CoinMarketCap needs an API key")
        self.url = url.rstrip("/")
        self.headers = {"X-CMC_PRO_API_KEY": api_key, "Accept": "application/json"}

    async def fetch(self, http: httpx.AsyncClient, top: int) -> list[CoinStat]:
        listing = await _get(http, self.name, f"{self.url}/v1/cryptocurrency/listings/latest",
                             params={"start": 1, "limit": top, "convert": "USD"}, headers=self.headers)
        ids = [coin.coin_id for coin in parse_coinmarketcap(listing, None, self.name)]
        performance = await _get(http, self.name, f"{self.url}/v2/cryptocurrency/price-performance-stats/latest",
                                 params={"id": ",".join(ids), "time_period": "all_time", "convert": "USD"},
                                 headers=self.headers)
        return parse_coinmarketcap(listing, performance, self.name)


async def _get(http: httpx.AsyncClient, source: str, url: str, *, params: Mapping[str, Any] | None = None,
               headers: Mapping[str, str] | None = None) -> bytes:
    try:
        response = await http.get(url, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise SourceError("source_unreachable", source, f"{type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise SourceError("source_http_error", source, f"HTTP {response.status_code}: {response.text[:200]}")
    return response.content
