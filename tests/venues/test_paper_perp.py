"""The paper venue's perpetual markets through a real gateway over SQLite: positions opened and closed by orders, the mark
from the feed or the median rule, funding at the feed's funding times, liquidation at 100% margin ratio, position commands,
what is stored and notified, and two users who never see or touch each other's positions.

Market data reaches the venue as a feed's does (`Gateway.apply_market`); the clock is the test's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from coinwire.config import load_settings
from coinwire.core.errors import CoinwireError
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import str_to_atto
from coinwire.core.orders import OrderRequest, OrderType, PositionSide, Side, TriggerSource
from coinwire.core.positions import MarginMode, unrealised_pnl
from coinwire.core.wallets import LineKind
from coinwire.feeds.demo import demo_instrument
from coinwire.messages import BookSnapshot, Markets, MarkPrice, Message, OrderUpdate, PositionUpdate, PositionView, TradeTick
from tests.venues.gateway_harness import GatewayHarness

EX = "perp"
SYMBOL = "BTC/USDT:USDT"
ALICE, BOB = 1, 2
S = 1_000_000_000


class Perp(GatewayHarness):
    """The gateway harness with one paper perpetual market (the demo's BTC/USDT:USDT), two users' accounts, and every
    position and order notification kept."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(load_settings(env={}, overrides={
            "data_dir": str(tmp_path), "exchanges": [{"name": EX, "feed": "demo", "symbols": [SYMBOL], "paper_funds": {}}]}),
            tmp_path)
        self.t = 1_800_000_000 * S
        self.inst: Instrument = demo_instrument(EX, SYMBOL)
        self.positions: list[PositionView] = []
        self.orders: list[OrderUpdate] = []
        self.book_id = 0
        self.trades = 0

    async def open(self) -> None:
        def keep(subject: str, message: Message) -> None:
            if isinstance(message, PositionUpdate):
                assert message.position.account == message.account_id and subject.startswith(f"position.{message.account_id}.")
                self.positions.append(message.position)
            elif isinstance(message, OrderUpdate):
                self.orders.append(message)

        await self.bus.subscribe("position.>", keep, types=frozenset({PositionUpdate}), inline=True)
        await self.bus.subscribe("order.>", keep, types=frozenset({OrderUpdate}), inline=True)
        await super().open()
        await self.markets()

    async def markets(self) -> None:
        """The feed's markets, then each user's account (opened on first use)."""
        await self.gw.apply_market(Markets(EX, [self.inst]))
        self.alice = (await self.gw.account_for(ALICE, EX)).id
        self.bob = (await self.gw.account_for(BOB, EX)).id

    async def restart(self) -> None:
        await self.gw.close()
        await self._start_gateway()
        await self.markets()
        await self.book(*self.last_book)  # the feed's book again: the exchange is ready once it is synced

    def p(self, text: str) -> int:
        return self.inst.parse_price(text)

    async def fund(self, account: int, usdt: str) -> None:
        await self.gw.add_virtual_wallet_tx(exchange=EX, currency="USDT", movement=str_to_atto(usdt), account_id=account)

    async def book(self, bid: str, ask: str, size: str = "50") -> None:
        """A fresh book around bid/ask, five levels a side a dollar apart."""
        self.book_id += 1
        self.last_book = (bid, ask, size)
        q = self.inst.parse_size(size)
        bids = [(self.p(bid) - i * 100, q) for i in range(5)]
        asks = [(self.p(ask) + i * 100, q) for i in range(5)]
        await self.gw.apply_market(BookSnapshot(EX, SYMBOL, self.t, self.book_id, bids, asks))

    async def trade(self, price: str) -> None:
        self.trades += 1
        await self.gw.apply_market(TradeTick(EX, SYMBOL, self.t, str(self.trades), self.p(price), 1, "buy"))

    async def mark(self, price: str, *, seconds: float = 1.0, rate: int = 10_000, next_funding: int = 0) -> None:
        self.t += int(seconds * S)
        await self.gw.apply_market(MarkPrice(EX, SYMBOL, self.t, self.p(price), rate, next_funding))

    async def order(self, owner: int, side: str, size: str, *, type: OrderType = OrderType.MARKET, limit: str = "0",
                    reduce_only: bool = False, position_side: PositionSide = PositionSide.BOTH, oid: str = "") -> object:
        self.trades += 1
        request = OrderRequest(exchange=EX, instrument=self.inst, side=Side(side), type=type, size=self.inst.parse_size(size),
                               limit=self.p(limit) if limit != "0" else 0, cancel_after=0, client_oid=oid or f"o{self.trades}",
                               wallet_set_id=None, run_id=None, owner_id=owner, reduce_only=reduce_only,
                               position_side=position_side)
        return await self.gw.make_order(request)

    def mine(self, account: int) -> list[PositionView]:
        return self.gw.positions(accounts={account})


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Perp]:
    harness = Perp(tmp_path)
    await harness.open()
    await harness.fund(harness.alice, "10000")
    await harness.fund(harness.bob, "10000")
    await harness.book("59990.00", "60010.00")
    await harness.trade("60000.00")
    try:
        yield harness
    finally:
        await harness.close()


