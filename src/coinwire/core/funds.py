"""Hold and settlement arithmetic: what an order must hold, and what a fill moves, in exact ATTO.

Fees are charged in the QUOTE currency on both sides (what the paper venue and most spot
exchanges do): a buy pays `notional + fee` of quote and receives the base; a sell gives
the base and receives `notional - fee` of quote.

The hold of an order covers its REMAINING size, so after each fill the caller lowers it to
`required_hold(...)` of the order with that fill recorded. The buy hold is chosen so that
the lowering alone frees at least what the fill costs, whatever the fill's price (at or
better than the limit), its maker/taker rate and its size, which keeps every partition's
`available >= 0` through any sequence of partial fills:

    hold(buy, limit L, remaining R) = notional(L, R) + R * fee_of_one_unit(L)

`fee_of_one_unit` is the larger of the maker and taker fee on one size unit at L, rounded
up; it equals the fee on the whole notional whenever that fee is a whole number of ATTO
(the usual case with 18 decimals), and it is never less than the sum of per-fill fees,
each rounded up, because `s * ceil(x) >= ceil(s * x)`.
"""

from __future__ import annotations

import msgspec

from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ceil_div
from coinwire.core.orders import Fill, Order, OrderType, Side
from coinwire.core.wallets import LineKind

__all__ = ["Movement", "hold_currency", "unit_fee_atto", "max_buy_cost", "required_hold", "fill_movements", "fee_in_quote",
           "CONDITIONAL_MARKET_MARGIN_PPM", "conditional_market_level", "oco_holds"]

# The most a triggered market buy (stop-market, take-profit-market, trailing buy) may spend is what
# its size costs at its stop level raised by this many millionths (5%), fees included: the hold it
# keeps while untriggered, and the budget its market order is then given. A market that gaps further
# past the level fills less than the order's size rather than spending funds nobody held.
CONDITIONAL_MARKET_MARGIN_PPM = 50_000

_BUY, _SELL, _MARKET = Side.BUY, Side.SELL, OrderType.MARKET  # module constants: see core.orders
_TRAILING = OrderType.TRAILING_STOP
_TRADE, _FEE = LineKind.TRADE, LineKind.FEE


class Movement(msgspec.Struct, frozen=True):
    """One change a fill makes to one currency of the order's partition (ATTO, signed)."""

    currency: str
    kind: LineKind
    amount: int


def hold_currency(instrument: Instrument, side: Side) -> str:
    """The currency an order spends, hence holds: the quote for a buy, the base for a sell."""
    return instrument.quote if side is _BUY else instrument.base


def unit_fee_atto(instrument: Instrument, price: int) -> int:
    """The larger of the maker/taker fee on one size unit at `price`, rounded up (ATTO of quote)."""
    notional = instrument.notional_atto(price, 1)
    return max(instrument.fee_atto(notional, maker=True), instrument.fee_atto(notional, maker=False))


def max_buy_cost(instrument: Instrument, price: int, size: int) -> int:
    """The most quote that buying `size` at `price` or better can cost, fees included, in any number of fills.

    The hold of a limit buy, and the budget a gateway should hold for a market buy (with
    `price` the worst level its book preview reaches), so partial fills never outrun it.
    """
    return instrument.notional_atto(price, size) + size * unit_fee_atto(instrument, price)


def required_hold(instrument: Instrument, order: Order, market_cost: int | None = None) -> tuple[str, int]:
    """The currency and ATTO amount `order` must hold for its remaining size.

    A done order holds nothing. A limit-priced buy (limit, IOC, FOK, post-only) holds the
    notional of its remainder at the limit plus the worst-case fee (see the module text);
    any sell holds the base of its remainder; a market buy holds `market_cost`, the quote
    budget (fees included) that the gateway previews from the book for the remaining size
    (best computed with `max_buy_cost` at the worst level reached), because no limit bounds
    its price.

    A conditional buy with a limit child (stop-limit, take-profit-limit) holds as a limit buy at
    its limit. A conditional market buy holds `max_buy_cost` at `conditional_market_level` (its
    level raised by CONDITIONAL_MARKET_MARGIN_PPM), or `market_cost` when given (a live venue's
    triggered market buy still open). A conditional sell holds its base, as any sell. OCO legs
    hold once: see `oco_holds`. Plain orders pay one attribute check for all this.
    """
    if order.exchange != instrument.exchange or order.symbol != instrument.symbol:
        raise ValueError(f"order {order.id} is on {order.exchange} {order.symbol}, not {instrument.symbol}")
    currency = hold_currency(instrument, order.side)
    remaining = order.remaining
    if order.is_done or remaining <= 0:
        return currency, 0
    if order.side is _SELL:
        return currency, instrument.base_atto(remaining)
    if order.type is _MARKET:
        if market_cost is None or market_cost < 0:
            raise ValueError(f"market buy {order.id} needs a non-negative market_cost, got {market_cost!r}")
        return currency, market_cost
    limit = order.limit
    if limit:
        return currency, max_buy_cost(instrument, limit, remaining)
    if market_cost is not None:  # a conditional market buy: no limit, its level bounds the price
        return currency, market_cost
    return currency, max_buy_cost(instrument, conditional_market_level(instrument, order), remaining)


