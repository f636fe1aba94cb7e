"""Which conditional orders each exchange holds itself, as data: the venue's type names, triggers, trailing and OCO rules.

A conditional order the exchange holds natively keeps protecting the account while coinwire
is down; anything a row does not cover is emulated by the live venue from its mirrored
market (`Order.emulated`). Adding an exchange means adding a row here, not a branch in the
adapter: `native_plan` reads only this table (and the market's own list of order types,
when the exchange publishes one, since a venue may switch a type off per symbol).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

import msgspec

from coinwire.core.instruments import Instrument
from coinwire.core.orders import Order, OrderType, Side, TimeInForce, TriggerSource

__all__ = ["NATIVE", "WORKING_FLAGS", "WORKING_TIMES", "NativeOrders", "NativePlan", "OcoPlan", "native_plan", "oco_plan"]

# keys of a venue's raw order that say whether a conditional order is working yet (triggered): Binance's
# REST order (`isWorking`) and its user data stream's executionReport (`w`); the answer to a new order has
# neither, only the time it started working (`workingTime`, -1 while it waits)
WORKING_FLAGS: Final = ("isWorking", "w")
WORKING_TIMES: Final = ("workingTime",)

_PPM_PER_BIP: Final = 100  # one basis point is 100 millionths


class NativePlan(msgspec.Struct, frozen=True):
    """How one conditional order is sent natively: the venue's order type and its extra CCXT params."""

    venue_type: str  # e.g. Binance's STOP_LOSS_LIMIT
    params: dict[str, Any]  # e.g. {"stopPrice": "95.00", "timeInForce": "GTC"}
    limit: bool  # the venue type takes a limit price


class OcoPlan(msgspec.Struct, frozen=True):
    """An OCO sent as one order list: the CCXT method (an implicit, signed endpoint) and its raw request, less the symbol."""

    method: str
    request: dict[str, Any]


class NativeOrders(msgspec.Struct, frozen=True):
    """One exchange's native conditional orders.

    `types`: our type -> the venue's type name (a trailing stop maps to the stop type whose
    activation rule matches ours: see `trailing`). `triggers`: the trigger sources the venue
    fires on. `time_in_force`: of the limit a triggered limit type becomes (GTD is sent as
    GTC and cancelled from coinwire at `expire_at` when absent). `trailing`: (venue type
    without activation, venue type with activation, (min, max) of the distance in basis
    points, on the venue's own grid of whole basis points), or None. `oco`: builds an order
    list request from (limit leg, stop leg, instrument), or None.
    """

    types: Mapping[OrderType, str]
    triggers: frozenset[TriggerSource]
    time_in_force: frozenset[TimeInForce]
    trailing: tuple[str, str, tuple[int, int]] | None
    oco: Callable[[Order, Order, Instrument, str], OcoPlan] | None


def _price(instrument: Instrument, price: int) -> str:
    return instrument.price_str(price)


def _binance_oco(limit_leg: Order, stop_leg: Order, instrument: Instrument, list_client_oid: str) -> OcoPlan:
    """Binance's POST /api/v3/orderList/oco: a LIMIT_MAKER leg and a STOP_LOSS(_LIMIT) leg, one above, one below the market.

    A sell OCO has its limit above the market and its stop below; a buy OCO the mirror image.
    """
    sell = limit_leg.side is Side.SELL
    limit_pos, stop_pos = ("above", "below") if sell else ("below", "above")
    request: dict[str, Any] = {  # the venue's symbol id is the adapter's to add
        "side": limit_leg.side.value.upper(),
        "quantity": instrument.size_str(limit_leg.size),
        "listClientOrderId": list_client_oid,
        "newOrderRespType": "FULL",
        f"{limit_pos}Type": "LIMIT_MAKER",
        f"{limit_pos}Price": _price(instrument, limit_leg.limit),
        f"{limit_pos}ClientOrderId": limit_leg.client_oid,
        f"{stop_pos}StopPrice": _price(instrument, stop_leg.stop_price),
        f"{stop_pos}ClientOrderId": stop_leg.client_oid,
    }
    if stop_leg.limit:
        request[f"{stop_pos}Type"] = "STOP_LOSS_LIMIT"
        request[f"{stop_pos}Price"] = _price(instrument, stop_leg.limit)
        request[f"{stop_pos}TimeInForce"] = "GTC"
    else:
        request[f"{stop_pos}Type"] = "STOP_LOSS"
    return OcoPlan("private_post_orderlist_oco", request)


