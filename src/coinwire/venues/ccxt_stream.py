"""A live venue's execution reports: the user data stream through CCXT, REST polling when it is unavailable.

While the WebSocket works, `watch_orders` gives order changes (OrderReport, no fills) and
`watch_my_trades` gives our trades (FillReport); a slow reconciliation poll of the orders the
venue tracks runs beside them (every `reconcile_interval`, and once at connection), because
events sent before the subscription took hold, or lost with a connection, are otherwise gone.
When the WebSocket fails, reports come from polling every `poll_interval` (each open tracked
order with `fetch_order`, and its trades with `fetch_order_trades` when its filled size grew);
the WebSocket is tried again after a doubling pause, or never again when it was refused for a
reason retrying cannot fix (credentials).

`VenueState` is what the adapter has already told its callers, shared by every method of the
venue: a report goes out on the stream only when it says something new (the order's status or
cumulative filled size changed; a trade id not seen before), whether the news first came from
the WebSocket, a poll, or an answer to `place` / `cancel` / `fetch`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog

from coinwire.core.errors import DomainError, NotReady
from coinwire.core.instruments import Instrument
from coinwire.core.orders import OrderStatus
from coinwire.venues.ccxt_convert import order_report
from coinwire.venues.ccxt_errors import Backoff
from coinwire.venues.errors import venue_error
from coinwire.venues.reports import FillReport, OrderReport, Report

if TYPE_CHECKING:
    from coinwire.venues.ccxt_venue import CcxtVenue

__all__ = ["POLLING", "WEBSOCKET", "ReportStream", "VenueState"]

log = structlog.get_logger("coinwire.venues.ccxt")

WEBSOCKET: Final = "websocket"
POLLING: Final = "polling"
_DONE_KEPT: Final = 10_000  # finished orders remembered (late duplicates of their reports stay quiet)
_FILLS_KEPT: Final = 100_000


class Known(msgspec.Struct):
    """What the adapter last reported about one order (a conditional order triggering at the venue is news too)."""

    client_oid: str
    symbol: str
    status: OrderStatus
    filled_size: int
    working: bool = True  # False while the venue holds it untriggered


class VenueState:
    """Orders and fills already reported, so each piece of news goes out once; bounded memory."""

    def __init__(self) -> None:
        self.orders: OrderedDict[str, Known] = OrderedDict()  # venue order id -> last reported
        self.by_client: dict[str, str] = {}  # client_oid -> venue order id
        self._fills: OrderedDict[tuple[str, str], None] = OrderedDict()  # (symbol, trade id)

    def track(self, report: OrderReport) -> bool:
        """Record `report` (and its fills); True when it is news (new order, status or filled size changed)."""
        for fill in report.fills:
            self.new_fill(fill)
        known = self.orders.get(report.venue_order_id)
        client_oid = report.client_oid or (known.client_oid if known else "")
        news = (known is None or known.status is not report.status or known.filled_size != report.filled_size
                or known.working is not report.working)
        if known is not None and known.status is OrderStatus.DONE:
            news = False  # a late echo of an order already finished
        else:
            self.orders[report.venue_order_id] = Known(client_oid, report.symbol, report.status, report.filled_size,
                                                       report.working)
            if report.is_done:
                self.orders.move_to_end(report.venue_order_id)
        if client_oid:
            self.by_client[client_oid] = report.venue_order_id
        self._forget_old()
        return news

    def new_fill(self, fill: FillReport) -> bool:
        """Record `fill`; True the first time its trade id is seen."""
        key = (fill.symbol, fill.trade_id)
        if key in self._fills:
            return False
        self._fills[key] = None
        if len(self._fills) > _FILLS_KEPT:
            self._fills.popitem(last=False)
        return True

    def _forget_old(self) -> None:
        done = [vid for vid, known in self.orders.items() if known.status is OrderStatus.DONE]
        for vid in done[: max(0, len(done) - _DONE_KEPT)]:
            known = self.orders.pop(vid)
            if self.by_client.get(known.client_oid) == vid:
                del self.by_client[known.client_oid]


class ReportStream:
    """Runs the report loops of one CcxtVenue for one consumer at a time."""

    def __init__(
        self,
        venue: CcxtVenue,
        *,
        poll_interval: float,
        reconcile_interval: float,
        websocket: bool,
        ws_retry: float,
        backoff: type[Backoff],
    ) -> None:
        self.venue = venue
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.websocket = websocket
        self.ws_retry = ws_retry
        self._backoff = backoff
        self.mode = POLLING
        self._task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Report | BaseException | None] | None = None  # None in it: the stream ended
        self._ws_worked = False

    async def run(self) -> AsyncIterator[Report]:
        """Yield reports until the consumer or `stop` ends it; a failure retrying cannot fix ends it by raising."""
        if self._task is not None:
            raise RuntimeError("reports() already has a consumer")
        queue: asyncio.Queue[Report | BaseException | None] = asyncio.Queue()
        self._queue = queue
        self._task = asyncio.create_task(self._produce(queue.put_nowait), name=f"reports-{self.venue.exchange}")
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await self.stop()

    async def stop(self) -> None:
        """End the stream: the loops stop, and a consumer waiting for the next report sees the end."""
        task, self._task = self._task, None
        queue, self._queue = self._queue, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if queue is not None:
            queue.put_nowait(None)

    async def _produce(self, emit: Callable[[Report | BaseException | None], None]) -> None:
        try:
            await self._loop(emit)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure (and bug) goes to the consumer, who raises it
            emit(exc)
        else:
            emit(None)  # the client was closed under the stream

    async def _loop(self, emit: Callable[[Report], None]) -> None:
        venue = self.venue
        has = venue.client.has
        can_watch = self.websocket and bool(has.get("watchOrders")) and bool(has.get("watchMyTrades"))
        mode = WEBSOCKET if can_watch else POLLING
        ws_backoff = Backoff(base=self.ws_retry, cap=max(self.ws_retry, 600.0), jitter=0.0)
        backoff = self._backoff()
        clock = asyncio.get_running_loop().time
        retry_ws_at = 0.0
        while True:
            self.mode = mode
            if mode == WEBSOCKET:
                self._ws_worked = False
                try:
                    await self._watch(emit)
                except Exception as exc:  # noqa: BLE001 - venue_error raises again what is not a venue failure
                    error = venue_error(exc, exchange=venue.exchange, operation="user data stream")
                    if error.code == "exchange_closed":
                        return
                    if not isinstance(error, NotReady):
                        can_watch = False  # refused for good (credentials, not supported): poll from now on
                    if self._ws_worked:
                        ws_backoff.reset()
                    retry_ws_at = clock() + ws_backoff.next_delay()
                    log.warning("user data stream failed, polling instead", exchange=venue.exchange, code=error.code,
                                retry=can_watch)
                mode = POLLING
                continue
            try:
                await self._poll(emit)
            except Exception as exc:
                error = venue_error(exc, exchange=venue.exchange, operation="poll orders")
                if not isinstance(error, NotReady):
                    raise error from exc
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            if can_watch and clock() >= retry_ws_at:
                mode = WEBSOCKET
                continue
            await asyncio.sleep(self.poll_interval)

    async def _watch(self, emit: Callable[[Report], None]) -> None:
        """Run the two WebSocket loops and the reconciliation poll until one of them fails."""
        tasks = [
            asyncio.create_task(self._watch_loop("watch_orders", self._order_news, emit)),
            asyncio.create_task(self._watch_loop("watch_my_trades", self._fill_news, emit)),
            asyncio.create_task(self._reconcile(emit)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    async def _watch_loop(
        self, method: str, news: Callable[[Mapping[str, Any], Instrument], Report | None], emit: Callable[[Report], None]
    ) -> None:
        """Emit the news in every batch a CCXT watch method returns (markets not loaded are left out)."""
        instruments = self.venue.instruments
        while True:
            batch = await self._watching(method)
            self._ws_worked = True
            for raw in batch:
                instrument = instruments.get(raw.get("symbol"))
                report = news(raw, instrument) if instrument is not None else None
                if report is not None:
                    emit(report)

    def _order_news(self, raw: Mapping[str, Any], instrument: Instrument) -> OrderReport | None:
        state = self.venue.state
        known = state.orders.get(str(raw.get("id")))
        client_oid = known.client_oid if known is not None and known.client_oid else None
        report = order_report(raw, instrument, client_oid=client_oid, fills=())
        return report if state.track(report) else None

    def _fill_news(self, raw: Mapping[str, Any], instrument: Instrument) -> FillReport | None:
        fill = self.venue.fill(raw, instrument)
        return fill if self.venue.state.new_fill(fill) else None

    async def _watching(self, method: str) -> list[Any]:
        """One CCXT watch call; what CCXT raises that is not a CCXT error marks its WebSocket broken for good.

        ccxt.binance 4.5 answers a refused user-data subscription with a KeyError of its own
        making; retrying such a stream only repeats it, so it counts as operational.
        """
        try:
            return list(await getattr(self.venue.client, method)())
        except Exception as exc:
            try:
                error = venue_error(exc, exchange=self.venue.exchange, operation=method)
            except TypeError:
                error = DomainError(
                    "exchange_stream_broken",
                    f"{self.venue.exchange} {method}: CCXT failed with {type(exc).__name__}: {exc}",
                    exchange=self.venue.exchange,
                    group="operational",
                )
            raise error from exc

    async def _reconcile(self, emit: Callable[[Report], None]) -> None:
        """The slow poll beside the WebSocket: REST failures it may retry are only logged."""
        while True:
            try:
                await self._poll(emit)
            except NotReady as exc:
                log.warning("reconciliation poll failed", exchange=self.venue.exchange, code=exc.code)
            await asyncio.sleep(self.reconcile_interval)

    async def _poll(self, emit: Callable[[Report], None]) -> None:
        """Ask the venue about every order it believes open; report what changed, fills first."""
        venue = self.venue
        for venue_order_id, client_oid, symbol in venue.open_tracked():
            instrument = venue.instruments[symbol]
            raw = await venue.call("fetch_order", venue_order_id, symbol)
            report = order_report(raw, instrument, client_oid=client_oid, fills=())
            known = venue.state.orders.get(venue_order_id)
            if known is not None and report.filled_size > known.filled_size:
                for fill in await venue.order_fills(venue_order_id, instrument, client_oid):
                    if venue.state.new_fill(fill):
                        emit(fill)
            if venue.state.track(report):
                emit(report)
