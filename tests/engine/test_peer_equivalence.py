"""ma_cross 50/200 against peers: the NumPy reference, backtrader, vectorbt and the coinwire CLI agree.

Issue 3's acceptance: all-in long-only, 0.1% fee, on (a) the recorded Binance BTC/USDT 5m
candles and (b) a seeded 100,000-bar random walk, the same entries and final equity (relative
1e-6) as backtrader and vectorbt with matching fill semantics. The peers live in .venv-peers
(`make peers`, which `make test` builds) and run as subprocesses of
benchmarks/peers/run_peer.py, all started at once so they share the machine's cores; they
skip only where that venv is absent, and fail instead under COINWIRE_REQUIRE_SERVICES=1 (CI).
The reference itself is checked against a hand-worked series first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.peers.reference import Candles, backtest, cross_signals, load_freqtrade_json
from benchmarks.random_walk import TEST_BARS, ensure_walk, random_walk
from tests.conftest import REQUIRE_SERVICES, ROOT, shared_data

PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEERS_STAMP = ROOT / ".venv-peers" / ".installed"
RUN_PEER = ROOT / "benchmarks" / "peers" / "run_peer.py"
REL = 1e-6
PEERS = ("backtrader", "vectorbt")
# (dataset, fill) pairs: next-open (the default) on both data sets, signal-close on the real data
# (on the walk open == previous close, so both fills give the same prices there).
CASES = [("btc_5m", "open"), ("walk_100k", "open"), ("btc_5m", "close")]
# backtrader costs ~0.2 ms a bar, so it checks the acceptance cases only (next-open fills);
# vectorbt checks signal-close fills too.
PEER_CASES = [(p, n, f) for n, f in CASES for p in PEERS if not (p == "backtrader" and f == "close")]
PEER_TIMEOUT_S = 900


# --- the reference on a hand-worked series ---------------------------------------------------


def _candles(opens: list[float], closes: list[float]) -> Candles:
    n = len(closes)
    o, c = np.array(opens), np.array(closes)
    return Candles(np.arange(n) * 300_000.0, o, np.maximum(o, c), np.minimum(o, c), c, np.ones(n))


def test_reference_hand_worked_cross() -> None:
    # fast=2, slow=3 SMAs of these closes: fast - slow from bar 2 on is 0, -1/6, +1/6, +7/6, -1/2, -5/3, 0
    # -> death at 3 (ignored: flat), golden at 4, death at 6; bars 2 and 8 are exact ties
    closes = [10.0, 10.0, 10.0, 9.0, 12.0, 13.0, 8.0, 8.0, 8.0]
    opens = [10.0, 10.0, 10.0, 10.0, 11.0, 12.5, 12.0, 9.0, 8.0]
    golden, death, ties = cross_signals(np.array(closes), 2, 3)
    assert golden.tolist() == [4] and death.tolist() == [3, 6] and ties == 2
    out = backtest(_candles(opens, closes), fast=2, slow=3, fee=0.01, fill="open", cash=1000.0)
    size = 1000.0 / (12.5 * 1.01)  # golden at bar 4 fills at bar 5's open
    cash = size * 9.0 * 0.99  # death at bar 6 fills at bar 7's open
    assert (out["entries"], out["exits"]) == (1, 1)
    assert out["final_equity"] == pytest.approx(cash, rel=1e-12)
    assert [(t["side"], t["price"]) for t in out["trades"]] == [("buy", 12.5), ("sell", 9.0)]
    closed = backtest(_candles(opens, closes), fast=2, slow=3, fee=0.01, fill="close", cash=1000.0)
    assert closed["final_equity"] == pytest.approx(1000.0 / (12.0 * 1.01) * 8.0 * 0.99, rel=1e-12)


def test_reference_last_bar_signal_is_not_filled_and_open_position_is_marked_to_close() -> None:
    closes = [10.0, 10.0, 10.0, 9.0, 12.0]  # golden cross on the last bar
    opens = [10.0, 10.0, 10.0, 10.0, 11.0]
    assert backtest(_candles(opens, closes), fast=2, slow=3, fill="open")["entries"] == 0
    held = backtest(_candles(opens, closes), fast=2, slow=3, fee=0.0, fill="close", cash=100.0)
    assert held["entries"] == 1 and held["exits"] == 0 and held["final_equity"] == pytest.approx(100.0)


def test_random_walk_is_deterministic_gapless_and_on_the_grid(tmp_path: Path) -> None:
    walk = random_walk(5_000, seed=3)
    assert np.array_equal(walk, random_walk(5_000, seed=3))
    assert not np.array_equal(walk[:, 4], random_walk(5_000, seed=4)[:, 4])
    _, o, h, low, c, v = walk.T
    assert np.array_equal(o[1:], c[:-1])
    assert np.all(h >= np.maximum(o, c)) and np.all(low <= np.minimum(o, c)) and np.all(v > 0)
    assert np.array_equal(np.round(walk[:, 1:5], 2), walk[:, 1:5])
    first = ensure_walk(tmp_path / "a", 5_000, seed=3).read_bytes()
    assert first == ensure_walk(tmp_path / "b", 5_000, seed=3).read_bytes()
    loaded = load_freqtrade_json(tmp_path / "a" / "walk-5000-seed3" / "BTC_USDT-5m.json")
    assert np.array_equal(loaded.close, c) and np.array_equal(loaded.time_ms, walk[:, 0])


# --- peers and coinwire on the two datasets --------------------------------------------------


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data set name -> candle file; the recorded one only where ../shared/data is present."""
    found = {"walk_100k": ensure_walk(tmp_path_factory.mktemp("walk"), TEST_BARS)}
    try:
        found["btc_5m"] = shared_data("binance-spot-5m", "BTC_USDT-5m.json")
    except pytest.skip.Exception:
        pass
    return found


