"""The live venue trading a Binance USD-M perpetual inside a real gateway, on the local signed USD-M server.

The account is the server's (`tests/venues/binance_usdm.py`): leverage, margin type, position
mode, matching and positions are kept there, and coinwire's ledger, PositionBook and store
follow what it reports. Each test checks the venue's state beside ours: a setting changed here
is changed there (or refused before anything is sent), an order goes to a fill, the position
comes from the venue, and after a restart the stored positions are brought to the venue's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from coinwire.config import load_settings
from coinwire.core.errors import DomainError, InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.orders import DoneReason, Order, OrderStatus, OrderType, PositionSide, Side
from coinwire.core.positions import MarginMode, Position
from coinwire.messages import BookSnapshot
from coinwire.venues.base import MARK_MEDIAN, MARK_VENUE
from coinwire.venues.live import LiveVenue
from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import API_KEY, SECRET
from tests.venues.binance_usdm import UsdmBinance, usdm_urls
from tests.venues.conftest import until
from tests.venues.gateway_harness import GatewayHarness
from tests.venues.usdm_helpers import ASKS, ATTO, BIDS, PERP

EX = "binance-usdm"
ENV = {"COINWIRE_BINANCE_USDM_API_KEY": API_KEY, "COINWIRE_BINANCE_USDM_SECRET": SECRET}


class PerpHarness(GatewayHarness):
    """A gateway with one live exchange on the local USD-M server, trading BTC/USDT:USDT."""

    symbol = PERP

    def __init__(self, tmp_path: Path, usdm: UsdmBinance, server: ServerRunner) -> None:
        exchange = {
            "name": EX, "ccxt_id": "binanceusdm", "mode": "live", "feed": "ccxt", "symbols": [PERP],
            "poll_interval": 0.05, "ccxt_websocket": False, "ccxt_urls": usdm_urls(server), "live_reconcile_interval": 0.2,
        }
        super().__init__(load_settings(env=ENV, overrides={"data_dir": str(tmp_path), "exchanges": [exchange]}), tmp_path)
        self.usdm = usdm

    @property
    def live(self) -> LiveVenue:
        venue = self.venue
        assert isinstance(venue, LiveVenue)
        return venue

    @property
    def instrument(self) -> Instrument:
        market = self.venue.market(PERP)
        assert market is not None
        return market.instrument

    async def open(self) -> None:
        await super().open()
        await self.connected()

    async def connected(self) -> None:
        await until(lambda: self.venue.funds_known)  # markets, account, orders, positions and balances known
        self.account = self.venue.account_id
        inst = self.instrument
        self.t += 1
        await self.gw.apply_market(BookSnapshot(EX, PERP, self.t, self.t, [(inst.parse_price(p), inst.parse_size(s)) for p, s in BIDS],
                                                [(inst.parse_price(p), inst.parse_size(s)) for p, s in ASKS]))

    async def restart(self) -> None:
        await self.gw.close()
        await self._start_gateway()
        await self.connected()

    def perp_order(self, side: str, size: str, *, limit: str = "0", reduce_only: bool = False,
                   leg: PositionSide = PositionSide.BOTH) -> Order:
        inst = self.instrument
        order_id = self.gw.order_ids.next()
        return Order(
            id=order_id, client_oid=f"perp-{order_id}", exchange=EX, symbol=PERP, side=Side(side),
            type=OrderType.LIMIT if limit != "0" else OrderType.MARKET, size=inst.parse_size(size),
            limit=inst.parse_price(limit) if limit != "0" else 0, created_at=self.t, last_updated_at=self.t,
            account_id=self.account, reduce_only=reduce_only, position_side=leg,
        )

    def position(self, leg: PositionSide = PositionSide.BOTH) -> Position | None:
        return self.ledger.positions.get(self.account, EX, PERP, leg)

    def usdt(self) -> tuple[int, int]:
        balance = self.live.balances(self.account)["USDT"]
        return balance.available + balance.hold, balance.hold


@pytest.fixture
async def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PerpHarness]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    usdm = UsdmBinance("10000")
    usdm.set_book(BIDS, ASKS)
    server = ServerRunner(usdm)
    await server.start()
    harness = PerpHarness(tmp_path, usdm, server)
    try:
        await asyncio.wait_for(harness.open(), 20)
        yield harness
    finally:
        await harness.close()
        await server.stop()


async def test_the_account_starts_with_the_venues_wallet_and_no_position(h: PerpHarness) -> None:
    assert h.instrument.is_perpetual and h.instrument.max_leverage == 125
    assert h.usdt() == (10_000 * ATTO, 0)
    assert h.ledger.positions.of_account(h.account, EX) == []
    assert h.live.mark_price(PERP) == 1_000_050  # no position reported yet: the median of bid, ask (and no last)
    assert h.live.mark_rule(PERP) == MARK_MEDIAN


async def test_leverage_and_margin_mode_are_set_at_the_venue_and_kept_across_a_restart(h: PerpHarness) -> None:
    await h.live.set_leverage(h.account, PERP, 10)
    await h.live.set_margin_mode(h.account, PERP, MarginMode.ISOLATED)
    assert (h.usdm.leverage, h.usdm.margin_type) == (10, "isolated")
    sent = len(h.usdm.requests)
    with pytest.raises(DomainError) as raised:
        await h.live.set_leverage(h.account, PERP, 150)
    assert raised.value.code == "leverage_above_maximum" and len(h.usdm.requests) == sent  # refused before sending
    await h.restart()
    settings = h.ledger.positions.settings(h.account, EX, PERP)
    assert (settings.leverage, settings.margin_mode) == (10, MarginMode.ISOLATED)


async def test_an_order_goes_to_a_fill_and_the_position_comes_from_the_venue(h: PerpHarness) -> None:
    await h.live.set_leverage(h.account, PERP, 10)
    await h.live.set_margin_mode(h.account, PERP, MarginMode.ISOLATED)
    order = h.perp_order("buy", "0.010")
    execution = await h.live.place(order)
    assert (order.status, order.done_reason, order.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, 10)
    [fill] = execution.fills
    fee = Decimal("100010") * Decimal("0.01") * Decimal("0.0004") * ATTO
    assert (fill.price, fill.size, fill.fee, fill.position_side) == (1_000_100, 10, fee, PositionSide.BOTH)
    pos = h.position()
    assert pos is not None
    assert (pos.size, pos.entry_cost, pos.leverage, pos.margin_mode, pos.mark) == (
        10, 100_010 * ATTO // 100, 10, MarginMode.ISOLATED, 1_000_050)
    # the wallet is the venue's (10000 less the fee); the isolated margin the venue gave the position is held
    assert h.usdt() == (10_000 * ATTO - fee, Decimal("100.01") * ATTO)
    assert h.live.mark_price(PERP) == 1_000_050  # now the venue's mark, from its position report
    assert h.live.mark_rule(PERP) == MARK_VENUE
    with pytest.raises(DomainError) as raised:
        await h.live.set_margin_mode(h.account, PERP, MarginMode.CROSS)
    assert raised.value.code == "margin_mode_change_with_open_position"


async def test_a_reduce_only_order_larger_than_the_position_is_cut_to_it_and_closes_it(h: PerpHarness) -> None:
    await h.live.place(h.perp_order("buy", "0.010"))
    order = h.perp_order("sell", "0.025", reduce_only=True)
    await h.live.place(order)
    # cut to the position before it is sent (the venue would cut it too), then filled
    assert (order.status, order.size, order.filled_size, order.done_reason) == (OrderStatus.DONE, 10, 10, DoneReason.FILLED)
    [sent] = [o for o in h.usdm.orders.values() if o["clientOrderId"] == order.client_oid]
    assert (sent["origQty"], sent["reduceOnly"]) == ("0.010", True)
    pos = h.position()
    assert pos is not None and pos.size == 0 and pos.entry_cost == 0
    assert h.usdt()[1] == 0  # no position, no order: nothing held
    assert h.usdm.wallet * ATTO == h.usdt()[0]  # realised PnL and fees: the venue's wallet, exactly
    with pytest.raises(DomainError) as raised:
        await h.live.place(h.perp_order("sell", "0.010", reduce_only=True))
    assert raised.value.code == "reduce_only_would_open"


async def test_the_position_side_must_match_the_accounts_mode(h: PerpHarness) -> None:
    with pytest.raises(InvalidInput) as raised:
        await h.live.place(h.perp_order("buy", "0.010", leg=PositionSide.LONG))
    assert raised.value.code == "position_side_in_one_way_mode"
    await h.live.set_hedge_mode(h.account, True)
    assert h.usdm.dual and h.ledger.positions.hedge_mode(h.account, EX)
    with pytest.raises(InvalidInput) as raised:
        await h.live.place(h.perp_order("buy", "0.010"))
    assert raised.value.code == "position_side_required"
    await h.live.place(h.perp_order("buy", "0.010", leg=PositionSide.LONG))
    await h.live.place(h.perp_order("sell", "0.020", leg=PositionSide.SHORT))
    long, short = h.position(PositionSide.LONG), h.position(PositionSide.SHORT)
    assert long is not None and short is not None and (long.size, short.size) == (10, -20)


async def test_reconcile_after_restart_takes_the_venues_positions(h: PerpHarness) -> None:
    await h.live.place(h.perp_order("buy", "0.030"))
    stored = h.position()
    assert stored is not None and stored.size == 30
    await h.restart()
    again = h.position()
    assert again is not None and (again.size, again.entry_cost) == (30, stored.entry_cost)  # from the store, agreeing
    await h.gw.close()
    # while coinwire is down, the venue closes a third of the position (a hand trade elsewhere)
    h.usdm.positions["BOTH"]["amt"] = Decimal("0.020")
    await h._start_gateway()
    await h.connected()
    pos = h.position()
    assert pos is not None and (pos.size, pos.entry_cost) == (20, stored.entry_cost * 2 // 3)
    assert h.usdt()[1] == -(-(stored.entry_cost * 2 // 3) // 20)  # cross: the initial margin at entry, held


async def test_a_resting_limit_is_followed_to_its_fill_by_the_order_resolver(h: PerpHarness) -> None:
    await h.live.set_leverage(h.account, PERP, 10)
    order = h.perp_order("buy", "0.020", limit="99900.0")
    await h.live.place(order)
    [sent] = [o for o in h.usdm.orders.values() if o["clientOrderId"] == order.client_oid]
    assert order.status is OrderStatus.OPEN and sent["status"] == "NEW"
    # held: initial margin plus the worst fee rate, at the higher of its limit and the mark (the mirror's mid, 100005.0)
    notional = Decimal("0.02") * 100_005 * ATTO
    assert h.usdt()[1] == notional / 10 + notional * Decimal("0.0005")
    h.usdm.trade("99900.0", "0.005")  # a partial fill at the venue, then the rest
    await until(lambda: order.filled_size == 5, timeout=10)
    h.usdm.trade("99850.0", "1")
    await until(lambda: order.is_done, timeout=10)
    assert (order.done_reason, order.filled_size) == (DoneReason.FILLED, 20)
    await until(lambda: (h.position() or Position(account_id=0, exchange="", symbol="", leverage=1,
                                                  margin_mode=MarginMode.CROSS)).size == 20, timeout=10)
    pos = h.position()
    assert pos is not None and (pos.entry_cost, pos.leverage) == (inst_notional(h, "99900.0", "0.020"), 10)


async def test_a_cancelled_limit_frees_its_margin(h: PerpHarness) -> None:
    order = h.perp_order("sell", "0.010", limit="100500.0")
    await h.live.place(order)
    assert h.usdt()[1] > 0
    await h.live.cancel(order)
    assert (order.status, order.done_reason) == (OrderStatus.DONE, DoneReason.CANCELLED)
    assert h.usdt()[1] == 0 and h.usdm.orders[max(h.usdm.orders)]["status"] == "CANCELED"


def inst_notional(h: PerpHarness, price: str, size: str) -> int:
    inst = h.instrument
    return inst.contract_notional(inst.parse_price(price), inst.parse_size(size))


async def test_conditional_orders_and_lists_are_refused_on_a_live_perpetual(h: PerpHarness) -> None:
    stop = h.perp_order("sell", "0.010")
    stop.type, stop.stop_price = OrderType.STOP_MARKET, h.instrument.parse_price("99000.0")
    with pytest.raises(InvalidInput) as raised:
        await h.live.place(stop)
    assert raised.value.code == "unsupported_on_perpetual" and h.usdm.orders == {}


async def test_isolated_margin_added_at_the_venue_is_held_here(h: PerpHarness) -> None:
    await h.live.set_leverage(h.account, PERP, 10)
    await h.live.set_margin_mode(h.account, PERP, MarginMode.ISOLATED)
    await h.live.place(h.perp_order("buy", "0.010"))
    await h.live.adjust_margin(h.account, PERP, 50 * ATTO, PositionSide.BOTH)
    pos = h.position()
    assert pos is not None and pos.isolated_margin == (Decimal("100.01") + 50) * ATTO == h.usdt()[1]
    assert h.usdm.positions["BOTH"]["isolated"] == Decimal("150.01")


async def test_a_liquidation_at_the_venue_reaches_the_book_and_the_wallet(h: PerpHarness) -> None:
    await h.live.set_leverage(h.account, PERP, 10)
    await h.live.set_margin_mode(h.account, PERP, MarginMode.ISOLATED)
    await h.live.place(h.perp_order("buy", "0.010"))
    # the venue liquidates the position: its isolated wallet is lost (and it reports nothing for the leg)
    leg = h.usdm.positions["BOTH"]
    h.usdm.wallet -= leg["isolated"]
    leg.update(amt=Decimal(0), entry=Decimal(0), isolated=Decimal(0))
    await h.live.refresh_positions()  # what the reconciliation tick does
    pos = h.position()
    assert pos is not None and (pos.size, pos.entry_cost, pos.isolated_margin) == (0, 0, 0)
    assert h.usdt() == (h.usdm.wallet * ATTO, 0)


async def test_a_perpetual_is_mirrored_with_the_accounts_brackets_whoever_announces_it(h: PerpHarness) -> None:
    own = h.instrument
    public = msgspec.structs.replace(own, brackets=(), liquidation_fee=0)  # what a public feed can know of it
    del h.live.markets[PERP]
    h.live.add_instruments([public])  # the feed's Markets arriving after a restart of the mirror
    assert h.instrument == own and h.instrument.max_leverage == 125
