"""The live venue: our orders on a real exchange through CCXT, with exact reports and safe resends.

`CcxtVenue` wraps one async CCXT exchange (ccxt.pro when CCXT has it) holding the account's
API key. Every call answers in coinwire's units (`venues.reports`) and fails with coinwire's
errors (`venues.errors`, the one translation). The rules it keeps:

- **idempotency by client id**: our `client_oid` goes to the venue as the order's client id
  (Binance `newClientOrderId`); an order already placed through this venue is looked up, not
  sent again, and a venue answering "duplicate client id" is answered with the order it has;
- **never resend blindly**: when placing fails with an unknown outcome (timeout, dropped
  connection, 5xx) the order is looked up by client id; if the venue does not have it, the
  adapter waits until the request can no longer arrive (the venue refuses a signed request
  older than its receive window, `order_ttl`), looks once more, and only then sends again
  (at most `max_resends` times). If the venue cannot be asked, the caller gets NotReady
  `order_state_unknown` and must `fetch` before placing again;
- **a cancel that loses the race** against the last fill returns the order's final report
  (done, filled) instead of NotFound; NotFound means the venue never had the order.

Execution reports (`reports()`) come from the user data stream with a REST polling fallback:
see `venues/ccxt_stream.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Final

import structlog

from coinwire.core.breaker import DependencyGuard
from coinwire.core.errors import Conflict, DomainError, InvalidInput, NotFound, NotReady
from coinwire.core.instruments import Instrument
from coinwire.core.orders import Order, OrderStatus, OrderType, PositionSide, Side
from coinwire.core.symbols import normalize_symbol
from coinwire.venues.ccxt_client import make_client
from coinwire.venues.ccxt_convert import (
    balances_from_ccxt,
    fill_report,
    order_args,
    order_report,
    same_order,
)
from coinwire.venues.ccxt_errors import Backoff, bad_response
from coinwire.venues.ccxt_markets import brackets_from_tiers, instrument_from_market
from coinwire.venues.ccxt_quirks import ORDER_TRADES_PARAM, TRADES_FROM_ID, WALLET_BALANCE, check_client_oid, configure, perp_order_params
from coinwire.venues.ccxt_quirks import order_ttl as quirk_order_ttl
from coinwire.venues.ccxt_stream import ReportStream, VenueState
from coinwire.venues.errors import outcome_unknown, venue_error, venue_unavailable
from coinwire.venues.native_orders import NativePlan, native_plan, oco_plan
from coinwire.venues.reports import FillReport, OrderReport, Report

__all__ = ["CcxtVenue"]

log = structlog.get_logger("coinwire.venues.ccxt")

_TRADES_PAGE: Final = 1000


class CcxtVenue:
    """One exchange account through CCXT: instruments, balances, orders and their execution reports.

    `exchange` is coinwire's name for the exchange (instruments and reports carry it);
    `client` is an async CCXT exchange with credentials (see `connect`). `order_ttl` is how
    long after sending an order request the venue may still execute it (default: CCXT's
    `recvWindow` option plus `reconcile_margin`, else 60 s).
    """

    def __init__(
        self,
        exchange: str,
        client: Any,
        *,
        poll_interval: float = 1.0,
        reconcile_interval: float = 30.0,
        websocket: bool = True,
        ws_retry: float = 30.0,
        order_ttl: float | None = None,
        reconcile_margin: float = 1.0,
        max_resends: int = 1,
        backoff: type[Backoff] = Backoff,
        breaker: DependencyGuard | None = None,
    ) -> None:
        if poll_interval <= 0 or reconcile_interval <= 0 or ws_retry <= 0 or reconcile_margin < 0 or max_resends < 0:
            raise ValueError("intervals must be > 0, reconcile_margin and max_resends >= 0")
        self.exchange = exchange
        self.client = client
        self.ccxt_id: str = str(getattr(client, "id", ""))
        configure(client)
        self.order_ttl = quirk_order_ttl(client, reconcile_margin) if order_ttl is None else order_ttl
        self.max_resends = max_resends
        self.breaker = breaker  # `ccxt:<exchange>`: every REST call passes it (services/breakers.py)
        self.state = VenueState()
        self.instruments: dict[str, Instrument] = {}
        self._stream = ReportStream(
            self,
            poll_interval=poll_interval,
            reconcile_interval=reconcile_interval,
            websocket=websocket,
            ws_retry=ws_retry,
            backoff=backoff,
        )

    @classmethod
    def connect(
        cls,
        exchange: str,
        ccxt_id: str,
        *,
        api_key: str,
        secret: str,
        password: str | None = None,
        urls: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        rate_limit: bool = True,
        **kwargs: Any,
    ) -> CcxtVenue:
        """A venue on a new CCXT client for `ccxt_id` with these credentials (`urls` as in `make_client`)."""
        client = make_client(ccxt_id, urls=urls, options=options, timeout=timeout, rate_limit=rate_limit)
        client.apiKey = api_key
        client.secret = secret
        if password is not None:
            client.password = password
        return cls(exchange, client, **kwargs)

    @property
    def report_mode(self) -> str:
        """How execution reports arrive right now: `websocket` or `polling`."""
        return self._stream.mode

    async def close(self) -> None:
        """Stop the report stream and close the exchange's connections."""
        await self._stream.stop()
        await self.client.close()

    # --- markets and account -------------------------------------------------------------------
    async def load_instruments(self, symbols: Iterable[str] | None = None) -> list[Instrument]:
        """The venue's spot markets as exact Instruments (`symbols`: only these, each required to exist).

        Without `symbols`, markets coinwire cannot represent exactly (derivatives, significant-digit
        precision) are left out; a named symbol that cannot be represented is an error. A named
        linear perpetual (`BTC/USDT:USDT`) comes with the venue's own leverage tiers.
        """
        try:
            await self.guarded("load_markets")
        except Exception as exc:
            raise venue_error(exc, exchange=self.exchange, operation="load_markets") from exc
        markets: Mapping[str, Any] = self.client.markets or {}
        wanted = None if symbols is None else [normalize_symbol(s) for s in symbols]
        perpetuals = [s for s in wanted or () if (markets.get(s) or {}).get("swap")]
        tiers: Mapping[str, Any] = await self.call("fetch_leverage_tiers", perpetuals) if perpetuals else {}
        out: list[Instrument] = []
        for symbol in wanted if wanted is not None else sorted(markets):
            market = markets.get(symbol)
            if market is None:
                raise InvalidInput("exchange_bad_symbol", f"{self.exchange} has no market {symbol}", symbol=symbol)
            if wanted is None and not market.get("spot"):
                continue
            try:
                brackets = brackets_from_tiers(tiers[symbol], symbol) if symbol in tiers else ()
                instrument = instrument_from_market(
                    self.exchange, market, self.client.precisionMode, ccxt_id=self.ccxt_id, brackets=brackets
                )
            except InvalidInput:
                if wanted is not None:
                    raise
                continue
            self.instruments[instrument.symbol] = instrument
            out.append(instrument)
        return out

    async def balances(self) -> dict[str, tuple[int, int]]:
        """{currency: (free, used)} in ATTO of each currency; currencies holding nothing are left out.

        On a derivatives account (`WALLET_BALANCE` has a row) a margin currency's total is its
        wallet balance (deposits, realised PnL, fees, funding), not CCXT's margin balance, which
        adds the open positions' unrealised PnL: the ledger realises PnL only when a position closes.
        """
        return balances_from_ccxt(await self.call("fetch_balance"), WALLET_BALANCE.get(self.ccxt_id))

    # --- orders ----------------------------------------------------------------------------------
    def native(self, order: Order, instrument: Instrument) -> NativePlan | None:
        """How this venue holds the conditional `order` itself (venues/native_orders.py), or None: emulate it."""
        return native_plan(self.ccxt_id, order, instrument, self._order_types(instrument.symbol))

    def native_oco(self, limit_leg: Order, stop_leg: Order, instrument: Instrument) -> bool:
        """Whether this venue takes the OCO as one order list."""
        return oco_plan(self.ccxt_id, limit_leg, stop_leg, instrument, limit_leg.client_oid) is not None

    def _order_types(self, symbol: str) -> frozenset[str] | None:
        """The venue's order types of this market, when the exchange lists them (Binance `orderTypes`)."""
        market = (self.client.markets or {}).get(symbol) or {}
        types = (market.get("info") or {}).get("orderTypes")
        return frozenset(types) if isinstance(types, list) else None

    async def place(
        self, order: Order, instrument: Instrument, plan: NativePlan | None = None, as_type: OrderType | None = None
    ) -> OrderReport:
        """Place `order` (its client_oid is the venue's client id) and report what the venue did at once.

        `plan`: a conditional order the venue holds natively (`native`); `as_type`: send it as
        this plain type (the child an emulated conditional order fires).
        Refusals: InvalidInput (off the grid, bad client id, or the venue refused the order as
        placed: filters, post-only that would take), InsufficientFunds, Conflict (the client id is
        taken by a different open order), NotReady (retry later; `order_state_unknown` when the
        outcome could not be learnt: `fetch` before placing again).
        """
        check_client_oid(self.ccxt_id, self.exchange, order.client_oid)
        args = order_args(order, instrument, plan, as_type)
        if instrument.is_perpetual:  # the leg it trades and its reduce-only flag, as this exchange names them
            args[4].update(perp_order_params(
                self.ccxt_id, leg=order.position_side.value, reduce_only=order.reduce_only,
                closes_leg=(order.position_side is PositionSide.LONG) == (order.side is Side.SELL),
            ))
        self.instruments.setdefault(instrument.symbol, instrument)
        if order.client_oid in self.state.by_client:
            report = await self._lookup(order.client_oid, instrument)
            if report is not None:
                return same_order(order, report)
        return await self._send(order, instrument, args, self.max_resends)

    async def _send(
        self, order: Order, instrument: Instrument, args: tuple[str, str, str, str | None, dict[str, Any]], resends: int
    ) -> OrderReport:
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        kind, side, amount, price, params = args
        try:
            raw = await self.guarded("create_order", order.symbol, kind, side, amount, price, dict(params))
        except Exception as exc:
            error = venue_error(exc, exchange=self.exchange, operation=f"create_order {order.client_oid}")
            if isinstance(error, Conflict):  # the venue has an open order with this client id
                report = await self._lookup(order.client_oid, instrument)
                if report is not None:
                    return same_order(order, report)
            if not outcome_unknown(error):
                raise error from exc
            log.warning("order outcome unknown, asking the venue", exchange=self.exchange, client_oid=order.client_oid,
                        code=error.code)
            report = await self._lookup_after(order, instrument, error)
            wait = sent_at + self.order_ttl - loop.time()
            if report is None and wait > 0:
                await asyncio.sleep(wait)  # until the request can no longer reach the venue
                report = await self._lookup_after(order, instrument, error)
            if report is not None:
                return same_order(order, report)
            if resends <= 0:
                raise error from exc  # it never reached the venue: placing again is safe
            log.warning("order never reached the venue, sending it again", exchange=self.exchange,
                        client_oid=order.client_oid)
            return await self._send(order, instrument, args, resends - 1)
        report = order_report(raw, instrument, client_oid=order.client_oid)
        if report.filled_size > sum(f.size for f in report.fills):  # the answer lists no fills (Binance USD-M): ask
            fills = await self.order_fills(report.venue_order_id, instrument, order.client_oid)
            report = order_report(raw, instrument, client_oid=order.client_oid, fills=fills)
        self.state.track(report)
        return report

    async def place_oco(self, limit_leg: Order, stop_leg: Order, instrument: Instrument) -> tuple[OrderReport, OrderReport]:
        """Place an OCO as one order list (the list's client id is the limit leg's); both legs' reports.

        The list is never sent twice: when its outcome is unknown, its limit leg is looked up
        by client id, and if the venue cannot be asked the caller gets NotReady
        `order_state_unknown` (the live venue's reconciliation finds the legs, or rejects them
        once the request can no longer arrive).
        """
        for leg in (limit_leg, stop_leg):
            check_client_oid(self.ccxt_id, self.exchange, leg.client_oid)
        plan = oco_plan(self.ccxt_id, limit_leg, stop_leg, instrument, limit_leg.client_oid)
        if plan is None:
            raise InvalidInput("oco_not_native", f"{self.exchange} takes no order list for this OCO")
        self.instruments.setdefault(instrument.symbol, instrument)
        request = {**plan.request, "symbol": self.client.market_id(instrument.symbol)}
        try:
            raw = await self.guarded(plan.method, request)
        except Exception as exc:
            error = venue_error(exc, exchange=self.exchange, operation=f"order list {limit_leg.client_oid}")
            if not outcome_unknown(error):
                raise error from exc
            limit_report = await self._lookup_after(limit_leg, instrument, error)
            if limit_report is None:
                raise NotReady("order_state_unknown", f"{self.exchange}: the order list {limit_leg.client_oid} may "
                               "not have arrived; it is looked up again before anything is resent",
                               client_oid=limit_leg.client_oid) from exc
            stop_report = await self._lookup_after(stop_leg, instrument, error)
            if stop_report is None:
                raise venue_error(bad_response(self.exchange, "order list", "a leg of the list is missing"),
                                  exchange=self.exchange, operation="order list") from exc
            return limit_report, stop_report
        market = self.client.market(instrument.symbol)
        by_client: dict[str, OrderReport] = {}
        for leg_raw in raw.get("orderReports") or ():
            report = order_report(self.client.parse_order(leg_raw, market), instrument)
            self.state.track(report)
            by_client[report.client_oid] = report
        try:
            return by_client[limit_leg.client_oid], by_client[stop_leg.client_oid]
        except KeyError:
            raise venue_error(bad_response(self.exchange, "order list", f"the answer lacks a leg: {sorted(by_client)}"),
                              exchange=self.exchange, operation="order list") from None

    async def _lookup_after(self, order: Order, instrument: Instrument, cause: Exception) -> OrderReport | None:
        try:
            return await self._lookup(order.client_oid, instrument)
        except NotReady as exc:
            raise NotReady(
                "order_state_unknown",
                f"{self.exchange}: placing {order.client_oid} failed ({cause}) and the venue cannot be asked now "
                f"({exc.message}); fetch it by client id before placing it again",
                client_oid=order.client_oid,
            ) from exc

    async def fetch(self, order: Order) -> OrderReport:
        """The venue's current report of `order`, found by client id, with all its fills (NotFound if none)."""
        report = await self._lookup(order.client_oid, self._instrument(order.symbol))
        if report is None:
            raise NotFound(
                "exchange_order_not_found", f"{self.exchange} has no order {order.client_oid}", client_oid=order.client_oid
            )
        return report

    async def cancel(self, order: Order) -> OrderReport:
        """Cancel `order` by client id. An order that finished first is reported as it finished; NotFound otherwise."""
        instrument = self._instrument(order.symbol)
        try:
            raw = await self.call("cancel_order", None, order.symbol, {"clientOrderId": order.client_oid})
        except NotFound:
            report = await self._lookup(order.client_oid, instrument)
            if report is None or not report.is_done:
                raise
            return report
        report = order_report(raw, instrument, client_oid=order.client_oid, fills=())
        if report.filled_size:
            report = order_report(raw, instrument, client_oid=order.client_oid,
                                  fills=await self.order_fills(report.venue_order_id, instrument, order.client_oid))
        self.state.track(report)
        return report

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """The account's open orders (of `symbol`, or all), without fills; markets not loaded are left out."""
        raws = await self.call("fetch_open_orders", normalize_symbol(symbol) if symbol else None)
        reports = []
        for raw in raws:
            instrument = self.instruments.get(raw.get("symbol"))
            if instrument is None:
                continue
            known = self.state.orders.get(str(raw.get("id")))
            reports.append(order_report(raw, instrument, client_oid=known.client_oid if known else None, fills=()))
        return reports

    async def fills_since(self, symbol: str, since_ms: int, *, page: int = _TRADES_PAGE) -> list[FillReport]:
        """Every fill of ours in `symbol` at or after `since_ms` (ms since the epoch), oldest first, paged.

        Pages continue by trade id where the venue allows it (Binance `fromId`), else by time
        (repeats at the page boundary are dropped by trade id).
        """
        instrument = self._instrument(normalize_symbol(symbol))
        by_id = TRADES_FROM_ID.get(self.ccxt_id)
        fills: dict[str, FillReport] = {}
        since: int | None = since_ms
        params: dict[str, Any] = {}
        while True:
            batch = await self.call("fetch_my_trades", instrument.symbol, since, page, params)
            for raw in batch:
                fill = self.fill(raw, instrument)
                fills.setdefault(fill.trade_id, fill)
            if len(batch) < page:
                break
            last = batch[-1]
            if by_id is not None:
                since, params = None, {by_id: int(last["id"]) + 1}
            elif (last.get("timestamp") or 0) > (since or 0):
                since = last["timestamp"]
            else:  # a whole page in one millisecond: time cannot page further
                raise DomainError(
                    "exchange_paging_stuck",
                    f"{self.exchange} returned {page} trades of {symbol} in one millisecond; ask with a larger page",
                )
        return list(fills.values())

    async def reports(self) -> AsyncIterator[Report]:
        """Execution reports as they happen (OrderReport / FillReport), until the consumer stops iterating.

        Apply them idempotently: an OrderReport's cumulative sizes are authoritative, a fill is
        applied once by its trade id (it may arrive before or after the OrderReport of the same
        execution, and may already have been returned by place/cancel/fetch).
        """
        async for report in self._stream.run():
            yield report

    # --- helpers ---------------------------------------------------------------------------------
    def _instrument(self, symbol: str) -> Instrument:
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise InvalidInput(
                "unknown_symbol", f"{self.exchange} {symbol} is not loaded (load_instruments first)", symbol=symbol
            )
        return instrument

    async def call(self, method: str, *args: Any) -> Any:
        """One CCXT call, its failure translated (the only way this adapter talks to CCXT, but create_order)."""
        try:
            return await self.guarded(method, *args)
        except Exception as exc:
            raise venue_error(exc, exchange=self.exchange, operation=method) from exc

    async def guarded(self, method: str, *args: Any) -> Any:
        """One CCXT REST call through the venue's breaker, untranslated (DependencyUnavailable when it is open).

        Only the venue's unavailability counts against the breaker (`venue_unavailable`): a
        refused order or an unknown symbol is the venue answering.
        """
        if self.breaker is None:
            return await getattr(self.client, method)(*args)
        async with self.breaker.call(venue_unavailable):
            return await getattr(self.client, method)(*args)

    async def _lookup(self, client_oid: str, instrument: Instrument) -> OrderReport | None:
        """The venue's order with this client id and all its fills, or None when the venue has none."""
        try:
            raw = await self.call("fetch_order", None, instrument.symbol, {"clientOrderId": client_oid})
        except NotFound:
            return None
        report = order_report(raw, instrument, client_oid=client_oid, fills=())
        if report.filled_size:
            fills = await self.order_fills(report.venue_order_id, instrument, client_oid)
            report = order_report(raw, instrument, client_oid=client_oid, fills=fills)
        self.state.track(report)
        return report

    async def order_fills(self, venue_order_id: str, instrument: Instrument, client_oid: str) -> list[FillReport]:
        """The fills of one order, as the venue lists them (the reports stream reconciles with these too)."""
        by_param = ORDER_TRADES_PARAM.get(self.ccxt_id)
        if by_param is None:
            raws = await self.call("fetch_order_trades", venue_order_id, instrument.symbol)
        else:  # an exchange whose CCXT class has no fetch_order_trades here: our trades filtered by the order's id
            raws = await self.call("fetch_my_trades", instrument.symbol, None, None, {by_param: venue_order_id})
        return [fill_report(t, instrument, client_oid=client_oid, venue_order_id=venue_order_id) for t in raws]

    def fill(self, raw: Mapping[str, Any], instrument: Instrument, side: Side | None = None) -> FillReport:
        """A CCXT trade of ours as a FillReport, with the client order id when the order is known."""
        known = self.state.orders.get(str(raw.get("order")))
        return fill_report(raw, instrument, client_oid=known.client_oid if known else "", side=side)

    def open_tracked(self) -> list[tuple[str, str, str]]:
        """(venue order id, client_oid, symbol) of the orders this venue placed or saw and believes open."""
        return [(vid, k.client_oid, k.symbol) for vid, k in self.state.orders.items() if k.status is OrderStatus.OPEN]
