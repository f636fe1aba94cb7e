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

Conditional orders (stops, take-profits, trailing stops, OCO): where the exchange holds the
type itself (`venues/native_orders.py`, the table, and `CcxtVenue.native`) the order is sent
as the venue's own and its reports move it: untriggered while the venue says it is not working,
triggered once it is, then the child's fills; an OCO goes as one order list and the leg the
venue ends when the other fills or fires is resolved here with `core.execution.resolve_oco`
(the list holds its funds once). Such orders keep protecting the account while coinwire is
down. Anything else is emulated (`Order.emulated`): held with `accept_conditional`, armed in a
`core.conditional.TriggerBook` on the mirrored market, and, when the mirror's prices fire it,
written `triggered` before its child (market, or a limit per its time in force) is sent, so it
never fires twice; a child the venue cannot take now is retried with the backoff and logged
until it is sent, never dropped, and a restart sends it if the venue has no order under its
client id.

Known limits (docs/VENUES.md): fees paid in a third currency (BNB) are not in the ledger;
orders placed outside coinwire are not followed; balances are synced at start, not
continuously; emulated orders fire only while coinwire runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from coinwire.config import ExchangeConfig
from coinwire.core.book_sync import RESYNC
from coinwire.core.breaker import DependencyGuard
from coinwire.core.conditional import (
    TriggerBook,
    bracket_children,
    check_bracket,
    check_conditional,
    check_oco,
    decode_bracket,
    fires,
    follow,
    trigger_price,
)
from coinwire.core.errors import CoinwireError, Conflict, DomainError, InvalidInput, NotFound, NotReady
from coinwire.core.execution import accept_conditional, accept_order, child_type, release_hold, resolve_oco, settle_fills
from coinwire.core.funds import oco_holds, required_hold
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance
from coinwire.core.margin import mark_price as median_mark
from coinwire.core.numbers import ATTO_DECIMALS, ceil_div
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType, PositionSide, Side, TriggerSource
from coinwire.core.perp_execution import accept_perp_order, release_perp_hold, settle_perp_fills
from coinwire.core.perp_execution import set_hedge_mode as core_set_hedge_mode
from coinwire.core.perp_execution import set_leverage as core_set_leverage
from coinwire.core.perp_execution import set_margin_mode as core_set_margin_mode
from coinwire.core.positions import HedgeMode, MarginMode
from coinwire.core.wallets import WalletLine
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.base import MARK_MEDIAN, MARK_VENUE, Execution
from coinwire.venues.hosted import GatewayHost
from coinwire.venues.paper import MarketMirror, PaperMarket
from coinwire.venues.reports import FillReport, Liquidity, OrderReport, ReportReason

if TYPE_CHECKING:  # CCXT costs a third of a second to import: only processes with a live exchange pay it
    from coinwire.venues.ccxt_errors import Backoff
    from coinwire.venues.ccxt_perp import PerpAccount
    from coinwire.venues.ccxt_venue import CcxtVenue

__all__ = ["LiveVenue", "connect_venue"]

# how an OCO's legs go to the venue (`LiveVenue._hold_list`)
_ARMED = "armed"  # both emulated
_LIST = "list"  # one order list at the venue
_LIMIT = "limit"  # the limit leg at the venue, the stop leg emulated
_ONE = "one"  # a bracket's lone child at the venue (a limit, or a conditional order the venue holds)

log = structlog.get_logger("coinwire.gateway.live")


class Credentials(Protocol):
    """The keys a live venue signs with (the vault's `auth.vault.Credentials` is one; venues sit below auth)."""

    @property
    def api_key(self) -> str: ...

    @property
    def secret(self) -> str: ...

    @property
    def password(self) -> str | None: ...


