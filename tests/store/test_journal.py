"""The SQLite store's journal: acknowledged change sets survive a SIGKILL of the server while its
helper applies nothing, torn tails are dropped, a killed helper is replaced, a waiting read hurries
the helper, full files rotate, a refused record is set aside while every other is applied, one server per journal."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinwire.core.errors import NotReady
from coinwire.store import ChangeSet, Store
from coinwire.store.codec import encode, sqlite_write_statements
from coinwire.store.journal import HELPER_NICENESS, MAGIC, Journal, JournalApplier, JournalRefused, complete_records, frame, journal_dir
from coinwire.store.sqlite_writer import SqliteWriter
from tests.store.test_store_contract import BTC_USDT, count, fill, ledger, order

REPO = Path(__file__).resolve().parents[2]


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def _files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in journal_dir(str(tmp_path / "store.db")).glob("*.cwj"))


@given(st.lists(st.binary(max_size=40), max_size=8), st.data())
def test_only_whole_intact_records_are_read(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(p) for p in payloads)
    cut = data.draw(st.integers(0, len(stream)))
    records, stop = complete_records(stream[:cut], 0)
    whole, end = [], 0
    for p in payloads:
        if end + len(frame(p)) > cut:
            break
        end += len(frame(p))
        whole.append(p)
    assert [payload for _, payload in records] == whole and stop == end


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8), st.data())
def test_nothing_is_read_past_a_damaged_record(payloads: list[bytes], data: st.DataObject) -> None:
    frames = [frame(p) for p in payloads]
    bad = data.draw(st.integers(0, len(frames) - 1))
    damaged = bytearray(frames[bad])
    damaged[8 + data.draw(st.integers(0, len(payloads[bad]) - 1))] ^= 0x01
    stream = b"".join(frames[:bad]) + bytes(damaged) + b"".join(frames[bad + 1 :])
    records, stop = complete_records(stream, 0)
    assert [payload for _, payload in records] == payloads[:bad] and stop == sum(map(len, frames[:bad]))


async def test_changes_the_helper_never_applied_survive_a_sigkill_of_the_server(tmp_path: Path) -> None:
    url = _url(tmp_path)
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from sqlalchemy import insert
        from coinwire.store import ChangeSet, Store
        from coinwire.store.tables import audit
        from tests.store.test_store_contract import BTC_USDT, ledger, order

        async def main():
            store = Store({url!r}, journal=True)
            await store.start()
            await store.apply(ledger())
            await store.settled()
            helper = store.journal.helper_pid
            os.kill(helper, signal.SIGSTOP)  # applies nothing from here on
            print(helper, flush=True)
            for i in range(1, 51):
                await store.apply(ChangeSet().add_order(order(i), BTC_USDT))
            rows = [dict(ts=i, user_id=1, username="ann", action="rpc make_order", target=f"client_oid={{i}}",
                         outcome="ok", client_ip=None) for i in range(1, 8)]
            await store.write_many(insert(audit), rows)  # a bulk write takes the journal too
            print("acknowledged", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
    """)
    errors = tmp_path / "stderr.txt"  # a file, not a pipe: the stopped helper keeps its copy open
    with errors.open("w") as stderr:
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=60)
    words = done.stdout.split()
    if words:
        os.kill(int(words[0]), signal.SIGKILL)  # the stopped helper goes down with its server
    assert done.returncode == -9 and words[1:] == ["acknowledged"], errors.read_text()
    (latest,) = _files(tmp_path)
    with open(journal_dir(str(tmp_path / "store.db")) / latest, "ab") as f:  # a record the crash cut short
        f.write(frame(b"\x81\xa6orders\x90")[:7])

    async with Store(url, journal=True) as store:
        assert await count(store, "orders") == 50
        assert (await store.get_order(50)) == order(50)
        assert await count(store, "audit") == 7
        assert len(_files(tmp_path)) == 1  # recovered files are gone; this run's generation is open
    assert _files(tmp_path) == []  # a clean close leaves no journal behind


