"""The SQLite store's journal: a change set is durable once appended to a file; a helper process applies it to the database.

Why: committing to SQLite on the event loop cost about a third of the server's time per
order (binding every row, the B-tree and index work, writing WAL pages), all on the one
thread that also serves the API, while the machine's other core idled. Appending the
encoded rows to a file is one `write(2)` per group commit, and the page cache keeps it
through a SIGKILL of the server, so the order can be acknowledged as soon as it returns.
The database is then brought up to date off the loop, by `python -m coinwire.store.journal_helper`,
and it is what every read sees: a read waits (`Journal.settled`) until everything appended
before it is applied, so a caller always reads its own writes.

On disk, `<database>.journal/` holds files `<generation>.cwj`: the magic bytes, then records
`[payload length u32][crc32 u32][msgpack payload]`. A payload is a change set's rows by
table (and a bulk write's rows under its SQL text: `SqliteWriter.bulk_rows`), or, last in a
full file, the number of the generation that follows it. The position
up to which records are applied, `generation:offset`, is the `meta` row `journal`, written
in the same transaction as the rows, so each record is applied exactly once whoever applies
it: the helper, or the next start after a crash (`recover`). A record cut short by a crash
was never acknowledged; recovery drops it.

Uniqueness and foreign keys are still the database's, but are checked when a record is
applied, after the order was answered: here the gateway's memory is the source of truth and
has checked them already (client_oid in its index, ids from its counters). Records are applied
many to a transaction; when the database refuses one (a constraint, a value), the records of
that transaction are applied again one by one, so one record never keeps anyone else's out of
the database: the refused one is set aside whole under `refused/` and logged, never half
applied. A write lock another connection holds is waited out (`LOCK_PATIENCE_SECONDS`); any other
database error (disk full, a lock held longer than that) stops the helper; reads then fail with
`store_unavailable` and the server reports not ready, and the journal keeps every record for the
next start to retry (which refuses to start with `store_journal_refused`).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Protocol

import msgspec
import structlog

from coinwire.core.errors import CoinwireError, NotReady
from coinwire.private_files import PRIVATE_FILE, private_dir
from coinwire.store.sqlite_writer import is_busy

__all__ = ["HELPER_NICENESS", "Journal", "JournalApplier", "JournalRefused", "journal_dir"]

log = structlog.get_logger("coinwire.store")

MAGIC = b"CWJ1"
_HEAD = struct.Struct("<II")  # payload length, crc32 of the payload
PROGRESS = struct.Struct("<QQQ")  # generation, offset: what the helper has applied; records it has set aside so far
_SUFFIX = ".cwj"
_META_KEY = "journal"
_META_SQL = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
ROTATE_BYTES = 64 << 20  # a full file is followed by a new generation and deleted once applied
# How long the helper lets appends pile up before it applies them: one transaction for several
# group commits costs it far less than one each (COMMIT writes every page it touched; 10 ms
# against 2 ms: about half the helper's CPU an order). Only a read waits for it, and a read
# that must wait says so (`Journal.settled`), which ends the wait at once.
LINGER_SECONDS = 0.01
_RECORDS_PER_TRANSACTION = 4096  # catching up after a long stop: bounded transactions
# How much less CPU priority than the server the helper takes. Its work can wait (what it applies
# is durable already, and a read that needs it hurries it); the server's event loop cannot. On a
# 2-core machine under an order storm, the helper's 3-4 ms bursts of SQLite work at equal
# priority held off whatever woke on its core for as long (a client's next request, with the
# server idle meanwhile). At +10 a task woken on its core takes it from the helper at once; the
# helper still gets about a tenth of a fully contended core, and all of an idle one.
HELPER_NICENESS = 10
# How long the helper waits for the database's write lock before it stops (then reads fail with
# `store_unavailable`). The lock's other holder is the server's own connection (a ledger checkpoint,
# a user's row), whose transactions are short but, on a loaded machine, can outlast SQLite's busy
# timeout: waiting is what keeps the acknowledged records flowing in, so only a lock held this long stops it.
LOCK_PATIENCE_SECONDS = 120.0
MAX_RESTARTS = 3  # a helper killed more often than this leaves the store unavailable until the server restarts

Position = tuple[int, int]  # (generation, offset in that generation's file)
Rows = dict[str, list[Any]]


def journal_dir(database: str) -> Path:
    return Path(f"{database}.journal")


def _file(directory: Path, generation: int) -> Path:
    return directory / f"{generation:010d}{_SUFFIX}"


def _generations(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())


def _stopped(code: int) -> str:
    return f"the store journal's helper process stopped (exit code {code}); see the server log"


def frame(payload: bytes) -> bytes:
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def complete_records(data: bytes, start: int) -> tuple[list[tuple[int, bytes]], int]:
    """The whole, intact records of `data` from `start`: (end offset, payload) each, and where they stop."""
    records: list[tuple[int, bytes]] = []
    pos, end = start, len(data)
    while end - pos >= _HEAD.size:
        length, crc = _HEAD.unpack_from(data, pos)
        stop = pos + _HEAD.size + length
        if stop > end:
            break
        payload = data[pos + _HEAD.size : stop]
        if zlib.crc32(payload) != crc:
            break
        records.append((stop, payload))
        pos = stop
    return records, pos


class JournalRefused(CoinwireError):
    """The database refused a journal record (a bug: the gateway checks what the database would refuse)."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__("store_journal_refused", message)


