"""store.account_imports on SQLite and PostgreSQL: import rows round-trip, trades and transfers are stored once by their venue ids."""

from __future__ import annotations

from decimal import Decimal

from coinwire.store.account_imports import (
    ImportRow,
    StoredTrade,
    StoredTransfer,
    create_import,
    insert_trades,
    insert_transfers,
    latest_import,
    load_trades,
    load_transfers,
    save_import,
    unfinished_imports,
)
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture


def trade(symbol: str, trade_id: str, ts: int, price: str = "19565.01") -> StoredTrade:
    return StoredTrade(symbol=symbol, trade_id=trade_id, order_id="9", side="buy", price=Decimal(price), amount=Decimal("0.00123"),
                       cost=Decimal(price) * Decimal("0.00123"), fee=Decimal("0.00000123"), fee_currency="BTC", ts_ms=ts)


async def test_trades_and_transfers_are_stored_once_per_account_market_and_id(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        first = [trade("BTC/USDT", "1", 10), trade("BTC/USDT", "2", 11), trade("ETH/USDT", "1", 12)]
        assert await insert_trades(store, 7, first) == 3
        assert await insert_trades(store, 7, [trade("BTC/USDT", "2", 11, "1"), trade("BTC/USDT", "3", 13)]) == 1
        assert await insert_trades(store, 8, [trade("BTC/USDT", "1", 10)]) == 1  # another account's id space
        stored = await load_trades(store, 7)
        assert [(t.symbol, t.trade_id) for t in stored] == [("BTC/USDT", "1"), ("BTC/USDT", "2"), ("ETH/USDT", "1"), ("BTC/USDT", "3")]
        assert stored[1].price == Decimal("19565.01") and stored[1].cost == Decimal("19565.01") * Decimal("0.00123")  # the first kept
        deposit = StoredTransfer(kind="deposit", transfer_id="d1", asset="USDT", amount=Decimal("60000"), fee=Decimal(0), status="ok",
                                 ts_ms=5)
        withdrawal = StoredTransfer(kind="withdrawal", transfer_id="d1", asset="ETH", amount=Decimal("0.05"), fee=Decimal("0.005"),
                                    status="ok", ts_ms=6)
        assert await insert_transfers(store, 7, [deposit, withdrawal, deposit]) == 2
        assert await insert_transfers(store, 7, [deposit]) == 0
        assert await load_transfers(store, 7) == [deposit, withdrawal]
        assert await load_transfers(store, 8) == []


async def test_an_import_row_round_trips_its_cursor_and_only_running_ones_are_unfinished(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        assert await latest_import(store, 7) is None
        row = await create_import(store, ImportRow(id=0, account_id=7, user_id=3, state="running", step="balances", cursor={},
                                                   done=0, total=1, error=None, started_at=1, updated_at=1, finished_at=None))
        row.step, row.cursor, row.done, row.total = "trades", {"markets": ["BTC/USDT"], "trades_since": {"BTC/USDT": 123}}, 1, 3
        await save_import(store, row)
        assert await latest_import(store, 7) == row
        assert [r.id for r in await unfinished_imports(store)] == [row.id]
        row.state, row.error = "failed", "binance fetch_my_trades: Invalid symbol."
        await save_import(store, row)
        assert await unfinished_imports(store) == [] and (await latest_import(store, 7)) == row
        newer = await create_import(store, ImportRow(id=0, account_id=7, user_id=None, state="running", step="balances", cursor={},
                                                     done=0, total=1, error=None, started_at=2, updated_at=2, finished_at=None))
        assert newer.id > row.id and (await latest_import(store, 7)) == newer
