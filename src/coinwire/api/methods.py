"""The gateway's exposed functions (the seed's xWrap API), one implementation behind JSON-RPC and REST.

Each method takes keyword parameters only, validated against a strict shape in
`coinwire.api.params`; a bad parameter answers `-32602` / HTTP 400 with a stable code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import msgspec

from coinwire import __version__
from coinwire.api import params as P
from coinwire.api.context import ACCOUNT_CHANNELS, CHANNELS, CallContext
from coinwire.api.guard import authorize_channel
from coinwire.api.json_input import refusal
from coinwire.api.notifier import Notifier
from coinwire.api.order_params import (
    apply_conditions,
    apply_position_side,
    check_oco_legs,
    decimal_param,
    oco_client_oids,
    price_units,
)
from coinwire.api.ownership import Owners
from coinwire.api.streams import AccountStreams, StreamQuery, stream_query
from coinwire.api.wallet_views import WalletViews
from coinwire.auth.abilities import RPC_RULES
from coinwire.auth.audit import AuditLog
from coinwire.auth.service import AuthService
from coinwire.bus.subjects import SubjectFilter
from coinwire.core.accounts import EXTERNAL, Need
from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.core.execution import check_funds
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO_DECIMALS, to_units
from coinwire.core.orders import CLIENT_ORDER_TYPES, CONDITIONAL_TYPES, OrderRequest, OrderType, Side
from coinwire.core.symbols import symbol_token
from coinwire.services.gateway import Gateway
from coinwire.services.health import Health
from coinwire.services.notifications.service import NotificationService
from coinwire.services.ohlcv import ohlcv_points
from coinwire.services.portfolio_tracker import PortfolioTracker
from coinwire.services.rule_sets import RuleSets
from coinwire.services.scheduler import SYSTEM, AddSchedule, Scheduler

if TYPE_CHECKING:
    from coinwire.api.analysis_routes import AnalysisStreams
    from coinwire.api.connections import OpenConnections
    from coinwire.api.forwarding import Forwarder
    from coinwire.api.ohlcv_routes import OhlcvStreams
    from coinwire.api.portfolio_routes import PortfolioStreams
    from coinwire.auth.abilities import Principal
    from coinwire.services.rate_history import RateHistory

__all__ = ["Api", "Method", "METHOD_NAMES", "caller", "method"]

Handler = Callable[["Api", Any, CallContext], Awaitable[Any]]
SESSION_RECHECK = 10.0  # seconds between checks that a WebSocket's session is still open


class Method(msgspec.Struct, frozen=True):
    name: str
    params: type
    handler: Handler
    doc: str


_REGISTRY: dict[str, Method] = {}


def method(name: str, params: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _REGISTRY[name] = Method(name, params, fn, (fn.__doc__ or "").strip())
        return fn

    return register


_SIDES = {side.value: side for side in Side}
_MARKET = OrderType.MARKET  # a module constant: see core.orders
_LIMIT = OrderType.LIMIT
_CONDITIONAL_NAMES = frozenset(t.value for t in CONDITIONAL_TYPES)  # tested by the text: a str hash is C, an Enum's Python
_ORDER_TYPES = CLIENT_ORDER_TYPES  # a liquidation order is the venue's, never a client's
_PARSED_LIMIT = 4096
ECHO_PAYLOAD_LIMIT = 4096  # bytes of JSON an echo_notify / broadcast_notify may send to each receiver
_encode = msgspec.json.Encoder().encode


_NUMBERS_AS_NUMBERS = msgspec.json.Encoder(decimal_format="number")


def _as_sent(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Echo's parameters with JSON numbers as numbers again (request JSON decodes fractions as Decimal)."""
    try:
        return msgspec.json.decode(_NUMBERS_AS_NUMBERS.encode(raw)) if raw else {}
    except RecursionError:
        raise InvalidInput("too_deep", "the JSON is nested too deeply") from None