# ccxt id -> its native conditional orders (Binance spot: the trade price fires them; no GTD; trailingDelta in BIPS
# within the TRAILING_DELTA filter's documented 10..2000; OCO order lists)
NATIVE: Final[dict[str, NativeOrders]] = {
    "binance": NativeOrders(
        types={
            OrderType.STOP_MARKET: "STOP_LOSS",
            OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
            OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT",
            OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
        },
        triggers=frozenset({TriggerSource.LAST}),
        time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
        # a sell STOP_LOSS with trailingDelta follows from the next trade; a sell TAKE_PROFIT's stopPrice starts it once
        # the price reaches it from below (our activation price), a buy's the mirror image (Binance's trailing stop FAQ)
        trailing=("STOP_LOSS", "TAKE_PROFIT", (10, 2000)),
        oco=_binance_oco,
    ),
}


def native_plan(ccxt_id: str, order: Order, instrument: Instrument, order_types: Collection[str] | None) -> NativePlan | None:
    """How `order` (conditional) is placed natively on `ccxt_id`, or None: the live venue emulates it.

    `order_types`: the venue types the market accepts, when the exchange publishes them.
    """
    row = NATIVE.get(ccxt_id)
    if row is None or order.trigger not in row.triggers:
        return None
    kind = order.type
    if kind is OrderType.TRAILING_STOP:
        return _trailing_plan(row, order, instrument, order_types)
    venue_type = row.types.get(kind)
    if venue_type is None or (order_types is not None and venue_type not in order_types):
        return None
    params: dict[str, Any] = {"stopPrice": _price(instrument, order.stop_price)}
    if not kind.child_is_limit:
        return NativePlan(venue_type, params, limit=False)
    tif = order.time_in_force
    if tif not in row.time_in_force:
        if tif is not TimeInForce.GTD or TimeInForce.GTC not in row.time_in_force:
            return None
        tif = TimeInForce.GTC  # cancelled from coinwire at expire_at (the live venue's expiry loop)
    params["timeInForce"] = tif.value
    return NativePlan(venue_type, params, limit=True)


def _trailing_plan(
    row: NativeOrders, order: Order, instrument: Instrument, order_types: Collection[str] | None
) -> NativePlan | None:
    if row.trailing is None or not order.trail_ppm or order.trail_ppm % _PPM_PER_BIP:
        return None  # an absolute distance, or a percent off the venue's grid of basis points
    follow_now, follow_from, (low, high) = row.trailing
    bips = order.trail_ppm // _PPM_PER_BIP
    if not low <= bips <= high:
        return None
    venue_type = follow_from if order.activation_price else follow_now
    if order_types is not None and venue_type not in order_types:
        return None
    # CCXT's unified trailingPercent: it sends trailingDelta = percent x 100 (BIPS) and the activation as stopPrice
    params: dict[str, Any] = {"trailingPercent": _percent(bips)}
    if order.activation_price:
        params["trailingTriggerPrice"] = _price(instrument, order.activation_price)
    return NativePlan(venue_type, params, limit=False)


def _percent(bips: int) -> str:
    whole, frac = divmod(bips, 100)
    return f"{whole}.{frac:02d}" if frac else str(whole)


def oco_plan(ccxt_id: str, limit_leg: Order, stop_leg: Order, instrument: Instrument, list_client_oid: str) -> OcoPlan | None:
    """The order list request placing an OCO natively on `ccxt_id`, or None: the live venue emulates the stop leg."""
    row = NATIVE.get(ccxt_id)
    if row is None or row.oco is None or stop_leg.trigger not in row.triggers:
        return None
    if stop_leg.type not in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT):
        return None
    if stop_leg.type is OrderType.STOP_LIMIT and stop_leg.time_in_force is not TimeInForce.GTC:
        return None
    return row.oco(limit_leg, stop_leg, instrument, list_client_oid)
