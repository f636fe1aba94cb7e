"""`coinwire run` end to end in a real process: JSON report, HTML report, stored run, clear errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import shared_data

DATA_1H = "binance-spot-1h/BTC_USDT-1h.json"
CROSS_EXCHANGE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "cross_exchange.toml"


def coinwire(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coinwire.cli", "--data-dir", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=120)


def test_run_prints_the_report_as_json_and_stores_the_run(tmp_path: Path) -> None:
    data = shared_data() / DATA_1H
    args = ["run", "ma_cross", "-m", "backtest", "--data", str(data), "--balance", "binance:USDT=10000",
            "--param", "fast=20", "--param", "slow=50", "--param", "timeframe=1h", "--fee", "0.001", "--json",
            "--report", str(tmp_path / "report.html")]
    done = coinwire(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for key in ("run_id", "strategy", "mode", "start", "end", "final_equity", "total_return", "sharpe", "max_drawdown",
                "entries", "exits", "fees", "trades"):
        assert key in report
    assert report["entries"] > 0 and len(report["trades"]) == report["entries"] + report["exits"]
    assert set(report["trades"][0]) >= {"time", "side", "price", "size", "fee"}
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and report["run_id"] in html
    again = coinwire(tmp_path, *args)
    assert again.stdout == done.stdout  # deterministic: same inputs, same bytes
    listed = coinwire(tmp_path, "runs", "list", "--json")
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [report["run_id"]]
    stored = tmp_path / "runs" / report["run_id"]
    assert json.loads((stored / "report.json").read_text())["final_equity"] == report["final_equity"]
    assert (stored / "messages.jsonl").read_text().count("venue.fill") == len(report["trades"])


def test_stops_and_targets_by_the_cli_state_their_intrabar_assumption(tmp_path: Path) -> None:
    data = str(shared_data() / DATA_1H)
    base = ["run", "ma_cross", "--data", data, "--balance", "binance:USDT=10000", "--param", "fast=10", "--param", "slow=30",
            "--param", "timeframe=1h", "--param", "stop_loss=1", "--param", "take_profit=1.5", "--json", "--no-save"]
    reports = {}
    for mode in ("pessimistic", "ohlc"):
        done = coinwire(tmp_path, *base, "--intrabar", mode)
        assert done.returncode == 0, done.stderr
        reports[mode] = json.loads(done.stdout)
        assert reports[mode]["intrabar"] == mode
    both = reports["pessimistic"]["bars_with_both_legs"]
    assert both > 0 and reports["ohlc"]["bars_with_both_legs"] == both  # the bars it decided, whichever way
    assert reports["ohlc"]["final_equity"] > reports["pessimistic"]["final_equity"]  # ohlc takes the target there: it flatters
    table = coinwire(tmp_path, *base[:-2], "--no-save", "--report", str(tmp_path / "report.html"))
    assert "bars_with_both_legs" in table.stdout and "pessimistic" in table.stdout
    page = (tmp_path / "report.html").read_text()
    assert f"<th>bars_with_both_legs</th><td>{both}</td>" in page and "<td>pessimistic</td>" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope", "--balance", "binance:USDT=1"], "unknown strategy 'nope'"),
        (["run", "ma_cross", "--balance", "binance:USDT=1", "--param", "fats=3", "--data", "DATA"], "did you mean 'fast'"),
        (["run", "ma_cross", "--balance", "USDT=1", "--data", "DATA"], "EXCHANGE:CURRENCY=AMOUNT"),
        (["run", "ma_cross", "--balance", "binance:USDT=1", "--data", "/no/such/file.json"], "no such file"),
        (["run", "ma_cross", "--balance", "binance:USDT=1", "--data", "DATA", "-s", "2030-01-01"], "no candles"),
        (["run", "ma_cross", "--balance", "binance:USDT=1", "--data", "DATA", "-s", "2021-01-02", "-e", "2021-01-01"], "after its start"),
        (["run", "ma_cross", "--balance", "binance:USDT=1", "--data", "DATA", "--intrabar", "random"], "pessimistic, ohlc or olhc"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    data = str(shared_data() / DATA_1H)
    done = coinwire(tmp_path, *[data if a == "DATA" else a for a in args])
    assert done.returncode == 2
    assert message in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing written


def test_a_failing_strategy_exits_1_with_the_cause(tmp_path: Path) -> None:
    strategy = tmp_path / "bad.py"
    strategy.write_text(
        "from coinwire.engine.strategy import Strategy\n"
        "class Bad(Strategy):\n"
        "    def on_start(self):\n"
        "        self.subscribe_candles('BTC/USDT', '1h', self.candle)\n"
        "    def candle(self, c):\n"
        "        raise RuntimeError('kaput')\n"
    )
    done = coinwire(tmp_path, "run", f"{strategy}:Bad", "--balance", "binance:USDT=100", "--data", str(shared_data() / DATA_1H), "--json")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["status"] == "failed" and "kaput" in out["error"]


def test_no_timeframe_given_runs_on_the_datas_timeframe_and_says_so(tmp_path: Path) -> None:
    data = str(shared_data() / DATA_1H)  # ma_cross declares 5m
    done = coinwire(tmp_path, "run", "ma_cross", "--data", data, "--balance", "binance:USDT=10000", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "finished" and out["error"] is None and out["candles"] == 5482
    assert "timeframe 1h, the data's" in done.stderr and "default 5m" in done.stderr and "--param timeframe=" in done.stderr
    log = (tmp_path / "runs" / out["run_id"] / "log.jsonl").read_text()
    assert "timeframe 1h, the data's" in log  # the stored run remembers why
    explicit = coinwire(tmp_path, "run", "ma_cross", "--data", data, "--balance", "binance:USDT=10000", "--param", "timeframe=1h", "--json")
    assert explicit.stdout == done.stdout and "note:" not in explicit.stderr  # the same run as asking for 1h: same id, same report


def test_a_timeframe_the_data_cannot_make_is_refused_before_running(tmp_path: Path) -> None:
    data = str(shared_data() / DATA_1H)
    done = coinwire(tmp_path, "run", "ma_cross", "--data", data, "--balance", "binance:USDT=10000", "--param", "timeframe=5m", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert "timeframe_unavailable" in done.stderr and "--param timeframe=1h" in done.stderr and "1h candles of BTC/USDT" in done.stderr
    assert not (tmp_path / "runs").exists()  # refused before running: nothing stored
    rolled = coinwire(tmp_path, "run", "ma_cross", "--data", data, "--balance", "binance:USDT=10000", "--param", "timeframe=4h",
                      "--param", "fast=5", "--param", "slow=20", "--json")
    assert rolled.returncode == 0, rolled.stderr  # a whole multiple of the data's bars is rolled up
    assert json.loads(rolled.stdout)["status"] == "finished" and "note:" not in rolled.stderr
    for timeframe in ("1w", "1M"):  # the grammar of /ohlcv: Monday weeks and calendar months roll up from hours too
        monthly = coinwire(tmp_path, "run", "ma_cross", "--data", data, "--balance", "binance:USDT=10000", "--param",
                           f"timeframe={timeframe}", "--param", "fast=2", "--param", "slow=3", "--json")
        assert monthly.returncode == 0, monthly.stderr
        assert json.loads(monthly.stdout)["status"] == "finished"
    odd = coinwire(tmp_path, "run", "ma_cross", "--data", data, "--balance", "binance:USDT=10000", "--param", "timeframe=90m", "--json")
    assert odd.returncode == 2 and "timeframe_unavailable" in odd.stderr


def test_a_paper_session_over_the_example_configs_two_demo_exchanges_trades_on_both(tmp_path: Path) -> None:
    end = int(time.time()) + 25  # the session needs a few seconds to start (more on a busy machine); it trades at once
    out = coinwire(tmp_path, "--config", str(CROSS_EXCHANGE), "run", "cross_exchange", "-m", "paper", "--balance", "demo:USDT=5000",
                   "--balance", "demo2:BTC=0.1", "--end", str(end), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["status"], report["exchanges"]) == ("finished", ["demo", "demo2"])
    assert {(t["exchange"], t["side"]) for t in report["trades"]} == {("demo", "buy"), ("demo2", "sell")}
    with sqlite3.connect(tmp_path / "runs" / report["run_id"] / "gateway.db") as db:
        rows = db.execute("select exchange, count(*) from fills where run_id = ? group by exchange", (report["run_id"],)).fetchall()
    assert dict(rows) == {"demo": len(report["trades"]) // 2, "demo2": len(report["trades"]) // 2}
    refused = coinwire(tmp_path, "run", "ma_cross", "--data", str(shared_data() / DATA_1H), "--balance", "binance:USDT=10",
                       "--balance", "kraken:USDT=10")
    assert refused.returncode == 2 and "a backtest trades on one exchange" in refused.stderr
