"""Candles the platform recorded from trades as a backtest's data (`recorded:EXCHANGE`), on SQLite and PostgreSQL.

The rows go in through the store's own candle writer (what services/candle_recorder.py does when a
minute closes); the backtest of them is checked against the same bars read from a candle file.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coinwire.core.errors import CoinwireError
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.runs import recorded_candles
from coinwire.history.recorded import load_recorded, recorded_series
from coinwire.store import Store
from coinwire.strategies.ma_cross import MaCross
from tests.conftest import POSTGRES_URL, postgres_schema
from tests.engine.test_cli_run import coinwire
from tests.history.recorded_rows import MINUTES, T0, bars, recorded_store


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        started = await recorded_store(f"sqlite:///{tmp_path / 'coinwire.db'}")
        yield started
        await started.close()
        return
    async with postgres_schema() as schema:
        started = await recorded_store(POSTGRES_URL, schema)
        yield started
        await started.close()


async def test_recorded_series_are_listed_and_read_finest_first_as_exact_prices(store: Store) -> None:
    listed = {(i.exchange, i.symbol, i.timeframe): i for i in await recorded_series(store)}
    assert set(listed) == {("demo", "BTC/USDT", "1m"), ("demo", "BTC/USDT", "1h"), ("demo", "ETH/USDT", "1m"),
                           ("demo", "ETH/USDT", "1h"), ("kraken", "BTC/USDT", "1m"), ("kraken", "BTC/USDT", "1h")}
    minute = listed[("demo", "BTC/USDT", "1m")]
    assert (minute.rows, minute.first, minute.last, minute.path) == (MINUTES, T0, T0 + 60 * (MINUTES - 1), "recorded:demo")
    (candles,) = await load_recorded(store, "demo", ["BTC_USDT"], T0 + 600, T0 + 1200)
    rows = [r for r in bars() if r.interval_s == 60 and T0 + 600 <= r.open_time < T0 + 1200]
    assert (candles.exchange, candles.symbol, candles.timeframe, len(candles)) == ("demo", "BTC/USDT", "1m", 10)
    assert [f"{v:.2f}" for v in candles.close] == [f"{r.close // 100}.{r.close % 100:02d}" for r in rows]
    assert candles.volume[0] == rows[0].volume / 1e5
    assert {c.symbol for c in await load_recorded(store, "demo")} == {"BTC/USDT", "ETH/USDT"}


async def test_bad_recorded_data_is_refused_with_stable_codes(store: Store) -> None:
    config = BacktestConfig(exchange="demo", balances={"USDT": "1000"})

    async def code(data: list[str], params: dict[str, str] | None = None, cfg: BacktestConfig = config) -> str:
        with pytest.raises(CoinwireError) as caught:
            await recorded_candles(store, data, MaCross, params or {}, cfg, known=["demo", "binance"])
        return caught.value.code

    assert await code(["recorded:nosuch"]) == "unknown_exchange"
    assert await code(["recorded:binance"], cfg=BacktestConfig(exchange="binance", balances={"USDT": "1"})) == "recorded_missing"
    assert await code(["recorded:Demo!"]) == "invalid_exchange"
    assert await code(["recorded:demo", "recorded:kraken"]) == "invalid_data"
    assert await code(["recorded:kraken"]) == "invalid_balance"  # the balances are on demo
    assert await code(["recorded:demo"], {"symbol": "SOL/USDT"}) == "recorded_missing"
    late = BacktestConfig(exchange="demo", balances={"USDT": "1000"}, start=T0 + 86_400)
    assert await code(["recorded:demo"], cfg=late) == "recorded_missing"
    with pytest.raises(CoinwireError) as caught:
        await load_recorded(store, "demo", None, T0 + 600, T0 + 600)
    assert caught.value.code == "empty_range"  # as BacktestConfig calls it
    assert await recorded_candles(store, ["some/file.json"], MaCross, {}, config) is None  # files are not its business


def test_coinwire_run_on_recorded_candles_trades_as_on_the_same_bars_from_a_file(tmp_path: Path) -> None:
    """`coinwire run --data recorded:demo` reads the configured store; `coinwire data list` shows the recording."""
    import asyncio

    asyncio.run(_record(tmp_path / "coinwire.db"))
    folder = tmp_path / "files"
    folder.mkdir()
    minutes = [r for r in bars() if r.interval_s == 60]
    (folder / "BTC_USDT-1m.json").write_text(json.dumps([[r.open_time * 1000, r.open / 100, r.high / 100, r.low / 100,
                                                          r.close / 100, r.volume / 1e5] for r in minutes]))
    common = ["run", "ma_cross", "--balance", "demo:USDT=10000", "--param", "timeframe=5m", "--param", "fast=3", "--param", "slow=8",
              "--json", "--no-save"]
    recorded = coinwire(tmp_path, *common, "--data", "recorded:demo")
    assert recorded.returncode == 0, recorded.stderr
    from_file = coinwire(tmp_path, *common, "--data", str(folder / "BTC_USDT-1m.json"))
    assert from_file.returncode == 0, from_file.stderr
    mine, theirs = json.loads(recorded.stdout), json.loads(from_file.stdout)
    assert mine["entries"] > 2 and mine["trades"] == theirs["trades"] and mine["final_equity"] == theirs["final_equity"]
    assert (mine["start"], mine["end"]) == (theirs["start"], theirs["end"])

    missing = coinwire(tmp_path, *common, "--data", "recorded:nosuch")
    assert missing.returncode == 2 and "(unknown_exchange)" in missing.stderr and "recorded: demo" in missing.stderr
    listed = coinwire(tmp_path, "data", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    series = [s for s in json.loads(listed.stdout) if s["source"] == "recorded"]
    assert {(s["exchange"], s["symbol"], s["timeframe"], s["rows"], s["path"]) for s in series} >= {
        ("demo", "BTC/USDT", "1m", MINUTES, "recorded:demo"), ("demo", "BTC/USDT", "1h", MINUTES // 60, "recorded:demo")}


async def _record(path: Path) -> None:
    store = await recorded_store(f"sqlite:///{path}")
    await store.close()
