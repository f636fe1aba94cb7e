"""CCXT structures to exact coinwire types: markets to Instruments, full books to chained deltas, trades once."""

from __future__ import annotations

from typing import Any

import pytest

from coinwire.core.book_sync import BookSync
from coinwire.core.errors import InvalidInput
from coinwire.feeds.ccxt_state import BookMirror, TradeFilter
from coinwire.messages import BookDelta, BookSnapshot
from coinwire.venues.ccxt_markets import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE, LevelConverter, instrument_from_market


def market(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "symbol": "ETH/BTC",
        "precision": {"price": 1e-05, "amount": 0.0001, "base": 1e-08},
        "limits": {"amount": {"min": 0.0001, "max": 100000.0}, "cost": {"min": 0.0001}},
        "maker": 0.001,
        "taker": 0.001,
    }
    base.update(overrides)
    return base


def test_tick_size_markets_become_exact_grids() -> None:
    inst = instrument_from_market("binance", market(), TICK_SIZE)
    assert (inst.price_decimals, inst.tick, inst.size_decimals, inst.step) == (5, 1, 8, 10_000)
    assert (inst.min_size, inst.max_size, inst.min_notional) == (10_000, 100_000 * 10**8, 10**14)
    assert (inst.maker_fee, inst.taker_fee) == (100_000, 100_000)
    odd = instrument_from_market(
        "x", market(precision={"price": 0.05, "amount": 10.0}, limits={"amount": {"min": 10.0}}), TICK_SIZE
    )
    assert (odd.price_decimals, odd.tick, odd.size_decimals, odd.step) == (2, 5, 0, 10)


def test_decimal_places_markets_and_rebates() -> None:
    inst = instrument_from_market(
        "kraken", market(precision={"price": 2, "amount": 8}, maker=-0.0001, taker=0.0026), DECIMAL_PLACES
    )
    assert (inst.price_decimals, inst.tick, inst.size_decimals, inst.step) == (2, 1, 8, 1)
    assert (inst.maker_fee, inst.taker_fee) == (0, 260_000)  # a maker rebate counts as no fee on paper


@pytest.mark.parametrize(
    ("overrides", "mode", "code"),
    [
        ({}, SIGNIFICANT_DIGITS, "unsupported_precision_mode"),
        ({"symbol": "BTC/USDT:USDT"}, TICK_SIZE, "unsupported_market"),
        ({"precision": {"price": None, "amount": 0.1}}, TICK_SIZE, "invalid_number"),
        ({"precision": {"price": 1e-12, "amount": 1e-08}}, TICK_SIZE, "invalid_market"),  # 20 decimals
        ({"limits": {"amount": {"min": 0.000000001}}}, TICK_SIZE, "too_precise"),
    ],
)
def test_markets_that_cannot_be_exact_are_refused(overrides: dict[str, Any], mode: int, code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        instrument_from_market("x", market(**overrides), mode)
    assert raised.value.code == code


def mirror(depth: int = 10) -> BookMirror:
    return BookMirror(LevelConverter(instrument_from_market("binance", market(), TICK_SIZE)), depth)


def book(
    bids: list[list[float]], asks: list[list[float]], nonce: int | None = None, timestamp: int | None = 1_700_000_000_000
) -> dict[str, Any]:
    return {"bids": bids, "asks": asks, "nonce": nonce, "timestamp": timestamp}


def test_full_books_become_a_snapshot_then_chained_deltas() -> None:
    m = mirror()
    first = m.update(book([[0.05, 1.5], [0.04999, 2.0]], [[0.05001, 3.0]], nonce=100), 0)
    assert first == BookSnapshot("binance", "ETH/BTC", 1_700_000_000_000 * 10**6, 100,
                                 [(5000, 150_000_000), (4999, 200_000_000)], [(5001, 300_000_000)])
    assert m.update(book([[0.05, 1.5], [0.04999, 2.0]], [[0.05001, 3.0]], nonce=100), 0) is None  # same book
    delta = m.update(book([[0.05, 1.0]], [[0.05001, 3.0], [0.05002, 0.5]], nonce=104), 0)
    assert isinstance(delta, BookDelta)
    assert (delta.first_update_id, delta.last_update_id) == (101, 104)
    assert delta.bids == [(4999, 0), (5000, 100_000_000)] and delta.asks == [(5002, 50_000_000)]
    assert m.update(book([[0.05, 1.0]], [[0.05001, 3.0], [0.05002, 0.5]], nonce=110), 0) is None  # nothing moved
    restart = m.update(book([[0.05, 2.0]], [[0.05001, 1.0]], nonce=7), 0)  # the venue's sequence went back
    assert isinstance(restart, BookSnapshot) and restart.last_update_id == 7
    sync = BookSync()
    sync.on_snapshot(first)  # a consumer following the messages ends on the mirror's book
    sync.on_delta(delta)
    assert sync.book.bids == {5000: 100_000_000} and sync.last_update_id == 104


def test_books_without_a_nonce_get_the_mirrors_own_ids_and_depth_is_honoured() -> None:
    m = mirror(depth=2)
    first = m.update(book([[0.05, 1.0], [0.04999, 1.0], [0.04998, 1.0]], [[0.05001, 1.0]], timestamp=None), 42)
    assert isinstance(first, BookSnapshot) and first.last_update_id == 1 and len(first.bids) == 2 and first.ts == 42
    m2 = m.update(book([[0.04999, 1.0], [0.04998, 1.0]], [[0.05001, 1.0]]), 43)  # best bid gone: a deeper one shows
    assert isinstance(m2, BookDelta) and (m2.first_update_id, m2.last_update_id) == (2, 2)
    assert m2.bids == [(4998, 100_000_000), (5000, 0)]
    assert m.snapshot().bids == [(4999, 100_000_000), (4998, 100_000_000)]
    ticker = m.ticker()
    assert ticker is not None and (ticker.bid, ticker.ask, ticker.update_id) == (4999, 5001, 2)


def test_a_level_off_the_grid_is_refused_not_rounded() -> None:
    with pytest.raises(InvalidInput) as raised:
        mirror().update(book([[0.050001, 1.0]], [[0.05001, 1.0]]), 0)
    assert raised.value.code == "too_precise"


def trade(trade_id: int, ts: int, side: str = "buy") -> dict[str, Any]:
    return {"id": str(trade_id), "timestamp": ts, "price": 0.05, "amount": 0.1, "side": side}


def test_trades_pass_once_and_none_from_before_the_start() -> None:
    filt = TradeFilter(mirror().convert, memory=3)
    filt.baseline([trade(1, 1000), trade(2, 1001)])
    assert filt.new([trade(1, 1000), trade(2, 1001)]) == []
    out = filt.new([trade(2, 1001), trade(3, 1002, "sell"), trade(4, 999)])  # 4: older than the start
    assert [(t.trade_id, t.aggressor, t.price, t.size, t.ts) for t in out] == [("3", "sell", 5000, 10_000_000, 1002 * 10**6)]
    assert filt.new([trade(3, 1002)]) == []
    with pytest.raises(InvalidInput):
        filt.new([{"id": "9", "timestamp": 2000, "price": 0.05, "amount": 0.1, "side": None}])


def test_a_stream_first_sets_the_start_so_a_later_poll_brings_no_history() -> None:
    filt = TradeFilter(mirror().convert)
    assert [t.trade_id for t in filt.new([trade(10, 5000), trade(11, 5001)])] == ["10", "11"]  # streamed: all live
    polled = filt.new([trade(8, 4990), trade(9, 4999), trade(11, 5001), trade(12, 5002)])  # fallback poll
    assert [t.trade_id for t in polled] == ["12"]