class Api:
    """Validates parameters, calls the gateway, shapes results; shared by every transport."""

    def __init__(
        self, gateway: Gateway, notifier: Notifier, health: Health, streams: AccountStreams | None = None, *,
        ohlcv_streams: OhlcvStreams | None = None, auth: AuthService | None = None, owners: Owners | None = None,
        audit: AuditLog | None = None, connections: OpenConnections | None = None,
        rpc_limit: tuple[float, float] = (1000.0, 5000.0), rates: RateHistory | None = None,
        scheduler: Scheduler | None = None, notifications: NotificationService | None = None,
        portfolio_streams: PortfolioStreams | None = None,
        portfolio: PortfolioTracker | None = None, rule_sets: RuleSets | None = None,
        analysis_streams: AnalysisStreams | None = None, forward: Forwarder | None = None,
        local_methods: Collection[str] = (),
    ) -> None:
        """Everything arrives here, from the composition root (`coinwire.app.create_app`); nothing is set afterwards.

        Without `auth` (tests of one method) connections are not authenticated, without `owners` nothing is
        checked for ownership, without `audit` nothing is recorded.
        """
        self.gateway = gateway
        self.notifier = notifier
        self.streams = streams  # `subscribe` with `since`: an account's missed notifications, then live ones
        self.health = health  # get_status's `status` and `reasons`, the same as /readyz's
        self.wallets = WalletViews(gateway)
        self.owners = owners  # loaded when the access layer starts (after the store opens)
        self.auth = auth  # authenticates WebSocket connections
        self.connections = connections  # ends WebSockets whose credentials end
        self.audit = audit  # state-changing JSON-RPC calls are recorded (HTTP ones by the guard)
        self.ohlcv_streams = ohlcv_streams  # live candles for subscribe_ohlcv
        self.portfolio_streams = portfolio_streams  # live portfolio candles for subscribe_portfolio_ohlcv
        self.rpc_limit = rpc_limit  # requests/second and burst per WebSocket connection
        self.rates = rates  # get_rates: stored rates (api.rates_routes)
        self.scheduler = scheduler  # the schedule methods (None: this server schedules nothing)
        self.notifications = notifications  # get_notifications / set_notifications: the caller's own
        self.portfolio = portfolio  # portfolio candles and values (services/portfolio_tracker.py); None: tracking is off
        self.rule_sets = rule_sets  # the rule set methods (api/rule_set_methods.py); None: this server keeps none
        self.analysis_streams = analysis_streams  # the analyser and subscribe_analysis (api.analysis_routes); None: not served
        self._parsed: dict[tuple[int, str, str], tuple[Instrument, int]] = {}
        self.methods: dict[str, Method] = _REGISTRY  # every method by name (an attribute: read for every call)
        self.forward = forward  # None: this process holds the gateway, every method runs here
        self.local_methods = frozenset(local_methods)  # run here even with `forward`: they work on the caller's connection


    async def call(self, name: str, raw: dict[str, Any] | None, ctx: CallContext) -> Any:
        """Authorise (rule, then ownership of named resources), validate, run, then record or narrow by owner."""
        entry = _REGISTRY[name]
        if ctx.send is not None and self.auth is not None and ctx.principal is not None:
            now = time.monotonic()
            if now - ctx.checked_at > SESSION_RECHECK:  # a revoked session stops a connection within this time
                ctx.principal = await self.auth.recheck(ctx.principal)
                ctx.checked_at = now
        ctx.authorize(name)
        if self.forward is not None and name not in self.local_methods:
            return await self.forward.call(name, raw, ctx)  # authorised here, checked and run by the gateway's process
        try:
            # strict: integers are integers (query strings are typed by the REST layer before this)
            parsed = msgspec.convert(raw or {}, entry.params, strict=True) if entry.params is not P.EchoParams else _as_sent(raw)
        except msgspec.ValidationError as exc:
            raise refusal(exc, name) from None
        owners, principal = self.owners, ctx.principal
        if owners is None or principal is None:
            return await entry.handler(self, parsed, ctx)
        audited = self.audit is not None and ctx.transport == "rpc" and RPC_RULES[name].action != "read"
        claimed = None
        try:
            claimed = owners.check_params(name, raw or {}, principal)
            result = owners.after(name, raw or {}, await entry.handler(self, parsed, ctx), principal)
        except CoinwireError as exc:
            if claimed is not None:  # refused: the labels it claimed are free again
                owners.release(claimed)
            if audited:
                self.audit.record_call(principal, name, raw or {}, exc.code)  # type: ignore[union-attr]
            raise
        if audited:
            self.audit.record_call(principal, name, raw or {}, "ok")  # type: ignore[union-attr]
        return result

    # --- accounts: the one place a client's account ids are checked -------------------------------
    def account(self, ctx: CallContext, account_id: int | None, exchange: str | None = None, need: Need = "trade") -> int | None:
        """The account a call names, when the caller may `need` it (`account_not_found` otherwise); None when none is named.

        `exchange`: the exchange the call is about, which the account must be on.
        """
        if account_id is None:
            return None
        user_id, is_admin = caller(ctx)
        account = self.gateway.accounts.require(account_id, user_id, is_admin, need)
        if exchange is not None and need == "trade" and account.kind == EXTERNAL:  # its trades arrive by webhook only
            raise InvalidInput("account_not_tradable", f"account {account_id} is external: coinwire places no order on it")
        if exchange is not None and account.exchange != exchange:
            raise InvalidInput("account_exchange_mismatch", f"account {account_id} is on {account.exchange}, not {exchange}")
        return account.id

    # --- wallet sets: the one place a client's wallet set ids are checked for reading ------------------
    def may_read_set(self, principal: Principal | None, set_id: int) -> bool:
        """Whether `principal` may read wallet set `set_id` (get_wallet_set, its history, the `wallet_set` push).

        Its owner and admins may (`Owners`), and so may a user who may view every account whose
        funds the set holds (granted `view` on them): those accounts' wallets are theirs to read
        already. Trading with a set stays its owner's (`Owners`, then the accounts' `trade` right).
        From memory only: the push asks before each notification, so a grant taken back ends it.
        """
        owners = self.owners
        if principal is None or owners is None:
            return True
        return self.gateway.accounts.may_read_set(owners.owner_of("wallet_set", set_id), self.gateway.ledger.set_accounts(set_id),
                                                  principal.user_id, principal.is_admin)

    def readable_set(self, ctx: CallContext, set_id: int) -> int:
        """`set_id` when the caller may read that set (`may_read_set`); `unknown_wallet_set` otherwise, as for one that does not exist."""
        if not self.may_read_set(ctx.principal, set_id):
            raise NotFound("unknown_wallet_set", f"no wallet set {set_id}")
        return set_id

    async def named_sets(self, ctx: CallContext, set_ids: list[int] | None) -> frozenset[int] | None:
        """The sets a `wallet_set` subscription names (`subscribe`, /ws/wallet_sets), each readable and existing (None: not narrowed).

        In an api replica apart from the gateway (no ledger here) each set is checked where the
        ledger is, by the same check `get_wallet_set` makes there, under the caller's identity.
        """
        if set_ids is None:
            return None
        limit = self.notifier.limits.max_patterns
        if len(set_ids) > limit:  # each costs every push of the channel a test
            raise InvalidInput("too_many_wallet_sets", f"wallet_sets: at most {limit} per connection, got {len(set_ids)}", limit=limit)
        for set_id in set_ids:
            if self.forward is not None:
                await self.forward.call("get_wallet_set", {"set_id": set_id, "aggregate_only": True}, ctx)
                continue
            self.readable_set(ctx, set_id)
            if not self.gateway.ledger.has_set(set_id):  # an admin may read any set, but not an invented one
                raise NotFound("unknown_wallet_set", f"no wallet set {set_id}")
        return frozenset(set_ids)

    def stream_of(self, ctx: CallContext, query_string: bytes, channels: Collection[str] = ("order", "trade")) -> StreamQuery:
        """A WebSocket's `?account=&since=` (api.streams): checked before the connection receives anything.

        With `since`, the account's notifications to it are held from here on, until its replay
        has been sent (`AccountStreams.resume` with the returned hold).
        """
        account, since = stream_query(query_string)
        if account is None:
            return StreamQuery(None, None, None)
        for channel in channels:
            authorize_channel(ctx.principal, channel)
        account_id: int = self.account(ctx, account, need="view")  # type: ignore[assignment]
        if since is not None and self.streams is None:
            raise InvalidInput("not_a_stream", "this server replays nothing: connect without since")
        return StreamQuery(account_id, since, self.notifier.hold(ctx, account_id) if since is not None else None)

    def readable_accounts(self, ctx: CallContext, account_id: int | None = None) -> Collection[int] | None:
        """The accounts a read may show: the one named (checked), else every account the caller may read (None: all)."""
        if account_id is not None:
            return (self.account(ctx, account_id, need="view"),)  # type: ignore[return-value]
        user_id, is_admin = caller(ctx)
        return self.gateway.accounts.readable(user_id, is_admin)

    async def own_accounts(self, ctx: CallContext) -> None:
        """Make the caller's own account on every ready paper exchange (a balance read is a first use)."""
        user_id, _ = caller(ctx)
        for name, ex in self.gateway.venues.items():
            if ex.virtual_funds and ex.markets and self.gateway.accounts.own(user_id, name) is None:
                await self.gateway.account_for(user_id, name)

    # --- shared parsing ------------------------------------------------------------------------
    def _units(self, inst: Instrument, field: str, text: str) -> int:
        """`inst.parse_size` / `parse_price`, memoised per instrument and text.

        Exact decimal parsing and the grid checks cost several microseconds, and the same
        sizes and prices arrive again and again. Only accepted values are remembered, keyed
        by the instrument object, so a changed instrument (new tick or step) parses afresh.
        """
        key = (id(inst), field, text)
        hit = self._parsed.get(key)
        if hit is not None and hit[0] is inst:
            return hit[1]
        units = inst.parse_size(text, field) if field == "size" else inst.parse_price(text, field)
        if len(self._parsed) >= _PARSED_LIMIT:
            self._parsed.clear()
        self._parsed[key] = (inst, units)
        return units

    def order_request(self, p: P.MakeOrderParams) -> OrderRequest:
        symbol = p.symbol or p.pair
        if symbol is None:
            raise InvalidInput("missing_parameter", "make_order needs `pair` (BTC_USDT) or `symbol` (BTC/USDT)")
        market = self.gateway.market(p.exchange, symbol)
        inst = market.instrument
        side = _SIDES.get(p.side.lower())
        if side is None:
            raise InvalidInput("invalid_side", f"side must be 'buy' or 'sell', got {p.side!r}")
        order_type = _ORDER_TYPES.get(p.type)
        if order_type is None:
            known = ", ".join(CLIENT_ORDER_TYPES)
            raise InvalidInput("unknown_order_type", f"unknown order type {p.type!r}; use one of {known}")
        conditional = p.type in _CONDITIONAL_NAMES
        if p.post_only:
            if order_type not in (OrderType.LIMIT, OrderType.POST_ONLY):
                raise InvalidInput("invalid_params", "post_only applies to limit orders only")
            order_type = OrderType.POST_ONLY
        funds = 0
        if p.funds is None:  # the size path: one check more than before
            if p.size is None:
                raise InvalidInput("missing_parameter", "make_order needs `size` (or `funds` for a market buy)")
            size = self._units(inst, "size", decimal_param(p.size, "size"))
        else:
            size, funds = _funds_param(inst, side, order_type, p)
        raw_limit = p.limit if p.limit is not None else p.price
        if order_type is _MARKET:
            if raw_limit not in (None, 0, "0", ""):
                raise InvalidInput("invalid_params", "a market order takes no limit price")
            limit = 0
        elif conditional:  # its limit is that of the order it fires: only the *-limit types need one
            limit = 0 if raw_limit is None else price_units(inst, "limit", raw_limit)
        else:
            if raw_limit in (None, "", 0, "0"):
                raise InvalidInput("missing_limit", f"a {order_type.value} order needs a limit price")
            limit = self._units(inst, "limit", decimal_param(raw_limit, "limit"))
        if p.cancel_after < 0:
            raise InvalidInput("invalid_cancel_after", "cancel_after must be >= 0 seconds")
        if p.cancel_after and not order_type.rests and not conditional:
            raise InvalidInput("invalid_cancel_after", "cancel_after applies to resting (limit, post-only) and conditional orders")
        client_oid = p.client_oid
        if p.idempotency_key is not None:
            if client_oid is not None and client_oid != p.idempotency_key:
                raise InvalidInput("idempotency_key_mismatch",
                                   "idempotency_key is another name for client_oid; give one, or both the same")
            client_oid = p.idempotency_key
        client_oid = client_oid or str(uuid.uuid4())
        if not 0 < len(client_oid) <= 64:
            raise InvalidInput("invalid_client_oid", "client_oid must be 1 to 64 characters")
        request = OrderRequest(
            exchange=p.exchange,
            instrument=inst,
            side=side,
            type=order_type,
            size=size,
            limit=limit,
            cancel_after=p.cancel_after,
            client_oid=client_oid,
            wallet_set_id=p.wallet_set_id,
            run_id=p.run_id,
            funds=funds,
        )
        # a plain order names none of these: their defaults cost it these tests only (api.order_params does the rest)
        if (conditional or p.time_in_force is not None or p.expire_at is not None or p.stop_price is not None
                or p.trailing_delta is not None or p.activation_price is not None or p.trigger is not None
                or p.take_profit is not None or p.stop_loss is not None or p.reduce_only or p.allow_immediate):
            apply_conditions(request, p, market)
        if p.position_side is not None:  # perpetuals only; the account's mode is checked by the core (position_side_in_one_way_mode)
            apply_position_side(request, p.position_side)
        return request

    def oco_requests(self, p: P.MakeOcoParams) -> tuple[OrderRequest, OrderRequest]:
        """make_oco's limit leg and stop leg, each parsed and checked as make_order would, then checked as a pair."""
        limit_oid, stop_oid = oco_client_oids(p.client_oid or uuid.uuid4().hex)
        for field in ("size", "limit", "stop_price"):
            if getattr(p, field) is None:
                raise InvalidInput("missing_parameter", f"make_oco needs `{field}`", field=field)
        common = {"exchange": p.exchange, "pair": p.pair, "symbol": p.symbol, "side": p.side, "size": p.size,
                  "wallet_set_id": p.wallet_set_id, "run_id": p.run_id, "account": p.account}
        limit_leg = self.order_request(P.MakeOrderParams(**common, type=_LIMIT.value, limit=p.limit, client_oid=limit_oid))
        stop_type = OrderType.STOP_MARKET if p.stop_limit is None else OrderType.STOP_LIMIT
        # the stop is judged against the market with the limit (oco_prices_wrong_side), not alone (stop_would_trigger)
        stop_leg = self.order_request(P.MakeOrderParams(**common, type=stop_type.value, stop_price=p.stop_price, limit=p.stop_limit,
                                                        trigger=p.trigger, client_oid=stop_oid, allow_immediate=True))
        stop_leg.allow_immediate = False
        check_oco_legs(limit_leg, stop_leg, self.gateway.market(p.exchange, limit_leg.instrument.symbol))
        return limit_leg, stop_leg


