"""`coinwire record`: a feed's books, trades and tickers into raw capture files, closed cleanly on time, on a signal, on a full disk."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coinwire.cli import app
from coinwire.cli.record import _record, parse_duration
from coinwire.config import ExchangeConfig
from coinwire.history.binance_capture import iter_capture
from coinwire.history.capture_writer import read_instruments
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from tests.feeds.binance_server import RecordedBinance, ServerRunner
from tests.feeds.test_ccxt_feed import SPOT_ONLY, capture


def record(data_dir: Path, *args: str, config: Path | None = None) -> subprocess.Popen[str]:
    extra = ["--config", str(config)] if config is not None else []
    return subprocess.Popen([sys.executable, "-m", "coinwire.cli", "--data-dir", str(data_dir), *extra, "record", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def fast_demo(tmp_path: Path, tick: float = 0.01) -> Path:
    """The demo exchange ticking every `tick` seconds (its `tick_interval` setting): lots of data quickly."""
    path = tmp_path / "fast.toml"
    path.write_text(f'[[exchanges]]\nname = "demo"\nfeed = "demo"\ntick_interval = {tick}\npaper_funds = {{USDT = "1000"}}\n')
    return path


def messages(path: Path) -> list[object]:
    """What the replay and the L2 backtest read from a recorded file (`EXCHANGE_MARKET_TIME.gz`), with its recorded instrument."""
    inst = read_instruments(path.parent)[path.name.split("_")[1]]
    return [m for _, m in iter_capture(path, inst)]


def wait_for_data(folder: Path, least: int = 1, timeout: float = 60) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(folder.glob("*.gz")) if folder.is_dir() else []
        if files and all(f.stat().st_size >= least for f in files):
            return files
        time.sleep(0.1)
    raise AssertionError(f"nothing recorded in {folder}")


def test_bad_input_gets_stable_codes_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, code in ((["record", "nosuch", "--to", str(tmp_path / "r")], "unknown_exchange"),
                       (["record", "demo", "--to", str(tmp_path / "r"), "--for", "soon"], "invalid_duration"),
                       (["record", "demo", "BTC/USDT:USDT", "--to", str(tmp_path / "r")], "unsupported_market")):
        done = runner.invoke(app, ["--data-dir", str(tmp_path), *args])
        assert done.exit_code == 2 and f"({code})" in done.output, (args, done.output)
    (tmp_path / "file").write_text("x")
    done = runner.invoke(app, ["--data-dir", str(tmp_path), "record", "demo", "--to", str(tmp_path / "file"), "--for", "1"])
    assert done.exit_code == 2 and "(invalid_folder)" in done.output
    assert [parse_duration(t) for t in ("120", "90s", "2m", "1h", "1.5")] == [120, 90, 120, 3600, 1.5]


def test_the_demo_feed_is_recorded_until_sigterm_and_the_files_are_whole(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    proc = record(tmp_path, "demo", "BTC/USDT", "ETH/USDT", "--to", str(folder), "--json")
    wait_for_data(folder, least=100)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    files = {f["symbol"]: f for f in json.loads(out)["files"]}
    assert set(files) == {"BTC/USDT", "ETH/USDT"}
    for info in files.values():
        path = Path(info["path"])
        assert gzip.decompress(path.read_bytes()).count(b"\n") == info["lines"]  # a whole gzip stream of whole lines
        got = messages(path)
        assert len(got) == info["lines"] and isinstance(got[0], BookSnapshot)
        assert {type(m) for m in got} == {BookSnapshot, BookDelta, TradeTick, BookTicker}
    assert read_instruments(folder)["btcusdt"].price_decimals == 2  # the demo market's own precision, kept beside


def test_a_killed_recording_reads_up_to_its_last_whole_record(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    proc = record(tmp_path, "demo", "--to", str(folder), config=fast_demo(tmp_path))
    wait_for_data(folder, least=20_000)
    proc.kill()
    proc.communicate(timeout=10)
    for path in sorted(folder.glob("*.gz")):
        whole = messages(path)
        assert whole and isinstance(whole[0], BookSnapshot)
        raw = path.read_bytes()
        for cut in range(len(raw) - 1, max(0, len(raw) - 4000), -397):  # a kill in the middle of a member, anywhere
            path.write_bytes(raw[:cut])
            part = messages(path)
            assert part == whole[: len(part)] and len(part) >= len(whole) // 2
        path.write_bytes(raw)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_stops_the_recording_with_whole_files_and_exit_3(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True)
    try:
        proc = record(tmp_path, "demo", "--to", str(folder), "--for", "60", "--json", config=fast_demo(tmp_path))
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 3, err
        assert "(disk_full)" in err and "No space left on device" in err
        files = json.loads(out)["files"]
        assert json.loads(out)["error"] == "disk_full" and len(files) == 3
        used = sum(p.stat().st_size for p in folder.iterdir())
        assert used > 128 * 1024  # it really filled the disk
        for info in files:
            path = Path(info["path"])
            assert path.stat().st_size == info["bytes"]
            assert gzip.decompress(path.read_bytes()).count(b"\n") == info["lines"]  # valid: whole members, whole lines
            assert len(messages(path)) == info["lines"]
    finally:
        subprocess.run(["umount", str(folder)], check=True)


async def test_a_ccxt_feed_is_recorded_as_the_exchange_sent_it(tmp_path: Path) -> None:
    """ccxt.binance against a local server answering from the recorded Binance capture: its trades come back out of the recording."""
    runner = ServerRunner(RecordedBinance(capture()))
    await runner.start()
    try:
        cfg = ExchangeConfig(name="binance", feed="ccxt", symbols=["BTC/USDT"], poll_interval=0.02,
                             ccxt_urls=runner.urls(), ccxt_options=SPOT_ONLY)
        summary, feed_error, failure = await _record(cfg, tmp_path / "rec", 4.0)
    finally:
        await runner.stop()
    assert feed_error is None and failure is None
    (info,) = summary
    got = messages(Path(info["path"]))
    trades = [m for m in got if isinstance(m, TradeTick)]
    assert any(isinstance(m, BookSnapshot) for m in got) and len(trades) >= 5  # its book, as the REST snapshot among the stream
    source = {(str(t["t"]), Decimal(t["p"])) for t in capture() if t["stream"].endswith("@trade")}
    inst = read_instruments(tmp_path / "rec")["btcusdt"]
    assert inst.exchange == "binance" and inst.price_decimals == 2
    assert {(t.trade_id, Decimal(t.price).scaleb(-inst.price_decimals)) for t in trades} <= source
