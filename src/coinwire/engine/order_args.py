"""A strategy's order arguments turned into exact venue units, the same way in every mode.

Plain orders carry `cond = None` and `exits = None`: conditional fields cost them one
attribute, never a parse. A conditional order's fields are in `Conditional`; exits a
strategy attaches to an entry (`stop_loss=`, `take_profit=`, `trailing=`) in `Exits`, whose
levels may be percentages of the entry's fill price and so are only known once it filled.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from coinwire.core.conditional import Bracket, encode_bracket
from coinwire.core.errors import InvalidInput
from coinwire.core.execution import max_limit_buy_size, size_for_funds
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.margin import max_open_size
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO_DECIMALS, to_units, units_to_str
from coinwire.core.orders import CLIENT_ORDER_TYPES, CONDITIONAL_TYPES, Order, OrderType, Side, TimeInForce, TriggerSource

__all__ = ["Conditional", "Exits", "OrderArgs", "grid_units", "leveraged_size", "order_args", "order_type", "parse_distance",
           "prepare_conditional", "request_fields", "resolve_size"]

_PPM = 1_000_000
_NS = 1_000_000_000


class Conditional:
    """A conditional order's own fields in venue units (see core.orders.Order for what each means)."""

    __slots__ = ("stop_price", "trigger", "trail_ppm", "trail_delta", "activation_price", "time_in_force", "expire_at",
                 "allow_immediate")

    def __init__(self, stop_price: int, trigger: TriggerSource, trail_ppm: int, trail_delta: int, activation_price: int,
                 time_in_force: TimeInForce, expire_at: int, allow_immediate: bool) -> None:
        self.stop_price = stop_price
        self.trigger = trigger
        self.trail_ppm = trail_ppm
        self.trail_delta = trail_delta
        self.activation_price = activation_price
        self.time_in_force = time_in_force
        self.expire_at = expire_at  # ns, 0: none
        self.allow_immediate = allow_immediate

    def view(self, inst: Instrument) -> dict[str, Any]:
        out: dict[str, Any] = {"trigger": self.trigger._value_, "time_in_force": self.time_in_force._value_}
        if self.stop_price:
            out["stop_price"] = inst.price_str(self.stop_price)
        if self.trail_ppm or self.trail_delta:
            out["trailing_delta"] = _distance_str(inst, self.trail_ppm, self.trail_delta)
        if self.activation_price:
            out["activation_price"] = inst.price_str(self.activation_price)
        if self.expire_at:
            out["expire_at"] = self.expire_at // _NS
        return out


class Exits:
    """The exits an entry asked for: a stop-loss (or a trailing stop) and a take-profit, placed once the entry filled.

    Each level is a price in units, or millionths of the entry's fill price (`"3%"` is
    30_000): a long's stop-loss 3% below its fill, its take-profit 6% above; a short's the
    mirror. Levels from percentages are rounded to the tick half-up (`core.conditional.level`, by the venue).
    """

    __slots__ = ("stop_loss", "stop_loss_ppm", "take_profit", "take_profit_ppm", "trail_delta", "trail_ppm")

    def __init__(self, stop_loss: int, stop_loss_ppm: int, take_profit: int, take_profit_ppm: int, trail_delta: int,
                 trail_ppm: int) -> None:
        self.stop_loss = stop_loss
        self.stop_loss_ppm = stop_loss_ppm
        self.take_profit = take_profit
        self.take_profit_ppm = take_profit_ppm
        self.trail_delta = trail_delta
        self.trail_ppm = trail_ppm

    @property
    def has_stop(self) -> bool:
        return bool(self.stop_loss or self.stop_loss_ppm)

    @property
    def has_take_profit(self) -> bool:
        return bool(self.take_profit or self.take_profit_ppm)

    @property
    def has_trailing(self) -> bool:
        return bool(self.trail_delta or self.trail_ppm)

    def _bracket(self) -> Bracket:
        if self.has_trailing:  # the stop-loss is the trailing stop (a strategy gives one or the other: `order_args`)
            return Bracket(take_profit_type=OrderType.TAKE_PROFIT_MARKET if self.has_take_profit else None,
                           take_profit_price=self.take_profit, take_profit_ppm=self.take_profit_ppm,
                           stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=self.trail_ppm,
                           stop_loss_trail_delta=self.trail_delta)
        return Bracket(take_profit_type=OrderType.TAKE_PROFIT_MARKET if self.has_take_profit else None,
                       take_profit_price=self.take_profit, take_profit_ppm=self.take_profit_ppm,
                       stop_loss_type=OrderType.STOP_MARKET if self.has_stop else None,
                       stop_loss_price=self.stop_loss, stop_loss_ppm=self.stop_loss_ppm)

    def bracket(self) -> str:
        """These exits as core's Bracket (JSON): what a venue places once the entry filled, in every mode.

        A percentage stays one (of the entry's average fill price, resolved by the venue with
        `core.conditional.bracket_children`), so paper and live runs take it from the fill as
        backtests do; one exit alone is a single child. A trailing exit is the bracket's
        stop-loss: a trailing stop that follows from the entry's fill.
        """
        return encode_bracket(self._bracket())

    def view(self, inst: Instrument) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.has_stop:
            out["stop_loss"] = _distance_str(inst, self.stop_loss_ppm, self.stop_loss)
        if self.has_take_profit:
            out["take_profit"] = _distance_str(inst, self.take_profit_ppm, self.take_profit)
        if self.has_trailing:
            out["trailing"] = _distance_str(inst, self.trail_ppm, self.trail_delta)
        return out


