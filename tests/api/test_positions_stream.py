"""positions_updated: pushed to the account's readers only (two users and a viewer), and replayed from `since` with nothing missed.

The real in-process bus, notifier and replay (`api.streams`) that /rpc and /ws/positions use;
the position changes are published on the bus as the gateway publishes them.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier
from coinwire.api.streams import AccountStreams
from coinwire.auth.abilities import Principal
from coinwire.bus.memory import MemoryBus
from coinwire.core.accounts import Account
from coinwire.core.errors import InvalidInput
from coinwire.messages import OrderUpdate, OrderView, PositionUpdate, PositionView, account_subject
from coinwire.services.accounts import AccountBook

ALICE = Principal(user_id=1, username="alice", role="trader", plan="free")
BOB = Principal(user_id=2, username="bob", role="trader", plan="free")
VIEWER = Principal(user_id=3, username="vera", role="viewer", plan="free")


def _view(account: int, seq: int, size: str) -> PositionView:
    return PositionView(
        account=account, exchange="demo", symbol="BTC/USDT:USDT", position_side="both", side="long", size=size,
        entry_price="100", mark_price="101", notional="101", unrealised_pnl="1", realised_pnl="0", funding="0", fees="0",
        leverage=5, margin_mode="cross", isolated_margin=None, initial_margin="20.2", maintenance_margin="0.404",
        margin_ratio="0.004", liquidation_price="80.5", wallet_set_id=None, updated_at=seq, seq=seq,
    )


class World:
    """Two users' accounts (1: alice's, viewed by vera; 2: bob's), their position changes numbered per account."""

    def __init__(self) -> None:
        self.bus = MemoryBus(max_log=10_000)
        self.accounts = AccountBook()
        self.accounts.add(Account(id=1, exchange="demo", kind="paper", name="a", owner_id=1, created_at=0))
        self.accounts.add(Account(id=2, exchange="demo", kind="paper", name="b", owner_id=2, created_at=0))
        self.accounts.set_member(1, 3, "view")
        self.notifier = Notifier(self.bus, accounts=self.accounts)
        self.seqs = {1: 0, 2: 0}
        self.streams = AccountStreams(self.bus, self.notifier, lambda account: self.seqs.get(account, 0))

    async def change(self, account: int, size: str = "0.010") -> int:
        seq = self.seqs[account] = self.seqs[account] + 1
        owner = 1 if account == 1 else 2
        subject = account_subject("position", account, "demo", "BTC/USDT:USDT")
        await self.bus.publish(subject, PositionUpdate(_view(account, seq, size), owner, account, seq))
        return seq

    def connect(self, principal: Principal) -> tuple[CallContext, list[dict[str, object]]]:
        got: list[dict[str, object]] = []

        async def send(data: bytes) -> None:
            got.append(json.loads(data))

        ctx = CallContext("rpc", send, principal, push=lambda data: got.append(json.loads(data)))
        ctx.channels = set()
        self.notifier.add(ctx)
        return ctx, got


@pytest.fixture
async def world() -> World:
    w = World()
    await w.bus.start()
    await w.notifier.start()
    return w


def _seqs(got: list[dict[str, object]]) -> list[int]:
    return [m["params"]["seq"] for m in got if m["method"] == "positions_updated"]  # type: ignore[index]


async def test_position_changes_reach_the_accounts_readers_only(world: World) -> None:
    alice, alice_got = world.connect(ALICE)
    bob, bob_got = world.connect(BOB)
    vera, vera_got = world.connect(VIEWER)
    for ctx in (alice, bob, vera):
        await world.notifier.listen(ctx, ["positions_updated"])
    await world.change(1)
    await world.change(2)
    await asyncio.sleep(0)
    assert [m["params"]["account"] for m in alice_got] == [1]  # type: ignore[index]
    assert [m["params"]["account"] for m in bob_got] == [2]  # type: ignore[index]
    assert [m["params"]["account"] for m in vera_got] == [1]  # type: ignore[index]  # the viewer reads alice's, never bob's
    assert alice_got[0]["params"]["liquidation_price"] == "80.5"  # type: ignore[index]


