"""OHLCV for charts: `GET /api/v1/ohlcv/{exchange}/{symbol}` and the live `subscribe_ohlcv` stream on /rpc.

    GET /api/v1/ohlcv/binance/BTC_USDT?timeframe=1d&tz=Europe/London&start=2021-01-01&end=1617235200
    -> [[time, open, high, low, close, volume], ...]

`time` is the bucket's start in unix seconds (the body is the seed's bare list). When the range
holds more buckets than the configured maximum (`ohlcv_max_points`), the answer is the first
page and the headers say where the next starts: `X-Next-Start: <unix seconds>` and
`Link: <same query with that start>; rel="next"`. Errors
answer `{"error": {code, message}}` with HTTP 400: invalid_timeframe, invalid_timezone,
invalid_time, invalid_range, invalid_symbol, invalid_params (an unknown query parameter).

Live charts use JSON-RPC over the /rpc WebSocket, like every other push stream:
`subscribe_ohlcv {exchange, symbol, timeframe, tz, start?, end?}` answers the same object as
the GET (the history, the forming bucket last) plus a `subscription` id; then `ohlcv`
notifications `{subscription, exchange, symbol, timeframe, tz, candle}` carry the forming
bucket each time it changes (at most `push_interval` apart); a new bucket simply arrives
with a later time. `unsubscribe_ohlcv {subscription}` stops it; closing the socket stops all.
A connection holds at most `ws_max_streams` streams (`too_many_streams`); a connection that
reads slowly keeps only each stream's latest candle waiting (`api.ws_send`), and never holds
back anyone else's.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import tzinfo
from typing import Any

import numpy as np
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.methods import Api, method
from coinwire.api.notifier import Notifier, notification
from coinwire.api.rest import error_response, json_response, paged_response
from coinwire.core.errors import CoinwireError, InvalidInput, NotReady
from coinwire.core.rollup import Timeframe, bucket_starts, parse_timeframe
from coinwire.core.symbols import normalize_symbol
from coinwire.core.trade_candles import TradeCandle
from coinwire.services.candle_recorder import CandleRecorder
from coinwire.services.ohlcv import OhlcvQuery, zone

__all__ = ["OhlcvStreams", "add_ohlcv_routes"]

log = structlog.get_logger("coinwire.ohlcv")

_QUERY_PARAMS = frozenset({"timeframe", "tz", "start", "end"})


def add_ohlcv_routes(app: FastAPI, query: OhlcvQuery) -> None:
    """Mount GET /api/v1/ohlcv/{exchange}/{symbol} answering from `query`."""

    async def ohlcv(request: Request, exchange: str, symbol: str) -> Response:
        """Candles of any timeframe (1m .. 1M, or e.g. 90m) in any IANA time zone, paged."""
        try:
            unknown = sorted(set(request.query_params) - _QUERY_PARAMS)
            if unknown:
                raise InvalidInput("invalid_params", f"unknown query parameter(s) {unknown}; use timeframe, tz, start, end")
            q = request.query_params
            result = await query.candles(exchange, symbol, q.get("timeframe", "1h"), q.get("tz", "UTC"), q.get("start"), q.get("end"))
            return paged_response(result["candles"], request, "X-Next-Start", result["next"],
                                  {"start": result["next"], "end": result["end"]})
        except CoinwireError as exc:
            return error_response(exc)
        except Exception:  # a bug: log it, and still answer in the documented error shape
            log.exception("ohlcv route failed")
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    app.add_api_route("/api/v1/ohlcv/{exchange}/{symbol}", ohlcv, methods=["GET"], tags=["market data"], summary="ohlcv")


# --- live stream ---------------------------------------------------------------------------------


class SubscribeOhlcvParams(P.Params, kw_only=True):
    exchange: P.Name
    symbol: P.Symbol
    timeframe: P.Word = "1m"
    tz: P.Name = "UTC"
    start: int | P.Name | None = None
    end: int | P.Name | None = None


class UnsubscribeOhlcvParams(P.Params, kw_only=True):
    subscription: int


class _Subscription:
    __slots__ = ("id", "ctx", "exchange", "symbol", "tf", "tz", "tz_name", "bucket", "minutes", "changed")

    def __init__(self, id_: int, ctx: CallContext, exchange: str, symbol: str, tf: Timeframe, tz: tzinfo, tz_name: str) -> None:
        self.id, self.ctx, self.exchange, self.symbol = id_, ctx, exchange, symbol
        self.tf, self.tz, self.tz_name = tf, tz, tz_name
        self.bucket = (0, 0)  # [start, end) of the forming bucket
        self.minutes: dict[int, tuple[float, float, float, float, float]] = {}  # 1m candles in it
        self.changed = False


class OhlcvStreams:
    """Forming candles of subscribed series, pushed to their WebSocket connections."""

    def __init__(self, notifier: Notifier, query: OhlcvQuery, recorder: CandleRecorder, push_interval: float = 0.25) -> None:
        self.notifier = notifier  # its connections (who is still there) and its per-connection stream limit
        self.query = query
        self.recorder = recorder
        self.push_interval = push_interval
        self.subs: dict[int, _Subscription] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        recorder.listeners.append(self._on_candle)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="coinwire-ohlcv-streams")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def subscribe(self, p: SubscribeOhlcvParams, ctx: CallContext) -> dict[str, Any]:
        if ctx.send is None:
            raise InvalidInput("websocket_only", "subscribe_ohlcv needs a WebSocket connection (/rpc)")
        limit = self.notifier.limits.max_streams
        if sum(1 for sub in self.subs.values() if sub.ctx is ctx) >= limit:
            raise InvalidInput("too_many_streams", f"at most {limit} subscribe_ohlcv streams per connection", limit=limit)
        tf, tz = parse_timeframe(p.timeframe), zone(p.tz)
        symbol = normalize_symbol(p.symbol)
        answer = await self.query.candles(p.exchange, symbol, p.timeframe, p.tz, p.start, p.end)
        sub = _Subscription(next(self._ids), ctx, p.exchange, symbol, tf, tz, p.tz)
        now = self.query.clock() // 1_000_000_000
        await self._enter_bucket(sub, now)
        self.subs[sub.id] = sub
        return {**answer, "subscription": sub.id}

    def unsubscribe(self, subscription: int, ctx: CallContext) -> bool:
        sub = self.subs.get(subscription)
        if sub is None or sub.ctx is not ctx:
            return False
        del self.subs[subscription]
        return True

    async def _enter_bucket(self, sub: _Subscription, t: int) -> None:
        """Make the bucket holding minute `t` the forming one, seeded with its minutes stored so far."""
        edges = bucket_starts(sub.tf, sub.tz, t, t + sub.tf.seconds + 1)
        sub.bucket = (int(edges[0]), int(edges[1]) if len(edges) > 1 else int(edges[0]) + sub.tf.seconds)
        seeded = await self.query.candles(sub.exchange, sub.symbol, "1m", "UTC", sub.bucket[0], sub.bucket[1])
        sub.minutes = {int(row[0]): tuple(row[1:]) for row in seeded["candles"]}

    def _on_candle(self, exchange: str, symbol: str, interval: int, candle: TradeCandle) -> None:
        if interval != 60:
            return
        precision = None
        for sub in self.subs.values():
            if sub.exchange != exchange or sub.symbol != symbol:
                continue
            if precision is None:
                precision = self.recorder.precision(exchange, symbol) or (0, 0)
                price, size = 10.0 ** precision[0], 10.0 ** precision[1]
                scaled = (candle[1] / price, candle[2] / price, candle[3] / price, candle[4] / price, candle[5] / size)
            if not sub.bucket[0] <= candle[0] < sub.bucket[1]:
                if candle[0] < sub.bucket[0]:
                    continue  # a late trade of a bucket already pushed
                sub.bucket = (-1, -1)  # entered lazily in the push loop (needs the store)
                sub.minutes = {}
            sub.minutes[candle[0]] = scaled
            sub.changed = True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.push_interval)
            try:
                await self.push()
            except Exception:  # a bug must not stop every live chart
                log.exception("ohlcv push failed")

    async def push(self) -> int:
        """Send the forming candle of every subscription that changed; returns how many were sent."""
        sent = 0
        live = self.notifier.connections
        for sub in list(self.subs.values()):
            if sub.ctx.connection_id not in live:
                self.subs.pop(sub.id, None)  # the socket closed
                continue
            if not sub.changed or sub.ctx.offer is None:
                continue
            sub.changed = False
            if sub.bucket == (-1, -1):
                fresh = sub.minutes
                await self._enter_bucket(sub, min(fresh))
                sub.minutes.update(fresh)
            rows = np.array([sub.minutes[t] for t in sorted(sub.minutes)], dtype=np.float64)
            candle = [sub.bucket[0], rows[0, 0], rows[:, 1].max(), rows[:, 2].min(), rows[-1, 3], rows[:, 4].sum()]
            payload = {
                "subscription": sub.id, "exchange": sub.exchange, "symbol": sub.symbol,
                "timeframe": str(sub.tf), "tz": sub.tz_name, "candle": [int(candle[0]), *map(float, candle[1:])],
            }  # fmt: skip
            try:  # offered, never awaited: a connection behind keeps only its stream's latest candle
                sub.ctx.offer(f"ohlcv.{sub.id}", notification("ohlcv", payload))
                sent += 1
            except Exception as exc:  # noqa: BLE001 - a closed connection must not stop the others
                log.debug("ohlcv notification not delivered", error=str(exc))
        return sent


def _streams(api: Api) -> OhlcvStreams:
    streams = api.ohlcv_streams
    if streams is None:
        raise NotReady("ohlcv_unavailable", "live OHLCV streams are not running in this process")
    return streams


@method("subscribe_ohlcv", SubscribeOhlcvParams)
async def subscribe_ohlcv(api: Api, p: SubscribeOhlcvParams, ctx: CallContext) -> Any:
    """Candles of a series (as GET /api/v1/ohlcv) and then `ohlcv` notifications of its forming candle."""
    return await _streams(api).subscribe(p, ctx)


@method("unsubscribe_ohlcv", UnsubscribeOhlcvParams)
async def unsubscribe_ohlcv(api: Api, p: UnsubscribeOhlcvParams, ctx: CallContext) -> Any:
    """Stop a subscribe_ohlcv stream of this connection; false when there was none."""
    return _streams(api).unsubscribe(p.subscription, ctx)