def _distance_str(inst: Instrument, ppm: int, units: int) -> str:
    return f"{Decimal(ppm).scaleb(-4).normalize():f}%" if ppm else inst.price_str(units)


class OrderArgs:
    """What `buy`/`sell` asked for, in units: size (base), or funds (quote ATTO), or neither (all in)."""

    __slots__ = ("side", "type", "size", "funds", "limit", "cancel_after", "cond", "exits", "reduce_only")

    def __init__(self, side: Side, type_: OrderType, size: int | None, funds: int | None, limit: int, cancel_after: int,
                 cond: Conditional | None = None, exits: Exits | None = None, reduce_only: bool = False) -> None:
        self.side = side
        self.type = type_
        self.size = size
        self.funds = funds
        self.limit = limit
        self.cancel_after = cancel_after
        self.cond = cond  # a conditional order's fields (None: a plain order)
        self.exits = exits  # exits placed once this entry filled (None: none)
        self.reduce_only = reduce_only  # perpetuals: may only shrink the position (a close)

    def view(self, inst: Instrument) -> dict[str, Any]:
        """The `venue.make_order` message the hub records."""
        out: dict[str, Any] = {"side": self.side._value_, "type": self.type._value_,
               "size": None if self.size is None else inst.size_str(self.size),
               "funds": None if self.funds is None else units_to_str(self.funds, ATTO_DECIMALS),
               "limit": inst.price_str(self.limit) if self.limit else None}
        if self.cond is not None:
            out.update(self.cond.view(inst))
        if self.exits is not None:
            out.update(self.exits.view(inst))
        if self.reduce_only:
            out["reduce_only"] = True
        return out