class RowWriter(Protocol):
    """What the applier needs of `store.sqlite_writer.SqliteWriter`: its database, connection and statements."""

    path: str

    def connect(self) -> Any: ...

    def batches(self, by_table: Rows) -> list[Any]: ...

    def transaction(self, con: Any, batches: list[Any]) -> None: ...


class JournalApplier:
    """Applies journal records to the database over its own connection; used by the helper and by recovery."""

    def __init__(self, writer: RowWriter, busy_timeout: float = 10.0, lock_patience: float = LOCK_PATIENCE_SECONDS) -> None:
        """`busy_timeout`: one wait for the write lock (SQLite's); `lock_patience`: all the waits of one transaction's BEGIN."""
        self.directory = journal_dir(writer.path)
        self._con = writer.connect()
        self._con.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")  # the server's own writes hold the lock briefly
        self.lock_patience = lock_patience
        self._con.execute("PRAGMA wal_autocheckpoint=1000")  # checkpoints here, off the server's loop
        self._batches, self._transaction = writer.batches, writer.transaction
        self._decode = msgspec.msgpack.Decoder().decode
        self.position: Position = self._stored_position()
        self.refused = 0  # records set aside (refused by the database) by this applier
        self._file: Any = None  # the current generation's file, open for reading
        self._file_generation = -1
        self._pending = b""  # what was read of it past the applied position: the start of the next records

    def _stored_position(self) -> Position:
        row = self._con.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)).fetchone()
        if row is None:
            generations = _generations(self.directory)
            return (generations[0], len(MAGIC)) if generations else (0, len(MAGIC))
        generation, offset = row[0].split(":")
        return int(generation), int(offset)

    def close(self) -> None:
        self._close_file()
        self._con.close()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._file_generation, self._pending = None, -1, b""

    def _read(self) -> bytes | None:
        """What the current generation holds past the applied position; None when its file is gone."""
        generation, offset = self.position
        if self._file_generation != generation:
            self._close_file()
            try:
                self._file = open(_file(self.directory, generation), "rb")  # noqa: SIM115 - kept open across rounds
            except FileNotFoundError:
                return None
            self._file.seek(offset)
            self._file_generation = generation
        self._pending += self._file.read()
        return self._pending

    def apply_available(self) -> Position:
        """Apply every whole record written so far, in bounded transactions; returns the position reached."""
        while True:
            generation, offset = self.position
            data = self._read()
            if data is None:
                later = [g for g in _generations(self.directory) if g > generation]
                if not later:
                    return self.position
                self.position = (later[0], len(MAGIC))  # written by a server that never appended to it
                continue
            records, _ = complete_records(data, 0)
            if not records:
                return self.position
            rows: Rows = {}
            following: int | None = None
            used = 0
            for stop, payload in records[:_RECORDS_PER_TRANSACTION]:
                body = self._decode(payload)
                used = stop
                if isinstance(body, int):  # the file is full: the next record is in generation `body`
                    following = body
                    break
                for table, table_rows in body.items():
                    rows.setdefault(table, []).extend(table_rows)
            reached = (following, len(MAGIC)) if following is not None else (generation, offset + used)
            try:
                try:
                    self._apply(rows, reached)
                except _REFUSALS:  # one record's rows the database will not hold: apply the others one by one
                    self._apply_one_by_one([r for r in records[:_RECORDS_PER_TRANSACTION] if r[0] <= used], reached)
            except sqlite3.DatabaseError as exc:
                raise JournalRefused(
                    f"the database refuses the journal's records after {generation}:{offset} ({exc}); they stay in {self.directory}"
                ) from exc
            self.position = reached
            self._pending = data[used:]
            if following is not None:
                self._close_file()
                _file(self.directory, generation).unlink(missing_ok=True)


    def _apply(self, rows: Rows, reached: Position) -> None:
        """One transaction: the rows, and the position they bring the database to."""
        batches = self._batches(rows) + [((_META_SQL, None), [(_META_KEY, f"{reached[0]}:{reached[1]}")])]
        self._begin()
        self._transaction(self._con, batches)

    def _begin(self) -> None:
        """Take the write lock, waiting out another holder for up to `lock_patience` (a busy database refuses no record).

        Why more than one busy timeout: on a loaded machine the server's own short transactions
        (a ledger checkpoint) can hold the lock longer than one wait; stopping then would leave
        every later acknowledged record out of the database until the next start.
        """
        deadline = time.monotonic() + self.lock_patience
        while True:
            try:
                self._con.execute("BEGIN IMMEDIATE")  # waits up to the busy timeout itself
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
                log.warning("the store journal's helper waits for the database's write lock", error=str(exc))

    def _apply_one_by_one(self, records: list[tuple[int, bytes]], reached: Position) -> None:
        """After a merged transaction was refused: each record in its own; a refused one is set aside, the rest applied.

        Only runs after a refusal, never on the way every record takes. A record set aside is
        kept whole under `refused/` (named by its position) and logged; it is never retried.
        """
        generation, offset = self.position
        for stop, payload in records:
            body = self._decode(payload)
            at = reached if isinstance(body, int) else (generation, offset + stop)
            if isinstance(body, int):
                self._apply({}, at)
                continue
            try:
                self._apply(body, at)
            except _REFUSALS as exc:
                start = offset + stop - len(payload) - _HEAD.size
                kept = self.directory / "refused" / f"{generation:010d}-{start:012d}{_SUFFIX}"
                kept.parent.mkdir(exist_ok=True)
                kept.write_bytes(MAGIC + frame(payload))
                self.refused += 1
                log.error("a store journal record the database refuses was set aside; every other record is applied",
                          record=str(kept), error=str(exc))
                self._apply({}, at)