def _funds_param(inst: Instrument, side: Side, order_type: OrderType, p: P.MakeOrderParams) -> tuple[int, int]:
    """(0, funds in ATTO of the quote) of a market buy by amount, refused with a code when it cannot be one.

    The size is left to the venue, which walks the book for the funds (`core.execution.size_funds_order`).
    """
    if p.size is not None:
        raise InvalidInput("size_and_funds", "give size or funds, not both")
    funds = to_units(decimal_param(p.funds, "funds"), ATTO_DECIMALS, "funds")
    check_funds(inst, side, order_type, funds)
    return 0, funds


METHOD_NAMES: list[str] = []


# --- utility ----------------------------------------------------------------------------------
@method("echo", P.EchoParams)
async def echo(api: Api, p: dict[str, Any], ctx: CallContext) -> Any:
    """Echoes the keyword parameters back to the caller (to test a connection)."""
    return p


def _notification_payload(p: dict[str, Any]) -> dict[str, Any]:
    """An echo's parameters, refused above ECHO_PAYLOAD_LIMIT bytes of JSON (it is copied to every receiver)."""
    if len(_encode(p)) > ECHO_PAYLOAD_LIMIT:
        raise InvalidInput("payload_too_large", f"notification parameters are limited to {ECHO_PAYLOAD_LIMIT} bytes of JSON")
    return p