def connect_venue(cfg: ExchangeConfig, creds: Credentials, breaker: DependencyGuard | None = None) -> CcxtVenue:
    """The CcxtVenue of a live exchange: a CCXT client holding the account's keys to sign its requests.

    `breaker`: the exchange's circuit breaker, which every REST call of the venue passes.
    """
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
        breaker=breaker,
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
        self, cfg: ExchangeConfig, host: GatewayHost, credentials: Callable[[], Awaitable[Credentials]], backoff: Backoff | None = None,
        breaker: DependencyGuard | None = None,
    ) -> None:
        super().__init__(cfg.name, host.fill_ids, cfg.feed)
        self.cfg = cfg
        self.host = host
        self._credentials = credentials
        self.breaker = breaker  # the venue's `ccxt:<exchange>` breaker, handed to each client connected
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
        self._triggers: dict[str, TriggerBook] = {}  # symbol -> the emulated conditional orders armed on its mirror
        self._sending: dict[int, asyncio.Task[None]] = {}  # fired emulated orders' children, a bracket's, on their way
        self._marks: dict[str, int] = {}  # perpetual symbol -> the venue's latest mark price (its position reports)
        self._own: dict[str, Instrument] = {}  # perpetual symbol -> the instrument the account loaded (with its brackets)

    # --- lifecycle ------------------------------------------------------------------------------
    def restore_order(self, order: Order) -> bool:
        """Follow an order a previous run left not done (at once: it is asked about at the venue, never matched here).

        An emulated order still untriggered is armed again on its mirrored market once the market is known.
        """
        self.open[order.id] = order
        if order.emulated and order.status is OrderStatus.UNTRIGGERED and order.symbol in self.markets:
            self._arm(order)
        return True

    def open_orders(self) -> Iterable[Order]:
        return self.open.values()

    def add_instruments(self, instruments: Iterable[Instrument]) -> list[PaperMarket]:
        """Mirror these markets; a perpetual is always the account's own instrument (its brackets are a signed read)."""
        return super().add_instruments(self._own.get(i.symbol, i) for i in instruments)

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
        tasks = [*self._tasks, *self._sending.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.close()

    async def _open_client(self) -> None:
        self.client = connect_venue(self.cfg, await self._credentials(), self.breaker)  # decrypted here, kept by the signing client only

    async def _connect(self) -> None:
        """Keys, markets, balances and the orders a previous run left, then follow the venue's reports."""
        await self._retrying(self._open_client)
        instruments = await self._retrying(self.client.load_instruments, self.cfg.symbols or None)
        host = self.host
        for inst in instruments:
            if inst.is_perpetual:
                self._own[inst.symbol] = inst
                market = self.markets.get(inst.symbol)
                if market is not None and market.instrument != inst:  # the feed's copy, without the account's brackets
                    del self.markets[inst.symbol]  # mirrored again with the venue's (the book resyncs from a snapshot)
        self.add_instruments(instruments)
        for order in list(self.open.values()):
            if order.emulated and order.status is OrderStatus.UNTRIGGERED:
                self._arm(order)
        host.ledger.add_exchange(self.name, self.currencies())
        for inst in self._perpetuals().values():
            host.ledger.positions.register(inst)  # a cross pool's margin reads every symbol's brackets
        self.account_id = (await host.live_account(self.name, self.cfg.credentials_user or None)).id
        for order in list(self.open.values()):
            self._trades[order.id] = {f.ext_id for f in await host.order_fills(order.id) if f.ext_id}
        await self._retrying(self.reconcile, True)  # first what our orders did while away: the sync sees only the rest
        if self._perpetuals():
            await self._retrying(self.refresh_positions, True)  # the venue's positions over the stored ones
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
        book = self._triggers.get(message.symbol)
        if book:  # emulated conditional orders armed on this market
            fired = self._fired(book, market, message)
            moved = [o for o in book.moved if o.status is OrderStatus.UNTRIGGERED]
            if moved:  # trailing stops whose level moved: stored, so a restart arms them where they were
                await self.host.record(Execution(moved))
            for order in fired:
                await self._triggered(order)
        return True

    @staticmethod
    def _fired(book: TriggerBook, market: PaperMarket, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> list[Order]:
        """The armed orders this market message fires: trades fire `last` (and, on spot, `mark`) triggers, the touch `bid_ask`."""
        if isinstance(message, TradeTick):
            fired = book.on_price(TriggerSource.LAST, message.price, message.ts)
            moved = book.moved
            if len(book):  # a spot market's mark is its last trade (as on paper)
                fired += book.on_price(TriggerSource.MARK, message.price, message.ts)
                book.moved = moved + book.moved
            return fired
        if isinstance(message, BookTicker):
            return book.on_touch(message.bid, message.ask, message.ts)
        if market.synced:
            return book.on_touch(market.engine.book.best_bid(), market.engine.book.best_ask(), message.ts)
        return []

    # --- orders ------------------------------------------------------------------------------------
    async def place(self, order: Order, budget: int | None = None, *, allow_immediate: bool = False) -> Execution:
        """Check and hold on the mirror, write ahead, send; the venue's answer decides what happened.

        A conditional order is checked on the mirror (`check_conditional`), held from acceptance
        and sent as the venue's own type where the venue has it (`CcxtVenue.native`), else armed
        here on the mirror (`emulated`). `allow_immediate`: one whose trigger price has already
        passed its level is accepted and fires at once (emulated: exchanges refuse such stops).
        """
        self._refuse_duplicate(order)
        market = self.markets[order.symbol]
        if market.instrument.is_perpetual:  # the one branch a perpetual's order takes off the spot path
            return await self._place_perp(order, market)
        if order.type.conditional:
            return await self._place_conditional(order, allow_immediate)
        if order.bracket is not None:
            check_bracket(order, decode_bracket(order.bracket), self._entry(market, order), instrument=market.instrument)
        lines = accept_order(self.host.ledger, market.engine, order, order.created_at, budget=budget,
                             margin_ppm=self._margin_ppm)
        return await self._send_new(order, lines, lambda: self.client.place(order, market.instrument))

    def _refuse_duplicate(self, order: Order) -> None:
        for other in self.open.values():
            if other.client_oid == order.client_oid and other.owner_id == order.owner_id:
                raise Conflict("duplicate_client_oid", f"client_oid {order.client_oid!r} names an order open on {self.name}",
                               order_id=other.id)

    async def _send_new(self, order: Order, lines: list[WalletLine], send: Callable[[], Awaitable[OrderReport]]) -> Execution:
        """Write `order` ahead (pending, with its hold) and send it; the venue's answer is applied."""
        host = self.host
        self.open[order.id] = order
        self._trades[order.id] = set()
        # written ahead (notified once the venue answers); a refusal by the store takes it back (`take_back`)
        await host.record(Execution([order], [], lines, placed=order), notify=False)
        return await self._send_written(order, send)

    async def _send_written(self, order: Order, send: Callable[[], Awaitable[OrderReport]]) -> Execution:
        """Send an order written ahead `pending`; the venue's answer is applied, its refusal rejects the order."""
        try:
            report = await send()
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

    def _hold(self, order: Order, ts: int, hold: int | None = None) -> list[WalletLine]:
        """A conditional order's hold while it is written ahead `pending` (`accept_conditional`'s, without its state move)."""
        currency, need = required_hold(self.markets[order.symbol].instrument, order)
        return self.host.ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, need if hold is None else hold,
                                         ts, order.account_id)

    async def _place_conditional(self, order: Order, allow_immediate: bool) -> Execution:
        market = self.markets[order.symbol]
        inst = market.instrument
        last, bid, ask = self._prices(market)
        check_conditional(order, inst, last=last, bid=bid, ask=ask, now=order.created_at, allow_immediate=allow_immediate,
                          mark=last)
        now_price = trigger_price(order, last=last, bid=bid, ask=ask, mark=last)
        if allow_immediate and now_price is not None and fires(order, now_price):
            execution = await self._arm_new(order)  # past its level already: it fires here, now
            await self._fire_if_passed(market, order)
            return execution
        if order.type is OrderType.TRAILING_STOP and not order.activation_price and not order.trail_best:
            if now_price is not None:
                follow(order, now_price, inst.tick)  # it follows from now: its level (and a buy's hold) starts here
            elif order.side is Side.BUY:
                raise NotReady("no_market_price", f"{self.name} {order.symbol} has no price to hold a trailing buy at yet")
        plan = self.client.native(order, inst)
        if plan is None:
            return await self._arm_new(order)
        lines = self._hold(order, order.created_at)
        return await self._send_new(order, lines, lambda: self.client.place(order, inst, plan))

    @staticmethod
    def _prices(market: PaperMarket) -> tuple[int | None, int | None, int | None]:
        """The mirror's last trade price and touch (None: not known yet)."""
        book = market.engine.book
        last = market.last_trade.price if market.last_trade is not None else None
        return last, book.best_bid(), book.best_ask()

    async def _arm_new(self, order: Order, hold: int | None = None) -> Execution:
        """Emulate a conditional order: hold, arm it on the mirror, record it (it is not at the venue until it fires)."""
        lines = self._armed(order, hold, order.created_at)
        execution = Execution([order], [], lines, placed=order)
        await self.host.record(execution)
        return execution

    def _arm(self, order: Order) -> None:
        book = self._triggers.get(order.symbol)
        if book is None:
            book = self._triggers[order.symbol] = TriggerBook(self.markets[order.symbol].instrument)
        if order.id not in book:
            book.add(order)

    async def place_oco(self, limit_leg: Order, stop_leg: Order) -> Execution:
        """An OCO: one order list where the venue has them (`CcxtVenue.native_oco`), else the limit leg at the venue and
        the stop leg emulated; the pair holds its funds once (`core.funds.oco_holds`), either way."""
        for leg in (limit_leg, stop_leg):
            self._refuse_duplicate(leg)
        market = self.markets[limit_leg.symbol]
        if market.instrument.is_perpetual:
            raise InvalidInput("unsupported_on_perpetual", f"OCO lists are not available on the live perpetual "
                               f"{limit_leg.symbol} yet", field="type")
        inst = market.instrument
        last, bid, ask = self._prices(market)
        check_oco(limit_leg, stop_leg, last=last, bid=bid, ask=ask)
        check_conditional(stop_leg, inst, last=last, bid=bid, ask=ask, now=stop_leg.created_at, mark=last)
        ts = limit_leg.created_at
        mode, lines = self._hold_list(limit_leg, stop_leg, ts)
        written = Execution([limit_leg, stop_leg], [], lines, placed=limit_leg, created=[stop_leg])
        # written ahead (the legs the venue must acknowledge are notified once it answers)
        await self.host.record(written, notify=mode == _ARMED)
        await self._send_list(limit_leg, stop_leg, mode)
        return Execution([limit_leg, stop_leg])

    def _hold_list(self, limit_leg: Order, stop_leg: Order, ts: int) -> tuple[str, list[WalletLine]]:
        """Hold an OCO's legs once (`oco_holds`) and follow them: how they go to the venue, and the lines.

        `_ARMED`: two conditional legs (a bracket's take-profit trigger and stop-loss), both
        emulated; `_LIST`: one order list at the venue, both legs written ahead `pending`;
        `_LIMIT`: the limit leg `pending` for the venue, the stop leg emulated (a trailing one
        always: no venue's order list takes it, `native_orders.oco_plan`). Unchecked: a
        bracket's children the market passed since the parent was placed still live (and fire).
        """
        market = self.markets[limit_leg.symbol]
        inst, ledger = market.instrument, self.host.ledger
        limit_hold, stop_hold = oco_holds(inst, limit_leg, stop_leg)
        if limit_leg.type.conditional:
            lines = self._armed(limit_leg, limit_hold, ts)
            return _ARMED, lines + self._armed(stop_leg, stop_hold, ts)
        lines = accept_order(ledger, market.engine, limit_leg, ts, hold=limit_hold, margin_ppm=self._margin_ppm)
        self._follow(limit_leg)
        if self.client.native_oco(limit_leg, stop_leg, inst):
            lines += self._hold(stop_leg, ts, stop_hold)
            self._follow(stop_leg)
            return _LIST, lines
        return _LIMIT, lines + self._armed(stop_leg, stop_hold, ts)

    def _follow(self, order: Order) -> None:
        self.open[order.id] = order
        self._trades[order.id] = set()

    def _armed(self, order: Order, hold: int | None, ts: int) -> list[WalletLine]:
        """Hold and arm an emulated conditional order (untriggered from now)."""
        order.emulated = True
        lines = accept_conditional(self.host.ledger, self.markets[order.symbol].instrument, order, ts, hold=hold)
        self.open[order.id] = order
        self._arm(order)
        return lines

    async def _send_list(self, limit_leg: Order, stop_leg: Order, mode: str) -> None:
        """Send the legs `_hold_list` wrote ahead; emulated legs already past their level fire now."""
        market = self.markets[limit_leg.symbol]
        inst = market.instrument
        if mode == _LIST:
            try:
                limit_report, stop_report = await self.client.place_oco(limit_leg, stop_leg, inst)
            except NotReady as exc:
                if exc.code == "order_state_unknown":
                    raise  # both legs stay pending: the reconciliation loop asks the venue
                await self._reject_legs(limit_leg, stop_leg, exc)
                raise
            except CoinwireError as exc:
                await self._reject_legs(limit_leg, stop_leg, exc)
                raise
            await self.apply(limit_leg, limit_report.fills, limit_report)
            await self.apply(stop_leg, stop_report.fills, stop_report)
            return
        if mode == _LIMIT:
            await self._send_written(limit_leg, lambda: self.client.place(limit_leg, inst))
            if not stop_leg.is_done:
                await self.host.record(Execution([stop_leg]))  # armed: told once its limit leg is at the venue
        for leg in (limit_leg, stop_leg):
            if leg.emulated:
                await self._fire_if_passed(market, leg)

    async def _fire_if_passed(self, market: PaperMarket, order: Order) -> None:
        """An armed order whose level the market has already passed fires now (a bracket child, `allow_immediate`)."""
        if order.is_done or order.status is not OrderStatus.UNTRIGGERED:
            return
        last, bid, ask = self._prices(market)
        price = trigger_price(order, last=last, bid=bid, ask=ask, mark=last)
        if price is None or not fires(order, price):
            return
        book = self._triggers.get(order.symbol)
        if book is not None and book.remove(order.id) is not None:
            ts = self.host.now()
            order.move(OrderStatus.TRIGGERED, ts)
            order.triggered_at = ts
            await self._triggered(order)

    # --- brackets ----------------------------------------------------------------------------------
    def _entry(self, market: PaperMarket, order: Order) -> int:
        """The price a bracket parent is taken to enter at: its limit, else the touch it takes, else the last trade."""
        if order.limit:
            return order.limit
        last, bid, ask = self._prices(market)
        touch = ask if order.side is Side.BUY else bid
        price = touch if touch is not None else last
        if price is None:
            raise DomainError("no_liquidity", f"no price of {market.instrument.symbol} is known to check the bracket against")
        return price

    async def _children(self, parent: Order, ts: int) -> tuple[tuple[Order, ...], str, list[WalletLine]] | None:
        """A bracket parent finished with a fill: its take-profit and stop-loss (held as an OCO) or its lone child, now.

        Sized to the fill, at the levels its average fill price gives percentages. They are
        written in the parent's last step (so they exist from its fill, over a crash too) and
        sent after it (`_send_children`). A buy's fee kept in the base (Binance) sizes them to
        what the fill left, on the step. None, and the owner told, when they cannot be held.
        """
        assert parent.bracket is not None
        bracket = decode_bracket(parent.bracket)
        ids = self.host.order_ids
        first = ids.next()
        if bracket.legs == 2:
            ids.next()  # the stop-loss child's id: first + 1
        inst = self.markets[parent.symbol].instrument
        children = bracket_children(parent, bracket, first, ts, instrument=inst)
        if parent.fee_currency == inst.base and parent.fee:  # the venue kept its fee out of the base bought
            fee_units = ceil_div(parent.fee, 10 ** (ATTO_DECIMALS - inst.size_decimals))
            left = parent.filled_size - fee_units
            for child in children:
                child.size = left - left % inst.step  # what the fill left to sell, on the step
        try:
            if len(children) == 2:
                mode, lines = self._hold_list(children[0], children[1], ts)
            else:
                mode, lines = self._hold_one(children[0], ts)
        except CoinwireError as exc:
            for child in children:
                self._forget(child)
            await self._child_trouble(parent, exc)
            return None
        return children, mode, lines

    def _hold_one(self, child: Order, ts: int) -> tuple[str, list[WalletLine]]:
        """Hold a bracket's lone child and follow it: `_ONE` (written ahead `pending` for the venue: a limit, or a
        conditional order the venue holds itself) or `_ARMED` (emulated here)."""
        market = self.markets[child.symbol]
        inst = market.instrument
        if child.type.conditional:
            # a trailing child follows from the parent's fill already (core's bracket_children): a venue's own would
            # start again from where it is placed, so it is emulated
            if child.type is OrderType.TRAILING_STOP or self.client.native(child, inst) is None:
                return _ARMED, self._armed(child, None, ts)
            lines = self._hold(child, ts)
        else:
            lines = accept_order(self.host.ledger, market.engine, child, ts, margin_ppm=self._margin_ppm)
        self._follow(child)
        return _ONE, lines

    async def _send_one(self, child: Order, mode: str) -> None:
        """Send the lone child `_hold_one` wrote ahead; an emulated one already past its level fires now."""
        market = self.markets[child.symbol]
        inst = market.instrument
        if mode == _ARMED:
            await self._fire_if_passed(market, child)
            return
        plan = self.client.native(child, inst) if child.type.conditional else None
        await self._send_written(child, lambda: self.client.place(child, inst, plan))

    async def _child_trouble(self, parent: Order, exc: CoinwireError) -> None:
        log.warning("a bracket's children were not placed", exchange=self.name, order_id=parent.id, error=str(exc))
        await self.host.log("error", f"user.orders.{parent.run_id or 'manual'}",
                            f"The take-profit and stop-loss of order {parent.client_oid} were not placed on {self.name}: "
                            f"{exc.message}", owner_id=parent.owner_id)

    async def _reject_legs(self, limit_leg: Order, stop_leg: Order, cause: CoinwireError) -> None:
        await self._reject(stop_leg, cause)  # first the leg holding nothing, so the other's release is what remains
        await self._reject(limit_leg, cause)

    async def cancel(self, order: Order, reason: DoneReason | None = None) -> Execution:
        """Cancel at the venue, or disarm an emulated order not fired; an OCO leg cancels its list."""
        order = self.open.get(order.id, order)  # the order followed here, not a copy read from the store
        if order.status is OrderStatus.PENDING or (order.emulated and order.status is OrderStatus.TRIGGERED):
            raise NotReady("order_pending", f"order {order.id} is not acknowledged by {self.name} yet; cancel it again shortly")
        if order.emulated and order.status is OrderStatus.UNTRIGGERED:
            sibling = self._sibling(order)
            if sibling is not None and not sibling.emulated:
                await self.cancel(sibling, reason)  # the list's leg at the venue: its cancel resolves this one
                if order.is_done:
                    return Execution([order])
            return await self._disarm(order, reason or DoneReason.CANCELLED)
        report = await self.client.cancel(order)
        return await self.apply(order, report.fills, report, reason=reason)

    async def _disarm(self, order: Order, reason: DoneReason) -> Execution:
        host = self.host
        ts = host.now()
        book = self._triggers.get(order.symbol)
        if book is not None:
            book.remove(order.id)
        order.move(OrderStatus.DONE, ts, reason)
        inst = self.markets[order.symbol].instrument
        lines = release_hold(host.ledger, inst, order, ts)
        orders = [order]
        sibling = self._sibling(order)
        if sibling is not None and not sibling.is_done:  # an emulated list: cancelling a leg cancels the list
            if book is not None:
                book.remove(sibling.id)
            lines += resolve_oco(host.ledger, inst, order, sibling, ts)
            self._forget(sibling)
            orders.append(sibling)
        self._forget(order)
        execution = Execution(orders, [], lines)
        await host.record(execution)
        return execution

    def _sibling(self, order: Order) -> Order | None:
        """The other leg of `order`'s OCO list, while it is followed here."""
        if not order.list_id:
            return None
        return next((o for o in self.open.values() if o.list_id == order.list_id and o.id != order.id), None)

    async def expire(self, now: int) -> None:
        """`cancel_after` and GTD deadlines: the venue has no such order type, so they are cancels sent from here."""
        waiting = (OrderStatus.OPEN, OrderStatus.UNTRIGGERED)
        for order in [o for o in self.open.values() if o.status in waiting and o.expires_at and o.expires_at <= now]:
            try:
                await self.cancel(order, DoneReason.EXPIRED)
            except CoinwireError as exc:
                log.warning("cannot expire a live order now", exchange=self.name, order_id=order.id, error=str(exc))

    async def _reject(self, order: Order, cause: CoinwireError) -> None:
        host = self.host
        ts = host.now()
        order.move(OrderStatus.DONE, ts, DoneReason.REJECTED)
        inst = self.markets[order.symbol].instrument
        lines = release_perp_hold(host.ledger, inst, order, ts) if inst.is_perpetual else release_hold(host.ledger, inst, order, ts)
        self._forget(order)
        await host.record(Execution([order], [], lines))
        await host.log("warning", f"user.orders.{order.run_id or 'manual'}",
                       f"Order {order.client_oid} was refused by {self.name}: {cause.message}", owner_id=order.owner_id)

    def _forget(self, order: Order) -> None:
        self.open.pop(order.id, None)
        self._trades.pop(order.id, None)
        book = self._triggers.get(order.symbol)
        if book is not None:
            book.remove(order.id)

    # --- emulated orders firing --------------------------------------------------------------------
    async def _triggered(self, order: Order) -> None:
        """An armed order fired on the mirror: written triggered (never to fire again), an OCO sibling resolved, then sent."""
        if order.is_done:
            return  # its OCO sibling fired first at this price: that cancelled it
        host = self.host
        inst = self.markets[order.symbol].instrument
        sibling = self._sibling(order)
        if sibling is not None and not sibling.is_done and not sibling.emulated:
            try:  # the list's limit leg rests at the venue: it must be gone before this leg's child may trade
                report = await self.client.cancel(sibling)
            except NotFound:
                report = None
            except CoinwireError as exc:
                log.warning("cannot cancel an OCO leg at the venue; its fired sibling waits", exchange=self.name,
                            order_id=sibling.id, error=str(exc))
                report = None
            if report is not None:
                await self.apply(sibling, report.fills, report)
            if order.is_done:  # the limit leg had filled: that cancelled this one
                return
        lines: list[WalletLine] = []
        orders = [order]
        sibling = self._sibling(order)
        if sibling is not None and not sibling.is_done:
            lines = resolve_oco(host.ledger, inst, order, sibling, order.triggered_at or host.now())
            self._forget(sibling)
            orders.append(sibling)
        await host.record(Execution(orders, [], lines))  # triggered, persisted before the child is sent
        self._start_child(order)

    def _start_child(self, order: Order) -> None:
        self._spawn(order.id, self._send_child(order))

    def _spawn(self, order_id: int, step: Coroutine[Any, Any, None]) -> None:
        """Send an order's child (or a bracket's children) in the background, once at a time per order."""
        if order_id in self._sending:
            step.close()
            return
        task = asyncio.create_task(step, name=f"live-child-{self.name}-{order_id}")
        self._sending[order_id] = task
        task.add_done_callback(lambda _: self._sending.pop(order_id, None))

    async def _send_child(self, order: Order) -> None:
        """Send a fired emulated order's child until the venue has it; unreachable venues are retried and reported."""
        host = self.host
        inst = self.markets[order.symbol].instrument
        kind = child_type(order)
        while order.status is OrderStatus.TRIGGERED and order.id in self.open:
            try:
                report = await self.client.place(order, inst, None, kind)
            except NotReady as exc:  # unreachable, or the outcome unknown: `place` looks the client id up before resending
                log.warning("a triggered order's child could not be sent; retrying", exchange=self.name, order_id=order.id,
                            code=exc.code)
                await host.log("error", f"user.orders.{order.run_id or 'manual'}",
                               f"Order {order.client_oid} triggered but {self.name} cannot take it now ({exc.message}); "
                               "retrying", owner_id=order.owner_id)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            except CoinwireError as exc:  # refused (funds, filters): it ends here
                await self._reject(order, exc)
                return
            self._backoff.reset()
            await self.apply(order, report.fills, report)
            return

    # --- perpetuals ----------------------------------------------------------------------------------
    def _perpetuals(self) -> dict[str, Instrument]:
        return {symbol: m.instrument for symbol, m in self.markets.items() if m.instrument.is_perpetual}

    def _perp_account(self) -> PerpAccount:
        from coinwire.venues.ccxt_perp import PerpAccount

        return PerpAccount(self.client)

    def _instrument_of(self, account: int, symbol: str) -> Instrument:
        """The perpetual `symbol` of this live account (not_a_perpetual / account_not_found otherwise)."""
        if account != self.account_id:
            raise NotFound("account_not_found", f"account {account} does not trade on {self.name}", account=account)
        market = self.markets.get(symbol)
        if market is None or not market.instrument.is_perpetual:
            raise InvalidInput("not_a_perpetual", f"{self.name} {symbol} is not a perpetual market", symbol=symbol)
        return market.instrument

    async def _place_perp(self, order: Order, market: PaperMarket) -> Execution:
        """A perpetual order: core's checks and margin hold on the mirror (`accept_perp_order`), then sent with its leg.

        The venue stays the authority on margin and on what reduce-only may close; its refusals
        come back with the codes the paper venue uses (`venues/errors.py`).
        """
        inst = market.instrument
        if order.type.conditional or order.bracket is not None or order.list_id:
            raise InvalidInput("unsupported_on_perpetual", f"{order.type.value} orders, brackets and OCO lists are not "
                               f"available on the live perpetual {inst.symbol} yet", field="type")
        lines = accept_perp_order(self.host.ledger, market.engine, order, order.created_at, mark=self.mark_price(inst.symbol) or 0)
        return await self._send_new(order, lines, lambda: self.client.place(order, inst))

    async def refresh_positions(self, at_start: bool = False) -> None:
        """Bring the account's positions (and its settle wallets) to what the venue reports now.

        `at_start` also reads the account's position mode (a request Binance weighs heavily);
        afterwards the mode changes only through `set_hedge_mode`, and a hedge leg reported says so.
        """
        from coinwire.venues.live_positions import reconcile_positions

        perpetuals = self._perpetuals()
        account = self._perp_account()
        reports = await account.positions(perpetuals.values())
        hedge = await account.hedge_mode() if at_start else None
        host = self.host
        async with self._lock:
            result = reconcile_positions(host.ledger, self.account_id, self.name, perpetuals, reports, host.now(),
                                         hedge_mode=hedge)
            for report in reports:
                self._marks[report.symbol] = report.mark
            for drift in result.drifts:
                log.warning("a live position differs from the venue's; the venue's is taken", exchange=self.name,
                            symbol=drift.symbol, leg=drift.leg.value, stored=drift.stored, venue=drift.venue)
            if result.positions or result.lines or hedge is not None:
                settings = [host.ledger.positions.settings(self.account_id, self.name, s) for s in perpetuals]
                mode = host.ledger.positions.hedge_mode(self.account_id, self.name)
                await host.record(Execution(lines=result.lines, positions=result.positions, settings=settings,
                                            modes=[HedgeMode(account_id=self.account_id, exchange=self.name, hedge_mode=mode)]))
        await self.sync_balances()

    async def set_leverage(self, account: int, symbol: str, leverage: int) -> Execution:
        """Set the leverage at the venue (checked against the market's brackets first), then in the book (core's rules)."""
        inst = self._instrument_of(account, symbol)
        if not 1 <= leverage <= inst.max_leverage:
            raise DomainError("leverage_above_maximum", f"{symbol} allows leverage 1 to {inst.max_leverage}, not {leverage}",
                              symbol=symbol, maximum=inst.max_leverage)
        await self._perp_account().set_leverage(inst, leverage)
        settings, step = core_set_leverage(self.host.ledger, inst, account, leverage, self.host.now(),
                                           mark=self.mark_price(symbol) or 0)
        execution = Execution(lines=step.lines, positions=step.positions, settings=[settings])
        await self.host.record(execution)
        return execution

    async def set_margin_mode(self, account: int, symbol: str, mode: MarginMode) -> Execution:
        """Set isolated or cross at the venue (which refuses it with a position or orders open), then in the book."""
        inst = self._instrument_of(account, symbol)
        await self._perp_account().set_margin_mode(inst, MarginMode(mode).value)
        settings = core_set_margin_mode(self.host.ledger, inst, account, MarginMode(mode), open_orders=False)
        execution = Execution(settings=[settings])
        await self.host.record(execution)
        return execution

    async def set_hedge_mode(self, account: int, hedge: bool) -> Execution:
        """Switch hedge / one-way mode at the venue (refused there with positions or orders open), then in the book."""
        if account != self.account_id:
            raise NotFound("account_not_found", f"account {account} does not trade on {self.name}", account=account)
        await self._perp_account().set_hedge_mode(hedge)
        core_set_hedge_mode(self.host.ledger, account, self.name, hedge, open_orders=False)
        execution = Execution(modes=[HedgeMode(account_id=account, exchange=self.name, hedge_mode=hedge)])
        await self.host.record(execution)
        return execution

    async def adjust_margin(self, account: int, symbol: str, amount: int, side: PositionSide,
                            wallet_set_id: int | None = None) -> Execution:
        """Add or remove isolated margin at the venue, then take the venue's position (and its margin) into the book."""
        inst = self._instrument_of(account, symbol)
        if wallet_set_id is not None:
            raise InvalidInput("wallet_set_margin_not_supported",
                               "a live venue keeps one position per leg: adjust the account's (unallocated) position")
        await self._perp_account().adjust_margin(inst, amount, side.value)
        await self.refresh_positions()
        pos = self.host.ledger.positions.get(account, self.name, symbol, side)
        return Execution(positions=[pos] if pos is not None else [])

    def mark_rule(self, symbol: str) -> str:
        """The venue's mark once a position report carried one, else the median rule on the mirror."""
        return MARK_VENUE if self._marks.get(symbol) else MARK_MEDIAN

    def mark_price(self, symbol: str) -> int | None:
        """The venue's latest mark price of `symbol` (from its position reports), else the median rule on the mirror."""
        mark = self._marks.get(symbol)
        if mark:
            return mark
        market = self.markets.get(symbol)
        if market is None:
            return None
        last, bid, ask = self._prices(market)
        return median_mark(bid, ask, last)

    # --- venue news --------------------------------------------------------------------------------
    async def apply(
        self, order: Order, fills: Sequence[FillReport], report: OrderReport | None, reason: DoneReason | None = None
    ) -> Execution:
        """Apply what the venue says of `order` (new fills once each, then its status); what changed, recorded."""
        host = self.host
        inst = self.markets[order.symbol].instrument
        async with self._lock:
            if order.is_done:
                return Execution()  # already finished here (an OCO leg its sibling ended): late news changes nothing
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
            changed = False
            others: list[Order] = []
            lines: list[WalletLine] = []
            if order.list_id or order.type.conditional:  # plain orders pay these two attribute checks
                changed, others, lines = self._contingent(order, inst, report, bool(new), ts)
            spent = 0
            for fill, raw in new:
                seen.add(raw.trade_id)
                order.record_fill(fill.price, fill.size, fill.notional, fill.fee, fill.ts, fill.fee_currency)
                spent += fill.notional + (fill.fee if fill.fee_currency is None else 0)
            changed = changed or bool(new)
            if order.status is OrderStatus.PENDING and (report is not None or new):
                order.move(OrderStatus.OPEN, ts)
                changed = True
            if order.status is OrderStatus.TRIGGERED and (new or (report is not None and report.working)):
                order.move(OrderStatus.OPEN, ts)  # its child is at the venue
                changed = True
            if report is not None and report.is_done and not order.is_done:
                order.move(OrderStatus.DONE, ts,
                           reason or report.done_reason(order.type, order.time_in_force) or DoneReason.REJECTED)
                changed = True
            elif new and order.remaining == 0 and not order.is_done and not order.funds:
                order.move(OrderStatus.DONE, ts, DoneReason.FILLED)  # filled whole: done, whichever report comes first
                changed = True
            if not changed:
                return Execution()
            market_cost = None
            if order.side is Side.BUY and not order.is_done and self._market_child(order):
                market_cost = max(0, host.ledger.hold_of(order.id) - spent)
            fill_list = [fill for fill, _ in new]
            positions = None
            if inst.is_perpetual:  # into the position (realised PnL, fee, margin); the venue's report then has the last word
                if new or order.is_done:
                    step = settle_perp_fills(host.ledger, inst, order, fill_list, ts, mark=self.mark_price(inst.symbol) or 0)
                    fill_list, lines, positions = step.fills, lines + step.lines, step.positions
            elif new or order.is_done or not (order.list_id or order.status is OrderStatus.UNTRIGGERED):
                lines += settle_fills(host.ledger, inst, order, fill_list, ts, market_cost=market_cost)
            # else: a waiting OCO leg or untriggered order keeps the hold it was given
            if order.is_done:
                self._forget(order)
            children = None
            if order.bracket is not None and order.is_done and order.filled_size:
                children = await self._children(order, ts)  # the parent's final step: its children exist from now
            if children is None:
                execution = Execution([order, *others], fill_list, lines, positions=positions)
            else:
                legs, mode, child_lines = children
                execution = Execution([order, *others, *legs], fill_list, lines + child_lines, created=list(legs))
            await host.record(execution)
        if children is not None:  # sent beside the report that finished the parent (the stream goes on meanwhile)
            self._spawn(legs[0].id, self._send_children(order, legs, mode))
        if new and inst.is_perpetual:
            await self.refresh_positions()  # the venue's position and wallet after these fills
        return execution

    async def _send_children(self, parent: Order, legs: tuple[Order, ...], mode: str) -> None:
        try:
            if len(legs) == 2:
                await self._send_list(legs[0], legs[1], mode)
            else:
                await self._send_one(legs[0], mode)
        except CoinwireError as exc:  # refused at the venue (the legs are rejected): the parent stands
            await self._child_trouble(parent, exc)

    @staticmethod
    def _market_child(order: Order) -> bool:
        """A market order, or a conditional order whose child is one and is at the venue (a buy's hold is its budget)."""
        kind = order.type
        if kind is OrderType.MARKET:
            return True
        return kind.conditional and not kind.child_is_limit and order.status is OrderStatus.OPEN

    def _contingent(
        self, order: Order, inst: Any, report: OrderReport | None, filled: bool, ts: int
    ) -> tuple[bool, list[Order], list[WalletLine]]:
        """A conditional order's or OCO leg's news before its fills: untriggered / triggered, and the sibling resolved.

        A venue holding the order untriggered says it is not working; working, a fill, or a
        finished report with fills means it fired. An OCO leg that fills, fires or ends takes
        its sibling with it (`resolve_oco`, before the fills settle, so the hold is one).
        """
        changed = False
        if order.type.conditional:
            if order.status is OrderStatus.PENDING and report is not None and not report.is_done:
                order.move(OrderStatus.UNTRIGGERED, ts)
                changed = True
            fired = filled or (report is not None and (report.working or (report.is_done and report.filled_size > 0)))
            if order.status in (OrderStatus.PENDING, OrderStatus.UNTRIGGERED) and fired:
                if order.status is OrderStatus.PENDING:
                    order.move(OrderStatus.UNTRIGGERED, ts)
                order.move(OrderStatus.TRIGGERED, ts)
                order.triggered_at = ts
                changed = True
        sibling = self._sibling(order) if order.list_id else None
        if sibling is None or sibling.is_done:
            return changed, [], []
        ends = filled or order.status is OrderStatus.TRIGGERED or (report is not None and report.is_done)
        if not ends:
            return changed, [], []
        unfilled_end = report is not None and report.is_done and not filled and not report.filled_size
        ended_for_sibling = sibling.status is OrderStatus.TRIGGERED or (
            report is not None and report.reason is ReportReason.EXPIRED and not sibling.emulated)
        if unfilled_end and ended_for_sibling and not order.is_done:
            # the sibling fired here and had this leg cancelled at the venue first, or the venue ended this leg because
            # its sibling filled or fired there (its own report may come later): the sibling lives on with the list's hold
            return True, [sibling], resolve_oco(self.host.ledger, inst, sibling, order, ts)
        if report is not None and unfilled_end and not order.is_done:
            order.move(OrderStatus.DONE, ts, report.done_reason(order.type, order.time_in_force) or DoneReason.CANCELLED)
        lines = resolve_oco(self.host.ledger, inst, order, sibling, ts)
        self._forget(sibling)
        return True, [sibling], lines

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
            account_id=order.account_id, position_side=order.position_side,
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
            if order.id not in self.open or (order.emulated and order.status is OrderStatus.UNTRIGGERED):
                continue  # ended meanwhile (an OCO sibling), or armed here: the venue has nothing of it yet
            try:
                report = await self.client.fetch(order)
            except NotFound:
                if order.emulated and order.status is OrderStatus.TRIGGERED:
                    self._start_child(order)  # fired, its child not at the venue: send it (once: by its client id)
                elif order.status is OrderStatus.PENDING and now - order.created_at > self.client.order_ttl * 1e9:
                    await self._reject(order, NotFound("exchange_order_not_found", "the order never reached the venue"))
                elif order.status in (OrderStatus.OPEN, OrderStatus.UNTRIGGERED):
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
            if self._perpetuals():
                try:
                    await self.refresh_positions()  # liquidations, funding and hand trades at the venue show up
                except CoinwireError as exc:
                    log.warning("cannot reconcile live positions now", exchange=self.name, error=str(exc))


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