async def test_a_killed_helper_is_replaced_and_the_new_one_goes_on_where_it_stopped(tmp_path: Path) -> None:
    async with Store(_url(tmp_path), journal=True) as store:
        journal = store.journal
        assert journal is not None and journal.helper_pid is not None
        await store.apply(ledger())
        await store.settled()
        first = journal.helper_pid
        os.kill(first, signal.SIGKILL)
        for i in range(1, 21):
            await store.apply(ChangeSet().add_order(order(i), BTC_USDT))
        assert await count(store, "orders") == 20  # settled: a new helper applied them
        assert journal.restarts == 1 and journal.helper_pid not in (None, first)
        assert await store.ping() is True
        assert await count(store, "wallets") == 2  # applied once: no duplicate-key refusal stopped it


async def test_the_helper_stays_out_of_the_terminals_ctrl_c_and_yields_the_cpu_to_the_server(tmp_path: Path) -> None:
    async with Store(_url(tmp_path), journal=True) as store:
        journal = store.journal
        assert journal is not None and journal.helper_pid is not None
        helper = journal.helper_pid
        assert os.getpgid(helper) == helper != os.getpgid(0)  # its own process group: a Ctrl-C is the server's
        assert os.getsid(helper) == os.getsid(0)  # the server's session, so its niceness weighs against the server
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, helper) == min(19, ours + HELPER_NICENESS)


async def test_full_files_rotate_and_every_record_is_applied_once(tmp_path: Path) -> None:
    url = _url(tmp_path)
    async with Store(url) as store:  # migrated, no journal
        database = str(tmp_path / "store.db")
        journal = Journal(database, rotate_bytes=600)
        sqlite = SqliteWriter(database, sqlite_write_statements())
        reached = journal.recover(sqlite)
        await journal.start(reached)
        try:
            journal.append(encode(ledger()).by_table)
            for i in range(1, 31):
                journal.append(encode(ChangeSet().add_order(order(i), BTC_USDT)).by_table)
            generation = journal.written[0]
            assert generation >= 5  # each file holds a few orders
            await journal.settled()
            assert journal.applied == journal.written and journal.behind_bytes == 0
            assert _files(tmp_path) == [f"{generation:010d}.cwj"]  # full files are deleted once applied
        finally:
            await journal.close()
        assert await count(store, "orders") == 30


async def test_a_waiting_read_cuts_the_helpers_pile_up_short(tmp_path: Path) -> None:
    async with Store(_url(tmp_path)) as store:
        database = str(tmp_path / "store.db")
        sqlite = SqliteWriter(database, sqlite_write_statements())
        journal = Journal(database, linger=3600.0)  # without the read's hurry, an hour before anything is applied
        await journal.start(journal.recover(sqlite))
        try:
            journal.append(encode(ledger()).by_table)
            await asyncio.wait_for(journal.settled(), timeout=30)
            assert await count(store, "wallets") == 2
        finally:
            await journal.close()


def test_how_far_behind_counts_the_files_in_between(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "store.db"), rotate_bytes=1000)
    journal.written, journal.applied = (3, 100), (1, 500)
    assert journal.behind_bytes == 100 + 500 + 1000  # the rest of file 1, all of file 2, file 3 so far
    journal.applied = (3, 40)
    assert journal.behind_bytes == 60


