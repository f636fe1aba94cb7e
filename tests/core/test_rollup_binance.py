"""Acceptance of core.rollup on real Binance candles: 5m -> 1h equals Binance's own 1h records, and
4h / 1d / 1w in UTC, Europe/London and America/New_York equal an independent pandas resample.

The data (../shared/data/binance-spot-{5m,1h}) spans 2020-12-01 .. 2021-07-17, so both zones'
spring DST changes (2021-03-14 New York, 2021-03-28 London) lie inside it. pandas is not a
coinwire dependency: it runs in .venv-peers (`make peers`) through
benchmarks/peers/pandas_resample.py, which says how each timeframe is computed there.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from coinwire.core.rollup import OHLCV, bucket_starts, parse_timeframe, rollup
from coinwire.history.formats import read_candles
from tests.conftest import REQUIRE_SERVICES, ROOT, shared_data

SYMBOLS = ("BTC", "ETH", "ADA", "DOT", "LINK", "LTC", "SOL", "XRP")
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PANDAS_SCRIPT = ROOT / "benchmarks" / "peers" / "pandas_resample.py"
ZONES = ("UTC", "Europe/London", "America/New_York")

# Binance's 2021-04-22/23 incident: for these hours (UTC) every pair's 1h record holds more volume
# (0.6-8% more) than its twelve 5m records sum to, while open, high, low and close agree. Binance's
# own data disagrees with itself there, so no rollup can match both.
OUTAGE_HOURS = ("2021-04-22T02:00:00+00:00", "2021-04-23T01:00:00+00:00", "2021-04-23T02:00:00+00:00")


def _ohlcv(path: object) -> OHLCV:
    candles = read_candles(path)  # type: ignore[arg-type]
    return OHLCV(candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume)


def _roll(candles: OHLCV, tf: str, tz: str) -> OHLCV:
    end = int(candles.time[-1]) + 300
    return rollup(candles, bucket_starts(parse_timeframe(tf), ZoneInfo(tz), int(candles.time[0]), end), end)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_5m_rolled_up_to_1h_equals_binance_1h(symbol: str) -> None:
    five = _ohlcv(shared_data("binance-spot-5m", f"{symbol}_USDT-5m.json"))
    hourly = _ohlcv(shared_data("binance-spot-1h", f"{symbol}_USDT-1h.json"))
    rolled = _roll(five, "1h", "UTC")
    # hours the 5m data covers fully: all twelve 5-minute candles present
    owner = np.searchsorted(rolled.time, five.time, side="right") - 1
    full = rolled.time[np.bincount(owner, minlength=len(rolled.time)) == 12]
    outage = {int(datetime.fromisoformat(h).timestamp()) for h in OUTAGE_HOURS}
    assert outage <= set(full.tolist())
    checked = np.setdiff1d(full, np.array(sorted(outage)))
    assert len(checked) > 5_400  # of the 5,482 hours in the files
    ours = np.searchsorted(rolled.time, checked)
    theirs = np.searchsorted(hourly.time, checked)
    assert np.array_equal(hourly.time[theirs], checked), "Binance's 1h file lacks an hour its 5m file covers"
    for name in ("open", "high", "low", "close"):
        mine, binance = getattr(rolled, name)[ours], getattr(hourly, name)[theirs]
        bad = np.flatnonzero(mine != binance)
        assert not len(bad), f"{name} differs at {[_utc(t) for t in checked[bad[:5]]]}"
    np.testing.assert_allclose(rolled.volume[ours], hourly.volume[theirs], rtol=1e-9, atol=0)
    # ... and the outage hours really do disagree on volume (else they need no exception)
    at = np.searchsorted(rolled.time, sorted(outage))
    there = np.searchsorted(hourly.time, sorted(outage))
    assert (np.abs(rolled.volume[at] / hourly.volume[there] - 1) > 1e-3).all()
    for name in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(rolled, name)[at], getattr(hourly, name)[there])


def _utc(t: int) -> str:
    return datetime.fromtimestamp(int(t), UTC).isoformat()


def _pandas(path: object, cases: list[tuple[str, str]]) -> dict[str, list[list[float]]]:
    if not PEERS_PYTHON.exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"{PEERS_PYTHON} is missing (make peers), and COINWIRE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(f"{PEERS_PYTHON} is missing: run `make peers` for the pandas comparison")
    args = [str(PEERS_PYTHON), str(PANDAS_SCRIPT), str(path)] + [x for case in cases for x in case]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("symbol", ["BTC", "SOL"])
def test_4h_1d_1w_in_three_zones_equal_pandas(symbol: str) -> None:
    path = shared_data("binance-spot-5m", f"{symbol}_USDT-5m.json")
    five = _ohlcv(path)
    cases = [(tf, tz) for tf in ("4h", "1d", "1w") for tz in ZONES]
    expected = _pandas(path, cases)
    for tf, tz in cases:
        rows = np.array(expected[f"{tf} {tz}"])
        mine = _roll(five, tf, tz)
        assert mine.time.tolist() == rows[:, 0].astype(np.int64).tolist(), f"{tf} {tz}: bucket starts differ"
        for i, name in enumerate(("open", "high", "low", "close"), start=1):
            assert getattr(mine, name).tolist() == rows[:, i].tolist(), f"{tf} {tz}: {name} differs"
        np.testing.assert_allclose(mine.volume, rows[:, 5], rtol=1e-9, atol=0, err_msg=f"{tf} {tz}: volume")
    # the DST changes are inside the data, and the zones' days really differ
    london_days = _roll(five, "1d", "Europe/London").time
    assert int(datetime(2021, 3, 29, tzinfo=ZoneInfo("Europe/London")).timestamp()) in london_days.tolist()
    assert int(datetime(2021, 3, 28, tzinfo=ZoneInfo("Europe/London")).timestamp()) in london_days.tolist()
    ny_4h = _roll(five, "4h", "America/New_York").time
    new_york = ZoneInfo("America/New_York")
    day = (datetime(2021, 3, 14, tzinfo=new_york).timestamp(), datetime(2021, 3, 15, tzinfo=new_york).timestamp())
    spring = [datetime.fromtimestamp(int(t), new_york) for t in ny_4h if day[0] <= t < day[1]]
    assert [d.hour for d in spring] == [0, 4, 8, 12, 16, 20]  # 2021-03-14: a 23-hour day, still six 4h buckets
