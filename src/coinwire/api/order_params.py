"""make_order's conditional parameters and make_oco's legs, parsed into exact units and checked before anything is written.

A plain order never comes here (`Api.order_request` sends only requests that name one of
these parameters or a conditional type), so the plain path pays one test, not this module.
The refusals are the core's (`core.conditional.check_conditional`, `check_oco`,
`check_bracket`), asked with what the edge knows: the instrument, the clock and the mirrored
market; the venue asks them again with its own prices when the order is placed.
Prices are on the tick or refused (`<field>_off_tick`), never rounded: a client's stop that
silently moved is a different order.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from coinwire.api import params as P
from coinwire.core.conditional import PPM, Bracket, check_bracket, check_conditional, check_oco, encode_bracket
from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import to_units
from coinwire.core.orders import CONDITIONAL_TYPES, Order, OrderRequest, OrderType, PositionSide, Side, TimeInForce, TriggerSource

if TYPE_CHECKING:
    from coinwire.venues.paper import PaperMarket

__all__ = ["apply_conditions", "decimal_param", "price_units", "parse_trailing_delta", "parse_instant", "oco_client_oids", "check_oco_legs",
           "PERCENT_DECIMALS"]

PERCENT_DECIMALS = 4  # a trailing percentage's places: 1 ppm of the price (100% == 10**6 ppm)
_TRIGGERS = {t.value: t for t in TriggerSource}
_TIFS = {t.value: t for t in TimeInForce}
_GTC, _IOC, _FOK, _GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
_LIMIT, _MARKET, _POST_ONLY = OrderType.LIMIT, OrderType.MARKET, OrderType.POST_ONLY
_TRAILING = OrderType.TRAILING_STOP
# a plain limit says its time in force in its type: GTC and GTD rest, IOC and FOK are their own types
_PLAIN_TIF_TYPES = {_IOC: OrderType.IOC, _FOK: OrderType.FOK}
_TP_TYPES = {"limit": _LIMIT, "take-profit-market": OrderType.TAKE_PROFIT_MARKET, "take-profit-limit": OrderType.TAKE_PROFIT_LIMIT}
_NS_PER_MS = 1_000_000


def decimal_param(value: object, field: str) -> str:
    """A decimal parameter as text for the exact parser (`core.numbers.to_units`), which refuses all but decimals.

    Strings pass as sent; JSON numbers arrive as exact `Decimal`s (`api.json_input`) or ints;
    a float (a Python caller) is its repr, the shortest decimal that reads back the same.
    Any other JSON type (true, null, a list, an object) is the wrong type: `invalid_params`.
    """
    if type(value) is str:
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    raise InvalidInput("invalid_params", f"{field} must be a decimal string or a JSON number, got {type(value).__name__}", field=field)


def price_units(inst: Instrument, field: str, value: object) -> int:
    """A positive price on the instrument's tick, in price units; anything else is `<field>_off_tick`.

    More decimals than the price has is off the tick too (the grid has no such point), so a
    client learns one code per field, not two. Text that is not a decimal is `invalid_number`.
    """
    text = decimal_param(value, field)
    try:
        units = to_units(text, inst.price_decimals, field)
    except InvalidInput as exc:
        if exc.code != "too_precise":
            raise
        units = -1
    if units <= 0 or units % inst.tick:
        raise InvalidInput(f"{field}_off_tick", f"{field} {text} is not a positive multiple of the tick "
                           f"{inst.price_str(inst.tick)} for {inst.symbol}", field=field, tick=inst.price_str(inst.tick))
    return units


def parse_trailing_delta(inst: Instrument, value: object) -> tuple[int, int]:
    """(trail_ppm, trail_delta): `"1.5%"` is 15_000 ppm of the best price; `"25.5"` (or 25.5) a distance in price units.

    Exact: a percentage has at most 4 decimals (1 ppm), a distance lies on the tick
    (`trailing_delta_off_tick`). Zero, negative, or 100% and more is `trailing_delta_out_of_range`.
    """
    text = decimal_param(value, "trailing_delta").strip()
    if text.endswith("%"):
        number = text[:-1].strip()
        try:
            ppm = to_units(number, PERCENT_DECIMALS, "trailing_delta")
        except InvalidInput as exc:
            if exc.code != "too_precise":
                raise
            raise InvalidInput("trailing_delta_out_of_range", f"trailing_delta {text}: a percentage has at most "
                               f"{PERCENT_DECIMALS} decimals", field="trailing_delta") from None
        if not 0 < ppm < PPM:
            raise InvalidInput("trailing_delta_out_of_range", f"trailing_delta {text} must be above 0% and below 100%",
                               field="trailing_delta")
        return ppm, 0
    try:
        units = to_units(text, inst.price_decimals, "trailing_delta")
    except InvalidInput as exc:
        if exc.code != "too_precise":
            raise
        units = None
    if units is not None and units <= 0:
        raise InvalidInput("trailing_delta_out_of_range", f"trailing_delta {text} must be a positive distance",
                           field="trailing_delta")
    if units is None or units % inst.tick:
        raise InvalidInput("trailing_delta_off_tick", f"trailing_delta {text} is not a multiple of the tick "
                           f"{inst.price_str(inst.tick)} for {inst.symbol} (or give a percentage: \"1.5%\")",
                           field="trailing_delta", tick=inst.price_str(inst.tick))
    return 0, units


def parse_instant(value: object, field: str = "expire_at") -> int:
    """Epoch nanoseconds of ISO 8601 text (no offset: UTC) or of epoch milliseconds; anything else is `invalid_params`."""
    if type(value) is int:
        return value * _NS_PER_MS
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
            return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    raise InvalidInput("invalid_params", f"{field} must be ISO 8601 (2026-12-31T23:59:00Z) or epoch milliseconds, got {value!r}",
                       field=field)


def _keyword(table: dict[str, Any], value: str, field: str, code: str) -> Any:
    found = table.get(value) if value in table else table.get(value.lower(), table.get(value.upper()))
    if found is None:
        raise InvalidInput(code, f"{field} must be one of {', '.join(table)}, got {value!r}", field=field)
    return found


def _market_prices(market: PaperMarket | None) -> tuple[int | None, int | None, int | None]:
    """(last, bid, ask) of the mirrored market, None where unknown (a book not synced says nothing)."""
    if market is None or not market.synced:
        return None, None, None
    trade = market.last_trade
    book = market.engine.book
    return (trade.price if trade is not None else None), book.best_bid(), book.best_ask()


def _not_for(field: str, kind: OrderType, what: str) -> InvalidInput:
    return InvalidInput("invalid_params", f"{field} applies to {what}, not to a {kind.value} order", field=field)


def apply_conditions(request: OrderRequest, p: P.MakeOrderParams, market: PaperMarket | None, now: int | None = None) -> None:
    """Fill in a request's conditional fields from make_order's parameters, refusing what cannot be sound.

    `request` arrives parsed as a plain order would be (a conditional type's `limit` as given,
    0 when absent). A plain limit's `time_in_force` becomes its type (IOC, FOK) or an expiry
    (GTD); a conditional limit keeps it for the order it fires. `now`: epoch nanoseconds (the
    clock, unless a test gives one).
    """
    inst = request.instrument
    kind = request.type
    conditional = kind in CONDITIONAL_TYPES
    now = time.time_ns() if now is None else now
    if p.stop_price is not None:
        if not conditional or kind is _TRAILING:
            raise _not_for("stop_price", kind, "stop and take-profit orders (a trailing stop's level follows the market)")
        request.stop_price = price_units(inst, "stop_price", p.stop_price)
    if p.trailing_delta is not None:
        if kind is not _TRAILING:
            raise _not_for("trailing_delta", kind, "trailing-stop orders")
        request.trail_ppm, request.trail_delta = parse_trailing_delta(inst, p.trailing_delta)
    if p.activation_price is not None:
        if kind is not _TRAILING:
            raise _not_for("activation_price", kind, "trailing-stop orders")
        request.activation_price = price_units(inst, "activation_price", p.activation_price)
    bracketed = p.take_profit is not None or p.stop_loss is not None
    if p.trigger is not None:
        if not (conditional or bracketed):
            raise _not_for("trigger", kind, "stop, take-profit and trailing-stop orders, and brackets (their children's)")
        request.trigger = _keyword(_TRIGGERS, p.trigger, "trigger", "invalid_trigger")
    if p.allow_immediate and not conditional:
        raise _not_for("allow_immediate", kind, "stop, take-profit and trailing-stop orders")
    request.allow_immediate = p.allow_immediate
    request.reduce_only = p.reduce_only
    if p.expire_at is not None:
        request.expire_at = parse_instant(p.expire_at)
    tif = _GTC if p.time_in_force is None else _keyword(_TIFS, p.time_in_force, "time_in_force", "time_in_force_invalid")
    if conditional:
        if kind.child_is_limit:
            if p.expire_at is not None and p.time_in_force is None:
                tif = _GTD  # an expiry given alone: good till that date
        elif request.limit:
            raise _not_for("limit", kind, "stop-limit and take-profit-limit orders (this one fires a market order)")
        request.time_in_force = tif
    else:
        _plain_time_in_force(request, tif, p)
    if request.expire_at and request.expire_at <= now:
        raise InvalidInput("expire_at_in_past", "expire_at must be in the future", field="expire_at")
    order = _probe(request)
    last, bid, ask = _market_prices(market)
    if conditional:
        check_conditional(order, inst, last=last, bid=bid, ask=ask, now=now, allow_immediate=request.allow_immediate)
    if bracketed:
        request.bracket = encode_bracket(_bracket(request, p, order, last, bid, ask))


def _plain_time_in_force(request: OrderRequest, tif: TimeInForce, p: P.MakeOrderParams) -> None:
    """A plain order's time in force as its type: IOC and FOK are limit types, GTD a resting limit with `expire_at`."""
    kind = request.type
    if tif is _GTC and p.expire_at is not None:
        tif = _GTD if p.time_in_force is None else tif  # an expiry given alone: good till that date
    if p.time_in_force is None and tif is _GTC:
        return
    if tif is _GTD:
        if not kind.rests:
            raise InvalidInput("time_in_force_invalid", f"GTD (expire_at) applies to resting orders, not to a {kind.value} order",
                               field="time_in_force")
        if not request.expire_at:
            raise InvalidInput("time_in_force_invalid", "time_in_force GTD needs expire_at", field="time_in_force")
        request.time_in_force = _GTD  # its view says so; the venue expires it at expire_at, as any order with one
        return
    if p.expire_at is not None:
        raise InvalidInput("time_in_force_invalid", f"expire_at needs time_in_force GTD, not {tif.value}", field="expire_at")
    if tif is _GTC:
        if not kind.rests:
            raise InvalidInput("time_in_force_invalid", f"GTC applies to resting orders, not to a {kind.value} order",
                               field="time_in_force")
        return
    wanted = _PLAIN_TIF_TYPES[tif]
    if kind is not _LIMIT and kind is not wanted:
        raise InvalidInput("time_in_force_invalid", f"time_in_force {tif.value} applies to limit orders, not to a {kind.value} order",
                           field="time_in_force")
    request.type = wanted
    if request.cancel_after:
        raise InvalidInput("invalid_cancel_after", "cancel_after applies to resting (limit, post-only) orders")


