"""Migration 0010 (accounts) over a store a 0009 server filled, on SQLite and PostgreSQL.

The store holds what a server of revision 0009 wrote: deposits on two paper exchanges, a
wallet set spanning both, a filled market buy in the set, a trader's resting limit buy, a
partly filled limit sell, an order of a paper run without an owner, and users (a trader with
the lowest id, then two admins). The history is made by the core itself (ledger, matching
engine, `place_order`), as the 0009 gateway made it, on a single-account ledger.

After the upgrade every wallet, order and fill belongs to the first admin's account on its
exchange (or, with no users, to accounts owned by nobody: the admins'); the ledger restores
from the upgraded rows, balances per account and holds what it held; and the gateway starts
on it: the first admin trades from the migrated funds, can cancel the migrated resting order
(its hold returns to the same account), and a trader's first order opens a new account of
their own, funded apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coinwire.app import build_feed
from coinwire.bus.memory import MemoryBus
from coinwire.config import load_settings
from coinwire.core.execution import place_order, settle_fills
from coinwire.core.ids import IdSequence
from coinwire.core.ledger import Ledger
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO
from coinwire.core.orders import Order, OrderRequest, OrderType, Side
from coinwire.core.wallets import WalletLine
from coinwire.feeds.demo import demo_instrument
from coinwire.services.gateway import Gateway
from coinwire.store import ChangeSet, Scale, Store, migrate
from coinwire.store.codec import encode
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

BTC = demo_instrument("demo", "BTC/USDT")
ETH = demo_instrument("demo2", "ETH/USDT")
CURRENCIES = ["BTC", "ETH", "SOL", "USDT"]
T0 = 1_790_000_000 * 10**9
TRADER, ADMIN, SECOND_ADMIN = 1, 2, 3  # the first admin is not the first user
NEW_COLUMNS = {"account_id", "seq", "funds", "stop_price", "trigger", "trail_ppm", "trail_delta", "activation_price", "trail_best",
               "time_in_force", "expire_at", "triggered_at", "list_id", "parent_id", "bracket", "emulated", "reduce_only",
               "position_side"}
# what 0010 adds to wallets, orders and fills; 0016_order_funds, 0017_conditional_orders and 0018_perpetuals to orders (and fills)
EXCHANGES = [
    {"name": name, "feed": "demo", "tick_interval": 0.05, "seed": seed, "paper_funds": {"USDT": "5000", "BTC": "1"}}
    for name, seed in (("demo", 11), ("demo2", 23))
]
pytestmark = pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@dataclass
class Legacy:
    """What the 0009 server kept: its ledger (one account, 0) and the rows it stored."""

    ledger: Ledger
    changes: ChangeSet
    orders: dict[str, Order]


def legacy_history(with_users: bool) -> Legacy:
    """Deposits, a wallet set on both exchanges and four orders, through the core's one order path."""
    ledger = Ledger({"demo": CURRENCIES, "demo2": CURRENCIES})
    fill_ids = IdSequence()
    btc, eth = MatchingEngine(BTC, fill_ids), MatchingEngine(ETH, fill_ids)
    btc.on_snapshot([(5_999_000, 100_000)], [(6_001_000, 100_000)], T0)  # 59990.00 / 60010.00, 1 BTC each
    eth.on_snapshot([(399_900, 100_000)], [(400_000, 100_000)], T0)  # 3999.00 / 4000.00, 10 ETH each
    lines: list[WalletLine] = []
    for exchange in ("demo", "demo2"):
        lines += ledger.add_virtual_tx(exchange, "USDT", 100_000 * ATTO, T0)
        lines += ledger.add_virtual_tx(exchange, "BTC", 2 * ATTO, T0)
        lines += ledger.add_virtual_tx(exchange, "ETH", 20 * ATTO, T0)
    wallet_set, made = ledger.create_wallet_set("run-1", "a run on both exchanges",
                                                [("demo", "USDT", 10_000 * ATTO), ("demo2", "ETH", 5 * ATTO)], T0 + 1)
    lines += made

    def order(id: int, engine: MatchingEngine, side: Side, size: int, limit: int = 0, set_id: int | None = None,
              owner: int | None = None) -> Order:
        placed = Order(id=id, client_oid=f"legacy-{id}", exchange=engine.instrument.exchange, symbol=engine.instrument.symbol,
                       side=side, type=OrderType.LIMIT if limit else OrderType.MARKET, size=size, limit=limit,
                       wallet_set_id=set_id, run_id="run-1" if set_id else None, created_at=T0 + id, last_updated_at=T0 + id,
                       owner_id=owner if with_users else None)
        fills, placed_lines = place_order(ledger, engine, placed, T0 + id)
        lines.extend(placed_lines)
        changes.fills.extend((fill, Scale.of(engine.instrument)) for fill in fills)
        return placed

    changes = ChangeSet()
    orders = {
        "set_buy": order(1, btc, Side.BUY, 1_000, set_id=wallet_set.id, owner=ADMIN),  # 0.01 BTC at market, in the set
        "resting_buy": order(2, btc, Side.BUY, 2_000, limit=5_000_000, owner=TRADER),  # 0.02 BTC at 50000.00
        "partly_sold": order(3, eth, Side.SELL, 10_000, limit=400_000, set_id=wallet_set.id, owner=ADMIN),  # 1 ETH at 4000.00
        "run_sell": order(4, btc, Side.SELL, 10_000, owner=None),  # 0.1 BTC at market, a paper run's
    }
    fills = eth.on_trade(400_000, 100_000 + 4_000, Side.BUY, T0 + 5)  # the 10 ETH ahead, then 0.4 of ours
    assert [f.order_id for f in fills] == [3]
    lines += settle_fills(ledger, ETH, orders["partly_sold"], fills, T0 + 5)
    changes.fills.extend((fill, Scale.of(ETH)) for fill in fills)
    assert [o.status.value for o in orders.values()] == ["done", "open", "open", "done"]
    assert orders["partly_sold"].filled_size == 4_000
    ledger.check()
    changes.wallet_sets = [wallet_set]
    changes.wallets = ledger.all_wallets()
    changes.wallet_lines = lines
    for placed in orders.values():
        changes.add_order(placed, BTC if placed.exchange == "demo" else ETH)
    return Legacy(ledger, changes, orders)


