"""The live venue: the gateway's orders on a real account through a CcxtVenue, its reports in the ledger.

The markets are mirrored from the exchange's public feed exactly as for a paper exchange
(a `MarketMirror`: books, trades, status), but nothing is matched here. An order is checked and its hold
taken on the mirror (`core.execution.accept_order`), written ahead as `pending` so that a
crash cannot forget an order the venue may have (`VenueHost.record(..., notify=False)`),
sent to the venue, and from then on it
changes only by what the venue reports: the answer to place / cancel / fetch, the report
stream (user data WebSocket, or polling), and a reconciliation loop. Fills are applied once
each by the venue's trade id and settled on the order's wallet set like paper fills; the
status follows the venue's cumulative report. Everything it needs of the gateway comes
through the `GatewayHost` port it is built with (venues/hosted.py): ledger, fill ids, clock,
record, log, the live account, the stored fills of an order.

The account's balances become the exchange's wallets: at every start the unallocated
wallets are brought to what the venue holds (`venue_sync` lines), so deposits and
withdrawals made elsewhere show up, and wallet sets partition the real money the same way
they partition paper money.

Known limits (docs/VENUES.md): fees paid in a third currency (BNB) are not in the ledger;
orders placed outside coinwire are not followed; balances are synced at start, not
continuously.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from coinwire.config import ExchangeConfig
from coinwire.core.book_sync import RESYNC
from coinwire.core.errors import CoinwireError, Conflict, DomainError, NotFound, NotReady
from coinwire.core.execution import accept_order, release_hold, settle_fills
from coinwire.core.ledger import Balance
from coinwire.core.orders import CONDITIONAL_TYPES, DoneReason, Fill, Order, OrderStatus, OrderType, Side
from coinwire.core.wallets import WalletLine
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.base import Execution
from coinwire.venues.hosted import GatewayHost
from coinwire.venues.paper import MarketMirror
from coinwire.venues.reports import FillReport, Liquidity, OrderReport

if TYPE_CHECKING:  # CCXT costs a third of a second to import: only processes with a live exchange pay it
    from coinwire.venues.ccxt_errors import Backoff
    from coinwire.venues.ccxt_venue import CcxtVenue

__all__ = ["LiveVenue", "connect_venue"]

log = structlog.get_logger("coinwire.gateway.live")


class Credentials(Protocol):
    """The keys a live venue signs with (the vault's `auth.vault.Credentials` is one; venues sit below auth)."""

    @property
    def api_key(self) -> str: ...

    @property
    def secret(self) -> str: ...

    @property
    def password(self) -> str | None: ...


def connect_venue(cfg: ExchangeConfig, creds: Credentials) -> CcxtVenue:
    """The CcxtVenue of a live exchange: a CCXT client holding the account's keys to sign its requests."""
    from coinwire.venues.ccxt_venue import CcxtVenue

    return CcxtVenue.connect(
        cfg.name,
        cfg.ccxt_id or cfg.name,
        api_key=creds.api_key,
        secret=creds.secret,
        password=creds.password,
        urls=cfg.ccxt_urls,
        options=cfg.ccxt_options,
        timeout=cfg.ccxt_timeout,
        poll_interval=cfg.poll_interval,
        reconcile_interval=cfg.live_reconcile_interval,
        websocket=cfg.ccxt_websocket,
    )


class LiveVenue(MarketMirror):
    """One live account: mirrored markets for checks and strategies, orders and funds at the venue.

    Client order ids: a new order naming the client_oid of an order of the same owner still
    open here is refused (`duplicate_client_oid`) before anything is written, as Binance
    refuses a client id an open order has; the gateway answers repeated commands.
    """

    kind = "live"  # orders execute at the real exchange, through CCXT
    mode = "live"
    virtual_funds = False

    def __init__(
        self, cfg: ExchangeConfig, host: GatewayHost, credentials: Callable[[], Awaitable[Credentials]], backoff: Backoff | None = None
    ) -> None:
        super().__init__(cfg.name, host.fill_ids, cfg.feed)
        self.cfg = cfg
        self.host = host
        self._credentials = credentials
        self.client: CcxtVenue = _NotConnected(cfg.name)  # type: ignore[assignment]  # until _connect has the keys
        self.open: dict[int, Order] = {}  # not done: pending (written ahead) and open at the venue
        self.account_synced = False
        self.account_id = 0  # the live account (whose keys these are), known once connected
        self._trades: dict[int, set[str]] = {}  # order id -> venue trade ids applied
        self._by_venue_id: dict[str, int] = {}  # venue order id -> order id
        self._margin_ppm = round(cfg.live_market_margin * 1_000_000)
        self._lock = asyncio.Lock()  # one application of venue news at a time (a fetch may await inside)
        if backoff is None:
            from coinwire.venues.ccxt_errors import Backoff

            backoff = Backoff()
        self._backoff = backoff
        self._tasks: list[asyncio.Task[Any]] = []

    # --- lifecycle ------------------------------------------------------------------------------
    def restore_order(self, order: Order) -> bool:
        """Follow an order a previous run left not done (at once: it is asked about at the venue, never matched here)."""
        self.open[order.id] = order
        return True

    def open_orders(self) -> Iterable[Order]:
        return self.open.values()

    def balances(self, account: int) -> dict[str, Balance]:
        return self.host.ledger.account_balances(self.name, account)

    def take_back(self, order: Order) -> None:
        self._forget(order)

    def forget_orders(self) -> None:
        """Nothing to drop: the orders restored from the store replace those followed (the trade ids applied stay)."""

    @property
    def funds_known(self) -> bool:
        return self.account_synced  # the unallocated wallets are the account's only once its balances are read

    def computed_status(self) -> str:
        status = super().computed_status()
        return "starting" if status == "ready" and not self.account_synced else status

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._connect(), name=f"live-{self.name}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()

    async def _open_client(self) -> None:
        self.client = connect_venue(self.cfg, await self._credentials())  # decrypted here, kept by the signing client only

    async def _connect(self) -> None:
        """Keys, markets, balances and the orders a previous run left, then follow the venue's reports."""
        await self._retrying(self._open_client)
        instruments = await self._retrying(self.client.load_instruments, self.cfg.symbols or None)
        host = self.host
        self.add_instruments(instruments)
        host.ledger.add_exchange(self.name, self.currencies())
        self.account_id = (await host.live_account(self.name, self.cfg.credentials_user or None)).id
        for order in list(self.open.values()):
            self._trades[order.id] = {f.ext_id for f in await host.order_fills(order.id) if f.ext_id}
        await self._retrying(self.reconcile, True)  # first what our orders did while away: the sync sees only the rest
        await self._retrying(self.sync_balances)
        self.account_synced = True
        await host.refresh_status(self)
        self._tasks.append(asyncio.create_task(self._follow_reports(), name=f"live-reports-{self.name}"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name=f"live-housekeeping-{self.name}"))

    async def _retrying(self, step: Any, *args: Any) -> Any:
        """Run a start-up step until the venue answers (the exchange stays `starting` meanwhile)."""
        while True:
            try:
                result = await step(*args)
                self._backoff.reset()
                return result
            except CoinwireError as exc:
                log.warning("live exchange step failed; retrying", exchange=self.name, step=step.__name__, error=str(exc))
                await asyncio.sleep(self._backoff.next_delay())

    async def sync_balances(self) -> None:
        """Bring each unallocated wallet to the venue's total (free + used) for the currencies traded here."""
        host = self.host
        balances = await self.client.balances()
        only = (self.account_id,)
        totals = host.ledger.exchange_totals(only)
        unallocated = host.ledger.unallocated(only)
        ts = host.now()
        lines: list[WalletLine] = []
        for currency in self.currencies():
            free, used = balances.get(currency, (0, 0))
            ours = totals.get((self.name, currency))
            diff = free + used - (ours.balance if ours else 0)
            if diff < 0:
                spare = unallocated.get((self.name, currency))
                take = min(-diff, spare.available if spare else 0)
                if take < -diff:
                    log.error("the account holds less than coinwire's wallet sets", exchange=self.name, currency=currency)
                    await host.log("error", "coinwire.gateway", f"exchange {self.name}: the account holds less {currency} "
                                   "than its wallet sets were given; deallocate before trading")
                diff = -take
            if diff:
                lines += host.ledger.sync_venue(self.name, currency, diff, ts, self.account_id)
        if lines:
            await host.record(Execution(lines=lines))
            log.info("live balances synced", exchange=self.name, lines=len(lines))

    # --- market data: the mirror only ------------------------------------------------------------
    async def on_market(self, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> bool:
        """Keep the mirrored book (checks, holds, strategies); nothing rests on it, so nothing fills here."""
        market = self.markets.get(message.symbol)
        if market is None:
            return False
        market.on_market(message)
        if isinstance(message, (BookDelta, BookSnapshot)):
            if market.sync.state == RESYNC:
                snapshot = self.host.snapshot(self.name, market.instrument.symbol)
                if snapshot is not None:
                    market.on_book(snapshot)
            await self.host.refresh_status(self)
        return True

    # --- orders ------------------------------------------------------------------------------------
    async def place(self, order: Order, budget: int | None = None, *, allow_immediate: bool = False) -> Execution:
        """Check and hold on the mirror, write ahead, send; the venue's answer decides what happened."""
        if order.type in CONDITIONAL_TYPES:
            raise DomainError("order_type_unsupported", f"{order.type.value} orders are not offered on live exchanges yet")
        host = self.host
        for other in self.open.values():
            if other.client_oid == order.client_oid and other.owner_id == order.owner_id:
                raise Conflict("duplicate_client_oid", f"client_oid {order.client_oid!r} names an order open on {self.name}",
                               order_id=other.id)
        market = self.markets[order.symbol]
        lines = accept_order(host.ledger, market.engine, order, order.created_at, budget=budget, margin_ppm=self._margin_ppm)
        self.open[order.id] = order
        self._trades[order.id] = set()
        # written ahead (notified once the venue answers); a refusal by the store takes it back (`take_back`)
        await host.record(Execution([order], [], lines, placed=order), notify=False)
        try:
            report = await self.client.place(order, market.instrument)
        except NotReady as exc:
            if exc.code == "order_state_unknown":
                log.warning("live order outcome unknown; reconciliation will find it", exchange=self.name, order_id=order.id)
                raise  # the order stays pending: the reconciliation loop asks the venue
            await self._reject(order, exc)
            raise
        except CoinwireError as exc:  # the venue refused it (filters, funds, client id): it never existed there
            await self._reject(order, exc)
            raise
        return await self.apply(order, report.fills, report)

    async def place_oco(self, limit_leg: Order, stop_leg: Order) -> Execution:
        """OCO lists are not offered on live exchanges yet: refused before anything is held or sent."""
        raise DomainError("order_type_unsupported", "OCO orders are not offered on live exchanges yet")

    async def cancel(self, order: Order, reason: DoneReason | None = None) -> Execution:
        order = self.open.get(order.id, order)  # the order followed here, not a copy read from the store
        if order.status is OrderStatus.PENDING:
            raise NotReady("order_pending", f"order {order.id} is not acknowledged by {self.name} yet; cancel it again shortly")
        report = await self.client.cancel(order)
        return await self.apply(order, report.fills, report, reason=reason)

    async def expire(self, now: int) -> None:
        """`cancel_after` deadlines: the venue has no such order type, so they are cancels sent from here."""
        for order in [o for o in self.open.values() if o.status is OrderStatus.OPEN and o.expires_at and o.expires_at <= now]:
            try:
                await self.cancel(order, DoneReason.EXPIRED)
            except CoinwireError as exc:
                log.warning("cannot expire a live order now", exchange=self.name, order_id=order.id, error=str(exc))

    async def _reject(self, order: Order, cause: CoinwireError) -> None:
        host = self.host
        ts = host.now()
        order.move(OrderStatus.DONE, ts, DoneReason.REJECTED)
        lines = release_hold(host.ledger, self.markets[order.symbol].instrument, order, ts)
        self._forget(order)
        await host.record(Execution([order], [], lines))
        await host.log("warning", f"user.orders.{order.run_id or 'manual'}",
                       f"Order {order.client_oid} was refused by {self.name}: {cause.message}", owner_id=order.owner_id)

    def _forget(self, order: Order) -> None:
        self.open.pop(order.id, None)
        self._trades.pop(order.id, None)

    # --- venue news --------------------------------------------------------------------------------
    async def apply(
        self, order: Order, fills: Sequence[FillReport], report: OrderReport | None, reason: DoneReason | None = None
    ) -> Execution:
        """Apply what the venue says of `order` (new fills once each, then its status); what changed, recorded."""
        host = self.host
        inst = self.markets[order.symbol].instrument
        async with self._lock:
            seen = self._trades.setdefault(order.id, set())
            if report is not None:
                self._by_venue_id[report.venue_order_id] = order.id
                unseen = sum(f.size for f in fills if f.trade_id not in seen)
                if report.filled_size > order.filled_size + unseen:  # fills still on their way: ask for all of them
                    report = await self.client.fetch(order)
                    fills = report.fills
            ts = report.ts if report is not None else max((f.ts for f in fills), default=host.now())
            if order.funds:  # a buy by funds: the venue sizes it from the quote amount; the mirror's preview only held it
                self._venue_sized(order, fills, report, seen)
            new = [self._fill(order, inst, f) for f in fills if f.trade_id not in seen and self._fits(order, f)]
            spent = 0
            for fill, raw in new:
                seen.add(raw.trade_id)
                order.record_fill(fill.price, fill.size, fill.notional, fill.fee, fill.ts, fill.fee_currency)
                spent += fill.notional + (fill.fee if fill.fee_currency is None else 0)
            changed = bool(new)
            if order.status is OrderStatus.PENDING and (report is not None or new):
                order.move(OrderStatus.OPEN, ts)
                changed = True
            if report is not None and report.is_done and not order.is_done:
                order.move(OrderStatus.DONE, ts, reason or report.done_reason(order.type) or DoneReason.REJECTED)
                changed = True
            if not changed:
                return Execution()
            market_cost = None
            if order.type is OrderType.MARKET and order.side is Side.BUY and not order.is_done:
                market_cost = max(0, host.ledger.hold_of(order.id) - spent)
            fill_list = [fill for fill, _ in new]
            lines = settle_fills(host.ledger, inst, order, fill_list, ts, market_cost=market_cost)
            if order.is_done:
                self._forget(order)
            execution = Execution([order], fill_list, lines)
            await host.record(execution)
        return execution

    @staticmethod
    def _venue_sized(order: Order, fills: Sequence[FillReport], report: OrderReport | None, seen: set[str]) -> None:
        """Size a buy by funds as the venue did: its reported quantity, or at least what it filled."""
        filled = order.filled_size + sum(f.size for f in fills if f.trade_id not in seen)
        size = max(filled, report.filled_size if report is not None else 0)
        if report is not None and report.is_done:
            order.size = size  # done: exactly what it bought
        elif size > order.size:
            order.size = size

    def _fits(self, order: Order, report: FillReport) -> bool:
        if report.size <= order.remaining:
            return True
        log.error("venue reports a fill beyond the order's size; ignored", exchange=self.name, order_id=order.id,
                  trade_id=report.trade_id)
        return False

    def _fill(self, order: Order, inst: Any, report: FillReport) -> tuple[Fill, FillReport]:
        fee, fee_currency = report.fee, report.fee_currency or None
        if fee_currency == inst.quote or not fee:
            fee_currency = None
        elif fee_currency != inst.base:  # BNB and the like: outside the traded pair's wallets
            log.warning("fee in a third currency is not in the ledger", exchange=self.name, currency=fee_currency)
            fee, fee_currency = 0, None
        fill = Fill(
            id=self.host.fill_ids.next(), order_id=order.id, client_oid=order.client_oid, exchange=self.name,
            symbol=order.symbol, side=order.side, order_type=order.type, price=report.price, size=report.size,
            notional=report.notional, fee=fee, maker=report.liquidity is Liquidity.MAKER, ts=report.ts,
            run_id=order.run_id, wallet_set_id=order.wallet_set_id, ext_id=report.trade_id, fee_currency=fee_currency,
            account_id=order.account_id,
        )
        return fill, report

    def _order_of(self, report: OrderReport | FillReport) -> Order | None:
        order_id = self._by_venue_id.get(report.venue_order_id)
        if order_id is None and report.client_oid:  # the venue knows our client ids, not whose they are: one account
            order_id = next((o.id for o in self.open.values() if o.client_oid == report.client_oid), None)
        return self.open.get(order_id) if order_id is not None else None

    async def _follow_reports(self) -> None:
        while True:
            try:
                async for report in self.client.reports():
                    self._backoff.reset()
                    order = self._order_of(report)
                    if order is None:
                        continue  # not ours, or already done
                    if isinstance(report, FillReport):
                        await self.apply(order, (report,), None)
                    else:
                        await self.apply(order, report.fills, report)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("live report stream failed; restarting it", exchange=self.name)
                await self.host.log("error", "coinwire.gateway", f"exchange {self.name}: report stream failed ({exc})")
                await asyncio.sleep(self._backoff.next_delay())

    async def reconcile(self, strict: bool = False) -> None:
        """Ask the venue about every order not done: apply what it knows; a pending order it never got is rejected.

        `strict` (at start, before the balances are synced) fails when the venue cannot be asked,
        because an order's fills missed here would be counted again as a deposit by the sync.
        """
        now = self.host.now()
        for order in list(self.open.values()):
            try:
                report = await self.client.fetch(order)
            except NotFound:
                if order.status is OrderStatus.PENDING and now - order.created_at > self.client.order_ttl * 1e9:
                    await self._reject(order, NotFound("exchange_order_not_found", "the order never reached the venue"))
                elif order.status is OrderStatus.OPEN:
                    log.error("an open order is unknown to the venue", exchange=self.name, order_id=order.id)
                continue
            except CoinwireError as exc:
                if strict:
                    raise
                log.warning("cannot reconcile a live order now", exchange=self.name, order_id=order.id, error=str(exc))
                continue
            await self.apply(order, report.fills, report)

    async def _housekeeping(self) -> None:
        """The periodic reconciliation (the host's expiry loop asks `expire` for `cancel_after` deadlines)."""
        while True:
            await asyncio.sleep(self.cfg.live_reconcile_interval)
            await self.reconcile()


class _NotConnected:
    """The venue before the exchange has its keys: every call answers NotReady, closing does nothing."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange

    def __getattr__(self, name: str) -> Any:
        async def not_ready(*args: Any, **kwargs: Any) -> Any:
            raise NotReady("exchange_not_ready", f"exchange {self.exchange} is not connected to its venue yet; retry shortly")

        return not_ready

    async def close(self) -> None:
        return None
