"""Fans bus notifications out to API connections as JSON-RPC notifications.

Order and trade notifications reach every connection whose user owns or was granted the
order's account (whichever connection or REST call placed it), the connections that named the
account in `subscribe` (checked there), admins that subscribed to the channel without an
account (every account's), and the connection that placed the order. `import_progress` (an
account's import, api.import_routes) reaches the connections listening on it whose user may view
the account (owner, granted users, admins: `AccountBook.may`). A client_oid is its
owner's: that connection is found by (owner, client_oid), the owner coming with the bus
message, so two users' equal client_oids never share or steal each other's notifications. `exchstatus`,
`logmessages` and `echo_ret` reach the connections subscribed to them (`echo_ret` from
`echo_notify` only the caller's own; `logmessages` an admin's every one, another user's only
those about their own orders: `services.log_feed.visible`, here and nowhere else). `ticker` notifications (latest prices, from the
ticker service) reach connections subscribed to `ticker` whose patterns select the subject;
`public_trades` (each market's public trades, from `services.public_trades`) likewise; `rate` (each rate
the rate retriever stores, `services.rates`, from the bus's `rate.>`) likewise, pushed (each one is a record).
`import_progress` comes off the bus (`ImportProgress`, published by services.import_progress
where the import runs) to the connections whose user may view the account, in any api process.
`wallet_set` comes off the bus too (`WalletSetChanged`, from api.wallet_set_push in the
gateway's process): to the connections listening on it, narrowed to the sets they named in
`subscribe(wallet_sets=)`, whose user may read the set (`Api.may_read_set`'s rule, from what the
message carries: its owner, admins, users who may view every account it holds), asked again at
each push. A set's notification is the whole set, so it is offered under `wallet_set.<id>`
(latest wins while a connection is behind); the publisher sends each changed set at most once per
`WALLET_SET_PUSH_BOUND` (0.25 s). `rule_fired` comes off the bus too (`RuleFired`, from
api.rulesets_routes.RuleFiredPush where the controller runs), with its own receivers' rule.

Each notification is encoded to its JSON-RPC message once and the same bytes go to every
receiver, and no notification ever waits for a receiver: one connection that reads slowly
must not hold back anyone else's. Order, trade, status, log and echo messages are pushed
(`CallContext.push`: queued in order; a connection that leaves too much unread is dropped);
ticker and public-trade notifications are offered (`CallContext.offer`: while a connection is
behind, only each subject's latest waits for it). See `api.ws_send`.

Which connections a ticker or public trade reaches is worked out once per subject and kept
until a connection or a subscription changes, so a message costs the same however many
patterns its receivers chose (at most `PushLimits.max_patterns` each).

A connection's notifications of one account can be held back (`hold`) while it replays what
it missed (`api.streams`): they wait in arrival order, up to the connection's unread limit,
until `release` pushes those the replay did not already give. Only while some connection
holds does a notification look its receivers up: the path of every other order stays as it
was. `reached_since_added` tells whether any notification of an account was handled since a
connection was added (then some may have reached it, and a replay on it could repeat them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import structlog

from coinwire.api.context import ACCOUNT_CHANNELS, CallContext
from coinwire.bus.base import Bus
from coinwire.messages import (
    ExchangeStatusChanged,
    FillEvent,
    ImportProgress,
    LogMessage,
    Message,
    OrderUpdate,
    OrderView,
    PositionUpdate,
    Rate,
    RuleFired,
    WalletSetChanged,
)
from coinwire.services.accounts import AccountBook
from coinwire.services.log_feed import log_view, visible

__all__ = ["ORDER_ALIASES", "Hold", "Notifier", "PushLimits", "is_acceptance", "notification", "plain_event", "rate_view"]

log = structlog.get_logger("coinwire.notifier")

_encode = msgspec.json.Encoder().encode
_NOTIFIED = frozenset({OrderUpdate, FillEvent, PositionUpdate, ExchangeStatusChanged, ImportProgress, WalletSetChanged,
                       RuleFired})
ORDER_ALIASES = ("orders_updated", "orders_executed")  # the seed's names of order notifications (subscribed to)
_SELECTED_LIMIT = 16_384  # subjects whose receivers are remembered; past it the memory starts afresh


class PushLimits(msgspec.Struct, frozen=True):
    """What one WebSocket connection may ask of the push streams (settings `ws_max_*`; docs/SECURITY.md)."""

    max_patterns: int = 100  # `tickers` patterns, and `public_trades` patterns, per connection
    max_streams: int = 20  # `subscribe_ohlcv` streams per connection
    max_unread_bytes: int = 8 << 20  # pushed bytes a connection may leave unread before it is dropped


def notification(channel: str, params: Any) -> bytes:
    """One JSON-RPC notification message, encoded."""
    return _encode({"jsonrpc": "2.0", "method": channel, "params": params})


class _Envelope(msgspec.Struct):
    method: str
    params: msgspec.Raw


_envelope = msgspec.json.Decoder(_Envelope).decode


def plain_event(data: bytes) -> bytes:
    """A notification from `notification` as the plain JSON object /ws/orders sends: `{"channel": "order", ...params}`.

    The params object is copied as it was encoded, not decoded: one receiver's format costs
    that receiver a scan of the envelope, nobody else anything.
    """
    envelope = _envelope(data)
    params = bytes(envelope.params)
    head = b'{"channel":' + _encode(envelope.method)
    rest = params[1:].lstrip()
    return head + (b"}" if rest.startswith(b"}") else b"," + rest)


class Hold:
    """One account's order and trade notifications kept back from one connection while it replays, in arrival order."""

    __slots__ = ("accounts", "items", "limit", "overflowed", "replaying", "size")

    def __init__(self, accounts: set[int], limit: int) -> None:
        self.accounts = accounts
        self.items: list[tuple[int, int, str, bytes]] = []  # (account, seq, channel, encoded notification)
        self.size = 0
        self.limit = limit
        self.overflowed = False  # more arrived than the unread limit: what was kept is gone, the connection dropped
        self.replaying = False  # a replay took it over (`api.streams`)

    def keep(self, account_id: int, seq: int, channel: str, data: bytes) -> bool:
        """Keep one notification; False when that takes the hold past its limit."""
        self.items.append((account_id, seq, channel, data))
        self.size += len(data)
        return self.size <= self.limit


