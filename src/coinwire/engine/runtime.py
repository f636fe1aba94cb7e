"""What every mode's runtime shares: the hub, the run log, UI components, tickets and safe callbacks.

A runtime is the strategy's world. The backtest runtime drives a simulated clock over stored
candles and a simulated venue; the paper runtime follows a feed on the wall clock and trades
through the gateway. Both route every message through the run's `MessageHub`, so the audit
trail reads the same in every mode.
"""

from __future__ import annotations

import copy
import math
import re
import traceback
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np

from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO_DECIMALS, units_to_str
from coinwire.core.orders import Fill, Order, PositionSide, Side
from coinwire.core.outside_signals import check_provider
from coinwire.core.perp_execution import PerpStep, available_margin, set_leverage
from coinwire.core.positions import entry_price, unrealised_pnl
from coinwire.engine.hub import MessageHub
from coinwire.engine.order_args import OrderArgs, leveraged_size
from coinwire.engine.perp_report import PerpRecord
from coinwire.engine.strategy import Indicator, OrderTicket, PositionView, SignalValue, Strategy, StrategyParams, params_json
from coinwire.engine.warmup import window

__all__ = ["SIGNAL_CALL", "Runtime", "RunStopped", "StrategyFailed", "LogLine", "Component", "MAX_SCALE"]

MAX_SCALE = Decimal(10)  # the largest factor `scale_orders` takes (core.rules' bound on scale_orders)


class RunStopped(BaseException):
    """Raised at an event boundary when a run is asked to stop; strategy code cannot swallow it (not an Exception)."""

_SIGNAL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class StrategyFailed(Exception):
    """The strategy raised: its run stops and is marked failed; the traceback is in the run log."""

    def __init__(self, where: str, error: BaseException) -> None:
        self.where = where
        self.error = error
        self.traceback = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        super().__init__(f"strategy failed in {where}: {type(error).__name__}: {error}")


LogLine = tuple[int, str, str]  # (ts ns, level, message)


class Component:
    """A UI component of a run: a JSON spec (type, title, fields...) plus tabular data rows."""

    __slots__ = ("id", "spec", "data", "version")

    def __init__(self, component_id: str, spec: dict[str, Any], data: list[list[Any]]) -> None:
        self.id = component_id
        self.spec = spec
        self.data = data
        self.version = 1

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "spec": self.spec, "data": self.data, "version": self.version}


_NS = 1_000_000_000
SIGNAL_CALL = "signal "  # what a strategy failure says it was in: `signal tradingview`
_LIVE = frozenset({"pending", "untriggered", "triggered", "open"})  # a ticket's states before it is done


