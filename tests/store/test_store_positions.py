"""The store's perpetual records on SQLite (direct and journalled) and PostgreSQL: positions, settings, hedge
modes and funding payments round-trip exactly, upsert by key, commit with their change set or not at all,
come back in `load_state`, and funding history is scoped to the accounts asked for."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import Conflict
from coinwire.core.instruments import PERPETUAL, Instrument
from coinwire.core.numbers import str_to_atto
from coinwire.core.orders import Fill, OrderType, PositionSide, Side
from coinwire.core.positions import FundingPayment, HedgeMode, MarginMode, Position, PositionSettings
from coinwire.store import ChangeSet
from coinwire.store.codec import POSITIONS, Scale, encode
from tests.store.test_store_contract import CHECKED_AT_COMMIT, T0, Database, database, order  # noqa: F401 - the fixture

PERP = Instrument(exchange="binanceusdm", symbol="BTC/USDT:USDT", base="BTC", quote="USDT", price_decimals=1, size_decimals=3,
                  kind=PERPETUAL, settle="USDT")
HUGE = str_to_atto("98765432109876.123456789012345678")  # far beyond 64 bits as ATTO


def position(id: int = 1, account: int = 7, side: PositionSide = PositionSide.BOTH, **fields: object) -> Position:
    values: dict[str, object] = {
        "id": id, "account_id": account, "exchange": "binanceusdm", "symbol": "BTC/USDT:USDT", "side": side,
        "wallet_set_id": None, "size": -1_234, "entry_cost": HUGE, "leverage": 20, "margin_mode": MarginMode.ISOLATED,
        "isolated_margin": str_to_atto("3.7"), "realised_pnl": -str_to_atto("12.000000000000000001"),
        "funding": str_to_atto("-0.5"), "fees": str_to_atto("0.25"), "mark": 617_376, "opened_at": T0, "updated_at": T0 + 5,
        "seq": 3,
    }
    values.update(fields)
    return Position(**values)  # type: ignore[arg-type]


def payment(id: int, account: int = 7, ts: int = T0) -> FundingPayment:
    return FundingPayment(id=id, account_id=account, exchange="binanceusdm", symbol="BTC/USDT:USDT", side=PositionSide.BOTH,
                          wallet_set_id=None, ts=ts, size=-1_234, rate=10_000, mark=617_376, amount=str_to_atto("0.7618"))


async def test_positions_settings_and_modes_round_trip_and_upsert(database: Database) -> None:  # noqa: F811
    long_leg = position(2, side=PositionSide.LONG, size=5, wallet_set_id=None, margin_mode=MarginMode.CROSS, isolated_margin=0)
    async with database.store() as store:
        changes = ChangeSet(settings=[PositionSettings(account_id=7, exchange="binanceusdm", symbol="BTC/USDT:USDT",
                                                       leverage=20, margin_mode=MarginMode.ISOLATED)],
                            modes=[HedgeMode(account_id=7, exchange="binanceusdm", hedge_mode=True)])
        await store.apply(changes.add_position(position(), PERP).add_position(long_leg, PERP))
        # the next change moves the first position and the settings: the rows are upserted, not added
        await store.apply(ChangeSet(settings=[PositionSettings(account_id=7, exchange="binanceusdm", symbol="BTC/USDT:USDT",
                                                               leverage=5, margin_mode=MarginMode.CROSS)])
                          .add_position(position(size=0, entry_cost=0, seq=9), PERP))
        state = await store.load_state()
    assert sorted(state.positions, key=lambda p: p.id) == [position(size=0, entry_cost=0, seq=9), long_leg]
    assert state.position_settings == [PositionSettings(account_id=7, exchange="binanceusdm", symbol="BTC/USDT:USDT",
                                                        leverage=5, margin_mode=MarginMode.CROSS)]
    assert state.position_modes == [HedgeMode(account_id=7, exchange="binanceusdm", hedge_mode=True)]
    assert state.last_seqs == {7: 9}  # a position's notification counts in its account's sequence


async def test_a_positions_sequence_counts_for_its_account_at_restart(database: Database) -> None:  # noqa: F811
    from coinwire.core.accounts import Account

    async with database.store() as store:
        account = Account(id=7, exchange="binanceusdm", kind="paper", name="p", owner_id=1, created_at=T0)
        changes = ChangeSet(accounts=(account,)).add_order(order(1, account_id=7, seq=4, symbol="BTC/USDT:USDT", wallet_set_id=None), PERP)
        await store.apply(changes.add_position(position(seq=11), PERP))
        state = await store.load_state()
    assert state.last_seqs == {7: 11}  # the position's notification came after the order's


@CHECKED_AT_COMMIT
async def test_a_refused_change_set_leaves_no_position(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        await store.apply(ChangeSet().add_order(order(1, symbol="BTC/USDT:USDT", wallet_set_id=None), PERP))
        bad_fill = Fill(id=1, order_id=999, client_oid="x", exchange="binanceusdm", symbol="BTC/USDT:USDT", side=Side.SELL,
                        order_type=OrderType.MARKET, price=617_376, size=1, notional=1, fee=0, maker=False, ts=T0)
        with pytest.raises(Conflict):
            await store.apply(ChangeSet().add_fill(bad_fill, PERP).add_position(position(), PERP)
                              .add_funding(payment(5), PERP))
        state = await store.load_state()
        assert state.positions == []
        assert await store.funding_history() == []


async def test_funding_history_is_newest_first_and_scoped_to_the_accounts_asked(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        changes = ChangeSet()
        for line_id, account in ((1, 7), (2, 8), (3, 7)):
            changes.add_funding(payment(line_id, account, T0 + line_id), PERP)
        await store.apply(changes)
        assert [p.id for p in await store.funding_history(accounts={7})] == [3, 1]
        assert [p.id for p in await store.funding_history(accounts={8})] == [2]
        assert await store.funding_history(accounts=set()) == []  # a caller who may read no account sees nothing
        assert [p.id for p in await store.funding_history(limit=1, before_id=3)] == [2]
        assert await store.funding_history(symbol="ETH/USDT:USDT") == []
        assert (await store.funding_history(accounts={7}))[0] == payment(3, 7, T0 + 3)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(-10**15, 10**15), money=st.integers(-10**40, 10**40), mark=st.integers(0, 10**12))
def test_the_position_codec_is_exact(size: int, money: int, mark: int) -> None:
    pos = position(size=size, entry_cost=abs(money), realised_pnl=money, funding=-money, fees=abs(money) // 3, mark=mark)
    row = POSITIONS.to_row(pos, Scale.of(PERP))
    assert POSITIONS.from_row(row) == pos


def test_a_spot_change_set_carries_no_perpetual_rows() -> None:
    changes = ChangeSet().add_order(order(1), Scale(2, 5))
    assert changes.positions is None and changes.funding is None  # nothing allocated on the spot order path
    assert set(encode(changes).by_table) == {"orders"}
