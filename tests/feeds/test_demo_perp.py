"""The demo feed's perpetual markets: linear USDT perpetuals with Binance's brackets, a mark every tick, and funding on the
8-hour schedule compressed for the demo; spot markets replay exactly as before."""

from __future__ import annotations

from coinwire.core.instruments import PERPETUAL
from coinwire.feeds.base import subject_for
from coinwire.feeds.demo import FUNDING_SPEEDUP, PERPETUAL_SYMBOLS, DemoMarket
from coinwire.messages import BookTicker, MarkPrice

S = 1_000_000_000
T0 = 1_800_000_000 * S


def test_perpetual_markets_are_linear_usdt_perpetuals_with_published_brackets() -> None:
    market = DemoMarket("demo", PERPETUAL_SYMBOLS)
    btc, eth = market.instruments()
    assert (btc.symbol, btc.kind, btc.settle, btc.funding_interval_s) == ("BTC/USDT:USDT", PERPETUAL, "USDT", 28_800)
    assert btc.max_leverage == eth.max_leverage == 125 and btc.liquidation_fee == 1_250_000  # the shipped tiers and 1.25%
    assert (btc.maker_fee, btc.taker_fee) == (20_000, 50_000)


def test_each_tick_sends_a_mark_at_the_mid_and_the_next_compressed_funding_time() -> None:
    market = DemoMarket("demo", ("BTC/USDT:USDT",))
    period = 28_800 * S // FUNDING_SPEEDUP
    assert period == 480 * S  # every 8 minutes
    rates = []
    for n in range(400):
        ts = T0 + n * S // 4
        messages = market.step(ts)
        [ticker] = [m for m in messages if isinstance(m, BookTicker)]
        [mark] = [m for m in messages if isinstance(m, MarkPrice)]
        assert mark.mark == (ticker.bid + ticker.ask) // 2 and mark.ts == ts
        assert mark.next_funding_time > ts and mark.next_funding_time % period == 0 and mark.next_funding_time - ts <= period
        assert -50_000 <= mark.funding_rate <= 50_000
        assert subject_for(mark) == "mark.demo.usdt:usdt.btc"
        rates.append(mark.funding_rate)
    assert len(set(rates)) > 10  # the rate walks


def test_adding_perpetuals_leaves_the_spot_markets_messages_as_they_were() -> None:
    alone, mixed = DemoMarket("demo", ("BTC/USDT",)), DemoMarket("demo", ("BTC/USDT", "BTC/USDT:USDT"))
    for n in range(50):
        ts = T0 + n * S
        spot = [m for m in mixed.step(ts) if m.symbol == "BTC/USDT"]  # type: ignore[union-attr]
        assert alone.step(ts) == spot


def test_the_same_seed_replays_the_same_marks() -> None:
    first, second = DemoMarket("demo", PERPETUAL_SYMBOLS, seed=3), DemoMarket("demo", PERPETUAL_SYMBOLS, seed=3)
    for n in range(20):
        assert first.step(T0 + n * S) == second.step(T0 + n * S)


def test_the_perpetual_feed_settings_are_checked_where_they_are_read() -> None:
    import pytest

    from coinwire.app import build_feed
    from coinwire.config import ConfigError, load_settings

    for bad, why in (({"funding_speedup": 0}, "funding_speedup"), ({"replay_market": "kraken"}, "replay_market")):
        with pytest.raises(ConfigError, match=why):
            load_settings(env={}, overrides={"exchanges": [{"name": "x", "feed": "demo", **bad}]})
    settings = load_settings(env={}, overrides={"exchanges": [{"name": "x", "feed": "demo", "symbols": ["BTC/USDT:USDT"],
                                                               "funding_speedup": 480}]})
    feed = build_feed(settings.exchanges[0])
    assert feed.market.funding_period_ns(feed.instruments()[0]) == 60 * S  # 8 hours / 480: a minute
