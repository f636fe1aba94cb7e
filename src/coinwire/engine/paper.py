"""Paper mode: a strategy trading on paper exchanges through the gateway, following their market data step by step.

The runtime is an `ExecutionListener` of the gateway: it sees each market message right
after the gateway's book took it, and sends the strategy's orders through
`Gateway.make_order` before the gateway takes the next message. Its funds are a wallet set
in the gateway's ledger, allocated from the run owner's account on each exchange when the
run starts and handed back when it ends, so its orders, fills and wallet lines are the
gateway's own: in the owner's accounts, persisted, notified to whoever may read them.

A run's funds may lie on several exchanges (`funds`: exchange -> currency -> amount), as a
seed wallet set lists wallets on several exchanges: the run then follows all of them and
each of its orders names the exchange it goes to (the first one unless the strategy says).

The run starts on the first market message once every book of its exchanges is synced, and
ends when asked to stop, at `end`, or when the strategy raises (the run is then `failed`).

Warm-up (engine/warmup.py): `open()` reads what history the strategy's series need (a
declaration pass of its `on_start`), loads it from the run's `HistorySource`s, and refuses a
`required` warm-up that came up short with `warmup_unavailable`, before anything is funded or
followed; at the start the candles are put under the run's series and the run log says what
came from where.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import ATTO_DECIMALS, to_units
from coinwire.core.orders import Fill, Order, OrderRequest, OrderType
from coinwire.core.rollup import OHLCV
from coinwire.core.wallets import WalletSet
from coinwire.engine.order_args import request_fields, resolve_size
from coinwire.engine.rules import RuleRunner, run_rule_sets
from coinwire.engine.runtime import StrategyFailed
from coinwire.engine.strategy import Strategy, StrategyParams
from coinwire.engine.stream import StreamMarket, StreamRuntime
from coinwire.engine.warmup import HistorySource, Loaded, Need, as_dict, describe, load_warmup, parse_policy, unavailable
from coinwire.messages import Markets, Message, OrderView
from coinwire.venues.hosted import HostedVenue

__all__ = ["END_REACHED", "RECORDING_ENDED", "PaperRuntime", "RULE_SAMPLE_NS", "declared_needs"]

_NS = 1_000_000_000
RULE_SAMPLE_NS = _NS  # a paper run's rule sets see the portfolio at most once a second of market time (the tracker's pace)
END_REACHED = "the run reached its end time"
RECORDING_ENDED = "the recording ended"  # a replay feed has no more messages


class OrderDesk(Protocol):
    """What a paper run needs of the gateway it trades through (services.gateway.Gateway is it; the engine sits below it)."""

    ledger: Ledger
    listeners: list[Any]  # followers of every market message and execution, in this process

    @property
    def venues(self) -> Mapping[str, HostedVenue]: ...

    def exchange(self, name: object) -> HostedVenue: ...

    async def make_order(self, request: OrderRequest) -> OrderView: ...

    async def cancel_order(self, *, order_id: int | None, client_oid: str | None, exchange: str | None) -> OrderView: ...

    async def create_wallet_set(self, *, run_id: str | None, description: str, allocations: list[tuple[str, str, int]],
                                owner_id: int | None = None) -> WalletSet: ...

    async def deactivate_wallet_set(self, set_id: int) -> WalletSet: ...

    async def set_leverage(self, *, account_id: int, exchange: str, symbol: str, leverage: object) -> Any: ...


class PaperRuntime(StreamRuntime):
    """One paper run on exchanges of the gateway. `open()` checks and attaches; `run()` returns when it ends.

    `funds`: exchange -> currency -> amount the run is given there (the first exchange is its
    default); `owner_id`: the user who started it, whose own account on each exchange funds it
    (None: the platform's own accounts, as for a CLI session). `funded(wallet_set_id)` is called
    once the funds are taken, which may be after `open()` when an exchange was not ready yet
    (the API records there that the set is the owner's).
    """

    def __init__(self, run_id: str, gateway: OrderDesk, funds: Mapping[str, Mapping[str, str]], end: int | None = None,
                 owner_id: int | None = None, funded: Callable[[int], None] | None = None,
                 history: Sequence[HistorySource] = (), warmup: str = "best_effort",
                 clock: Callable[[], int] = time.time_ns, rules: Sequence[Mapping[str, Any]] = ()) -> None:
        """`history`: where warm-up candles come from, tried in order; `warmup`: `best_effort` or `required`;
        `clock`: wall time (ns), the instant the warm-up's candles end at (they are loaded in `open()`);
        `rules`: rule sets scoped to the run (JSON form), sampled after market messages at most once per `RULE_SAMPLE_NS`."""
        if not funds:
            raise InvalidInput("missing_balance", "a paper run needs funds, e.g. demo:USDT=1000")
        super().__init__(run_id, {exchange: gateway.exchange(exchange).markets for exchange in funds})  # unknown exchange: NotFound
        self.gateway = gateway
        self.owner_id = owner_id
        self._on_funded = funded
        self.allocations: list[tuple[str, str, int]] = []
        for exchange, balances in funds.items():
            for currency, amount in sorted(balances.items()):
                atto = to_units(amount, ATTO_DECIMALS, f"balance of {currency}")
                if atto <= 0:
                    raise InvalidInput("invalid_balance", f"the balance of {currency} on {exchange} must be positive, got {amount}")
                self.allocations.append((exchange, currency.upper(), atto))
        if not self.allocations:
            raise InvalidInput("missing_balance", f"a paper run needs funds, e.g. {self.exchange}:USDT=1000")
        self.end_at = None if end is None else end * _NS
        self.funded = False
        self.done = asyncio.Event()
        # one strategy turn at a time: a market message and the orders it led to, the input served between
        # messages, the run's end; so a stop never falls between two orders one callback sent
        self.turn = asyncio.Lock()
        self.failure: StrategyFailed | None = None
        self.error: CoinwireError | None = None  # the run could not go on (funds refused at start, ...)
        self.stop_reason: str | None = None
        self._cls: type[Strategy] | None = None
        self._params: StrategyParams = {}
        self.strategy: Strategy | None = None
        self.history = tuple(history)
        self.warmup = parse_policy(warmup)
        if rules:
            self.rules = RuleRunner(run_rule_sets(rules), self, interval_ns=RULE_SAMPLE_NS)
        self._clock = clock
        self.warm: list[Loaded] = []  # what `open()` loaded, put under the series at the start

    def set_leverage(self, symbol: str, leverage: int, exchange: str) -> None:
        """The gateway's ledger is the exchange's: the leverage changes through the gateway (and its store), sent in order with
        the run's orders, so an order the strategy places next is sized and margined at it. A refusal is logged."""
        inst = self.instrument(symbol, exchange)
        if inst is None or not inst.is_perpetual:
            raise InvalidInput("not_a_perpetual", f"{symbol} on {exchange} is not a perpetual market: leverage applies to perpetuals")
        self.hub.record(self._now, "out", "venue.set_leverage", {"exchange": exchange, "symbol": symbol, "leverage": leverage})
        self.commands.append(("leverage", None, (exchange, symbol, leverage)))  # type: ignore[arg-type]

    # --- life ------------------------------------------------------------------------------------------
    async def open(self, strategy_cls: type[Strategy], params: StrategyParams) -> None:
        """Take the run's funds now if the exchange is up (refusals raise here), then follow the gateway."""
        self._cls, self._params = strategy_cls, params
        await self._load_warmup(strategy_cls, params)
        if self._can_fund():
            await self._fund()
        self.gateway.listeners.append(self)

    async def _load_warmup(self, strategy_cls: type[Strategy], params: StrategyParams) -> None:
        """The history the strategy's series need, loaded now; a `required` warm-up that is short refuses the run here."""
        needs = declared_needs(strategy_cls, params, self.run_id, self.venues)
        if not needs:
            return
        self.warm = await load_warmup(self.history, self.exchange, needs, self._clock() // _NS)
        if self.warmup == "required":
            refusal = unavailable(self.exchange, self.warm)
            if refusal is not None:
                raise refusal

    def _can_fund(self) -> bool:
        """Every exchange knows its markets and its wallets hold what it really has (a live one has read its account)."""
        return all(self.venues[name] and self.gateway.venues[name].funds_known for name in self.exchanges)

    async def _fund(self) -> None:
        """One wallet set over every exchange of the run, each exchange's share from the owner's own account there."""
        wallet_set = await self.gateway.create_wallet_set(run_id=self.run_id, description=f"paper run {self.run_id}",
                                                          allocations=self.allocations, owner_id=self.owner_id)
        quote = next(iter(self.venue_markets.values())).instrument.quote
        self.use_funds(self.exchange, self.gateway.ledger, wallet_set.id, quote)
        self.funded = True
        if self._on_funded is not None:
            self._on_funded(wallet_set.id)

    def halt(self, reason: str) -> None:
        """A rule set's `stop_run`: the run ends as a stop on request does (`on_stop`, open orders cancelled, funds handed back)."""
        self.note_stop(reason)
        self.request_stop(reason)

    def request_stop(self, reason: str = "stopped on request") -> None:
        self.stop_reason = reason
        self.done.set()

    async def run(self) -> Strategy | None:
        """Wait for the end and for the turn under way; then `on_stop`, its orders, open orders cancelled and the funds handed back."""
        await self.done.wait()
        async with self.turn:
            try:
                if self.strategy is not None and self.failure is None:
                    try:
                        self.call("on_stop", self.strategy.on_stop)
                        await self.drain()
                    except StrategyFailed as failure:
                        self.failure = failure
                if self.funded:
                    await self.gateway.deactivate_wallet_set(self.wallet_set_id)  # cancels open orders, funds go back
            finally:
                if self in self.gateway.listeners:
                    self.gateway.listeners.remove(self)
                self.end_ns = self._now
                self.hub.record(self._now, "in", "run.stop", {"reason": self.stop_reason} if self.stop_reason else {})
        return self.strategy

    # --- the gateway's listener ---------------------------------------------------------------------------
    async def on_market(self, message: Message) -> None:
        if self.done.is_set() or message.exchange not in self.venues:  # type: ignore[union-attr]
            return
        async with self.turn:
            if not self.done.is_set():  # it may have ended while this message waited for its turn
                await self._take(message)

    async def _take(self, message: Message) -> None:
        """One market message: fund and start when every exchange is ready, then the strategy's turn and its orders."""
        try:
            if not self.funded and self._can_fund():
                await self._fund()
            if isinstance(message, Markets):
                return
            if not self.started:
                if not self.funded or not all(m.synced for markets in self.venues.values() for m in markets.values()):
                    return
                self._now = message.ts  # type: ignore[union-attr]
                self._start()
            if self.end_at is not None and message.ts >= self.end_at:  # type: ignore[union-attr]
                self.request_stop(END_REACHED)
                return
            self.deliver_market(message)
            await self.drain()
            if self.rules is not None:
                self.rules.sample_now(self._now)
                await self.drain()
        except StrategyFailed as failure:
            self.failure = failure
            self.done.set()
        except CoinwireError as exc:
            self.error = exc
            self.done.set()

    def on_execution(self, orders: list[Order], fills: list[Fill]) -> None:
        if not self.funded:
            return
        for order in orders:
            if order.wallet_set_id != self.wallet_set_id or order.owner_id is not None:
                continue  # the run's orders are the platform's: a user's order with one of its client_oids is not one
            ticket = self.tickets.get(order.client_oid)
            if ticket is None and order.parent_id in self.ticket_of:
                ticket = self.exit_ticket(order)  # an exit the gateway placed for one of the strategy's entries
            if ticket is None:
                continue  # an order of this wallet set that the strategy did not send
            if ticket.order_id is None:
                ticket.order_id = order.id
                self.ticket_of[order.id] = ticket
            try:
                self.record_fills(order, [f for f in fills if f.order_id == order.id], self.venues[order.exchange][order.symbol].instrument)
            except StrategyFailed as failure:
                if self.failure is None:
                    self.failure = failure
                self.done.set()

    def _start(self) -> None:
        assert self._cls is not None
        self.strategy = self.start_strategy(self._cls, self._params)
        self._seed_warmup(self.strategy)

    def _seed_warmup(self, strategy: Strategy) -> None:
        """Put the loaded history under the series `on_start` declared, and say in the run log what came from where."""
        loaded = {(item.need.symbol, item.need.timeframe): item for item in self.warm}
        seen: list[dict[str, object]] = []
        for need in self.warm_needs(strategy):
            item = loaded.get((need.symbol, need.timeframe))
            if item is None:
                item = Loaded(need, _nothing(), "", "not loaded: the series was not declared when the run was opened")
            elif item.need.bars > need.bars:
                item = item._replace(need=need, candles=type(item.candles)._make(col[-need.bars:] for col in item.candles))
            taken = self.seed_history(need.symbol, need.timeframe, item.candles)
            if taken != item.taken:
                item = item._replace(candles=type(item.candles)._make(col[:taken] for col in item.candles))
            self.log("info" if item.complete else "warning", describe(item))
            seen.append(as_dict(item))
        if seen:
            self.hub.record(self._now, "in", "run.warmup", {"policy": self.warmup, "series": seen})

    # --- the venue: the gateway -----------------------------------------------------------------------------
    async def drain(self) -> None:
        """Send what the strategy asked for, in order, through the gateway (each answered before the next)."""
        while self.commands and self.failure is None:
            for kind, ticket, payload in self.take_commands():
                try:
                    if kind == "leverage":
                        exchange, symbol, leverage = payload
                        await self.gateway.set_leverage(account_id=self.account_of(exchange), exchange=exchange, symbol=symbol,
                                                        leverage=leverage)
                        continue
                    if kind == "cancel":
                        if ticket.order_id is not None and ticket.status in ("pending", "untriggered", "triggered", "open"):
                            await self.gateway.cancel_order(order_id=ticket.order_id, client_oid=None, exchange=ticket.exchange)
                        continue
                    symbol, args = payload
                    market = self.venues[ticket.exchange][symbol]
                    if market.instrument.is_perpetual:
                        size, budget = self.perp_size(market.instrument, market.engine, args), None
                    else:
                        size, budget = resolve_size(args, market.engine, self.ledger, ticket.exchange, self.wallet_set_id)
                    if size <= 0:
                        self.nothing_to_trade(ticket)
                        continue
                    extra = {} if args.cond is None and args.exits is None else request_fields(args)
                    await self.gateway.make_order(OrderRequest(
                        exchange=ticket.exchange, instrument=market.instrument, side=args.side, type=args.type, size=size,
                        limit=args.limit, cancel_after=args.cancel_after, client_oid=ticket.client_oid,
                        wallet_set_id=self.wallet_set_id, run_id=self.run_id, budget=budget,
                        funds=args.funds if args.funds is not None and args.type is OrderType.MARKET else 0,  # the venue sizes it
                        reduce_only=args.reduce_only, **extra))
                except CoinwireError as exc:
                    if kind == "leverage":
                        self.log("error", f"set_leverage refused: {exc.code}: {exc.message}")
                    elif kind == "order" and ticket.order_id is None:
                        self.refused(ticket, exc)
                    # a cancel that lost the race with a fill: the order is done already, nothing to undo




def declared_needs(strategy_cls: type[Strategy], params: StrategyParams, run_id: str,
                   venues: Mapping[str, Mapping[str, StreamMarket]]) -> list[Need]:
    """The series a strategy's `on_start` declares and the history each needs, read from a run of it that trades nothing.

    Why a declaration pass: indicators and windows are declared in `on_start`, and a run must
    know them before it starts to refuse a `required` warm-up cleanly. The pass runs on a
    runtime of its own (its orders are never sent, its log and components are dropped); a
    strategy whose `on_start` raises here gets what it declared before raising, and its real
    run raises again at its start and fails as it always has.
    """
    probe = _Declaring(f"{run_id}-declare", venues)
    strategy = probe.attach(strategy_cls, params)
    try:
        probe.call("on_start", strategy.on_start)
    except StrategyFailed:
        pass
    return probe.warm_needs(strategy)


class _Declaring(StreamRuntime):
    """The declaration pass's runtime: an exchange whose markets are not known yet (its feed has not said) takes any symbol.

    A run may be opened before its exchange's feed has listed its markets (a CLI session opens
    first, then starts the feeds); its series are declared all the same, and a symbol the
    exchange turns out not to have fails the real run at its start, as it always did.
    """

    def _market(self, symbol: str, exchange: str | None = None) -> StreamMarket:
        if not self.venues[self.venue(exchange)]:
            return None  # type: ignore[return-value]  # only checked for existence while declaring
        return super()._market(symbol, exchange)


def _nothing() -> OHLCV:
    return OHLCV(np.empty(0, np.int64), *(np.empty(0, np.float64) for _ in range(5)))