def order_args(inst: Instrument, side: str, *, size: Any, funds: Any, limit: Any, type: str | None, cancel_after: int,
               stop_price: Any = None, trigger: str | None = None, trailing_delta: Any = None, activation_price: Any = None,
               time_in_force: str | None = None, expire_at: int | datetime | None = None, allow_immediate: bool = False,
               stop_loss: Any = None, take_profit: Any = None, trailing: Any = None, reduce_only: bool = False) -> OrderArgs:
    """Check a strategy's order request against the instrument; refuse it before anything is sent.

    A conditional type is named by `type`, or implied: `stop_price` alone makes a stop-market
    order, with `limit` a stop-limit; `trailing_delta` alone a trailing stop. `stop_loss`,
    `take_profit` and `trailing` attach exits to a market or limit entry.
    """
    order_side = Side(side)
    if type is None and limit is None and (stop_price is not None or trailing_delta is not None):
        type = OrderType.TRAILING_STOP.value if stop_price is None else OrderType.STOP_MARKET.value
    elif type is None and limit is not None and stop_price is not None:
        type = OrderType.STOP_LIMIT.value
    kind = order_type(type, limit)
    if kind is OrderType.MARKET and limit is not None:
        raise InvalidInput("invalid_params", "a market order takes no limit price")
    size_units = None if size is None else grid_units(size, inst.size_decimals, inst.step, "size")
    funds_atto = None if funds is None else grid_units(funds, ATTO_DECIMALS, 1, "funds")
    if size_units is not None and funds_atto is not None:
        raise InvalidInput("invalid_params", "give size or funds, not both")
    if funds_atto is not None and (order_side is not Side.BUY or kind is not OrderType.MARKET):
        raise InvalidInput("invalid_params", "funds applies to market buys only")
    limit_units = 0 if limit is None else grid_units(limit, inst.price_decimals, inst.tick, "limit")
    conditional = kind in CONDITIONAL_TYPES
    if not conditional and kind is not OrderType.MARKET and limit_units <= 0:
        raise InvalidInput("missing_limit", f"a {kind.value} order needs a positive limit price")
    if not isinstance(cancel_after, int) or cancel_after < 0:
        raise InvalidInput("invalid_cancel_after", "cancel_after must be a whole number of seconds >= 0")
    cond = None
    if conditional:
        cond = _conditional(inst, kind, limit_units, stop_price, trigger, trailing_delta, activation_price, time_in_force,
                            expire_at, allow_immediate)
        if funds_atto is not None:
            raise InvalidInput("invalid_params", "funds applies to plain market buys; give a conditional order a size")
        if order_side is Side.BUY and size_units is None:
            raise InvalidInput("size_required", f"a {kind.value} buy needs a size: what it spends depends on the price it fires at")
    elif any(v is not None for v in (stop_price, trigger, trailing_delta, activation_price, time_in_force, expire_at)):
        raise InvalidInput("invalid_params", f"stop_price, trigger, trailing_delta, activation_price, time_in_force and expire_at "
                           f"apply to conditional orders (stop-market, stop-limit, take-profit-*, trailing-stop), not {kind.value}")
    exits = None
    if stop_loss is not None or take_profit is not None or trailing is not None:
        if kind is not OrderType.MARKET and kind is not OrderType.LIMIT:
            raise InvalidInput("invalid_params", f"stop_loss, take_profit and trailing attach exits to a market or limit entry, "
                               f"not a {kind.value} order")
        if stop_loss is not None and trailing is not None:
            raise InvalidInput("invalid_params", "give stop_loss or trailing (a stop that follows the price), not both")
        sl_ppm, sl = parse_distance(stop_loss, inst, "stop_loss")
        tp_ppm, tp = parse_distance(take_profit, inst, "take_profit")
        tr_ppm, tr = parse_distance(trailing, inst, "trailing")
        exits = Exits(sl, sl_ppm, tp, tp_ppm, tr, tr_ppm)
    if reduce_only and not inst.is_perpetual:
        raise InvalidInput("invalid_params", f"reduce_only applies to perpetuals; {inst.symbol} is a spot market")
    if not inst.is_perpetual:
        return OrderArgs(order_side, kind, size_units, funds_atto, limit_units, cancel_after, cond, exits)
    if cond is not None or exits is not None or funds_atto is not None:
        raise InvalidInput("not_supported", "a strategy trades perpetuals with market and limit orders by size or by leverage; "
                           "conditional orders, exits and funds are for spot markets")
    return OrderArgs(order_side, kind, size_units, funds_atto, limit_units, cancel_after, None, None, bool(reduce_only))