def _probe(request: OrderRequest) -> Order:
    """The order a request would become, for the core's checks (never stored: it has no id)."""
    inst = request.instrument
    return Order(
        id=0, client_oid=request.client_oid, exchange=request.exchange, symbol=inst.symbol, side=request.side, type=request.type,
        size=request.size, limit=request.limit, stop_price=request.stop_price, trigger=request.trigger, trail_ppm=request.trail_ppm,
        trail_delta=request.trail_delta, activation_price=request.activation_price, time_in_force=request.time_in_force,
        expire_at=request.expire_at, reduce_only=request.reduce_only,
    )


def _bracket(request: OrderRequest, p: P.MakeOrderParams, parent: Order, last: int | None, bid: int | None,
             ask: int | None) -> Bracket:
    """The bracket's children from `take_profit` and `stop_loss`, checked against the parent's entry.

    The entry is the parent's limit, or for a market parent the touch it would take (else
    the last trade); when the market is unknown here, the venue checks the sides at placement.
    """
    tp, sl = p.take_profit, p.stop_loss
    if tp is None or sl is None:
        raise InvalidInput("bracket_incomplete", "a bracket needs both take_profit and stop_loss",
                           field="stop_loss" if sl is None else "take_profit")
    if request.type in CONDITIONAL_TYPES:
        raise InvalidInput("invalid_params", f"a bracket's parent is a plain order, not a {request.type.value} order",
                           field="take_profit")
    inst = request.instrument
    tp_ppm = _bracket_percent(tp.percent, "take_profit", tp.stop_price, tp.limit)
    sl_ppm = _bracket_percent(sl.percent, "stop_loss", sl.stop_price, sl.limit)
    tp_limit = 0 if tp.limit is None else price_units(inst, "take_profit_limit" if tp.stop_price is not None else "take_profit",
                                                      tp.limit)
    if tp.type is not None:
        tp_type = _keyword(_TP_TYPES, tp.type, "take_profit.type", "bracket_type_invalid")
    elif tp.stop_price is None and not tp_ppm:
        tp_type = _LIMIT
    else:
        tp_type = OrderType.TAKE_PROFIT_MARKET if tp.limit is None else OrderType.TAKE_PROFIT_LIMIT
    if tp_ppm:
        if tp_type is OrderType.TAKE_PROFIT_LIMIT:
            raise InvalidInput("bracket_type_invalid", "a take-profit-limit takes prices, not a percent", field="take_profit")
        tp_price = 0
    elif tp_type is _LIMIT:
        if tp.stop_price is not None:
            raise InvalidInput("invalid_params", "a limit take-profit has no stop_price: give take_profit {\"limit\": p}",
                               field="take_profit")
        if not tp_limit:
            raise InvalidInput("limit_required", "a limit take-profit needs its limit", field="take_profit")
        tp_price, tp_limit = tp_limit, 0
    else:
        if tp.stop_price is None:
            raise InvalidInput("stop_price_required", f"a {tp_type.value} take-profit needs stop_price", field="take_profit")
        tp_price = price_units(inst, "take_profit", tp.stop_price)
        if tp_type is OrderType.TAKE_PROFIT_MARKET and tp_limit:
            raise InvalidInput("invalid_params", "a take-profit-market fires a market order: it takes no limit", field="take_profit")
    if sl.stop_price is None and not sl_ppm:
        raise InvalidInput("stop_price_required", "stop_loss needs stop_price (or percent)", field="stop_loss")
    bracket = Bracket(
        take_profit_type=tp_type, take_profit_price=tp_price, take_profit_limit=tp_limit, take_profit_ppm=tp_ppm,
        stop_loss_type=OrderType.STOP_MARKET if sl.limit is None else OrderType.STOP_LIMIT,
        stop_loss_price=0 if sl_ppm else price_units(inst, "stop_loss", sl.stop_price),
        stop_loss_limit=0 if sl.limit is None else price_units(inst, "stop_loss_limit", sl.limit),
        stop_loss_ppm=sl_ppm,
        trigger=request.trigger,
    )
    reference = parent.limit
    if not reference:
        touch = ask if request.side is Side.BUY else bid
        reference = touch if touch is not None else (last or 0)
    if reference:
        check_bracket(parent, bracket, reference, instrument=inst)
    return bracket


