"""core.history_value: holdings walked back from today's balances, and the past value candles, against a forward reference."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.history_value import (
    OtherAccount,
    PastTrade,
    PastTransfer,
    PriceSeries,
    holdings_at,
    rebuild_history,
    start_holdings,
    user_totals,
)
from coinwire.core.portfolio import BUCKET_S, PortfolioCandle, bucket_end

T0 = 1_609_718_400  # 2021-01-04 00:00 UTC, a boundary
D = Decimal


def forward(events: list[PastTrade | PastTransfer], ts_ms: int) -> dict[str, Decimal]:
    """The reference: holdings from nothing, every event at or before `ts_ms` applied in turn."""
    held: dict[str, Decimal] = {}
    for e in events:
        if e.ts_ms > ts_ms:
            continue
        if isinstance(e, PastTransfer):
            held[e.asset] = held.get(e.asset, D(0)) + e.amount
        else:
            sign = 1 if e.buy else -1
            held[e.base] = held.get(e.base, D(0)) + sign * e.amount
            held[e.quote] = held.get(e.quote, D(0)) - sign * e.cost
            held[e.fee_asset] = held.get(e.fee_asset, D(0)) - e.fee
    return held


def price_at(rows: list[tuple[int, Decimal]], ts_s: int) -> Decimal | None:
    """The reference price: the last close whose close time is at or before the instant."""
    before = [p for t, p in rows if t <= ts_s]
    return before[-1] if before else None


amounts = st.decimals(min_value=D("0.001"), max_value=D(5), places=3)
offsets = st.integers(min_value=0, max_value=6 * BUCKET_S * 1000)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[PastTrade | PastTransfer], list[tuple[int, Decimal]]]:
    events: list[PastTrade | PastTransfer] = [PastTransfer(ts_ms=T0 * 1000 + draw(offsets), asset="USDT", amount=D(100000))]
    for _ in range(draw(st.integers(0, 12))):
        ts = T0 * 1000 + draw(st.sampled_from([draw(offsets), BUCKET_S * 1000 * draw(st.integers(0, 6))]))
        amount = draw(amounts)
        price = draw(st.decimals(min_value=D(10), max_value=D(100), places=2))
        fee = (amount / 1000).quantize(D("0.000001"))
        events.append(PastTrade(ts_ms=ts, base="BTC", quote="USDT", buy=draw(st.booleans()), amount=amount, cost=amount * price,
                                fee=fee, fee_asset="BTC"))
    step = draw(st.sampled_from([300, 900, 3600]))
    closes = [(T0 + step * (i + 1), draw(st.decimals(min_value=D(10), max_value=D(100), places=2))) for i in range(8 * BUCKET_S // step)]
    return events, closes


@given(histories())
@settings(max_examples=150, deadline=None)
def test_walking_back_from_today_gives_the_forward_holdings_at_every_instant(
    history: tuple[list[PastTrade | PastTransfer], list[tuple[int, Decimal]]]
) -> None:
    events, _ = history
    now = forward(events, 2**62)
    for ts in sorted({e.ts_ms for e in events} | {e.ts_ms - 1 for e in events}):
        expected = {a: q for a, q in forward(events, ts).items() if q}
        assert {a: q for a, q in holdings_at(now, events, ts).items() if q} == expected
    assert {a: q for a, q in start_holdings(now, events).items() if q} == {}


@given(histories())
@settings(max_examples=150, deadline=None)
def test_every_bucket_closes_at_the_holdings_times_the_price_at_its_boundary(
    history: tuple[list[PastTrade | PastTransfer], list[tuple[int, Decimal]]]
) -> None:
    events, closes = history
    now = forward(events, 2**62)
    end = closes[-1][0]
    candles = rebuild_history(now, events, {"BTC": PriceSeries(closes)}, "USDT", end)
    assert candles, "a history inside the priced range makes candles"
    assert candles[0].open_time == bucket_end(min(e.ts_ms for e in events) * 1_000_000) - BUCKET_S  # the first event's bucket
    previous_close = None
    for candle in candles:
        boundary = candle.open_time + BUCKET_S
        assert boundary <= end and candle.status == "complete"
        held = forward(events, boundary * 1000)
        price = price_at(closes, boundary)
        if held.get("BTC") and price is None:
            continue
        expected = held.get("USDT", D(0)) + held.get("BTC", D(0)) * (price or D(0))
        assert candle.close == expected, boundary
        assert candle.low <= min(candle.open, candle.close) and candle.high >= max(candle.open, candle.close)
        traded = sum((e.cost for e in events if isinstance(e, PastTrade) and boundary - BUCKET_S < e.ts_ms / 1000 <= boundary), D(0))
        assert candle.volume == traded
        if previous_close is not None:
            assert candle.open == previous_close
        previous_close = candle.close
    assert [c.open_time for c in candles] == list(range(candles[0].open_time, candles[-1].open_time + 1, BUCKET_S))


def test_an_event_on_a_boundary_counts_in_the_bucket_that_ends_there() -> None:
    events: list[PastTrade | PastTransfer] = [
        PastTransfer(ts_ms=(T0 + 60) * 1000, asset="USDT", amount=D(1000)),
        PastTrade(ts_ms=(T0 + BUCKET_S) * 1000, base="BTC", quote="USDT", buy=True, amount=D(1), cost=D(100), fee=D("0.001"),
                  fee_asset="BTC"),
    ]
    closes = [(T0 + 300 * i, D(110)) for i in range(1, 7)]
    now = forward(events, 2**62)
    first, second = rebuild_history(now, events, {"BTC": PriceSeries(closes)}, "USDT", T0 + 2 * BUCKET_S)
    assert (first.open_time, first.open, first.close, first.volume) == (T0, D(0), D(900) + D("0.999") * 110, D(100))
    assert (second.open, second.close, second.volume) == (first.close, first.close, D(0))


def test_an_asset_without_prices_is_not_valued_and_no_history_makes_no_candles() -> None:
    events: list[PastTrade | PastTransfer] = [PastTransfer(ts_ms=(T0 + 1) * 1000, asset="XYZ", amount=D(5)),
                                              PastTransfer(ts_ms=(T0 + 2) * 1000, asset="USDT", amount=D(7))]
    (candle,) = rebuild_history(forward(events, 2**62), events, {}, "USDT", T0 + BUCKET_S)
    assert candle.close == D(7)
    assert rebuild_history({"USDT": D(1)}, [], {}, "USDT", T0 + BUCKET_S) == []


def test_in_a_display_currency_every_value_and_volume_is_times_the_rate_then_and_nothing_before_its_first_point() -> None:
    """A rate series (one USDT in EUR over time): each close is the USDT value times the rate at the boundary, the
    volume the notional times the rate at the fill, and a bucket opening before the first rate is not returned."""
    events: list[PastTrade | PastTransfer] = [
        PastTransfer(ts_ms=(T0 + 60) * 1000, asset="USDT", amount=D(1000)),
        PastTrade(ts_ms=(T0 + BUCKET_S + 60) * 1000, base="BTC", quote="USDT", buy=True, amount=D(1), cost=D(100), fee=D(0),
                  fee_asset="BTC"),
    ]
    closes = [(T0 + 300 * i, D(110)) for i in range(1, 13)]
    rate = PriceSeries([(T0 + 600, D("0.9")), (T0 + BUCKET_S + 120, D("0.8"))])  # known from T0+10min, then 0.8
    now = forward(events, 2**62)
    plain = rebuild_history(now, events, {"BTC": PriceSeries(closes)}, "USDT", T0 + 3 * BUCKET_S)
    converted = rebuild_history(now, events, {"BTC": PriceSeries(closes)}, "USDT", T0 + 3 * BUCKET_S, rate)
    assert [c.open_time for c in plain] == [T0, T0 + BUCKET_S, T0 + 2 * BUCKET_S]
    assert [c.open_time for c in converted] == [T0 + BUCKET_S, T0 + 2 * BUCKET_S]  # the first opened before any rate
    second, third = converted
    assert second.close == plain[1].close * D("0.8") and third.close == plain[2].close * D("0.8")
    assert second.volume == D(100) * D("0.9")  # the fill at +1 min: the rate then was still 0.9
    assert rebuild_history(now, events, {"BTC": PriceSeries(closes)}, "USDT", T0 + 3 * BUCKET_S, PriceSeries([])) == []


def _candle(t: int, o: str, h: str, lo: str, c: str, v: str = "0", status: str = "complete") -> PortfolioCandle:
    return PortfolioCandle(t, D(o), D(h), D(lo), D(c), D(v), status)


def test_a_user_total_adds_only_other_accounts_known_exactly_there() -> None:
    """Another account counts when its candle is flat (a constant: high and low stay exact) or when it was opened after
    the bucket ended; one that moved, is missing there, or was live with no candle leaves the bucket out."""
    own = [_candle(T0 + i * BUCKET_S, "100", "120", "90", "110", "5") for i in range(4)]
    flat = OtherAccount({T0: _candle(T0, "50", "50", "50", "50", "1"), T0 + BUCKET_S: _candle(T0 + BUCKET_S, "50", "60", "50", "55"),
                         T0 + 3 * BUCKET_S: _candle(T0 + 3 * BUCKET_S, "50", "50", "50", "50", status="missing")},
                        opened_s=T0 - 1)
    late = OtherAccount({}, opened_s=T0 + 2 * BUCKET_S)  # opened at the end of the second bucket
    totals = user_totals(own, [flat, late])
    (first,) = totals  # bucket 2: `flat` moved; 3: `late` existed (no candle of it); 4: `flat` missing
    assert (first.open, first.high, first.low, first.close, first.volume) == (D(150), D(170), D(140), D(160), D(6))
    assert user_totals(own, [OtherAccount({}, opened_s=None)]) == []  # a live account: its past is the venue's
    assert user_totals(own, []) == own
