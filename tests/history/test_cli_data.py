"""`coinwire data import` and `coinwire data list` as a subprocess (download: tests/history/test_download.py)."""

from __future__ import annotations

import json
from pathlib import Path

from coinwire.history.store import HistoryStore
from tests.conftest import shared_data
from tests.test_cli import coinwire

T0 = 1_606_780_800


def test_import_then_list(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    captures = sorted(str(p) for p in shared_data("binance-spot-l2").glob("*.gz"))
    five = str(shared_data("binance-spot-5m", "BTC_USDT-5m.json"))
    result = coinwire("--data-dir", data, "data", "import", five, *captures)
    assert result.returncode == 0, result.stderr
    assert "65,741" in result.stdout and "BTC/USDT" in result.stdout
    listed = coinwire("--data-dir", data, "data", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["exchange"], r["symbol"], r["timeframe"], r["rows"]) for r in rows] == [
        ("binance", "BTC/USDT", "1m", 12),  # the two capture files are one stream
        ("binance", "BTC/USDT", "5m", 65_741),
    ]
    assert rows[1]["first"] == T0 and rows[1]["first_utc"] == "2020-12-01 00:00 UTC"
    table = coinwire("--data-dir", data, "data", "list")
    assert "65,741" in table.stdout and "2021-07-17 21:05" in table.stdout
    # importing again with overrides goes to another series; the store reads back what was imported
    again = coinwire("--data-dir", data, "data", "import", "--exchange", "kraken", "--json", five)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["exchange"] == "kraken"
    assert len(HistoryStore(Path(data) / "history").load("kraken", "BTC/USDT", "5m")) == 65_741


def test_import_errors_are_clear(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    bad = tmp_path / "BTC_USDT-5m.json"
    bad.write_text(json.dumps(json.loads(shared_data("binance-spot-1h", "BTC_USDT-1h.json").read_text())[:10]))
    result = coinwire("--data-dir", data, "data", "import", "--exchange", "binance", str(bad))
    assert result.returncode == 2
    assert "timeframe_mismatch" in result.stderr and "1h apart" in result.stderr
    empty = coinwire("--data-dir", data, "data", "list")
    assert empty.returncode == 0 and "no candle history" in empty.stdout
