"""The exchange gateway (the seed's xWrap): paper exchanges, orders, logical wallets, notifications.

Every command runs the pure core synchronously on the event loop (validate, hold, match,
settle), then persists the resulting rows as ONE transaction through the group-commit
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
import time
from collections.abc import Callable, Collection, Sequence
from functools import partial
from typing import Any, Protocol

import structlog

from coinwire.bus.base import Bus
from coinwire.config import ExchangeConfig, Settings
from coinwire.core.accounts import Account
from coinwire.core.book_sync import RESYNC
from coinwire.core.errors import CoinwireError, Conflict, DomainError, InvalidInput, NotFound, NotReady
from coinwire.core.execution import place_order, release_hold, settle_fills
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.key_filter import KeyFilter
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import str_to_atto
from coinwire.core.orders import Fill, Order, OrderType, Side
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
    Message,
    OrderUpdate,
    TradeTick,
    account_subject,
    subject,
)
from coinwire.services import metrics
from coinwire.services.accounts import AccountBook, MembersRepository
from coinwire.services.live_credentials import live_credentials
from coinwire.services.live_exchange import LiveExchange
from coinwire.services.log_feed import LogRing
from coinwire.services.paper_exchange import PaperExchange, PaperMarket
from coinwire.services.recent_orders import RecentOrders
from coinwire.services.views import fill_view, order_view
from coinwire.store import ChangeSet, GroupCommitWriter, Store

__all__ = ["ExecutionListener", "Gateway", "OrderRequest"]

log = structlog.get_logger("coinwire.gateway")
_NO_CONTEXT: dict[str, object] = {}  # shared by every log message without fields (never changed: readers copy it)

Clock = Callable[[], int]

_MARKET_DATA = frozenset({Markets, BookSnapshot, BookDelta, TradeTick, BookTicker})


class OrderRequest:
    """A make_order request after parsing: exact units, known instrument."""

    __slots__ = ("exchange", "instrument", "side", "type", "size", "limit", "cancel_after", "client_oid", "wallet_set_id", "run_id",
                 "budget", "owner_id", "account_id")

    def __init__(
        self,
        *,
        exchange: str,
        instrument: Instrument,
        side: Side,
        type: OrderType,
        size: int,
        limit: int,
        cancel_after: int,
        client_oid: str,
        wallet_set_id: int | None,
        run_id: str | None,
        budget: int | None = None,
        owner_id: int | None = None,
        account_id: int | None = None,
    ) -> None:
        self.exchange = exchange
        self.instrument = instrument
        self.side = side
        self.type = type
        self.size = size
        self.limit = limit
        self.cancel_after = cancel_after
        self.client_oid = client_oid
        self.wallet_set_id = wallet_set_id
        self.run_id = run_id
        self.budget = budget  # ATTO of the quote a market buy may spend (its hold): an all-in buy sized on the book
        self.owner_id = owner_id  # the placing user, stored in the order row with the order
        # the account it spends from, already checked for the caller (None: the wallet set's account on the
        # exchange, else the owner's own account there, made on first use)
        self.account_id = account_id

    def same_as(self, order: Order) -> bool:
        return (
            order.exchange == self.exchange
            and order.symbol == self.instrument.symbol
            and order.side is self.side
            and order.type is self.type
            and order.size == self.size
            and order.limit == self.limit
            and order.wallet_set_id == self.wallet_set_id
            and (self.account_id is None or order.account_id == self.account_id)
        )


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
    def __init__(self, settings: Settings, store: Store, bus: Bus, clock: Clock = time.time_ns) -> None:
        self.settings = settings
        self.store = store
        self.writer = GroupCommitWriter(store)
        self.bus = bus
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
        self.order_ids = IdSequence()
        self.fill_ids = IdSequence()
        self.exchanges: dict[str, PaperExchange] = {}
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
        self._tasks: list[asyncio.Task[Any]] = []
        self._subscriptions: list[Any] = []
        self._persisted_wallets: set[int] = set()
        self.snapshot_sources: dict[str, Any] = {}  # exchange -> feed SnapshotSource, for resyncs
        self._subjects: dict[tuple[str, int, str, str], str] = {}
        self._symbols: dict[str, str] = {}  # symbol as given -> normalised (every order names one)
        self.listeners: list[ExecutionListener] = []
        self.started_at = clock()

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await self.writer.start()
        await self._restore()
        for cfg in self.settings.exchanges:
            if cfg.mode == "live":
                live = LiveExchange(cfg, self, partial(live_credentials, cfg, self.store, self.settings.data_path))
                self.exchanges[cfg.name] = live
                await live.start()  # connects in the background: the exchange is `starting` until its account is read
            else:
                self.exchanges[cfg.name] = PaperExchange(cfg.name, self.fill_ids, cfg.feed)
        # ONE subscription for every kind of market data: a bus keeps order per subscription, so
        # trades and book changes reach the matching engine in the order the feed sent them
        # (and only market data: the gateway's own orders, fills and logs never come back to it)
        self._subscriptions.append(await self.bus.subscribe(">", self._on_market_message, types=_MARKET_DATA))
        self._tasks.append(asyncio.create_task(self._expiry_loop(), name="gateway-expiry"))
        self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name="gateway-checkpoint"))

    async def close(self) -> None:
        for sub in self._subscriptions:
            await sub.unsubscribe()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ex in self.exchanges.values():
            if isinstance(ex, LiveExchange):
                await ex.close()
            await self._set_status(ex, "stopped")
        await self.writer.close()
        await self.checkpoint()  # the next start reads no line twice

    async def _restore(self) -> None:
        """Rebuild the ledger, id sequences and resting orders from the store (crash recovery)."""
        state = await self.store.load_state()
        self.accounts.load(state.accounts, await MembersRepository(self.store).all())
        self.seqs = dict(state.last_seqs)
        self._order_seqs.clear()  # commands whose notifications will not come (a failed commit reloads from the store)
        self.ledger = Ledger.restore(state.wallets, state.wallet_sets, state.totals)
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
        if isinstance(message, Markets):
            await self._on_markets(message)
            for listener in self.listeners:
                await listener.on_market(message)
            return
        exchange = self.exchanges.get(getattr(message, "exchange", ""))
        if exchange is None:
            return
        market = exchange.market(message.symbol)  # type: ignore[union-attr]
        if market is None:
            return
        fills = market.on_market(message)  # type: ignore[arg-type]
        if isinstance(message, (BookDelta, BookSnapshot)):
            metrics.BOOK_UPDATES.labels(exchange.name).inc(len(message.bids) + len(message.asks))
            if market.sync.state == RESYNC:  # a gap: ask the source (before the first book, the feed sends one)
                await self._resync(exchange, market)
            await self._refresh_status(exchange)
        if fills:
            await self._settle_resting(market, fills)
        for listener in self.listeners:
            await listener.on_market(message)

    async def _on_markets(self, message: Markets) -> None:
        exchange = self.exchanges.get(message.exchange)
        if exchange is None:
            return
        cfg = self.configs[exchange.name]
        wanted = {normalize_symbol(s) for s in cfg.symbols}
        instruments = [i for i in message.instruments if not wanted or i.symbol in wanted]
        exchange.add_instruments(instruments)
        self.ledger.add_exchange(exchange.name, exchange.currencies())
        for order in [o for o in self._restored_open if o.exchange == exchange.name]:
            if exchange.restore_order(order):
                self._restored_open.remove(order)

    async def _resync(self, exchange: PaperExchange, market: PaperMarket) -> None:
        source = self.snapshot_sources.get(exchange.name)
        if source is None:
            return
        snapshot = source.snapshot(exchange.name, market.instrument.symbol)
        if snapshot is not None:
            fills = market.on_book(snapshot)
            if fills:
                await self._settle_resting(market, fills)

    async def _refresh_status(self, exchange: PaperExchange) -> None:
        status = exchange.computed_status()
        if status != exchange.status:
            await self._set_status(exchange, status)

    async def _set_status(self, exchange: PaperExchange, status: str) -> None:
        previous, exchange.status = exchange.status, status
        log.info("exchange status", exchange=exchange.name, previous=previous, status=status)
        level = "warning" if status in ("degraded", "stopped") else "info"
        await self.publish_log(level, "coinwire.gateway", f"exchange {exchange.name}: {previous} -> {status}")
        await self.bus.publish(
            subject("exchstatus", exchange.name), ExchangeStatusChanged(exchange.name, previous, status, self.clock())
        )

    async def caught_up(self, give_up: asyncio.Event | None = None) -> None:
        """Wait until the market messages published so far are applied (a recording's end); `give_up` ends it early."""
        while any(sub.inbox.pending for sub in self._subscriptions) and not (give_up is not None and give_up.is_set()):
            await asyncio.sleep(0.02)

    # --- helpers -----------------------------------------------------------------------------
    def exchange(self, name: object) -> PaperExchange:
        if not isinstance(name, str) or name not in self.exchanges:
            raise NotFound("unknown_exchange", f"unknown exchange {name!r}; known: {sorted(self.exchanges)}")
        return self.exchanges[name]

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

    def ready_exchange(self, name: object) -> PaperExchange:
        ex = self.exchange(name)
        if ex.status != "ready":
            raise NotReady("exchange_not_ready", f"exchange {ex.name} is {ex.status}, not ready; retry shortly")
        return ex

    def instrument_of(self, order: Order) -> Instrument:
        return self.exchanges[order.exchange].markets[order.symbol].instrument

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
        if isinstance(ex, LiveExchange):
            if owner_id is None and ex.account_id in self.accounts.accounts:  # the platform itself (no user): the venue's account
                return self.accounts.accounts[ex.account_id]
            raise NotFound("account_not_found", f"you have no account on {exchange}; a live account comes from your exchange keys")
        account = await self._open_paper(owner_id, ex, exchange)
        log.info("paper account opened", exchange=exchange, account=account.id, owner=owner_id)
        return account

    async def open_account(self, owner_id: int | None, exchange: str, kind: str, name: str) -> Account:
        """A further account of the owner on a paper exchange (`POST /api/v1/accounts`), funded like the first."""
        ex = self.exchange(exchange)
        if kind != "paper" or ex.mode != "paper":
            raise InvalidInput("unsupported_account_kind", "only paper accounts can be opened here; a live account comes from "
                               "exchange keys (coinwire keys set), on a live exchange")
        return await self._open_paper(owner_id, ex, name)

    async def _open_paper(self, owner_id: int | None, ex: PaperExchange, name: str) -> Account:
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

    async def live_account(self, exchange: str, owner_id: int | None) -> Account:
        """The live exchange's account (whose keys it trades with), made when it first connects."""
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
            changes.add_fill(fill, self.exchanges[fill.exchange].markets[fill.symbol].instrument)
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

    async def _commit(self, changes: ChangeSet, placed: Order | None = None, created: WalletSet | None = None) -> None:
        """Submit one command's rows; on a refusal take back only that command, or else reload from the store.

        `placed` / `created`: the order or wallet set this command made (nothing stored refers
        to them yet), which is what lets a refused command be taken back alone.
        """
        try:
            await self.writer.submit(changes)
        except CoinwireError as exc:  # the store refused this change set alone: the writer isolates each one
            metrics.COMMIT_FAILURES.inc()
            if self._take_back(changes, placed, created):
                log.warning("change set refused by the store; taken back", code=exc.code, error=exc.message)
                raise
            log.error("change set refused by the store; rebuilding state from the store", code=exc.code, error=exc.message)
            await self.publish_log("error", "coinwire.gateway", "a store commit failed; state was reloaded from the store")
            await self._recover_after_failed_commit()
            raise
        except Exception:
            log.exception("commit failed; rebuilding state from the store")
            await self.publish_log("error", "coinwire.gateway", "a store commit failed; state was reloaded from the store")
            metrics.COMMIT_FAILURES.inc()
            await self._recover_after_failed_commit()
            raise

    def _take_back(self, changes: ChangeSet, placed: Order | None, created: WalletSet | None) -> bool:
        """Undo in memory a new order's or wallet set's command the store refused; False when it cannot be undone alone.

        Lines written since by others stay: a hold, fill or allocation taken back only returns
        funds, unless a later command of the same wallet already spent them (then: False, and
        the caller reloads). An order's fills against the mirrored book leave that book's
        consumed liquidity as it is until the next book update, as a cancel would.
        """
        if placed is None and created is None:
            return False
        if placed is not None and placed.filled_size != sum(fill.size for fill, _ in changes.fills):
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
        if placed is not None:
            self._order_seqs.pop(placed.id, None)  # never notified
            market = self.exchanges[placed.exchange].markets[placed.symbol]
            if placed.id in market.engine.open_orders:
                market.engine.cancel(placed.id, placed.last_updated_at)
            self.orders.pop(placed.id, None)
            mine = self.by_client_oid.get(placed.owner_id)
            if mine is not None and mine.get(placed.client_oid) == placed.id:
                del mine[placed.client_oid]  # its key stays in the filter: a "maybe" costs one store read
        self.ledger.revert(changes.wallet_lines, set_id)
        for wallet in changes.wallets:
            self._persisted_wallets.discard(wallet.id)
        return True

    async def _recover_after_failed_commit(self) -> None:
        """Memory ran ahead of a commit that failed: reload everything from the store."""
        async with self._lock:
            self.orders.clear()
            self.by_client_oid.clear()
            for ex in self.exchanges.values():
                for market in ex.markets.values():
                    market.engine.clear_orders()
            await self._restore()
            for ex in self.exchanges.values():
                for order in list(self._restored_open):
                    if order.exchange == ex.name and ex.restore_order(order):
                        self._restored_open.remove(order)

    def _subject(self, kind: str, account_id: int, exchange: str, symbol: str) -> str:
        """`messages.account_subject`, memoised per (kind, account, exchange, symbol): it runs for every notification."""
        key = (kind, account_id, exchange, symbol)
        subj = self._subjects.get(key)
        if subj is None:
            if len(self._subjects) >= 65_536:
                self._subjects.clear()
            subj = self._subjects[key] = account_subject(kind, account_id, exchange, symbol)
        return subj

    async def _notify(self, orders: list[Order], fills: list[Fill]) -> list[dict[str, Any]]:
        """Publish fills and order updates; returns the orders' views (built once, also the answer).

        In one `publish_many`: commands resume from their commits in the order they took their
        sequence numbers, so with nothing of another command between them each account's
        notifications reach the bus in `seq` order (what a replay and a live follower rely on).
        """
        views = []
        for listener in self.listeners:
            listener.on_execution(orders, fills)
        single = orders[0].owner_id if len(orders) == 1 else None  # make_order's case: every fill is its order's
        fill_seqs = self._fill_seqs
        batch: list[tuple[str, Message]] = []
        for fill in fills:
            inst = self.exchanges[fill.exchange].markets[fill.symbol].instrument
            owner_id = single if len(orders) == 1 else _owner_of(orders, fill.order_id)
            seq = fill_seqs.pop(fill.id, 0)
            view = fill_view(fill, inst)
            view["seq"] = seq
            batch.append((self._subject("fill", fill.account_id, fill.exchange, fill.symbol),
                          FillEvent(view, owner_id, fill.account_id, seq)))
        order_seqs = self._order_seqs
        for order in orders:
            view = order_view(order, self.instrument_of(order))
            stamped = order_seqs.get(order.id)
            if stamped:  # this command's own sequence (commands reach here in the order they took them)
                seq = view["seq"] = stamped.pop(0)
                if not stamped:
                    del order_seqs[order.id]
            else:
                seq = order.seq
            views.append(view)
            batch.append((self._subject("order", order.account_id, order.exchange, order.symbol),
                          OrderUpdate(view, order.owner_id, order.account_id, seq)))
            if order.is_done:
                reason = order.done_reason.value if order.done_reason else "done"
                batch.append(self._log_message("info", f"user.orders.{order.run_id or 'manual'}",
                                               f"Order {order.client_oid} is done ({reason})", None, order.owner_id))
        await self.bus.publish_many(batch)
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

    # --- settlement -----------------------------------------------------------------------------
    async def _settle_resting(self, market: PaperMarket, fills: list[Fill]) -> None:
        """Fills of resting orders caused by market data (trades, book moves)."""
        ts = fills[-1].ts
        by_order: dict[int, list[Fill]] = {}
        for fill in fills:
            by_order.setdefault(fill.order_id, []).append(fill)
        lines: list[WalletLine] = []
        orders: list[Order] = []
        for order_id, order_fills in by_order.items():
            order = self.orders.get(order_id) or market.engine.open_orders.get(order_id)
            if order is None:  # pragma: no cover - an engine fill always names a known order
                continue
            lines += settle_fills(self.ledger, market.instrument, order, order_fills, ts)
            orders.append(order)
        metrics.FILLS.labels(market.instrument.exchange).inc(len(fills))
        await self._commit(self._changes(orders, fills, lines))
        await self._notify(orders, fills)
        for order in orders:
            if order.is_done:
                self.retire(order)

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

    async def make_order(self, request: OrderRequest) -> dict[str, Any]:
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
        ex = self.ready_exchange(request.exchange)
        market = ex.markets[request.instrument.symbol]
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
        )
        if isinstance(ex, LiveExchange):
            metrics.ORDERS.labels(order.exchange, order.type._value_).inc()
            return await ex.place(order, market, request.budget)
        fills, lines = place_order(self.ledger, market.engine, order, ts, budget=request.budget)
        self.remember(order)
        await self._commit(self._changes([order], fills, lines), order)
        metrics.ORDERS.labels(order.exchange, order.type._value_).inc()
        if fills:
            metrics.FILLS.labels(order.exchange).inc(len(fills))
        (view,) = await self._notify([order], fills)
        if order.is_done:
            self.retire(order)
        return view

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

    async def _finish_orders(self, orders: list[Order], ts: int) -> list[dict[str, Any]]:
        lines: list[WalletLine] = []
        for order in orders:
            lines += release_hold(self.ledger, self.instrument_of(order), order, ts)
        await self._commit(self._changes(orders, [], lines))
        views = await self._notify(orders, [])
        for order in orders:
            self.retire(order)
        return views

    async def cancel_order(
        self, *, order_id: int | None, client_oid: str | None, exchange: str | None, owner_id: int | None = None,
        unowned_too: bool = False, may_trade: Callable[[int], bool] | None = None,
    ) -> dict[str, Any]:
        """Cancel by order id, or by the client_oid of `owner_id` (with `unowned_too`, of no owner next: admins).

        `may_trade(account_id)`: whether the caller may trade the order's account (None: anyone,
        in-process callers); an order of another account answers `order_not_found`.
        """
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
        ex = self.exchanges[order.exchange]
        if isinstance(ex, LiveExchange):
            return await ex.cancel(ex.open.get(order.id, order))
        market = ex.markets[order.symbol]
        ts = self.clock()
        market.engine.cancel(order.id, ts)
        return (await self._finish_orders([order], ts))[0]

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
            now = self.clock()
            for ex in self.exchanges.values():
                for market in ex.markets.values():
                    nxt = market.engine.next_expiry()
                    if nxt is not None and nxt <= now:
                        expired = market.engine.expire(now)
                        if expired:
                            try:
                                await self._finish_orders(expired, now)
                            except Exception:  # noqa: BLE001 - logged by _commit; the loop must go on
                                pass

    def open_orders(
        self, *, exchange: str | None = None, wallet_set_id: int | None = None, accounts: Collection[int] | None = None
    ) -> list[dict[str, Any]]:
        """Resting orders, newest first; `accounts`: only those accounts' (None: every account's)."""
        out = []
        for ex in self.exchanges.values():
            if exchange is not None and ex.name != exchange:
                continue
            for market in ex.markets.values():
                for order in market.engine.open_orders.values():
                    if ((wallet_set_id is None or order.wallet_set_id == wallet_set_id)
                            and (accounts is None or order.account_id in accounts)):
                        out.append(order_view(order, market.instrument))
            if isinstance(ex, LiveExchange):
                for order in ex.open.values():
                    if ((wallet_set_id is None or order.wallet_set_id == wallet_set_id)
                            and (accounts is None or order.account_id in accounts)):
                        out.append(order_view(order, ex.markets[order.symbol].instrument))
        out.sort(key=lambda o: o["id"], reverse=True)
        return out

    async def recent_orders(
        self, *, include_open: bool, limit: int, exchange: str | None = None, accounts: Collection[int] | None = None
    ) -> list[dict[str, Any]]:
        """The newest `limit` orders; `accounts`: those accounts' newest (selected in the query, before the limit)."""
        if accounts is not None and not accounts:
            return []
        rows = await self.store.list_orders(status=None if include_open else "done", exchange=exchange, limit=limit, accounts=accounts)
        out = []
        for order in rows:
            live = self.orders.get(order.id)
            order = live or order
            ex = self.exchanges.get(order.exchange)
            market = ex.market(order.symbol) if ex else None
            if market is not None:
                out.append(order_view(order, market.instrument))
        return out

    # --- commands: wallets ---------------------------------------------------------------------------
    async def add_virtual_wallet_tx(self, *, exchange: str, currency: str, movement: int, account_id: int) -> int:
        """A deposit (+) or withdrawal (-) of virtual funds on a paper account's unallocated wallet."""
        ex = self.exchange(exchange)
        if ex.mode != "paper":
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
        ts = self.clock()
        cancelled: list[Order] = []
        for ex in self.exchanges.values():
            for market in ex.markets.values():
                for order in [o for o in market.engine.open_orders.values() if o.wallet_set_id == set_id]:
                    market.engine.cancel(order.id, ts)
                    cancelled.append(order)
        if cancelled:
            await self._finish_orders(cancelled, ts)
        for ex in self.exchanges.values():
            if isinstance(ex, LiveExchange):
                for order in ex.open_of_set(set_id):
                    await ex.cancel(order)  # a refusal keeps the set active: its money is still in orders at the venue
        ts = self.clock()
        lines = self.ledger.deactivate_wallet_set(set_id, ts)
        wallet_set = self.ledger.wallet_set(set_id)  # the ledger hands out copies: take the new state
        await self._commit(self._changes(lines=lines, wallet_sets=[wallet_set]))
        return wallet_set


def _owner_of(orders: list[Order], order_id: int) -> int | None:
    """The owner of the order a fill belongs to (among the orders notified with it)."""
    for order in orders:
        if order.id == order_id:
            return order.owner_id
    return None