@method("echo_notify", P.EchoParams)
async def echo_notify(api: Api, p: dict[str, Any], ctx: CallContext) -> Any:
    """Sends the parameters as an `echo_ret` notification to the caller's own listening connections."""
    user_id = ctx.principal.user_id if ctx.principal is not None else None
    receivers = await api.notifier.broadcast("echo_ret", _notification_payload(p), user_id=user_id, only_user=True)
    return {"status": "ok", "receivers": receivers}


# --- the caller's own notifications (as /api/v1/me/notifications: docs/NOTIFICATIONS.md) ---------------------------
def _notifications_of(api: Api, ctx: CallContext) -> tuple[NotificationService, int]:
    if api.notifications is None:
        raise InvalidInput("method_not_available", "this server has no notifier")
    if ctx.principal is None:
        raise InvalidInput("unauthenticated", "sign in to read or change your notifications")
    return api.notifications, ctx.principal.user_id


@method("get_notifications", P.NoParams)
async def get_notifications(api: Api, p: P.NoParams, ctx: CallContext) -> Any:
    """The caller's notification channels (secrets shown as "set") and the channels of each event."""
    service, user_id = _notifications_of(api, ctx)
    return await service.get_settings(user_id)


@method("set_notifications", P.SetNotificationsParams)
async def set_notifications(api: Api, p: P.SetNotificationsParams, ctx: CallContext) -> Any:
    """Set exactly these channels and subscriptions (a secret left out is kept); the settings now in force."""
    service, user_id = _notifications_of(api, ctx)
    return await service.put_settings(user_id, {"channels": p.channels, "events": p.events})


@method("broadcast_notify", P.EchoParams)
async def broadcast_notify(api: Api, p: dict[str, Any], ctx: CallContext) -> Any:
    """Admins: sends the parameters as an `echo_ret` notification to every listening connection, every user's."""
    receivers = await api.notifier.broadcast("echo_ret", _notification_payload(p))
    return {"status": "ok", "receivers": receivers}


def _subject_patterns(kind: str, field: str, given: list[str], limit: int) -> SubjectFilter:
    """Patterns that select only `kind` subjects: `binance.usdt.*` and `ticker.binance.usdt.*` mean the same.

    Compiled here, once, and at most `limit` of them (each costs every message a test).
    """
    if not given:
        raise InvalidInput("invalid_pattern", f"{field} needs at least one pattern, e.g. '{kind}.binance.usdt.*'")
    if len(given) > limit:  # checked before any is looked at: thousands cost the server, not the client
        raise InvalidInput("too_many_patterns", f"{field}: at most {limit} patterns per connection, got {len(given)}", limit=limit)
    return SubjectFilter(t if t.startswith(f"{kind}.") else f"{kind}.{t}" for t in given)


@method("subscribe", P.SubscribeParams)
async def subscribe(api: Api, p: P.SubscribeParams, ctx: CallContext) -> Any:
    """Adds notification channels (order, trade, exchstatus, logmessages, echo_ret, ticker, public_trades, rate,
    orders_executed, orders_updated, positions_updated) to this connection.

    `ticker` pushes every latest price; `tickers` (subject patterns like `ticker.binance.usdt.*`) narrows it.
    `public_trades` pushes every market's public trades; `public_trades` patterns (`trade.demo.usdt.btc`) narrow it.
    `rate` pushes each rate the retriever stores; `rates` patterns (`rate.binance.usdt.*`) narrow it.
    Each pattern list replaces the one before and holds at most `ws_max_patterns` patterns (`too_many_patterns`).
    `account` adds that account's notifications on the account channels (order, trade, orders_executed,
    orders_updated, positions_updated); with `since` (its `seq`), first those after it
    (`replay_unavailable` when no longer kept), then live ones, when none of them reached this connection yet
    (`since_not_first` otherwise: connect with `?account=&since=`).
    `wallet_set` pushes each wallet set the caller may read after it changes (api.wallet_set_push; admins: every set);
    `wallet_sets` (ids) narrows it to those sets, each one the caller may read (`unknown_wallet_set` otherwise).
    """
    unknown = sorted(set(p.channels) - CHANNELS)
    if unknown:
        raise InvalidInput("unknown_channel", f"unknown channels {unknown}; known: {sorted(CHANNELS)}")
    if ctx.send is None:
        raise InvalidInput("not_a_stream", "subscribe needs a WebSocket connection")
    for channel in dict.fromkeys(p.channels):  # each once, however often it is named
        authorize_channel(ctx.principal, channel)
    follows = ACCOUNT_CHANNELS & set(p.channels)
    if p.since is not None and p.account is None:
        raise InvalidInput("invalid_params", "since replays one account: name it in `account`", field="since")
    if p.since is not None and api.streams is None:
        raise InvalidInput("not_a_stream", "this server replays nothing: subscribe without since")
    limit = api.notifier.limits.max_patterns
    tickers = None if p.tickers is None else _subject_patterns("ticker", "tickers", p.tickers, limit)
    trades = None if p.public_trades is None else _subject_patterns("trade", "public_trades", p.public_trades, limit)
    rates = None if p.rates is None else _subject_patterns("rate", "rates", p.rates, limit)
    if p.wallet_sets is not None and "wallet_set" not in p.channels:
        raise InvalidInput("invalid_params", "wallet_sets narrows the wallet_set channel: name it in channels", field="wallet_sets")
    wallet_sets = await api.named_sets(ctx, p.wallet_sets)
    account_id = None
    if p.account is not None:
        if not follows:
            raise InvalidInput("invalid_params", "account narrows the account channels (order, trade, orders_executed, "
                               "orders_updated, positions_updated): name one of them")
        account_id = api.account(ctx, p.account, need="view")
    replay = None
    if p.since is not None:  # every check above is passed: the replay changes the connection only when it can run
        replay = await api.streams.resume(ctx, account_id, p.since, follows)  # type: ignore[union-attr,arg-type]
    elif account_id is not None:
        ctx.followed.add(account_id)
    elif follows and caller(ctx)[1]:
        ctx.follow_all = True  # an admin asking for the channels without an account: every account's
    ctx.ticker_patterns = tickers or ctx.ticker_patterns  # both checked before either changes
    ctx.trade_patterns = trades or ctx.trade_patterns
    ctx.rate_patterns = rates or ctx.rate_patterns
    if "wallet_set" in p.channels:
        ctx.wallet_sets = wallet_sets  # replaces the sets named before (None: every set the caller may read)
    await api.notifier.listen(ctx, p.channels)
    result: dict[str, Any] = {"channels": sorted(ctx.channels)}
    if replay is not None:
        result["replay"] = replay
    if "ticker" in ctx.channels:
        result["tickers"] = list(ctx.ticker_patterns)
    if "public_trades" in ctx.channels:
        result["public_trades"] = list(ctx.trade_patterns)
    if "rate" in ctx.channels:
        result["rates"] = list(ctx.rate_patterns)
    if "wallet_set" in ctx.channels:
        result["wallet_sets"] = sorted(ctx.wallet_sets) if ctx.wallet_sets is not None else None
    return result



