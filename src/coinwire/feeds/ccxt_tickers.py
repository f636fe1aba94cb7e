"""The ticker streamer: one exchange's tickers through CCXT, WebSocket first, polling while it fails.

`TickerStreamer` follows the last price (and touch and 24 h figures where the venue sends
them) of a list of symbols, or of every spot market of the exchange, and publishes each
change as a `Ticker` on `ticker.<exchange>.<quote>.<base>`:

- WebSocket: `watch_tickers` (ccxt.pro; Binance's mini-ticker streams) when the exchange
  has it and `websocket` is on;
- polling: `fetch_tickers` every `poll_interval` seconds, when the exchange has no
  WebSocket, and *while* the WebSocket is failing: a WebSocket that is refused or drops
  switches to polling at once, and is tried again after an exponential pause with jitter
  (`ws_backoff`, reset by the first ticker the WebSocket delivers again), so many
  streamers that lost the venue together do not all reconnect in the same instant.

Every CCXT failure goes through `ccxt_errors.translate`: temporary and rate-limit errors are
retried with backoff, an operational one (bad symbol, authentication) stops the streamer.
A ticker that cannot be true (no symbol, a non-positive or non-numeric price) is dropped
and counted in `rejected`, never published. Polling answers the whole list every time, so
only tickers whose figures changed are published.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from coinwire.core.breaker import DependencyGuard
from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.symbols import normalize_symbol
from coinwire.feeds.base import Publish, subject_for
from coinwire.messages import Ticker
from coinwire.venues.ccxt_client import close_client, make_client
from coinwire.venues.ccxt_errors import Backoff, CcxtError, ErrorGroup, bad_response, translate
from coinwire.venues.errors import guarded_feed_call

__all__ = ["TickerStreamer", "ticker_from_ccxt", "WEBSOCKET", "POLLING"]

log = structlog.get_logger("coinwire.feeds.tickers")

WEBSOCKET = "websocket"
POLLING = "polling"
_NS_PER_MS = 1_000_000
_FIELDS = ("last", "bid", "ask", "open", "high", "low", "base_volume", "quote_volume")
_GARBAGE = (AttributeError, KeyError, IndexError, TypeError, ValueError)  # CCXT parsing a body that is not what it expects
_CCXT_FIELDS = ("last", "bid", "ask", "open", "high", "low", "baseVolume", "quoteVolume")


def _number(value: object) -> Decimal | None:
    """The exact decimal of a CCXT number (floats through their shortest repr); None when absent.

    Raises ValueError for anything that is not a finite, non-negative number.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"not a finite non-negative number: {value!r}")
    return number


def ticker_from_ccxt(exchange: str, ticker: Mapping[str, Any], now_ns: int) -> Ticker:
    """A CCXT unified ticker as a `Ticker`; raises ValueError for one that cannot be true.

    A ticker needs a spot `BASE/QUOTE` symbol and at least one positive price (last, bid or
    ask); prices are exact decimals, a zero bid or ask (an empty side) counts as absent.
    """
    try:
        symbol = normalize_symbol(ticker.get("symbol"))
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    values = {name: _number(ticker.get(key)) for name, key in zip(_FIELDS, _CCXT_FIELDS, strict=True)}
    for side in ("bid", "ask"):
        if values[side] == 0:
            values[side] = None
    if values["last"] == 0:
        raise ValueError(f"{symbol}: last price 0")
    if values["last"] is None and values["bid"] is None and values["ask"] is None:
        raise ValueError(f"{symbol}: no price at all")
    timestamp = ticker.get("timestamp")
    ts = timestamp * _NS_PER_MS if isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp > 0 else now_ns
    return Ticker(exchange, symbol, ts, **values)


