"""A strategy's order arguments turned into exact venue units, the same way in every mode."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from coinwire.core.errors import InvalidInput
from coinwire.core.execution import max_limit_buy_size, size_for_funds
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO_DECIMALS, to_units, units_to_str
from coinwire.core.orders import OrderType, Side

__all__ = ["OrderArgs", "grid_units", "order_args", "order_type", "resolve_size"]


class OrderArgs:
    """What `buy`/`sell` asked for, in units: size (base), or funds (quote ATTO), or neither (all in)."""

    __slots__ = ("side", "type", "size", "funds", "limit", "cancel_after")

    def __init__(self, side: Side, type_: OrderType, size: int | None, funds: int | None, limit: int, cancel_after: int) -> None:
        self.side = side
        self.type = type_
        self.size = size
        self.funds = funds
        self.limit = limit
        self.cancel_after = cancel_after

    def view(self, inst: Instrument) -> dict[str, Any]:
        """The `venue.make_order` message the hub records."""
        return {"side": self.side._value_, "type": self.type._value_,
                "size": None if self.size is None else inst.size_str(self.size),
                "funds": None if self.funds is None else units_to_str(self.funds, ATTO_DECIMALS),
                "limit": inst.price_str(self.limit) if self.limit else None}


def order_args(inst: Instrument, side: str, *, size: Any, funds: Any, limit: Any, type: str | None, cancel_after: int) -> OrderArgs:
    """Check a strategy's order request against the instrument; refuse it before anything is sent."""
    order_side = Side(side)
    kind = order_type(type, limit)
    size_units = None if size is None else grid_units(size, inst.size_decimals, inst.step, "size")
    funds_atto = None if funds is None else grid_units(funds, ATTO_DECIMALS, 1, "funds")
    if size_units is not None and funds_atto is not None:
        raise InvalidInput("invalid_params", "give size or funds, not both")
    if funds_atto is not None and (order_side is not Side.BUY or kind is not OrderType.MARKET):
        raise InvalidInput("invalid_params", "funds applies to market buys only")
    limit_units = 0 if limit is None else grid_units(limit, inst.price_decimals, inst.tick, "limit")
    if kind is not OrderType.MARKET and limit_units <= 0:
        raise InvalidInput("missing_limit", f"a {kind.value} order needs a positive limit price")
    if not isinstance(cancel_after, int) or cancel_after < 0:
        raise InvalidInput("invalid_cancel_after", "cancel_after must be a whole number of seconds >= 0")
    return OrderArgs(order_side, kind, size_units, funds_atto, limit_units, cancel_after)


def order_type(kind: str | None, limit: Any) -> OrderType:
    if kind is None:
        return OrderType.MARKET if limit is None else OrderType.LIMIT
    try:
        found = OrderType(kind)
    except ValueError:
        known = ", ".join(t.value for t in OrderType)
        raise InvalidInput("unknown_order_type", f"unknown order type {kind!r}; use one of {known}") from None
    if found is OrderType.MARKET and limit is not None:
        raise InvalidInput("invalid_params", "a market order takes no limit price")
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
    if args.side is Side.BUY:
        budget = args.funds if args.funds is not None else ledger.wallet(exchange, inst.quote, wallet_set_id).available
        if args.type is OrderType.MARKET:
            return size_for_funds(engine, Side.BUY, budget), budget
        return max_limit_buy_size(inst, args.limit, budget), None
    size = ledger.wallet(exchange, inst.base, wallet_set_id).available // inst.size_to_atto
    return size - size % inst.step, None