@method("unsubscribe", P.SubscribeParams)
async def unsubscribe(api: Api, p: P.SubscribeParams, ctx: CallContext) -> Any:
    """Removes notification channels from this connection."""
    api.notifier.unlisten(ctx, p.channels)
    return {"channels": sorted(ctx.channels)}


@method("get_status", P.NoParams)
async def get_status(api: Api, p: P.NoParams, ctx: CallContext) -> Any:
    """Status of the gateway and its configuration: `online`, or `degraded` with the `reasons` (as /readyz has them)."""
    gw = api.gateway
    health = await api.health.report()
    currencies = sorted({c for ex in gw.venues.values() for c in ex.currencies()})
    return {
        "status": health["status"],
        "reasons": health["reasons"],
        "version": __version__,
        "config": {"currencies": currencies, "exchanges": sorted(gw.venues)},
        "exchanges": health["exchanges"],
    }


# --- exchanges and prices -------------------------------------------------------------------------
@method("get_exchanges", P.GetExchangesParams)
async def get_exchanges(api: Api, p: P.GetExchangesParams, ctx: CallContext) -> Any:
    """The registered exchanges: status, mode, venue (`paper` or `live`), feed, pairs and currencies (filter with `mode`).

    `class` is the class that handles the exchange, as in the seed: a live exchange's is LiveVenue.
    """
    if p.mode not in (None, "paper", "live"):
        raise InvalidInput("invalid_mode", f"mode must be 'paper' or 'live', got {p.mode!r}")
    out = []
    for ex in api.gateway.venues.values():
        if p.mode and ex.mode != p.mode:
            continue
        out.append(
            {
                "exchange": ex.name,
                "class": f"{type(ex).__module__}.{type(ex).__qualname__}",
                "status": ex.status,
                "mode": ex.mode,
                "venue": ex.kind,
                "feed": ex.feed_name,
                "pairs": sorted(symbol_token(s) for s in ex.markets),
                "symbols": sorted(ex.markets),
                "currencies": ex.currencies(),
                # a perpetual's says where its mark price comes from (the feed's, the venue's, or the median rule)
                "markets": [m.instrument.to_public() | ({"mark_price_source": ex.mark_rule(s)} if m.instrument.is_perpetual else {})
                            for s, m in ex.markets.items()],
            }
        )
    return out


@method("get_pricing", P.ExchangeParams)
async def get_pricing(api: Api, p: P.ExchangeParams, ctx: CallContext) -> Any:
    """Best bid and ask of every pair of an exchange, as decimal strings (`exchange_not_ready` while it is not ready)."""
    ex = api.gateway.ready_exchange(p.exchange)  # not nulls: a book not synced yet has no price to give
    out: dict[str, Any] = {}
    for symbol, market in sorted(ex.markets.items()):
        book, inst = market.engine.book, market.instrument
        bid, ask = book.best_bid(), book.best_ask()
        out[symbol_token(symbol)] = {
            "bid": inst.price_str(bid) if bid is not None else None,
            "ask": inst.price_str(ask) if ask is not None else None,
        }
    return out


@method("get_book", P.BookParams)
async def get_book(api: Api, p: P.BookParams, ctx: CallContext) -> Any:
    """The mirrored order book: `bids` and `asks` as [price, size] lists, best first (`exchange_not_ready` while not ready)."""
    symbol = p.symbol or p.pair
    if symbol is None:
        raise InvalidInput("missing_parameter", "get_book needs `pair` or `symbol`")
    if not 1 <= p.depth <= 5000:
        raise InvalidInput("invalid_depth", "depth must be between 1 and 5000")
    api.gateway.ready_exchange(p.exchange)  # not an empty book: one not synced yet says nothing of the market
    market = api.gateway.market(p.exchange, symbol)
    return book_view(market, p.depth)


def book_view(market: Any, depth: int) -> dict[str, Any]:
    inst, book = market.instrument, market.engine.book
    return {
        "exchange": inst.exchange,
        "pair": symbol_token(inst.symbol),
        "symbol": inst.symbol,
        "synced": market.synced,
        "update_id": market.sync.last_update_id,
        "bids": [[inst.price_str(px), inst.size_str(sz)] for px, sz in book.levels(Side.BUY, depth)],
        "asks": [[inst.price_str(px), inst.size_str(sz)] for px, sz in book.levels(Side.SELL, depth)],
    }


@method("convert_to_usd", P.ConvertParams)
async def convert_to_usd(api: Api, p: P.ConvertParams, ctx: CallContext) -> Any:
    """Value of an amount of a currency in USD (stablecoins count as USD); null when no route exists."""
    if p.side not in ("bid", "ask"):
        raise InvalidInput("invalid_side", "side must be 'bid' or 'ask'")
    amount = to_units(decimal_param(p.value, "value"), 18, "value")
    return api.wallets.convert_to_usd(p.currency.upper(), amount, p.side)