async def test_a_market_buy_opens_a_long_whose_unrealised_pnl_follows_the_mark_and_only_its_owner_sees_it(h: Perp) -> None:
    await h.order(ALICE, "buy", "0.1")
    [view] = h.mine(h.alice)
    assert (view.side, view.position_side, view.size, view.entry_price) == ("long", "both", "0.1", "60010")
    assert view.account == h.alice and h.mine(h.bob) == [] and h.gw.positions(accounts=set()) == []
    assert h.gw.positions() == [view]  # an admin (no account filter) sees every account's
    first_seq = h.positions[-1].seq
    await h.mark("60510.00")
    assert h.gw.venues[EX].mark_rule(SYMBOL) == "feed's own"  # type: ignore[attr-defined]
    assert [m.message for m in h.gw.recent_logs.messages if "mark price" in m.message][-1].endswith("is the feed's own")
    await h.mark("59510.00")
    marked = [v for v in h.positions if v.account == h.alice]
    assert [v.unrealised_pnl for v in marked[-2:]] == ["50", "-50"]  # 0.1 x (mark - 60010)
    assert [v.mark_price for v in marked[-2:]] == ["60510", "59510"]
    assert all(v.seq == first_seq for v in marked[-2:])  # a mark alone is not a stored change: no new sequence number
    assert Decimal(marked[-1].margin_ratio) != Decimal(marked[-2].margin_ratio)  # maintenance / margin balance, at each mark
    assert 0 < Decimal(marked[-1].margin_ratio) < Decimal("0.01")
    assert marked[-1].liquidation_price is None  # 10000 USDT of cross margin: no price liquidates 0.1 BTC
    assert all(v.account == h.alice for v in h.positions)  # bob's connections were told nothing
    h.gw.ledger.check()


async def test_without_a_feed_mark_the_median_rule_prices_the_position(h: Perp) -> None:
    await h.order(ALICE, "buy", "0.1")
    assert h.gw.venues[EX].mark_rule(SYMBOL) == "median of best bid, best ask and last trade"  # type: ignore[attr-defined]
    said = [m.message for m in h.gw.recent_logs.messages if "mark price" in m.message]
    assert said == ["exchange perp: the mark price of BTC/USDT:USDT is the median of best bid, best ask and last trade"]
    h.t += S
    await h.book("60490.00", "60510.00")  # median(60490, 60510, last 60000) = 60490
    [view] = h.mine(h.alice)
    assert view.mark_price == "60490" and view.unrealised_pnl == "48"


async def test_funding_is_paid_by_longs_to_shorts_at_the_funding_time_and_kept_as_history(h: Perp) -> None:
    await h.order(ALICE, "buy", "0.1")
    await h.order(BOB, "sell", "0.1")
    due = h.t + 10 * S
    await h.mark("60000.00", next_funding=due, rate=10_000)  # 0.01% announced for `due`
    before = {a: h.gw.ledger.wallet(EX, "USDT", None, a).balance for a in (h.alice, h.bob)}
    await h.mark("60000.00", seconds=11, next_funding=due + 480 * S, rate=20_000)  # past `due`: settled at the 0.01%
    paid = str_to_atto("0.6")  # 0.1 x 60000 x 0.0001
    after = {a: h.gw.ledger.wallet(EX, "USDT", None, a).balance for a in (h.alice, h.bob)}
    assert (after[h.alice] - before[h.alice], after[h.bob] - before[h.bob]) == (-paid, paid)
    [alice_paid] = await h.gw.funding_history(accounts={h.alice})
    [bob_got] = await h.gw.funding_history(accounts={h.bob})
    assert (alice_paid.amount, alice_paid.rate, alice_paid.size, alice_paid.mark_price) == ("-0.6", "0.0001", "0.1", "60000")
    assert (bob_got.amount, bob_got.size) == ("0.6", "-0.1")
    assert await h.gw.funding_history(accounts=set()) == []
    lines = await h.store.wallet_lines([h.gw.ledger.wallet(EX, "USDT", None, h.alice).id])
    assert [line.movement for line in lines if line.kind is LineKind.FUNDING] == [-paid]
    assert [v.funding for v in h.mine(h.alice)] == ["-0.6"]
    h.gw.ledger.check()


