"""One order path for every mode: validate, hold, match and settle an order on the core objects.

The paper gateway, the backtest venue and the paper venue of a strategy run all place
orders the same way: refuse what the venue would refuse (post-only that would take, market
order with nothing to take, notional below the minimum), hold what the order can cost, hand
it to the matching engine, then settle each fill on the ledger and trim the hold to what
the remainder still needs. Keeping that sequence here is what makes a backtest's fills the
paper exchange's fills.

Also: sizing by quote budget (`size_for_funds`), the "all-in" buy that exchanges offer as a
quote-quantity market order, computed exactly so fee included it never exceeds the budget.
"""

from __future__ import annotations

from coinwire.core.conditional import follow
from coinwire.core.errors import DomainError, InvalidInput
from coinwire.core.funds import max_buy_cost, required_hold
from coinwire.core.instruments import FEE_SCALE, Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO_DECIMALS, units_to_str
from coinwire.core.orders import DoneReason, Fill, InvalidTransition, Order, OrderStatus, OrderType, Side, TimeInForce
from coinwire.core.wallets import WalletLine

__all__ = ["place_order", "accept_order", "settle_fills", "release_hold", "size_for_funds", "max_size_within", "max_limit_buy_size",
           "check_funds", "size_funds_order", "accept_conditional", "fire", "child_type", "resolve_oco"]

_BUY, _SELL, _MARKET, _POST_ONLY = Side.BUY, Side.SELL, OrderType.MARKET, OrderType.POST_ONLY  # see core.orders
_CHILD_LIMIT_TYPES = {TimeInForce.GTC: OrderType.LIMIT, TimeInForce.GTD: OrderType.LIMIT, TimeInForce.IOC: OrderType.IOC,
                      TimeInForce.FOK: OrderType.FOK}


def place_order(
    ledger: Ledger, engine: MatchingEngine, order: Order, ts: int, *, budget: int | None = None, hold: int | None = None
) -> tuple[list[Fill], list[WalletLine]]:
    """Accept a pending order: checks, hold, match now, settle; returns its fills and ledger lines.

    `budget` (ATTO of the quote) caps what a market buy may spend and becomes its hold; without
    it a market buy holds what walking the book for its size can cost. Raises before changing
    anything when the order is refused (the ledger and the book are untouched). `hold`: see `accept_order`;
    it stays while the order rests unfilled (an OCO leg holding for the list), else it is trimmed as usual.
    """
    lines = accept_order(ledger, engine, order, ts, budget=budget, hold=hold)
    fills = engine.submit(order, ts)
    if fills or hold is None or order.is_done:  # an OCO leg resting unfilled keeps the list's hold
        lines += settle_fills(ledger, engine.instrument, order, fills, ts)
    return fills, lines


def accept_order(
    ledger: Ledger, engine: MatchingEngine, order: Order, ts: int, *, budget: int | None = None, margin_ppm: int = 0,
    hold: int | None = None,
) -> list[WalletLine]:
    """The checks and the hold of `place_order`, without matching: a live venue matches the order.

    The engine's book is the mirror of the venue's, so the checks a venue makes against its
    book (post-only would take, nothing to take, minimum notional) are made on it. A market
    buy without a budget holds its previewed cost plus `margin_ppm` millionths: the venue's
    book may have moved by the time the order gets there.

    `hold` replaces the order's own need: an OCO's limit leg holds what `funds.oco_holds` gives.
    """
    inst = engine.instrument
    market_cost: int | None = None
    if order.funds:  # a market buy by amount: the book sizes it, the funds are its hold (never on the size path)
        budget = size_funds_order(engine, order)
    if order.type is _POST_ONLY and engine.preview(order.side, order.size, order.limit)[0] > 0:
        raise DomainError("post_only_would_take", "a post-only order must not take liquidity; it would cross the book now")
    if order.type is _MARKET:
        took, notional = engine.preview(order.side, order.size, None)
        if took == 0:
            raise DomainError("no_liquidity", f"no liquidity on the {order.side.opposite.value} side of {inst.symbol}")
        if order.side is _BUY:
            if budget is not None:
                market_cost = budget
            else:
                # one fee rounding (< 1 ATTO) per level walked at most: a bound that cannot be exceeded
                market_cost = notional + inst.fee_atto(notional, maker=False) + engine.book.depth(_SELL)
                market_cost += market_cost * margin_ppm // 1_000_000
        if notional < inst.min_notional:
            raise InvalidInput("notional_below_minimum", f"order value is below the minimum notional for {inst.symbol}")
    elif inst.notional_atto(order.limit, order.size) < inst.min_notional:
        raise InvalidInput("notional_below_minimum", f"order value is below the minimum notional for {inst.symbol}")
    hold_currency, hold_amount = required_hold(inst, order, market_cost)
    if hold is not None:
        hold_amount = hold
    return ledger.set_hold(order.id, order.exchange, hold_currency, order.wallet_set_id, hold_amount, ts, order.account_id)


