"""The notifier service: derives events from the bus and the run manager, writes them to the outbox, delivers them.

Events and where they come from:

- `order_filled`: a fill of one of a user's orders (a `FillEvent` on `fill.>`);
- `order_triggered`: a conditional order fired (the `OrderUpdate` of the step that fired it:
  its `triggered_at` is that update's time); to the account's owner and every user it was shared with;
- `order_done`: an order reached `done` (an `OrderUpdate` on `order.>`);
- `trade_receipt`: an order reached `done` with any fill, a partly filled then cancelled one included;
- `exchange_degraded`: an exchange's status went to `degraded` or `offline` (`ExchangeStatusChanged`);
- `run_started`, `run_stopped`, `run_failed`: from `services.runs.RunManager`'s listeners (`on_run`);
- `rule_fired`, `import_finished`, `daily_stats`: from the services that own them, through `notify()`.

The user is the owner of the order's account (`services.accounts`), never the placing
connection. Each (event, channel) the user subscribed to becomes one outbox row whose key is
deterministic (`trade_receipt:<order id>:email`), so the same event seen twice (a bus replay,
the recovery scan at start) adds nothing. A crash between the gateway's commit and the row's
insert is covered by the recovery scan: at start the newest `recovery_orders` done orders are
derived again (only those done after the user set their channels).

The worker sends due rows one at a time: marked `sending` (the attempt counted) before the
channel is called, `sent` after. A failure is retried after `base_delay * 2**(attempt-1)`
seconds (at most `max_delay`) until `attempts` are spent, then the row is parked as a dead
letter its user can list and retry. See outbox.py and docs/NOTIFICATIONS.md for why a crash
never loses a notification and at worst repeats it under the same idempotency key.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec
import structlog

from coinwire.bus.base import Bus, Subscription
from coinwire.config.notifications import NotificationsConfig
from coinwire.core.breaker import DependencyUnavailable
from coinwire.core.errors import CoinwireError
from coinwire.messages import ExchangeStatusChanged, FillEvent, FillView, Message, OrderUpdate, OrderView
from coinwire.services.accounts import AccountBook
from coinwire.services.breakers import Breakers
from coinwire.services.gateway import Gateway
from coinwire.services.notifications.channels import EVENTS, Channel, Delivery, DeliveryFailed
from coinwire.services.notifications.outbox import NotificationStore, OutboxRow
from coinwire.services.notifications.receipts import render_receipt, render_triggered, summarise, trade_json
from coinwire.services.notifications.user_settings import CHANNEL_KINDS, checked_settings, settings_view
from coinwire.services.views import fill_view

__all__ = ["NotificationService", "OrderSource", "GatewayOrders", "Preferences", "Converter"]

log = structlog.get_logger("coinwire.notifications")

SUBSCRIPTIONS_TTL = 2.0  # seconds a user's subscriptions are kept in memory (another process's change shows after it)
DEFERRAL_FLOOR = 1.0  # seconds at least before a delivery held back by an open breaker is looked at again
CLOSE_PATIENCE = 10.0  # seconds a stop waits for the delivery in hand
MARKETS_PATIENCE = 120.0  # seconds the recovery scan waits for the exchanges' markets at start
_TYPES = frozenset({OrderUpdate, FillEvent, ExchangeStatusChanged})
_ONE_USERS = frozenset({"order_filled", "order_done", "trade_receipt", "run_started", "run_stopped", "run_failed"})
_DEGRADED = frozenset({"degraded", "offline"})


class OrderSource(Protocol):
    """What the service reads of orders (the gateway is one): fills of a done order, and recent done orders at start."""

    async def order_fill_views(self, order_id: int) -> list[FillView]: ...

    async def recent_done_orders(self, limit: int) -> list[OrderView]: ...


class GatewayOrders:
    """The gateway as an `OrderSource` (in the process that runs it)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def order_fill_views(self, order_id: int) -> list[FillView]:
        await self.gateway.store.settled()  # the journal's change sets in the database first
        fills = await self.gateway.order_fills(order_id)
        return [fill_view(f, self.gateway.market(f.exchange, f.symbol).instrument, 0) for f in sorted(fills, key=lambda f: f.id)]

    async def recent_done_orders(self, limit: int) -> list[OrderView]:
        """The newest done orders, once every exchange knows its markets (an order's view needs its instrument)."""
        for _ in range(int(MARKETS_PATIENCE / 0.1)):
            if all(venue.markets for venue in self.gateway.venues.values()):
                break
            await asyncio.sleep(0.1)
        await self.gateway.store.settled()
        return await self.gateway.recent_orders(include_open=False, limit=limit)


