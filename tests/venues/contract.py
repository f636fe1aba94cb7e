"""The venue contract as scenarios: what every `Venue` (paper, simulated, live) must do, run against each by its harness.

A scenario is a plain `async def scenario_x(h: VenueHarness) -> None` that acts through the
harness (funds, the book the venue sees, trades printed at the venue, its clock) and the
venue itself (`place`, `cancel`, `open_orders`, `balances`, `restore_order` through
`restart`), then checks what the venue recorded with its host, the orders, and the host's
ledger. Each implementation's `test_contract_<kind>.py` builds its harness and runs every
scenario of `SCENARIOS`; one it genuinely cannot run is skipped there, with its reason, in
one explicit table.

The book in every scenario is BTC/USDT around 100 USDT, sizes in BTC, on the grid of
Binance's BTCUSDT (tick 0.01, step 0.00001, minimum notional 5 USDT); the scenarios assert
on sizes, prices, statuses and the ledger's balance, not on fee amounts, so venues whose
fees differ run them alike.

Idempotency: a venue refuses a new order naming the client_oid of an order of the same
owner still open there (`duplicate_client_oid`), as exchanges do. Whether the client_oid of
a done order is free again is the host's to say (the gateway's store keeps every order's);
answering a repeated command with the order it made (over done orders and restarts) is the
gateway's (`Gateway.make_order`, tests/api and tests/services).

Conditional orders (stops, take-profits, trailing stops, OCO lists, brackets) fire on the
venue's trades (`trigger` last); an OCO is placed through the venue's `place_oco`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import pytest

from coinwire.core.conditional import Bracket, encode_bracket
from coinwire.core.errors import CoinwireError
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance, Ledger
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType
from coinwire.venues.base import Execution, Venue

__all__ = ["CONDITIONAL_SCENARIOS", "SCENARIOS", "Scenario", "VenueHarness"]


class VenueHarness(Protocol):
    venue: Venue  # the venue under test
    recorded: list[Execution]  # what the venue handed its host's record(), in order
    ledger: Ledger  # the host's ledger
    account: int  # the account the harness funded
    symbol: str  # e.g. "BTC/USDT"

    async def fund(self, currency: str, amount: str) -> None: ...

    async def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        """The book the venue sees (and, for a venue with a book of its own, its book)."""
        ...

    async def trade(self, price: str, size: str, aggressor: str) -> None:
        """A market trade at the venue ("buy"/"sell" aggressor); returns once the venue has applied what it caused."""
        ...

    async def advance(self, seconds: float) -> None:
        """The venue's clock moves on (cancel_after); returns once the venue has acted on it."""
        ...

    def order(
        self, side: str, type: str, size: str, limit: str = "0", cancel_after: int = 0, client_oid: str | None = None
    ) -> Order: ...

    async def restart(self) -> None:
        """A new venue from what the host kept (store/ledger), open orders restored."""
        ...


Scenario = Callable[[VenueHarness], Awaitable[None]]


@runtime_checkable
class ListVenue(Protocol):
    """A venue that places OCO lists."""

    async def place_oco(self, limit_leg: Order, stop_leg: Order) -> Execution: ...

BIDS = [("100.00", "1"), ("99.00", "2")]
ASKS = [("101.00", "1"), ("102.00", "2")]


# --- helpers --------------------------------------------------------------------------------------
def instrument(h: VenueHarness) -> Instrument:
    market = h.venue.market(h.symbol)
    assert market is not None, f"the venue has no market {h.symbol}"
    return market.instrument


def size(h: VenueHarness, text: str) -> int:
    return instrument(h).parse_size(text)


def price(h: VenueHarness, text: str) -> int:
    return instrument(h).parse_price(text)


def fills_of(h: VenueHarness, order: Order) -> list[Fill]:
    return [fill for execution in h.recorded for fill in execution.fills if fill.order_id == order.id]


def open_ids(h: VenueHarness) -> set[int]:
    return {o.id for o in h.venue.open_orders()}


def state(h: VenueHarness) -> tuple[dict[str, Balance], dict[int, int], dict[int, tuple[int, ...]]]:
    """What a refused command must leave as it was: the account's balances, every hold, what every wallet's lines sum to."""
    return h.venue.balances(h.account), h.ledger.holds(), {w: tuple(t) for w, t in h.ledger.totals().wallets.items()}