def _bracket_percent(value: object, field: str, stop_price: object, limit: object) -> int:
    """A bracket leg's `percent` of the parent's average fill price, in millionths (0: not given).

    Above 0 and below 100, at most 4 decimals (`bracket_invalid` otherwise); a leg given as a
    percent takes no price besides (`invalid_params`).
    """
    if value is None:
        return 0
    if stop_price is not None or limit is not None:
        raise InvalidInput("invalid_params", f"{field} is a percent or prices, not both", field=field)
    text = decimal_param(value, f"{field}.percent").strip()
    try:
        ppm = to_units(text, PERCENT_DECIMALS, f"{field}.percent")
    except InvalidInput as exc:
        if exc.code != "too_precise":
            raise
        ppm = -1
    if not 0 < ppm < PPM:
        raise InvalidInput("bracket_invalid", f"{field} percent {text} must be above 0 and below 100, with at most "
                           f"{PERCENT_DECIMALS} decimals", field=field)
    return ppm


def oco_client_oids(client_oid: str) -> tuple[str, str]:
    """The legs' client_oids: `<client_oid>:limit` and `<client_oid>:stop` (each at most 64 characters)."""
    if not 0 < len(client_oid) <= 58:
        raise InvalidInput("invalid_client_oid", "an OCO's client_oid must be 1 to 58 characters (its legs add :limit and :stop)",
                           field="client_oid")
    return f"{client_oid}:limit", f"{client_oid}:stop"