async def test_a_reduce_only_order_larger_than_the_position_is_cut_to_it_and_close_position_flattens(h: Perp) -> None:
    await h.order(ALICE, "buy", "0.3")
    cut = await h.order(ALICE, "sell", "1", reduce_only=True)
    assert cut.filled_size == "0.3"  # type: ignore[attr-defined]
    assert h.mine(h.alice) == []  # flat: not listed
    [flat] = h.gw.positions(accounts={h.alice}, include_flat=True)
    assert flat.side == "flat" and Decimal(flat.realised_pnl) < 0  # bought at the ask, sold at the bid
    with pytest.raises(CoinwireError) as refused:
        await h.order(ALICE, "sell", "0.1", reduce_only=True)
    assert refused.value.code == "reduce_only_would_open"
    await h.order(ALICE, "sell", "0.2")
    closed = await h.gw.close_position(account_id=h.alice, exchange=EX, symbol=SYMBOL, owner_id=ALICE)
    assert closed.filled_size == "0.2" and closed.type == "market" and h.mine(h.alice) == []
    with pytest.raises(CoinwireError) as none:
        await h.gw.close_position(account_id=h.alice, exchange=EX, symbol=SYMBOL, owner_id=ALICE)
    assert none.value.code == "no_position"
    h.gw.ledger.check()


async def test_a_100x_isolated_long_is_liquidated_at_its_mark_and_loses_only_its_margin(h: Perp) -> None:
    await h.gw.set_margin_mode(account_id=h.alice, exchange=EX, symbol=SYMBOL, mode="isolated")
    await h.gw.set_leverage(account_id=h.alice, exchange=EX, symbol=SYMBOL, leverage=100)
    await h.order(ALICE, "buy", "0.1")
    [view] = h.mine(h.alice)
    liquidation = Decimal(view.liquidation_price or "0")
    margin = str_to_atto(view.isolated_margin or "0")
    assert view.margin_mode == "isolated" and view.leverage == 100 and 59_400 < liquidation < 60_010
    start = h.gw.ledger.wallet(EX, "USDT", None, h.alice).balance
    await h.mark(str(liquidation + 50))
    assert h.mine(h.alice) != []  # above its liquidation price: still open
    await h.mark(str(liquidation - 1))
    assert h.mine(h.alice) == []
    liquidated = [u.order for u in h.orders if u.order.type == "liquidation"]
    assert len(liquidated) == 1 and liquidated[0].status == "done" and liquidated[0].filled_size == "0.1"
    wallet = h.gw.ledger.wallet(EX, "USDT", None, h.alice)
    assert start - wallet.balance <= margin + str_to_atto("3.1")  # the margin (and the opening fee) at most: no more
    assert wallet.balance > 0 and wallet.hold == 0
    assert h.mine(h.bob) == [] and all(u.account_id == h.alice for u in h.orders if u.order.type == "liquidation")
    h.gw.ledger.check()
    assert h.gw.ledger.totals().wallets == (await h.store.line_totals()).wallets


