"""The analyser: indicators computed incrementally on any series, published, stored and told to listeners.

Why each source is read where it already is, not rebuilt: a market's candles are the chart's
(services.ohlcv.OhlcvQuery: stored minutes and hours plus the recorder's forming ones), a
portfolio's are the tracker's closed 15-minute candles (rolled up through core.rollup for a
longer timeframe), and a balance or a position's unrealised PnL is read from the gateway when
the tracker's pass over that account ran (a point when it changed). So the analyser adds no
subscription of its own to the hot path and shows the numbers every other page shows.

- A tracked key is computed once however many rule sets or sockets follow it (`track` counts
  them; the last unsubscribe stops it).
- Warm-up: a market or portfolio series first runs its indicator over stored candles (up to
  `warmup_bars` of them), so an RSI(14) has a value at once; those values are stored, not
  published. Balance and position series start at the first point (no stored history of them).
- Every live value: `AnalysisValue` on `analysis.<scope>.<id>.<name>` (messages.analysis_subject),
  a row of `analysis_values`, then the listeners (the controller's `indicator` rules).
- A market bar closes when its bucket has ended (plus `grace` seconds for late trades): the loop
  checks every `tick` seconds; a bucket without a trade has no candle and moves nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

import structlog

from coinwire.bus.base import Bus
from coinwire.core.analysis import IndicatorRef, PortfolioBars, SeriesRef, Stream, analysis_key, parse_indicator, parse_series
from coinwire.core.errors import InvalidInput, NotFound, NotReady
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.portfolio import VALUE_DECIMALS, PortfolioCandle
from coinwire.core.rollup import Row, parse_timeframe, utc_bucket
from coinwire.messages import AnalysisValue, analysis_subject
from coinwire.store.analysis import AnalysisRow, insert_values, load_values
from coinwire.store.portfolio_candles import load_portfolio_candles
from coinwire.store.store import Store

__all__ = ["Analyser", "Listener"]

log = structlog.get_logger("coinwire.analyser")

Listener = Callable[[str, float, int], None]  # (key, value, time ns)
_S = 1_000_000_000
_UNIT = 10.0**VALUE_DECIMALS


class _Candles(Protocol):
    """What the analyser reads a market's candles from (services.ohlcv.OhlcvQuery)."""

    async def candles(self, exchange: str, symbol: str, timeframe: object = ..., tz: object = ...,
                      start: object = ..., end: object = ...) -> dict[str, Any]: ...


class _Track:
    """One computed key: its series and indicator, the stream, who follows it, where its bars are."""

    __slots__ = ("key", "series", "ref", "stream", "owner", "count", "next_end", "bars", "point", "pending",
                 "warming", "unsubscribe")

    def __init__(self, key: str, series: SeriesRef, ref: IndicatorRef, owner: int | None) -> None:
        self.key = key
        self.series = series
        self.ref = ref
        self.stream = Stream(ref)
        self.owner = owner
        self.count = 0
        self.next_end = 0  # market: the end (unix s) of the next bar to feed
        self.bars = PortfolioBars(series.timeframe) if series.kind == "portfolio" else None
        self.point: float | None = None  # point series: the last value fed
        self.pending: list[PortfolioCandle] = []  # portfolio candles closed while warming up
        self.warming = True
        self.unsubscribe: Callable[[], None] | None = None