def settle_fills(
    ledger: Ledger, instrument: Instrument, order: Order, fills: list[Fill], ts: int, *, market_cost: int | None = None
) -> list[WalletLine]:
    """Ledger lines for an order's new fills, then its hold trimmed to what its remainder needs.

    `market_cost` is what a market buy that is still open keeps holding (a live venue may
    report its fills before it is done); the paper venue's market orders are done at once.
    """
    lines: list[WalletLine] = []
    currency, need = required_hold(instrument, order, market_cost)  # what the remainder (after these fills) needs
    for fill in fills:
        lines += ledger.apply_fill(fill, instrument, order.wallet_set_id, ts, hold_after=need)
    if ledger.hold_of(order.id) != need:
        lines += ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, need, ts, order.account_id)
    return lines


def release_hold(ledger: Ledger, instrument: Instrument, order: Order, ts: int) -> list[WalletLine]:
    """After a cancel or expiry: the hold goes back to what the (now done) order needs, i.e. nothing."""
    currency, need = required_hold(instrument, order)
    return ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, need, ts, order.account_id)


def accept_conditional(
    ledger: Ledger, instrument: Instrument, order: Order, ts: int, *, hold: int | None = None, price: int | None = None
) -> list[WalletLine]:
    """Hold a conditional order's funds from acceptance and make it untriggered; refuses only what the ledger refuses.

    The request checks are `core.conditional.check_conditional`'s (made first, by the caller).
    `hold` replaces the order's own need (`funds.required_hold`): an OCO leg's share from
    `funds.oco_holds`. `price` (an addition: its current trigger price) is shown to a trailing
    stop first, so one without an activation price starts following now and a trailing buy
    has a level to hold at. Raises InsufficientFunds changing nothing when the funds are not there.
    """
    trail = (order.trail_best, order.stop_price)
    if price is not None and order.type is OrderType.TRAILING_STOP:
        follow(order, price, instrument.tick)
    try:
        currency, need = required_hold(instrument, order)
        lines = ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, need if hold is None else hold, ts,
                                order.account_id)
    except BaseException:
        order.trail_best, order.stop_price = trail  # refused: the order is as it came
        raise
    order.move(OrderStatus.UNTRIGGERED, ts)
    return lines


def child_type(order: Order) -> OrderType:
    """The order a conditional order becomes when it fires: MARKET, or LIMIT / IOC / FOK per its time in force."""
    if order.type.child_is_limit:
        return _CHILD_LIMIT_TYPES[order.time_in_force]
    return _MARKET


def fire(ledger: Ledger, engine: MatchingEngine, order: Order, ts: int) -> tuple[list[Fill], list[WalletLine]]:
    """Execute a triggered conditional order as its child on the engine now; it keeps its type, its status follows the child.

    A market child walks the book (a buy spends at most its hold: it takes no more than that
    buys, the rest is cancelled); a limit child takes what its limit reaches, then rests
    (GTC, GTD until expire_at), or is cancelled (IOC) or killed (FOK). Fills settle on the
    ledger and the hold is trimmed to what the remainder needs, as for any order.
    """
    if order.status is not OrderStatus.TRIGGERED:
        raise InvalidTransition(f"order {order.id}: only a triggered order fires, not a {order.status.value} one")
    kind = child_type(order)
    cap: int | None = None
    if kind is _MARKET and order.side is _BUY:
        cap = size_for_funds(engine, _BUY, ledger.hold_of(order.id))
        if cap <= 0:  # its budget buys nothing (no liquidity, or the market gapped far past the level)
            order.exchange_at = ts
            order.move(OrderStatus.DONE, ts, DoneReason.CANCELLED)
            return [], release_hold(ledger, engine.instrument, order, ts)
    fills = engine.submit(order, ts, as_type=kind, max_size=cap)
    return fills, settle_fills(ledger, engine.instrument, order, fills, ts)


def resolve_oco(ledger: Ledger, instrument: Instrument, done_leg: Order, sibling: Order, ts: int) -> list[WalletLine]:
    """One OCO leg filled (even partly), fired or was cancelled: cancel the sibling and move the hold to the leg that lives on.

    Call it on the leg's first fill or its firing, BEFORE settling the fill or firing it, so the
    leg that lives on holds what it needs now (`funds.required_hold` of it) and the sibling
    nothing: the pair never holds more than the one hold it had. A leg cancelled by the user
    (done) cancels the list: both end holding nothing. Take the sibling off the engine or the
    trigger book first (there it may already be cancelled); it is cancelled here otherwise.
    """
    if done_leg.list_id == 0 or done_leg.list_id != sibling.list_id or done_leg.id == sibling.id:
        raise ValueError(f"orders {done_leg.id} and {sibling.id} are not the two legs of one OCO list")
    if not sibling.is_done:
        sibling.move(OrderStatus.DONE, ts, DoneReason.CANCELLED)
    lines = release_hold(ledger, instrument, sibling, ts)  # first the release, so the move never needs new funds
    currency, need = required_hold(instrument, done_leg)
    return lines + ledger.set_hold(done_leg.id, done_leg.exchange, currency, done_leg.wallet_set_id, need, ts, done_leg.account_id)