def _dataset(datasets: dict[str, Path], name: str) -> Path:
    if name not in datasets:
        shared_data("binance-spot-5m", "BTC_USDT-5m.json")  # skips with the reason
    return datasets[name]


@pytest.fixture(scope="module")
def references(datasets: dict[str, Path]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (name, fill): backtest(load_freqtrade_json(path), fast=50, slow=200, fee=0.001, fill=fill, cash=10_000.0)
        for name, path in datasets.items()
        for fill in ("open", "close")
    }


class PeerRuns:
    """Every peer run of this module, started together; results read when first asked for.

    Output goes to files, not pipes, so no run stalls on a full pipe while another is awaited.
    """

    def __init__(self, datasets: dict[str, Path], out_dir: Path) -> None:
        self.procs: dict[tuple[str, str, str], tuple[subprocess.Popen[bytes], Path, Path]] = {}
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
        for peer, name, fill in PEER_CASES:
            if name in datasets:
                cmd = [str(PEERS_PYTHON), str(RUN_PEER), peer, "--data", str(datasets[name]), "--fast", "50",
                       "--slow", "200", "--fee", "0.001", "--fill", fill, "--cash", "10000", "--json"]
                out, err = out_dir / f"{peer}-{name}-{fill}.json", out_dir / f"{peer}-{name}-{fill}.err"
                with out.open("wb") as stdout, err.open("wb") as stderr:
                    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
                self.procs[(peer, name, fill)] = (proc, out, err)
        self.results: dict[tuple[str, str, str], dict[str, Any]] = {}

    def result(self, peer: str, name: str, fill: str) -> dict[str, Any]:
        key = (peer, name, fill)
        if key not in self.results:
            proc, out, err = self.procs[key]
            if proc.wait(timeout=PEER_TIMEOUT_S) != 0:
                raise AssertionError(f"{peer} on {name} (fill {fill}) failed:\n{err.read_text()[-3000:]}")
            self.results[key] = json.loads(out.read_text())
        return self.results[key]

    def close(self) -> None:
        for proc, _, _ in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def peer_runs(datasets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerRuns]:
    if not (PEERS_PYTHON.exists() and PEERS_STAMP.exists()):
        reason = f"the peers venv is not built ({PEERS_STAMP} missing): run `make peers`"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason}; COINWIRE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    runs = PeerRuns(datasets, tmp_path_factory.mktemp("peers"))
    yield runs
    runs.close()


