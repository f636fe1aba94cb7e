"""Conditional orders in the core: when a stop, take-profit or trailing stop fires, and which requests to refuse.

Every venue (the backtest, paper and the live gateway's emulation) asks this module the same
questions, so an order fires at the same price everywhere:

* `fires(order, price)`: has the trigger price reached the order's level? A sell stop fires
  at or below `stop_price`, a buy stop at or above; a take-profit is the mirror image; a
  trailing stop is a stop at its current level once it is active.
* `follow(order, price, tick)`: a trailing stop sees one price; its level follows the best
  price seen since activation and never moves back.
* `TriggerBook`: one instrument's untriggered orders, sorted by level, so that a price that
  fires nothing costs O(log n); firing moves an order to `triggered` exactly once.
* `check_conditional`, `check_oco`, `check_bracket`: the refusals, each with a stable code
  (JSON-RPC -32602), made before anything is written.
* `Bracket`, `bracket_children`: what a bracket parent places once it has filled (levels as
  prices, or percentages of its average fill price, `fill_price`).

Prices are integer units of the instrument; percentages are integer millionths (ppm).
Levels derived from percentages are rounded to the tick half-up (`level`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from heapq import heapify, heappop, heappush

import msgspec

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.orders import (
    CONDITIONAL_TYPES,
    DoneReason,
    InvalidTransition,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TriggerSource,
)

__all__ = ["fires", "follow", "trigger_price", "level", "TriggerBook", "check_conditional", "check_oco", "Bracket",
           "encode_bracket", "decode_bracket", "check_bracket", "fill_price", "bracket_children", "PPM"]

PPM = 1_000_000  # percentages are integer millionths: 1.5% == 15_000

_BUY, _SELL = Side.BUY, Side.SELL  # module constants: see core.orders
_TRAILING = OrderType.TRAILING_STOP
_UNTRIGGERED, _TRIGGERED = OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED
_LAST, _MARK, _BID_ASK = TriggerSource.LAST, TriggerSource.MARK, TriggerSource.BID_ASK
_LIMIT_TIFS = frozenset({TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD})


def _fires_down(order: Order) -> bool:
    """True when the order fires as the price falls to its level (a sell stop, a buy take-profit)."""
    return (order.side is _SELL) is not order.type.takes_profit


def fires(order: Order, price: int) -> bool:
    """Whether `price` (the order's trigger price) reaches the order's level; a trailing stop not yet active never fires."""
    stop = order.stop_price
    if stop <= 0 or (order.type is _TRAILING and order.trail_best == 0):
        return False
    return price <= stop if _fires_down(order) else price >= stop


def level(price: int, percent_ppm: int, up: bool, tick: int) -> int:
    """`price` moved by `percent_ppm` millionths up or down, rounded to the tick half-up.

    The one rounding of levels a strategy derives from percentages (`stop_loss=3`: 3% below a
    long's entry) and of a trailing stop's percent distance, so every venue gets the same level.
    """
    scaled = price * (PPM + percent_ppm if up else PPM - percent_ppm)  # price * PPM * (1 ± pct)
    unit = tick * PPM
    return (2 * scaled + unit) // (2 * unit) * tick


def _round_tick(price: int, tick: int) -> int:
    """To the nearest multiple of the tick, halves up."""
    return (2 * price + tick) // (2 * tick) * tick


def follow(order: Order, price: int, tick: int) -> bool:
    """Show a trailing stop one trigger price; returns True when its level (`stop_price`) changed.

    It activates once `activation_price` is reached (a sell at or above it, a buy at or below;
    0: at the first price), then remembers the best price seen (`trail_best`: a sell's highest,
    a buy's lowest) and sets its level `trail_delta` (or `trail_ppm` of the best) away from it,
    rounded to the tick half-up and strictly beyond the best (on the tick grid even when the
    trigger price, a mark, is not), so it never fires on the price that set it. The level never
    moves back: a sell's only rises, a buy's only falls.
    """
    sell = order.side is _SELL
    best = order.trail_best
    if best == 0:
        activation = order.activation_price
        if activation and (price < activation if sell else price > activation):
            return False
        best = price
    elif (price <= best) if sell else (price >= best):
        return False  # not a new best: the level stays
    else:
        best = price
    order.trail_best = best
    if order.trail_delta:
        new = _round_tick(best - order.trail_delta if sell else best + order.trail_delta, tick)
    else:
        new = level(best, order.trail_ppm, not sell, tick)
    old = order.stop_price
    if sell:
        new = min(new, (best - 1) // tick * tick)  # strictly below the best, on the tick
        if new <= old:  # also a level of 0 or less (a best of one tick): none yet, it never fires
            return False
    else:
        new = max(new, (best // tick + 1) * tick)  # strictly above the best, on the tick
        if old and new >= old:
            return False
    order.stop_price = new
    return True


def trigger_price(order: Order, *, last: int | None, bid: int | None, ask: int | None, mark: int | None) -> int | None:
    """The price the order's `trigger` watches: the last trade, the mark, or the touch it would take (None: not known)."""
    source = order.trigger
    if source is _LAST:
        return last
    if source is _MARK:
        return mark
    return bid if order.side is _SELL else ask


class _Ladder:
    """One (trigger source, side)'s untriggered orders: fixed levels sorted as (level, id), trailing stops apart."""

    __slots__ = ("down", "up", "trailing")

    def __init__(self) -> None:
        self.down: list[tuple[int, int]] = []  # fire when the price falls to the level or below
        self.up: list[tuple[int, int]] = []  # fire when the price rises to the level or above
        self.trailing: dict[int, Order] = {}

    def see(self, price: int, tick: int, ts: int, fired: list[int], moved: list[Order]) -> None:
        """Follow the trailing stops with `price` (collecting those whose level moved), then collect the ids it fires."""
        down = self.down
        if down and down[-1][0] >= price:
            i = bisect_left(down, (price,))  # the first level >= price
            fired += [oid for _, oid in down[i:]]
            del down[i:]
        up = self.up
        if up and up[0][0] <= price:
            i = bisect_left(up, (price + 1,))  # past the last level <= price
            fired += [oid for _, oid in up[:i]]
            del up[:i]
        trailing = self.trailing
        if trailing:
            gone: list[int] = []
            for oid, order in trailing.items():
                if follow(order, price, tick):
                    order.move(_UNTRIGGERED, ts)  # its level moved: the order changed
                    moved.append(order)
                elif fires(order, price):
                    gone.append(oid)
            for oid in gone:
                del trailing[oid]
            fired += gone


class TriggerBook:
    """One instrument's untriggered conditional orders, and the prices that fire them.

    Orders with a fixed level sit in lists sorted by level per trigger source, side and
    direction, so a price that fires nothing costs a comparison per list and one that fires k
    orders O(log n + k); trailing stops (whose levels move) are scanned on each price of their
    source. A fired order leaves the book `triggered` and cannot come back (`add` takes only
    untriggered orders, and the state machine has no way back): it fires at most once, ever.
    Change a held order's level only by `remove` and `add` again.

    `moved` lists the trailing stops whose level the latest `on_price` / `on_touch` moved: a
    venue stores them (their level survives a restart) and may lower a trailing buy's hold.
    """

    __slots__ = ("instrument", "moved", "_orders", "_ladders", "_expiries")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.moved: list[Order] = []
        self._orders: dict[int, Order] = {}
        self._ladders: dict[tuple[TriggerSource, Side], _Ladder] = {}
        self._expiries: list[tuple[int, int]] = []  # heap of (expires_at, id); entries of orders gone are skipped

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def orders(self) -> list[Order]:
        """The untriggered orders held, in id order."""
        return [self._orders[oid] for oid in sorted(self._orders)]

    def add(self, order: Order) -> None:
        """Hold an accepted (untriggered) conditional order of this instrument until it fires, expires or is removed."""
        if order.status is not _UNTRIGGERED or order.type not in CONDITIONAL_TYPES or order.id in self._orders:
            raise InvalidTransition(f"order {order.id}: only an untriggered conditional order not already held can be added")
        if order.symbol != self.instrument.symbol or order.exchange != self.instrument.exchange:
            raise ValueError(f"order {order.id} is on {order.exchange} {order.symbol}, not {self.instrument.symbol}")
        key = (order.trigger, order.side)
        ladder = self._ladders.get(key)
        if ladder is None:
            ladder = self._ladders[key] = _Ladder()
        if order.type is _TRAILING:
            ladder.trailing[order.id] = order
        else:
            insort(ladder.down if _fires_down(order) else ladder.up, (order.stop_price, order.id))
        self._orders[order.id] = order
        expires_at = order.expires_at
        if expires_at is not None:
            heap = self._expiries
            heappush(heap, (expires_at, order.id))
            if len(heap) > 64 + 2 * len(self._orders):  # mostly orders gone (fired, removed): rebuild
                heap[:] = [entry for entry in heap if entry[1] in self._orders]
                heapify(heap)

    def remove(self, order_id: int) -> Order | None:
        """Take an order off the book (a cancel, an OCO sibling firing); its state is the caller's business."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        ladder = self._ladders[(order.trigger, order.side)]
        if order.type is _TRAILING:
            del ladder.trailing[order_id]
        else:
            levels = ladder.down if _fires_down(order) else ladder.up
            del levels[bisect_left(levels, (order.stop_price, order_id))]
        return order

    def on_price(self, source: TriggerSource, price: int, ts: int) -> list[Order]:
        """A new price of `source`: trailing stops follow it, then every order it fires is returned, triggered, in id order.

        A BID_ASK price is taken as both touches (`on_touch(price, price)`), as over candles.
        """
        if source is _BID_ASK:
            return self.on_touch(price, price, ts)
        fired: list[int] = []
        moved: list[Order] = []
        self.moved = moved
        tick = self.instrument.tick
        ladders = self._ladders
        for side in (_BUY, _SELL):
            ladder = ladders.get((source, side))
            if ladder is not None:
                ladder.see(price, tick, ts, fired, moved)
        return self._fire(fired, ts) if fired else []

    def on_touch(self, bid: int | None, ask: int | None, ts: int) -> list[Order]:
        """New touches for the BID_ASK orders: sells watch the bid, buys the ask (None: that side is unchanged)."""
        fired: list[int] = []
        moved: list[Order] = []
        self.moved = moved
        tick = self.instrument.tick
        if bid is not None and (ladder := self._ladders.get((_BID_ASK, _SELL))) is not None:
            ladder.see(bid, tick, ts, fired, moved)
        if ask is not None and (ladder := self._ladders.get((_BID_ASK, _BUY))) is not None:
            ladder.see(ask, tick, ts, fired, moved)
        return self._fire(fired, ts) if fired else []

    def expire(self, ts: int) -> list[Order]:
        """Retire untriggered orders whose `expire_at` or `cancel_after` has passed by `ts` (done/expired), in id order."""
        heap = self._expiries
        expired: list[Order] = []
        while heap and heap[0][0] <= ts:
            oid = heappop(heap)[1]
            held = self._orders.get(oid)
            if held is not None and (held.expires_at or 0) <= ts:  # else gone, or re-added with another date
                self.remove(oid)
                held.move(OrderStatus.DONE, ts, DoneReason.EXPIRED)
                expired.append(held)
        return sorted(expired, key=lambda o: o.id)

    def _fire(self, ids: list[int], ts: int) -> list[Order]:
        orders = self._orders
        fired: list[Order] = []
        for oid in sorted(ids):
            order = orders.pop(oid)
            order.move(_TRIGGERED, ts)
            order.triggered_at = ts
            fired.append(order)
        return fired


# --- refusals --------------------------------------------------------------------------------

def _on_tick(value: int, instrument: Instrument, field: str) -> None:
    """The rule limits follow (`Instrument.parse_price`): positive and a multiple of the tick."""
    if value <= 0 or value % instrument.tick:
        raise InvalidInput(f"{field}_off_tick",
                           f"{field} {instrument.price_str(value)} is not a positive multiple of the tick "
                           f"{instrument.price_str(instrument.tick)} for {instrument.symbol}",
                           field=field, tick=instrument.price_str(instrument.tick))


def check_conditional(
    order: Order,
    instrument: Instrument,
    *,
    last: int | None,
    bid: int | None,
    ask: int | None,
    now: int,
    allow_immediate: bool = False,
    mark: int | None = None,
) -> None:
    """Refuse a conditional order request that cannot become a sound order, with a stable code (InvalidInput).

    Checked in this order: time in force, levels on the tick (stop, limit, trailing distance,
    activation), `expire_at` in the future, and last that it would not fire at once at the
    current trigger price (`stop_would_trigger`, unless `allow_immediate`; skipped when that
    price is unknown). A plain order has nothing to check here. `mark` (an addition) is the
    mark price for MARK-triggered orders.
    """
    kind = order.type
    if kind not in CONDITIONAL_TYPES:
        return
    tif = order.time_in_force
    if tif in _LIMIT_TIFS and not kind.child_is_limit:
        raise InvalidInput("time_in_force_invalid", f"time_in_force {tif.value} applies to stop-limit and take-profit-limit "
                           f"orders only; a {kind.value} order fires a market order", field="time_in_force")
    if tif is TimeInForce.GTD and order.expire_at <= 0:
        raise InvalidInput("time_in_force_invalid", "time_in_force GTD needs expire_at", field="time_in_force")
    if kind is _TRAILING:
        if order.trail_ppm == 0 and order.trail_delta == 0:
            raise InvalidInput("trailing_delta_required", "a trailing stop needs trailing_delta (a percentage or a price distance)",
                               field="trailing_delta")
        if order.trail_ppm < 0 or order.trail_delta < 0 or order.trail_ppm >= PPM or (order.trail_ppm and order.trail_delta):
            raise InvalidInput("trailing_delta_out_of_range",
                               "trailing_delta must be one positive distance: a percentage below 100% or a price", field="trailing_delta")
        if order.activation_price:
            _on_tick(order.activation_price, instrument, "activation_price")
    else:
        if order.stop_price == 0:
            raise InvalidInput("stop_price_required", f"a {kind.value} order needs stop_price", field="stop_price")
        _on_tick(order.stop_price, instrument, "stop_price")
    if kind.child_is_limit:
        if order.limit == 0:
            raise InvalidInput("limit_required", f"a {kind.value} order needs limit (the price of the order it fires)", field="limit")
        _on_tick(order.limit, instrument, "limit")
    if order.expire_at and order.expire_at <= now:
        raise InvalidInput("expire_at_in_past", "expire_at must be in the future", field="expire_at")
    if allow_immediate or kind is _TRAILING:  # a trailing stop's level is set by the prices after it, never at once
        return
    price = trigger_price(order, last=last, bid=bid, ask=ask, mark=mark)
    if price is not None and fires(order, price):
        raise InvalidInput("stop_would_trigger",
                           f"a {order.side.value} {kind.value} at {instrument.price_str(order.stop_price)} would trigger at once: "
                           f"the {order.trigger.value} price is {instrument.price_str(price)} (allow_immediate=true accepts it)",
                           field="stop_price", price=instrument.price_str(price))


def check_oco(limit_leg: Order, stop_leg: Order, *, last: int | None, bid: int | None, ask: int | None) -> None:
    """Refuse an OCO whose legs disagree (side, size) or sit on the wrong sides of the market.

    A sell OCO takes profit above the market with its limit and stops a loss below it; a buy
    OCO the mirror. The market is the last trade (else the touch the legs would take); the
    stop is compared with its own trigger price when that is known. The limit must always be on
    the far side of the stop.
    """
    if limit_leg.side is not stop_leg.side or limit_leg.size != stop_leg.size:
        raise InvalidInput("oco_legs_disagree", "an OCO's two legs must have the same side and size")
    sell = limit_leg.side is _SELL
    limit, stop = limit_leg.limit, stop_leg.stop_price
    market = last if last is not None else (bid if sell else ask)
    stop_market = trigger_price(stop_leg, last=last, bid=bid, ask=ask, mark=None)
    if stop_market is None:
        stop_market = market
    wrong = limit <= stop if sell else limit >= stop
    if market is not None:
        wrong = wrong or (limit <= market if sell else limit >= market)
    if stop_market is not None:
        wrong = wrong or (stop >= stop_market if sell else stop <= stop_market)
    if wrong:
        where = "above the market and the stop below it" if sell else "below the market and the stop above it"
        raise InvalidInput("oco_prices_wrong_side", f"a {limit_leg.side.value} OCO needs its limit {where}")


# --- brackets --------------------------------------------------------------------------------

class Bracket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A bracket parent's children, placed once the parent has filled (what `Order.bracket` holds, as JSON).

    A leg is there when its type is: both make an OCO, one alone is a single order. Each
    leg's level is a price (`*_price`: the take-profit's limit for a LIMIT, else its trigger
    level) or a percentage of the parent's average fill price (`*_ppm`, millionths), resolved
    when the children are made (`bracket_children`), so it is the fill's in every venue.
    `*_limit` is the limit of a *-LIMIT child (0 otherwise). Integer price units. A stop-loss
    of type TRAILING_STOP has no level of its own but one distance (`stop_loss_trail_ppm` of
    the best price, or `stop_loss_trail_delta` in price units): it follows from the parent's
    fill. Stored brackets from before percentages, lone legs and trailing legs decode unchanged.
    """

    take_profit_type: OrderType | None = None
    take_profit_price: int = 0
    stop_loss_type: OrderType | None = None
    stop_loss_price: int = 0
    take_profit_limit: int = 0
    stop_loss_limit: int = 0
    trigger: TriggerSource = TriggerSource.LAST
    take_profit_ppm: int = 0
    stop_loss_ppm: int = 0
    stop_loss_trail_ppm: int = 0
    stop_loss_trail_delta: int = 0

    @property
    def legs(self) -> int:
        """How many children it makes (the ids a venue reserves for them)."""
        return (self.take_profit_type is not None) + (self.stop_loss_type is not None)


_TP_TYPES = frozenset({OrderType.LIMIT, OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT})
_SL_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, _TRAILING})
_bracket_decoder = msgspec.json.Decoder(Bracket)


def encode_bracket(bracket: Bracket) -> str:
    """The JSON stored in `Order.bracket`."""
    return msgspec.json.encode(bracket).decode()


def decode_bracket(text: str) -> Bracket:
    """A stored bracket back; malformed text is refused as `bracket_invalid`."""
    try:
        return _bracket_decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise InvalidInput("bracket_invalid", f"bracket is malformed: {exc}", field="bracket") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput("bracket_invalid", f"bracket is not JSON: {exc}", field="bracket") from None


def _check_leg(kind: OrderType, price: int, ppm: int, limit: int, field: str, instrument: Instrument | None) -> None:
    """One leg: exactly one level (a price, or a percentage in (0, 100%)); its limit when it fires a limit order."""
    if (price != 0) == (ppm != 0) or price < 0 or not 0 <= ppm < PPM:
        raise InvalidInput("bracket_invalid", f"{field} needs one level: a price, or a percentage of the entry's fill "
                           "above 0% and below 100%", field=field)
    if kind.child_is_limit:
        if limit <= 0:
            raise InvalidInput("limit_required", f"a {kind.value} needs its limit", field=field)
        if ppm:
            raise InvalidInput("bracket_type_invalid", f"a {kind.value} {field} takes a price, not a percentage "
                               "(its limit is a price)", field=field)
    if instrument is not None:
        if price:
            _on_tick(price, instrument, field)
        if limit:
            _on_tick(limit, instrument, f"{field}_limit")


def _check_trailing_leg(bracket: Bracket) -> None:
    """A trailing stop-loss: no level (the fill gives it) and one distance, as `check_conditional` wants of a trailing stop."""
    ppm, delta = bracket.stop_loss_trail_ppm, bracket.stop_loss_trail_delta
    if bracket.stop_loss_price or bracket.stop_loss_ppm or bracket.stop_loss_limit:
        raise InvalidInput("bracket_invalid", "a trailing stop_loss has no level of its own: it follows from the entry's "
                           "fill at its distance", field="stop_loss")
    if ppm < 0 or delta < 0 or ppm >= PPM or (ppm != 0) == (delta != 0):
        raise InvalidInput("trailing_delta_out_of_range", "a trailing stop_loss needs one positive distance: "
                           "a percentage below 100% or a price", field="stop_loss")


def check_bracket(parent: Order, bracket: Bracket, reference: int, *, instrument: Instrument | None = None) -> None:
    """Refuse a bracket whose children could not protect the parent's position, with a stable code.

    The entry is the parent's limit, or `reference` (the market) for a market parent. A long's
    (a buy parent's) stop-loss must be below the entry and its take-profit above; a short's
    the mirror. Levels given as percentages of the fill are on the right side by construction;
    only prices are compared. A leg's type must be a take-profit kind or a stop kind, and a
    *-LIMIT child needs its limit; a trailing stop-loss one distance (`trailing_delta_out_of_range`).
    With `instrument` (an addition), every price must be on its tick.
    """
    tp_type, sl_type = bracket.take_profit_type, bracket.stop_loss_type
    if tp_type is None and sl_type is None:
        raise InvalidInput("bracket_incomplete", "a bracket needs a take_profit, a stop_loss or both", field="bracket")
    if (tp_type is not None and tp_type not in _TP_TYPES) or (sl_type is not None and sl_type not in _SL_TYPES):
        raise InvalidInput("bracket_type_invalid", "a bracket's take-profit is limit, take-profit-market or take-profit-limit; "
                           "its stop-loss stop-market, stop-limit or trailing-stop", field="bracket")
    if tp_type is not None:
        _check_leg(tp_type, bracket.take_profit_price, bracket.take_profit_ppm, bracket.take_profit_limit, "take_profit",
                   instrument)
    if sl_type is _TRAILING:
        _check_trailing_leg(bracket)
    elif sl_type is not None:
        _check_leg(sl_type, bracket.stop_loss_price, bracket.stop_loss_ppm, bracket.stop_loss_limit, "stop_loss", instrument)
    entry = parent.limit or reference
    long = parent.side is _BUY
    stop = bracket.stop_loss_price
    if sl_type is not None and stop and ((stop >= entry) if long else (stop <= entry)):
        raise InvalidInput("bracket_stop_wrong_side", f"a {'long' if long else 'short'}'s stop-loss must be "
                           f"{'below' if long else 'above'} its entry price", field="stop_loss")
    take = bracket.take_profit_price
    if tp_type is not None and take and ((take <= entry) if long else (take >= entry)):
        raise InvalidInput("bracket_take_profit_wrong_side", f"a {'long' if long else 'short'}'s take-profit must be "
                           f"{'above' if long else 'below'} its entry price", field="take_profit")


def fill_price(order: Order, instrument: Instrument) -> int:
    """An order's average fill price in price units, rounded to the tick half-up (0 before any fill).

    The entry price percentage exits are taken from, the same in every venue.
    """
    if order.filled_size <= 0:
        return 0
    raw = instrument.notional_atto(1, order.filled_size)  # ATTO of one price unit times the filled size
    tick = instrument.tick
    return (2 * order.filled_notional + raw * tick) // (2 * raw * tick) * tick


def bracket_children(parent: Order, bracket: Bracket, first_id: int, ts: int, *,
                     instrument: Instrument | None = None) -> tuple[Order, ...]:
    """The children of a parent that has filled: the take-profit then the stop-loss, those the bracket has.

    They close what the parent opened: the opposite side, sized to what it filled (never
    more), in its partition and run. Two make a pending OCO (ids first_id, first_id + 1;
    `list_id` is the take-profit's id); one alone is a plain conditional (or limit) order with
    id first_id. A percentage level is `level(fill_price(parent), ppm)` away from the fill (a
    long's stop below, its take-profit above), tick half-up, never below one tick; it needs
    `instrument`. A trailing stop-loss child follows from the fill price at once (`follow`):
    it has its level, strictly beyond the fill, from the start (it too needs `instrument`).
    A parent with no fill has no children (a bug to ask).
    """
    if parent.filled_size <= 0:
        raise ValueError(f"order {parent.id} has not filled: a bracket's children exist only from a parent fill")
    long = parent.side is _BUY
    entry = 0
    sl_type = bracket.stop_loss_type
    if bracket.take_profit_ppm or bracket.stop_loss_ppm or sl_type is _TRAILING:
        if instrument is None:
            raise ValueError("a bracket with percentage levels or a trailing stop needs the instrument to resolve them "
                             "from the fill")
        entry = fill_price(parent, instrument)

    def resolved(price: int, ppm: int, up: bool) -> int:
        if price or instrument is None:
            return price
        return max(level(entry, ppm, up, instrument.tick), instrument.tick)

    two = bracket.legs == 2
    children: list[Order] = []

    def child(suffix: str, kind: OrderType, stop_price: int, limit: int) -> None:
        oid = first_id + len(children)
        children.append(Order(
            id=oid, client_oid=f"{parent.client_oid}:{suffix}", exchange=parent.exchange, symbol=parent.symbol,
            side=parent.side.opposite, type=kind, size=parent.filled_size, limit=limit, stop_price=stop_price,
            trigger=bracket.trigger, wallet_set_id=parent.wallet_set_id, run_id=parent.run_id, owner_id=parent.owner_id,
            account_id=parent.account_id, list_id=first_id if two else 0, parent_id=parent.id, created_at=ts,
            last_updated_at=ts))

    tp_type = bracket.take_profit_type
    if tp_type is not None:
        take = resolved(bracket.take_profit_price, bracket.take_profit_ppm, long)
        if tp_type is OrderType.LIMIT:
            child("tp", tp_type, 0, take)
        else:
            child("tp", tp_type, take, bracket.take_profit_limit)
    if sl_type is _TRAILING:
        child("sl", sl_type, 0, 0)
        stop = children[-1]
        stop.trail_ppm, stop.trail_delta = bracket.stop_loss_trail_ppm, bracket.stop_loss_trail_delta
        assert instrument is not None
        follow(stop, entry, instrument.tick)  # from the fill: its level is there at once, every venue alike
    elif sl_type is not None:
        child("sl", sl_type, resolved(bracket.stop_loss_price, bracket.stop_loss_ppm, not long), bracket.stop_loss_limit)
    return tuple(children)