# a record's own rows refused (a constraint, a value): set that record aside; anything else stops the helper
_REFUSALS = (sqlite3.IntegrityError, sqlite3.DataError)


class Journal:
    """The server's side: append change sets, start and watch the helper, let reads wait for it."""

    def __init__(self, database: str, rotate_bytes: int = ROTATE_BYTES, linger: float = LINGER_SECONDS) -> None:
        self.database = database
        self.linger = linger
        self.directory = journal_dir(database)
        self.rotate_bytes = rotate_bytes
        self._encode = msgspec.msgpack.Encoder().encode
        self._fd = -1
        self._lock_fd = -1
        self._helper: subprocess.Popen[bytes] | None = None
        self._wake_fd = -1
        self._progress_fd = -1
        self._progress_buffer = b""
        self._reading = False  # the loop watches the progress pipe
        self.written: Position = (0, 0)
        self.applied: Position = (0, 0)
        self.failure: str | None = None
        self.restarts = 0  # helpers started again after being killed
        self.refused = 0  # records the database refused, set aside by a helper (acknowledged, never applied)
        self._helper_refused = 0  # the current helper's own count
        self._helper_waits = True  # it waits for a wake-up: it has applied all it was last told of
        self._waiters: list[tuple[Position, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def recover(self, writer: RowWriter, patience: float = 30.0) -> Position:
        """Take the journal over (waiting for a previous server's helper to finish), then apply what it holds.

        Runs before anything reads the database, so start-up state includes every
        acknowledged change of the last run.
        """
        private_dir(self.directory)  # change sets (password hashes and sessions among them) wait here: owner only
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self._lock_fd)
                    self._lock_fd = -1
                    raise NotReady("store_busy", f"another coinwire server is using {self.database} (its journal is locked)") from None
                time.sleep(0.05)
        applier = JournalApplier(writer)
        try:
            reached = applier.apply_available()
        finally:
            self.refused += applier.refused
            applier.close()
        self._remove_files()  # all applied: the files are history
        return reached

    def _remove_files(self) -> None:
        for generation in _generations(self.directory):
            _file(self.directory, generation).unlink()

    async def start(self, after: Position) -> None:
        """Open a new generation after `after` (what recovery reached) and start the helper on it."""
        self._loop = asyncio.get_running_loop()
        generation = after[0] + 1
        self._open(generation)
        self.written = self.applied = (generation, len(MAGIC))
        self._spawn()

    def _spawn(self) -> None:
        assert self._loop is not None
        self._helper = subprocess.Popen(
            [sys.executable, "-m", "coinwire.store.journal_helper", self.database, str(self.linger)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(self._lock_fd,),
            # a Ctrl-C at the terminal is the server's to handle (it closes our stdin): a process group of
            # its own; in the server's session still, so that its lower priority counts against the server's
            process_group=0,
        )
        try:
            os.setpriority(os.PRIO_PROCESS, self._helper.pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + HELPER_NICENESS))
        except OSError:  # it exited already; the next append or read finds out
            pass
        assert self._helper.stdin is not None and self._helper.stdout is not None
        self._wake_fd, self._progress_fd = self._helper.stdin.fileno(), self._helper.stdout.fileno()
        os.set_blocking(self._wake_fd, False)
        os.set_blocking(self._progress_fd, False)
        self._loop.add_reader(self._progress_fd, self._on_progress)
        self._reading = True
        self._helper_waits = True
        self._helper_refused = 0

    def _open(self, generation: int) -> None:
        self._fd = self._create(generation)

    def _create(self, generation: int) -> int:
        """A generation's file, empty but for the magic bytes (a failed earlier attempt's is emptied)."""
        path = _file(self.directory, generation)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, PRIVATE_FILE)
        try:
            if os.write(fd, MAGIC) != len(MAGIC):
                raise OSError("short write to the store journal")
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return fd

    def append(self, rows: Rows) -> None:
        """Make a change set durable (it survives a SIGKILL of this process once this returns)."""
        if self._fd < 0:
            raise RuntimeError("the journal is not started")
        record = frame(self._encode(rows))
        generation, offset = self.written
        self._write(record, offset)
        self.written = (generation, offset + len(record))
        if self.written[1] >= self.rotate_bytes:
            try:
                self._rotate()
            except OSError:  # the record is durable all the same; the file grows until a rotation succeeds
                log.exception("store journal rotation failed; retried on the next append", generation=generation)
        if self._helper_waits:  # otherwise it is at work, and its next report brings a wake-up if it falls short
            self._helper_waits = False
            self._wake()

    def _write(self, record: bytes, offset: int) -> None:
        """All of it or none of it: a failed write is cut off again, so later records stay readable."""
        try:
            if os.write(self._fd, record) != len(record):
                raise OSError("short write to the store journal")
        except OSError:
            os.ftruncate(self._fd, offset)
            raise

    def _rotate(self) -> None:
        """Start the next generation's file, then point the full one at it; either both happen or neither."""
        generation, offset = self.written
        following = generation + 1
        fd = self._create(following)
        try:
            self._write(frame(self._encode(following)), offset)  # the helper moves on only after this
        except OSError:
            os.close(fd)
            _file(self.directory, following).unlink(missing_ok=True)
            raise
        os.close(self._fd)
        self._fd = fd
        self.written = (following, len(MAGIC))

    def _wake(self, signal: bytes = b"w") -> None:
        try:
            os.write(self._wake_fd, signal)
        except OSError:  # the pipe is full (the helper will look anyway) or the helper is gone (_on_progress reports it)
            pass

    def _on_progress(self) -> None:
        try:
            data = os.read(self._progress_fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self._helper_gone()
            return
        data = self._progress_buffer + data
        whole = len(data) - len(data) % PROGRESS.size
        self._progress_buffer = data[whole:]
        if whole:
            generation, offset, refused = PROGRESS.unpack_from(data, whole - PROGRESS.size)
            self.applied = (generation, offset)
            if refused > self._helper_refused:  # counted per helper: a replaced one starts again from 0
                log.error("the store journal's helper set records the database refuses aside", records=refused - self._helper_refused)
                self.refused += refused - self._helper_refused
            self._helper_refused = refused
            if self.applied >= self.written:
                self._helper_waits = True
            else:  # appended since it last looked: it may be about to wait, so it is told
                self._wake()
            if self._waiters:
                self._settle_waiters()

    def _helper_gone(self) -> None:
        assert self._loop is not None and self._helper is not None
        self._loop.remove_reader(self._progress_fd)
        self._reading = False
        helper = self._helper
        code = helper.wait()
        for pipe in (helper.stdin, helper.stdout):
            if pipe is not None:
                pipe.close()
        if code < 0 and self.failure is None and self.restarts < MAX_RESTARTS:
            # killed (the OOM killer, an operator): a new helper goes on from the position in meta.journal
            self.restarts += 1
            log.error("store journal helper killed; starting another", signal=-code, restarts=self.restarts)
            self._spawn()
            if self.applied < self.written:
                self._helper_waits = False
                self._wake()
            return
        if self.failure is None:
            self.failure = _stopped(code)
        self._settle_waiters()

    def _settle_waiters(self) -> None:
        """Reads waiting for what is applied now go on; after a failure the rest hear of it; others keep waiting."""
        waiting = []
        for target, future in self._waiters:
            if future.done():
                continue
            if target <= self.applied:
                future.set_result(None)
            elif self.failure is not None:
                future.set_exception(self._unavailable())
            else:
                waiting.append((target, future))
        self._waiters = waiting

    def _unavailable(self) -> NotReady:
        return NotReady("store_unavailable", f"the store is not up to date: {self.failure}")

    async def settled(self) -> None:
        """Wait until everything appended before this call is in the database."""
        if self.failure is not None:
            raise self._unavailable()
        target = self.written
        if target <= self.applied or self._loop is None:
            return
        self._wake(b"h")  # the helper lets appends pile up; a reader waiting tells it to stop
        self._helper_waits = False
        future = self._loop.create_future()
        self._waiters.append((target, future))
        await future

    @property
    def behind_bytes(self) -> int:
        """How much appended the helper has yet to apply (a file's worth per generation in between)."""
        (written_gen, written_at), (applied_gen, applied_at) = self.written, self.applied
        if written_gen == applied_gen:
            return max(0, written_at - applied_at)
        return written_at + max(0, self.rotate_bytes - applied_at) + (written_gen - applied_gen - 1) * self.rotate_bytes

    @property
    def helper_pid(self) -> int | None:
        return self._helper.pid if self._helper is not None else None

    @property
    def healthy(self) -> bool:
        return self.failure is None and self._helper is not None and self._helper.poll() is None

    async def close(self) -> None:
        """Let the helper apply everything, stop it, and remove the journal's files."""
        if self._helper is not None:
            helper, self._helper = self._helper, None
            assert self._loop is not None and helper.stdin is not None
            if self._reading:
                self._loop.remove_reader(self._progress_fd)
                self._reading = False
            helper.stdin.close()  # end of input: the helper applies the rest and exits
            code = await self._loop.run_in_executor(None, helper.wait)
            assert helper.stdout is not None
            helper.stdout.close()
            if code == 0 and self.failure is None:
                self._remove_files()
                self.applied = self.written  # what it applied on its way out: everything
            elif self.failure is None:
                self.failure = _stopped(code)
            self._settle_waiters()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
