"""A run's stored hub read a page at a time (engine/message_pages.py): the same records and totals as the hub's own query,
a snapshot of a file a worker is still appending to, and nothing for a run that recorded nothing yet."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from coinwire.engine import message_pages
from coinwire.engine.hub import MessageHub
from coinwire.engine.message_pages import MessagePages

METHODS = ("market.candle", "venue.make_order", "venue.fill", "ui.input", "log.info")


def stored_hub(path: Path, count: int) -> MessageHub:
    hub = MessageHub()
    for i in range(count):
        hub.record(i, "out" if i % 3 == 0 else "in", METHODS[i % len(METHODS)], {"i": i, "text": "x" * (i % 50)})
    path.write_bytes(b"".join(msgspec.json.encode(m.to_dict()) + b"\n" for m in hub))
    return hub


@pytest.mark.parametrize(("offset", "limit", "method", "direction"), [
    (0, None, None, None), (0, 7, None, None), (2_450, None, None, None), (5_000, None, None, None),
    (3, None, "venue.", None), (0, 10, "market.candle", "in"), (11, 999, None, "out"), (0, None, "nothing", None),
])
def test_pages_hold_what_the_hubs_query_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offset: int,
                                                limit: int | None, method: str | None, direction: str | None) -> None:
    monkeypatch.setattr(message_pages, "_BLOCK", 4096)  # lines cross block boundaries
    hub = stored_hub(tmp_path / "messages.jsonl", 2_500)
    pages = MessagePages(tmp_path / "messages.jsonl", offset, limit, method, direction, page_size=100)
    total, expected = hub.query(offset, 10**9 if limit is None else limit, method, direction)
    read = list(pages)
    assert pages.total == total
    assert all(0 < len(page) <= 100 for page in read)
    assert [m for page in read for m in page] == [m.to_dict() for m in expected]


def test_a_file_being_appended_to_is_read_to_its_last_complete_line_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "messages.jsonl"
    stored_hub(path, 10)
    with path.open("ab") as file:
        file.write(b'{"seq": 11, "ts": 1')  # the worker is writing the next line
    pages = MessagePages(path)
    with path.open("ab") as file:
        file.write(b'0, "direction": "in", "method": "x", "params": {}}\n')  # finished after the count
    assert pages.total == 10 and [m["seq"] for page in pages for m in page] == list(range(1, 11))


def test_a_run_without_messages_has_none(tmp_path: Path) -> None:
    pages = MessagePages(tmp_path / "messages.jsonl")
    assert pages.total == 0 and list(pages) == []