class TickerStreamer:
    """Tickers of `symbols` (None: every spot market) on the CCXT exchange `ccxt_id`, published as `exchange`."""

    name = "ccxt-tickers"

    def __init__(
        self,
        exchange: str,
        ccxt_id: str,
        symbols: Iterable[str] | None = None,
        *,
        quotes: Iterable[str] = (),
        poll_interval: float = 10.0,
        websocket: bool = True,
        ws_backoff: Callable[[], Backoff] = lambda: Backoff(base=1.0, cap=300.0, jitter=0.5),
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], int] = time.time_ns,
        client_factory: Callable[[], Any] | None = None,
        urls: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        rate_limit: bool = True,
        breaker: DependencyGuard | None = None,
    ) -> None:
        if poll_interval <= 0 or timeout <= 0:
            raise ValueError("poll_interval and timeout must be > 0 seconds")
        self.exchange = exchange
        self.ccxt_id = ccxt_id
        self.symbols = None if symbols is None else sorted({normalize_symbol(s) for s in symbols})
        if self.symbols == []:
            raise ValueError("symbols must be None (every market) or a non-empty list")
        self.quotes = frozenset(q.upper() for q in quotes)
        self.poll_interval = poll_interval
        self.websocket = websocket
        self.mode = POLLING
        self.error: CcxtError | None = None  # the last failure, while failing
        self.ws_failures = 0  # WebSocket failures since the streamer started
        self.rejected = 0  # tickers dropped as impossible
        self.published = 0
        self._new_ws_backoff = ws_backoff
        self._new_backoff = backoff
        self._clock = clock
        self._client_factory = client_factory or (lambda: _make_client(ccxt_id, urls, options, timeout, rate_limit))
        self._last: dict[str, tuple[object, ...]] = {}
        self.client: Any = None
        self._closed = False
        self.breaker = breaker  # `feed:<exchange>`: markets and polled tickers pass it (the book feed's too)

    def instruments(self) -> list[Instrument]:
        """A ticker streamer announces no instruments: it only prices markets."""
        return []

    async def run(self, publish: Publish) -> None:
        """Stream until closed; raises CcxtError when the venue refuses for good (bad symbol, auth)."""
        self._closed = False
        self.client = self._client_factory()
        try:
            await self._load_markets()
            if not self._closed:
                await self._loop(publish)
        finally:
            await self._close_client()

    async def close(self) -> None:
        """Stop at the next await; `run` returns soon after."""
        self._closed = True
        await self._close_client()

    async def _load_markets(self) -> None:
        backoff = self._new_backoff()
        while not self._closed:
            try:
                await guarded_feed_call(self.breaker, self.client.load_markets, self.exchange)
            except Exception as exc:  # noqa: BLE001 - translate() puts every error in its group
                error = self._translate(exc, "load_markets")
                if error is None:
                    return
                await asyncio.sleep(backoff.next_delay(error))
                continue
            if self.symbols is not None:
                missing = [s for s in self.symbols if s not in (self.client.markets or {})]
                if missing:
                    raise CcxtError(ErrorGroup.OPERATIONAL, "exchange_bad_symbol", f"{self.ccxt_id} has no market {missing[0]}",
                                    exchange=self.exchange, symbol=missing[0])
            return

    def _translate(self, exc: Exception, operation: str) -> CcxtError | None:
        """The error to retry after, or None when the streamer was closed; raises what must stop it."""
        try:
            error = translate(exc, exchange=self.exchange, operation=f"tickers {operation}")
        except TypeError:
            if not isinstance(exc, _GARBAGE):
                raise
            # CCXT hands a body it could not decode (a truncated JSON) to its parser as a string,
            # which then fails on it: that is the venue answering garbage, retried like one
            error = bad_response(self.exchange, f"tickers {operation}", f"unparsable answer ({type(exc).__name__}: {exc})")
        if self._closed or error.group is ErrorGroup.CLOSED:
            return None
        if not error.retryable and operation != WEBSOCKET:
            log.error("ticker streamer stopped", exchange=self.exchange, code=error.code, error=error.message)
            raise error from exc
        self.error = error
        return error

    async def _fetch_tickers(self) -> Any:
        return await self.client.fetch_tickers(self.symbols)

    async def _loop(self, publish: Publish) -> None:
        """WebSocket while it works, polling while it does not, the WebSocket retried after a growing pause."""
        can_watch = self.websocket and bool(self.client.has.get("watchTickers"))
        self.mode = WEBSOCKET if can_watch else POLLING
        backoff = self._new_backoff()
        ws_backoff = self._new_ws_backoff()
        retry_ws_at = 0.0
        clock = asyncio.get_running_loop().time
        while not self._closed:
            try:
                if self.mode == WEBSOCKET:
                    batch = await self.client.watch_tickers(self.symbols)
                else:
                    batch = await guarded_feed_call(self.breaker, self._fetch_tickers, self.exchange)
                    if not batch:  # a truncated or empty body parses as "no tickers" instead of raising
                        raise bad_response(self.exchange, "fetch_tickers", "no tickers")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - translate() puts every error in its group
                error = self._translate(exc, self.mode)
                if error is None:
                    return
                if self.mode == WEBSOCKET:
                    self.ws_failures += 1
                    can_watch = error.retryable  # a refusal for good (not supported, auth): poll from now on
                    retry_ws_at = clock() + ws_backoff.next_delay(error)
                    log.warning("ticker websocket failed, polling instead", exchange=self.exchange, code=error.code,
                                retry_in=round(retry_ws_at - clock(), 3) if can_watch else None)
                    self.mode = POLLING
                    continue
                delay = backoff.next_delay(error)
                log.warning("ticker poll failed, retrying", exchange=self.exchange, code=error.code, delay=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.error = None
            await self._publish(batch, publish)
            if self.mode == WEBSOCKET:
                ws_backoff.reset()
                continue
            if can_watch and clock() >= retry_ws_at:
                self.mode = WEBSOCKET
                continue
            await asyncio.sleep(self.poll_interval)

    async def _publish(self, batch: Mapping[str, Any], publish: Publish) -> None:
        now = self._clock()
        for raw in batch.values():
            if not isinstance(raw, Mapping):
                self.rejected += 1
                continue
            try:
                ticker = ticker_from_ccxt(self.exchange, raw, now)
            except ValueError as exc:
                self.rejected += 1
                log.warning("impossible ticker dropped", exchange=self.exchange, error=str(exc))
                continue
            if self.quotes and ticker.symbol.partition("/")[2] not in self.quotes:
                continue
            if self.symbols is None and (self.client.markets or {}).get(ticker.symbol, {}).get("spot") is False:
                continue  # every market: spot only (a swap's `BTC/USDT:USDT` never parses anyway)
            figures = (ticker.ts, *(getattr(ticker, f) for f in _FIELDS))
            if self._last.get(ticker.symbol) == figures:
                continue
            self._last[ticker.symbol] = figures
            await publish(subject_for(ticker), ticker)
            self.published += 1

    async def _close_client(self) -> None:
        client, self.client = self.client, None
        await close_client(client, self.exchange)


def _make_client(ccxt_id: str, urls: Mapping[str, str] | None, options: Mapping[str, Any] | None, timeout: float,
                 rate_limit: bool) -> Any:
    return make_client(ccxt_id, urls=urls, options=options, timeout=timeout, rate_limit=rate_limit)
