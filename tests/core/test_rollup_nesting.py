"""Which timeframes nest in which (what a backtest may roll up), and buckets one at a time or by their ends, against bucket_starts."""

from __future__ import annotations

from datetime import UTC

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.rollup import bucket_ends, bucket_starts, nests, parse_timeframe, utc_bucket

TIMEFRAMES = ("1s", "7s", "1m", "7m", "15m", "1h", "5h", "4h", "1d", "2d", "3d", "1w", "2w", "1M", "2M", "3M", "6M")


@pytest.mark.parametrize(("fine", "coarse", "expected"), [
    ("1m", "1h", True), ("15m", "1M", True), ("1h", "1w", True), ("1d", "1w", True), ("1d", "1M", True),
    ("7m", "1h", False), ("7m", "1d", False), ("2d", "1w", False), ("2d", "1M", False), ("1w", "1M", False),
    ("1w", "2w", True), ("1M", "3M", True), ("2M", "3M", False), ("1M", "1d", False), ("1w", "14d", False), ("5h", "1d", False),
])
def test_nests(fine: str, coarse: str, expected: bool) -> None:
    assert nests(parse_timeframe(fine), parse_timeframe(coarse)) is expected


@pytest.mark.parametrize("fine", TIMEFRAMES)
@pytest.mark.parametrize("coarse", TIMEFRAMES)
def test_nests_says_whether_every_coarse_start_is_a_fine_start(fine: str, coarse: str) -> None:
    """Over four years of UTC buckets from 2015 (three days of the sub-day ones): the rule against the boundaries themselves.

    A coarse start must be the start of the fine bucket holding it.
    """
    f, c = parse_timeframe(fine), parse_timeframe(coarse)
    lo = 1_420_070_400
    hi = lo + (4 * 365 * 86_400 if (c.utc_seconds or 86_400) >= 86_400 else 3 * 86_400)  # a few thousand coarse starts at most
    coarse_starts = bucket_starts(c, UTC, lo, hi)[1:]
    assert nests(f, c) == all(utc_bucket(f, int(start))[0] == start for start in coarse_starts)


@settings(deadline=None)
@given(st.sampled_from(TIMEFRAMES), st.integers(0, 4_000_000_000))
def test_utc_bucket_and_bucket_ends_are_bucket_starts_buckets(tf_text: str, t: int) -> None:
    tf = parse_timeframe(tf_text)
    starts = bucket_starts(tf, UTC, t, t + 2 * tf.seconds + 1)
    assert utc_bucket(tf, t) == (int(starts[0]), int(starts[1]))
    assert starts[0] <= t < starts[1]
    assert bucket_ends(tf, UTC, np.array([t, int(starts[1])], dtype=np.int64)).tolist() == [starts[1], starts[2]]


def test_month_ends_are_the_next_firsts() -> None:
    jan, feb, mar, apr = 1_704_067_200, 1_706_745_600, 1_709_251_200, 1_711_929_600  # 2024, a leap year
    assert bucket_ends(parse_timeframe("1M"), UTC, np.array([jan, feb + 5, mar], dtype=np.int64)).tolist() == [feb, mar, apr]
    assert utc_bucket(parse_timeframe("3M"), feb) == (jan, apr)
    assert len(bucket_ends(parse_timeframe("1M"), UTC, np.empty(0, np.int64))) == 0
