"""The store journal's helper process: applies what the server appends to the journal and reports how far it got.

Started by `coinwire.store.journal.Journal` as `python -m coinwire.store.journal_helper DATABASE LINGER`;
its standard input carries wake-ups (`w`: appended while the helper waited; `h`: a read waits
for the helper, hurry; end of input: the server is gone or closing), its standard output the
position applied after each round and how many records it has set aside (refused by the database).
"""

from __future__ import annotations

import os
import select
import sys
import time

from coinwire.store.codec import sqlite_write_statements
from coinwire.store.journal import PROGRESS, JournalApplier
from coinwire.store.sqlite_writer import SqliteWriter

HURRY = b"h"


def pile_up(seconds: float) -> bool:
    """Let appends pile up for `seconds`, less if a read hurries us; False at end of input."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([0], [], [], left)[0]:
            return True
        data = os.read(0, 65536)
        if not data:
            return False
        if HURRY in data:
            return True
    return True


def main(database: str, linger: float) -> int:
    """The helper: on every wake-up apply what was appended and report how far; at end of input, finish and exit."""
    progress = os.dup(1)  # the progress pipe is this process's alone: anything printed goes to stderr
    os.dup2(2, 1)
    writer = SqliteWriter(database, sqlite_write_statements())
    applier = JournalApplier(writer)
    try:
        while True:
            more = os.read(0, 65536)
            if more and HURRY not in more:
                more = b"w" if pile_up(linger) else b""
            position = applier.apply_available()
            if progress >= 0:
                try:
                    os.write(progress, PROGRESS.pack(*position, applier.refused))
                except BrokenPipeError:  # the server is gone: finish what it appended all the same
                    os.close(progress)
                    progress = -1
            if not more:
                return 0
    finally:
        applier.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
