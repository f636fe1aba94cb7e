"""The venue contract's scenarios run against the simulated venue: over candles and over an L2 book.

The scenarios are plain `async def scenario_<name>(h)` functions that use only the
`VenueHarness` interface, so the same ones run against the paper and live venues; until
they are gathered in tests/venues/contract.py, this file holds its own copy (`SCENARIOS`).
Every scenario ends by checking that the host's ledger still balances.

Skipped, with the reason, in `SKIPPED` below: nothing at present.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol

import pytest

from coinwire.core.errors import CoinwireError
from coinwire.core.ledger import Balance, Ledger
from coinwire.core.numbers import ATTO_DECIMALS, to_units
from coinwire.core.orders import DoneReason, Order, OrderStatus
from coinwire.venues.base import Execution, Venue
from tests.venues.harness_simulated import BookHarness, SimulatedHarness


class VenueHarness(Protocol):
    venue: Venue
    recorded: list[Execution]
    ledger: Ledger
    account: int
    symbol: str

    async def fund(self, currency: str, amount: str) -> None: ...
    async def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None: ...
    async def trade(self, price: str, size: str, aggressor: str) -> None: ...
    async def advance(self, seconds: float) -> None: ...
    def order(self, side: str, type: str, size: str, limit: str = "0", cancel_after: int = 0,
              client_oid: str | None = None) -> Order: ...
    async def restart(self) -> None: ...


def atto(amount: str) -> int:
    return to_units(Decimal(amount), ATTO_DECIMALS)


def balance(h: VenueHarness, currency: str) -> Balance:
    return h.venue.balances(h.account).get(currency, Balance())


def open_ids(h: VenueHarness) -> set[int]:
    return {o.id for o in h.venue.open_orders()}


BOOK_BIDS = [("99", "1")]
BOOK_ASKS = [("101", "0.2"), ("102", "0.3"), ("103", "1")]


async def scenario_limit_rests_and_fills(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    order = h.order("buy", "limit", "0.5", "100")
    placed = await h.venue.place(order)
    assert placed.placed is order and not placed.fills and order.status is OrderStatus.OPEN
    assert h.recorded[-1] is placed
    assert open_ids(h) == {order.id}
    assert balance(h, "USDT") == Balance(atto("10000"), atto("50.05"))  # 0.5 x 100, plus the 0.1% fee it may pay
    await h.trade("100", "0.5", "sell")
    filled = h.recorded[-1]
    assert [(f.price, f.size, f.maker) for f in filled.fills] == [(10000, 5000, True)]
    assert order.is_done and order.done_reason is DoneReason.FILLED and not open_ids(h)
    assert balance(h, "USDT") == Balance(atto("9949.95"))
    assert balance(h, "BTC") == Balance(atto("0.5"))


async def scenario_market_walks_the_book(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    order = h.order("buy", "market", "0.4")
    done = await h.venue.place(order)
    assert [(f.price, f.size, f.maker) for f in done.fills] == [(10100, 2000, False), (10200, 2000, False)]
    assert order.done_reason is DoneReason.FILLED
    assert balance(h, "USDT") == Balance(atto("10000") - atto("40.6") - atto("0.0406"))  # 0.2 x 101 + 0.2 x 102, fee 0.1%
    assert balance(h, "BTC") == Balance(atto("0.4"))


async def scenario_ioc_takes_what_it_can(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    order = h.order("buy", "limit-immediate-cancel", "0.5", "101")
    done = await h.venue.place(order)
    assert [(f.price, f.size) for f in done.fills] == [(10100, 2000)]
    assert order.done_reason is DoneReason.CANCELLED and order.filled_size == 2000
    assert balance(h, "USDT").hold == 0 and not open_ids(h)
    assert balance(h, "BTC") == Balance(atto("0.2"))


async def scenario_fok_all_or_nothing(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    killed = h.order("buy", "limit-fill-kill", "0.5", "101")
    await h.venue.place(killed)
    assert killed.done_reason is DoneReason.KILLED and killed.filled_size == 0
    assert balance(h, "USDT") == Balance(atto("10000")) and balance(h, "BTC") == Balance()
    filled = h.order("buy", "limit-fill-kill", "0.5", "102")
    done = await h.venue.place(filled)
    assert filled.done_reason is DoneReason.FILLED and [(f.price, f.size) for f in done.fills] == [(10100, 2000), (10200, 3000)]


async def scenario_post_only_refused_when_it_would_take(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    lines, recorded = len(h.ledger.lines()), len(h.recorded)
    with pytest.raises(CoinwireError) as refused:
        await h.venue.place(h.order("buy", "limit-post-only", "0.1", "101"))
    assert refused.value.code == "post_only_would_take"
    assert (len(h.ledger.lines()), len(h.recorded)) == (lines, recorded) and not open_ids(h)
    assert balance(h, "USDT") == Balance(atto("10000"))
    resting = h.order("buy", "limit-post-only", "0.1", "100.5")
    await h.venue.place(resting)
    assert resting.status is OrderStatus.OPEN and open_ids(h) == {resting.id}


async def scenario_cancel_gives_the_hold_back(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    order = h.order("buy", "limit", "1", "98")
    await h.venue.place(order)
    assert balance(h, "USDT").hold == atto("98.098")
    cancelled = await h.venue.cancel(order)
    assert h.recorded[-1] is cancelled and cancelled.orders == [order]
    assert order.done_reason is DoneReason.CANCELLED and not open_ids(h)
    assert balance(h, "USDT") == Balance(atto("10000"))
    with pytest.raises(CoinwireError):
        await h.venue.cancel(order)  # done already: nothing to cancel
    assert balance(h, "USDT") == Balance(atto("10000"))


async def scenario_cancel_after_expires_on_the_venue_clock(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    order = h.order("buy", "limit", "1", "98", cancel_after=5)
    await h.venue.place(order)
    await h.advance(4)
    assert order.status is OrderStatus.OPEN and balance(h, "USDT").hold > 0
    await h.advance(2)
    assert order.done_reason is DoneReason.EXPIRED and not open_ids(h)
    assert h.recorded[-1].orders == [order] and h.recorded[-1].lines
    assert balance(h, "USDT") == Balance(atto("10000"))


async def scenario_partial_fills(h: VenueHarness) -> None:
    await h.fund("BTC", "2")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    order = h.order("sell", "limit", "1", "102.5")
    await h.venue.place(order)
    assert balance(h, "BTC") == Balance(atto("2"), atto("1"))
    await h.trade("102.5", "0.3", "buy")
    assert order.status is OrderStatus.OPEN and order.filled_size == 3000
    assert balance(h, "BTC") == Balance(atto("1.7"), atto("0.7"))
    assert balance(h, "USDT") == Balance(atto("30.75") - atto("0.03075"))
    await h.trade("102.5", "1", "buy")  # more than it still wants: only its 0.7
    assert order.done_reason is DoneReason.FILLED and [f.size for f in h.recorded[-1].fills] == [7000]
    assert balance(h, "BTC") == Balance(atto("1")) and not open_ids(h)


async def scenario_two_resting_orders_filled_by_one_trade_each_get_their_own_fills(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    first, second = h.order("buy", "limit", "0.2", "100"), h.order("buy", "limit", "0.3", "99.5")
    await h.venue.place(first)
    await h.venue.place(second)
    before = len(h.recorded)
    await h.trade("99.5", "1", "sell")  # through the first's price, at the second's
    steps = h.recorded[before:]
    assert [(s.orders, [f.order_id for f in s.fills]) for s in steps] == [([first], [first.id]), ([second], [second.id])]
    assert first.done_reason is second.done_reason is DoneReason.FILLED
    assert balance(h, "USDT") == Balance(atto("10000") - atto("20") - atto("0.02") - atto("29.85") - atto("0.02985"))


async def scenario_insufficient_funds_changes_nothing(h: VenueHarness) -> None:
    await h.fund("USDT", "10")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    lines, recorded = len(h.ledger.lines()), len(h.recorded)
    for order in (h.order("buy", "limit", "1", "100"), h.order("buy", "market", "0.2"), h.order("sell", "limit", "1", "150")):
        with pytest.raises(CoinwireError) as refused:
            await h.venue.place(order)
        assert refused.value.code == "insufficient_funds"
    assert (len(h.ledger.lines()), len(h.recorded)) == (lines, recorded) and not open_ids(h)
    assert balance(h, "USDT") == Balance(atto("10"))


async def scenario_restart_restores_open_orders(h: VenueHarness) -> None:
    await h.fund("USDT", "10000")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    keeps, expires = h.order("buy", "limit", "0.5", "100"), h.order("buy", "limit", "0.1", "98", cancel_after=30)
    await h.venue.place(keeps)
    await h.venue.place(expires)
    await h.restart()
    assert open_ids(h) == {keeps.id, expires.id}
    assert balance(h, "USDT").hold == atto("50.05") + atto("9.8098")
    await h.set_book(BOOK_BIDS, BOOK_ASKS)
    await h.advance(31)
    assert open_ids(h) == {keeps.id} and h.recorded[-1].orders[0].done_reason is DoneReason.EXPIRED
    await h.trade("100", "0.5", "sell")
    assert not open_ids(h) and h.recorded[-1].orders[0].done_reason is DoneReason.FILLED
    assert balance(h, "USDT") == Balance(atto("9949.95")) and balance(h, "BTC") == Balance(atto("0.5"))


Scenario = Callable[[VenueHarness], Awaitable[None]]
SCENARIOS: list[Scenario] = [
    scenario_limit_rests_and_fills,
    scenario_market_walks_the_book,
    scenario_ioc_takes_what_it_can,
    scenario_fok_all_or_nothing,
    scenario_post_only_refused_when_it_would_take,
    scenario_cancel_gives_the_hold_back,
    scenario_cancel_after_expires_on_the_venue_clock,
    scenario_partial_fills,
    scenario_two_resting_orders_filled_by_one_trade_each_get_their_own_fills,
    scenario_insufficient_funds_changes_nothing,
    scenario_restart_restores_open_orders,
]
HARNESSES: dict[str, Callable[[], VenueHarness]] = {"candles": SimulatedHarness, "l2": BookHarness}
SKIPPED: dict[tuple[str, str], str] = {}  # (harness, scenario) -> why this venue cannot run it


@pytest.mark.parametrize("kind", list(HARNESSES))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.removeprefix("scenario_"))
async def test_simulated_venue_keeps_the_contract(kind: str, scenario: Scenario) -> None:
    reason = SKIPPED.get((kind, scenario.__name__))
    if reason is not None:
        pytest.skip(reason)
    h = HARNESSES[kind]()
    await scenario(h)
    h.ledger.check()