class Analyser:
    """`track(...)` a key, read `latest(key)`, `listen(callback)`; `start()` runs the market loop, `close()` stops."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        tracker: Any,  # services.portfolio_tracker.PortfolioTracker: listen(scope, id, cb), currency_of
        gateway: Any,  # services.gateway.Gateway: ledger wallets, positions
        candles: _Candles | None,
        *,
        warmup_bars: int = 300,
        tick: float = 1.0,
        grace: float = 2.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.bus = bus
        self.tracker = tracker
        self.gateway = gateway
        self.candles = candles
        self.warmup_bars = warmup_bars
        self.tick = tick
        self.grace = grace
        self.clock = clock
        self.tracks: dict[str, _Track] = {}
        self._latest: dict[str, tuple[float, int]] = {}
        self._listeners: list[Listener] = []
        self._out: list[tuple[_Track, float, int, bool]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._flushing: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None

    # --- life ---------------------------------------------------------------------------------------
    async def start(self, loop: bool = True) -> None:
        if loop:
            self._loop_task = asyncio.create_task(self._run(), name="coinwire-analyser")

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        await self.settled()
        for track in list(self.tracks.values()):
            if track.unsubscribe is not None:
                track.unsubscribe()
        self.tracks.clear()

    async def settled(self) -> None:
        """Wait for warm-ups and the writes and publishes queued so far (tests, a clean stop)."""
        while self._tasks or (self._flushing is not None and not self._flushing.done()):
            await asyncio.gather(*self._tasks, *([self._flushing] if self._flushing else []), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self.poll_markets()
            except Exception:  # a bug must not stop every analysis
                log.exception("analyser market poll failed")

    # --- the interface the controller and the API use --------------------------------------------------
    def track(self, key: str, series: str, indicator: str, params: Sequence[int | float], owner: int | None) -> Callable[[], None]:
        """Compute `key` (= analysis_key(series, indicator, params)) until the returned function is called.

        The caller has checked that `owner` may read the series (api.analysis_access); `unknown_series`
        for the own-portfolio shorthand, which a caller resolves to a scope first.
        """
        ref = parse_series(series)
        if not ref.resolved:
            raise InvalidInput("unknown_series", f"series {series!r}: resolve 'portfolio' to a scope first", series=series)
        ind = parse_indicator(indicator, params)
        if analysis_key(series, indicator, params) != key:
            raise InvalidInput("invalid_key", f"key {key!r} is not the key of {series} {indicator}{list(params)}", key=key)
        track = self.tracks.get(key)
        if track is None:
            track = _Track(key, ref, ind, owner)
            self._begin(track)  # refusals (no candles here, tracking off) raise before anything is kept
            self.tracks[key] = track
        track.count += 1
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if done:
                return
            done = True
            track.count -= 1
            if track.count <= 0 and self.tracks.get(key) is track:
                del self.tracks[key]
                if track.unsubscribe is not None:
                    track.unsubscribe()

        return unsubscribe

    def latest(self, key: str) -> float | None:
        """The newest value of a tracked (or once tracked) key; None before its first."""
        found = self._latest.get(key)
        return found[0] if found is not None else None

    def latest_time(self, key: str) -> int | None:
        """When the newest value was (ns)."""
        found = self._latest.get(key)
        return found[1] if found is not None else None

    def listen(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(key, value, time_ns)` on every live value of every key; returns the unsubscribe."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    async def history(self, key: str, start_ns: int | None, end_ns: int | None, limit: int) -> list[AnalysisRow]:
        """Stored values of a key (the newest `limit` in [start, end), oldest first)."""
        await self._flush()
        return await load_values(self.store, key, start_ns, end_ns, limit)

    # --- sources --------------------------------------------------------------------------------------
    def _begin(self, track: _Track) -> None:
        s = track.series
        if s.kind == "market":
            if self.candles is None:
                raise NotFound("not_found", "this process serves no market candles", series=s.text)
            self._spawn(self._warm_market(track))
            return
        if self.tracker is None:
            raise NotReady("portfolio_tracking_off", f"series {s.text} needs portfolio tracking, which this server has off",
                           series=s.text)
        scope, scope_id = (s.scope, s.scope_id) if s.kind == "portfolio" else ("account", str(s.account_id))

        def on_pass(candle: PortfolioCandle, closed: bool) -> None:
            self._on_pass(track, candle, closed)

        track.unsubscribe = self.tracker.listen(scope, scope_id, on_pass)
        if s.kind == "portfolio":
            self._spawn(self._warm_portfolio(track))
            return
        track.warming = False
        try:
            self._sample_point(track)
        except BaseException:
            track.unsubscribe()
            raise

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("analyser warm-up failed", error=repr(task.exception()))

    # market ---------------------------------------------------------------------------------------------
    async def _market_bars(self, track: _Track, start: int, end: int) -> list[list[Any]]:
        assert self.candles is not None
        s = track.series
        answer = await self.candles.candles(s.exchange, s.symbol, s.timeframe, "UTC", start, end)
        return [row for row in answer["candles"] if row[0] >= start]

    async def _warm_market(self, track: _Track) -> None:
        """Run the indicator over the stored bars before now's; live bars follow from the current bucket's end."""
        tf = parse_timeframe(track.series.timeframe)
        now = self.clock() // _S
        current, track.next_end = utc_bucket(tf, now)
        try:
            bars = await self._market_bars(track, current - self.warmup_bars * tf.seconds, current)
            for row in bars:
                self._feed(track, float(row[2]), float(row[3]), float(row[4]), utc_bucket(tf, int(row[0]))[1], live=False)
        finally:  # a failed warm-up (logged) still leaves the live bars to come
            track.warming = False

    async def poll_markets(self) -> int:
        """Feed every market bar that has closed (its end + grace is past); returns how many were fed."""
        now = self.clock() // _S
        fed = 0
        for track in list(self.tracks.values()):
            if track.series.kind != "market" or track.warming or now < track.next_end + self.grace:
                continue
            tf = parse_timeframe(track.series.timeframe)
            start = utc_bucket(tf, track.next_end - 1)[0]  # the bar ending at next_end
            until, track.next_end = utc_bucket(tf, now - math.ceil(self.grace))  # bars before `until` are closed
            for row in await self._market_bars(track, start, until):
                self._feed(track, float(row[2]), float(row[3]), float(row[4]), utc_bucket(tf, int(row[0]))[1], live=True)
                fed += 1
        return fed

    # portfolio, balance, position --------------------------------------------------------------------
    async def _warm_portfolio(self, track: _Track) -> None:
        """Run the indicator over the stored 15-minute candles, then over those the tracker closed meanwhile."""
        try:
            await self._portfolio_history(track)
        finally:
            track.warming = False
            pending, track.pending = track.pending, []
            for candle in pending:
                self._on_pass(track, candle, True)

    async def _portfolio_history(self, track: _Track) -> None:
        s = track.series
        tf = parse_timeframe(s.timeframe)
        try:
            currency = self.tracker.currency_of(s.scope, s.scope_id)
        except (NotFound, InvalidInput):
            currency = None
        if currency is not None:
            now = self.clock() // _S
            start = utc_bucket(tf, now)[0] - self.warmup_bars * tf.seconds
            stored = await load_portfolio_candles(self.store, s.scope, s.scope_id, currency, start)
            if stored is not None:
                c = stored.candles
                for i in range(len(c.time)):
                    row: Row = (int(c.time[i]), c.open[i] / _UNIT, c.high[i] / _UNIT, c.low[i] / _UNIT, c.close[i] / _UNIT, 0.0)
                    self._portfolio_bar(track, row, live=False)

    def _on_pass(self, track: _Track, candle: PortfolioCandle, closed: bool) -> None:
        if track.series.kind != "portfolio":
            self._sample_point(track)
            return
        if not closed:
            return
        if track.warming:
            track.pending.append(candle)
            return
        row: Row = (candle.open_time, float(candle.open), float(candle.high), float(candle.low), float(candle.close), 0.0)
        self._portfolio_bar(track, row, live=True)

    def _portfolio_bar(self, track: _Track, row: Row, live: bool) -> None:
        """One closed 15-minute candle: fed as is, or folded into the longer bucket it belongs to."""
        assert track.bars is not None  # a portfolio track
        bar = track.bars.add(row)
        if bar is not None:
            self._feed(track, *bar, live=live)

    def _point_value(self, s: SeriesRef) -> float | None:
        if s.kind == "balance":
            total = sum(w.balance for w in self.gateway.ledger.wallets(accounts=[s.account_id]) if w.currency == s.currency)
            return float(Decimal(total).scaleb(-ATTO_DECIMALS))
        views = self.gateway.positions(accounts=[s.account_id], symbol=s.symbol)
        return float(sum((Decimal(v.unrealised_pnl) for v in views), Decimal(0)))

    def _sample_point(self, track: _Track) -> None:
        """A balance or position point: fed when it differs from the last one."""
        value = self._point_value(track.series)
        if value is None or value == track.point:
            return
        track.point = value
        self._feed(track, value, value, value, self.clock() // _S, live=True, time_ns=self.clock())

    # --- output ---------------------------------------------------------------------------------------
    def _feed(self, track: _Track, high: float, low: float, close: float, end_s: int, *, live: bool,
              time_ns: int | None = None) -> None:
        value = track.stream.update(high, low, close)
        if math.isnan(value):
            return
        t = time_ns if time_ns is not None else end_s * _S
        previous = self._latest.get(track.key)
        if previous is None or previous[1] <= t:
            self._latest[track.key] = (value, t)
        self._out.append((track, value, t, live))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        if live:
            for listener in list(self._listeners):
                try:
                    listener(track.key, value, t)
                except Exception:  # one listener's bug must not starve the others
                    log.exception("analysis listener failed", key=track.key)

    async def _flush(self) -> None:
        while self._out:
            out, self._out = self._out, []
            rows = [AnalysisRow(key=t.key, time_ns=ns, owner_id=t.owner, series=t.series.text, indicator=t.ref.text,
                                params=t.ref.params, value=v) for t, v, ns, _ in out]
            try:
                await insert_values(self.store, rows)
            except Exception:  # the store being down must not stop the live values
                log.exception("analysis values not stored", count=len(rows))
            for t, v, ns, live in out:
                if not live:
                    continue
                message = AnalysisValue(key=t.key, series=t.series.text, indicator=t.ref.text, params=list(t.ref.params),
                                        value=v, time=ns // _S, owner_id=t.owner)
                try:
                    await self.bus.publish(analysis_subject(t.series.text, t.ref.text, t.ref.params), message)
                except Exception:  # noqa: BLE001 - a bus outage loses the push, not the stored value
                    log.warning("analysis value not published", key=t.key)