def _assert_same(got: dict[str, Any], want: dict[str, Any], who: str) -> None:
    assert (got["entries"], got["exits"]) == (want["entries"], want["exits"]), who
    assert float(got["final_equity"]) == pytest.approx(want["final_equity"], rel=REL), who


def _assert_same_fills(trades: list[dict[str, Any]], want: list[dict[str, Any]], who: str, time_scale: int = 1) -> None:
    assert len(trades) == len(want), who
    for got, ref in zip(trades, want, strict=True):
        assert (got["side"], int(got["time"]) * time_scale) == (ref["side"], ref["time"]), who
        assert float(got["price"]) == pytest.approx(ref["price"], rel=1e-12), who  # backtrader: value / size
        assert float(got["size"]) == pytest.approx(ref["size"], rel=REL), who


@pytest.mark.timeout(PEER_TIMEOUT_S)
@pytest.mark.parametrize(("peer", "name", "fill"), PEER_CASES, ids=["-".join(c) for c in PEER_CASES])
def test_peer_matches_reference(
    peer_runs: PeerRuns, references: dict[tuple[str, str], dict[str, Any]], datasets: dict[str, Path],
    peer: str, name: str, fill: str,
) -> None:
    _dataset(datasets, name)
    want = references[(name, fill)]
    assert want["ties"] == 0, "an exact fast == slow tie would let float rounding decide a cross"
    assert want["entries"] > 100
    got = peer_runs.result(peer, name, fill)
    _assert_same(got, want, peer)
    _assert_same_fills(got["trades"], want["trades"], peer)


def _coinwire_command() -> list[str]:
    script = Path(sys.executable).with_name("coinwire")
    return [str(script)] if script.exists() else [shutil.which("coinwire") or "coinwire"]


def coinwire_cli(path: Path, fill: str, data_dir: Path) -> dict[str, Any]:
    """The engine's CLI contract (issue 3): one JSON object on stdout."""
    cmd = [*_coinwire_command(), "run", "ma_cross", "-m", "backtest", "--data", str(path),
           "--balance", "binance:USDT=10000", "--param", "fast=50", "--param", "slow=200",
           "--fee", "0.001", "--fill", fill, "--json"]
    env = {**os.environ, "COINWIRE_DATA_DIR": str(data_dir)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=PEER_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.timeout(PEER_TIMEOUT_S)
@pytest.mark.parametrize(("name", "fill"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_coinwire_cli_matches_reference_and_peers(
    references: dict[tuple[str, str], dict[str, Any]], datasets: dict[str, Path], tmp_path: Path,
    request: pytest.FixtureRequest, name: str, fill: str,
) -> None:
    path = _dataset(datasets, name)
    want = references[(name, fill)]
    got = coinwire_cli(path, fill, tmp_path)
    _assert_same(got, want, "coinwire vs reference")
    _assert_same_fills(got["trades"], want["trades"], "coinwire fills vs reference", time_scale=_time_scale(got, want))
    peer_runs: PeerRuns | None = _optional(request, "peer_runs")
    if peer_runs is not None:
        for peer in PEERS:
            if (peer, name, fill) in PEER_CASES:
                _assert_same(got, peer_runs.result(peer, name, fill), f"coinwire vs {peer}")


def _time_scale(got: dict[str, Any], want: dict[str, Any]) -> int:
    """Trade times in seconds (coinwire) or milliseconds (reference): the factor to compare them."""
    if got["trades"] and want["trades"] and int(got["trades"][0]["time"]) * 1000 == want["trades"][0]["time"]:
        return 1000
    return 1


def _optional(request: pytest.FixtureRequest, name: str) -> Any:
    try:
        return request.getfixturevalue(name)
    except pytest.skip.Exception:
        return None