async def test_a_record_the_database_refuses_is_set_aside_and_every_other_is_applied(tmp_path: Path) -> None:
    """One group commit's rows the database refuses keep nobody else's out: the helper applies the others one by one."""
    url = _url(tmp_path)
    store = Store(url, journal=True)
    await store.start()
    await store.apply(ledger())
    await store.apply(ChangeSet().add_order(order(1), BTC_USDT))
    await store.apply(ChangeSet().add_order(order(2), BTC_USDT).add_fill(fill(1, 404), BTC_USDT))  # acknowledged, refused later
    await store.apply(ChangeSet().add_order(order(3), BTC_USDT))
    await store.settled()  # one helper round: all four records in one transaction, which the database refuses
    assert await store.ping() is True
    assert store.journal is not None and store.journal.refused == 1  # reported to the server (a metric)
    assert await count(store, "orders") == 2 and await store.get_order(2) is None  # nothing of the refused one
    assert await count(store, "fills") == 0
    await store.apply(ChangeSet().add_order(order(4), BTC_USDT))  # and the journal goes on
    assert await count(store, "orders") == 3
    await store.close()
    (kept,) = (journal_dir(str(tmp_path / "store.db")) / "refused").iterdir()
    data = kept.read_bytes()
    assert data.startswith(MAGIC)
    (record,), _ = complete_records(data, len(MAGIC))
    assert record[1] == msgspec.msgpack.encode(encode(ChangeSet().add_order(order(2), BTC_USDT).add_fill(fill(1, 404), BTC_USDT)).by_table)
    async with Store(url, journal=True) as again:  # the next start is not held up by it
        assert await count(again, "orders") == 3


async def test_a_database_error_that_is_no_records_fault_stops_reads_and_keeps_the_records(tmp_path: Path) -> None:
    url = _url(tmp_path)
    store = Store(url, journal=True)
    await store.start()
    await store.apply(ledger())
    await store.settled()
    database = str(tmp_path / "store.db")
    con = sqlite3.connect(database)
    con.execute("DROP TABLE fills")  # not one record's fault: nothing may be set aside
    con.close()
    await store.apply(ChangeSet().add_order(order(1), BTC_USDT).add_fill(fill(1, 1), BTC_USDT))
    with pytest.raises(NotReady) as raised:
        await store.settled()
    assert raised.value.code == "store_unavailable"
    assert await store.ping() is False
    await store.close()
    assert not (journal_dir(database) / "refused").exists()
    (kept,) = _files(tmp_path)
    assert (journal_dir(database) / kept).read_bytes().startswith(MAGIC)
    with pytest.raises(JournalRefused, match="refuses the journal's records"):
        await Store(url, journal=True).start()


async def test_the_helper_waits_out_a_write_lock_held_longer_than_its_busy_timeout(tmp_path: Path) -> None:
    """A loaded server's own transaction can hold the lock past one busy timeout: a busy database refuses no record."""
    async with Store(_url(tmp_path)) as store:  # the schema
        await store.apply(ledger())
    database = str(tmp_path / "store.db")
    journal_dir(database).mkdir()
    rows = encode(ChangeSet().add_order(order(1), BTC_USDT)).by_table
    (journal_dir(database) / "0000000001.cwj").write_bytes(MAGIC + frame(msgspec.msgpack.encode(rows)))
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # held for about six of the applier's busy timeouts
    releases = threading.Timer(0.6, holder.execute, ("COMMIT",))
    releases.start()
    applier = JournalApplier(SqliteWriter(database, sqlite_write_statements()), busy_timeout=0.1)
    try:
        assert applier.apply_available() == (1, len(MAGIC) + len(frame(msgspec.msgpack.encode(rows))))
    finally:
        releases.join()
        applier.close()
        holder.close()
    with sqlite3.connect(database) as db:
        assert db.execute("select id from orders").fetchall() == [(1,)]


async def test_one_server_per_journal(tmp_path: Path) -> None:
    url = _url(tmp_path)
    async with Store(url, journal=True) as first:
        await first.apply(ledger())
        database = str(tmp_path / "store.db")
        sqlite = SqliteWriter(database, sqlite_write_statements())
        second = Journal(database)
        with pytest.raises(NotReady) as raised:
            second.recover(sqlite, patience=0.2)
        assert raised.value.code == "store_busy"
        assert await count(first, "wallets") == 2
