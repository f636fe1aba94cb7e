"""One contract for the Store on SQLite (committed directly, or through its journal) and on a real
PostgreSQL: exact round trips, atomic ChangeSets, idempotency keys, paging, crash-recovery state
and the group-commit writer.

The database's refusals (a duplicate key, a fill of an unknown order) answer the submitter only
where the database is written before the answer: SQLite directly and PostgreSQL. Through the
journal the gateway has checked them before; what the journal does with a record the database
refuses is tests/store/test_journal.py's."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from coinwire.core.errors import CoinwireError, Conflict, InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO, str_to_atto
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType, Side
from coinwire.core.wallets import LineKind, Wallet, WalletLine, WalletSet
from coinwire.store import ChangeSet, GroupCommitWriter, Scale, Store, normalise_url
from coinwire.store.codec import FILLS, ORDERS, WALLET_LINES
from tests.conftest import POSTGRES_URL, postgres_schema

BTC_USDT = Instrument(
    exchange="binance", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5
)
BIG = str_to_atto("123456789012.123456789012345678")  # > 2**64 as an ATTO integer
T0 = 1_700_000_000_000_000_000


@dataclass
class Database:
    url: str
    schema: str | None
    journal: bool = False

    def store(self) -> Store:
        return Store(self.url, schema=self.schema, journal=self.journal)


CHECKED_AT_COMMIT = pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(params=["sqlite", "sqlite-journal", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database per test: a SQLite file (with or without its journal), or a throwaway PostgreSQL schema."""
    if request.param.startswith("sqlite"):
        yield Database(f"sqlite:///{tmp_path / 'store.db'}", None, journal=request.param == "sqlite-journal")
        return
    async with postgres_schema() as schema:
        yield Database(POSTGRES_URL, schema)


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    async with database.store() as started:
        yield started


def wallet_set(id: int = 1) -> WalletSet:
    return WalletSet(id=id, run_id=f"run-{id}", description="momentum, 'quoted' — ünïcode", created_at=T0)


def order(id: int, status: OrderStatus = OrderStatus.OPEN, **fields: object) -> Order:
    values: dict[str, object] = {
        "id": id,
        "client_oid": f"oid-{id}",
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "size": 150_000,  # 1.5 BTC
        "limit": 6_173_763,  # 61737.63
        "wallet_set_id": 1,
        "status": status,
        "created_at": T0 + id,
        "last_updated_at": T0 + id,
    }
    values.update(fields)
    return Order(**values)  # type: ignore[arg-type]


def fill(id: int, order_id: int, ts: int = T0) -> Fill:
    return Fill(
        id=id,
        order_id=order_id,
        client_oid=f"oid-{order_id}",
        exchange="binance",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=6_173_763,
        size=50_000,
        notional=BIG,
        fee=BIG // 1000 + 1,
        maker=True,
        ts=ts,
        wallet_set_id=1,
        ext_id=f"ext-{id}",
    )


def ledger(set_id: int = 1) -> ChangeSet:
    """A wallet set with a USDT and a BTC wallet."""
    return ChangeSet(
        wallet_sets=[wallet_set(set_id)],
        wallets=[
            Wallet(id=set_id * 10, exchange="binance", currency="USDT", wallet_set_id=set_id),
            Wallet(id=set_id * 10 + 1, exchange="binance", currency="BTC", wallet_set_id=set_id),
        ],
    )


async def count(store: Store, table: str) -> int:
    await store.settled()
    async with store.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


# --- exactness --------------------------------------------------------------------------------


