"""`coinwire frontier`: table, one JSON object, plots, stored history, and bad input with a stable code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from coinwire.history.formats import read_candles
from coinwire.history.frontier_input import load_from_files
from coinwire.history.store import HistoryStore, default_history_root
from tests.conftest import shared_data
from tests.engine.test_cli_run import coinwire


def test_json_is_one_object_with_the_frontier_and_both_portfolios(tmp_path: Path) -> None:
    done = coinwire(tmp_path, "frontier", "--data", str(shared_data("binance-spot-1h")), "--symbols", "BTC/USDT,ETH/USDT",
                    "--symbols", "SOL/USDT", "--window", "all", "--points", "12", "--risk-free", "0.05", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["assets"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert out["risk_free"] == 0.05 and out["periods_per_year"] == 8760
    assert len(out["frontier"]) == 12
    for p in out["frontier"] + [out["max_sharpe"], out["min_variance"]]:
        assert set(p) == {"weights", "return", "volatility", "sharpe"}
        assert math.isclose(sum(p["weights"].values()), 1.0, abs_tol=1e-12)
        assert all(math.isfinite(v) for v in (p["return"], p["volatility"], p["sharpe"]))
    sharpes = [p["sharpe"] for p in out["frontier"]]
    assert out["max_sharpe"]["sharpe"] >= max(sharpes)
    assert out["min_variance"]["volatility"] <= min(p["volatility"] for p in out["frontier"])
    assert math.isclose((out["max_sharpe"]["return"] - 0.05) / out["max_sharpe"]["volatility"], out["max_sharpe"]["sharpe"])


def test_window_changes_the_history_used(tmp_path: Path) -> None:
    args = ["frontier", "--data", str(shared_data("binance-spot-1h")), "--symbols", "BTC/USDT,ETH/USDT", "--json"]
    short = json.loads(coinwire(tmp_path, *args, "--window", "30d").stdout)
    whole = json.loads(coinwire(tmp_path, *args, "--window", "all").stdout)
    assert short["observations"] == 30 * 24 and whole["observations"] > short["observations"]


def test_table_and_html_plot(tmp_path: Path) -> None:
    page = tmp_path / "frontier.html"
    done = coinwire(tmp_path, "frontier", "--data", str(shared_data("binance-spot-5m")), "--points", "5", "--cloud", "2000",
                    "--plot", str(page))
    assert done.returncode == 0, done.stderr
    assert "Efficient frontier (8 assets" in done.stdout and "Max Sharpe" in done.stdout and "Min variance" in done.stdout
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "<script" not in text
    assert text.count("<circle") >= 2000 + 8 and "polyline" in text and "SOL/USDT" in text


def test_png_plot(tmp_path: Path) -> None:  # matplotlib comes with the dev extra (and the `plot` extra)
    image = tmp_path / "frontier.png"
    done = coinwire(tmp_path, "frontier", "--data", str(shared_data("binance-spot-1h")), "--symbols", "BTC/USDT,ETH/USDT",
                    "--cloud", "500", "--plot", str(image))
    assert done.returncode == 0, done.stderr
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 5_000


def test_stored_history_is_used_without_data(tmp_path: Path) -> None:
    store = HistoryStore(default_history_root(tmp_path))
    for name in ("BTC_USDT-1h.json", "ETH_USDT-1h.json", "LTC_USDT-1h.json"):
        store.write(read_candles(shared_data("binance-spot-1h", name)))
    done = coinwire(tmp_path, "frontier", "--symbols", "BTC/USDT,ETH/USDT,LTC/USDT", "--timeframe", "1h", "--json")
    assert done.returncode == 0, done.stderr
    stored = json.loads(done.stdout)
    files = json.loads(coinwire(tmp_path, "frontier", "--data", str(shared_data("binance-spot-1h")), "--symbols",
                                "BTC/USDT,ETH/USDT,LTC/USDT", "--json").stdout)
    assert np.allclose(list(stored["max_sharpe"]["weights"].values()), list(files["max_sharpe"]["weights"].values()))


def test_bad_input_answers_a_stable_code(tmp_path: Path) -> None:
    data = str(shared_data("binance-spot-1h"))
    cases = [
        (["--data", data, "--symbols", "BTC/USDT"], "too_few_assets"),
        (["--data", data, "--symbols", "BTC/USDT,BTC/USDT"], "duplicate_assets"),
        (["--data", data, "--symbols", "BTC/USDT,NOPE/USDT"], "unknown_asset"),
        (["--data", data, "--symbols", "BTC/USDT,ETH/USDT", "--window", "soon"], "invalid_window"),
        (["--data", data, "--symbols", "BTC/USDT,ETH/USDT", "--max-weight", "0.3"], "infeasible_bounds"),
        (["--data", data, "--symbols", "BTC/USDT,ETH/USDT", "--points", "1"], "invalid_parameter"),
        (["--data", data, "--symbols", "BTC/USDT,ETH/USDT", "--plot", str(tmp_path / "x.pdf")], "invalid_plot"),
        (["--symbols", "BTC/USDT,ETH/USDT"], "history_missing"),
        ([], "symbols_required"),
    ]
    for args, code in cases:
        done = coinwire(tmp_path, "frontier", *args, "--json")
        assert done.returncode == 2, (args, done.stdout)
        assert code in done.stderr, (args, done.stderr)
        assert done.stdout == ""


def _folder_not_named_for_an_exchange(tmp_path: Path) -> Path:
    """Real files in a folder whose name says no exchange (copies: a link would resolve to the shared folder's name)."""
    folder = tmp_path / "mydata"
    folder.mkdir()
    for name in ("BTC_USDT-1h.json", "ETH_USDT-1h.json"):
        (folder / name).write_bytes(shared_data("binance-spot-1h", name).read_bytes())
    return folder


def test_a_folder_of_files_needs_no_exchange(tmp_path: Path) -> None:
    folder = _folder_not_named_for_an_exchange(tmp_path)
    done = coinwire(tmp_path, "frontier", "--data", str(folder), "--window", "all", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    same = json.loads(coinwire(tmp_path, "frontier", "--data", str(shared_data("binance-spot-1h")), "--symbols",
                               "BTC/USDT,ETH/USDT", "--window", "all", "--json").stdout)
    assert out["assets"] == ["BTC/USDT", "ETH/USDT"] and out["max_sharpe"] == same["max_sharpe"]
    files = coinwire(tmp_path, "frontier", "--data", str(folder / "BTC_USDT-1h.json"), "--data", str(folder / "ETH_USDT-1h.json"),
                     "--window", "all", "--json")
    assert files.returncode == 0, files.stderr
    assert json.loads(files.stdout)["max_sharpe"] == same["max_sharpe"]


def test_exchange_is_honoured_with_data(tmp_path: Path) -> None:
    folder = _folder_not_named_for_an_exchange(tmp_path)
    done = coinwire(tmp_path, "frontier", "--data", str(folder), "--exchange", "kraken", "--json")
    assert done.returncode == 0, done.stderr
    assert "pass --exchange" not in done.stderr and json.loads(done.stdout)["assets"] == ["BTC/USDT", "ETH/USDT"]
    assert {c.exchange for c in load_from_files([folder], exchange="kraken")} == {"kraken"}
    assert {c.exchange for c in load_from_files([folder / "BTC_USDT-1h.json"], exchange="kraken")} == {"kraken"}
    # without it, a folder named for an exchange still says it
    assert {c.exchange for c in load_from_files([shared_data("binance-spot-1h")], ["BTC/USDT", "ETH/USDT"])} == {"binance"}
