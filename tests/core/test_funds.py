"""Tests of the hold and settlement arithmetic (coinwire.core.funds)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.funds import Movement, fill_movements, hold_currency, max_buy_cost, required_hold, unit_fee_atto
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import str_to_atto
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType, Side
from coinwire.core.wallets import LineKind

BTC_USDT = Instrument(
    exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6,
    maker_fee=100_000, taker_fee=200_000,
)
# 18 decimals of price x size and a 0.075% fee: the fee of most notionals is a fraction of an ATTO.
ETH_BTC = Instrument(
    exchange="paper", symbol="ETH/BTC", base="ETH", quote="BTC", price_decimals=8, size_decimals=10,
    maker_fee=75_000, taker_fee=75_000,
)


def order(
    side: Side, size: str, limit: str = "0", kind: OrderType = OrderType.LIMIT, inst: Instrument = BTC_USDT
) -> Order:
    return Order(
        id=7, client_oid="c7", exchange=inst.exchange, symbol=inst.symbol, side=side, type=kind,
        size=inst.parse_size(size), limit=inst.parse_price(limit) if limit != "0" else 0,
    )


def fill(side: Side, price: int, size: int, maker: bool, inst: Instrument = BTC_USDT, fee: int | None = None) -> Fill:
    notional = inst.notional_atto(price, size)
    return Fill(
        id=3, order_id=7, client_oid="c7", exchange=inst.exchange, symbol=inst.symbol, side=side,
        order_type=OrderType.LIMIT, price=price, size=size, notional=notional,
        fee=inst.fee_atto(notional, maker) if fee is None else fee, maker=maker, ts=1,
    )


def test_a_limit_buy_holds_its_notional_and_the_larger_fee_in_quote() -> None:
    # 2 BTC at 30000 = 60000 USDT; the taker fee (0.2%) is the larger: 120 USDT.
    assert required_hold(BTC_USDT, order(Side.BUY, "2", "30000")) == ("USDT", str_to_atto("60120"))


def test_the_maker_fee_counts_when_it_is_the_larger() -> None:
    inst = Instrument(
        exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6,
        maker_fee=300_000, taker_fee=100_000,
    )
    assert required_hold(inst, order(Side.BUY, "1", "100", inst=inst)) == ("USDT", str_to_atto("100.3"))


@pytest.mark.parametrize("kind", [OrderType.IOC, OrderType.FOK, OrderType.POST_ONLY])
def test_every_limit_priced_buy_holds_like_a_limit(kind: OrderType) -> None:
    assert required_hold(BTC_USDT, order(Side.BUY, "2", "30000", kind)) == ("USDT", str_to_atto("60120"))


def test_only_the_remaining_size_is_held() -> None:
    buy = order(Side.BUY, "2", "30000")
    buy.filled_size = BTC_USDT.parse_size("1.5")
    assert required_hold(BTC_USDT, buy) == ("USDT", str_to_atto("15030"))
    sell = order(Side.SELL, "2", "30000")
    sell.filled_size = BTC_USDT.parse_size("0.25")
    assert required_hold(BTC_USDT, sell) == ("BTC", str_to_atto("1.75"))


def test_a_sell_holds_its_base_whatever_its_type() -> None:
    assert required_hold(BTC_USDT, order(Side.SELL, "0.5", "30000")) == ("BTC", str_to_atto("0.5"))
    assert required_hold(BTC_USDT, order(Side.SELL, "0.5", kind=OrderType.MARKET), market_cost=1) == (
        "BTC",
        str_to_atto("0.5"),
    )


def test_a_market_buy_holds_the_budget_it_is_given() -> None:
    buy = order(Side.BUY, "1", kind=OrderType.MARKET)
    assert required_hold(BTC_USDT, buy, market_cost=str_to_atto("30100")) == ("USDT", str_to_atto("30100"))
    with pytest.raises(ValueError, match="market_cost"):
        required_hold(BTC_USDT, buy)
    with pytest.raises(ValueError, match="market_cost"):
        required_hold(BTC_USDT, buy, market_cost=-1)


def test_a_done_order_holds_nothing() -> None:
    buy = order(Side.BUY, "2", "30000")
    buy.move(OrderStatus.DONE, 5, DoneReason.CANCELLED)
    assert required_hold(BTC_USDT, buy) == ("USDT", 0)


def test_an_order_of_another_market_is_refused() -> None:
    with pytest.raises(ValueError, match="not ETH/BTC"):
        required_hold(ETH_BTC, order(Side.BUY, "1", "100"))


def test_hold_currency_is_what_the_order_spends() -> None:
    assert hold_currency(BTC_USDT, Side.BUY) == "USDT"
    assert hold_currency(BTC_USDT, Side.SELL) == "BTC"


def test_the_unit_fee_rounds_up_and_covers_the_whole_fee() -> None:
    price = ETH_BTC.parse_price("0.05123457")  # 5_123_457 ATTO of BTC per size unit
    assert unit_fee_atto(ETH_BTC, price) == 3843  # 5_123_457 * 0.00075 = 3842.59...
    size = ETH_BTC.parse_size("3")
    whole = ETH_BTC.notional_atto(price, size)
    assert max_buy_cost(ETH_BTC, price, size) >= whole + ETH_BTC.fee_atto(whole, maker=False)


def test_fill_movements_of_a_buy_and_a_sell() -> None:
    price, size = BTC_USDT.parse_price("30000"), BTC_USDT.parse_size("0.5")
    buy = fill(Side.BUY, price, size, maker=True)
    assert fill_movements(BTC_USDT, buy) == [
        Movement("BTC", LineKind.TRADE, str_to_atto("0.5")),
        Movement("USDT", LineKind.TRADE, -str_to_atto("15000")),
        Movement("USDT", LineKind.FEE, -str_to_atto("15")),
    ]
    sell = fill(Side.SELL, price, size, maker=False)
    assert fill_movements(BTC_USDT, sell) == [
        Movement("BTC", LineKind.TRADE, -str_to_atto("0.5")),
        Movement("USDT", LineKind.TRADE, str_to_atto("15000")),
        Movement("USDT", LineKind.FEE, -str_to_atto("30")),
    ]


def test_a_fill_without_fee_has_no_fee_movement() -> None:
    movements = fill_movements(BTC_USDT, fill(Side.BUY, 100, 1, maker=True, fee=0))
    assert [m.kind for m in movements] == [LineKind.TRADE, LineKind.TRADE]


def test_fill_movements_refuse_a_foreign_or_malformed_fill() -> None:
    with pytest.raises(ValueError, match="not ETH/BTC"):
        fill_movements(ETH_BTC, fill(Side.BUY, 100, 1, maker=True))
    with pytest.raises(ValueError, match="fee -1"):
        fill_movements(BTC_USDT, fill(Side.BUY, 100, 1, maker=True, fee=-1))


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 10**9),
    sizes=st.lists(st.integers(1, 10**6), min_size=1, max_size=8),
    data=st.data(),
)
def test_lowering_a_buy_hold_after_each_fill_frees_at_least_the_fill_cost(
    limit: int, sizes: list[int], data: st.DataObject
) -> None:
    """Whatever the split into fills, their prices (at or under the limit) and rates, the hold suffices."""
    buy = Order(
        id=7, client_oid="c7", exchange="paper", symbol="ETH/BTC", side=Side.BUY, type=OrderType.LIMIT,
        size=sum(sizes), limit=limit,
    )
    _, hold = required_hold(ETH_BTC, buy)
    for size in sizes:
        price = data.draw(st.integers(1, limit), label="price")
        done = fill(Side.BUY, price, size, data.draw(st.booleans(), label="maker"), inst=ETH_BTC)
        buy.record_fill(price, size, done.notional, done.fee, ts=1)
        _, lowered = required_hold(ETH_BTC, buy)
        assert hold - lowered >= done.notional + done.fee
        hold = lowered
    assert hold == 0
