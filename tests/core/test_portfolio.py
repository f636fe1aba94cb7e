"""core.portfolio: bucket boundaries, the rules at an instant, flat buckets, valuation, stored integers."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.portfolio import (
    BUCKET_S,
    CandleBuilder,
    PortfolioCandle,
    Unpriced,
    bucket_end,
    candle_columns,
    missing_candles,
    price_units,
    quantize_value,
    value_from_int,
    value_of,
    value_units,
)

S = 1_000_000_000
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC, a boundary


def D(text: str) -> Decimal:
    return Decimal(text)


def test_bucket_end_puts_a_boundary_instant_in_the_bucket_that_ends_there() -> None:
    assert bucket_end(T0 * S) == T0
    assert bucket_end(T0 * S + 1) == T0 + BUCKET_S
    assert bucket_end((T0 + BUCKET_S) * S - 1) == T0 + BUCKET_S
    assert bucket_end(0) == 0
    assert bucket_end(-1) == 0


def test_a_boundary_sample_closes_the_bucket_that_ends_there() -> None:
    b = CandleBuilder(D("100"), T0 * S + 5 * S)
    assert b.sample((T0 + 300) * S, D("110")) == []
    assert b.sample((T0 + BUCKET_S) * S, D("90")) == []  # exactly at the boundary: still this bucket
    closed = b.sample((T0 + BUCKET_S) * S + 1, D("95"))
    assert closed == [PortfolioCandle(T0, D("100"), D("110"), D("90"), D("90"), D("0"), "complete")]
    assert b.forming == PortfolioCandle(T0 + BUCKET_S, D("90"), D("95"), D("90"), D("95"), D("0"), "complete")


def test_a_fill_at_a_boundary_counts_in_the_bucket_that_ends_there() -> None:
    b = CandleBuilder(D("1000"), T0 * S + 1)
    b.trade((T0 + 100) * S, D("-50"), D("999"))
    b.trade((T0 + BUCKET_S) * S, D("25"), D("998"))
    closed = b.close_until((T0 + BUCKET_S) * S)
    assert closed == [PortfolioCandle(T0, D("1000"), D("1000"), D("998"), D("998"), D("75"), "complete")]
    assert b.forming is not None and b.forming.volume == 0 and b.forming.open == D("998")


def test_flat_buckets_between_sparse_prices() -> None:
    b = CandleBuilder(D("10"), T0 * S)  # a start at a boundary opens the bucket after it
    assert b.forming is not None and b.forming.open_time == T0
    closed = b.sample((T0 + 3600) * S + 1, D("12"))  # the next price an hour (and a nanosecond) later
    assert [c.open_time for c in closed] == [T0 + i * BUCKET_S for i in range(4)]
    assert all(c.open == c.high == c.low == c.close == D("10") and c.volume == 0 for c in closed)
    assert b.forming is not None and (b.forming.open, b.forming.close) == (D("10"), D("12"))


def test_close_until_closes_only_buckets_ending_at_or_before_the_instant() -> None:
    b = CandleBuilder(D("1"), T0 * S + 1)
    assert b.close_until((T0 + BUCKET_S) * S - 1) == []
    assert [c.open_time for c in b.close_until((T0 + 2 * BUCKET_S) * S)] == [T0, T0 + BUCKET_S]
    assert b.forming_end == T0 + 3 * BUCKET_S


def test_partial_marks_only_a_first_bucket_started_inside() -> None:
    inside = CandleBuilder(D("1"), T0 * S + 7 * S, partial=True)
    assert [c.status for c in inside.close_until((T0 + 2 * BUCKET_S) * S)] == ["partial", "complete"]
    at_boundary = CandleBuilder(D("1"), T0 * S, partial=True)
    assert [c.status for c in at_boundary.close_until((T0 + BUCKET_S) * S)] == ["complete"]


def test_a_late_event_counts_in_the_forming_bucket() -> None:
    b = CandleBuilder(D("5"), T0 * S + 1)
    b.close_until((T0 + BUCKET_S) * S)
    assert b.sample((T0 + 10) * S, D("7")) == []
    assert b.forming is not None and b.forming.open_time == T0 + BUCKET_S and b.forming.close == D("7")


def test_missing_candles_cover_the_gap_only() -> None:
    gap = missing_candles(T0, T0 + 4 * BUCKET_S, D("3"))
    assert [c.open_time for c in gap] == [T0, T0 + BUCKET_S, T0 + 2 * BUCKET_S]
    assert all(c.status == "missing" and c.volume == 0 and c.close == D("3") for c in gap)
    assert missing_candles(T0, T0 + BUCKET_S, D("3")) == []


def test_value_of_prices_each_holding_and_the_currency_at_face_value() -> None:
    value = value_of({"BTC": D("0.5"), "USD": D("10.25"), "ETH": D("0")}, {"BTC": D("60000.1")}, "USD")
    assert value == D("30010.30")
    with pytest.raises(Unpriced) as err:
        value_of({"BTC": D("1"), "DOGE": D("3"), "ADA": D("1")}, {"BTC": D("1")}, "USD")
    assert err.value.assets == ["ADA", "DOGE"]


def test_quantize_value_rounds_half_to_even_at_eight_places() -> None:
    assert quantize_value(D("1.000000005")) == 100_000_000
    assert quantize_value(D("1.000000015")) == 100_000_002
    assert quantize_value(D("-2.5")) == -250_000_000
    assert value_from_int(123) == D("0.00000123")


values = st.decimals(min_value=-1000, max_value=10**6, places=8, allow_nan=False, allow_infinity=False)
events = st.lists(st.tuples(st.integers(min_value=1, max_value=6 * BUCKET_S * S), st.booleans(), values, values), max_size=40)


def reference(start_value: Decimal, start_ns: int, evs: list[tuple[int, bool, Decimal, Decimal]], end_s: int) -> list[PortfolioCandle]:
    """An independent statement of the rules: for each bucket, the events stamped inside (end-900, end]."""
    first_end = -(-start_ns // (BUCKET_S * S)) * BUCKET_S
    if first_end * S == start_ns:
        first_end += BUCKET_S
    out = []
    value = start_value
    for end in range(first_end, end_s + 1, BUCKET_S):
        inside = [e for e in evs if (end - BUCKET_S) * S < e[0] <= end * S]
        open_ = value
        points = [open_]
        volume = Decimal(0)
        for _, is_trade, v, notional in inside:
            points.append(v)
            if is_trade:
                volume += abs(notional)
        value = points[-1]
        out.append(PortfolioCandle(end - BUCKET_S, open_, max(points), min(points), value, volume, "complete"))
    return out


@settings(max_examples=200, deadline=None)
@given(start_value=values, start_off=st.integers(min_value=0, max_value=BUCKET_S * S), evs=events)
def test_builder_matches_the_rules_at_an_instant(
    start_value: Decimal, start_off: int, evs: list[tuple[int, bool, Decimal, Decimal]]
) -> None:
    start_ns = T0 * S + start_off
    stamped = sorted((T0 * S + start_off + t, tr, v, n) for t, tr, v, n in evs)
    b = CandleBuilder(start_value, start_ns)
    got: list[PortfolioCandle] = []
    for ts_ns, is_trade, value, notional in stamped:
        got += b.trade(ts_ns, notional, value) if is_trade else b.sample(ts_ns, value)
    end_s = bucket_end(start_ns) + 8 * BUCKET_S
    got += b.close_until(end_s * S)
    want = reference(start_value, start_ns, stamped, end_s)
    assert got == want
    for c in got:
        assert c.high >= max(c.open, c.close) and c.low <= min(c.open, c.close)
    assert sum((c.volume for c in got), Decimal(0)) == sum((abs(n) for _, tr, _, n in stamped if tr), Decimal(0))
    for prev, nxt in zip(got, got[1:], strict=False):
        assert nxt.open == prev.close and nxt.open_time == prev.open_time + BUCKET_S


@given(st.decimals(min_value=-(10**10), max_value=10**10, allow_nan=False, allow_infinity=False))
def test_quantize_round_trip_is_within_half_a_unit(value: Decimal) -> None:
    back = value_from_int(quantize_value(value))
    assert abs(back - value) <= Decimal("0.000000005")
    assert quantize_value(back) == quantize_value(value)


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["BTC", "ETH", "USD", "DOGE"]), st.integers(min_value=-(10**24), max_value=10**26), max_size=4),
    st.dictionaries(
        st.sampled_from(["BTC", "ETH", "DOGE"]),
        st.decimals(min_value=Decimal("0.000001"), max_value=10**6, places=10, allow_nan=False, allow_infinity=False),
        min_size=3,
    ),
)
def test_value_units_equals_value_of_rounded(atto: dict[str, int], prices: dict[str, Decimal]) -> None:
    from decimal import Context, localcontext

    units = value_units(atto, {a: price_units(p) for a, p in prices.items()}, "USD")
    with localcontext(Context(prec=100)):
        exact = value_of({a: Decimal(v).scaleb(-18) for a, v in atto.items()}, prices, "USD")
        assert units == quantize_value(exact)


B_NS = BUCKET_S * S
instants = st.tuples(
    st.integers(min_value=-2, max_value=60),  # buckets after the start's: up to 15 hours, gaps of hours included
    st.one_of(st.just(0), st.integers(min_value=1, max_value=B_NS - 1)),  # exactly at a boundary, or inside
)


@settings(max_examples=300, deadline=None)
@given(
    start_off=st.one_of(st.just(0), st.integers(min_value=1, max_value=B_NS - 1)),
    start_units=st.integers(min_value=-(10**15), max_value=10**15),
    evs=st.lists(st.tuples(instants, st.integers(min_value=-(10**15), max_value=10**15),
                           st.one_of(st.just(0), st.integers(min_value=-(10**12), max_value=10**12))), max_size=60),
    tail=st.one_of(st.just(0), st.integers(min_value=1, max_value=3 * B_NS), st.integers(min_value=0, max_value=5).map(lambda k: k * B_NS)),
)
def test_candle_columns_equal_the_builder_fed_the_same_events(
    start_off: int, start_units: int, evs: list[tuple[tuple[int, int], int, int]], tail: int
) -> None:
    start_ns = T0 * S + start_off
    by_ts = {T0 * S + k * B_NS + off: (units, traded) for (k, off), units, traded in evs}  # one value per instant
    stamped = sorted(by_ts.items())
    end_ns = max([start_ns, *by_ts]) + tail
    b = CandleBuilder(value_from_int(start_units), start_ns)
    want: list[PortfolioCandle] = []
    for ts, (units, traded) in stamped:
        value = value_from_int(units)
        want += b.trade(ts, value_from_int(traded), value) if traded else b.sample(ts, value)
    want += b.close_until(end_ns)
    forming = b.forming
    if forming is not None and end_ns % B_NS and forming.open_time * S < end_ns:
        want.append(forming)
    got = candle_columns(
        np.array([ts for ts, _ in stamped], dtype=np.int64),
        np.array([u for _, (u, _) in stamped], dtype=np.int64),
        np.array([t for _, (_, t) in stamped], dtype=np.int64),
        start_units, start_ns, end_ns,
    )
    rows = [[int(x) for x in row] for row in zip(*got, strict=True)]
    assert rows == [[c.open_time, *(quantize_value(x) for x in (c.open, c.high, c.low, c.close, c.volume))] for c in want]


def test_candle_columns_sum_exact_volumes_of_any_size_and_reject_events_after_the_end() -> None:
    huge = 10**30  # a notional in ATTO overflows int64: object arrays keep it exact
    t = np.array([T0 * S + 1, T0 * S + 2], dtype=np.int64)
    cols = candle_columns(t, np.array([5, 7], dtype=np.int64), np.array([huge, -huge - 1], dtype=object), 1, T0 * S, T0 * S + 3)
    assert [list(c) for c in cols] == [[T0], [1], [7], [1], [7], [2 * huge + 1]]
    with pytest.raises(ValueError):
        candle_columns(t, np.array([5, 7], dtype=np.int64), np.zeros(2, dtype=np.int64), 1, T0 * S, T0 * S + 1)