async def test_every_record_round_trips_exactly(store: Store) -> None:
    assert BIG == 123456789012_123456789012345678 > 2**64
    done = order(7, OrderStatus.DONE, done_reason=DoneReason.FILLED, done_at=T0 + 99, exchange_at=T0 + 8)
    done.filled_size, done.filled_notional, done.fee = 150_000, BIG, BIG // 1000
    lines = [
        WalletLine(id=1, wallet_id=10, ts=T0, kind=LineKind.VIRTUAL_TX, movement=BIG),
        WalletLine(id=2, wallet_id=10, ts=T0 + 1, kind=LineKind.HOLD, hold=BIG - 1, order_id=7),
        WalletLine(id=3, wallet_id=10, ts=T0 + 2, kind=LineKind.FEE, movement=-(BIG // 1000 + 1), order_id=7, fill_id=3),
    ]
    changes = ledger().add_order(done, BTC_USDT).add_fill(fill(3, 7), BTC_USDT)
    changes.wallet_lines.extend(lines)
    await store.apply(changes)

    assert await store.get_order(7) == done
    assert await store.list_fills(order_id=7) == [fill(3, 7)]
    assert await store.wallet_lines([10]) == lines
    state = await store.load_state()
    assert state.wallet_sets == [wallet_set(1)]
    usdt = next(w for w in state.wallets if w.id == 10)
    assert (usdt.balance, usdt.hold) == (BIG - (BIG // 1000 + 1), BIG - 1)

    # Rows are self-describing decimal text, readable by SQL and by people.
    async with store.engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM orders WHERE id = 7"))).mappings().one()
        frow = (await conn.execute(text("SELECT * FROM fills WHERE id = 3"))).mappings().one()
        lrow = (await conn.execute(text("SELECT movement FROM wallet_lines WHERE id = 1"))).scalar_one()
    assert (row["price_decimals"], row["size_decimals"]) == (2, 5)
    assert (row["limit_price"], row["size"], row["filled_notional"]) == (
        "61737.63",
        "1.5",
        "123456789012.123456789012345678",
    )
    assert (frow["price"], frow["size"], frow["price_decimals"], frow["size_decimals"]) == ("61737.63", "0.5", 2, 5)
    assert lrow == "123456789012.123456789012345678"


@settings(max_examples=200, deadline=None)
@given(
    price_decimals=st.integers(0, 9),
    size_decimals=st.integers(0, 9),
    units=st.integers(-(10**30), 10**30),
    atto=st.integers(-(10**40), 10**40),
)
def test_codec_is_exact_for_any_amount_and_precision(price_decimals: int, size_decimals: int, units: int, atto: int) -> None:
    scale = Scale(price_decimals, size_decimals)
    record = fill(1, 1)
    record = msgspec.structs.replace(record, price=units, size=abs(units), notional=atto, fee=-atto)
    assert FILLS.from_row(FILLS.to_row(record, scale)) == record
    o = order(1, size=abs(units), limit=units, filled_notional=atto, fee=atto)
    assert ORDERS.from_row(ORDERS.to_row(o, scale)) == o
    line = WalletLine(id=1, wallet_id=1, ts=0, kind=LineKind.TRADE, movement=atto, hold=-atto)
    assert WALLET_LINES.from_row(WALLET_LINES.to_row(line)) == line


# --- writes -----------------------------------------------------------------------------------


async def test_upsert_updates_an_order(store: Store) -> None:
    placed = order(1, OrderStatus.PENDING)
    await store.apply(ledger().add_order(placed, BTC_USDT))
    placed.move(OrderStatus.OPEN, T0 + 5)
    await store.apply(ChangeSet().add_order(placed, BTC_USDT))
    placed.move(OrderStatus.DONE, T0 + 9, DoneReason.CANCELLED)
    await store.apply(ChangeSet().add_order(placed, BTC_USDT))
    stored = await store.get_order(1)
    assert stored is not None and stored.status is OrderStatus.DONE and stored.done_reason is DoneReason.CANCELLED
    assert (stored.exchange_at, stored.done_at) == (T0 + 5, T0 + 9)
    assert await count(store, "orders") == 1


@CHECKED_AT_COMMIT
async def test_duplicate_primary_key_writes_nothing_of_the_change_set(store: Store) -> None:
    await store.apply(ledger().add_order(order(1), BTC_USDT).add_fill(fill(1, 1), BTC_USDT))
    bad = ledger(2).add_order(order(2), BTC_USDT).add_fill(fill(2, 2), BTC_USDT).add_fill(fill(1, 2), BTC_USDT)
    bad.wallet_lines.append(WalletLine(id=1, wallet_id=20, ts=T0, kind=LineKind.VIRTUAL_TX, movement=ATTO))
    with pytest.raises(Conflict) as raised:
        await store.apply(bad)
    assert raised.value.code == "store_conflict"
    assert await store.get_order(2) is None
    assert [await count(store, t) for t in ("wallet_sets", "wallets", "orders", "fills", "wallet_lines")] == [1, 2, 1, 1, 0]


@CHECKED_AT_COMMIT
async def test_client_oid_is_unique_and_a_duplicate_writes_nothing(store: Store) -> None:
    await store.apply(ledger().add_order(order(1), BTC_USDT))
    twin = order(2, client_oid="oid-1")
    bad = ChangeSet(wallet_lines=[WalletLine(id=1, wallet_id=10, ts=T0, kind=LineKind.VIRTUAL_TX, movement=ATTO)])
    with pytest.raises(Conflict) as raised:
        await store.apply(bad.add_order(twin, BTC_USDT))
    assert raised.value.code == "duplicate_client_oid"
    assert await count(store, "wallet_lines") == 0
    found = await store.get_order_by_client_oid("oid-1")
    assert found is not None and found.id == 1
    assert await store.get_order_by_client_oid("never-sent") is None


@CHECKED_AT_COMMIT
async def test_a_client_oid_is_unique_per_owner_and_found_only_in_its_owners_key_space(store: Store) -> None:
    """Two users may use the same client_oid; one user (or the orders without an owner) may not use one twice."""
    await store.apply(ledger().add_order(order(1, client_oid="shared", owner_id=7), BTC_USDT))
    await store.apply(ChangeSet().add_order(order(2, client_oid="shared", owner_id=8), BTC_USDT))
    await store.apply(ChangeSet().add_order(order(3, client_oid="shared"), BTC_USDT))  # no owner: its own key space
    for twin in (order(4, client_oid="shared", owner_id=7), order(5, client_oid="shared")):
        with pytest.raises(Conflict) as raised:
            await store.apply(ChangeSet().add_order(twin, BTC_USDT))
        assert raised.value.code == "duplicate_client_oid"
    found = {owner: await store.get_order_by_client_oid("shared", owner) for owner in (7, 8, None, 9)}
    assert {owner: o.id if o else None for owner, o in found.items()} == {7: 1, 8: 2, None: 3, 9: None}
    keys: list[tuple[int | None, str]] = []
    assert await store.each_client_oid_after(0, lambda owner, oid: keys.append((owner, oid))) == 3
    assert sorted(keys, key=str) == sorted([(7, "shared"), (8, "shared"), (None, "shared")], key=str)
    assert await store.each_client_oid_after(2, lambda owner, oid: keys.append((owner, oid))) == 1


@CHECKED_AT_COMMIT
async def test_a_fill_of_an_unknown_order_is_refused(store: Store) -> None:
    with pytest.raises(Conflict, match="refused"):
        await store.apply(ChangeSet().add_fill(fill(1, 404), BTC_USDT))
    assert await count(store, "fills") == 0


# --- reads ------------------------------------------------------------------------------------


async def test_list_orders_filters_and_pages_newest_first(store: Store) -> None:
    changes = ledger(1)
    changes.wallet_sets.append(wallet_set(2))
    for i in range(1, 26):
        status = OrderStatus.DONE if i % 5 == 0 else OrderStatus.OPEN
        reason = DoneReason.FILLED if status is OrderStatus.DONE else None
        changes.add_order(order(i, status, done_reason=reason, wallet_set_id=1 + i % 2, exchange="kraken" if i > 20 else "binance"),
                          BTC_USDT)
    await store.apply(changes)

    pages: list[list[int]] = []
    before: int | None = None
    while page := await store.list_orders(limit=10, before_id=before):
        pages.append([o.id for o in page])
        before = page[-1].id
    assert pages == [list(range(25, 15, -1)), list(range(15, 5, -1)), list(range(5, 0, -1))]
    assert [o.id for o in await store.list_orders(status="done")] == [25, 20, 15, 10, 5]
    assert [o.id for o in await store.list_orders(status=OrderStatus.DONE, exchange="kraken")] == [25]
    assert [o.id for o in await store.list_orders(wallet_set_id=1, limit=3)] == [24, 22, 20]
    with pytest.raises(InvalidInput) as raised:
        await store.list_orders(status="opened")
    assert raised.value.code == "invalid_status"
    with pytest.raises(InvalidInput):
        await store.list_orders(limit=0)


async def test_list_fills_filters_and_pages(store: Store) -> None:
    changes = ledger().add_order(order(1), BTC_USDT).add_order(order(2), BTC_USDT)
    for i in range(1, 8):
        changes.add_fill(fill(i, 1 + i % 2, ts=T0 + i), BTC_USDT)
    await store.apply(changes)
    assert [f.id for f in await store.list_fills(limit=3)] == [7, 6, 5]
    assert [f.id for f in await store.list_fills(limit=3, before_id=5)] == [4, 3, 2]
    assert [f.id for f in await store.list_fills(order_id=1)] == [6, 4, 2]


async def test_wallet_lines_in_time_order_since_a_timestamp(store: Store) -> None:
    changes = ledger()
    changes.wallet_lines = [
        WalletLine(id=1, wallet_id=10, ts=T0 + 30, kind=LineKind.TRADE, movement=-5),
        WalletLine(id=2, wallet_id=11, ts=T0 + 10, kind=LineKind.TRADE, movement=7),
        WalletLine(id=3, wallet_id=10, ts=T0 + 10, kind=LineKind.VIRTUAL_TX, movement=100),
        WalletLine(id=4, wallet_id=10, ts=T0 + 20, kind=LineKind.HOLD, hold=50),
    ]
    await store.apply(changes)
    assert [line.id for line in await store.wallet_lines([10])] == [3, 4, 1]
    assert [line.id for line in await store.wallet_lines([10, 11], since_ts=T0 + 10)] == [2, 3, 4, 1]
    assert [line.id for line in await store.wallet_lines([10, 11], since_ts=T0 + 11)] == [4, 1]
    assert await store.wallet_lines([]) == []


async def test_load_state_has_open_orders_the_sums_of_all_lines_and_id_high_marks(store: Store) -> None:
    empty = await store.load_state()
    assert (empty.last_order_id, empty.last_fill_id, empty.last_wallet_line_id) == (0, 0, 0)
    assert (empty.open_orders, empty.wallets, empty.wallet_sets) == ([], [], [])

    changes = ledger(1)
    changes.wallet_sets.append(wallet_set(4))
    changes.wallets.append(Wallet(id=3, exchange="binance", currency="USDT"))  # unallocated
    changes.add_order(order(1, OrderStatus.PENDING), BTC_USDT)
    changes.add_order(order(2, OrderStatus.OPEN), BTC_USDT)
    changes.add_order(order(9, OrderStatus.DONE, done_reason=DoneReason.CANCELLED), BTC_USDT)
    changes.add_fill(fill(5, 2), BTC_USDT)
    changes.wallet_lines = [
        WalletLine(id=1, wallet_id=3, ts=T0, kind=LineKind.VIRTUAL_TX, movement=BIG),
        WalletLine(id=2, wallet_id=3, ts=T0 + 1, kind=LineKind.ALLOCATE, movement=-ATTO),
        WalletLine(id=8, wallet_id=10, ts=T0 + 1, kind=LineKind.ALLOCATE, movement=ATTO),
        WalletLine(id=9, wallet_id=10, ts=T0 + 2, kind=LineKind.HOLD, hold=ATTO // 2, order_id=2),
    ]
    await store.apply(changes)

    state = await store.load_state()
    assert [o.id for o in state.open_orders] == [1, 2]
    assert state.lines_after_checkpoint == 4 and state.client_oid_filter is None and state.client_oids_mark == 0
    assert state.totals.wallets == {3: [BIG - ATTO, 0, -ATTO], 10: [ATTO, ATTO // 2, ATTO]}
    assert state.totals.holds == {2: (10, ATTO // 2)} and state.totals.last_line_id == 9
    assert [s.id for s in state.wallet_sets] == [1, 4]
    balances = {w.id: (w.balance, w.hold) for w in state.wallets}
    assert balances == {3: (BIG - ATTO, 0), 10: (ATTO, ATTO // 2), 11: (0, 0)}
    assert (state.last_order_id, state.last_fill_id, state.last_wallet_line_id) == (9, 5, 9)
    assert (state.last_wallet_id, state.last_wallet_set_id) == (11, 4)


async def test_a_checkpoint_keeps_the_sums_of_lines_so_a_start_reads_only_the_lines_after_it(store: Store) -> None:
    """The kept totals come from the stored lines: checkpoint, more lines (a hold released, a new one), a start folds the tail."""
    changes = ledger(1)
    changes.wallets.append(Wallet(id=3, exchange="binance", currency="USDT"))
    changes.add_order(order(2, OrderStatus.OPEN), BTC_USDT)
    changes.wallet_lines = [
        WalletLine(id=1, wallet_id=3, ts=T0, kind=LineKind.VIRTUAL_TX, movement=BIG),
        WalletLine(id=2, wallet_id=3, ts=T0 + 1, kind=LineKind.ALLOCATE, movement=-ATTO),
        WalletLine(id=3, wallet_id=10, ts=T0 + 1, kind=LineKind.ALLOCATE, movement=ATTO),
        WalletLine(id=4, wallet_id=10, ts=T0 + 2, kind=LineKind.HOLD, hold=ATTO // 2, order_id=2),
    ]
    await store.apply(changes)
    assert await store.checkpoint_ledger(lambda: b"\x01\x02", now=T0) == 4
    state = await store.load_state()
    assert state.lines_after_checkpoint == 0 and state.totals.wallets == (await store.line_totals()).wallets
    assert state.totals.holds == {2: (10, ATTO // 2)} and state.totals.last_line_id == 4
    assert (state.client_oid_filter, state.client_oids_mark) == (b"\x01\x02", 2)
    assert await store.checkpoint_ledger() == 0  # nothing new: the same totals
    later = ChangeSet(wallet_lines=[
        WalletLine(id=5, wallet_id=10, ts=T0 + 3, kind=LineKind.HOLD, hold=-(ATTO // 2), order_id=2),  # released
        WalletLine(id=6, wallet_id=10, ts=T0 + 3, kind=LineKind.TRADE, movement=-3, order_id=2, fill_id=1),
        WalletLine(id=8, wallet_id=3, ts=T0 + 4, kind=LineKind.HOLD, hold=7, order_id=5),  # 7: a gap is fine
    ])
    await store.apply(later)
    state = await store.load_state()
    every = await store.line_totals()
    assert state.lines_after_checkpoint == 3
    assert state.totals.wallets == every.wallets == {3: [BIG - ATTO, 7, -ATTO], 10: [ATTO - 3, 0, ATTO]}
    assert state.totals.holds == every.holds == {5: (3, 7)} and state.totals.last_line_id == 8
    balances = {w.id: (w.balance, w.hold) for w in state.wallets}
    assert balances[3] == (BIG - ATTO, 7) and balances[10] == (ATTO - 3, 0)
    assert await store.checkpoint_ledger() == 3
    again = await store.load_state()
    assert again.lines_after_checkpoint == 0 and again.totals.wallets == every.wallets and again.totals.holds == every.holds
    assert again.client_oid_filter == b"\x01\x02"  # kept when a checkpoint has no filter to give


async def test_a_line_committed_after_a_higher_one_and_a_checkpoint_between_is_folded_once(store: Store) -> None:
    """Lines 2 and 3 made in that order and committed 3 first (a venue recording a market message's second execution
    before its first, or a command committed between them), a checkpoint in between: it covers 1 and 3 and lists 2
    as a gap, which a start and the next checkpoint fold once 2 is stored (before, 2 was in neither: lost)."""
    changes = ledger(1)
    changes.wallet_lines = [WalletLine(id=1, wallet_id=10, ts=T0, kind=LineKind.VIRTUAL_TX, movement=100)]
    await store.apply(changes)
    await store.apply(ChangeSet(wallet_lines=[  # releases the hold line 2 takes
        WalletLine(id=3, wallet_id=10, ts=T0 + 2, kind=LineKind.HOLD, hold=-5, order_id=7)]))
    assert await store.checkpoint_ledger() == 2
    await store.apply(ChangeSet(wallet_lines=[
        WalletLine(id=2, wallet_id=10, ts=T0 + 1, kind=LineKind.HOLD, hold=5, order_id=7),
        WalletLine(id=4, wallet_id=11, ts=T0 + 3, kind=LineKind.VIRTUAL_TX, movement=20)]))
    every = await store.line_totals()
    assert every.wallets == {10: [100, 0, 0], 11: [20, 0, 0]} and every.holds == {} and every.gaps == set()
    state = await store.load_state()
    assert state.lines_after_checkpoint == 2 and state.totals.gaps == set() and state.totals.last_line_id == 4
    assert (state.totals.wallets, state.totals.holds) == (every.wallets, every.holds)
    assert await store.checkpoint_ledger() == 2
    again = await store.load_state()
    assert again.lines_after_checkpoint == 0 and (again.totals.wallets, again.totals.holds) == (every.wallets, every.holds)


_example_sets = itertools.count(100)  # a wallet set of its own per example: one store serves them all


@CHECKED_AT_COMMIT
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.tuples(st.booleans(), st.integers(-50, 50)), min_size=1, max_size=8),
    data=st.data(),
)
async def test_any_commit_order_with_checkpoints_anywhere_keeps_every_line(
    store: Store, lines: list[tuple[bool, int]], data: st.DataObject,
) -> None:
    """Property: lines cut into change sets committed in any order, a checkpoint after any commit: the checkpoint's
    totals plus the lines after it are the fold of every line, and a last checkpoint leaves no gap behind."""
    set_id = next(_example_sets)
    base = (await store.line_totals()).last_line_id
    await store.apply(ledger(set_id))
    made = [WalletLine(id=base + i, wallet_id=set_id * 10 + i % 2, ts=T0 + i, kind=LineKind.HOLD if holds else LineKind.VIRTUAL_TX,
                       movement=0 if holds else amount, hold=amount if holds else 0, order_id=set_id * 10 + i % 2 if holds else None)
            for i, (holds, amount) in enumerate(lines, start=1)]  # fmt: skip
    cuts = sorted(data.draw(st.sets(st.integers(1, len(made) - 1), max_size=len(made) - 1)) if len(made) > 1 else set())
    change_sets = [made[start:end] for start, end in zip([0, *cuts], [*cuts, len(made)], strict=True)]
    for batch in data.draw(st.permutations(change_sets)):
        await store.apply(ChangeSet(wallet_lines=batch))
        if data.draw(st.booleans()):
            await store.checkpoint_ledger()
    every = await store.line_totals()
    state = await store.load_state()
    assert (state.totals.wallets, state.totals.holds, state.totals.gaps) == (every.wallets, every.holds, every.gaps)
    await store.checkpoint_ledger()
    again = await store.load_state()
    assert again.lines_after_checkpoint == 0 and (again.totals.wallets, again.totals.holds) == (every.wallets, every.holds)


async def test_ping_and_lifecycle(database: Database) -> None:
    store = database.store()
    assert await store.ping() is False  # not started
    async with store:
        assert await store.ping() is True
        assert store.dialect == ("sqlite" if database.schema is None else "postgresql")
    assert await store.ping() is False


def test_urls_are_normalised_or_refused(tmp_path: Path) -> None:
    assert normalise_url("sqlite:///data/cw.db") == "sqlite+aiosqlite:///data/cw.db"
    assert normalise_url("sqlite+aiosqlite:////abs/cw.db") == "sqlite+aiosqlite:////abs/cw.db"
    assert normalise_url("postgresql://u:p@h:5433/db") == "postgresql+asyncpg://u:p@h:5433/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    for bad in ("mysql://u@h/db", "sqlite://", "sqlite:///:memory:", "postgresql+psycopg2://u@h/db", "not a url"):
        with pytest.raises(InvalidInput):
            normalise_url(bad)
    with pytest.raises(InvalidInput):
        Store(f"sqlite:///{tmp_path / 'x.db'}", schema="cw_x")
    with pytest.raises(InvalidInput):
        Store("postgresql://u@h/db", schema='x"; DROP TABLE orders; --')


# --- group commit -----------------------------------------------------------------------------


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[GroupCommitWriter]:
    await store.apply(ledger())
    group = GroupCommitWriter(store, max_batch=256)
    await group.start()
    yield group
    await group.close()


async def test_writer_batches_200_concurrent_submits(store: Store, writer: GroupCommitWriter) -> None:
    async def place(i: int) -> None:
        changes = ChangeSet().add_order(order(i), BTC_USDT)
        changes.wallet_lines.append(WalletLine(id=i, wallet_id=10, ts=T0 + i, kind=LineKind.HOLD, hold=i, order_id=i))
        await writer.submit(changes)

    await asyncio.gather(*(place(i) for i in range(1, 201)))
    assert await count(store, "orders") == 200
    assert await count(store, "wallet_lines") == 200
    assert writer.submitted == 200
    assert 1 <= writer.commits < 200
    assert writer.fallbacks == 0


@CHECKED_AT_COMMIT
async def test_writer_isolates_a_failing_change_set(store: Store, writer: GroupCommitWriter) -> None:
    await writer.submit(ChangeSet().add_order(order(1), BTC_USDT))
    results = await asyncio.gather(
        *(writer.submit(ChangeSet().add_order(order(i), BTC_USDT)) for i in range(2, 12)),
        writer.submit(ChangeSet().add_order(order(99, client_oid="oid-1"), BTC_USDT)),
        *(writer.submit(ChangeSet().add_order(order(i), BTC_USDT)) for i in range(12, 22)),
        return_exceptions=True,
    )
    failures = [r for r in results if r is not None]
    assert len(failures) == 1 and isinstance(failures[0], Conflict) and failures[0].code == "duplicate_client_oid"
    assert results[10] is failures[0]
    assert await count(store, "orders") == 21
    assert writer.fallbacks == 1


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_writer_isolates_a_value_the_database_cannot_hold(store: Store, writer: GroupCommitWriter) -> None:
    """One user's 100-character run_id (the column is VARCHAR(64)) fails that change set alone, with a stable code."""
    results = await asyncio.gather(
        *(writer.submit(ChangeSet().add_order(order(i, run_id="alice-run"), BTC_USDT)) for i in range(1, 11)),
        writer.submit(ChangeSet().add_order(order(50, run_id="r" * 100), BTC_USDT).add_fill(fill(50, 50), BTC_USDT)),
        *(writer.submit(ChangeSet().add_order(order(i, run_id="alice-run"), BTC_USDT)) for i in range(11, 21)),
        return_exceptions=True,
    )
    failures = [r for r in results if r is not None]
    assert failures == [results[10]], results
    refused = failures[0]
    assert isinstance(refused, InvalidInput) and refused.code == "store_value_refused", repr(refused)
    assert "character varying(64)" in refused.message and "<class" not in refused.message
    assert await count(store, "orders") == 20 and await store.get_order(50) is None
    assert await count(store, "fills") == 0  # nothing of the refused change set is half-written
    assert writer.fallbacks == 1


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_writer_halts_when_the_database_fails_for_another_reason_until_resumed(store: Store, writer: GroupCommitWriter) -> None:
    """A failure that is no refusal of the rows (here: a table gone) fails its change set and every later one untried, so the
    database holds a prefix of the submissions; submits fail at once until `resume()`."""
    async with store.writer.begin() as conn:
        await conn.execute(text(f'ALTER TABLE "{store.schema}".fills RENAME TO fills_away'))
    results = await asyncio.gather(
        writer.submit(ChangeSet().add_order(order(1), BTC_USDT)),
        writer.submit(ChangeSet().add_order(order(2), BTC_USDT).add_fill(fill(2, 2), BTC_USDT)),
        *(writer.submit(ChangeSet().add_order(order(i), BTC_USDT)) for i in range(3, 6)),
        return_exceptions=True,
    )
    assert results[0] is None and not isinstance(results[1], CoinwireError), results
    assert results[1] is writer.halted and all(r is results[1] for r in results[2:]), results
    assert await count(store, "orders") == 1  # order 1 only: nothing after the failed one, though 3 to 5 were fine
    with pytest.raises(type(results[1])):
        await writer.submit(ChangeSet().add_order(order(6), BTC_USDT))
    async with store.writer.begin() as conn:
        await conn.execute(text(f'ALTER TABLE "{store.schema}".fills_away RENAME TO fills'))
    writer.resume()
    await writer.submit(ChangeSet().add_order(order(3), BTC_USDT))
    assert await count(store, "orders") == 2 and writer.halted is None


async def test_writer_merges_updates_of_one_order_and_keeps_the_last(store: Store, writer: GroupCommitWriter) -> None:
    placed = order(1, OrderStatus.PENDING)
    opened = msgspec.structs.replace(placed)
    opened.move(OrderStatus.OPEN, T0 + 5)
    await writer.submit(ChangeSet())  # nothing to write: returns at once, costs nothing
    await asyncio.gather(
        writer.submit(ChangeSet().add_order(placed, BTC_USDT)),
        writer.submit(ChangeSet().add_order(opened, BTC_USDT).add_fill(fill(1, 1), BTC_USDT)),
    )
    stored = await store.get_order(1)
    assert stored == opened
    assert (writer.submitted, writer.commits) == (2, 1)


async def test_writer_stores_the_state_at_submit_time(store: Store, writer: GroupCommitWriter) -> None:
    placed = order(1, OrderStatus.PENDING)
    submitted = asyncio.ensure_future(writer.submit(ChangeSet().add_order(placed, BTC_USDT)))
    await asyncio.sleep(0)  # submit has encoded its snapshot and queued it
    placed.move(OrderStatus.OPEN, T0 + 5)  # a later change nobody submitted
    await submitted
    stored = await store.get_order(1)
    assert stored is not None and stored.status is OrderStatus.PENDING


async def test_writer_close_drains_and_then_refuses(store: Store) -> None:
    await store.apply(ledger())
    writer = GroupCommitWriter(store, max_batch=4)
    with pytest.raises(RuntimeError):
        await writer.submit(ChangeSet().add_order(order(1), BTC_USDT))
    await writer.start()
    pending = [asyncio.ensure_future(writer.submit(ChangeSet().add_order(order(i), BTC_USDT))) for i in range(1, 11)]
    await asyncio.sleep(0)
    await writer.close()
    await asyncio.gather(*pending)
    assert await count(store, "orders") == 10
    assert writer.commits >= 3  # max_batch=4 caps each transaction
    with pytest.raises(RuntimeError):
        await writer.submit(ChangeSet().add_order(order(11), BTC_USDT))


async def test_a_change_sets_owner_rows_are_committed_with_it(store: Store) -> None:
    """A wallet set's owner travels in the set's own change set: stored with it or not at all."""
    created = ChangeSet(wallet_sets=[wallet_set(1)], owners=(("wallet_set", "1", 7),))
    await store.apply(created)
    await store.apply(ChangeSet(wallet_sets=[wallet_set(2)], owners=(("wallet_set", "2", 8), ("wallet_set", "2", 9))))
    if store.journal is None:  # a refused change set leaves no owner behind
        with pytest.raises(Conflict):
            await store.apply(ChangeSet(owners=(("wallet_set", "3", 7),), fills=[(fill(1, 404), Scale.of(BTC_USDT))]))
    await store.settled()
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT kind, resource_id, user_id FROM owners ORDER BY resource_id"))).all()
    assert [tuple(r) for r in rows] == [("wallet_set", "1", 7), ("wallet_set", "2", 9)]
