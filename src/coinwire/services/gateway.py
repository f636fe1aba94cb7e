"""The exchange gateway (the seed's xWrap): the venues, orders, logical wallets, notifications.

Each configured exchange is a venue (`venues/paper.py`, `venues/live.py`) that the gateway
holds as a `HostedVenue` and routes commands, market data and expiry to without knowing
its kind; the gateway is the venues' host (`GatewayHost`): every change a venue makes comes
back through `record`, which persists it and then notifies.

Every paper command runs the pure core synchronously on the event loop (validate, hold,
match, settle), then persists the resulting rows as ONE transaction through the group-commit
writer, and only after the commit answers the caller and publishes notifications. The
writer commits in submission order, so the database always holds a prefix of the command
sequence: a SIGKILL at any instant loses only unacknowledged commands, and the ledger
rebuilt from the sums of its lines on the next start balances by construction.

Memory follows what is open, not history: orders not done, balances and holds, a bounded
window of recently done orders for idempotent repeats, and a fixed-size filter of every
client_oid that sends possible repeats beyond the window to the store. The store's ledger
checkpoints (`Store.checkpoint_ledger`, run here every `checkpoint_lines` lines or
`checkpoint_seconds`) keep a start's reading to what was written since the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

import msgspec
import structlog

from coinwire import metrics
from coinwire.bus.base import Bus
from coinwire.config import ExchangeConfig, Settings
from coinwire.core.accounts import EXTERNAL, Account
from coinwire.core.errors import CoinwireError, Conflict, DomainError, InsufficientFunds, InvalidInput, NotFound, NotReady
from coinwire.core.external_trades import ExternalTrade
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.key_filter import KeyFilter
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import atto_to_str, str_to_atto
from coinwire.core.orders import CONDITIONAL_TYPES, Fill, Order, OrderRequest, PositionSide, TimeInForce
from coinwire.core.perp_execution import close_position_order
from coinwire.core.positions import MarginMode, Position, PositionSettings
from coinwire.core.symbols import normalize_symbol
from coinwire.core.wallets import Wallet, WalletLine, WalletSet
from coinwire.messages import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    ExchangeStatusChanged,
    FillEvent,
    LogMessage,
    Markets,
    MarkPrice,
    Message,
    OrderUpdate,
    OrderView,
    PositionUpdate,
    PositionView,
    TradeTick,
    account_subject,
    subject,
)
from coinwire.services.accounts import AccountBook, MembersRepository
from coinwire.services.breakers import Breakers
from coinwire.services.live_credentials import live_credentials
from coinwire.services.log_feed import LogRing
from coinwire.services.lost_notifications import LostNotifications
from coinwire.services.notify_queue import NotificationQueue
from coinwire.services.position_views import position_views
from coinwire.services.recent_orders import RecentOrders
from coinwire.services.views import FundingView, fill_view, funding_view, order_view
from coinwire.store import ChangeSet, GroupCommitWriter, Store
from coinwire.store.fence import LeaseLost
from coinwire.venues.base import Execution, PerpVenue
from coinwire.venues.hosted import GatewayHost, HostedVenue
from coinwire.venues.paper import PaperMarket, PaperVenue

__all__ = ["ExecutionListener", "Gateway", "VenueFactory", "make_venue"]

_RELOAD_PAUSES = (0.1, 0.25, 0.5, 1.0, 1.0, 2.0)  # seconds between tries to reload from the store after a failed commit

log = structlog.get_logger("coinwire.gateway")
_NO_CONTEXT: dict[str, object] = {}  # shared by every log message without fields (never changed: readers copy it)

Clock = Callable[[], int]

_MARKET_DATA = frozenset({Markets, BookSnapshot, BookDelta, TradeTick, BookTicker, MarkPrice})
_CONDITIONAL, _GTC, _BOTH = CONDITIONAL_TYPES, TimeInForce.GTC, PositionSide.BOTH  # module constants: see core.orders

VenueFactory = Callable[[ExchangeConfig, GatewayHost, Store, Settings], HostedVenue]


def make_venue(cfg: ExchangeConfig, host: GatewayHost, store: Store, settings: Settings,
               breakers: Breakers | None = None) -> HostedVenue:
    """The venue of one configured exchange: its mode picks the kind, here only (a live one loads CCXT).

    A live venue's REST calls pass the `ccxt:<exchange>` breaker of `breakers` (services/breakers.py).
    """
    if cfg.mode == "live":
        from coinwire.venues.live import LiveVenue

        return LiveVenue(cfg, host, partial(live_credentials, cfg, store, settings.data_path),
                         breaker=breakers.get(f"ccxt:{cfg.name}") if breakers is not None else None)
    return PaperVenue(cfg.name, host, cfg.feed)


class ExecutionListener(Protocol):
    """Code in this process that follows the gateway step by step (a strategy's paper runtime).

    `on_market` runs after each market message has been applied to its book and the fills it
    caused have been settled, before the gateway takes the next message: what the listener
    does there (a strategy placing orders) meets exactly the book that message left. Keep it
    short: the exchange's market data waits for it.
    """

    async def on_market(self, message: Message) -> None: ...

    def on_execution(self, orders: list[Order], fills: list[Fill]) -> None: ...


class Gateway:
    """The venues' host and the commands' one entry: orders, accounts and wallet sets over every venue.

    `venue_factory` builds each configured exchange's venue (default `make_venue`); a test
    passes its own to watch what the venues record.
    """

    def __init__(self, settings: Settings, store: Store, bus: Bus, clock: Clock = time.time_ns,
                 venue_factory: VenueFactory | None = None, breakers: Breakers | None = None) -> None:
        self.settings = settings
        self.store = store
        self.writer = GroupCommitWriter(store)
        self.bus = bus
        self.notifications = NotificationQueue(bus)  # what commands committed, to the bus in order (services/notify_queue.py)
        # what a previous holder committed but never published, published again after each restore
        self.lost = LostNotifications(bus, store, self._rebuilt_notifications)
        self._repairs: set[asyncio.Task[None]] = set()
        self.clock = clock
        self.recent_logs = LogRing(settings.log_feed_recent)  # GET /api/v1/logs
        self.ledger = Ledger()
        self.accounts = AccountBook()
        self.seqs: dict[int, int] = {}  # account id -> sequence of its latest order or trade notification
        self._fill_seqs: dict[int, int] = {}  # fill id -> its notification's sequence, from its commit to its notification
        # order id -> the sequences its commands took, oldest first, each until that command's notification: an order a
        # feed fills while its placement commits takes two, and each notification must carry its own (not `order.seq`,
        # which is the latest)
        self._order_seqs: dict[int, list[int]] = {}
        # positions whose change took a sequence not yet notified (from `_perp_changes` to its notification): a mark push
        # in between would send that sequence before it is stored, so it skips them (the change's own push follows)
        self._positions_in_flight: dict[tuple[int, str, str, PositionSide], int] = {}
        self.order_ids = IdSequence()
        self.fill_ids = IdSequence()
        self.venues: dict[str, HostedVenue] = {}
        self._venue_factory = venue_factory or partial(make_venue, breakers=breakers)
        self._answers: dict[int, OrderView | None] = {}  # order id -> its latest view, while a command on it waits
        self.configs: dict[str, ExchangeConfig] = {e.name: e for e in settings.exchanges}
        self.orders: dict[int, Order] = {}  # orders not done (open, pending, or in a command in flight)
        # a client_oid is its owner's idempotency key: the index is per owner_id, then client_oid
        # (nested, not keyed by a pair: no tuple to build per order)
        self.by_client_oid: dict[int | None, dict[str, int]] = {}  # the keys of `orders`
        self.recent = RecentOrders(settings.idempotency_window, settings.idempotency_window_seconds)  # done lately
        self.client_oid_filter = KeyFilter(settings.client_oid_filter_bytes)  # every key stored (or maybe): else no read
        self._checkpointed = 0  # the last line id the store's checkpoint had folded in when last written here
        self._checkpointed_at = 0.0
        self._checkpointing = asyncio.Lock()
        self._restored_open: list[Order] = []
        self._lock = asyncio.Lock()  # serialises state changes that await (recovery)
        self.recovering = False  # reloading from the store after a failed commit: commands are refused meanwhile
        self._tasks: list[asyncio.Task[Any]] = []
        self._subscriptions: list[Any] = []
        self._applying = 0  # market messages off the bus whose application (and its commits) has not finished
        self._persisted_wallets: set[int] = set()
        self.snapshot_sources: dict[str, Any] = {}  # exchange -> feed SnapshotSource, for resyncs
        self._subjects: dict[tuple[str, int, str, str], str] = {}
        self._symbols: dict[str, str] = {}  # symbol as given -> normalised (every order names one)
        self.listeners: list[ExecutionListener] = []
        # called with each change set once committed (the `wallet_set` push: api.wallet_set_push); keep them cheap
        self.commit_listeners: list[Callable[[ChangeSet], None]] = []
        self.started_at = clock()

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await self.writer.start()
        await self._restore()
        owned = set(self.settings.gateway_exchanges)  # its shard (`gateway_shard`): every configured exchange by default
        for cfg in self.settings.exchanges:
            if cfg.name not in owned:
                continue
            venue = self.venues[cfg.name] = self._venue_factory(cfg, self, self.store, self.settings)
            self._restore_orders(venue)
            await venue.start()  # a live venue connects in the background: `starting` until its account is read
        # ONE subscription for every kind of market data: a bus keeps order per subscription, so
        # trades and book changes reach the matching engine in the order the feed sent them
        # (and only market data: the gateway's own orders, fills and logs never come back to it)
        self._subscriptions.append(await self.bus.subscribe(">", self._on_market_message, types=_MARKET_DATA))
        self._tasks.append(asyncio.create_task(self._expiry_loop(), name="gateway-expiry"))
        self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name="gateway-checkpoint"))

    async def close(self) -> None:
        """Stop following the market and the venues, then commit what was submitted, whatever raised before."""
        try:
            repairs = list(self._repairs)
            for task in repairs:
                task.cancel()
            await asyncio.gather(*repairs, return_exceptions=True)  # each gives its hold back
            for sub in self._subscriptions:
                await sub.unsubscribe()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for venue in self.venues.values():
                await venue.close()
                await self.set_status(venue, "stopped")
        finally:  # change sets already acknowledged are committed even when a venue failed to close
            await self.writer.close()
            await self.checkpoint()  # the next start reads no line twice
            await self.notifications.close()

    async def _restore(self) -> None:
        """Rebuild the ledger, id sequences and resting orders from the store (crash recovery)."""
        state = await self.store.load_state()
        self.accounts.load(state.accounts, await MembersRepository(self.store).all())
        self.seqs = dict(state.last_seqs)
        self._order_seqs.clear()  # commands whose notifications will not come (a failed commit reloads from the store)
        self.ledger = Ledger.restore(state.wallets, state.wallet_sets, state.totals, positions=state.positions,
                                     position_settings=state.position_settings,
                                     hedge_modes=[(m.account_id, m.exchange, m.hedge_mode) for m in state.position_modes])
        for venue in self.venues.values():  # a reload: markets announced before it (once, by the feed) stay known
            self.ledger.add_exchange(venue.name, venue.currencies())
        self._persisted_wallets = {w.id for w in state.wallets}
        self.order_ids.advance_to(state.last_order_id)
        self.fill_ids.advance_to(state.last_fill_id)
        self._restored_open = list(state.open_orders)
        for order in self._restored_open:
            self.orders[order.id] = order
            self._index(order)
        self.recent.clear()
        size, stored = self.settings.client_oid_filter_bytes, state.client_oid_filter
        usable = stored is not None and len(stored) == size  # a filter of another size is rebuilt from every key
        self.client_oid_filter = KeyFilter(size, stored if usable else None)
        added = await self.store.each_client_oid_after(state.client_oids_mark if usable else 0, self.client_oid_filter.add)
        self._checkpointed, self._checkpointed_at = self.ledger.line_ids.last, time.monotonic()
        if state.lines_after_checkpoint or added or not usable:  # what this start read beyond the checkpoint, the next will not
            self._checkpointed = 0
            self._checkpointed_at = -self.settings.checkpoint_seconds  # the checkpoint loop's first turn, in the background
        gaps = await self.lost.gaps(state.last_seqs)  # before anything new is published (services/lost_notifications.py)
        if gaps:  # a repair under way goes on: its gaps were read before newer seqs could hide them
            self.notifications.hold()  # until the repaired notifications are ahead of every new one
            task = asyncio.get_running_loop().create_task(self._repair(gaps), name="lost-notifications")
            self._repairs.add(task)
            task.add_done_callback(self._repairs.discard)

    async def _repair(self, gaps: dict[int, tuple[int, int]]) -> None:
        batches: list[list[tuple[str, Message]]] = []
        try:
            batches = await self.lost.repair(gaps)
        finally:
            self.notifications.release(batches)

    def _rebuilt_notifications(self, orders: list[Order], fills: list[Fill],
                               positions: list[Position]) -> list[tuple[int, str, Message]] | None:
        """Stored rows' notifications as `_notify` made them, each with its seq; None while one's market is unknown."""
        by_id = {order.id: order for order in orders}
        out: list[tuple[int, str, Message]] = []
        try:
            for fill in fills:
                order = by_id[fill.order_id]
                out.append((fill.seq, *self._fill_message(fill, order.owner_id, fill.seq, order.funds)))
            for order in orders:
                view = order_view(order, self.instrument_of(order), order.seq)
                out.append((order.seq, *self._order_message(order, view, order.seq)))
            if positions:
                out += [(message.seq, subject, message) for subject, message in self._position_messages(positions)]  # type: ignore[union-attr]
        except KeyError:
            return None
        return out

    async def checkpoint(self) -> None:
        """Have the store fold the lines written since its last checkpoint into its totals, with the client_oid filter.

        Never raises: a failed checkpoint only leaves the next start more to read (logged).
        """
        mark = self.ledger.line_ids.last
        try:
            async with self._checkpointing:
                folded = await self.store.checkpoint_ledger(self.client_oid_filter.to_bytes, self.clock())
        except Exception:  # the store's lines are intact; the next checkpoint folds them
            log.exception("ledger checkpoint failed")
            return
        self._checkpointed, self._checkpointed_at = mark, time.monotonic()
        log.debug("ledger checkpoint", lines=folded)

    async def _checkpoint_loop(self) -> None:
        lines, seconds = self.settings.checkpoint_lines, self.settings.checkpoint_seconds
        while True:
            written = self.ledger.line_ids.last - self._checkpointed
            if written >= lines or (written and time.monotonic() - self._checkpointed_at >= seconds):
                await self.checkpoint()
            await asyncio.sleep(min(1.0, seconds))

    # --- market data ------------------------------------------------------------------------
    async def _on_market_message(self, subj: str, message: Message) -> None:
        if self.store.fence.lost is not None:  # stepped down: another process matches this shard's orders now
            return
        self._applying += 1
        try:
            await self.apply_market(message)
        finally:
            self._applying -= 1

    async def apply_market(self, message: Message) -> None:
        """One market message to its venue (markets, books, trades, tickers), then to the listeners.

        The bus subscription calls it for every market message, in the feed's order; a feed
        of one's own (a test's) may call it directly.
        """
        if isinstance(message, Markets):
            await self._on_markets(message)
        else:
            venue = self.venues.get(getattr(message, "exchange", ""))
            if venue is None:
                return
            if isinstance(message, (BookDelta, BookSnapshot)):
                metrics.BOOK_UPDATES.labels(venue.name).inc(len(message.bids) + len(message.asks))
            if not await venue.on_market(message):  # type: ignore[arg-type]
                return  # a symbol the exchange does not trade here
        for listener in self.listeners:
            await listener.on_market(message)

    async def _on_markets(self, message: Markets) -> None:
        venue = self.venues.get(message.exchange)
        if venue is None:
            return
        cfg = self.configs[venue.name]
        wanted = {normalize_symbol(s) for s in cfg.symbols}
        instruments = [i for i in message.instruments if not wanted or i.symbol in wanted]
        venue.add_instruments(instruments)
        self.ledger.add_exchange(venue.name, venue.currencies())
        self._register_perpetuals(venue)
        self._restore_orders(venue)

    def _register_perpetuals(self, venue: HostedVenue) -> None:
        """The position book knows each perpetual of the venue (a cross pool's margin reads every symbol's brackets)."""
        for market in venue.markets.values():
            if market.instrument.is_perpetual:
                self.ledger.positions.register(market.instrument)

    def _restore_orders(self, venue: HostedVenue) -> None:
        """Hand the venue the orders not done the store holds for it (those of markets it does not know yet wait)."""
        for order in [o for o in self._restored_open if o.exchange == venue.name]:
            if venue.restore_order(order):
                self._restored_open.remove(order)

    def snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        """A fresh book from the exchange's feed (its snapshot source), for a book that lost its sync."""
        source = self.snapshot_sources.get(exchange)
        return source.snapshot(exchange, symbol) if source is not None else None

    async def refresh_status(self, venue: HostedVenue) -> None:
        status = venue.computed_status()
        if status != venue.status:
            await self.set_status(venue, status)

    async def set_status(self, venue: HostedVenue, status: str) -> None:
        previous, venue.status = venue.status, status
        log.info("exchange status", exchange=venue.name, previous=previous, status=status)
        level = "warning" if status in ("degraded", "stopped") else "info"
        await self.publish_log(level, "coinwire.gateway", f"exchange {venue.name}: {previous} -> {status}")
        await self.bus.publish(
            subject("exchstatus", venue.name), ExchangeStatusChanged(venue.name, previous, status, self.clock())
        )

    async def caught_up(self, give_up: asyncio.Event | None = None) -> None:
        """Wait until the market messages published so far are applied (a recording's end); `give_up` ends it early.

        Applied means their commits done too: the inbox hands a message over before its application
        (funding, fills) has finished.
        """
        while (self._applying or any(sub.inbox.pending for sub in self._subscriptions)) and not (
                give_up is not None and give_up.is_set()):
            await asyncio.sleep(0.02)

    # --- helpers -----------------------------------------------------------------------------
    def exchange(self, name: object) -> HostedVenue:
        if not isinstance(name, str) or name not in self.venues:
            raise NotFound("unknown_exchange", f"unknown exchange {name!r}; known: {sorted(self.venues)}")
        return self.venues[name]

    def market(self, exchange: str, symbol: object) -> PaperMarket:
        ex = self.exchange(exchange)
        sym = self._symbols.get(symbol) if isinstance(symbol, str) else None
        if sym is None:
            sym = normalize_symbol(symbol)  # raises on a malformed symbol: only good ones are kept
            if len(self._symbols) >= 4096:
                self._symbols.clear()
            self._symbols[symbol] = sym  # type: ignore[index]
        market = ex.market(sym)
        if market is None:
            raise NotFound("unknown_symbol", f"exchange {exchange} has no market {sym}", exchange=exchange, symbol=sym)
        return market

    def has_market(self, exchange: str, symbol: str) -> bool:
        """Whether a hosted exchange lists `symbol` (a normalized one) now: what a series of a market may name."""
        venue = self.venues.get(exchange)
        return venue is not None and symbol in venue.markets

    def ready_exchange(self, name: object) -> HostedVenue:
        ex = self.exchange(name)
        self._not_recovering()
        if self.store.fence.lost is not None:
            raise NotReady("gateway_unavailable", f"the gateway of exchange {ex.name} stepped down (its lease was lost); "
                                                  "retry: another gateway takes its shard over", exchange=ex.name)
        if ex.status != "ready":
            raise NotReady("exchange_not_ready", f"exchange {ex.name} is {ex.status}, not ready; retry shortly")
        return ex

    def _not_recovering(self) -> None:
        """Refuse a command while memory is being reloaded from the store (after a failed commit): it is retryable."""
        if self.recovering:
            raise NotReady("store_unavailable", "the gateway is reloading its state from the store after a failed commit; "
                                                "retry shortly")

    def instrument_of(self, order: Order) -> Instrument:
        return self.venues[order.exchange].markets[order.symbol].instrument

    # --- accounts ---------------------------------------------------------------------------------
    async def account_for(self, owner_id: int | None, exchange: str) -> Account:
        """The owner's own account on a paper exchange, made and funded with the exchange's `paper_funds` on first use.

        The new account is known at once (a second call does not make another) and stored in
        the same change set as its first funds. A live exchange's account is made when it
        connects (`live_account`): someone without one there gets `account_not_found`.
        """
        account = self.accounts.own(owner_id, exchange)
        if account is not None:
            return account
        ex = self.exchange(exchange)
        if not ex.virtual_funds:
            if owner_id is None and ex.account_id in self.accounts.accounts:  # the platform itself (no user): the venue's account
                return self.accounts.accounts[ex.account_id]
            raise NotFound("account_not_found", f"you have no account on {exchange}; a live account comes from your exchange keys")
        account = await self._open_paper(owner_id, ex, exchange)
        log.info("paper account opened", exchange=exchange, account=account.id, owner=owner_id)
        return account

    async def open_account(self, owner_id: int | None, exchange: str, kind: str, name: str) -> Account:
        """A further account of the owner on a paper exchange (`POST /api/v1/accounts`), funded like the first."""
        ex = self.exchange(exchange)
        if kind != "paper" or not ex.virtual_funds:
            raise InvalidInput("unsupported_account_kind", "only paper accounts can be opened here; a live account comes from "
                               "exchange keys (coinwire keys set), on a live exchange")
        return await self._open_paper(owner_id, ex, name)

    async def _open_paper(self, owner_id: int | None, ex: HostedVenue, name: str) -> Account:
        """A new paper account, known at once and stored with its `paper_funds` in one change set (forgotten if refused)."""
        if not ex.markets:
            raise NotReady("exchange_not_ready", f"exchange {ex.name} is {ex.status}, not ready; retry shortly")
        ts = self.clock()
        account = self.accounts.new(owner_id, ex.name, "paper", name, ts)
        self.accounts.add(account)
        try:
            lines: list[WalletLine] = []
            for currency, amount in self.configs[ex.name].paper_funds.items():
                if currency in ex.currencies():
                    lines += self.ledger.add_virtual_tx(ex.name, currency, str_to_atto(amount), ts, account.id)
            changes = self._changes(lines=lines)
            changes.accounts = (account,)
            await self._commit(changes)
        except CoinwireError:
            self.accounts.forget(account)
            raise
        return account

    async def live_account(self, exchange: str, user_name: str | None) -> Account:
        """The live exchange's account (whose keys it trades with: `user_name`'s, None: the platform's), made when it first connects."""
        owner_id = None
        if user_name:
            from coinwire.auth.repository import AuthRepository

            user = await AuthRepository(self.store).user_by_name(user_name)
            owner_id = int(user["id"]) if user is not None else None
        account = self.accounts.own(owner_id, exchange)
        if account is None:
            account = self.accounts.new(owner_id, exchange, "live", exchange, self.clock())
            self.accounts.add(account)
            changes = ChangeSet()
            changes.accounts = (account,)
            try:
                await self._commit(changes)
            except CoinwireError:
                self.accounts.forget(account)
                raise
        return account

    async def open_external(self, owner_id: int | None, label: str, name: str, holdings: Mapping[str, int]) -> Account:
        """A new external account (a bot or exchange coinwire does not trade for), stored with its opening holdings.

        `label` names what it tracks ("cryptohopper"): never a venue's name, so no order path,
        default account or market lookup ever reaches it. Holdings are ATTO per currency (> 0).
        """
        if label in self.configs or label in self.venues:
            raise InvalidInput("invalid_exchange_label", f"{label!r} is an exchange coinwire trades on: an external account "
                               "names something else (the bot or exchange it tracks)", field="exchange")
        ts = self.clock()
        account = self.accounts.new(owner_id, label, EXTERNAL, name, ts)
        self.accounts.add(account)
        try:
            self.ledger.add_exchange(label, holdings)
            lines: list[WalletLine] = []
            for currency, amount in sorted(holdings.items()):
                lines += self.ledger.sync_venue(label, currency, amount, ts, account.id)
            changes = self._changes(lines=lines)
            changes.accounts = (account,)
            await self._commit(changes)
        except CoinwireError:
            self.accounts.forget(account)
            raise
        return account

    async def apply_external(self, account: Account, trade: ExternalTrade, moves: Mapping[str, int]) -> list[WalletLine]:
        """Apply an external account's webhook trade to its wallets and store both in ONE change set.

        Checked first (a balance taken below zero is `insufficient_funds`, nothing written);
        the stored trade's key (account, trade id) refuses a second application in the store.
        """
        if account.kind != EXTERNAL:
            raise InvalidInput("not_external", f"account {account.id} is not an external account")
        exchange = account.exchange
        for currency, amount in moves.items():
            have = self.ledger.available_of(exchange, currency, None, account.id) if amount < 0 else 0
            if amount < 0 and have < -amount:
                raise InsufficientFunds(f"account {account.id} holds {atto_to_str(have)} {currency}, the trade takes "
                                        f"{atto_to_str(-amount)}: send its deposit first", currency=currency)
        self.ledger.add_exchange(exchange, moves)
        lines: list[WalletLine] = []
        try:
            for currency, amount in sorted(moves.items()):
                lines += self.ledger.sync_venue(exchange, currency, amount, self.clock(), account.id)
        except CoinwireError:
            self.ledger.revert(lines)
            raise
        changes = self._changes(lines=lines)
        changes.external_trades = (trade,)
        await self._commit(changes)
        return lines

    def order_account(self, request: OrderRequest) -> int | None:
        """The account an order spends from: its wallet set's on the exchange, else the one the caller named.

        None: neither (the owner's own account is used). Naming another account than the set's is `account_conflict`.
        """
        wanted = request.account_id
        if request.wallet_set_id is not None:
            held = self.ledger.set_account(request.wallet_set_id, request.exchange)
            if held is not None:
                if wanted is not None and wanted != held:
                    raise InvalidInput("account_conflict", f"wallet set {request.wallet_set_id} trades {request.exchange} "
                                       f"with account {held}, not {wanted}", wallet_set_id=request.wallet_set_id)
                return held
        if wanted is not None:
            account = self.accounts.accounts.get(wanted)
            if account is None:
                raise NotFound("account_not_found", f"no account {wanted}")
            if account.kind == EXTERNAL:
                raise InvalidInput("account_not_tradable", f"account {wanted} is external: its trades arrive by webhook, "
                                   "coinwire places no order on it")
            if account.exchange != request.exchange:
                raise InvalidInput("account_exchange_mismatch", f"account {wanted} is on {account.exchange}, not {request.exchange}")
        return wanted

    def _new_wallets(self, lines: list[WalletLine]) -> list[Wallet]:
        """Wallets these lines created (the store inserts each wallet once, before its lines)."""
        fresh = []
        persisted = self._persisted_wallets
        for line in lines:  # a plain loop: this runs for every command, and nearly always finds nothing
            wallet_id = line.wallet_id
            if wallet_id not in persisted:
                persisted.add(wallet_id)
                fresh.append(self.ledger.wallet_by_id(wallet_id))
        return fresh

    def _changes(
        self,
        orders: Sequence[Order] = (),
        fills: Sequence[Fill] = (),
        lines: Sequence[WalletLine] = (),
        wallet_sets: Sequence[WalletSet] = (),
        notified: bool = True,
    ) -> ChangeSet:
        """One command's rows: orders and fills with their instrument's scale, new wallets, lines.

        `notified`: these orders and fills are notified after the commit (`_notify`): each fill,
        then each order, takes the next sequence number of its account here, so the order's row
        stores the sequence of its latest notification and the counters restart where they
        stopped (`Store.load_state`'s `last_seqs`).
        """
        changes = ChangeSet(wallet_sets=list(wallet_sets), wallets=self._new_wallets(list(lines)), wallet_lines=list(lines))
        seqs = self.seqs
        for fill in fills:
            if notified:
                seq = seqs[fill.account_id] = seqs.get(fill.account_id, 0) + 1
                self._fill_seqs[fill.id] = seq
                fill = msgspec.structs.replace(fill, seq=seq)  # the row keeps it: a lost notification is published again
            changes.add_fill(fill, self.venues[fill.exchange].markets[fill.symbol].instrument)
        for order in orders:
            if notified:
                order.seq = seqs[order.account_id] = seqs.get(order.account_id, 0) + 1
                stamped = self._order_seqs.get(order.id)
                if stamped is None:
                    self._order_seqs[order.id] = [order.seq]
                else:
                    stamped.append(order.seq)
            changes.add_order(order, self.instrument_of(order))
        return changes

    def require_active_set(self, set_id: int) -> WalletSet:
        wallet_set = self.ledger.wallet_set(set_id)
        if not wallet_set.active:
            raise Conflict("wallet_set_inactive", f"wallet set {set_id} is deactivated")
        return wallet_set

    async def _commit(self, changes: ChangeSet, placed: Order | None = None, created: WalletSet | None = None,
                      made: list[Order] | None = None) -> None:
        """Submit one command's rows; on a refusal take back only that command, or else reload from the store.

        `placed` / `created`: the order or wallet set this command made (nothing stored refers
        to them yet), which is what lets a refused command be taken back alone; `made`: further
        orders it made with `placed` (an OCO's other leg).
        """
        stamped = [(order.id, order.seq) for order, _ in changes.orders]  # before a later command moves them on
        try:
            await self.writer.submit(changes)
        except LeaseLost:  # stepped down: nothing more is written here, and memory is no longer this shard's truth
            metrics.COMMIT_FAILURES.inc()
            raise
        except CoinwireError as exc:  # the store refused this change set alone: the writer isolates each one
            metrics.COMMIT_FAILURES.inc()
            if self._take_back(changes, placed, created, made):
                log.warning("change set refused by the store; taken back", code=exc.code, error=exc.message)
                raise
            log.error("change set refused by the store; rebuilding state from the store", code=exc.code, error=exc.message)
            await self.publish_log("error", "coinwire.gateway", "a store commit failed; state was reloaded from the store")
            await self._recover_after_failed_commit()
            raise
        except Exception:
            log.exception("commit failed; rebuilding state from the store")
            metrics.COMMIT_FAILURES.inc()
            await self._recover_after_failed_commit()
            if not await self._was_committed(stamped):
                with contextlib.suppress(Exception):  # the bus may be down too: the log line above is the record
                    await self.publish_log("error", "coinwire.gateway", "a store commit failed; state was reloaded from the store")
                raise
            log.warning("a commit whose answer was lost had been committed: the command is answered and notified")
        for listener in self.commit_listeners:
            try:
                listener(changes)
            except Exception:  # a listener's bug must not fail a command already committed
                log.exception("commit listener failed")

    async def _was_committed(self, stamped: list[tuple[int, int]]) -> bool:
        """Whether a change set whose commit failed without an answer (the database went away mid-commit) is stored anyway.

        Why: a COMMIT the database carried out before its connection died looks like a failure
        here; answering it as one would leave its notifications unpublished (seqs the bus never
        gets, a gap no replay fills) while the order exists. Its orders in the store at (or past)
        the seqs this change set gave them say it was committed. A change set without orders, or a
        store still unreachable, counts as not committed (the caller raises, as before).
        """
        if not stamped:
            return False
        try:
            for order_id, seq in stamped:
                stored = await self.store.get_order(order_id)
                if stored is None or stored.seq < seq:
                    return False
        except Exception:  # noqa: BLE001 - the store is still away: the outcome stays unknown, reported as a failure
            return False
        return True

    def _take_back(self, changes: ChangeSet, placed: Order | None, created: WalletSet | None,
                   made: list[Order] | None = None) -> bool:
        """Undo in memory a new order's or wallet set's command the store refused; False when it cannot be undone alone.

        Lines written since by others stay: a hold, fill or allocation taken back only returns
        funds, unless a later command of the same wallet already spent them (then: False, and
        the caller reloads). An order's fills against the mirrored book leave that book's
        consumed liquidity as it is until the next book update, as a cancel would.
        """
        if (placed is None and created is None) or changes.positions:  # a position's change is undone by a reload only
            return False
        mine = [placed, *(made or ())] if placed is not None else []
        if sum(order.filled_size for order in mine) != sum(fill.size for fill, _ in changes.fills):
            return False  # market data filled it further meanwhile: those lines rest on this command's
        set_id = created.id if created is not None else None
        if any(wallet.wallet_set_id != set_id or set_id is None for wallet in changes.wallets):
            return False  # a new wallet later commands may already refer to
        if set_id is not None and any(order.wallet_set_id == set_id for order in self.orders.values()):
            return False
        after: dict[int, list[int]] = {}
        for line in changes.wallet_lines:
            balance = after.setdefault(line.wallet_id, [0, 0])
            balance[0] += line.movement
            balance[1] += line.hold
        for wallet_id, (movement, hold) in after.items():
            wallet = self.ledger.wallet_by_id(wallet_id)
            if wallet.balance - movement - (wallet.hold - hold) < 0 or wallet.hold - hold < 0:
                return False
        for order in mine:
            self._order_seqs.pop(order.id, None)  # never notified
            self.venues[order.exchange].take_back(order)
            self.orders.pop(order.id, None)
            keys = self.by_client_oid.get(order.owner_id)
            if keys is not None and keys.get(order.client_oid) == order.id:
                del keys[order.client_oid]  # its key stays in the filter: a "maybe" costs one store read
        self.ledger.revert(changes.wallet_lines, set_id)
        for wallet in changes.wallets:
            self._persisted_wallets.discard(wallet.id)
        return True

    async def reload_from_store(self) -> None:
        """Make memory the store's again: after a step-down, before this gateway takes its shard back (services.gateway_leases)."""
        await self._recover_after_failed_commit()

    async def _recover_after_failed_commit(self) -> None:
        """Memory ran ahead of a commit that failed: reload everything from the store.

        The reload is tried again with backoff for a few seconds (`_RELOAD_PAUSES`): a commit fails
        most often because the database went away, and a restarted one is back within a second;
        until the reload succeeds this gateway's memory is not its shard's truth.
        """
        async with self._lock:
            self.recovering = True  # commands are refused (retryable) until memory is the store's again
            handed = (self.order_ids.last, self.fill_ids.last, self.ledger.line_ids.last)
            try:
                self.orders.clear()
                self.by_client_oid.clear()
                for venue in self.venues.values():
                    venue.forget_orders()
                for pause in (*_RELOAD_PAUSES, None):
                    try:
                        await self._restore()
                        break
                    except Exception as exc:
                        if pause is None or self.store.fence.lost is not None:
                            raise
                        log.warning("reloading from the store failed; trying again", error=str(exc) or type(exc).__name__,
                                    pause=pause)
                        await asyncio.sleep(pause)
                # ids handed out before are never handed out again: a change set still queued when the reload read the
                # store may commit after it (a reused id would make every later change set of that id refused)
                self.order_ids.advance_to(handed[0])
                self.fill_ids.advance_to(handed[1])
                self.ledger.line_ids.advance_to(handed[2])
                self.writer.resume()  # halted at the failure (store.writer): memory is the store's again
            finally:
                self.recovering = False
            for venue in self.venues.values():
                self._register_perpetuals(venue)
                self._restore_orders(venue)

    def _subject(self, kind: str, account_id: int, exchange: str, symbol: str) -> str:
        """`messages.account_subject`, memoised per (kind, account, exchange, symbol): it runs for every notification."""
        key = (kind, account_id, exchange, symbol)
        subj = self._subjects.get(key)
        if subj is None:
            if len(self._subjects) >= 65_536:
                self._subjects.clear()
            subj = self._subjects[key] = account_subject(kind, account_id, exchange, symbol)
        return subj

    def _perp_changes(self, changes: ChangeSet, execution: Execution, notified: bool) -> list[tuple[str, Message]]:
        """A perpetual step's rows (positions, settings, modes, funding) into `changes`; returns its position notifications.

        Each changed position takes its account's next sequence number here, as orders do, and
        its view is built now, at the state this change set stores (a later step may move it
        before this one's notification goes out).
        """
        positions = execution.positions or []
        for pos in positions:
            changes.add_position(pos, self.venues[pos.exchange].markets[pos.symbol].instrument)
            if notified:
                pos.seq = self.seqs[pos.account_id] = self.seqs.get(pos.account_id, 0) + 1
        if execution.settings:
            changes.settings = list(execution.settings)
        if execution.modes:
            changes.modes = list(execution.modes)
        for payment in execution.funding or ():
            changes.add_funding(payment, self.venues[payment.exchange].markets[payment.symbol].instrument)
        return self._position_messages(positions) if notified else []

    def _position_messages(self, positions: list[Position], seq: Callable[[Position], int] | None = None) -> list[tuple[str, Message]]:
        """`positions_updated` notifications of these positions (each at its mark), to its account's followers."""
        views = position_views(self.ledger, positions, self._position_instrument, seq)
        return [(self._subject("position", pos.account_id, pos.exchange, pos.symbol),
                 PositionUpdate(view, self._account_owner(pos.account_id), pos.account_id, view.seq))
                for pos, view in zip(positions, views, strict=True)]

    def _take_off(self, positions: Sequence[Position]) -> list[tuple[int, str, str, PositionSide]]:
        """Mark these positions' changes in flight (a sequence taken, not yet notified); returns their keys for `_land`."""
        keys = [(p.account_id, p.exchange, p.symbol, p.side) for p in positions]
        flying = self._positions_in_flight
        for key in keys:
            flying[key] = flying.get(key, 0) + 1
        return keys

    def _land(self, keys: list[tuple[int, str, str, PositionSide]]) -> None:
        """These positions' changes were notified (or failed): mark pushes may carry their sequence again."""
        flying = self._positions_in_flight
        for key in keys:
            left = flying[key] - 1
            if left:
                flying[key] = left
            else:
                del flying[key]

    def _account_owner(self, account_id: int) -> int | None:
        account = self.accounts.accounts.get(account_id)
        return account.owner_id if account is not None else None

    def _position_instrument(self, pos: Position) -> Instrument:
        return self.venues[pos.exchange].markets[pos.symbol].instrument

    async def publish_marks(self, positions: list[Position]) -> None:
        """`positions_updated` for positions only their mark moved (uPnL, margin ratio): not stored, no new sequence number.

        They carry the sequence of the position's latest stored change, so a follower replaying
        from a sequence number misses nothing stored; the mark itself is stored with the next change.
        A position whose change is still committing is left out: its sequence is not stored yet,
        and that change's own notification brings the new mark. None while notifications wait for the
        bus, or a repair holds them (services/notify_queue.py): a mark would carry a seq ahead of them.
        """
        if self.notifications.holding:
            return
        if self._positions_in_flight:
            flying = self._positions_in_flight
            positions = [p for p in positions if (p.account_id, p.exchange, p.symbol, p.side) not in flying]
        if positions:
            await self.bus.publish_many(self._position_messages(positions))

    def _fill_message(self, fill: Fill, owner_id: int | None, seq: int, funds: int) -> tuple[str, Message]:
        """A fill's notification (its subject, its `FillEvent`): the one shape, live (`_notify`) and repaired."""
        inst = self.venues[fill.exchange].markets[fill.symbol].instrument
        return (self._subject("fill", fill.account_id, fill.exchange, fill.symbol),
                FillEvent(fill_view(fill, inst, seq, funds), owner_id, fill.account_id, seq))

    def _order_message(self, order: Order, view: OrderView, seq: int) -> tuple[str, Message]:
        """An order's notification (its subject, its `OrderUpdate`): the one shape, live (`_notify`) and repaired."""
        return (self._subject("order", order.account_id, order.exchange, order.symbol),
                OrderUpdate(view, order.owner_id, order.account_id, seq))

    async def _notify(self, orders: list[Order], fills: list[Fill],
                      positions: list[tuple[str, Message]] | None = None) -> list[OrderView]:
        """Publish fills, order updates and position updates; returns the orders' views (built once, also the answer).

        In one `publish_many`: commands resume from their commits in the order they took their
        sequence numbers, so with nothing of another command between them each account's
        notifications reach the bus in `seq` order (what a replay and a live follower rely on).
        """
        views: list[OrderView] = []
        for listener in self.listeners:
            listener.on_execution(orders, fills)
        single = orders[0].owner_id if len(orders) == 1 else None  # make_order's case: every fill is its order's
        fill_seqs = self._fill_seqs
        batch: list[tuple[str, Message]] = []
        for fill in fills:
            owner_id = single if len(orders) == 1 else _owner_of(orders, fill.order_id)
            funds = orders[0].funds if len(orders) == 1 else _funds_of(orders, fill.order_id)
            batch.append(self._fill_message(fill, owner_id, fill_seqs.pop(fill.id, 0), funds))
        order_seqs = self._order_seqs
        for order in orders:
            stamped = order_seqs.get(order.id)
            if stamped:  # this command's own sequence (commands reach here in the order they took them)
                seq = stamped.pop(0)
                if not stamped:
                    del order_seqs[order.id]
            else:
                seq = order.seq
            view = order_view(order, self.instrument_of(order), seq)
            views.append(view)
            batch.append(self._order_message(order, view, seq))
            if order.is_done:
                reason = order.done_reason.value if order.done_reason else "done"
                batch.append(self._log_message("info", f"user.orders.{order.run_id or 'manual'}",
                                               f"Order {order.client_oid} is done ({reason})", None, order.owner_id))
        if positions:
            batch += positions
        await self.notifications.publish(batch)  # kept in order while the bus is away: the command is committed
        return views

    async def publish_log(self, level: str, name: str, message: str, context: dict[str, object] | None = None,
                          owner_id: int | None = None) -> None:
        """A `logmessages` notification (order completions, status changes, every warning and error), kept in `recent_logs`.

        `owner_id`: the user it is about (their order), who may read it besides admins.
        """
        await self.bus.publish(*self._log_message(level, name, message, context, owner_id))

    def _log_message(self, level: str, name: str, message: str, context: dict[str, object] | None,
                     owner_id: int | None) -> tuple[str, LogMessage]:
        """A log message's subject and message, kept in `recent_logs` now."""
        entry = LogMessage(level, name, message, self.clock(), context or _NO_CONTEXT, owner_id)
        self.recent_logs.add(entry)
        return subject("log", level), entry

    # --- the venues' host ----------------------------------------------------------------------
    def now(self) -> int:
        return self.clock()

    async def record(self, execution: Execution, *, notify: bool = True) -> None:
        """Persist what a venue changed as one change set, then notify (`VenueHost.record`).

        The order a placement made is remembered (found by id and client_oid) before its commit;
        an order done is forgotten once notified. The views notified of an order a command waits
        on (`_answered`) become that command's answer, so a view is built once.
        """
        placed = execution.placed
        if placed is not None:
            self.remember(placed)
        created = execution.created
        if created is not None:  # an OCO's second leg, a bracket's children
            for order in created:
                self.remember(order)
        orders, fills = execution.orders, execution.fills
        changes = self._changes(orders, fills, execution.lines, notified=notify)
        moved: list[tuple[str, Message]] | None = None
        flying: list[tuple[int, str, str, PositionSide]] = []
        if execution.positions is not None or execution.settings or execution.modes or execution.funding:
            moved = self._perp_changes(changes, execution, notify)  # a spot step never comes here
            if moved:
                flying = self._take_off(execution.positions or ())
        try:
            await self._commit(changes, placed, made=created)
            if fills:
                metrics.FILLS.labels(fills[0].exchange).inc(len(fills))
            if not notify:
                return
            views = await self._notify(orders, fills, moved)
        finally:
            if flying:
                self._land(flying)
        answers = self._answers
        for order, view in zip(orders, views, strict=True):
            if order.id in answers:
                answers[order.id] = view
            if order.is_done:
                self.retire(order)

    async def log(self, level: str, source: str, message: str, owner_id: int | None = None) -> None:
        await self.publish_log(level, source, message, owner_id=owner_id)

    async def order_fills(self, order_id: int) -> list[Fill]:
        return await self.store.list_fills(order_id=order_id, limit=1_000_000)

    async def _answered(self, order: Order, step: Awaitable[object]) -> OrderView:
        """Run a venue command on `order`; its answer is the order's view as last notified by it (built now if none was)."""
        answers = self._answers
        answers[order.id] = None
        try:
            await step
        finally:
            view = answers.pop(order.id)
        return view if view is not None else order_view(order, self.instrument_of(order))

    # --- commands: orders -----------------------------------------------------------------------
    def existing_order(self, client_oid: str, owner_id: int | None = None) -> Order | None:
        """The order in memory that `owner_id`'s `client_oid` names: not done, or done within the idempotency window."""
        mine = self.by_client_oid.get(owner_id)
        order_id = mine.get(client_oid) if mine is not None else None
        if order_id is not None:
            return self.orders.get(order_id)
        return self.recent.get(owner_id, client_oid)

    def _known(self, owner_id: int | None, client_oid: str) -> bool:
        """May the store hold an order of `owner_id` under `client_oid` (no read: False means surely not)?"""
        return self.client_oid_filter.may_contain(owner_id, client_oid)

    async def make_order(self, request: OrderRequest) -> OrderView:
        """Place an order; a repeat of the owner's client_oid answers that owner's order, never another user's."""
        existing = self.existing_order(request.client_oid, request.owner_id)
        if existing is None and self._known(request.owner_id, request.client_oid):
            existing = await self.store.get_order_by_client_oid(request.client_oid, request.owner_id)
        if existing is not None:
            if request.same_as(existing):
                return order_view(existing, request.instrument)
            raise Conflict(
                "duplicate_client_oid",
                f"client_oid {request.client_oid!r} already names order {existing.id} with other parameters",
                order_id=existing.id,
            )
        venue = self.ready_exchange(request.exchange)
        inst = request.instrument
        if request.wallet_set_id is not None:
            self.require_active_set(request.wallet_set_id)
        account_id = self.order_account(request)
        if account_id is None:
            account = self.accounts.own(request.owner_id, request.exchange) or await self.account_for(request.owner_id, request.exchange)
            account_id = account.id
        ts = self.clock()
        order = Order(
            id=self.order_ids.next(),
            client_oid=request.client_oid,
            exchange=request.exchange,
            symbol=inst.symbol,
            side=request.side,
            type=request.type,
            size=request.size,
            limit=request.limit,
            cancel_after=request.cancel_after,
            wallet_set_id=request.wallet_set_id,
            run_id=request.run_id,
            created_at=ts,
            last_updated_at=ts,
            owner_id=request.owner_id,
            account_id=account_id,
            funds=request.funds,
        )
        if (request.type in _CONDITIONAL or request.bracket is not None or request.expire_at or request.reduce_only
                or request.time_in_force is not _GTC or request.position_side is not _BOTH):
            _carry_conditional(order, request)  # plain orders skip the fields they leave at their defaults
        answers = self._answers  # `_answered`, inline: this is every order's path
        answers[order.id] = None
        try:
            if request.allow_immediate:
                await venue.place(order, request.budget, allow_immediate=True)
            else:
                await venue.place(order, request.budget)
        finally:
            view = answers.pop(order.id)
        metrics.ORDERS.labels(order.exchange, order.type._value_).inc()
        return view if view is not None else order_view(order, inst)

    async def make_oco(self, limit_leg: OrderRequest, stop_leg: OrderRequest) -> list[OrderView]:
        """Place an OCO (a limit leg and a stop leg, same side and size) in one step: one hold, `oco_id` the limit leg's id.

        A repeat of the limit leg's client_oid answers the list it made (both legs' views, limit first).
        """
        existing = await self._existing(limit_leg)
        if existing is not None:
            if not limit_leg.same_as(existing) or not existing.list_id:
                raise Conflict("duplicate_client_oid",
                               f"client_oid {limit_leg.client_oid!r} already names order {existing.id} with other parameters",
                               order_id=existing.id)
            sibling = await self._order_by_client_oid(existing.owner_id, stop_leg.client_oid)
            legs = [existing] + ([sibling] if sibling is not None and sibling.list_id == existing.list_id else [])
            return [order_view(o, limit_leg.instrument) for o in legs]
        venue = self.ready_exchange(limit_leg.exchange)
        if limit_leg.wallet_set_id is not None:
            self.require_active_set(limit_leg.wallet_set_id)
        account_id = self.order_account(limit_leg)
        if account_id is None:
            account_id = (self.accounts.own(limit_leg.owner_id, limit_leg.exchange)
                          or await self.account_for(limit_leg.owner_id, limit_leg.exchange)).id
        first = self._new_order(limit_leg, account_id)
        second = self._new_order(stop_leg, account_id)
        first.list_id = second.list_id = first.id
        for order in (first, second):
            self._answers[order.id] = None
        try:
            await venue.place_oco(first, second)
        finally:
            views = [self._answers.pop(first.id), self._answers.pop(second.id)]
        metrics.ORDERS.labels(first.exchange, first.type._value_).inc()
        metrics.ORDERS.labels(second.exchange, second.type._value_).inc()
        return [view if view is not None else order_view(order, limit_leg.instrument)
                for order, view in zip((first, second), views, strict=True)]

    async def _existing(self, request: OrderRequest) -> Order | None:
        """The order the request's client_oid already names for its owner (memory, then the store when it may be there)."""
        existing = self.existing_order(request.client_oid, request.owner_id)
        if existing is None and self._known(request.owner_id, request.client_oid):
            existing = await self.store.get_order_by_client_oid(request.client_oid, request.owner_id)
        return existing

    def _new_order(self, request: OrderRequest, account_id: int) -> Order:
        """A new pending order of a request (not make_order's path, which builds its own inline)."""
        ts = self.clock()
        order = Order(
            id=self.order_ids.next(), client_oid=request.client_oid, exchange=request.exchange, symbol=request.instrument.symbol,
            side=request.side, type=request.type, size=request.size, limit=request.limit, cancel_after=request.cancel_after,
            wallet_set_id=request.wallet_set_id, run_id=request.run_id, created_at=ts, last_updated_at=ts,
            owner_id=request.owner_id, account_id=account_id)
        _carry_conditional(order, request)
        return order

    def remember(self, order: Order) -> None:
        """An accepted order: found by id and client_oid until it is done, its key in the filter for good."""
        self.orders[order.id] = order
        self._index(order)
        self.client_oid_filter.add(order.owner_id, order.client_oid)

    def retire(self, order: Order) -> None:
        """A done order whose command is over: out of the open orders, into the idempotency window (then the store's)."""
        self.orders.pop(order.id, None)
        mine = self.by_client_oid.get(order.owner_id)
        if mine is not None and mine.get(order.client_oid) == order.id:
            del mine[order.client_oid]
            if not mine:
                del self.by_client_oid[order.owner_id]
        self.recent.add(order, self.clock())

    def _index(self, order: Order) -> None:
        mine = self.by_client_oid.get(order.owner_id)
        if mine is None:
            mine = self.by_client_oid[order.owner_id] = {}
        mine[order.client_oid] = order.id

    async def cancel_order(
        self, *, order_id: int | None, client_oid: str | None, exchange: str | None, owner_id: int | None = None,
        unowned_too: bool = False, may_trade: Callable[[int], bool] | None = None,
    ) -> OrderView:
        """Cancel by order id, or by the client_oid of `owner_id` (with `unowned_too`, of no owner next: admins).

        `may_trade(account_id)`: whether the caller may trade the order's account (None: anyone,
        in-process callers); an order of another account answers `order_not_found`.
        """
        self._not_recovering()
        order: Order | None = None
        if order_id is not None:
            order = self.orders.get(order_id) or await self.store.get_order(order_id)
        elif client_oid is not None:
            order = await self._order_by_client_oid(owner_id, client_oid)
            if order is None and unowned_too and owner_id is not None:
                order = await self._order_by_client_oid(None, client_oid)
        else:
            raise InvalidInput("missing_parameter", "cancel_order needs order_id or client_oid")
        if (order is None or (exchange is not None and order.exchange != exchange)
                or (may_trade is not None and not may_trade(order.account_id))):
            raise NotFound("order_not_found", f"no order {order_id or client_oid!r}")
        if order.is_done:
            raise Conflict(
                "order_done",
                f"order {order.id} is already done ({order.done_reason.value if order.done_reason else ''})",
                order_id=order.id,
            )
        return await self._answered(order, self.venues[order.exchange].cancel(order))

    async def _order_by_client_oid(self, owner_id: int | None, client_oid: str) -> Order | None:
        order = self.existing_order(client_oid, owner_id)
        if order is None and self._known(owner_id, client_oid):
            order = await self.store.get_order_by_client_oid(client_oid, owner_id)
            if order is not None:
                order = self.orders.get(order.id, order)  # one not done is the one in memory
        return order

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            await self.expire_due()

    async def expire_due(self) -> None:
        """Ask every venue to retire the orders whose `cancel_after` deadline has passed."""
        now = self.clock()
        for venue in self.venues.values():
            try:
                await venue.expire(now)
            except Exception:  # noqa: BLE001 - a failed commit is logged by _commit; the loop must go on
                pass

    def open_orders(
        self, *, exchange: str | None = None, wallet_set_id: int | None = None, accounts: Collection[int] | None = None
    ) -> list[OrderView]:
        """Resting orders, newest first; `accounts`: only those accounts' (None: every account's)."""
        out = []
        for venue in self.venues.values():
            if exchange is not None and venue.name != exchange:
                continue
            for order in venue.open_orders():
                if ((wallet_set_id is None or order.wallet_set_id == wallet_set_id)
                        and (accounts is None or order.account_id in accounts)):
                    out.append(order_view(order, venue.markets[order.symbol].instrument))
        out.sort(key=lambda o: o.id, reverse=True)
        return out

    async def recent_orders(
        self, *, include_open: bool, limit: int, exchange: str | None = None, accounts: Collection[int] | None = None
    ) -> list[OrderView]:
        """The newest `limit` orders; `accounts`: those accounts' newest (selected in the query, before the limit)."""
        if accounts is not None and not accounts:
            return []
        rows = await self.store.list_orders(status=None if include_open else "done", exchange=exchange, limit=limit, accounts=accounts)
        out = []
        for order in rows:
            live = self.orders.get(order.id)
            order = live or order
            venue = self.venues.get(order.exchange)
            market = venue.market(order.symbol) if venue else None
            if market is not None:
                out.append(order_view(order, market.instrument))
        return out

    # --- positions (perpetuals) --------------------------------------------------------------------
    def positions(self, *, accounts: Collection[int] | None = None, exchange: str | None = None, symbol: str | None = None,
                  include_flat: bool = False) -> list[PositionView]:
        """Positions at their latest mark; `accounts`: only those accounts' (None: every account's, admins).

        Flat positions (closed, with their realised PnL and funding) only with `include_flat`.
        """
        if accounts is not None and not accounts:
            return []
        wanted = normalize_symbol(symbol) if symbol is not None else None
        book = self.ledger.positions
        found = [p for p in book.all()
                 if (accounts is None or p.account_id in accounts) and (exchange is None or p.exchange == exchange)
                 and (wanted is None or p.symbol == wanted) and (include_flat or p.size)
                 and p.exchange in self.venues and self.venues[p.exchange].market(p.symbol) is not None]
        return position_views(self.ledger, found, self._position_instrument)

    def position_settings(self, account_id: int, exchange: str, symbol: str) -> PositionSettings:
        """The account's leverage and margin mode on a perpetual (the defaults until set)."""
        market = self._perp_market(exchange, symbol)
        return self.ledger.positions.settings(account_id, exchange, market.instrument.symbol, market.instrument)

    def _perp_market(self, exchange: str, symbol: object) -> PaperMarket:
        market = self.market(exchange, symbol)
        if not market.instrument.is_perpetual:
            raise InvalidInput("not_a_perpetual", f"{market.instrument.symbol} on {exchange} is not a perpetual market",
                               field="pair")
        return market

    def _perp_venue(self, exchange: str) -> PerpVenue:
        """Every hosted venue (paper, live) takes the position commands; a spot-only market refuses them (`not_a_perpetual`)."""
        return self.ready_exchange(exchange)

    async def set_leverage(self, *, account_id: int, exchange: str, symbol: str, leverage: object) -> PositionSettings:
        """Set the account's leverage on a perpetual (`leverage_above_maximum` beyond the bracket's)."""
        if type(leverage) is not int or leverage < 1:
            raise InvalidInput("invalid_leverage", f"leverage must be a whole number >= 1, got {leverage!r}", field="leverage")
        market = self._perp_market(exchange, symbol)
        await self._perp_venue(exchange).set_leverage(account_id, market.instrument.symbol, leverage)
        return self.position_settings(account_id, exchange, market.instrument.symbol)

    async def set_margin_mode(self, *, account_id: int, exchange: str, symbol: str, mode: object) -> PositionSettings:
        """Isolated or cross on a perpetual (`margin_mode_change_with_open_position` while a position or order is open)."""
        try:
            margin_mode = MarginMode(mode)
        except ValueError:
            raise InvalidInput("invalid_margin_mode", f"margin mode must be isolated or cross, got {mode!r}",
                               field="mode") from None
        market = self._perp_market(exchange, symbol)
        await self._perp_venue(exchange).set_margin_mode(account_id, market.instrument.symbol, margin_mode)
        return self.position_settings(account_id, exchange, market.instrument.symbol)

    async def set_hedge_mode(self, *, account_id: int, exchange: str, hedge: object) -> bool:
        """Hedge or one-way mode on an exchange's perpetuals; refused with positions or orders open there."""
        if type(hedge) is not bool:
            raise InvalidInput("invalid_hedge_mode", f"hedge_mode must be true or false, got {hedge!r}", field="hedge_mode")
        await self._perp_venue(exchange).set_hedge_mode(account_id, hedge)
        return self.ledger.positions.hedge_mode(account_id, exchange)

    async def adjust_margin(self, *, account_id: int, exchange: str, symbol: str, amount: int,
                            position_side: PositionSide = PositionSide.BOTH, wallet_set_id: int | None = None) -> PositionView:
        """Add (+) or remove (-) isolated margin (ATTO of the settle currency) on a position; answers its new view."""
        market = self._perp_market(exchange, symbol)
        sym = market.instrument.symbol
        await self._perp_venue(exchange).adjust_margin(account_id, sym, amount, position_side, wallet_set_id)
        pos = self.ledger.positions.get(account_id, exchange, sym, position_side, wallet_set_id)
        if pos is None:  # pragma: no cover - the venue refuses a margin change of a position it does not have
            raise NotFound("no_position", f"no {position_side.value} position in {sym}")
        return position_views(self.ledger, [pos], self._position_instrument)[0]

    async def close_position(self, *, account_id: int, exchange: str, symbol: str,
                             position_side: PositionSide = PositionSide.BOTH, wallet_set_id: int | None = None,
                             owner_id: int | None = None, client_oid: str | None = None) -> OrderView:
        """Close a position with a reduce-only market order for all of it (`no_position` when it is flat)."""
        market = self._perp_market(exchange, symbol)
        inst = market.instrument
        order_id = self.order_ids.next()
        order = close_position_order(self.ledger, inst, account_id, inst.symbol, position_side, wallet_set_id, order_id,
                                     client_oid or f"close-{order_id}", self.clock())
        order.owner_id = owner_id
        return await self._answered(order, self.ready_exchange(exchange).place(order))

    async def funding_history(self, *, accounts: Collection[int] | None = None, exchange: str | None = None,
                              symbol: str | None = None, limit: int = 100, before_id: int | None = None) -> list[FundingView]:
        """Funding payments settled on positions, newest first; `accounts`: only theirs (None: everyone's, admins)."""
        wanted = normalize_symbol(symbol) if symbol is not None else None
        rows = await self.store.funding_history(accounts, exchange, wanted, limit, before_id)
        out = []
        for payment in rows:
            venue = self.venues.get(payment.exchange)
            market = venue.market(payment.symbol) if venue is not None else None
            if market is not None:
                out.append(funding_view(payment, market.instrument))
        return out

    # --- commands: wallets ---------------------------------------------------------------------------
    async def add_virtual_wallet_tx(self, *, exchange: str, currency: str, movement: int, account_id: int) -> int:
        """A deposit (+) or withdrawal (-) of virtual funds on a paper account's unallocated wallet."""
        if not self.exchange(exchange).virtual_funds:
            raise DomainError("not_paper", f"exchange {exchange} is not a paper exchange")
        lines = self.ledger.add_virtual_tx(exchange, currency, movement, self.clock(), account_id)
        await self._commit(self._changes(lines=lines))
        return lines[-1].id

    async def create_wallet_set(
        self, *, run_id: str | None, description: str, allocations: list[tuple[str, str, int]], owner_id: int | None = None,
        accounts: dict[str, int] | None = None,
    ) -> WalletSet:
        """`owner_id`: the creating user, whose `owners` row is committed with the set (None: admins' only).

        `accounts`: the account funding each exchange's allocations, already checked for the
        caller; an exchange not in it is funded by the owner's own account there (made on first use).
        """
        of = await self._allocation_accounts(allocations, owner_id, accounts)
        wallet_set, lines = self.ledger.create_wallet_set(run_id, description, allocations, self.clock(), of)
        changes = self._changes(lines=lines, wallet_sets=[wallet_set])
        if owner_id is not None:
            changes.owners = (("wallet_set", str(wallet_set.id), owner_id),)
        await self._commit(changes, created=wallet_set)
        return wallet_set

    async def _allocation_accounts(
        self, allocations: list[tuple[str, str, int]], owner_id: int | None, accounts: dict[str, int] | None, set_id: int | None = None
    ) -> dict[str, int]:
        """The account of each exchange an allocation names: given, else the set's there, else the owner's own."""
        of = dict(accounts or {})
        for exchange, _, _ in allocations:
            self.exchange(exchange)
            if exchange not in of:
                held = self.ledger.set_account(set_id, exchange) if set_id is not None else None
                if held is not None:
                    of[exchange] = held
                else:
                    account = self.accounts.own(owner_id, exchange) or await self.account_for(owner_id, exchange)
                    of[exchange] = account.id
            elif self.accounts.accounts[of[exchange]].exchange != exchange:
                raise InvalidInput("account_exchange_mismatch", f"account {of[exchange]} is not on {exchange}")
        return of

    async def allocate_to_wallet_set(
        self, set_id: int, allocations: list[tuple[str, str, int]], owner_id: int | None = None, accounts: dict[str, int] | None = None
    ) -> None:
        """Move funds between unallocated and an active set (+ in, - back out): one change set, all or nothing."""
        of = await self._allocation_accounts(allocations, owner_id, accounts, set_id)
        lines = self.ledger.allocate_to_wallet_set(set_id, allocations, self.clock(), of)
        if lines:
            await self._commit(self._changes(lines=lines))

    async def deactivate_wallet_set(self, set_id: int) -> WalletSet:
        """Cancel the set's open orders (their holds go), then return its funds to unallocated."""
        wallet_set = self.require_active_set(set_id)
        for venue in self.venues.values():
            for order in [o for o in venue.open_orders() if o.wallet_set_id == set_id]:
                if not order.is_done:  # an OCO leg ends with its sibling's cancel
                    await venue.cancel(order)  # a refusal keeps the set active: its money is still in orders at the venue
        ts = self.clock()
        lines = self.ledger.deactivate_wallet_set(set_id, ts)
        wallet_set = self.ledger.wallet_set(set_id)  # the ledger hands out copies: take the new state
        await self._commit(self._changes(lines=lines, wallet_sets=[wallet_set]))
        return wallet_set


def _carry_conditional(order: Order, request: OrderRequest) -> None:
    """The request's conditional and perpetual fields onto its new order (stop, trigger, trailing, time in force, expiry,
    bracket, reduce-only, position side)."""
    order.stop_price = request.stop_price
    order.trigger = request.trigger
    order.trail_ppm = request.trail_ppm
    order.trail_delta = request.trail_delta
    order.activation_price = request.activation_price
    order.time_in_force = request.time_in_force
    order.expire_at = request.expire_at
    order.reduce_only = request.reduce_only
    order.bracket = request.bracket
    order.position_side = request.position_side


def _owner_of(orders: list[Order], order_id: int) -> int | None:
    """The owner of the order a fill belongs to (among the orders notified with it)."""
    for order in orders:
        if order.id == order_id:
            return order.owner_id
    return None


def _funds_of(orders: list[Order], order_id: int) -> int:
    """The funds of the order a fill belongs to (0: sized by size, or not among the orders notified with it)."""
    for order in orders:
        if order.id == order_id:
            return order.funds
    return 0
