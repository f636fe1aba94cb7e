"""Who is calling: a connection's id, the notification channels it listens to, the methods it was allowed."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from coinwire.api.guard import authorize_rpc
from coinwire.api.ws_send import drained_of, drop_of, offer_of, task_pusher
from coinwire.bus.subjects import SubjectFilter

if TYPE_CHECKING:
    from coinwire.auth.abilities import Principal

__all__ = ["CallContext", "ACCOUNT_CHANNELS", "CHANNELS", "DEFAULT_CHANNELS", "Push"]

CHANNELS = frozenset({"order", "trade", "exchstatus", "logmessages", "echo_ret", "ticker", "public_trades", "rate",
                      "orders_executed", "orders_updated", "positions_updated", "import_progress",
                      "rule_fired", "wallet_set"})
# account channels: an account's notifications, each with the account's `seq`, replayable from an offset (api.streams)
ACCOUNT_CHANNELS = frozenset({"order", "trade", "orders_executed", "orders_updated", "positions_updated"})
# every connection receives its user's accounts' order and trade notifications, whichever connection placed the order
DEFAULT_CHANNELS = frozenset({"exchstatus", "echo_ret", "order", "trade"})
ALL_TICKERS, ALL_TRADES = SubjectFilter(["ticker.>"]), SubjectFilter(["trade.>"])  # what the channels carry until narrowed
ALL_RATES = SubjectFilter(["rate.>"])
_ids = itertools.count(1)


Push = Callable[[bytes], Awaitable[None]]


class CallContext:
    """One API caller. WebSocket connections can receive notifications through `send`.

    `send(data)` delivers one notification already encoded as a JSON-RPC message: the
    notifier encodes each notification once, however many connections receive it. `push(data)`
    queues one without waiting (orders, trades, status changes, echo: see `api.notifier`), and
    `offer(subject, data)` queues market data that a later message of the same subject may
    supersede while the connection is behind (tickers, public trades, candles: `api.ws_send`).
    Nothing pushed to a connection ever waits for it.
    """

    __slots__ = ("connection_id", "channels", "send", "push", "offer", "drained", "drop", "transport", "ticker_patterns", "trade_patterns",
                 "rate_patterns",
                 "principal", "checked_at", "followed", "idempotency_key", "follow_all", "only_account", "added_at", "wallet_sets",
                 "_allowed", "_allowed_for")

    def __init__(
        self, transport: str, send: Push | None = None, principal: Principal | None = None, push: Callable[[bytes], None] | None = None
    ) -> None:
        self.connection_id = next(_ids)
        self.transport = transport
        self.principal = principal  # who is calling (None: nobody signed in; every non-public rule refuses)
        self.checked_at = 0.0  # monotonic time the principal's session was last confirmed (WebSockets)
        self.channels: set[str] = set(DEFAULT_CHANNELS) if send is not None else set()
        self.send = send
        # `send` without waiting, for notifications the bus delivers inline (`api.ws_send`); made from `send` when not given
        self.push = push if push is not None or send is None else task_pusher(send)
        self.offer = offer_of(self.push) if self.push is not None else None
        # `await drained()`: until what was pushed has left (a replay's pace); `drop()`: give the connection up as a slow consumer
        self.drained: Callable[[], Awaitable[None]] | None = drained_of(self.push) if self.push is not None else None
        self.drop: Callable[[], None] | None = drop_of(self.push) if self.push is not None else None
        self.ticker_patterns: SubjectFilter = ALL_TICKERS  # which tickers the `ticker` channel carries
        self.trade_patterns: SubjectFilter = ALL_TRADES  # which markets the `public_trades` channel carries
        self.rate_patterns: SubjectFilter = ALL_RATES  # which markets the `rate` channel carries
        self.followed: set[int] = set()  # accounts named in `subscribe(account=...)`, checked then (besides the user's own)
        self.follow_all = False  # an admin's `subscribe` to order or trade without an account: every account's
        self.only_account: int | None = None  # /ws/orders?account=: that account's notifications and no other's
        self.wallet_sets: frozenset[int] | None = None  # `subscribe(wallet_sets=)`: the `wallet_set` channel's sets (None: all readable)
        self.added_at = 0  # the notifier's count of order and trade notifications when it added this connection
        # REST's `Idempotency-Key`: a call forwarded to the gateway's process under it yields one result however often
        # it is repeated (api/forwarding.py); None: the replica makes one per call, for its own retries
        self.idempotency_key: str | None = None
        self._allowed: set[str] = set()  # methods `principal` was allowed: a connection calls the same few again and again
        self._allowed_for: Principal | None = None

    def authorize(self, method: str) -> None:
        """`guard.authorize_rpc` for this caller, remembered while `principal` stays the same object.

        A session re-check, a new role or plan gives a new Principal, which starts afresh;
        refusals are never remembered, so each one is raised with its reason.
        """
        if self._allowed_for is not self.principal:
            self._allowed, self._allowed_for = set(), self.principal
        elif method in self._allowed:
            return
        authorize_rpc(self.principal, method)
        self._allowed.add(method)
