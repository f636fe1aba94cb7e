"""The rate retriever: one rate per market per minute, stored once and published once (issue 23, the seed's rates).

For each market, the rate of the minute holding `at_ms` is the latest price the ticker cache
holds (`services.tickers`: the last trade price, else the mid of the touch), when that ticker
is fresh for the minute; when no feed runs for the market (so the cache may know nothing of
it), it is fetched through CCXT (`CcxtPrices`: `fetch_tickers`, one request per exchange,
errors translated by `venues.ccxt_errors` and retried only when retryable). A ticker is fresh
for the minute [m, m + 60 s) holding `at_ms` when its time lies in [at_ms - max_age, m + 60 s):
never one from a later minute (a retriever catching up an old minute must not stamp today's
price on it), never one older than `max_age` (a market whose data stopped has no rate).

Rows go to the store with INSERT .. ON CONFLICT DO NOTHING (`store.rates`): a repeat of the
same minute, by a retry, a restart or another process, writes nothing, and only the rows the
database actually took are published, as `Rate` on `rate.<exchange>.<quote>.<base>` (the
`rate` push channel carries them to clients). The scheduler calls `retrieve` every minute;
nothing here keeps time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import msgspec
import structlog

from coinwire.bus.base import Bus
from coinwire.core.breaker import DependencyUnavailable
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.core.symbols import normalize_symbol
from coinwire.feeds.ccxt_tickers import ticker_from_ccxt
from coinwire.messages import Rate, subject
from coinwire.services.breakers import Breakers
from coinwire.services.tickers import TickerReader, view_of_ticker
from coinwire.store.rates import MINUTE_MS, RateRow, insert_rates
from coinwire.store.store import Store
from coinwire.venues.ccxt_client import close_client
from coinwire.venues.ccxt_errors import Backoff, bad_response, translate
from coinwire.venues.errors import venue_unavailable

__all__ = ["CcxtPrices", "FetchedPrice", "PriceFetch", "Rates", "DEFAULT_MAX_AGE"]

log = structlog.get_logger("coinwire.rates")

DEFAULT_MAX_AGE = 120.0  # seconds: a ticker older than this, before the instant asked, is no rate of it
_NS_PER_MS = 1_000_000
_GARBAGE = (AttributeError, KeyError, IndexError, TypeError, ValueError)  # CCXT parsing a body it did not expect


class FetchedPrice(msgspec.Struct, frozen=True):
    """A market's current price from its exchange, and the exchange's time for it (unix ms)."""

    price: Decimal
    ts_ms: int


class PriceFetch(Protocol):
    """Current prices of some symbols of one exchange (symbols it has no price for are left out)."""

    async def __call__(self, exchange: str, symbols: Sequence[str]) -> dict[str, FetchedPrice]: ...


class CcxtPrices:
    """Current prices through CCXT `fetch_tickers`: one client per exchange, made by `client_factory(exchange)`.

    A failure goes through `ccxt_errors.translate`: a temporary or rate-limit error is tried
    again after a backoff (at most `attempts` tries in all); any other raises the CcxtError.
    """

    def __init__(self, client_factory: Callable[[str], Any], *, attempts: int = 3,
                 backoff: Callable[[], Backoff] = lambda: Backoff(base=0.5, cap=5.0), breakers: Breakers | None = None) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.client_factory = client_factory
        self.attempts = attempts
        self.backoff = backoff
        self.clients: dict[str, Any] = {}
        self.breakers = breakers  # each exchange's `rates:<exchange>` breaker: a paused one raises DependencyUnavailable

    async def __call__(self, exchange: str, symbols: Sequence[str]) -> dict[str, FetchedPrice]:
        client = self.clients.get(exchange)
        if client is None:
            client = self.clients[exchange] = self.client_factory(exchange)
        backoff = self.backoff()
        for attempt in range(1, self.attempts + 1):
            try:
                if self.breakers is None:
                    answer = await client.fetch_tickers(list(symbols))
                else:
                    async with self.breakers.get(f"rates:{exchange}").call(_unavailable):
                        answer = await client.fetch_tickers(list(symbols))
            except DependencyUnavailable:
                raise  # not tried: the exchange failed repeatedly (its rates this minute are missed, as for any failure)
            except _GARBAGE as exc:  # CCXT choked on a body that is not a ticker list: the venue's answer, retry
                error = bad_response(exchange, "fetch_tickers", f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
            except Exception as exc:  # noqa: BLE001 - every CCXT failure is translated in the one place (a bug raises TypeError)
                error = translate(exc, exchange=exchange, operation="fetch_tickers")
                error.__cause__ = exc
            else:
                return _prices(exchange, answer, symbols)
            if not error.retryable or attempt == self.attempts:
                raise error
            await asyncio.sleep(backoff.next_delay(error))
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        clients, self.clients = self.clients, {}
        for exchange, client in clients.items():
            await close_client(client, exchange)


def _unavailable(exc: BaseException) -> bool:
    """A fetch's failure that is the exchange's unavailability (an unparsable body is one too: retried above)."""
    return isinstance(exc, _GARBAGE) or venue_unavailable(exc)


def _prices(exchange: str, answer: Mapping[str, Any], symbols: Sequence[str]) -> dict[str, FetchedPrice]:
    """The asked symbols' prices from CCXT's unified tickers (an impossible ticker is left out, logged)."""
    out: dict[str, FetchedPrice] = {}
    now = time.time_ns()
    for symbol in symbols:
        raw = answer.get(symbol)
        if raw is None:
            continue
        try:
            view = view_of_ticker(ticker_from_ccxt(exchange, raw, now), now)
        except ValueError as exc:
            log.warning("impossible ticker left out", exchange=exchange, symbol=symbol, error=str(exc))
            continue
        if view is not None and view.symbol == symbol:
            out[symbol] = FetchedPrice(view.price, view.ts // _NS_PER_MS)
    return out


class Rates:
    """Stores and publishes one rate per market per minute; `retrieve(at_ms)` is the scheduler's job."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        tickers: TickerReader,
        fetch: PriceFetch | None,
        markets: Callable[[], Iterable[tuple[str, str]]],
        *,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """`markets`: the (exchange, symbol) pairs whose feeds run, asked at every retrieve (feeds come and go);
        `fetch`: prices of the markets no feed runs for (None: those get no rate); `max_age` in seconds."""
        if max_age <= 0:
            raise ValueError("max_age must be > 0 seconds")
        self.store = store
        self.bus = bus
        self.tickers = tickers
        self.fetch = fetch
        self.markets = markets
        self.max_age_ms = int(max_age * 1000)
        self.clock = clock
        self.missed = 0  # markets asked for that got no rate (stale or failing), since start

    async def retrieve(self, at_ms: int, markets: Sequence[tuple[str, str]] | None = None) -> int:
        """Store the rate of the minute holding `at_ms` for each market (None: every market with a running feed);
        publish each one stored; return how many were stored (0 when every one was stored before)."""
        minute = at_ms - at_ms % MINUTE_MS
        end = minute + MINUTE_MS
        running = set(self.markets())
        wanted = sorted(running) if markets is None else _checked(markets)
        received = self.clock() // _NS_PER_MS
        rows: list[RateRow] = []
        to_fetch: dict[str, list[str]] = {}
        for exchange, symbol in wanted:
            view = await self.tickers.get(exchange, symbol)
            if view is not None and at_ms - self.max_age_ms <= view.ts // _NS_PER_MS < end:
                rows.append(RateRow(exchange=exchange, symbol=symbol, minute_ms=minute, price=view.price, source="ticker",
                                    received_ms=received))
            elif (exchange, symbol) not in running and self.fetch is not None:
                to_fetch.setdefault(exchange, []).append(symbol)
            else:
                self._miss(exchange, symbol, minute, "no fresh ticker" if view is not None else "no ticker")
        for exchange, symbols in to_fetch.items():
            rows += await self._fetched(exchange, symbols, at_ms, minute, end)
        written = await insert_rates(self.store, rows)
        for row in written:
            await self.bus.publish(subject("rate", row.exchange, row.symbol),
                                   Rate(row.exchange, row.symbol, row.minute_ms, row.price, row.source))
        return len(written)

    async def _fetched(self, exchange: str, symbols: list[str], at_ms: int, minute: int, end: int) -> list[RateRow]:
        assert self.fetch is not None
        try:
            prices = await self.fetch(exchange, symbols)
        except CoinwireError as exc:  # CcxtError, or no CCXT exchange of that name: that exchange's rates are missed
            for symbol in symbols:
                self._miss(exchange, symbol, minute, exc.code)
            return []
        received = self.clock() // _NS_PER_MS
        rows = []
        for symbol in symbols:
            got = prices.get(symbol)
            if got is not None and at_ms - self.max_age_ms <= got.ts_ms < end:
                rows.append(RateRow(exchange=exchange, symbol=symbol, minute_ms=minute, price=got.price, source="ccxt",
                                    received_ms=received))
            else:
                self._miss(exchange, symbol, minute, "no fresh price from the exchange")
        return rows

    def _miss(self, exchange: str, symbol: str, minute: int, why: str) -> None:
        self.missed += 1
        log.info("no rate for this minute", exchange=exchange, symbol=symbol, minute_ms=minute, reason=why)


def _checked(markets: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The markets asked for, symbols in their unified form, each once; a malformed one refuses the whole call."""
    out: dict[tuple[str, str], None] = {}
    for exchange, symbol in markets:
        if not isinstance(exchange, str) or not exchange or len(exchange) > 64:
            raise InvalidInput("invalid_exchange", f"exchange must be a name like 'binance', got {exchange!r}")
        out[(exchange, normalize_symbol(symbol))] = None
    return list(out)