async def store_at_0009(db: Database, legacy: Legacy, with_users: bool) -> None:
    """A database at revision 0009 holding the legacy rows (and users), as a 0009 server left it."""
    async with db.store() as store:
        async with store.engine.begin() as conn:
            await conn.run_sync(migrate.downgrade, "0009")
        rows = encode(legacy.changes)
        async with store.engine.begin() as conn:
            assert await conn.run_sync(migrate.current_revision) == "0009"
            for table in ("wallet_sets", "wallets", "orders", "fills", "wallet_lines"):
                values = [{k: v for k, v in row.items() if k not in NEW_COLUMNS} for row in rows.as_dicts(table)]
                await conn.execute(sa.insert(sa.table(table, *(sa.column(name) for name in values[0]))), values)
            if with_users:
                columns = ("id", "username", "password_hash", "role", "plan", "disabled", "created_at")
                users = sa.table("users", *(sa.column(c) for c in columns))
                await conn.execute(sa.insert(users), [
                    {"id": TRADER, "username": "tina", "password_hash": "x", "role": "trader", "plan": "free", "disabled": False,
                     "created_at": T0},
                    {"id": ADMIN, "username": "ada", "password_hash": "x", "role": "admin", "plan": "free", "disabled": False,
                     "created_at": T0},
                    {"id": SECOND_ADMIN, "username": "abe", "password_hash": "x", "role": "admin", "plan": "free", "disabled": False,
                     "created_at": T0},
                ])


