"""The live feed: a real exchange's books and trades through CCXT, WebSocket first, polling as fallback.

`run` loads the exchange's markets (`load_markets`), announces the configured symbols as
exact Instruments, then keeps two loops per symbol, one for the book and one for trades:

- WebSocket (`watch_order_book` / `watch_trades` of ccxt.pro) when the exchange has it and
  `websocket` is on; a WebSocket failure switches that loop to polling at once, and the
  WebSocket is tried again after a growing pause (`ws_retry`, doubling, capped);
- polling (`fetch_order_book` / `fetch_trades`) every `poll_interval` seconds otherwise.

Every CCXT failure goes through `ccxt_errors.translate`: temporary and rate-limit errors are
retried with backoff, anything else stops that symbol's loop and is logged with its code.
While a loop of a symbol is failing, the symbol is reported unhealthy through `on_health`
(the gateway shows the exchange `degraded` and refuses orders); the first good book or
trade batch afterwards reports it healthy again.

Books go out as id-chained deltas (see `ccxt_state.BookMirror` for why), and the feed serves
the last published book of each symbol as the `SnapshotSource` a consumer resyncs from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import structlog

from coinwire.core.breaker import DependencyGuard
from coinwire.core.instruments import Instrument
from coinwire.core.symbols import normalize_symbol
from coinwire.feeds.base import HealthHook, Publish, subject_for
from coinwire.feeds.ccxt_state import BookMirror, TradeFilter
from coinwire.messages import BookSnapshot, Markets, subject
from coinwire.venues.ccxt_client import close_client, make_client
from coinwire.venues.ccxt_errors import Backoff, CcxtError, ErrorGroup, bad_response, translate
from coinwire.venues.ccxt_markets import LevelConverter, instrument_from_market
from coinwire.venues.errors import guarded_feed_call

_T = TypeVar("_T")

__all__ = ["CcxtFeed", "WEBSOCKET", "POLLING"]

log = structlog.get_logger("coinwire.feeds.ccxt")

WEBSOCKET = "websocket"
POLLING = "polling"
_BOOK = "book"
_TRADES = "trades"


class CcxtFeed:
    """Books and trades of `symbols` on the CCXT exchange `ccxt_id`, published as exchange `exchange`."""

    name = "ccxt"

    def __init__(
        self,
        exchange: str,
        ccxt_id: str,
        symbols: Iterable[str],
        *,
        poll_interval: float = 1.0,
        depth: int = 100,
        trade_limit: int = 100,
        websocket: bool = True,
        urls: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        rate_limit: bool = True,
        backoff: Callable[[], Backoff] = Backoff,
        ws_retry: float = 30.0,
        clock: Callable[[], int] = time.time_ns,
        client_factory: Callable[[], Any] | None = None,
        breaker: DependencyGuard | None = None,
    ) -> None:
        self.symbols = [normalize_symbol(s) for s in symbols]
        if not self.symbols:
            raise ValueError("a ccxt feed needs at least one symbol")
        if poll_interval <= 0 or depth < 1 or trade_limit < 1 or ws_retry <= 0 or timeout <= 0:
            raise ValueError("poll_interval, ws_retry and timeout must be > 0; depth and trade_limit >= 1")
        self.exchange = exchange
        self.ccxt_id = ccxt_id
        self.poll_interval = poll_interval
        self.depth = depth
        self.trade_limit = trade_limit
        self.websocket = websocket
        self.ws_retry = ws_retry
        self.on_health: HealthHook | None = None
        self._new_backoff = backoff
        self._clock = clock
        self._client_factory = client_factory or (
            lambda: make_client(ccxt_id, urls=urls, options=options, timeout=timeout, rate_limit=rate_limit)
        )
        self.client: Any = None
        self._instruments: dict[str, Instrument] = {}
        self._mirrors: dict[str, BookMirror] = {}
        self.transport: dict[tuple[str, str], str] = {}  # (symbol, "book" | "trades") -> websocket | polling
        self.errors: dict[tuple[str, str], CcxtError] = {}  # the last failure of each loop, while failing
        self.stopped: dict[tuple[str, str], CcxtError] = {}  # loops that gave up (operational errors)
        self._unhealthy: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.breaker = breaker  # `feed:<exchange>`: the REST calls (markets, polled books and trades) pass it

    # --- Feed / SnapshotSource -------------------------------------------------------------
    def instruments(self) -> list[Instrument]:
        return list(self._instruments.values())

    def snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        """The book this feed last published for `symbol` (None before the first one)."""
        mirror = self._mirrors.get(symbol)
        if exchange != self.exchange or mirror is None or not mirror.published:
            return None
        return mirror.snapshot()

    async def run(self, publish: Publish) -> None:
        """Load markets, publish `Markets`, then stream every symbol until closed.

        Raises CcxtError when the markets cannot be loaded for a reason retrying will not
        fix (unknown exchange id, bad symbol, authentication), or when a loop hits a bug.
        """
        self._closed = False
        self._tasks = []
        self.client = self._client_factory()
        try:
            await self._load_markets()
            if self._closed:
                return
            await publish(subject("markets", self.exchange), Markets(self.exchange, self.instruments()))
            for symbol in self.symbols:
                for kind, loop in ((_BOOK, self._book_loop), (_TRADES, self._trade_loop)):
                    task = asyncio.create_task(loop(symbol, publish), name=f"ccxt-{self.exchange}-{symbol}-{kind}")
                    self._tasks.append(task)
            await self._wait_tasks()
        finally:
            await self._close_client()

    async def close(self) -> None:
        """Stop every loop and close the exchange's connections; `run` returns soon after."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await self._close_client()

    # --- markets ---------------------------------------------------------------------------
    async def _load_markets(self) -> None:
        backoff = self._new_backoff()
        client = self.client
        while not self._closed:
            try:
                await self._rest(lambda: client.load_markets(reload=backoff.attempts > 0))
                if not client.markets:
                    # a truncated exchangeInfo body parses as "no markets" instead of raising
                    raise bad_response(self.exchange, "load_markets", "no markets")
                break
            except Exception as exc:
                if self._closed:
                    return
                error = translate(exc, exchange=self.exchange, operation="load_markets")
                if not error.retryable:
                    raise error from exc
                delay = backoff.next_delay(error)
                log.warning("ccxt load_markets failed, retrying", exchange=self.exchange, code=error.code, delay=delay)
                await asyncio.sleep(delay)
        if self._closed:
            return
        markets = client.markets or {}
        for symbol in self.symbols:
            market = markets.get(symbol)
            if market is None:
                raise CcxtError(
                    ErrorGroup.OPERATIONAL,
                    "exchange_bad_symbol",
                    f"{self.ccxt_id} has no market {symbol}",
                    exchange=self.exchange,
                    symbol=symbol,
                )
            instrument = instrument_from_market(self.exchange, market, client.precisionMode)
            self._instruments[symbol] = instrument
            self._mirrors[symbol] = BookMirror(LevelConverter(instrument), self.depth)

    # --- loops -----------------------------------------------------------------------------
    def _can_watch(self, method: str) -> bool:
        return self.websocket and bool(self.client.has.get(method))

    async def _book_loop(self, symbol: str, publish: Publish) -> None:
        mirror = self._mirrors[symbol]
        client = self.client

        async def watch() -> bool:
            # no limit: CCXT keeps the exchange's full stream book (Binance: 1000 levels) and drops the
            # worst levels beyond a limit for good, so a book limited to `depth` frays at its bottom
            return await self._publish_book(mirror, await client.watch_order_book(symbol), publish)

        async def poll() -> bool:
            return await self._publish_book(mirror, await self._rest(lambda: client.fetch_order_book(symbol, self.depth)),
                                            publish)

        await self._stream(symbol, _BOOK, "watchOrderBook", watch, poll)

    async def _trade_loop(self, symbol: str, publish: Publish) -> None:
        trades = TradeFilter(self._mirrors[symbol].convert)
        client = self.client

        async def watch() -> bool:
            batch = await client.watch_trades(symbol)
            return await self._publish_trades(trades.new(batch), publish)

        async def poll() -> bool:
            batch = await self._rest(lambda: client.fetch_trades(symbol, None, self.trade_limit))
            if not trades.started:
                trades.baseline(batch)
                return True
            return await self._publish_trades(trades.new(batch), publish)

        await self._stream(symbol, _TRADES, "watchTrades", watch, poll)

    async def _stream(
        self,
        symbol: str,
        kind: str,
        watch_method: str,
        watch: Callable[[], Awaitable[bool]],
        poll: Callable[[], Awaitable[bool]],
    ) -> None:
        """One symbol's book or trade loop: WebSocket while it works, polling while it does not."""
        key = (symbol, kind)
        can_watch = self._can_watch(watch_method)
        mode = WEBSOCKET if can_watch else POLLING
        backoff = self._new_backoff()
        ws_backoff = Backoff(base=self.ws_retry, cap=max(self.ws_retry, 600.0), jitter=0.0)
        retry_ws_at = 0.0
        polling_works = False  # the last poll succeeded: a failed WebSocket retry changes nothing
        clock = asyncio.get_running_loop().time
        while not self._closed:
            self.transport[key] = mode
            try:
                await (watch() if mode == WEBSOCKET else poll())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - translate() puts every error in its group
                error = translate(exc, exchange=self.exchange, operation=f"{kind} {symbol} ({mode})")
                if error.group is ErrorGroup.CLOSED or self._closed:
                    return
                if mode == WEBSOCKET:
                    if not error.retryable:  # the stream is refused for good: poll from now on
                        can_watch = False
                        log.error("ccxt websocket refused, polling only", exchange=self.exchange, symbol=symbol,
                                  kind=kind, code=error.code, error=error.message)
                    if not polling_works:
                        self.errors[key] = error
                        await self._health(symbol)
                    mode = POLLING
                    retry_ws_at = clock() + ws_backoff.next_delay()
                    log.warning("ccxt websocket failed, polling instead", exchange=self.exchange, symbol=symbol,
                                kind=kind, code=error.code, retry_in=round(retry_ws_at - clock(), 3))
                    continue
                polling_works = False
                self.errors[key] = error
                await self._health(symbol)
                if not error.retryable:
                    self.stopped[key] = error
                    log.error("ccxt feed loop stopped", exchange=self.exchange, symbol=symbol, kind=kind,
                              code=error.code, error=error.message)
                    return
                delay = backoff.next_delay(error)
                log.warning("ccxt poll failed, retrying", exchange=self.exchange, symbol=symbol, kind=kind,
                            code=error.code, delay=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if key in self.errors:
                del self.errors[key]
                await self._health(symbol)
            if mode == WEBSOCKET:
                ws_backoff.reset()
                polling_works = False
                continue
            polling_works = True
            if can_watch and clock() >= retry_ws_at:
                mode = WEBSOCKET
                continue
            await asyncio.sleep(self.poll_interval)

    async def _rest(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """One REST call through the feed's breaker; refused, it fails as a temporary error (the loop backs off)."""
        return await guarded_feed_call(self.breaker, call, self.exchange)

    # --- publishing ------------------------------------------------------------------------
    async def _publish_book(self, mirror: BookMirror, book: Mapping[str, Any], publish: Publish) -> bool:
        if not book.get("bids") and not book.get("asks"):
            # CCXT parses a truncated or non-JSON depth body as an empty book instead of raising;
            # publishing it would wipe the mirrored book, so it counts as a bad response (retried).
            raise bad_response(self.exchange, f"order book {mirror.convert.instrument.symbol}", "empty book")
        message = mirror.update(book, self._clock())
        if message is None:
            return False
        await publish(subject_for(message), message)
        ticker = mirror.ticker()
        if ticker is not None:
            await publish(subject_for(ticker), ticker)
        return True

    async def _publish_trades(self, trades: list[Any], publish: Publish) -> bool:
        for tick in trades:
            await publish(subject_for(tick), tick)
        return bool(trades)

    async def _health(self, symbol: str) -> None:
        """Tell the gateway when a symbol's data stops or starts flowing (once per change).

        A symbol is healthy while none of its loops is failing.
        """
        healthy = not any(s == symbol for s, _ in self.errors)
        if healthy == (symbol not in self._unhealthy):
            return
        if healthy:
            self._unhealthy.discard(symbol)
            log.info("ccxt feed recovered", exchange=self.exchange, symbol=symbol)
        else:
            self._unhealthy.add(symbol)
        if self.on_health is not None:
            await self.on_health(symbol, healthy)

    async def _wait_tasks(self) -> None:
        """Wait for the loops; a loop that crashed (a bug, not a venue error) ends the feed."""
        tasks = self._tasks
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                for other in tasks:
                    other.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.stopped and not self._closed:
            raise next(iter(self.stopped.values()))  # every loop gave up: the feed has stopped

    async def _close_client(self) -> None:
        client, self.client = self.client, None
        await close_client(client, self.exchange)