class Notifier:
    def __init__(self, bus: Bus, limits: PushLimits | None = None, accounts: AccountBook | None = None) -> None:
        self.bus = bus
        self.limits = limits or PushLimits()
        self.accounts = accounts if accounts is not None else AccountBook()  # who may read which account's orders
        self.accounts.changed.append(self._changed)  # a grant or a new account changes who receives what
        self.connections: dict[int, CallContext] = {}
        self.origins: dict[int | None, dict[str, int]] = {}  # owner_id -> client_oid -> connection id that placed it
        self._subs: list[Any] = []
        self._log_sub: Any = None
        self._listening: dict[str, list[CallContext]] = {}  # channel -> its connections; rebuilt after any change
        self._selected: dict[str, list[CallContext]] = {}  # ticker or trade subject -> its receivers; likewise
        self._readers: dict[tuple[str, int], list[CallContext]] = {}  # (order|trade, account) -> its receivers; likewise
        self._holds: dict[int, Hold] = {}  # connection id -> what is held back from it (see `hold`); usually empty
        self._handled = 0  # order and trade notifications handled so far
        self._touched: dict[int, int] = {}  # account id -> `_handled` at its latest notification
        self._aliased = False  # some connection listens to orders_updated or orders_executed (else they cost nothing)

    async def start(self) -> None:
        # ONE subscription: a bus keeps order per subscription, so an order's trades reach its
        # connection before the order's `done` (which forgets the connection), as published.
        # Inline: each message is encoded and queued to its connections where the bus receives
        # it, with no inbox, task or coroutine between (a fifth of an order's notification work)
        self._subs.append(await self.bus.subscribe(">", self._on_message, types=_NOTIFIED, inline=True))
        # stored rates on a subscription of their own: nothing of them touches the order path above
        self._subs.append(await self.bus.subscribe("rate.>", self._on_rate, types=frozenset({Rate}), inline=True))

    async def listen(self, ctx: CallContext, channels: Iterable[str]) -> None:
        """Add channels to a connection (the `subscribe` method); the one way they are added after it connects."""
        ctx.channels.update(channels)
        self._changed()
        if "logmessages" in ctx.channels and self._log_sub is None:
            # `log.*` is taken from the first listener on: until then the in-process bus routes it
            # nowhere (every order that ends logs a line; passing each through an inbox here for
            # nobody was 3% of an order's work)
            self._log_sub = await self.bus.subscribe("log.>", self._on_message, types=frozenset({LogMessage}), inline=True)
            self._subs.append(self._log_sub)

    def unlisten(self, ctx: CallContext, channels: Iterable[str]) -> None:
        """Remove channels from a connection (the `unsubscribe` method)."""
        ctx.channels.difference_update(channels)
        self._changed()

    def _changed(self) -> None:
        """A connection, its channels or its patterns changed: who receives what is worked out afresh."""
        self._aliased = any(not c.channels.isdisjoint(ORDER_ALIASES) for c in self.connections.values())
        self._listening.clear()
        self._selected.clear()
        self._readers.clear()

    async def close(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()

    def add(self, ctx: CallContext) -> None:
        self.connections[ctx.connection_id] = ctx
        ctx.added_at = self._handled
        self._changed()

    def remove(self, ctx: CallContext) -> None:
        self.connections.pop(ctx.connection_id, None)
        self._holds.pop(ctx.connection_id, None)
        self._changed()
        for routes in self.origins.values():
            for oid in [k for k, v in routes.items() if v == ctx.connection_id]:
                del routes[oid]

    # --- holding a connection's order and trade notifications back -----------------------------
    def hold(self, ctx: CallContext, account_id: int) -> Hold:
        """Keep `ctx`'s order and trade notifications of the account back until `release`."""
        hold = self._holds[ctx.connection_id] = Hold({account_id}, self.limits.max_unread_bytes)
        return hold

    def holding(self, ctx: CallContext) -> Hold | None:
        return self._holds.get(ctx.connection_id)

    def release(self, ctx: CallContext, skip: Callable[[str, int], bool] | None = None) -> Hold | None:
        """End `ctx`'s hold and push what it kept, but those `skip(channel, seq)` names; the hold (None when there was none)."""
        hold = self._holds.pop(ctx.connection_id, None)
        if hold is not None and not hold.overflowed and ctx.connection_id in self.connections:
            _push_each(ctx, hold.items if skip is None else [i for i in hold.items if not skip(i[2], i[1])])
        return hold

    def follows(self, ctx: CallContext, account_id: int) -> bool:
        """Whether `ctx` receives the account's order and trade notifications (on the channels it listens to)."""
        return self._follows(ctx, account_id)

    def reached_since_added(self, ctx: CallContext, account_id: int) -> bool:
        """Whether a notification of the account was handled since `ctx` was added (it may have reached it)."""
        return self._touched.get(account_id, 0) > ctx.added_at

    def _hold_or_push(self, targets: list[CallContext], data: bytes, channel: str, account_id: int, seq: int) -> None:
        """`_push_all`, while some connection holds: a receiver holding this account keeps the notification instead."""
        holds = self._holds
        pushed = []
        for target in targets:
            hold = holds.get(target.connection_id)
            if hold is None or account_id not in hold.accounts:
                pushed.append(target)
            elif not hold.overflowed and not hold.keep(account_id, seq, channel, data):
                self._overflow(target, hold)
        if pushed:
            _push_all(pushed, data)

    def _overflow(self, ctx: CallContext, hold: Hold) -> None:
        """A hold past the unread limit: its connection is dropped as a slow consumer (it can come back with its `since`)."""
        hold.overflowed, hold.items, hold.size = True, [], 0
        log.warning("websocket dropped: live notifications outgrew its replay's hold", connection=ctx.connection_id)
        if ctx.drop is not None:
            ctx.drop()

    def note_origin(self, client_oid: str, ctx: CallContext) -> int | None:
        """Route the caller's order `client_oid` to this connection; returns the connection noted before (or None)."""
        if ctx.send is None:
            return None
        owner_id = ctx.principal.user_id if ctx.principal is not None else None
        routes = self.origins.get(owner_id)
        if routes is None:
            routes = self.origins[owner_id] = {}
        previous = routes.get(client_oid)
        routes[client_oid] = ctx.connection_id
        return previous

    def restore_origin(self, client_oid: str, ctx: CallContext, previous: int | None) -> None:
        """Undo `note_origin` for a refused order: a refused call changes no one's routing."""
        if ctx.send is None:
            return
        routes = self.origins.get(ctx.principal.user_id if ctx.principal is not None else None)
        if routes is None:
            return
        if previous is None:
            routes.pop(client_oid, None)
        else:
            routes[client_oid] = previous

    async def broadcast(self, channel: str, payload: Any, user_id: int | None = None, only_user: bool = False) -> int:
        """Push to every connection listening on `channel` (`only_user`: only those of `user_id`), waiting for none;
        returns how many were given it."""
        targets = self._listeners(channel)
        if only_user:
            targets = [c for c in targets if (c.principal.user_id if c.principal is not None else None) == user_id]
        if targets:
            await self._send_all(targets, channel, payload)
        return len(targets)

    def _listeners(self, channel: str) -> list[CallContext]:
        """The connections listening on `channel` (a shared list: do not change it), kept until a listener changes."""
        targets = self._listening.get(channel)
        if targets is None:
            targets = self._listening[channel] = [c for c in self.connections.values() if channel in c.channels and c.send is not None]
        return targets

    async def _send_all(self, targets: list[CallContext], channel: str, payload: Any) -> None:
        """Push one notification to `targets`, waiting for none of them (a slow receiver delays no one)."""
        _push_all(targets, notification(channel, payload))

    def _selecting(self, channel: str, subject: str, patterns: Callable[[CallContext], Callable[[str], bool]]) -> list[CallContext]:
        """The listeners of `channel` whose patterns select `subject` (a shared list), kept until a listener changes."""
        targets = self._selected.get(subject)
        if targets is None:
            if len(self._selected) >= _SELECTED_LIMIT:
                self._selected.clear()
            targets = self._selected[subject] = [c for c in self._listeners(channel) if patterns(c)(subject)]
        return targets

    async def on_ticker(self, subject: str, view: Any) -> None:
        """A latest price (`services.tickers.TickerView`) to the connections whose ticker patterns select it."""
        targets = self._selecting("ticker", subject, _ticker_patterns)
        if targets:
            _offer_all(targets, subject, notification("ticker", view.to_public(time.time_ns())))

    async def on_public_trade(self, subject: str, trade: dict[str, Any]) -> None:
        """A market's public trade (`services.public_trades.trade_view`) to the connections whose patterns select it."""
        targets = self._selecting("public_trades", subject, _trade_patterns)
        if targets:
            _offer_all(targets, subject, notification("public_trades", trade))

    def _on_rate(self, subject: str, message: Message) -> None:
        """Inline, from the bus: a stored rate to the `rate` connections whose patterns select its market."""
        if not isinstance(message, Rate):
            return
        targets = self._selecting("rate", subject, _rate_patterns)
        if targets:
            _push_all(targets, notification("rate", rate_view(message)))

    def _on_message(self, subject: str, message: Message) -> None:
        """Inline, from the bus: encode once, queue to every receiver without waiting for any of them."""
        kind = type(message)
        if kind is OrderUpdate or kind is FillEvent or kind is PositionUpdate:
            handled = self._handled = self._handled + 1
            self._touched[message.account_id] = handled  # type: ignore[union-attr]
        if kind is OrderUpdate:
            order = message.order  # type: ignore[union-attr]
            targets = self._owner_and_readers("order", order.client_order_id, message, done=order.status == "done")  # type: ignore[arg-type]
            if targets:
                if self._holds:
                    self._hold_or_push(targets, notification("order", order), "order", message.account_id, message.seq)  # type: ignore[union-attr]
                else:
                    _push_all(targets, notification("order", order))
            if self._aliased:
                self._order_aliases(message)  # type: ignore[arg-type]
        elif kind is FillEvent:
            trade = message.trade  # type: ignore[union-attr]
            targets = self._owner_and_readers("trade", trade.client_order_id, message, done=False)  # type: ignore[arg-type]
            if targets:
                if self._holds:
                    self._hold_or_push(targets, notification("trade", trade), "trade", message.account_id, message.seq)  # type: ignore[union-attr]
                else:
                    _push_all(targets, notification("trade", trade))
        elif kind is PositionUpdate:
            self._account_push("positions_updated", message.account_id, message.seq, message.position)  # type: ignore[union-attr]
        elif kind is ImportProgress:  # an account import's progress, from the process running it (import_routes.CHANNEL)
            targets = self.readers("import_progress", message.account_id)  # type: ignore[union-attr]
            if targets:
                _push_all(targets, notification("import_progress", message.progress))  # type: ignore[union-attr]
        elif kind is WalletSetChanged:
            self._wallet_set(message)  # type: ignore[arg-type]
        elif kind is RuleFired:
            self._rule_fired(message)  # type: ignore[arg-type]
        elif isinstance(message, ExchangeStatusChanged):
            targets = self._listeners("exchstatus")
            if targets:
                payload = {"exchange": message.exchange, "from": message.from_status, "to": message.to_status}
                _push_all(targets, notification("exchstatus", payload))
        elif isinstance(message, LogMessage):
            targets = self._listeners("logmessages")  # usually none: build nothing for nobody
            if targets:
                targets = [c for c in targets if visible(c.principal, message)]  # admins all; users their own
                if targets:
                    _push_all(targets, notification("logmessages", log_view(message)))

    def _wallet_set(self, message: WalletSetChanged) -> None:
        """A changed wallet set to the `wallet_set` connections that follow it and whose user may read it (latest wins)."""
        set_id = message.set_id
        targets = [c for c in self._listeners("wallet_set")
                   if (c.wallet_sets is None or set_id in c.wallet_sets) and self._may_read_set(c, message)]
        if targets:
            _offer_all(targets, f"wallet_set.{set_id}", notification("wallet_set", message.view))  # a whole state: latest wins

    def _rule_fired(self, message: RuleFired) -> None:
        """A firing to the `rule_fired` connections of its rule set's owner, the admins and whoever may read its scope
        (api.portfolio_access.still_readable's rule, on what the message carries and this process's account book)."""
        targets = [c for c in self._listeners("rule_fired") if self._may_read_firing(c, message)]
        if targets:
            _push_all(targets, notification("rule_fired", message.payload))

    def _may_read_firing(self, ctx: CallContext, message: RuleFired) -> bool:
        principal = ctx.principal
        if principal is None or principal.is_admin or principal.user_id == message.owner_id:
            return True  # (no principal: a server without users, its operator's connections)
        if message.scope == "account":
            return self.accounts.may(int(message.scope_id), principal.user_id, False, "view")
        return message.scope_owner_id == principal.user_id

    def _may_read_set(self, ctx: CallContext, message: WalletSetChanged) -> bool:
        """`Api.may_read_set`'s rule (`AccountBook.may_read_set`) on what the message carries: the set's owner and accounts."""
        principal = ctx.principal
        return principal is None or self.accounts.may_read_set(message.owner_id, message.accounts, principal.user_id,
                                                               principal.is_admin)

    def _order_aliases(self, message: OrderUpdate) -> None:
        """An order notification under the seed's names: `orders_updated` always, `orders_executed` at its acceptance."""
        order = message.order
        self._account_push("orders_updated", message.account_id, message.seq, order)
        if is_acceptance(order):
            self._account_push("orders_executed", message.account_id, message.seq, order)

    def _account_push(self, channel: str, account_id: int, seq: int, payload: Any) -> None:
        """One account notification on `channel` to the connections that follow the account there (held while they replay)."""
        targets = self.readers(channel, account_id)
        if targets:
            data = notification(channel, payload)
            if self._holds:
                self._hold_or_push(targets, data, channel, account_id, seq)
            else:
                _push_all(targets, data)

    def _owner_and_readers(self, channel: str, oid: str, message: OrderUpdate | FillEvent, done: bool) -> list[CallContext]:
        """Who gets an order's or trade's notification: its account's readers, and the connection that placed the order `oid`."""
        routes = self.origins.get(message.owner_id)
        origin = None
        if routes is not None:
            origin = routes.pop(oid, None) if done else routes.get(oid)
        targets = self.readers(channel, message.account_id)
        owner = self.connections.get(origin) if origin is not None else None
        if owner is not None and owner not in targets:
            targets = [*targets, owner]
        return targets

    def readers(self, channel: str, account_id: int) -> list[CallContext]:
        """The connections listening on `channel` that follow the account (a shared list), kept until a listener or a grant changes."""
        key = (channel, account_id)
        targets = self._readers.get(key)
        if targets is None:
            if len(self._readers) >= _SELECTED_LIMIT:
                self._readers.clear()
            follows = self._follows if channel in ACCOUNT_CHANNELS else self._may_view
            targets = self._readers[key] = [c for c in self._listeners(channel) if follows(c, account_id)]
        return targets

    def _may_view(self, ctx: CallContext, account_id: int) -> bool:
        """An account event outside the account channels (`import_progress`): to whoever may view the account.

        Such a channel has no `account` to narrow it and no replay, so there is nothing to follow:
        its owner, the users it was granted to and the admins (an account of before users, owner
        None, included) hear it, by the same `AccountBook.may` check every account read goes through.
        """
        principal = ctx.principal
        if principal is None or (ctx.only_account is not None and ctx.only_account != account_id):
            return False
        return self.accounts.may(account_id, principal.user_id, principal.is_admin, "view")

    def _follows(self, ctx: CallContext, account_id: int) -> bool:
        if ctx.only_account is not None:
            return account_id == ctx.only_account and (
                ctx.principal is None or self.accounts.may(account_id, ctx.principal.user_id, ctx.principal.is_admin, "view"))
        if ctx.follow_all:
            return True
        principal = ctx.principal
        if account_id in ctx.followed:  # checked at `subscribe`, and again here: a grant taken back since ends it
            return principal is None or self.accounts.may(account_id, principal.user_id, principal.is_admin, "view")
        return principal is not None and account_id in self.accounts.personal(principal.user_id)


def is_acceptance(order: OrderView) -> bool:
    """Whether an order notification is the venue's acceptance of the order (the seed's `orders_executed`).

    It is the notification made when the venue acknowledged the order: `exchange_at` set and the
    latest change (an order filled at once is accepted and done in one notification).
    """
    return order.exchange_at is not None and order.exchange_at == order.last_updated_at and order.status != "pending"


def _push_all(targets: list[CallContext], data: bytes) -> None:
    for target in targets:
        push = target.push
        if push is not None:  # every connection the notifier knows has one (it has `send`)
            try:
                push(data)
            except Exception as exc:  # noqa: BLE001 - a closed connection must not stop the others
                log.debug("notification not delivered", error=str(exc))


def _push_each(ctx: CallContext, items: list[tuple[int, int, str, bytes]]) -> None:
    """Held notifications to their connection, in the order they were kept."""
    push = ctx.push
    if push is None:
        return
    for item in items:
        try:
            push(item[3])
        except Exception as exc:  # noqa: BLE001 - a closed connection: nothing more to deliver
            log.debug("notification not delivered", error=str(exc))
            return


def _offer_all(targets: list[CallContext], subject: str, data: bytes) -> None:
    for target in targets:
        offer = target.offer
        if offer is not None:  # every connection the notifier knows has one (it has `send`)
            try:
                offer(subject, data)
            except Exception as exc:  # noqa: BLE001 - a closed connection must not stop the others
                log.debug("notification not delivered", subject=subject, error=str(exc))


def _ticker_patterns(ctx: CallContext) -> Callable[[str], bool]:
    return ctx.ticker_patterns


def _trade_patterns(ctx: CallContext) -> Callable[[str], bool]:
    return ctx.trade_patterns


def _rate_patterns(ctx: CallContext) -> Callable[[str], bool]:
    return ctx.rate_patterns


def rate_view(rate: Rate) -> dict[str, Any]:
    """A `rate` notification's params: the market, the minute's start (unix ms), the price as exact decimal text."""
    return {"exchange": rate.exchange, "symbol": rate.symbol, "pair": rate.symbol.replace("/", "_"), "time": rate.time,
            "price": str(rate.price), "source": rate.source}