async def funded_with_book(h: VenueHarness, usdt: str = "1000", btc: str | None = None) -> None:
    await h.fund("USDT", usdt)
    if btc is not None:
        await h.fund("BTC", btc)
    await h.set_book(BIDS, ASKS)


async def refused(h: VenueHarness, order: Order, code: str) -> None:
    """The venue refuses `order` with `code` and leaves the account, its holds and its open orders as they were."""
    before, orders_before, recorded_before = state(h), open_ids(h), len(h.recorded)
    with pytest.raises(CoinwireError) as refusal:
        await h.venue.place(order)
    assert refusal.value.code == code, refusal.value
    assert state(h) == before
    assert open_ids(h) == orders_before
    assert all(not execution.lines for execution in h.recorded[recorded_before:]), "a refusal moved money"
    h.ledger.check()


# --- scenarios ----------------------------------------------------------------------------------------
async def scenario_limit_rests_and_fills(h: VenueHarness) -> None:
    await funded_with_book(h)
    order = h.order("buy", OrderType.LIMIT.value, "0.5", "100.50")
    await h.venue.place(order)
    assert order.status is OrderStatus.OPEN and order.filled_size == 0
    assert order.id in open_ids(h)
    assert h.ledger.hold_of(order.id) > 0
    assert h.venue.balances(h.account)["USDT"].hold == h.ledger.hold_of(order.id)

    await h.trade("100.50", "1", "sell")

    assert (order.status, order.done_reason, order.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "0.5"))
    assert [(f.price, f.size, f.maker) for f in fills_of(h, order)] == [(price(h, "100.50"), size(h, "0.5"), True)]
    assert order.id not in open_ids(h) and h.ledger.hold_of(order.id) == 0
    assert h.venue.balances(h.account)["BTC"].balance > 0
    h.ledger.check()


async def scenario_market_walks_the_book(h: VenueHarness) -> None:
    await funded_with_book(h)
    order = h.order("buy", OrderType.MARKET.value, "1.5")
    await h.venue.place(order)
    assert (order.status, order.done_reason, order.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "1.5"))
    assert [(f.price, f.size, f.maker) for f in fills_of(h, order)] == [
        (price(h, "101.00"), size(h, "1"), False), (price(h, "102.00"), size(h, "0.5"), False)]
    usdt = h.venue.balances(h.account)["USDT"]
    assert usdt.hold == 0 and usdt.balance <= 1000 * 10**18 - 152 * 10**18  # 152 USDT spent (a fee in USDT too, or in BTC)
    assert h.ledger.holds() == {}
    h.ledger.check()


async def scenario_ioc_takes_what_it_can(h: VenueHarness) -> None:
    await funded_with_book(h, btc="2")
    order = h.order("sell", OrderType.IOC.value, "1.5", "100.00")  # 1 BTC is bid at 100, the rest lower
    await h.venue.place(order)
    assert (order.status, order.done_reason, order.filled_size) == (OrderStatus.DONE, DoneReason.CANCELLED, size(h, "1"))
    assert [(f.price, f.size) for f in fills_of(h, order)] == [(price(h, "100.00"), size(h, "1"))]
    assert h.ledger.holds() == {} and not open_ids(h)
    h.ledger.check()


async def scenario_fok_fills_all_or_nothing(h: VenueHarness) -> None:
    await funded_with_book(h)
    killed = h.order("buy", OrderType.FOK.value, "1.5", "101.00")  # only 1 BTC is offered at 101
    await h.venue.place(killed)
    assert (killed.status, killed.done_reason, killed.filled_size) == (OrderStatus.DONE, DoneReason.KILLED, 0)
    assert fills_of(h, killed) == [] and h.ledger.holds() == {}
    filled = h.order("buy", OrderType.FOK.value, "0.8", "101.00")
    await h.venue.place(filled)
    assert (filled.status, filled.done_reason, filled.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "0.8"))
    assert h.ledger.holds() == {}
    h.ledger.check()


async def scenario_post_only_that_would_take_is_refused(h: VenueHarness) -> None:
    await funded_with_book(h)
    await refused(h, h.order("buy", OrderType.POST_ONLY.value, "0.1", "101.00"), "post_only_would_take")
    resting = h.order("buy", OrderType.POST_ONLY.value, "0.1", "100.50")
    await h.venue.place(resting)
    assert resting.status is OrderStatus.OPEN and resting.id in open_ids(h)