@asynccontextmanager
async def gateway_on(store: Store, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway started on the store (its ledger restored from the rows, checked), fed by demo feeds until both exchanges are ready."""
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": EXCHANGES})
    bus = MemoryBus()
    await bus.start()
    gateway = Gateway(settings, store, bus)
    feeds: list[tuple[Any, asyncio.Task[None]]] = []
    try:
        await gateway.start()
        for cfg in settings.exchanges:
            feed = build_feed(cfg)
            gateway.snapshot_sources[cfg.name] = feed
            feeds.append((feed, asyncio.create_task(feed.run(bus.publish))))
        for _ in range(200):
            if all(ex.status == "ready" for ex in gateway.venues.values()):
                break
            await asyncio.sleep(0.05)
        assert all(ex.status == "ready" for ex in gateway.venues.values())
        yield gateway
    finally:
        for feed, task in feeds:
            await feed.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await gateway.close()
        await bus.close()


async def check_upgraded_rows(store: Store, legacy: Legacy, owner: int | None) -> dict[str, int]:
    """One account per exchange, owned by `owner`, holding every wallet, order and fill of that exchange; the seqs at 0."""
    async with store.engine.connect() as conn:
        query = sa.text("SELECT id, exchange, kind, name, owner_id, active FROM accounts")
        accounts = [dict(r) for r in (await conn.execute(query)).mappings()]
        of = {a["exchange"]: a["id"] for a in accounts}
        assert sorted(accounts, key=lambda a: a["id"]) == [
            {"id": of[ex], "exchange": ex, "kind": "paper", "name": ex, "owner_id": owner, "active": True} for ex in ("demo", "demo2")]
        for table in ("wallets", "orders", "fills"):
            rows = (await conn.execute(sa.text(f"SELECT exchange, account_id FROM {table}"))).all()
            assert rows and all(account == of[exchange] for exchange, account in rows), (table, rows)
        assert (await conn.execute(sa.text("SELECT count(*) FROM wallets"))).scalar_one() == len(legacy.ledger.all_wallets())
        assert {seq for (seq,) in (await conn.execute(sa.text("SELECT seq FROM orders")))} == {0}
    return of


def check_restored_ledger(restored: Ledger, legacy: Legacy, of: dict[str, int]) -> None:
    """The same wallets, lines and holds; what was one pool per exchange is now that exchange's account's."""
    restored.check()
    assert [(w.id, w.exchange, w.currency, w.wallet_set_id, w.balance, w.hold) for w in restored.all_wallets()] == [
        (w.id, w.exchange, w.currency, w.wallet_set_id, w.balance, w.hold) for w in legacy.ledger.all_wallets()]
    assert {w.account_id for w in restored.all_wallets() if w.exchange == "demo"} == {of["demo"]}
    assert {w.account_id for w in restored.all_wallets() if w.exchange == "demo2"} == {of["demo2"]}
    assert restored.totals().wallets == legacy.ledger.totals().wallets  # the sums of the same lines, allocations too
    assert restored.holds() == legacy.ledger.holds()
    for exchange, account in of.items():
        mine = {pair: b for pair, b in legacy.ledger.exchange_totals().items() if pair[0] == exchange}
        assert restored.exchange_totals((account,)) == mine
        assert restored.unallocated((account,)) == {p: b for p, b in legacy.ledger.unallocated().items() if p[0] == exchange}
    (set_id,) = [s.id for s in restored.wallet_sets()]
    assert restored.set_account(set_id, "demo") == of["demo"] and restored.set_account(set_id, "demo2") == of["demo2"]


def market_buy(gateway: Gateway, owner: int | None, client_oid: str) -> OrderRequest:
    inst = gateway.venues["demo"].markets["BTC/USDT"].instrument
    return OrderRequest(exchange="demo", instrument=inst, side=Side.BUY, type=OrderType.MARKET, size=inst.parse_size("0.001", "size"),
                        limit=0, cancel_after=0, client_oid=client_oid, wallet_set_id=None, run_id=None, owner_id=owner)


@pytest.mark.parametrize("with_users", [True, False], ids=["users", "no-users"])
async def test_0010_gives_existing_funds_orders_and_fills_to_the_first_admins_accounts(
    database: Database, tmp_path: Path, with_users: bool  # noqa: F811 - the imported fixture
) -> None:
    legacy = legacy_history(with_users)
    await store_at_0009(database, legacy, with_users)
    owner = ADMIN if with_users else None  # no users yet: owned by nobody, which admins read

    async with database.store() as store:  # starting it upgrades to 0010, with the rows in place
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrate.current_revision) == migrate.HEAD
        of = await check_upgraded_rows(store, legacy, owner)
        state = await store.load_state()
        check_restored_ledger(Ledger.restore(state.wallets, state.wallet_sets, state.totals), legacy, of)
        assert state.last_seqs == {of["demo"]: 0, of["demo2"]: 0}
        assert {o.id: o.account_id for o in state.open_orders} == {2: of["demo"], 3: of["demo2"]}

        async with gateway_on(store, tmp_path) as gateway:
            gateway.ledger.check()
            assert gateway.accounts.own(owner, "demo").id == of["demo"]  # type: ignore[union-attr]
            assert gateway.accounts.own(owner, "demo2").id == of["demo2"]  # type: ignore[union-attr]
            migrated_usdt = gateway.ledger.wallet("demo", "USDT", None, of["demo"])

            # the first admin trades from the migrated funds; the account's stream starts at 1
            bought = await gateway.make_order(market_buy(gateway, owner, "after-upgrade"))
            assert bought.account == of["demo"] and bought.status == "done"
            assert 1 < bought.seq == gateway.seqs[of["demo"]]  # its fills' seqs, then its own
            assert gateway.ledger.wallet("demo", "USDT", None, of["demo"]).balance < migrated_usdt.balance

            # the migrated resting buy (a trader's before the upgrade) is cancelled by the account's owner: the hold comes back there
            held = gateway.ledger.hold_of(2)
            assert held > 0 and gateway.ledger.wallet("demo", "USDT", None, of["demo"]).hold == held
            cancelled = await gateway.cancel_order(
                order_id=2, client_oid=None, exchange=None, owner_id=owner,
                may_trade=lambda account: gateway.accounts.may(account, owner, owner is None, "trade"))
            assert cancelled.account == of["demo"] and cancelled.status == "done"
            assert gateway.ledger.wallet("demo", "USDT", None, of["demo"]).hold == 0

            if with_users:  # a trader's first order opens an account of their own, funded apart from the migrated one
                before = gateway.ledger.exchange_totals((of["demo"],))
                theirs = await gateway.make_order(market_buy(gateway, TRADER, "trader-first"))
                account = gateway.accounts.accounts[theirs.account]
                assert account.id not in of.values()
                assert (account.owner_id, account.exchange, account.kind) == (TRADER, "demo", "paper")
                assert gateway.ledger.exchange_totals((of["demo"],)) == before
                assert 0 < gateway.ledger.wallet("demo", "USDT", None, account.id).balance < 5000 * ATTO
            gateway.ledger.check()
