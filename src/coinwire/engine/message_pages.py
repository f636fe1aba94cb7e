"""A run's stored hub (`messages.jsonl`) read a page at a time, for answers that hold every message of a run.

Why: `RunStore.messages` reads the whole file for one page, which suits the native route's pages but
not the seed's strategy API, whose messages route answers all the messages of a run (a month of
5-minute candles is over 8,000): paging through `RunStore.messages` would read the file once per page,
and reading it all at once would hold every record and its rendering in memory together. Here the
file is read in blocks and handed on a page of decoded records at a time, so an answer can be streamed.

What is read is a snapshot: the file is opened once and read to the last complete line it had when it
was opened. Lines a running run's worker appends afterwards are not in it, and a run that ends and
replaces the file (temp + rename) leaves the open file as it was, so `total` and the pages agree.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from coinwire.engine.hub import matches

__all__ = ["PAGE", "MessagePages"]

PAGE = 1000  # records a page
_BLOCK = 1 << 20  # bytes read at a time


class _Head(msgspec.Struct):
    """The fields a filter looks at: the rest of a record (its params) is skipped, not decoded."""

    direction: str
    method: str


class MessagePages:
    """The records of a run's `messages.jsonl` from `offset`, at most `limit` (None: all), in order, `page_size` at a time.

    `method` matches exactly or as a prefix ending in '.' (`venue.`) and `direction` is `in` or `out`, as the hub's
    own query (`engine/hub.py`); `total` counts every matching record, as there. The file stays open until the pages
    have been read (or this object is dropped), so iterate it once.
    """

    def __init__(self, path: Path, offset: int = 0, limit: int | None = None, method: str | None = None,
                 direction: str | None = None, page_size: int = PAGE) -> None:
        if offset < 0 or (limit is not None and limit < 0) or page_size < 1:
            raise ValueError("offset and limit must not be negative, and a page holds at least one record")
        self._pages = _read(path, offset, limit, method, direction, page_size)
        self.total: int = next(self._pages)  # the file is counted before any page is read

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        return self._pages

    def close(self) -> None:
        """Close the file now (pages not read yet are not read)."""
        self._pages.close()


def _read(path: Path, offset: int, limit: int | None, method: str | None, direction: str | None,
          page_size: int) -> Generator[Any, None, None]:
    """Yield the count of matching records, then their pages: one generator, so that closing it (or dropping it) closes
    the file whether or not its pages were read."""
    try:
        file = path.open("rb")
    except FileNotFoundError:  # a run that has recorded nothing yet
        yield 0
        return
    with file:
        head = msgspec.json.Decoder(_Head)

        def wanted(line: bytes) -> bool:
            return (method is None and direction is None) or matches(head.decode(line), method, direction)

        end = _complete_end(file)
        yield sum(1 for line in _lines(file, end) if wanted(line))
        decode = msgspec.json.Decoder(dict[str, Any]).decode
        left = limit
        skip = offset
        page: list[dict[str, Any]] = []
        for line in _lines(file, end):
            if left is not None and left <= 0:
                break
            if not wanted(line):
                continue
            if skip:
                skip -= 1
                continue
            page.append(decode(line))
            if left is not None:
                left -= 1
            if len(page) == page_size:
                yield page
                page = []
        if page:
            yield page


def _complete_end(file: IO[bytes]) -> int:
    """Where the last complete line of the open file ends (a worker may be writing the next one right now)."""
    size = os.fstat(file.fileno()).st_size
    position = size
    while position > 0:
        start = max(0, position - _BLOCK)
        file.seek(start)
        block = file.read(position - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def _lines(file: IO[bytes], end: int) -> Iterator[bytes]:
    """The non-empty lines of the file's first `end` bytes (which end with a newline), read a block at a time."""
    file.seek(0)
    rest = b""
    position = 0
    while position < end:
        block = file.read(min(_BLOCK, end - position))
        if not block:
            break
        position += len(block)
        parts = (rest + block).split(b"\n")
        rest = parts.pop()
        yield from (line for line in parts if line)
    if rest:
        yield rest