@method("get_ohlcv", P.OhlcvParams)
async def get_ohlcv(api: Api, p: P.OhlcvParams, ctx: CallContext) -> Any:
    """Candles of the trades the gateway has seen: [time, low, high, open, close, volume, received_at]."""
    market = api.gateway.market(p.exchange, p.pair)
    return ohlcv_points(market, p.start, p.end, p.received_before, p.freq)


# --- orders ---------------------------------------------------------------------------------------
@method("make_order", P.MakeOrderParams)
async def make_order(api: Api, p: P.MakeOrderParams, ctx: CallContext) -> Any:
    """Places an order (limit, market, limit-immediate-cancel, limit-fill-kill, limit-post-only, stop-market, stop-limit,
    take-profit-market, take-profit-limit, trailing-stop).

    A market buy may give `funds` (the quote to spend, fee included) instead of `size`; `idempotency_key` is another name for `client_oid`.
    Conditional orders take `stop_price` (or `trailing_delta`, "1.5%" or a price distance, and `activation_price`), `trigger`
    (last, mark, bid_ask) and `allow_immediate`; `time_in_force` GTC, IOC, FOK or GTD with `expire_at` (ISO 8601 or epoch ms);
    `take_profit` and `stop_loss` make it a bracket whose children are placed as an OCO once it filled (docs/ORDERS.md).
    """
    request = api.order_request(p)
    request.owner_id = ctx.principal.user_id if ctx.principal is not None else None
    if p.account is not None:
        request.account_id = api.account(ctx, p.account, p.exchange)
    if p.wallet_set_id is not None:
        _may_trade_set(api, ctx, p.wallet_set_id, (p.exchange,))
    previous = api.notifier.note_origin(request.client_oid, ctx)
    try:
        return await api.gateway.make_order(request)
    except CoinwireError:
        api.notifier.restore_origin(request.client_oid, ctx, previous)
        raise


@method("make_oco", P.MakeOcoParams)
async def make_oco(api: Api, p: P.MakeOcoParams, ctx: CallContext) -> Any:
    """Places an OCO: a limit leg and a stop leg (stop-market, or stop-limit with `stop_limit`) for the same size.

    One filling or firing cancels the other; the pair holds its funds once. Answers both legs' views, the limit leg
    first; their client_oids are `<client_oid>:limit` and `<client_oid>:stop`.
    """
    legs = api.oco_requests(p)
    owner_id = ctx.principal.user_id if ctx.principal is not None else None
    account_id = api.account(ctx, p.account, p.exchange) if p.account is not None else None
    if p.wallet_set_id is not None:
        _may_trade_set(api, ctx, p.wallet_set_id, (p.exchange,))
    previous = []
    for leg in legs:
        leg.owner_id = owner_id
        if account_id is not None:
            leg.account_id = account_id
        previous.append(api.notifier.note_origin(leg.client_oid, ctx))
    try:
        return await api.gateway.make_oco(*legs)
    except CoinwireError:
        for leg, before in zip(legs, previous, strict=True):
            api.notifier.restore_origin(leg.client_oid, ctx, before)
        raise


@method("cancel_order", P.CancelOrderParams)
async def cancel_order(api: Api, p: P.CancelOrderParams, ctx: CallContext) -> Any:
    """Cancels a resting order by `order_id` (of an account the caller may trade) or by the caller's own `client_oid`."""
    principal = ctx.principal
    user_id, is_admin = caller(ctx)
    if p.account is not None:  # an account the caller may not trade is not found, as on every other call
        api.account(ctx, p.account, p.exchange)
    accounts = api.gateway.accounts
    return await api.gateway.cancel_order(
        order_id=p.order_id, client_oid=p.client_oid or p.client_order_id, exchange=p.exchange,
        owner_id=principal.user_id if principal is not None else None,
        unowned_too=principal is not None and principal.is_admin,  # admins: orders placed before users existed too
        may_trade=lambda account_id: (accounts.may(account_id, user_id, is_admin, "trade")
                                      and (p.account is None or account_id == p.account)),
    )


@method("list_open_orders", P.ListOpenOrdersParams)
async def list_open_orders(api: Api, p: P.ListOpenOrdersParams, ctx: CallContext) -> Any:
    """Orders resting on paper books, newest first (of the accounts the caller may read; admins: every account)."""
    return api.gateway.open_orders(exchange=p.exchange, wallet_set_id=p.wallet_set_id, accounts=api.readable_accounts(ctx, p.account))


@method("list_recent_orders", P.ListRecentOrdersParams)
async def list_recent_orders(api: Api, p: P.ListRecentOrdersParams, ctx: CallContext) -> Any:
    """Recently finished orders (with `include_open`, open ones too), newest first, of the accounts the caller may read."""
    if not 1 <= p.limit <= 1000:
        raise InvalidInput("invalid_limit", "limit must be between 1 and 1000")
    return await api.gateway.recent_orders(include_open=p.include_open, limit=p.limit, exchange=p.exchange,
                                           accounts=api.readable_accounts(ctx, p.account))


def caller(ctx: CallContext) -> tuple[int | None, bool]:
    """(user id, is admin) of the caller; without users (no principal) everything is the caller's, as an admin's."""
    principal = ctx.principal
    if principal is None:
        return None, True
    return principal.user_id, principal.is_admin


def _may_trade_set(api: Api, ctx: CallContext, set_id: int, exchanges: Collection[str]) -> None:
    """A wallet set spends the funds of the accounts it holds: the caller must (still) trade each (`account_not_found`).

    The set is the caller's (`Owners`), but the account funding it may be another user's that a
    grant let the caller trade; once the grant is taken back, the set no longer reaches it.
    """
    for exchange in exchanges:
        held = api.gateway.ledger.set_account(set_id, exchange)
        if held is not None:
            api.account(ctx, held, exchange)


def _allocations(api: Api, ctx: CallContext, wallets: list[P.WalletAllocation]) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
    """Allocations in ATTO, and the account each exchange's come from when the caller named one (checked: trade)."""
    allocations: list[tuple[str, str, int]] = []
    accounts: dict[str, int] = {}
    for w in wallets:
        allocations.append((w.exchange, w.currency.upper(), to_units(decimal_param(w.allocation, "allocation"), 18, "allocation")))
        if w.account is not None:
            account_id = api.gateway.accounts.require(w.account, *caller(ctx), "trade").id
            api.account(ctx, account_id, w.exchange)  # on that exchange
            if accounts.setdefault(w.exchange, account_id) != account_id:
                raise InvalidInput("account_conflict", f"a wallet set holds one account's funds per exchange; {w.exchange} names two")
    return allocations, accounts