def _conditional(inst: Instrument, kind: OrderType, limit: int, stop_price: Any, trigger: str | None, trailing_delta: Any,
                 activation_price: Any, time_in_force: str | None, expire_at: int | datetime | None,
                 allow_immediate: bool) -> Conditional:
    """A conditional order's fields, with the refusals a strategy can be given before anything is sent (codes as make_order's)."""
    trailing = kind is OrderType.TRAILING_STOP
    if trailing:
        if trailing_delta is None:
            raise InvalidInput("trailing_delta_required",
                               "a trailing-stop order needs trailing_delta: a percentage ('1.5%') or a price distance")
        if stop_price is not None:
            raise InvalidInput("invalid_params", "a trailing stop's level follows the price: give trailing_delta, not stop_price")
        trail_ppm, trail_delta = parse_distance(trailing_delta, inst, "trailing_delta", code="trailing_delta_out_of_range")
        stop = 0
    else:
        if stop_price is None:
            raise InvalidInput("stop_price_required", f"a {kind.value} order needs stop_price, the price that fires it")
        if trailing_delta is not None or activation_price is not None:
            raise InvalidInput("invalid_params", "trailing_delta and activation_price apply to trailing-stop orders")
        stop = grid_units(stop_price, inst.price_decimals, inst.tick, "stop_price")
        trail_ppm = trail_delta = 0
    if kind.child_is_limit and limit <= 0:
        raise InvalidInput("limit_required", f"a {kind.value} order needs a limit: the price of the limit order it fires")
    if not kind.child_is_limit and limit:
        raise InvalidInput("invalid_params", f"a {kind.value} order fires a market order and takes no limit")
    activation = 0 if activation_price is None else grid_units(activation_price, inst.price_decimals, inst.tick, "activation_price")
    try:
        source = TriggerSource(trigger or "last")
    except ValueError:
        raise InvalidInput("invalid_trigger", f"trigger must be last, mark or bid_ask, got {trigger!r}") from None
    try:
        tif = TimeInForce(time_in_force or "GTC")
    except ValueError:
        raise InvalidInput("time_in_force_invalid", f"time_in_force must be GTC, IOC, FOK or GTD, got {time_in_force!r}") from None
    expire = 0
    if expire_at is not None:
        expire = int(expire_at.timestamp() * _NS) if isinstance(expire_at, datetime) else int(expire_at) * _NS
    if tif is not TimeInForce.GTC and not kind.child_is_limit:
        raise InvalidInput("time_in_force_invalid", f"time_in_force {tif.value} applies to the limit order a stop-limit or "
                           "take-profit-limit fires")
    if (tif is TimeInForce.GTD) != bool(expire):
        raise InvalidInput("time_in_force_invalid", "GTD needs expire_at, and expire_at needs GTD")
    return Conditional(stop, source, trail_ppm, trail_delta, activation, tif, expire, bool(allow_immediate))


def parse_distance(value: Any, inst: Instrument, field: str, code: str | None = None) -> tuple[int, int]:
    """A level or distance as (millionths, price units): `"3%"` is (30_000, 0), `95.5` or `"95.5"` is (0, 9_550) at 2 decimals.

    Percentages must be above 0 and below 100, to the millionth; (0, 0) when `value` is None.
    """
    if value is None:
        return 0, 0
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            pct = Decimal(value.strip()[:-1])
        except InvalidOperation:
            raise InvalidInput(code or f"invalid_{field}", f"{field} {value!r} is not a percentage like '3%'", field=field) from None
        ppm = pct * 10_000
        if not (0 < pct < 100) or ppm != ppm.to_integral_value():
            raise InvalidInput(code or f"invalid_{field}", f"{field} must be a percentage above 0% and below 100% "
                               f"(to the ten-thousandth), got {value!r}", field=field)
        return int(ppm), 0
    if code is not None and not isinstance(value, float):
        try:
            if Decimal(str(value)) <= 0:
                raise InvalidInput(code, f"{field} must be positive, got {value!r}", field=field)
        except InvalidOperation:
            pass  # grid_units names it
    return 0, grid_units(value, inst.price_decimals, inst.tick, field)


def prepare_conditional(order: Order, args: OrderArgs) -> None:
    """Give `order` its conditional fields and its exits as core's bracket.

    Both are checked by the venue (`core.conditional.check_conditional`, `check_bracket`, at
    its own prices), as the gateway's venues check them, so a backtest refuses what they do.
    """
    cond = args.cond
    if cond is not None:
        order.stop_price, order.trigger = cond.stop_price, cond.trigger
        order.trail_ppm, order.trail_delta, order.activation_price = cond.trail_ppm, cond.trail_delta, cond.activation_price
        order.time_in_force, order.expire_at = cond.time_in_force, cond.expire_at
    if args.exits is not None:
        order.bracket = args.exits.bracket()