async def scenario_cancel_returns_the_hold(h: VenueHarness) -> None:
    await funded_with_book(h)
    before = h.venue.balances(h.account)["USDT"]
    order = h.order("buy", OrderType.LIMIT.value, "1", "99.50")
    await h.venue.place(order)
    assert h.venue.balances(h.account)["USDT"].hold > 0
    recorded = len(h.recorded)
    await h.venue.cancel(order)
    assert (order.status, order.done_reason) == (OrderStatus.DONE, DoneReason.CANCELLED)
    assert any(order in execution.orders for execution in h.recorded[recorded:])  # recorded (by the cancel or a report of it)
    assert order.id not in open_ids(h) and h.venue.balances(h.account)["USDT"] == before
    h.ledger.check()


async def scenario_cancel_after_expires(h: VenueHarness) -> None:
    await funded_with_book(h)
    before = h.venue.balances(h.account)["USDT"]
    order = h.order("buy", OrderType.LIMIT.value, "1", "99.50", cancel_after=5)
    await h.venue.place(order)
    await h.advance(2)
    assert order.status is OrderStatus.OPEN
    await h.advance(4)
    assert (order.status, order.done_reason) == (OrderStatus.DONE, DoneReason.EXPIRED)
    assert order.id not in open_ids(h) and h.venue.balances(h.account)["USDT"] == before
    h.ledger.check()


async def scenario_partial_fills(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    order = h.order("sell", OrderType.LIMIT.value, "1", "100.50")
    await h.venue.place(order)
    assert h.venue.balances(h.account)["BTC"].hold == 10**18

    await h.trade("100.50", "0.3", "buy")
    assert (order.status, order.filled_size) == (OrderStatus.OPEN, size(h, "0.3"))
    assert h.venue.balances(h.account)["BTC"].hold == 7 * 10**17  # the remainder's hold
    assert order.id in open_ids(h)

    await h.trade("100.50", "0.7", "buy")
    assert (order.status, order.done_reason, order.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "1"))
    assert [f.size for f in fills_of(h, order)] == [size(h, "0.3"), size(h, "0.7")]
    assert h.venue.balances(h.account)["BTC"] == Balance(0, 0) and h.ledger.holds() == {}
    h.ledger.check()


async def scenario_one_trade_fills_two_resting_orders_each_with_its_own_fills(h: VenueHarness) -> None:
    await funded_with_book(h)
    first, second = h.order("buy", OrderType.LIMIT.value, "0.2", "100.50"), h.order("buy", OrderType.LIMIT.value, "0.3", "100.20")
    await h.venue.place(first)
    await h.venue.place(second)
    recorded = len(h.recorded)

    await h.trade("100.20", "1", "sell")  # through the first's price, at the second's

    for order, limit, wanted in ((first, "100.50", "0.2"), (second, "100.20", "0.3")):
        assert (order.status, order.done_reason, order.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, wanted))
        assert [(f.price, f.size, f.maker) for f in fills_of(h, order)] == [(price(h, limit), size(h, wanted), True)]
    for execution in h.recorded[recorded:]:  # every fill is recorded with the order it fills
        assert {f.order_id for f in execution.fills} <= {o.id for o in execution.orders}
    assert not open_ids(h) and h.ledger.holds() == {}
    assert h.venue.balances(h.account)["BTC"].balance > 0
    h.ledger.check()


async def scenario_insufficient_funds_changes_nothing(h: VenueHarness) -> None:
    await funded_with_book(h, usdt="50")
    await refused(h, h.order("buy", OrderType.LIMIT.value, "1", "99.50"), "insufficient_funds")
    await refused(h, h.order("sell", OrderType.LIMIT.value, "0.1", "105.00"), "insufficient_funds")  # no BTC at all


async def scenario_duplicate_client_oid_of_an_open_order(h: VenueHarness) -> None:
    await funded_with_book(h)
    first = h.order("buy", OrderType.LIMIT.value, "1", "99.50", client_oid="same-oid")
    await h.venue.place(first)
    await refused(h, h.order("buy", OrderType.LIMIT.value, "1", "99.50", client_oid="same-oid"), "duplicate_client_oid")
    assert [o.id for o in h.venue.open_orders() if o.client_oid == "same-oid"] == [first.id]
    other = h.order("buy", OrderType.LIMIT.value, "1", "99.50", client_oid="other-oid")
    await h.venue.place(other)  # only the open order's client_oid is taken
    assert other.status is OrderStatus.OPEN


