"""The path a price takes inside a candle, as a candle backtest assumes it, and where conditional orders fire on it.

A candle says where the price opened, how high and how low it went and where it closed,
not in which order. Whether a long's stop or its target was reached first is therefore an
assumption, and it is stated (`--intrabar`):

- `pessimistic` (the default): whatever hurts the position more happens first. Orders that
  sell (a long's exits) see open -> low -> high -> close, orders that buy open -> high ->
  low -> close: a long with its stop and its target inside one bar is stopped out, and a
  trailing stop is tested against the low before the high can raise it.
- `ohlc`: every order sees open -> high -> low -> close.
- `olhc`: every order sees open -> low -> high -> close.

The path is a list of prices walked segment by segment. An order fires on the first point
(a gap: the bar opened beyond its level) or segment that reaches its level (core's `fires`);
a trailing stop follows the segments that move its way (core's `follow`) and is tested on
those that move against it. Its market order fills at the level, or at the point where the
path starts when that is already beyond it (a gap through a stop fills at the worse open, a
gap over a take-profit at the better one).

Orders armed in the middle of a bar (a bracket's children, from their parent's fill) walk
the rest of it: from the fill price on along the remaining points of a fixed path, or, when
pessimistic, adverse extreme first again, since nothing says the bar did not go there after.
"""

from __future__ import annotations

from collections.abc import Sequence

from coinwire.core.conditional import fires, follow
from coinwire.core.errors import InvalidInput
from coinwire.core.orders import Order, OrderType, Side

__all__ = ["INTRABAR_MODES", "Hit", "check_mode", "path", "first_hit"]

INTRABAR_MODES = ("pessimistic", "ohlc", "olhc")
_SELL = Side.SELL
_TRAILING = OrderType.TRAILING_STOP


def check_mode(mode: str) -> str:
    if mode not in INTRABAR_MODES:
        raise InvalidInput("invalid_intrabar", f"intrabar must be pessimistic, ohlc or olhc, got {mode!r}")
    return mode


def path(mode: str, side: Side, o: int, h: int, low: int, c: int, start: int = 0, entry: int | None = None) -> list[int]:
    """The prices an order of `side` sees in a bar: all of it (`start` 0), or from `entry` on, after point `start` of the path.

    `start` is the index of the last point of the bar's path already passed when the order was
    armed (0: the open); `entry` the price it was armed at (the open when None).
    """
    if mode == "ohlc" or (mode == "pessimistic" and side is not _SELL):
        full = [o, h, low, c]
    else:
        full = [o, low, h, c]
    if start >= 3:
        return [c if entry is None else entry]  # armed at the close: nothing of this bar is left
    if mode == "pessimistic":
        start = 0  # nothing is known after a mid-bar entry: the adverse extreme may still come first
    return [full[0] if entry is None else entry, *full[start + 1 :]]


class Hit:
    """Where an order fired on a path: on segment `segment` (0: the first point, a gap), at `price`; `rest` is the path after it."""

    __slots__ = ("order", "segment", "price", "distance", "rest")

    def __init__(self, order: Order, segment: int, price: int, distance: int, rest: list[int]) -> None:
        self.order = order
        self.segment = segment
        self.price = price
        self.distance = distance  # how far along its segment, so two hits on one segment are ordered
        self.rest = rest


def first_hit(orders: Sequence[Order], points: list[int], tick: int) -> Hit | None:
    """The first of `orders` (one order, or an OCO's legs) to fire along `points`, moving trailing stops as it goes.

    Trailing stops that do not fire keep the level the path moved them to. None: none fired.
    """
    best: Hit | None = None
    for order in orders:
        hit = _walk(order, points, tick, best)
        if hit is not None and (best is None or (hit.segment, hit.distance) < (best.segment, best.distance)):
            best = hit
    return best


def _walk(order: Order, points: list[int], tick: int, bound: Hit | None) -> Hit | None:
    a = points[0]
    if fires(order, a):
        return Hit(order, 0, a, 0, points)
    if order.type is _TRAILING:
        follow(order, a, tick)  # the first point may activate it, or be a new best (it never fires on the price that set it)
    sell = order.side is _SELL
    for i in range(1, len(points)):
        if bound is not None and i > bound.segment:
            return None  # another leg fired before this segment: no need to move this one further
        b = points[i]
        if order.type is _TRAILING:
            if (b > a) if sell else (b < a):  # moving its way: the stop follows the best price, it cannot fire here
                follow(order, b, tick)
                a = b
                continue
        if fires(order, b):
            level = order.stop_price
            return Hit(order, i, level, abs(level - a), [level, *points[i:]])
        a = b
    return None
