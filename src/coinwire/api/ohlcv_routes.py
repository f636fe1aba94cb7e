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

from datetime import tzinfo
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.forming_streams import FormingStream, FormingStreams, Row
from coinwire.api.methods import Api, method
from coinwire.api.notifier import Notifier
from coinwire.api.rest import json_endpoint, paged_response, query_of
from coinwire.core.errors import NotReady
from coinwire.core.rollup import Timeframe, parse_timeframe
from coinwire.core.symbols import normalize_symbol
from coinwire.core.trade_candles import TradeCandle
from coinwire.services.candle_recorder import CandleRecorder
from coinwire.services.ohlcv import OhlcvQuery, zone

__all__ = ["OhlcvStreams", "add_ohlcv_routes"]


_QUERY_PARAMS = ("timeframe", "tz", "start", "end")


def add_ohlcv_routes(app: FastAPI, query: OhlcvQuery) -> None:
    """Mount GET /api/v1/ohlcv/{exchange}/{symbol} answering from `query`."""

    async def ohlcv(request: Request, exchange: str, symbol: str) -> Response:
        """Candles of any timeframe (1m .. 1M, or e.g. 90m) in any IANA time zone, paged."""
        q = query_of(request, _QUERY_PARAMS)
        result = await query.candles(exchange, symbol, q.get("timeframe", "1h"), q.get("tz", "UTC"), q.get("start"), q.get("end"))
        return paged_response(result["candles"], request, "X-Next-Start", result["next"], {"start": result["next"], "end": result["end"]})

    app.add_api_route("/api/v1/ohlcv/{exchange}/{symbol}", json_endpoint(ohlcv, "ohlcv"), methods=["GET"], tags=["market data"],
                      summary="ohlcv")


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


class _MarketStream(FormingStream):
    """A market's forming candle, built from its 1-minute candles."""

    def __init__(self, id_: int, ctx: CallContext, query: OhlcvQuery, exchange: str, symbol: str, tf: Timeframe, tz: tzinfo,
                 tz_name: str) -> None:
        super().__init__(id_, ctx, tf, tz, tz_name)
        self.query, self.exchange, self.symbol = query, exchange, symbol

    async def stored(self, start: int, end: int) -> dict[int, Row]:
        seeded = await self.query.candles(self.exchange, self.symbol, "1m", "UTC", start, end)
        return {int(row[0]): tuple(row[1:]) for row in seeded["candles"]}

    def fields(self) -> dict[str, Any]:
        return {"exchange": self.exchange, "symbol": self.symbol, "timeframe": str(self.tf), "tz": self.tz_name}

    def values(self, row: Row) -> list[Any]:
        return [float(v) for v in row]


class OhlcvStreams(FormingStreams[_MarketStream]):
    """Forming candles of subscribed markets, pushed to their WebSocket connections."""

    def __init__(self, notifier: Notifier, query: OhlcvQuery, recorder: CandleRecorder, push_interval: float = 0.25) -> None:
        super().__init__(notifier, "ohlcv", push_interval)
        self.query = query
        self.recorder = recorder
        recorder.listeners.append(self._on_candle)

    async def subscribe(self, p: SubscribeOhlcvParams, ctx: CallContext) -> dict[str, Any]:
        self.admit(ctx)
        tf, tz = parse_timeframe(p.timeframe), zone(p.tz)
        symbol = normalize_symbol(p.symbol)
        answer = await self.query.candles(p.exchange, symbol, p.timeframe, p.tz, p.start, p.end)
        sub = _MarketStream(self.next_id(), ctx, self.query, p.exchange, symbol, tf, tz, p.tz)
        await self.add(sub, self.query.clock() // 1_000_000_000)
        return {**answer, "subscription": sub.id}

    def _on_candle(self, exchange: str, symbol: str, interval: int, candle: TradeCandle) -> None:
        if interval != 60:
            return
        scaled: Row | None = None
        for sub in self.subs.values():
            if sub.exchange != exchange or sub.symbol != symbol:
                continue
            if scaled is None:
                precision = self.recorder.precision(exchange, symbol) or (0, 0)
                price, size = 10.0 ** precision[0], 10.0 ** precision[1]
                scaled = (candle[1] / price, candle[2] / price, candle[3] / price, candle[4] / price, candle[5] / size)
            sub.take(candle[0], scaled)


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