def check_funds(instrument: Instrument, side: Side, type_: OrderType, funds: int) -> None:
    """Refuse a `funds` (ATTO of the quote, fee included) that cannot make an order, before anything is written.

    Only a market buy spends an amount; the amount must be positive; and what it leaves for the
    notional once the taker fee is taken out must reach the market's minimum notional.
    """
    if side is not _BUY or type_ is not _MARKET:
        raise InvalidInput("funds_market_buy_only", "funds (an amount of the quote to spend) applies to market buys only; "
                           "give size for a sell or a limit order")
    if funds <= 0:
        raise InvalidInput("funds_not_positive", "funds must be a positive amount of the quote currency")
    if funds * FEE_SCALE // (FEE_SCALE + instrument.taker_fee) < instrument.min_notional:
        raise InvalidInput("funds_below_min_notional",
                           f"funds leave less than the minimum order value of {instrument.symbol} once the fee is paid",
                           min_notional=units_to_str(instrument.min_notional, ATTO_DECIMALS))


def size_funds_order(engine: MatchingEngine, order: Order) -> int:
    """Give a market buy by funds the size the book sells for them now, fee included; returns the funds (its hold).

    The size is what `submit` then fills level by level, each fill with its own fee rounded up,
    so spent + fees <= funds; a book that sells less than one step for the funds refuses the order.
    """
    inst = engine.instrument
    check_funds(inst, order.side, order.type, order.funds)
    size = size_for_funds(engine, _BUY, order.funds)
    if size <= 0 or size < inst.min_size:
        if next(engine.available_levels(_BUY, None), None) is None:
            raise DomainError("no_liquidity", f"no liquidity on the sell side of {inst.symbol}")
        raise InvalidInput("funds_below_min_size", f"funds buy less than the minimum size of {inst.symbol} at the book's prices",
                           min_size=inst.size_str(max(inst.min_size, inst.step)))
    order.size = size
    return order.funds


def max_size_within(instrument: Instrument, price: int, funds: int, maker: bool = False) -> int:
    """The largest size on the step grid whose notional at `price` plus its fee fits in `funds` ATTO."""
    if funds <= 0 or price <= 0:
        return 0
    unit = instrument.notional_atto(price, 1)
    rate = instrument.maker_fee if maker else instrument.taker_fee
    # notional*(1 + rate/FEE_SCALE) <= funds, ignoring the fee's rounding up; then step down until exact
    size = funds * FEE_SCALE // (unit * (FEE_SCALE + rate))
    size -= size % instrument.step
    while size > 0:
        notional = unit * size
        if notional + instrument.fee_atto(notional, maker) <= funds:
            return size
        size -= instrument.step
    return 0


def max_limit_buy_size(instrument: Instrument, limit: int, funds: int) -> int:
    """The largest limit-buy size whose hold (notional at the limit plus the worst-case fee) fits in `funds`."""
    size = max_size_within(instrument, limit, funds)
    while size > 0 and max_buy_cost(instrument, limit, size) > funds:
        # the hold rounds the fee up per size unit: step down by the overshoot, at least one step
        over = max_buy_cost(instrument, limit, size) - funds
        unit = instrument.notional_atto(limit, 1) or 1
        size -= max(instrument.step, (over // unit + 1) - (over // unit + 1) % instrument.step or instrument.step)
    return max(size, 0)


def size_for_funds(engine: MatchingEngine, side: Side, funds: int) -> int:
    """How much a market order of `side` can take from the book now with `funds` ATTO of quote, fees included.

    Walks the available levels best first, each level one fill with its own (rounded up) fee,
    exactly as `MatchingEngine.submit` will fill it: a level it cannot take whole (the funds end
    there, or its size is off the step grid) is its last, so `submit` takes the same sizes at
    the same prices. Capped by `max_size` when the instrument has one (rounded down to the step).
    """
    inst = engine.instrument
    total = 0
    left = funds
    for price, available in engine.available_levels(side, None):
        take = max_size_within(inst, price, left)
        if take == 0:
            break
        if take >= available:
            take = available - available % inst.step
        if take <= 0:
            break
        notional = inst.notional_atto(price, take)
        left -= notional + inst.fee_atto(notional, maker=False)
        total += take
        if take < available:
            break
    if inst.max_size and total > inst.max_size:
        total = inst.max_size - inst.max_size % inst.step
    return total