async def test_settings_are_checked_and_refusals_change_nothing(h: Perp) -> None:
    with pytest.raises(CoinwireError) as high:
        await h.gw.set_leverage(account_id=h.alice, exchange=EX, symbol=SYMBOL, leverage=126)
    assert high.value.code == "leverage_above_maximum"
    await h.order(ALICE, "buy", "0.1")
    with pytest.raises(CoinwireError) as mode:
        await h.gw.set_margin_mode(account_id=h.alice, exchange=EX, symbol=SYMBOL, mode="isolated")
    assert mode.value.code == "margin_mode_change_with_open_position"
    with pytest.raises(CoinwireError) as hedge_side:
        await h.order(ALICE, "buy", "0.1", position_side=PositionSide.LONG)
    assert hedge_side.value.code == "position_side_in_one_way_mode"
    with pytest.raises(CoinwireError) as bad_mode:
        await h.gw.set_margin_mode(account_id=h.bob, exchange=EX, symbol=SYMBOL, mode="portfolio")
    assert bad_mode.value.code == "invalid_margin_mode"
    assert h.gw.position_settings(h.alice, EX, SYMBOL).margin_mode is MarginMode.CROSS
    assert await h.gw.set_hedge_mode(account_id=h.bob, exchange=EX, hedge=True) is True  # bob has nothing open
    with pytest.raises(CoinwireError) as busy:
        await h.gw.set_hedge_mode(account_id=h.alice, exchange=EX, hedge=True)
    assert busy.value.code == "position_mode_change_with_open_position"
    await h.order(BOB, "sell", "0.1", position_side=PositionSide.SHORT)
    await h.order(BOB, "buy", "0.1", position_side=PositionSide.LONG)
    sides = {(v.position_side, v.side) for v in h.mine(h.bob)}
    assert sides == {("long", "long"), ("short", "short")}  # hedge mode: both legs at once


async def test_positions_settings_and_funding_come_back_after_a_restart(h: Perp) -> None:
    await h.gw.set_leverage(account_id=h.bob, exchange=EX, symbol=SYMBOL, leverage=5)
    await h.gw.set_hedge_mode(account_id=h.bob, exchange=EX, hedge=True)
    await h.order(ALICE, "buy", "0.2")
    await h.order(BOB, "sell", "0.1", position_side=PositionSide.SHORT)
    await h.mark("60100.00", next_funding=h.t + 5 * S)
    await h.mark("60100.00", seconds=6)
    before = h.gw.positions(include_flat=True)
    balances = {a: h.gw.ledger.wallet(EX, "USDT", None, a) for a in (h.alice, h.bob)}
    holds = h.gw.ledger.holds()
    await h.restart()
    await h.mark("60100.00")
    after = h.gw.positions(include_flat=True)
    assert [(v.account, v.size, v.entry_price, v.funding, v.leverage, v.margin_mode, v.seq) for v in after] == [
        (v.account, v.size, v.entry_price, v.funding, v.leverage, v.margin_mode, v.seq) for v in before]
    assert {a: h.gw.ledger.wallet(EX, "USDT", None, a) for a in (h.alice, h.bob)} == balances
    assert h.gw.ledger.holds() == holds
    assert h.gw.position_settings(h.bob, EX, SYMBOL).leverage == 5
    assert h.gw.ledger.positions.hedge_mode(h.bob, EX) and not h.gw.ledger.positions.hedge_mode(h.alice, EX)
    assert len(await h.gw.funding_history()) == 2
    next_seq = max(v.seq for v in after if v.account == h.bob) + 1
    await h.order(BOB, "buy", "0.1", position_side=PositionSide.SHORT)
    assert h.positions[-1].seq >= next_seq  # the account's sequence goes on from where it stopped
    h.gw.ledger.check()


async def test_a_reduce_only_stop_on_the_mark_closes_the_position_and_one_left_without_a_position_does_nothing(h: Perp) -> None:
    await h.order(ALICE, "buy", "0.1")
    stop = OrderRequest(exchange=EX, instrument=h.inst, side=Side.SELL, type=OrderType.STOP_MARKET, size=h.inst.parse_size("0.5"),
                        limit=0, cancel_after=0, client_oid="protect", wallet_set_id=None, run_id=None, owner_id=ALICE,
                        reduce_only=True, stop_price=h.p("59000.00"), trigger=TriggerSource.MARK)
    armed = await h.gw.make_order(stop)
    assert (armed.status, armed.size, armed.trigger) == ("untriggered", "0.1", "mark")  # cut to the position
    assert h.gw.ledger.hold_of(armed.id) == 0  # closing needs no margin
    await h.mark("59100.00")
    assert h.mine(h.alice) != []
    await h.book("58980.00", "59000.00")
    await h.mark("58990.00")  # the mark crosses the stop: it fires against the book
    done = [u.order for u in h.orders if u.order.id == armed.id][-1]
    assert done.status == "done" and done.filled_size == "0.1" and h.mine(h.alice) == []
    with pytest.raises(CoinwireError) as nothing:
        await h.gw.make_order(OrderRequest(exchange=EX, instrument=h.inst, side=Side.SELL, type=OrderType.STOP_MARKET,
                                           size=h.inst.parse_size("0.1"), limit=0, cancel_after=0, client_oid="late",
                                           wallet_set_id=None, run_id=None, owner_id=ALICE, reduce_only=True,
                                           stop_price=h.p("58000.00")))
    assert nothing.value.code == "reduce_only_would_open"
    h.gw.ledger.check()