class Runtime:
    """Base of the mode runtimes; subclasses provide the clock, data and venue.

    The run's funds are one wallet set on a ledger: the backtest's own, or the gateway's in
    paper mode. What the runtime does with an order's fills and state changes (tickets, the
    hub, `on_fill`/`on_order`, the balance points of the report) is the same in every mode.

    A run trades on `exchanges` (set by the subclass); the first is `exchange`, the one a
    strategy means when it names none. Backtests have one; a paper run whose wallet set holds
    funds on several exchanges has them all, and `venue()` is where a name a strategy gives is
    checked against them.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.hub = MessageHub()
        self.logs: list[LogLine] = []
        self.components: dict[str, Component] = {}
        self.tickets: dict[str, OrderTicket] = {}
        self._oid_seq = 0
        self._awaiting: dict[str, list[int]] = {}  # client_oid -> seqs of its calls the venue has not answered yet, oldest first
        # funds and what happened to them (set by the subclass with `use_funds`)
        self.exchange = ""
        self.exchanges: list[str] = []  # every exchange the run trades on, `exchange` first
        self.ledger = Ledger()
        self.wallet_set_id = 0
        self.quote = ""
        self.fills: list[Fill] = []
        self.ticket_of: dict[int, OrderTicket] = {}
        self.balance_points: list[tuple[int, dict[str, int]]] = []
        self.events = 0  # callbacks delivered
        self._strategy: Strategy | None = None
        self._wants_fills = self._wants_orders = False
        self.start_ns = self.end_ns = 0  # the run's span on its clock (set by the subclass; end 0: still running)
        self.windows: dict[tuple[str, str], int] = {}  # (symbol, timeframe) -> candles of history declared by `warm_up`
        self.perp = PerpRecord()  # perpetuals: funding, liquidations and positions over the run (empty on spot)
        # rule sets' controls (engine/rules.py, or the controller through RunManager.control)
        self.entries_paused = False
        self.order_scale = Decimal(1)
        self.halted: str | None = None  # why the strategy gets no more callbacks (a rule set's stop_run), or None
        self.rules: Any = None  # the run's RuleRunner (engine/rules.py) when rule sets are attached
        self.signals: list[tuple[int, str, SignalValue]] = []  # (ns, name, value): each a change of its name's series
        self.signal_sink: Callable[[str, SignalValue, int], None] | None = None  # paper/live: store and publish (services)
        self._last_signals: dict[str, SignalValue] = {}
        # outside signals (Strategy.on_signal): provider -> the strategy's callbacks; a backtest's recorded ones to replay
        self.signal_callbacks: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self.recorded_signals: list[dict[str, Any]] = []

    def use_funds(self, exchange: str, ledger: Ledger, wallet_set_id: int, quote: str) -> None:
        self.exchange = exchange
        self.ledger = ledger
        self.wallet_set_id = wallet_set_id
        self.quote = quote
        self.balance_points = [(self.now_ns(), self.totals())]

    def attach(self, strategy_cls: type[Strategy], params: StrategyParams) -> Strategy:
        """Create the strategy on this runtime; callbacks it does not override are not delivered (the hub still records)."""
        strategy = strategy_cls(self, params)
        self._strategy = strategy
        self._wants_fills = strategy_cls.on_fill is not Strategy.on_fill
        self._wants_orders = strategy_cls.on_order is not Strategy.on_order
        return strategy

    def start_strategy(self, strategy_cls: type[Strategy], params: StrategyParams) -> Strategy:
        """Create the strategy, record `run.start` and call its `on_start` at the current clock."""
        strategy = self.attach(strategy_cls, params)
        self.hub.record(self.now_ns(), "in", "run.start", {"strategy": strategy_cls.__name__, "params": params_json(params)})
        self.call("on_start", strategy.on_start)
        return strategy

    def deliver(self, where: str, callback: Callable[..., Any], *args: Any) -> None:
        if self.halted is not None:
            return  # stopped by a rule set: the run's own orders still settle, the strategy hears nothing more
        self.events += 1
        self.call(where, callback, *args)

    # --- controls: pause, scale, halt ---------------------------------------------------------
    def pause_entries(self, paused: bool) -> None:
        """Refuse (or accept again) the strategy's entries: spot buys, perpetual orders that are not reduce-only.

        Why a pause and not a stop: after a rule sold everything the strategy keeps running
        (its exits, its log, its UI) but cannot buy back what the rule sold. The strategy's
        hub hears `controller.pause` / `controller.resume`.
        """
        if paused == self.entries_paused:
            return
        self.entries_paused = paused
        self.hub.record(self.now_ns(), "in", "controller.pause" if paused else "controller.resume", {})

    def scale_orders(self, factor: Decimal) -> None:
        """Multiply the size (or funds) of the strategy's entries from now on by `factor` (0 < factor <= 10; 1 undoes it).

        The factor replaces the previous one rather than compounding, so a command done twice
        does the same as once. The strategy's hub hears `controller.scale`.
        """
        factor = Decimal(factor)
        if not (0 < factor <= MAX_SCALE):
            raise InvalidInput("out_of_range", f"a scale factor is above 0 and at most {MAX_SCALE}, got {factor}")
        self.order_scale = factor
        self.hub.record(self.now_ns(), "in", "controller.scale", {"factor": str(factor)})

    def halt(self, reason: str) -> None:
        """Stop the strategy for good (a rule set's `stop_run`): no more callbacks; the mode ends the run as it can."""
        if self.halted is None:
            self.halted = reason
            self.note_stop(reason)

    def note_stop(self, reason: str) -> None:
        """The hub and the run log say why the run stops (a rule set's `stop_run`)."""
        self.hub.record(self.now_ns(), "in", "controller.stop", {"reason": reason})
        self.logs.append((self.now_ns(), "warning", reason))

    def place_order(self, side: str, symbol: str, *, exchange: str, size: Any, funds: Any, limit: Any, type: str | None,
                    cancel_after: int, **conditional: Any) -> OrderTicket:
        """A strategy's order: refused while entries are paused, scaled by `scale_orders`, then `submit_order`.

        A rule's own orders (a close_all's sells) call `submit_order` directly: they are neither
        paused nor scaled.
        """
        inst = self.instrument(symbol, exchange)
        entry = inst is not None and (not conditional.get("reduce_only") if inst.is_perpetual else side == "buy")
        if entry and self.entries_paused:
            return self._refuse_entry(side, symbol, exchange, type or ("market" if limit is None else "limit"),
                                      "entries_paused: a rule set paused this run's entries")
        if entry and self.order_scale != 1 and inst is not None:
            scaled = self._scaled(inst, side, exchange, size, funds)
            if scaled is None:
                return self._refuse_entry(side, symbol, exchange, type or ("market" if limit is None else "limit"),
                                          f"entries_scaled: scaled by {self.order_scale} the order is below one step of {symbol}")
            size, funds = scaled
        return self.submit_order(side, symbol, exchange=exchange, size=size, funds=funds, limit=limit, type=type,
                                 cancel_after=cancel_after, **conditional)

    def _refuse_entry(self, side: str, symbol: str, exchange: str, kind: str, error: str) -> OrderTicket:
        ticket = self.new_ticket(symbol, side, exchange, kind)
        self.order_call(self.now_ns(), "venue.make_order", {"client_oid": ticket.client_oid, "exchange": exchange,
                                                            "symbol": symbol, "side": side})
        self.finish_unsent(ticket, "rejected", error)
        return ticket

    def _scaled(self, inst: Instrument, side: str, exchange: str, size: Any, funds: Any) -> tuple[Any, Any] | None:
        """(size, funds) times the scale; None when that leaves nothing to trade. A buy of all the quote spends its share."""
        factor = self.order_scale
        if size is not None:
            units = int((_decimal(size) * factor).scaleb(inst.size_decimals))
            units -= units % inst.step
            return (Decimal(units).scaleb(-inst.size_decimals), None) if units > 0 else None
        if funds is not None:
            atto = int((_decimal(funds) * factor).scaleb(ATTO_DECIMALS))
            return (None, Decimal(atto).scaleb(-ATTO_DECIMALS)) if atto > 0 else None
        if side == "buy" and not inst.is_perpetual and factor < 1:  # all the available quote: that much of it
            atto = int((self.balance(inst.quote, exchange, available=True) * factor).scaleb(ATTO_DECIMALS))
            return (None, Decimal(atto).scaleb(-ATTO_DECIMALS)) if atto > 0 else None
        return None, None

    # --- the clock (subclasses) ---------------------------------------------------------------
    def now_ns(self) -> int:
        raise NotImplementedError

    # --- log, components, input -------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        if level not in ("debug", "info", "warning", "error"):
            raise InvalidInput("invalid_log_level", f"log level must be debug, info, warning or error, got {level!r}")
        ts = self.now_ns()
        self.logs.append((ts, level, str(message)))
        self.hub.record(ts, "out", "strategy.log", {"level": level, "message": str(message)})

    def signal(self, name: str, value: SignalValue) -> bool:
        """Record a named signal unless it equals the last one of that name (the de-duplication); True when recorded."""
        if not isinstance(name, str) or not _SIGNAL_NAME.fullmatch(name):
            raise InvalidInput("invalid_signal", f"a signal name is 1-64 letters, digits, '_' or '-', got {name!r}")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InvalidInput("invalid_signal", f"a signal value is a string, number, boolean or null, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput("invalid_signal", f"a signal value must be finite, got {value!r}")
        if name in self._last_signals and self._last_signals[name] == value and type(self._last_signals[name]) is type(value):
            return False
        self._last_signals[name] = value
        ts = self.now_ns()
        self.signals.append((ts, name, value))
        self.hub.record(ts, "out", "strategy.signal", {"name": name, "value": value})
        if self.signal_sink is not None:
            self.signal_sink(name, value, ts)
        return True

    def set_component(self, component_id: str, spec: dict[str, Any], data: list[list[Any]] | None) -> None:
        _check_component(component_id, spec, data)
        previous = self.components.get(component_id)
        component = Component(component_id, dict(spec), [list(row) for row in data or []])
        if previous is not None:
            component.version = previous.version + 1
        self.components[component_id] = component
        self.hub.record(self.now_ns(), "out", "ui.component",
                        {"id": component_id, "version": component.version, "spec": component.spec, "rows": len(component.data)})

    def update_component(self, component_id: str, spec: dict[str, Any] | None, data: list[list[Any]] | None) -> None:
        component = self.components.get(component_id)
        if component is None:
            raise InvalidInput("unknown_component", f"no component {component_id!r}; create it with component() first")
        self.set_component(component_id, {**component.spec, **(spec or {})}, data if data is not None else component.data)

    def deliver_input(self, strategy: Any, component_id: str, value: Any) -> None:
        """User input posted to a component reaches the strategy as a message."""
        if component_id not in self.components:
            raise InvalidInput("unknown_component", f"run {self.run_id} has no component {component_id!r}")
        self.hub.record(self.now_ns(), "in", "ui.input", {"id": component_id, "value": value})
        self.call("on_input", strategy.on_input, component_id, value)

    def deliver_step(self, strategy: Any, name: str) -> None:
        """A scheduled step (services.scheduler's `strategy_step`) reaches the strategy as a message, then `on_step`."""
        self.hub.record(self.now_ns(), "in", "schedule.step", {"name": name})
        self.call("on_step", strategy.on_step, name)

    def subscribe_signal(self, provider: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """`Strategy.on_signal`: from now on the run is subscribed to `provider`."""
        if not callable(callback):
            raise InvalidInput("invalid_callback", "on_signal needs a callback: self.on_signal(provider, self.handler)")
        self.signal_callbacks.setdefault(check_provider(provider), []).append(callback)

    def deliver_outside_signal(self, signal: dict[str, Any]) -> bool:
        """An outside signal (core.outside_signals' normalised form) reaches the hub as `<provider>.<method>`, then each callback.

        False (nothing recorded) when the strategy did not subscribe to its provider. The callback's
        `ts` is the run's clock; each callback gets its own copy, so one cannot change another's.
        """
        callbacks = self.signal_callbacks.get(signal["provider"])
        if not callbacks:
            return False
        now = self.now_ns()
        self.hub.record(now, "in", f"{signal['provider']}.{signal['method']}", signal["params"])
        for callback in callbacks:
            view = {"provider": signal["provider"], "method": signal["method"], "ts": now, "params": copy.deepcopy(signal["params"])}
            self.deliver(f"{SIGNAL_CALL}{signal['provider']}", callback, view)
        return True

    # --- callbacks ------------------------------------------------------------------------------
    def call(self, where: str, callback: Callable[..., Any], *args: Any) -> Any:
        """Run strategy code; anything it raises becomes StrategyFailed (this run only)."""
        try:
            return callback(*args)
        except StrategyFailed:
            raise
        except Exception as exc:  # a bug, or a refusal (CoinwireError) the strategy did not handle
            raise StrategyFailed(where, exc) from exc

    def venue(self, exchange: str | None) -> str:
        """The exchange a strategy means: the one it named if the run trades there, else the run's first."""
        if exchange is None:
            return self.exchange
        if exchange not in self.exchanges:
            raise NotFound("unknown_exchange", f"this run trades on {', '.join(self.exchanges)}, not {exchange}", exchange=exchange)
        return exchange

    # --- orders: shared bookkeeping --------------------------------------------------------------
    def new_ticket(self, symbol: str, side: str, exchange: str, type: str = "market") -> OrderTicket:
        self._oid_seq += 1
        ticket = OrderTicket(f"{self.run_id[:12]}-{self._oid_seq}", symbol, side, exchange, type)
        self.tickets[ticket.client_oid] = ticket
        return ticket

    def order_call(self, ts: int, method: str, params: dict[str, Any]) -> int:
        """Record a call to the venue about the order `params["client_oid"]` (make or cancel): the venue's next `venue.order`
        for that order answers it (`reply_to`), oldest call first."""
        seq = self.hub.record(ts, "out", method, params)
        self._awaiting.setdefault(params["client_oid"], []).append(seq)
        return seq

    def _answered(self, client_oid: str) -> int | None:
        """The seq of the oldest unanswered call about `client_oid`, now answered; None for an update nobody asked for."""
        waiting = self._awaiting.get(client_oid)
        if not waiting:
            return None
        seq = waiting.pop(0)
        if not waiting:
            del self._awaiting[client_oid]
        return seq

    def exit_ticket(self, order: Order) -> OrderTicket:
        """The ticket of an exit the venue placed for an entry (a bracket child): the strategy never asked for it by itself."""
        parent = self.ticket_of.get(order.parent_id)
        ticket = OrderTicket(order.client_oid, order.symbol, order.side._value_, order.exchange, order.type._value_, parent)
        self.tickets[ticket.client_oid] = ticket
        if parent is not None:
            parent.exits.append(ticket)
        return ticket

    def open_orders(self) -> list[OrderTicket]:
        return [t for t in self.tickets.values() if t.status in _LIVE]

    def finish_unsent(self, ticket: OrderTicket, status: str, error: str | None) -> None:
        """An order that never reached the venue: refused, cancelled or expired before it got there."""
        ticket.status = status
        ticket.error = error
        self.hub.record(self.now_ns(), "in", "venue.order", {"client_oid": ticket.client_oid, "status": status, "error": error},
                        self._answered(ticket.client_oid))
        if self._wants_orders:
            self.deliver("on_order", self._strategy.on_order, ticket)  # type: ignore[union-attr]

    def record_fills(self, order: Order, fills: list[Fill], inst: Instrument) -> None:
        """New fills of one of this run's orders, stamped with the run's clock, then its state."""
        ticket = self.ticket_of[order.id]
        now = self.now_ns()
        for fill in fills:
            if fill.ts != now:  # the gateway stamps its own clock; the run reads time by its own
                fill = msgspec.structs.replace(fill, ts=now)
            self.fills.append(fill)
            view = {"client_oid": order.client_oid, "exchange": order.exchange, "symbol": order.symbol, "side": fill.side._value_,
                    "price": inst.price_str(fill.price),
                    "size": inst.size_str(fill.size), "fee": units_to_str(fill.fee, ATTO_DECIMALS),
                    "fee_currency": fill.fee_currency or inst.quote, "time": now // _NS}
            self.hub.record(now, "in", "venue.fill", view)
            if self._wants_fills:
                self.deliver("on_fill", self._strategy.on_fill, view)  # type: ignore[union-attr]
        if fills:
            self.balance_points.append((now, self.totals()))
            ticket.filled = Decimal(order.filled_size).scaleb(-inst.size_decimals)
        self.order_update(order)

    def order_update(self, order: Order) -> None:
        ticket = self.ticket_of[order.id]
        status = order.done_reason._value_ if order.is_done and order.done_reason else order.status._value_
        if order.stop_price:  # a conditional order: its level (a trailing stop's moves) and whether it fired
            inst = self.instrument(order.symbol, order.exchange)
            level = Decimal(inst.price_str(order.stop_price)) if inst is not None else None
            fired = order.triggered_at is not None
            if status == ticket.status and level == ticket.stop_price and fired == ticket.triggered:
                return
            ticket.stop_price, ticket.triggered = level, fired
        elif status == ticket.status:
            return
        ticket.status = status
        message: dict[str, Any] = {"client_oid": ticket.client_oid, "status": status, "filled": str(ticket.filled)}
        if ticket.stop_price is not None:
            message["stop_price"] = str(ticket.stop_price)
            message["trigger_state"] = ticket.trigger_state
        self.hub.record(self.now_ns(), "in", "venue.order", message, self._answered(ticket.client_oid))
        if self._wants_orders:
            self.deliver("on_order", self._strategy.on_order, ticket)  # type: ignore[union-attr]

    # --- funds ------------------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        """What the run holds per currency, summed over its exchanges (ATTO)."""
        out: dict[str, int] = {}
        for w in self.ledger.wallets(self.wallet_set_id):
            out[w.currency] = out.get(w.currency, 0) + w.balance
        return out

    def balance(self, currency: str, exchange: str | None, available: bool) -> Decimal:
        """On one exchange of the run, or (None) summed over all of them."""
        amount = 0
        for name in self.exchanges if exchange is None else (self.venue(exchange),):
            try:
                wallet = self.ledger.wallet(name, currency.upper(), self.wallet_set_id)
            except CoinwireError:
                continue  # a currency this exchange does not trade: none of it here
            amount += wallet.available if available else wallet.balance
        return Decimal(amount).scaleb(-ATTO_DECIMALS)

    def equity(self, currency: str | None) -> Decimal:
        quote = currency or self.quote
        total = Decimal(0)
        for cur, amount in self.totals().items():
            if cur == quote:
                total += Decimal(amount).scaleb(-ATTO_DECIMALS)
            elif amount:
                symbol = f"{cur}/{quote}"
                if self.instrument(symbol) is None:
                    raise NotFound("no_price_route", f"cannot value {cur} in {quote} in this run")
                total += Decimal(amount).scaleb(-ATTO_DECIMALS) * Decimal(repr(self.last_price(symbol)))
        for pos in self.ledger.positions.all():  # perpetuals: the open positions' unrealised PnL at the mark
            inst = self.instrument(pos.symbol, pos.exchange) if pos.size and pos.wallet_set_id == self.wallet_set_id else None
            if inst is not None and inst.settle == quote:
                total += Decimal(unrealised_pnl(pos, inst, self.mark_units(inst))).scaleb(-ATTO_DECIMALS)
        return total

    # --- positions ------------------------------------------------------------------------------
    def position(self, symbol: str, exchange: str | None) -> PositionView:
        """Spot: the base the run holds, as it always was; a perpetual: the run's position with its details (`perp_position`)."""
        inst = self.instrument(symbol, None if exchange is None else self.venue(exchange))
        if inst is not None and inst.is_perpetual:
            return self.perp_position(inst)
        held = self.balance(symbol.split("/")[0], exchange, available=False)
        return PositionView(held, side="long" if held > 0 else "flat")

    def perp_position(self, inst: Instrument) -> PositionView:
        """The run's one-way position in a perpetual, valued at the mark (`mark_units`), from the ledger's position book."""
        pos = self.ledger.positions.get(self.account_of(inst.exchange), inst.exchange, inst.symbol, PositionSide.BOTH,
                                        self.wallet_set_id)
        settings = self.ledger.positions.settings(self.account_of(inst.exchange), inst.exchange, inst.symbol, inst)
        if pos is None or pos.size == 0:
            return PositionView(Decimal(0), side="flat", leverage=settings.leverage, margin_mode=settings.margin_mode.value)
        mark = self.mark_units(inst)
        size = Decimal(pos.size).scaleb(-inst.size_decimals)
        liq = self.liquidation_units(inst, pos, mark)
        return PositionView(size, side="long" if pos.size > 0 else "short", entry=entry_price(pos, inst),
                            upnl=Decimal(unrealised_pnl(pos, inst, mark)).scaleb(-ATTO_DECIMALS),
                            liquidation_price=None if liq is None else Decimal(liq).scaleb(-inst.price_decimals),
                            leverage=pos.leverage, margin_mode=pos.margin_mode.value, position_side=pos.side.value)

    def account_of(self, exchange: str) -> int:
        """The account the run's wallet set trades on `exchange` (0 in a backtest's own ledger)."""
        return self.ledger.set_account(self.wallet_set_id, exchange) or 0

    def mark_units(self, inst: Instrument) -> int:
        """The perpetual's mark price in price units now (the last price unless the mode knows a mark)."""
        return round(Decimal(repr(self.last_price(inst.symbol, inst.exchange))).scaleb(inst.price_decimals))

    def liquidation_units(self, inst: Instrument, pos: Any, mark: int) -> int | None:
        """The position's liquidation price (None: none), against the run's margin balance."""
        return None

    def perp_size(self, inst: Instrument, engine: MatchingEngine, args: OrderArgs) -> int:
        """The size of a perpetual order as it reaches the venue: the one asked for; for a reduce-only order without one,
        the whole position it reduces (0: none); otherwise a new position's: leverage x available margin at the book's price."""
        if args.size is not None:
            return args.size
        account = self.account_of(inst.exchange)
        book = self.ledger.positions
        if args.reduce_only:
            pos = book.get(account, inst.exchange, inst.symbol, PositionSide.BOTH, self.wallet_set_id)
            closes = pos is not None and (pos.size > 0) == (args.side is Side.SELL)
            return abs(pos.size) if pos is not None and closes else 0
        leverage = book.settings(account, inst.exchange, inst.symbol, inst).leverage
        mark = self.mark_units(inst)
        available = available_margin(self.ledger, account, inst.exchange, inst.settle, self.wallet_set_id, {inst.symbol: mark})
        return leveraged_size(engine, args.side, available, leverage, mark)

    def set_leverage(self, symbol: str, leverage: int, exchange: str) -> None:
        """Set the leverage on the run's own ledger (a backtest's); a mode whose ledger is a venue's asks the venue instead."""
        inst = self.instrument(symbol, exchange)
        if inst is None or not inst.is_perpetual:
            raise InvalidInput("not_a_perpetual", f"{symbol} is not a perpetual in this run: leverage applies to perpetuals")
        self.hub.record(self.now_ns(), "out", "venue.set_leverage", {"symbol": symbol, "leverage": leverage})
        set_leverage(self.ledger, inst, self.account_of(exchange), leverage, self.now_ns(), mark=self.mark_units(inst))

    def on_perp(self, inst: Instrument, step: PerpStep, why: str) -> None:
        """A simulated venue's perpetual step (an order's fills, a funding time, a liquidation), for the report."""
        now = self.now_ns()
        self.perp.record(self, inst, step, why, now)
        if step.lines and not step.fills:  # a fill's balance point is `record_fills`'
            self.balance_points.append((now, self.totals()))

    def close_position(self, symbol: str, exchange: str) -> OrderTicket | None:
        """A reduce-only market order for the whole one-way position (None when flat)."""
        view = self.position(symbol, exchange)
        if view.side == "flat":
            return None
        return self.submit_order("sell" if view.side == "long" else "buy", symbol, exchange=exchange, size=view.size, funds=None,
                                 limit=None, type=None, cancel_after=0, reduce_only=True)

    def declare_window(self, symbol: str, timeframe: str, bars: int | None, seconds: int | None) -> None:
        """A strategy's `warm_up`: kept per series (the largest wins); a paper or live run loads it before its first event."""
        count = window(timeframe, bars, seconds)
        key = (symbol, timeframe)
        self.windows[key] = max(count, self.windows.get(key, 0))

    # --- subclasses ------------------------------------------------------------------------------
    def add_timer(self, delay_ns: int, callback: Callable[[], None], repeat: bool) -> None:
        raise NotImplementedError

    def candles(self, symbol: str, timeframe: str, count: int | None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def subscribe_candles(self, symbol: str, timeframe: str, callback: Callable[[dict[str, Any]], None]) -> None:
        raise NotImplementedError

    def subscribe(self, kind: str, symbol: str, callback: Callable[[dict[str, Any]], None], exchange: str) -> None:
        raise NotImplementedError

    def add_cross(self, a: Indicator, b: Indicator | float, above: Callable[[], None] | None, below: Callable[[], None] | None) -> None:
        raise NotImplementedError

    def submit_order(self, side: str, symbol: str, *, exchange: str, size: Any, funds: Any, limit: Any, type: str | None,
                     cancel_after: int, **conditional: Any) -> OrderTicket:
        """Send an order; `conditional` holds `order_args`' conditional fields and exits (stop_price, stop_loss, ...)."""
        raise NotImplementedError

    def cancel_order(self, ticket: OrderTicket) -> None:
        raise NotImplementedError

    def add_indicator(self, kind: Any, symbol: str, timeframe: str, args: tuple[Any, ...], source: str) -> Indicator:
        raise NotImplementedError

    def indicator_value(self, key: int, index: int) -> float:
        raise NotImplementedError

    def indicator_values(self, key: int) -> np.ndarray:
        raise NotImplementedError

    def instrument(self, symbol: str, exchange: str | None = None) -> Instrument | None:
        """The instrument of a market this run can trade (on `exchange`, else the run's first), or None."""
        raise NotImplementedError

    def last_price(self, symbol: str, exchange: str | None = None) -> float:
        raise NotImplementedError

    def report_markets(self) -> dict[str, Any]:
        """symbol -> an object with `instrument` and `series` (a `Series` of the candles the report values holdings at)."""
        raise NotImplementedError


def _decimal(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def _check_component(component_id: str, spec: dict[str, Any], data: list[list[Any]] | None) -> None:
    if not isinstance(component_id, str) or not component_id or len(component_id) > 64:
        raise InvalidInput("invalid_component", "a component id is a non-empty string of at most 64 characters")
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise InvalidInput("invalid_component", f"component {component_id!r} needs a spec object with a 'type'")
    if data is not None and not all(isinstance(row, (list, tuple)) for row in data):
        raise InvalidInput("invalid_component", f"component {component_id!r}: data is a list of rows (lists)")
