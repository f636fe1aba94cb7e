"""history.binance_capture on the recorded USD-M futures capture: every line's values exact, the `pu` chain, errors."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coinwire.core.errors import InvalidInput
from coinwire.history.binance_capture import BINANCE_USDM_BTCUSDT, BINANCE_USDM_BTCUSDT_PERP, iter_capture
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from tests.conftest import shared_data

PRICE = Decimal("0.1")  # the instrument's units, written independently of the reader
SIZE = Decimal("0.001")


def usdm_file() -> Path:
    return shared_data("binance-usdm-l2", "btcusdt_20240808.gz")


def raw_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with gzip.open(path, "rt") as handle:
        out = []
        for line in handle:
            ts, _, payload = line.partition(" ")
            out.append((int(ts), json.loads(payload)))
        return out


def units(text: str, unit: Decimal) -> int:
    value = Decimal(text) / unit
    assert value == value.to_integral_value()
    return int(value)


def levels(raw: list[list[str]]) -> list[tuple[int, int]]:
    return [(units(p, PRICE), units(q, SIZE)) for p, q in raw]


def expected(recv_ts: int, doc: dict[str, Any]) -> object:
    """The message a line must become, built from the raw JSON with Decimal arithmetic."""
    ex, sym = BINANCE_USDM_BTCUSDT.exchange, BINANCE_USDM_BTCUSDT.symbol
    if "stream" not in doc:
        return BookSnapshot(ex, sym, doc["E"] * 10**6, doc["lastUpdateId"], levels(doc["bids"]), levels(doc["asks"]))
    d = doc["data"]
    kind = doc["stream"].split("@")[1]
    if kind == "depth":
        return BookDelta(ex, sym, d["E"] * 10**6, d["U"], d["u"], levels(d["b"]), levels(d["a"]), d["pu"])
    if kind == "trade":
        side = "sell" if d["m"] else "buy"
        return TradeTick(ex, sym, d["T"] * 10**6, str(d["t"]), units(d["p"], PRICE), units(d["q"], SIZE), side)
    assert kind == "bookTicker"
    return BookTicker(
        ex, sym, d["E"] * 10**6, d["u"],
        units(d["b"], PRICE), units(d["B"], SIZE), units(d["a"], PRICE), units(d["A"], SIZE),
    )  # fmt: skip


@pytest.fixture(scope="module")
def recorded() -> list[tuple[int, dict[str, Any]]]:
    return raw_lines(usdm_file())


def test_every_line_exact(recorded: list[tuple[int, dict[str, Any]]]) -> None:
    parsed = list(iter_capture(usdm_file(), BINANCE_USDM_BTCUSDT))
    assert len(parsed) == len(recorded) == 93_954
    for (recv, message), (raw_recv, doc) in zip(parsed, recorded, strict=True):
        assert recv == raw_recv
        assert message == expected(raw_recv, doc)
    kinds = Counter(type(m).__name__ for _, m in parsed)
    assert kinds == {"BookTicker": 66_089, "TradeTick": 21_313, "BookDelta": 6_551, "BookSnapshot": 1}


def test_capture_streams_and_no_mark_price(recorded: list[tuple[int, dict[str, Any]]]) -> None:
    """The capture carries depth@0ms, trade and bookTicker only: no markPrice stream, so a mark comes from the rule."""
    streams = {doc["stream"] for _, doc in recorded if "stream" in doc}
    assert streams == {"btcusdt@depth@0ms", "btcusdt@trade", "btcusdt@bookTicker"}


def test_pu_chain_after_the_snapshot(recorded: list[tuple[int, dict[str, Any]]]) -> None:
    """Binance's futures book sync: drop diffs with u < lastUpdateId, the first kept has U <= id <= u,
    then each diff's `pu` is the previous diff's `u`, with no break in the whole capture."""
    messages = [m for _, m in iter_capture(usdm_file(), BINANCE_USDM_BTCUSDT)]
    snapshot_at = next(i for i, m in enumerate(messages) if isinstance(m, BookSnapshot))
    snapshot = messages[snapshot_at]
    assert isinstance(snapshot, BookSnapshot)
    diffs = [m for m in messages if isinstance(m, BookDelta)]
    kept = [d for d in diffs if d.last_update_id >= snapshot.last_update_id]
    assert len(diffs) - len(kept) == 4  # buffered before the snapshot and older than it
    first = kept[0]
    assert first.first_update_id <= snapshot.last_update_id <= first.last_update_id
    breaks = [(a.last_update_id, b.prev_update_id) for a, b in pairwise(kept) if b.prev_update_id != a.last_update_id]
    assert breaks == []
    assert all(d.prev_update_id > 0 for d in diffs)


def test_the_capture_as_the_perpetual() -> None:
    """Replayed as `BTC/USDT:USDT` (kind perpetual, settled in USDT), every message is the same but for its symbol."""
    inst = BINANCE_USDM_BTCUSDT_PERP
    assert inst.is_perpetual and inst.settle == "USDT" and inst.funding_interval_s == 28_800
    spot_like = iter_capture(usdm_file(), BINANCE_USDM_BTCUSDT)
    count = 0
    for (recv, perp), (recv2, plain) in zip(iter_capture(usdm_file(), inst), spot_like, strict=True):
        assert recv == recv2 and perp.symbol == "BTC/USDT:USDT"
        assert msgspec.structs.replace(perp, symbol=plain.symbol) == plain
        count += 1
    assert count == 93_954


def write_capture(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def test_too_precise_price_is_refused_not_rounded(tmp_path: Path) -> None:
    trade = {"e": "trade", "E": 1, "T": 1, "s": "BTCUSDT", "t": 7, "p": "61800.35", "q": "0.006", "m": False}
    path = write_capture(tmp_path / "bad.gz", ["1 " + json.dumps({"stream": "btcusdt@trade", "data": trade})])
    with pytest.raises(InvalidInput) as caught:
        list(iter_capture(path, BINANCE_USDM_BTCUSDT))
    assert caught.value.code == "too_precise" and "bad.gz:1" in caught.value.message


def test_other_market_and_broken_line_are_refused(tmp_path: Path) -> None:
    tick = {"e": "bookTicker", "u": 1, "s": "ETHUSDT", "b": "1.0", "B": "1", "a": "1.1", "A": "1", "E": 1}
    other = write_capture(tmp_path / "eth.gz", ["1 " + json.dumps({"stream": "ethusdt@bookTicker", "data": tick})])
    with pytest.raises(InvalidInput) as caught:
        list(iter_capture(other, BINANCE_USDM_BTCUSDT))
    assert caught.value.code == "symbol_mismatch"
    broken = write_capture(tmp_path / "cut.gz", ['1 {"stream":"btcusdt@trade","data":{"e":"tr'])
    with pytest.raises(InvalidInput) as caught:
        list(iter_capture(broken, BINANCE_USDM_BTCUSDT))
    assert caught.value.code == "invalid_capture" and "cut.gz:1" in caught.value.message