async def test_isolated_margin_is_added_and_removed_within_the_initial_margin(h: Perp) -> None:
    await h.gw.set_margin_mode(account_id=h.alice, exchange=EX, symbol=SYMBOL, mode="isolated")
    await h.gw.set_leverage(account_id=h.alice, exchange=EX, symbol=SYMBOL, leverage=50)
    await h.order(ALICE, "buy", "0.1")
    [before] = h.mine(h.alice)
    free = h.gw.ledger.available_of(EX, "USDT", None, h.alice)
    after = await h.gw.adjust_margin(account_id=h.alice, exchange=EX, symbol=SYMBOL, amount=str_to_atto("100"))
    assert str_to_atto(after.isolated_margin or "0") == str_to_atto(before.isolated_margin or "0") + str_to_atto("100")
    assert Decimal(after.liquidation_price or "0") < Decimal(before.liquidation_price or "0")  # more margin: further away
    assert h.gw.ledger.available_of(EX, "USDT", None, h.alice) == free - str_to_atto("100")
    assert h.positions[-1] == after  # notified as it answered
    with pytest.raises(CoinwireError) as too_much:
        await h.gw.adjust_margin(account_id=h.alice, exchange=EX, symbol=SYMBOL, amount=-str_to_atto("200"))
    assert too_much.value.code == "margin_below_initial"
    back = await h.gw.adjust_margin(account_id=h.alice, exchange=EX, symbol=SYMBOL, amount=-str_to_atto("50"))
    assert str_to_atto(back.isolated_margin or "0") == str_to_atto(before.isolated_margin or "0") + str_to_atto("50")
    await h.order(BOB, "sell", "0.1")
    with pytest.raises(CoinwireError) as cross:
        await h.gw.adjust_margin(account_id=h.bob, exchange=EX, symbol=SYMBOL, amount=str_to_atto("1"))
    assert cross.value.code == "margin_mode_not_isolated"
    stored = {p.id: p for p in (await h.store.load_state()).positions}
    [alice] = [p for p in h.gw.ledger.positions.all() if p.account_id == h.alice]
    assert stored[alice.id].isolated_margin == alice.isolated_margin == h.gw.ledger.hold_of(alice.hold_id)
    h.gw.ledger.check()


def test_the_unrealised_pnl_in_a_view_is_the_cores() -> None:
    """A reference for the views' arithmetic: 0.1 BTC long from 60010 at a 60510 mark is +50 USDT, exactly."""
    from coinwire.core.positions import Position

    inst = demo_instrument(EX, SYMBOL)
    pos = Position(account_id=1, exchange=EX, symbol=SYMBOL, size=inst.parse_size("0.1"),
                   entry_cost=inst.contract_notional(inst.parse_price("60010"), inst.parse_size("0.1")), leverage=20,
                   margin_mode=MarginMode.CROSS)
    assert unrealised_pnl(pos, inst, inst.parse_price("60510")) == str_to_atto("50")


async def test_a_viewer_of_alices_account_reads_her_position_and_funding_but_may_not_act_on_it(h: Perp) -> None:
    viewer = 3
    h.gw.accounts.set_member(h.alice, viewer, "view")  # granted view only
    await h.order(ALICE, "buy", "0.1")
    await h.order(BOB, "sell", "0.1")
    await h.mark("60000.00", next_funding=h.t + 2 * S)
    await h.mark("60000.00", seconds=3)
    readable = h.gw.accounts.readable(viewer, False)
    assert readable == {h.alice}
    assert [v.account for v in h.gw.positions(accounts=readable)] == [h.alice]
    assert {f.account for f in await h.gw.funding_history(accounts=readable)} == {h.alice}
    assert h.gw.accounts.may(h.alice, viewer, False, "view") and not h.gw.accounts.may(h.alice, viewer, False, "trade")
    assert not h.gw.accounts.may(h.bob, ALICE, False, "view")  # alice never reads bob's
    assert {v.account for v in h.gw.positions(accounts=h.gw.accounts.readable(BOB, False))} == {h.bob}
    # every position notification names its account: a connection gets those of the accounts it may read
    assert {v.account for v in h.positions} == {h.alice, h.bob}