def check_oco_legs(limit_leg: OrderRequest, stop_leg: OrderRequest, market: PaperMarket | None) -> None:
    """The core's OCO refusals (`oco_legs_disagree`, `oco_prices_wrong_side`) against the mirrored market."""
    last, bid, ask = _market_prices(market)
    check_oco(_probe(limit_leg), _probe(stop_leg), last=last, bid=bid, ask=ask)


_POSITION_SIDES = {side.value: side for side in PositionSide}


def parse_position_side(text: str | None) -> PositionSide | None:
    """`both`, `long` or `short` (any case), None when not given; anything else `invalid_position_side`."""
    if text is None:
        return None
    side = _POSITION_SIDES.get(text.lower())
    if side is None:
        raise InvalidInput("invalid_position_side", f"position_side must be one of {sorted(_POSITION_SIDES)}, got {text!r}",
                           field="position_side")
    return side


def apply_position_side(request: OrderRequest, text: str) -> None:
    """make_order's `position_side` on a perpetual's order (`not_a_perpetual` on a spot market, which has no positions).

    Whether the account's mode allows it (hedge mode needs long or short, one-way mode takes only
    `both`) is the core's check when the order is placed, against the account's settings then.
    """
    side = parse_position_side(text)
    inst = request.instrument
    if not inst.is_perpetual:
        raise InvalidInput("not_a_perpetual", f"{inst.symbol} is a spot market: position_side applies to perpetuals",
                           field="position_side")
    request.position_side = side  # type: ignore[assignment]