async def scenario_restart_restores_open_orders(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    buy = h.order("buy", OrderType.LIMIT.value, "1", "99.50")
    sell = h.order("sell", OrderType.LIMIT.value, "0.5", "103.00")
    await h.venue.place(buy)
    await h.venue.place(sell)
    balances = h.venue.balances(h.account)

    await h.restart()

    assert {(o.id, o.client_oid, o.status) for o in h.venue.open_orders()} == {
        (buy.id, buy.client_oid, OrderStatus.OPEN), (sell.id, sell.client_oid, OrderStatus.OPEN)}
    assert h.venue.balances(h.account) == balances
    h.ledger.check()
    restored = next(o for o in h.venue.open_orders() if o.id == buy.id)
    await h.venue.cancel(restored)
    assert restored.status is OrderStatus.DONE and open_ids(h) == {sell.id}
    assert h.venue.balances(h.account)["USDT"].hold == 0
    h.ledger.check()


async def scenario_market_buy_by_funds(h: VenueHarness) -> None:
    """A market buy of 152.50 USDT, fee included: the venue sizes it on the book, spends at most the funds, holds them meanwhile."""
    await funded_with_book(h)
    inst = instrument(h)
    funds = 15_250 * 10**16  # 152.50 USDT
    order = h.order("buy", OrderType.MARKET.value, "1")
    order.size, order.funds = 0, funds
    await h.venue.place(order)
    fills = fills_of(h, order)
    assert (order.status, order.done_reason) == (OrderStatus.DONE, DoneReason.FILLED)
    assert [(f.price, f.size) for f in fills][:1] == [(price(h, "101.00"), size(h, "1"))]  # the best level whole, then 102
    assert len(fills) == 2 and fills[1].price == price(h, "102.00") and 0 < fills[1].size < size(h, "2")
    assert order.size == order.filled_size == sum(f.size for f in fills) and order.filled_size % inst.step == 0
    notional = sum(f.notional for f in fills)
    quote_fees = sum(f.fee for f in fills if f.fee_currency in (None, inst.quote))
    assert notional + quote_fees <= funds  # fee included, whichever currency the venue charges it in
    # close to the funds: less than a fee and two steps at 102 short of them
    one_step = inst.notional_atto(price(h, "102.00"), inst.step)
    assert funds - notional - quote_fees < funds * inst.taker_fee * 2 // 10**8 + 2 * one_step + 10**16
    usdt = h.venue.balances(h.account)["USDT"]
    assert usdt.hold == 0 and usdt.balance == 1000 * 10**18 - notional - quote_fees
    assert h.ledger.holds() == {} and order.funds == funds
    h.ledger.check()
    too_little = h.order("buy", OrderType.MARKET.value, "1")
    too_little.size, too_little.funds = 0, 5 * 10**18  # 5 USDT less the fee is under the minimum notional of 5
    await refused(h, too_little, "funds_below_min_notional")
    sell = h.order("sell", OrderType.MARKET.value, "1")
    sell.size, sell.funds = 0, funds
    await refused(h, sell, "funds_market_buy_only")


# --- conditional orders ---------------------------------------------------------------------------------
def conditional(h: VenueHarness, side: str, type: OrderType, size_: str, stop: str = "0", limit: str = "0",
                trail_delta: str = "0") -> Order:
    """A conditional order of the harness's account (`trigger` last)."""
    order = h.order(side, type.value, size_, limit)
    order.stop_price = price(h, stop) if stop != "0" else 0
    order.trail_delta = price(h, trail_delta) if trail_delta != "0" else 0
    return order


def executions_of(h: VenueHarness, order: Order, since: int = 0) -> list[Execution]:
    return [e for e in h.recorded[since:] if any(o.id == order.id for o in e.orders)]


async def scenario_stop_market_fires_once(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    stop = conditional(h, "sell", OrderType.STOP_MARKET, "0.5", stop="99.50")
    await h.venue.place(stop)
    assert stop.status is OrderStatus.UNTRIGGERED and stop.id in open_ids(h)
    assert h.venue.balances(h.account)["BTC"].hold == 5 * 10**17  # a stop sell holds the base it would sell
    await h.trade("100.00", "0.1", "sell")
    assert stop.status is OrderStatus.UNTRIGGERED and fills_of(h, stop) == []
    recorded = len(h.recorded)

    await h.trade("99.50", "0.1", "sell")  # at the level: it fires, a market sell on the book (bid 100.00)

    assert (stop.status, stop.done_reason, stop.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "0.5"))
    assert stop.type is OrderType.STOP_MARKET and stop.triggered_at is not None
    assert [(f.price, f.size, f.maker) for f in fills_of(h, stop)] == [(price(h, "100.00"), size(h, "0.5"), False)]
    fired = executions_of(h, stop, recorded)
    assert len(fired) == 1 and fired[0].fills and fired[0].lines  # one execution: triggered, filled, settled
    await h.trade("99.00", "0.1", "sell")
    await h.trade("99.60", "0.1", "buy")
    assert len(fills_of(h, stop)) == 1 and executions_of(h, stop, recorded) == fired  # fired once, ever
    assert h.ledger.holds() == {} and stop.id not in open_ids(h)
    h.ledger.check()


async def scenario_stop_limit_rests_after_firing(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    stop = conditional(h, "sell", OrderType.STOP_LIMIT, "0.5", stop="99.50", limit="100.50")
    await h.venue.place(stop)
    await h.trade("99.40", "0.1", "sell")  # through the level: its limit sell at 100.50 is above the bid, so it rests
    assert (stop.status, stop.filled_size, stop.type) == (OrderStatus.OPEN, 0, OrderType.STOP_LIMIT)
    assert stop.triggered_at is not None and stop.id in open_ids(h)
    assert h.venue.balances(h.account)["BTC"].hold == 5 * 10**17
    await h.trade("100.50", "1", "buy")
    assert (stop.status, stop.done_reason, stop.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "0.5"))
    assert [(f.price, f.maker) for f in fills_of(h, stop)] == [(price(h, "100.50"), True)]
    assert h.ledger.holds() == {}
    h.ledger.check()


async def scenario_take_profit_fires_as_the_price_rises(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    take = conditional(h, "sell", OrderType.TAKE_PROFIT_MARKET, "0.5", stop="101.50")
    await h.venue.place(take)
    await h.trade("101.00", "0.1", "buy")
    await h.trade("99.00", "0.1", "sell")  # a sell take-profit never fires as the price falls
    assert take.status is OrderStatus.UNTRIGGERED
    await h.trade("101.50", "0.1", "buy")
    assert (take.status, take.done_reason, take.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "0.5"))
    assert [f.price for f in fills_of(h, take)] == [price(h, "100.00")]
    h.ledger.check()


async def scenario_trailing_stop_follows_and_fires(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    await h.trade("100.00", "0.1", "buy")
    trail = conditional(h, "sell", OrderType.TRAILING_STOP, "0.5", trail_delta="1.00")
    await h.venue.place(trail)
    assert trail.status is OrderStatus.UNTRIGGERED and trail.stop_price == price(h, "99.00")  # from the last trade
    await h.trade("101.20", "0.1", "buy")
    assert trail.stop_price == price(h, "100.20")
    await h.trade("100.60", "0.1", "sell")  # not a new best, not the level: nothing moves, nothing fires
    assert (trail.status, trail.stop_price) == (OrderStatus.UNTRIGGERED, price(h, "100.20"))
    await h.trade("100.20", "0.1", "sell")
    assert (trail.status, trail.done_reason, trail.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, size(h, "0.5"))
    assert trail.stop_price == price(h, "100.20") and len(fills_of(h, trail)) == 1
    h.ledger.check()


async def _sell_oco(h: VenueHarness) -> tuple[Order, Order]:
    """A sell OCO of 0.5: a limit leg at 102.50 and a stop-market leg at 99.00, placed as one list."""
    venue = h.venue
    assert isinstance(venue, ListVenue)
    limit_leg = h.order("sell", OrderType.LIMIT.value, "0.5", "102.50")
    stop_leg = conditional(h, "sell", OrderType.STOP_MARKET, "0.5", stop="99.00")
    limit_leg.list_id = stop_leg.list_id = limit_leg.id
    await venue.place_oco(limit_leg, stop_leg)
    return limit_leg, stop_leg


async def scenario_oco_one_cancels_the_other(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    await h.trade("100.00", "0.1", "buy")
    limit_leg, stop_leg = await _sell_oco(h)
    assert (limit_leg.status, stop_leg.status) == (OrderStatus.OPEN, OrderStatus.UNTRIGGERED)
    assert open_ids(h) >= {limit_leg.id, stop_leg.id}
    assert h.venue.balances(h.account)["BTC"].hold == 5 * 10**17  # the pair holds once
    recorded = len(h.recorded)

    await h.trade("102.50", "0.2", "buy")  # a partial fill of the limit leg cancels the stop

    assert (limit_leg.status, limit_leg.filled_size) == (OrderStatus.OPEN, size(h, "0.2"))
    assert (stop_leg.status, stop_leg.done_reason) == (OrderStatus.DONE, DoneReason.CANCELLED)
    assert any(stop_leg in e.orders and limit_leg in e.orders for e in h.recorded[recorded:])  # in one execution
    assert h.venue.balances(h.account)["BTC"].hold == 3 * 10**17
    await h.trade("98.00", "0.1", "sell")
    assert fills_of(h, stop_leg) == [] and stop_leg.id not in open_ids(h)
    await h.venue.cancel(limit_leg)
    assert h.ledger.holds() == {}
    h.ledger.check()


async def scenario_oco_stop_firing_cancels_the_limit(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    await h.trade("100.00", "0.1", "buy")
    limit_leg, stop_leg = await _sell_oco(h)
    await h.trade("99.00", "0.1", "sell")
    assert (stop_leg.status, stop_leg.filled_size) == (OrderStatus.DONE, size(h, "0.5"))
    assert (limit_leg.status, limit_leg.done_reason, limit_leg.filled_size) == (OrderStatus.DONE, DoneReason.CANCELLED, 0)
    await h.trade("102.50", "1", "buy")
    assert fills_of(h, limit_leg) == [] and not open_ids(h) and h.ledger.holds() == {}
    h.ledger.check()


async def scenario_oco_cancel_of_a_leg_cancels_the_list(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    await h.trade("100.00", "0.1", "buy")
    before = h.venue.balances(h.account)["BTC"]
    limit_leg, stop_leg = await _sell_oco(h)
    await h.venue.cancel(stop_leg)
    assert {(o.status, o.done_reason) for o in (limit_leg, stop_leg)} == {(OrderStatus.DONE, DoneReason.CANCELLED)}
    assert not open_ids(h) and h.venue.balances(h.account)["BTC"] == before and h.ledger.holds() == {}
    h.ledger.check()


async def scenario_bracket_children_after_the_fill(h: VenueHarness) -> None:
    await funded_with_book(h)
    parent = h.order("buy", OrderType.LIMIT.value, "0.5", "100.50")
    parent.bracket = encode_bracket(Bracket(
        take_profit_type=OrderType.LIMIT, take_profit_price=price(h, "103.00"),
        stop_loss_type=OrderType.STOP_MARKET, stop_loss_price=price(h, "98.00")))
    await h.venue.place(parent)
    assert parent.status is OrderStatus.OPEN and open_ids(h) == {parent.id}  # no children before a fill
    recorded = len(h.recorded)

    await h.trade("100.50", "1", "sell")

    assert (parent.status, parent.filled_size) == (OrderStatus.DONE, size(h, "0.5"))
    children = [o for e in h.recorded[recorded:] for o in e.orders if o.parent_id == parent.id]
    take, stop = sorted({o.id: o for o in children}.values(), key=lambda o: o.id)
    assert any(parent in e.orders and take in e.orders and stop in e.orders for e in h.recorded[recorded:])  # the same step
    # sized to what the fill gave the account: the filled size, less a fee a venue kept in BTC (Binance)
    received = h.venue.balances(h.account)["BTC"].balance // 10 ** (18 - instrument(h).size_decimals)
    assert received <= parent.filled_size
    assert (take.type, take.side, take.size, take.limit, take.status) == (
        OrderType.LIMIT, parent.side.opposite, received, price(h, "103.00"), OrderStatus.OPEN)
    assert (stop.type, stop.size, stop.stop_price, stop.status) == (
        OrderType.STOP_MARKET, received, price(h, "98.00"), OrderStatus.UNTRIGGERED)
    assert take.list_id == stop.list_id == take.id and open_ids(h) == {take.id, stop.id}
    assert h.venue.balances(h.account)["BTC"].hold == h.venue.balances(h.account)["BTC"].balance  # held once
    await h.trade("98.00", "0.1", "sell")
    assert (stop.status, stop.filled_size) == (OrderStatus.DONE, received)
    assert (take.status, take.done_reason) == (OrderStatus.DONE, DoneReason.CANCELLED)
    assert h.venue.balances(h.account)["BTC"] == Balance(0, 0) and h.ledger.holds() == {}
    h.ledger.check()


async def scenario_cancel_untriggered_releases_the_hold(h: VenueHarness) -> None:
    await funded_with_book(h)
    before = h.venue.balances(h.account)["USDT"]
    stop = conditional(h, "buy", OrderType.STOP_MARKET, "0.5", stop="101.50")
    await h.venue.place(stop)
    usdt = h.venue.balances(h.account)["USDT"]
    assert usdt.hold >= 50 * 10**18  # at least what 0.5 costs at its level
    await h.venue.cancel(stop)
    assert (stop.status, stop.done_reason) == (OrderStatus.DONE, DoneReason.CANCELLED)
    assert stop.id not in open_ids(h) and h.venue.balances(h.account)["USDT"] == before
    await h.trade("102.00", "0.1", "buy")
    assert fills_of(h, stop) == [] and h.ledger.holds() == {}
    h.ledger.check()


async def scenario_untriggered_orders_survive_a_restart(h: VenueHarness) -> None:
    await funded_with_book(h, btc="1")
    await h.trade("100.00", "0.1", "buy")
    stop = conditional(h, "sell", OrderType.STOP_MARKET, "0.3", stop="99.50")
    trail = conditional(h, "sell", OrderType.TRAILING_STOP, "0.2", trail_delta="1.00")
    await h.venue.place(stop)
    await h.venue.place(trail)
    await h.trade("100.80", "0.1", "buy")
    assert trail.stop_price == price(h, "99.80")
    balances, holds = h.venue.balances(h.account), h.ledger.holds()

    await h.restart()

    armed = {o.id: o for o in h.venue.open_orders()}
    assert {(o.id, o.status, o.stop_price) for o in armed.values()} == {
        (stop.id, OrderStatus.UNTRIGGERED, stop.stop_price), (trail.id, OrderStatus.UNTRIGGERED, price(h, "99.80"))}
    assert h.venue.balances(h.account) == balances and h.ledger.holds() == holds
    await h.trade("99.80", "0.1", "sell")  # the trailing stop's level as it was: it fires, the stop does not
    assert armed[trail.id].status is OrderStatus.DONE and armed[stop.id].status is OrderStatus.UNTRIGGERED
    await h.trade("99.50", "0.1", "sell")
    assert armed[stop.id].status is OrderStatus.DONE and not open_ids(h) and h.ledger.holds() == {}
    assert h.venue.balances(h.account)["BTC"].balance == 5 * 10**17
    h.ledger.check()


SCENARIOS: list[Scenario] = [
    scenario_limit_rests_and_fills,
    scenario_market_walks_the_book,
    scenario_ioc_takes_what_it_can,
    scenario_fok_fills_all_or_nothing,
    scenario_post_only_that_would_take_is_refused,
    scenario_cancel_returns_the_hold,
    scenario_cancel_after_expires,
    scenario_partial_fills,
    scenario_one_trade_fills_two_resting_orders_each_with_its_own_fills,
    scenario_insufficient_funds_changes_nothing,
    scenario_duplicate_client_oid_of_an_open_order,
    scenario_restart_restores_open_orders,
    scenario_market_buy_by_funds,
    scenario_stop_market_fires_once,
    scenario_stop_limit_rests_after_firing,
    scenario_take_profit_fires_as_the_price_rises,
    scenario_trailing_stop_follows_and_fires,
    scenario_oco_one_cancels_the_other,
    scenario_oco_stop_firing_cancels_the_limit,
    scenario_oco_cancel_of_a_leg_cancels_the_list,
    scenario_bracket_children_after_the_fill,
    scenario_cancel_untriggered_releases_the_hold,
    scenario_untriggered_orders_survive_a_restart,
]

CONDITIONAL_SCENARIOS = [s.__name__ for s in SCENARIOS[SCENARIOS.index(scenario_stop_market_fires_once):]]