class Preferences(Protocol):
    async def get(self, user_id: int) -> dict[str, Any]: ...


Converter = Callable[[Decimal, str, str], Awaitable[Decimal]]  # (amount, from, to) -> amount in `to`; raises when unknown


def _ns(iso: str | None) -> int:
    if not iso:
        return 0
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1_000_000_000)


class NotificationService:
    """Events in, outbox rows out, deliveries through the channels (kind -> Channel)."""

    def __init__(self, outbox: NotificationStore, bus: Bus, accounts: AccountBook, channels: Mapping[str, Channel],
                 cfg: NotificationsConfig, orders: OrderSource, preferences: Preferences, convert: Converter,
                 clock: Callable[[], int] = time.time_ns, breakers: Breakers | None = None) -> None:
        self.outbox, self.bus, self.accounts, self.channels = outbox, bus, accounts, dict(channels)
        self.breakers = breakers  # each channel's dependency (`smtp`, `telegram`, `webhook:<host>`) behind its breaker
        self.cfg, self.orders, self.preferences, self.convert, self.clock = cfg, orders, preferences, convert, clock
        self._fills: dict[int, list[FillView]] = {}  # order id -> the fills seen of an order not yet done
        self._subs: list[Subscription] = []
        # user -> (read at, event -> channels): every order and fill asks this; a user without subscriptions (most, under
        # load) must cost no store read per message. Kept SUBSCRIPTIONS_TTL seconds; this process's own changes drop it.
        self._chosen: dict[int, tuple[float, dict[str, list[str]]]] = {}
        self._wake = asyncio.Event()
        # told the user id after a user's channels change (the Telegram bots follow the stored bot and chat)
        self.settings_listeners: list[Callable[[int], Awaitable[None]]] = []
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None

    # --- life ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Rows a crash left `sending` go back to pending, events start flowing, missed receipts are derived, the worker runs."""
        released = await self.outbox.release_sending()
        if released:
            log.info("notifications in flight at the last stop will be sent again under their keys", rows=released)
        self._closing = False
        self._subs.append(await self.bus.subscribe(">", self._on_message, types=_TYPES))
        self._task = asyncio.create_task(self._work(), name="notifications")
        self._recovery = asyncio.create_task(self._recover_logged(), name="notifications-recovery")

    async def close(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        # the worker finishes the delivery in hand (a send then its record) before it stops: a stop leaves no row
        # `sending`; one that takes longer than CLOSE_PATIENCE is cancelled, and sent again under its key at the next start
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_PATIENCE)
            except TimeoutError:
                pass
        tasks = [t for t in (self._task, self._recovery) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._recovery = None

    async def _recover_logged(self) -> None:
        try:
            added = await self.recover()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification recovery scan failed")
            return
        if added:
            log.info("notifications recovered at start", rows=added)

    async def recover(self) -> int:
        """Derive the events of the newest done orders again: rows a crash kept from being written are added now."""
        added = 0
        since: dict[int, int | None] = {}  # user -> when they last set their channels (read once per user)
        if self.cfg.recovery_orders:
            for view in await self.orders.recent_done_orders(self.cfg.recovery_orders):
                added += await self._order_done(view, since)
        return added

    # --- events in -------------------------------------------------------------------------------------
    def owner_of(self, account_id: int) -> int | None:
        account = self.accounts.accounts.get(account_id)
        return account.owner_id if account is not None else None

    async def _on_message(self, subject: str, message: Message) -> None:
        try:
            if isinstance(message, FillEvent):
                await self._on_fill(message)
            elif isinstance(message, OrderUpdate):
                order = message.order
                if order.triggered_at is not None and order.triggered_at == order.last_updated_at:
                    await self._triggered(order)
                if order.status == "done":
                    await self._order_done(order)
            elif isinstance(message, ExchangeStatusChanged) and message.to_status in _DEGRADED:
                await self._on_status(message)
        except Exception:  # one event's failure (the store away) must not stop the next ones; recovery covers receipts
            log.exception("notification event not recorded", subject=subject)

    async def _on_fill(self, message: FillEvent) -> None:
        fill = message.trade
        self._fills.setdefault(fill.order_id, []).append(fill)
        user = self.owner_of(message.account_id)
        if user is None or not await self.chosen(user, "order_filled"):
            return  # the usual case under load: nothing built, nothing read from the store
        text = f"{fill.side} {fill.exec_amount} {fill.symbol} at {fill.exec_price} on {fill.exchange} (order {fill.order_id})"
        await self.notify(user, "order_filled", f"fill:{fill.id}", f"Order {fill.order_id} filled: {text}", text,
                          {"event": "order_filled", "fill": _builtins(fill)})

    async def _triggered(self, order: OrderView) -> None:
        """`order_triggered` to whoever may read the order's account: its owner and the users it was shared with."""
        owner = self.owner_of(order.account)
        readers = ([owner] if owner is not None else []) + sorted(self.accounts.members_of(order.account))
        subject, text = render_triggered(order)
        for user in readers:
            if await self.chosen(user, "order_triggered"):
                await self.notify(user, "order_triggered", f"order:{order.id}", subject, text,
                                  {"event": "order_triggered", "text": text, "order": _builtins(order)})

    async def _order_done(self, order: OrderView, recovering: dict[int, int | None] | None = None) -> int:
        """An order's `order_done` and, with a fill, `trade_receipt`; `recovering`: from the start's scan (its cache)."""
        fills = self._fills.pop(order.id, [])
        user = self.owner_of(order.account)
        if user is None:
            return 0
        if recovering is not None:
            if user not in recovering:
                recovering[user] = await self.outbox.channels_since(user)
            since = recovering[user]
            if since is None or _ns(order.done_at) < since:
                return 0  # done before the user set their channels: nothing was owed
        added = 0
        if await self.chosen(user, "order_done"):
            done_text = f"Order {order.id} ({order.side} {order.size} {order.symbol} on {order.exchange}) is done: " \
                        f"{order.done_reason or 'done'}, filled {order.filled_size}"
            added += await self.notify(user, "order_done", f"order:{order.id}", f"Order {order.id} done ({order.done_reason})",
                                       done_text, {"event": "order_done", "order": _builtins(order)})
        if Decimal(order.filled_size) > 0 and await self.chosen(user, "trade_receipt"):
            if sum((Decimal(f.exec_amount) for f in fills), Decimal(0)) != Decimal(order.filled_size):
                fills = await self.orders.order_fill_views(order.id)  # some fills came before this process did
            added += await self._receipt(user, order, fills)
        return added

    async def _receipt(self, user: int, order: OrderView, fills: Sequence[FillView]) -> int:
        summary = summarise(order, fills)
        prefs = await self.preferences.get(user)
        display = str(prefs.get("currency") or summary.quote)
        rate: Decimal | None = Decimal(1) if display == summary.quote else None
        if rate is None:
            try:
                rate = await self.convert(Decimal(1), summary.quote, display)
            except CoinwireError as exc:  # no route to the display currency: the receipt says so, in the quote only
                log.info("no display rate for a receipt", quote=summary.quote, display=display, reason=type(exc).__name__)
        subject, text, html = render_receipt(summary, display=display, rate=rate, mask=bool(prefs.get("mask")))
        return await self.notify(user, "trade_receipt", f"{order.id}", subject, text, trade_json(summary), html=html)

    async def _on_status(self, message: ExchangeStatusChanged) -> None:
        text = f"Exchange {message.exchange} is {message.to_status} (was {message.from_status})"
        data = {"event": "exchange_degraded", "exchange": message.exchange, "from": message.from_status,
                "to": message.to_status, "ts": message.ts}
        for user in await self.outbox.subscribers("exchange_degraded"):
            await self.notify(user, "exchange_degraded", f"{message.exchange}:{message.ts}", text, text, data)

    async def on_run(self, event: str, run: Mapping[str, Any]) -> None:
        """RunManager's listener: `run_started`, `run_stopped` or `run_failed` of a run with an owner."""
        user = run.get("owner_id")
        if event not in ("run_started", "run_stopped", "run_failed") or user is None:
            return
        run_id = str(run.get("run_id"))
        reason = run.get("reason") or ""
        text = f"Run {run_id} ({run.get('strategy', '')}, {run.get('mode', '')}) {event.removeprefix('run_')}" + \
               (f": {reason}" if reason else "")
        try:
            await self.notify(int(user), event, run_id, text, text, {"event": event, **{k: v for k, v in run.items()
                                                                                        if isinstance(v, (str, int, float, bool))}})
        except Exception:
            log.exception("run notification not recorded", run_id=run_id)

    async def chosen(self, user_id: int, event: str) -> list[str]:
        """The channels the user chose for `event` (from memory, at most SUBSCRIPTIONS_TTL seconds old)."""
        now = time.monotonic()
        kept = self._chosen.get(user_id)
        if kept is None or now - kept[0] > SUBSCRIPTIONS_TTL:
            if len(self._chosen) > 100_000:
                self._chosen.clear()
            kept = (now, (await self.outbox.settings(user_id))[1])
            self._chosen[user_id] = kept
        return kept[1].get(event, [])

    async def notify(self, user_id: int, event: str, occurrence: str, subject: str, text: str, data: dict[str, Any],
                     html: str | None = None) -> int:
        """One event occurrence of one user: a row per channel they chose for it (its key `event:occurrence:channel`,
        `event:occurrence:u<user>:channel` for events not tied to one user's order or run).

        The other services' way in (rules, imports, daily stats). How many rows were new.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")
        rows = []
        # an order's, fill's or run's id is one user's already; any other occurrence (an exchange's status change, a
        # day's stats) is everyone's, so the user goes into its key, or the second user's row would be the first's
        scope = occurrence if event in _ONE_USERS else f"{occurrence}:u{user_id}"
        for channel in await self.chosen(user_id, event):
            key = f"{event}:{scope}:{channel}"
            rows.append((channel, Delivery(key=key, user_id=user_id, event=event, subject=subject, text=text, html=html,
                                           data=data)))
        added = await self.outbox.enqueue(rows)
        if added:
            self._wake.set()
        return added

    # --- deliveries out --------------------------------------------------------------------------------
    def backoff(self, attempt: int) -> float:
        """Seconds before the attempt after `attempt` (1-based): base_delay doubled each time, at most max_delay."""
        return float(min(self.cfg.base_delay * 2 ** (attempt - 1), self.cfg.max_delay))

    async def _work(self) -> None:
        while not self._closing:
            try:
                rows = await self.outbox.due()
                for row in rows:
                    if self._closing:
                        return
                    await self.deliver(row)
                if rows:
                    continue
                wait = self.cfg.poll_interval
                nxt = await self.outbox.next_due_at()
                if nxt is not None:
                    wait = max(0.0, min(wait, (nxt - self.clock()) / 1e9))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification worker round failed; trying again")
                wait = self.cfg.poll_interval
            self._wake.clear()
            if self._closing:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    async def deliver(self, row: OutboxRow) -> str:
        """Claim, send and record one row; its new state (`sent`, `pending`, `dead`, `deferred` when its
        dependency's breaker is open (not tried, no attempt spent), or `skipped` when claimed elsewhere)."""
        attempt = await self.outbox.claim(row.id)
        if attempt is None:
            return "skipped"
        try:
            await self._send(row.user_id, row.channel, row.delivery)
        except DependencyUnavailable as exc:  # its breaker is open: not tried, so no attempt spent; kept for later
            wait = max(exc.retry_after, DEFERRAL_FLOOR)
            await self.outbox.deferred(row.id, exc.code, self.clock() + int(wait * 1e9))
            log.info("notification held back: its channel's dependency is paused", key=row.key, dependency=exc.dependency,
                     retry_in=round(wait, 1))
            return "deferred"
        except DeliveryFailed as exc:
            if exc.retryable and attempt < self.cfg.attempts:
                await self.outbox.failed(row.id, exc.reason, self.clock() + int(self.backoff(attempt) * 1e9))
                log.info("notification not delivered; will retry", key=row.key, attempt=attempt, reason=exc.reason)
                return "pending"
            await self.outbox.failed(row.id, exc.reason, None)
            log.warning("notification parked as a dead letter", key=row.key, attempts=attempt, reason=exc.reason)
            return "dead"
        await self.outbox.sent(row.id)
        return "sent"

    async def _send(self, user_id: int, kind: str, delivery: Delivery) -> None:
        channel = self.channels.get(kind)
        if channel is None:
            raise DeliveryFailed(f"this server has no {kind} channel", retryable=False)
        target = await self.outbox.target(user_id, kind)
        if target is None:
            raise DeliveryFailed(f"no {kind} channel is set", retryable=False)
        guard = self.breakers.get(name) if self.breakers is not None and (name := dependency(kind, target)) else None
        try:
            if guard is None:
                await channel.send(target, delivery)
            else:
                async with guard.call(dependency_failed):
                    await channel.send(target, delivery)
        except (DeliveryFailed, DependencyUnavailable):
            raise
        except Exception as exc:  # a channel's bug or an unexpected library error: retried, its type recorded, never its text
            log.exception("channel failed unexpectedly", channel=kind)
            raise DeliveryFailed(f"{kind} channel error: {type(exc).__name__}") from None

    # --- a user's own settings and dead letters (the API's) -------------------------------------------------
    async def get_settings(self, user_id: int) -> dict[str, Any]:
        return settings_view(*await self.outbox.settings(user_id))

    async def put_settings(self, user_id: int, body: object) -> dict[str, Any]:
        """Check everything, then replace the user's channels and subscriptions in one transaction; the settings now."""
        stored, _ = await self.outbox.settings(user_id)
        # a channel that needs the server's configuration says so (e-mail without a relay); one this process has
        # not wired is still stored (its deliveries are parked with the reason), so settings never depend on roles
        available = [k for k in CHANNEL_KINDS if getattr(self.channels.get(k), "configured", True)]
        channels, events = checked_settings(body, available, stored)
        await self.outbox.replace(user_id, channels, events)
        self._chosen.pop(user_id, None)
        for listener in self.settings_listeners:
            try:  # the settings are stored: a listener that fails (a bot poller) is logged, the answer stands
                await listener(user_id)
            except Exception:
                log.exception("a notification settings listener failed", user=user_id)
        return await self.get_settings(user_id)

    async def dead_letters(self, user_id: int, limit: int = 100) -> list[dict[str, Any]]:
        """The user's parked deliveries, newest first (what, where, why: never a secret)."""
        return [_letter(r) for r in await self.outbox.rows(user_id, "dead", limit)]

    async def retry_dead_letter(self, user_id: int, row_id: int) -> dict[str, Any]:
        """One of the user's dead letters back in the queue with its attempts afresh (NotFound for anyone else's)."""
        row = await self.outbox.retry(user_id, row_id)
        self._wake.set()
        return _letter(row)

    async def send_test(self, user_id: int, kind: str) -> dict[str, Any]:
        """Send a test message on one of the user's channels now (not through the outbox): sent, or why not."""
        key = f"test:{secrets.token_hex(8)}:{kind}"
        delivery = Delivery(key=key, user_id=user_id, event="test", subject="coinwire test notification",
                            text=f"This is a test of your {kind} notifications from coinwire.",
                            data={"event": "test", "channel": kind})
        try:
            await self._send(user_id, kind, delivery)
        except DeliveryFailed as exc:
            return {"channel": kind, "sent": False, "reason": exc.reason}
        except DependencyUnavailable as exc:
            return {"channel": kind, "sent": False, "reason": exc.message, "code": exc.code}
        return {"channel": kind, "sent": True}


def dependency(kind: str, target: Mapping[str, Any]) -> str | None:
    """The breaker name of a channel's outbound dependency: `smtp`, `telegram`, `webhook:<host>` (None: no valid URL)."""
    if kind == "email":
        return "smtp"
    if kind == "webhook":
        host = urlsplit(str(target.get("url") or "")).hostname
        return f"webhook:{host}" if host else None
    return kind


def dependency_failed(exc: BaseException) -> bool:
    """A send's failure that is the dependency's (unreachable, 5xx, 429), not an answer (a refused address, 4xx)."""
    return not isinstance(exc, DeliveryFailed) or exc.retryable


def _letter(row: OutboxRow) -> dict[str, Any]:
    return {"id": row.id, "key": row.key, "channel": row.channel, "event": row.event, "subject": row.delivery.subject,
            "state": row.state, "attempts": row.attempts, "last_error": row.last_error,
            "created_at": row.created_at, "updated_at": row.updated_at}


def _builtins(view: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(view)
    return out