# --- wallets -------------------------------------------------------------------------------------
@method("create_wallet_set", P.CreateWalletSetParams)
async def create_wallet_set(api: Api, p: P.CreateWalletSetParams, ctx: CallContext) -> Any:
    """Allocates unallocated exchange funds to a new wallet set; answers {"id": N}."""
    if not p.wallets:
        raise InvalidInput("bad_wallet_config", "a wallet set needs at least one wallet")
    allocations, accounts = _allocations(api, ctx, p.wallets)
    description = p.description or (f"Logical Wallet for Run: {p.run_id}" if p.run_id else "Logical wallet set")
    owner_id = ctx.principal.user_id if ctx.principal is not None else None  # committed with the set
    wallet_set = await api.gateway.create_wallet_set(run_id=p.run_id, description=description, allocations=allocations, owner_id=owner_id,
                                                     accounts=accounts)
    return {"id": wallet_set.id}


def _set_id_of(p: P.DeactivateWalletSetParams | P.AllocateToWalletSetParams, method_name: str) -> int:
    """`set_id`, or the seed's `wallet_set_id`: exactly one of them (they name the same wallet set)."""
    if p.set_id is not None and p.wallet_set_id is not None:
        raise InvalidInput("conflicting_parameters",
                           f"{method_name}: give `wallet_set_id` or `set_id`, not both: they name the same wallet set")
    set_id = p.set_id if p.set_id is not None else p.wallet_set_id
    if set_id is None:
        raise InvalidInput("missing_parameter", f"{method_name} needs `wallet_set_id` (or `set_id`)")
    return set_id


@method("allocate_to_wallet_set", P.AllocateToWalletSetParams)
async def allocate_to_wallet_set(api: Api, p: P.AllocateToWalletSetParams, ctx: CallContext) -> Any:
    """Moves unallocated funds into an active wallet set (positive allocation) or its available funds back out (negative);
    all or none. Answers the set."""
    set_id = _set_id_of(p, "allocate_to_wallet_set")
    if not p.wallets:
        raise InvalidInput("bad_wallet_config", "allocate_to_wallet_set needs at least one wallet")
    allocations, accounts = _allocations(api, ctx, p.wallets)
    _may_trade_set(api, ctx, set_id, {exchange for exchange, _, _ in allocations if exchange not in accounts})
    await api.gateway.allocate_to_wallet_set(set_id, allocations, caller(ctx)[0], accounts)
    return api.wallets.wallet_set(set_id)


@method("deactivate_wallet_set", P.DeactivateWalletSetParams)
async def deactivate_wallet_set(api: Api, p: P.DeactivateWalletSetParams, ctx: CallContext) -> Any:
    """Cancels the set's open orders and returns its funds to unallocated; the set is `wallet_set_id` (the seed's) or `set_id`."""
    wallet_set = await api.gateway.deactivate_wallet_set(_set_id_of(p, "deactivate_wallet_set"))
    return {"id": wallet_set.id, "active": wallet_set.active}


@method("get_wallet_set", P.GetWalletSetParams)
async def get_wallet_set(api: Api, p: P.GetWalletSetParams, ctx: CallContext) -> Any:
    """One wallet set with its wallets and their present value in USD."""
    return api.wallets.wallet_set(api.readable_set(ctx, p.set_id), p.aggregate_only)


@method("get_wallet", P.GetWalletParams)
async def get_wallet(api: Api, p: P.GetWalletParams, ctx: CallContext) -> Any:
    """One wallet as get_wallet_set shows it: of the set `wallet_set_id`, or without it the account's wallet (all its partitions)."""
    if p.currency is not None and p.base is not None and p.currency.upper() != p.base.upper():
        raise InvalidInput("invalid_params", "get_wallet takes currency or base (the seed's name), not two different ones")
    currency = p.currency or p.base
    if not currency:
        raise InvalidInput("missing_parameter", "get_wallet needs `currency` (or the seed's `base`)")
    api.gateway.exchange(p.exchange)
    if p.wallet_set_id is not None:
        return api.wallets.set_wallet(p.exchange, currency.upper(), api.readable_set(ctx, p.wallet_set_id))
    account_id = api.account(ctx, p.account, p.exchange, need="view")
    if account_id is None:
        account = await api.gateway.account_for(caller(ctx)[0], p.exchange)
        account_id = account.id
    return api.wallets.account_wallet(p.exchange, currency.upper(), account_id)


async def _funds_scope(api: Api, ctx: CallContext, account: int | None) -> tuple[set[int] | None, Collection[int] | None]:
    """(wallet sets, accounts) whose funds a balance read shows (None: all).

    One account named (one the caller may read; admins: any), else the caller's own and granted
    accounts, admins included: a balance is what one trades with, not a sum over every user
    (an admin names an account to read another's). Without users, everything.
    """
    if account is None:
        await api.own_accounts(ctx)
    principal = ctx.principal
    if principal is None:
        return None, None
    accounts = api.readable_accounts(ctx, account) if account is not None else api.gateway.accounts.personal(principal.user_id)
    # the sets listed: those the caller may see that hold funds of the accounts shown (or none yet)
    ledger = api.gateway.ledger
    sets = set()
    for ws in ledger.wallet_sets(active_only=True):
        if not api.may_read_set(principal, ws.id):
            continue
        held = {w.account_id for w in ledger.wallets(ws.id)}
        if accounts is None or not held or held & set(accounts):
            sets.add(ws.id)
    return sets, accounts


@method("get_all_wallet_sets", P.AggregateParams)
async def get_all_wallet_sets(api: Api, p: P.AggregateParams, ctx: CallContext) -> Any:
    """The caller's active wallet sets keyed by id, plus `total`, `allocated` and `unallocated` of the caller's accounts."""
    sets, accounts = await _funds_scope(api, ctx, p.account)
    return api.wallets.all_sets(p.aggregate_only, sets, accounts)


@method("get_allocated_wallet_set", P.AccountParams)
async def get_allocated_wallet_set(api: Api, p: P.AccountParams, ctx: CallContext) -> Any:
    """Funds in the active wallet sets of the caller's accounts (admins: every account's), per exchange and currency."""
    _, accounts = await _funds_scope(api, ctx, p.account)
    return api.wallets.aggregate("allocated", accounts=accounts)