def conditional_market_level(instrument: Instrument, order: Order) -> int:
    """The highest price a conditional market buy's hold pays for: its level plus CONDITIONAL_MARKET_MARGIN_PPM, on the tick.

    A trailing buy's level only falls once active; before, it is taken as the highest level its
    activation could set (the activation price plus its distance), so its hold never grows. A
    trailing buy activating at the first price it sees has no level until it has seen one
    (`core.conditional.follow` it with the current price before holding).
    """
    base = order.stop_price
    if order.type is _TRAILING and order.trail_best == 0:
        activation = order.activation_price
        if not activation:
            raise ValueError(f"trailing buy {order.id} has no level yet: follow it with the current price first")
        if order.trail_delta:
            base = activation + order.trail_delta
        else:
            base = activation + ceil_div(activation * order.trail_ppm, 1_000_000)
        base += instrument.tick  # follow rounds half-up, or steps one tick past the best
    if base <= 0:
        raise ValueError(f"conditional buy {order.id} has no stop level")
    raised = ceil_div(base * (1_000_000 + CONDITIONAL_MARKET_MARGIN_PPM), 1_000_000)
    return ceil_div(raised, instrument.tick) * instrument.tick


def oco_holds(instrument: Instrument, a: Order, b: Order) -> tuple[int, int]:
    """The holds of an OCO's two legs (ATTO of the currency they spend): one hold for the pair, never two.

    Only one leg can ever execute (one filling or firing cancels the other), so the leg whose
    id is the list's id holds the larger of the two legs' needs and the other holds nothing;
    `core.execution.resolve_oco` then moves the hold to the leg that lives on.
    """
    need = max(required_hold(instrument, a)[1], required_hold(instrument, b)[1])
    if a.id == a.list_id:
        return need, 0
    if b.id == b.list_id:
        return 0, need
    raise ValueError(f"orders {a.id} and {b.id} are not the legs of one OCO list ({a.list_id}, {b.list_id})")


def fill_movements(instrument: Instrument, fill: Fill) -> list[Movement]:
    """The TRADE and FEE movements of one fill: base and quote swap hands, the fee leaves in its currency.

    The fee is in the quote unless the fill names another currency (a live venue charging the
    asset received, as Binance does for buys).

    A zero fee makes no FEE movement (a line that moves nothing tells nobody anything).
    """
    if fill.exchange != instrument.exchange or fill.symbol != instrument.symbol:
        raise ValueError(f"fill {fill.id} is on {fill.exchange} {fill.symbol}, not {instrument.symbol}")
    if fill.size <= 0 or fill.notional < 0 or fill.fee < 0:
        raise ValueError(f"fill {fill.id} has size {fill.size}, notional {fill.notional}, fee {fill.fee}")
    base = instrument.base_atto(fill.size)
    sign = 1 if fill.side is _BUY else -1
    movements = [
        Movement(instrument.base, _TRADE, sign * base),
        Movement(instrument.quote, _TRADE, -sign * fill.notional),
    ]
    if fill.fee:
        movements.append(Movement(fill.fee_currency or instrument.quote, _FEE, -fill.fee))
    return movements


def fee_in_quote(instrument: Instrument, fill: Fill) -> int:
    """The fill's fee as ATTO of the quote: a fee in the base is valued at the fill's own price (rounded down).

    For reports that add fees up across fills; the ledger keeps every fee in the currency it was paid in.
    """
    if fill.fee_currency is None or fill.fee_currency == instrument.quote or not fill.fee:
        return fill.fee
    return fill.fee * fill.notional // instrument.base_atto(fill.size)