def request_fields(args: OrderArgs) -> dict[str, Any]:
    """A conditional order's and an entry's exits' fields of an `OrderRequest` (the gateway's), from a strategy's arguments.

    Exits go as core's Bracket with their percentages as they are: the venue takes them from
    the entry's fill (see `Exits.bracket`).
    """
    out: dict[str, Any] = {}
    cond = args.cond
    if cond is not None:
        out.update(stop_price=cond.stop_price, trigger=cond.trigger, trail_ppm=cond.trail_ppm, trail_delta=cond.trail_delta,
                   activation_price=cond.activation_price, time_in_force=cond.time_in_force, expire_at=cond.expire_at,
                   allow_immediate=cond.allow_immediate)
    if args.exits is not None:
        out["bracket"] = args.exits.bracket()
    return out


def order_type(kind: str | None, limit: Any) -> OrderType:
    if kind is None:
        return OrderType.MARKET if limit is None else OrderType.LIMIT
    found = CLIENT_ORDER_TYPES.get(kind)  # a liquidation order is the venue's, never a strategy's
    if found is None:
        known = ", ".join(CLIENT_ORDER_TYPES)
        raise InvalidInput("unknown_order_type", f"unknown order type {kind!r}; use one of {known}")
    return found


def grid_units(value: Any, decimals: int, step: int, field: str) -> int:
    """Exact for Decimal, str and int; a float (a computed size) is rounded DOWN to the grid, never up."""
    if isinstance(value, float):
        if not math.isfinite(value) or value <= 0:
            raise InvalidInput("invalid_number", f"{field} must be a positive finite number, got {value!r}", field=field)
        units = int(Decimal(repr(value)).scaleb(decimals))
    else:
        units = to_units(value, decimals, field)
    if units <= 0:
        raise InvalidInput(f"invalid_{field}", f"{field} must be positive, got {value}", field=field)
    return units - units % step


def resolve_size(args: OrderArgs, engine: MatchingEngine, ledger: Ledger, exchange: str, wallet_set_id: int) -> tuple[int, int | None]:
    """(size, budget) of an order when it reaches the venue: sizes the strategy left to us, from the book and the run's funds.

    A market buy without a size spends `funds`, or all the run's available quote, walking the
    book with fees included (`budget` then caps its hold); a limit buy without a size takes
    what its hold at the limit allows; a sell without a size sells the whole available base.
    A size of 0 means there is nothing to trade.
    """
    inst = engine.instrument
    if args.size is not None:
        return args.size, None
    # a conditional buy always has a size (order_args), so every order below is a plain one or a conditional sell
    if args.side is Side.BUY:
        budget = args.funds if args.funds is not None else ledger.wallet(exchange, inst.quote, wallet_set_id).available
        if args.type is OrderType.MARKET:
            return size_for_funds(engine, Side.BUY, budget), budget
        return max_limit_buy_size(inst, args.limit, budget), None
    size = ledger.wallet(exchange, inst.base, wallet_set_id).available // inst.size_to_atto
    return size - size % inst.step, None


def leveraged_size(engine: MatchingEngine, side: Side, available: int, leverage: int, mark: int = 0) -> int:
    """The size of a new perpetual position worth `leverage` times the `available` margin at the book's best price, fee included.

    `notional / leverage + fee(notional) <= available` (core.margin.max_open_size: `notional =
    leverage * available / (1 + leverage * fee)` on the step grid), capped by what the best
    level holds (a candle's volume, a book's top). The venue counts an order's initial margin
    at the higher of its price and the `mark`, so that is the price it is sized at when the mark
    is higher: the venue never refuses it for a few ATTO.
    """
    best = next(iter(engine.available_levels(side, None)), None)
    if available <= 0 or best is None:
        return 0
    price, depth = best
    inst = engine.instrument
    size = min(max_open_size(inst, max(price, mark), available, leverage), depth)
    return size - size % inst.step