@method("get_unallocated_wallet_set", P.AccountParams)
async def get_unallocated_wallet_set(api: Api, p: P.AccountParams, ctx: CallContext) -> Any:
    """The caller's accounts' funds not allocated to any wallet set (what new wallet sets and orders draw from)."""
    _, accounts = await _funds_scope(api, ctx, p.account)
    return api.wallets.aggregate("unallocated", accounts=accounts)


@method("get_total_wallet_set", P.AccountParams)
async def get_total_wallet_set(api: Api, p: P.AccountParams, ctx: CallContext) -> Any:
    """The caller's accounts' funds: allocated plus unallocated (admins: every account's)."""
    _, accounts = await _funds_scope(api, ctx, p.account)
    return api.wallets.aggregate("total", accounts=accounts)


@method("get_unallocated_per_exchange", P.AccountParams)
async def get_unallocated_per_exchange(api: Api, p: P.AccountParams, ctx: CallContext) -> Any:
    """Unallocated funds of the caller's accounts grouped by exchange."""
    _, accounts = await _funds_scope(api, ctx, p.account)
    return api.wallets.unallocated_per_exchange(accounts)


@method("get_wallet_set_history", P.WalletSetIdParams)
async def get_wallet_set_history(api: Api, p: P.WalletSetIdParams, ctx: CallContext) -> Any:
    """A wallet set's current state and its balance after every movement."""
    return await api.wallets.history(api.readable_set(ctx, p.set_id))


@method("add_virtual_wallet_tx", P.VirtualTxParams)
async def add_virtual_wallet_tx(api: Api, p: P.VirtualTxParams, ctx: CallContext) -> Any:
    """Credits (positive) or debits (negative) the unallocated wallet of a paper account the caller owns (admins: any).

    Answers {"id": line id}.

    The wallet is named by exchange and currency (or `base`), in `account` or the caller's own
    account there, or by the seed's `wallet_id` (an unallocated wallet of such an account).
    """
    user_id, is_admin = caller(ctx)
    currency = p.currency or p.base
    account_id = api.account(ctx, p.account, p.exchange, need="trade")
    if p.wallet_id is not None:
        wallet = api.gateway.ledger.find_wallet(p.wallet_id)
        if wallet is None or wallet.exchange != p.exchange or not api.gateway.accounts.may(wallet.account_id, user_id, is_admin, "trade"):
            raise NotFound("wallet_not_found", f"no wallet {p.wallet_id} on {p.exchange}", field="wallet_id")
        if wallet.wallet_set_id is not None:
            raise InvalidInput("not_unallocated", "virtual funds go to an account's unallocated wallet; this wallet belongs to a "
                               "wallet set (allocate_to_wallet_set moves funds into a set)", field="wallet_id")
        if (currency is not None and currency.upper() != wallet.currency) or (account_id is not None and account_id != wallet.account_id):
            raise InvalidInput("conflicting_parameters", "wallet_id names another wallet than exchange, currency and account do")
        currency, account_id = wallet.currency, wallet.account_id
    if not currency:
        raise InvalidInput("missing_parameter", "add_virtual_wallet_tx needs `base` (or `currency`)")
    if account_id is None:
        account_id = (await api.gateway.account_for(user_id, p.exchange)).id
    account = api.gateway.accounts.accounts[account_id]
    if not is_admin and account.owner_id != user_id:  # members, even trading ones, never mint funds
        raise NotFound("account_not_found", f"no account {account_id}")
    movement = to_units(decimal_param(p.movement, "movement"), 18, "movement")
    line_id = await api.gateway.add_virtual_wallet_tx(exchange=p.exchange, currency=currency.upper(), movement=movement,
                                                      account_id=account_id)
    return {"id": line_id}


# --- schedules (services.scheduler: owner-scoped there, `schedule_not_found` for anyone else's) ----------------
class ScheduleIdParams(P.Params, kw_only=True):
    id: int


def _scheduler(api: Api, ctx: CallContext) -> tuple[Scheduler, Any]:
    if api.scheduler is None:
        raise NotFound("not_available", "this server runs no scheduler")
    return api.scheduler, ctx.principal or SYSTEM  # no principal: a server without users, whose caller is its operator


@method("list_schedules", P.NoParams)
async def list_schedules(api: Api, p: P.NoParams, ctx: CallContext) -> Any:
    """The caller's schedules (admins: every one), each with its next run and its latest tick's outcome."""
    scheduler, user = _scheduler(api, ctx)
    return await scheduler.listed(user)


@method("get_schedule", ScheduleIdParams)
async def get_schedule(api: Api, p: ScheduleIdParams, ctx: CallContext) -> Any:
    """One schedule of the caller with its next 5 run times (`next_runs`: ISO in its time zone, and ms)."""
    scheduler, user = _scheduler(api, ctx)
    return await scheduler.get(p.id, user)


@method("add_schedule", AddSchedule)
async def add_schedule(api: Api, p: AddSchedule, ctx: CallContext) -> Any:
    """Adds a schedule: {name, cron | every, timezone, job: {kind, ...}, misfire: {policy, limit}}; nothing is stored on a refusal."""
    scheduler, user = _scheduler(api, ctx)
    return await scheduler.add(p, user)


@method("remove_schedule", ScheduleIdParams)
async def remove_schedule(api: Api, p: ScheduleIdParams, ctx: CallContext) -> Any:
    """Removes one of the caller's schedules with its tick history."""
    scheduler, user = _scheduler(api, ctx)
    return await scheduler.remove(p.id, user)


@method("pause_schedule", ScheduleIdParams)
async def pause_schedule(api: Api, p: ScheduleIdParams, ctx: CallContext) -> Any:
    """Pauses one of the caller's schedules: no tick runs until it is resumed."""
    scheduler, user = _scheduler(api, ctx)
    return await scheduler.pause(p.id, user)


@method("resume_schedule", ScheduleIdParams)
async def resume_schedule(api: Api, p: ScheduleIdParams, ctx: CallContext) -> Any:
    """Resumes one of the caller's schedules from now (the ticks the pause skipped are not run)."""
    scheduler, user = _scheduler(api, ctx)
    return await scheduler.resume(p.id, user)


from coinwire.api import position_methods, rule_set_methods  # noqa: E402, F401 - register their methods on import

METHOD_NAMES.extend(_REGISTRY)