async def test_a_client_that_reconnects_with_since_misses_nothing_and_gets_nothing_twice(world: World) -> None:
    first, first_got = world.connect(ALICE)
    await world.notifier.listen(first, ["positions_updated"])
    for _ in range(5):
        await world.change(1)
        await world.change(2)  # another account's changes never show
    await asyncio.sleep(0)
    seen = _seqs(first_got)
    assert seen == [1, 2, 3, 4, 5]
    world.notifier.remove(first)  # disconnected at seq 3's receipt: the rest is lost on the wire
    last_read = 3
    for _ in range(4):
        await world.change(1)  # missed while away
    again, again_got = world.connect(ALICE)
    hold = world.notifier.hold(again, 1)
    replay_task = asyncio.create_task(world.streams.resume(again, 1, last_read, ["positions_updated"], hold))
    await world.change(1)  # arrives during the replay: held, then released once
    replay = await replay_task
    for _ in range(2):
        await world.change(1)
    await asyncio.sleep(0)
    assert _seqs(again_got) == list(range(last_read + 1, 13))
    assert replay["account"] == 1 and replay["since"] == last_read


async def test_since_past_the_latest_or_on_no_account_channel_is_refused(world: World) -> None:
    await world.change(1)
    ctx, _ = world.connect(BOB)
    with pytest.raises(InvalidInput) as exc:
        await world.streams.resume(ctx, 1, 7, ["positions_updated"])
    assert exc.value.code == "invalid_since"
    with pytest.raises(InvalidInput) as exc:
        await world.streams.resume(ctx, 1, 0, ["ticker"])
    assert exc.value.code == "invalid_params"


def _order(account: int, seq: int, status: str, accepted: bool) -> OrderView:
    created, later = "2026-12-06T10:00:00.000000Z", "2026-12-06T10:00:01.000000Z"
    return OrderView(
        id=seq, created_at=created, wallet_set_id=None, exchange="demo", client_order_id=f"c{seq}", run_id=None, type="limit",
        pair="BTC_USDT:USDT", symbol="BTC/USDT:USDT", size="0.010", side="buy", limit="60000", cancel_after=0, status=status,
        done_reason=None, done_at=None, exchange_at=created, last_updated_at=created if accepted else later, filled_size="0",
        avg_price="0", fee="0", fee_currency="USDT", account=account, seq=seq,
    )


async def test_orders_updated_carries_every_change_and_orders_executed_the_acceptance_live_and_replayed(world: World) -> None:
    alice, got = world.connect(ALICE)
    bob, bob_got = world.connect(BOB)
    for ctx in (alice, bob):
        await world.notifier.listen(ctx, ["orders_updated", "orders_executed"])
    for status, accepted in (("open", True), ("open", False), ("done", False)):
        world.seqs[1] += 1
        seq = world.seqs[1]
        await world.bus.publish("order.1.demo.usdt.btc", OrderUpdate(_order(1, seq, status, accepted), 1, 1, seq))
    await asyncio.sleep(0)
    assert [(m["method"], m["params"]["seq"]) for m in got] == [  # type: ignore[index]
        ("orders_updated", 1), ("orders_executed", 1), ("orders_updated", 2), ("orders_updated", 3)]
    assert bob_got == []  # another user's account: nothing
    again, again_got = world.connect(ALICE)
    await world.streams.resume(again, 1, 0, ["orders_executed", "orders_updated"])
    assert sorted((m["method"], m["params"]["seq"]) for m in again_got) == sorted(  # type: ignore[index]
        [("orders_updated", 1), ("orders_executed", 1), ("orders_updated", 2), ("orders_updated", 3)])
