"""The store journal's helper process: applies what the server appends to the journal and reports how far it got.

Started by `coinwire.store.journal.Journal` as `python -m coinwire.store.journal_helper DATABASE`;
its standard input carries wake-ups (one byte per append; end of input means the server is
gone or closing), its standard output the position applied after each round.
"""

from __future__ import annotations

import os
import sys
import time

from coinwire.store.journal import PROGRESS, JournalApplier

COALESCE_SECONDS = 0.002


def main(database: str) -> int:
    """The helper: on every wake-up apply what was appended and report how far; at end of input, finish and exit."""
    from coinwire.store.sqlite_writer import SqliteWriter
    from coinwire.store.store import sqlite_write_statements

    progress = os.dup(1)  # the progress pipe is this process's alone: anything printed goes to stderr
    os.dup2(2, 1)
    writer = SqliteWriter(database, sqlite_write_statements())
    applier = JournalApplier(database, writer.connect, writer.batches, writer.transaction)
    try:
        while True:
            more = os.read(0, 65536)
            if more:
                # let appends pile up: one transaction for several group commits costs far less
                # than one each (COMMIT writes every page it touched), and readers wait only this long
                time.sleep(COALESCE_SECONDS)
            position = applier.apply_available()
            if progress >= 0:
                try:
                    os.write(progress, PROGRESS.pack(*position))
                except BrokenPipeError:  # the server is gone: finish what it appended all the same
                    os.close(progress)
                    progress = -1
            if not more:
                return 0
    finally:
        applier.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
