"""The `rule_fired` channel's routing and the rule set service's change listeners, over the real store, gateway, owners
and notifier: a firing reaches its owner, the admins and those who may read its scope, and no one else; every committed
change is announced to listeners, a refused one never."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coinwire.api.context import CallContext
from coinwire.api.methods import Api
from coinwire.api.notifier import Notifier
from coinwire.api.ownership import Owners
from coinwire.api.rulesets_routes import RuleFiredPush
from coinwire.auth.abilities import Principal
from coinwire.auth.repository import AuthRepository
from coinwire.bus.memory import MemoryBus
from coinwire.config import load_settings
from coinwire.core.accounts import Account
from coinwire.core.errors import CoinwireError
from coinwire.services.gateway import Gateway
from coinwire.services.rule_sets import RuleSets, firing_view
from coinwire.store import Store
from coinwire.store.rules import RuleSetRow

ADMIN, TOM, TESS, VIC = (Principal(1, "admin", "admin", "pro"), Principal(2, "tom", "trader", "free"),
                         Principal(3, "tess", "trader", "free"), Principal(4, "vic", "viewer", "free"))


class World:
    def __init__(self, api: Api, rule_sets: RuleSets, owners: Owners, bus: MemoryBus) -> None:
        self.api, self.rule_sets, self.owners, self.bus = api, rule_sets, owners, bus
        self.events: list[tuple[str, int, bool]] = []
        self.received: dict[str, list[dict[str, Any]]] = {}

    def connect(self, name: str, principal: Principal, channel: bool = True) -> None:
        got = self.received.setdefault(name, [])

        async def send(data: bytes) -> None:
            got.append(json.loads(data))

        ctx = CallContext("rpc", send, principal, push=lambda data: got.append(json.loads(data)))
        if channel:
            ctx.channels.add("rule_fired")
        self.api.notifier.add(ctx)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    await store.start()
    bus = MemoryBus()
    await bus.start()
    gateway = Gateway(load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": []}), store, bus)
    gateway.accounts.add(Account(id=1, exchange="demo", kind="paper", name="tom's", owner_id=TOM.user_id, created_at=0))
    gateway.accounts.add(Account(id=2, exchange="demo", kind="paper", name="tess's", owner_id=TESS.user_id, created_at=0))
    gateway.accounts.set_member(1, TESS.user_id, "view")
    owners = Owners(AuthRepository(store))
    owners.record("run", "tom-run", TOM)
    rule_sets = RuleSets(store, gateway, owners)
    notifier = Notifier(bus, accounts=gateway.accounts)  # every api process's: it takes `RuleFired` off the bus
    await notifier.start()
    api = Api(gateway, notifier, None, owners=owners, rule_sets=rule_sets)  # type: ignore[arg-type]  # no health here
    made = World(api, rule_sets, owners, bus)
    rule_sets.listen(lambda event, row: made.events.append((event, row.id, row.enabled)))
    try:
        yield made
    finally:
        await notifier.close()
        await bus.close()
        await store.close()


def body(name: str, scope: str, scope_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "scope": scope, "scope_id": scope_id, "mode": "dry_run",
            "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": "10", "trail_pct": "5"}], "actions": [{"kind": "notify"}], **extra}


async def fire(world: World, rule_set_id: int) -> int:
    repo = world.rule_sets.repo
    row = await repo.get(rule_set_id)
    assert row is not None
    firing = await repo.add_firing(row.id, row.owner_id, 5_000_000_000, {"value": "95"}, "dry_run", row.spec["actions"], 1,
                                   status="recorded")
    before = sum(len(got) for got in world.received.values())
    await RuleFiredPush(world.api, world.bus).publish(row, firing_view(firing))  # over the bus, to the notifier
    await asyncio.sleep(0.05)
    return sum(len(got) for got in world.received.values()) - before  # the connections given it


async def test_a_firing_reaches_the_owner_admins_and_readers_of_its_scope_only(world: World) -> None:
    for name, principal in (("tom", TOM), ("tess", TESS), ("vic", VIC), ("admin", ADMIN)):
        world.connect(name, principal)
    world.connect("tom unsubscribed", TOM, channel=False)
    on_account = await world.rule_sets.create(body("acct", "account", "1"), TOM)
    on_run = await world.rule_sets.create(body("run", "run", "tom-run"), TOM)
    on_tess = await world.rule_sets.create(body("hers", "user"), TESS)
    assert await fire(world, on_account["id"]) == 3  # tom (owner), tess (may view account 1), admin; not vic
    assert await fire(world, on_run["id"]) == 2  # tom and admin: tess may not read tom's run
    assert await fire(world, on_tess["id"]) == 2  # tess and admin
    heard = {name: [m["params"]["name"] for m in got] for name, got in world.received.items()}
    assert heard == {"tom": ["acct", "run"], "tess": ["acct", "hers"], "vic": [], "admin": ["acct", "run", "hers"],
                     "tom unsubscribed": []}
    message = world.received["tom"][0]
    assert message["method"] == "rule_fired"
    params = message["params"]
    assert (params["rule_set_id"], params["scope"], params["scope_id"]) == (on_account["id"], "account", "1")
    assert params["firing"]["time"] == 5.0 and params["firing"]["values"] == {"value": "95"}
    assert params["firing"]["actions"] == [{"index": 0, "kind": "notify", "status": "recorded", "detail": {}}]
    world.api.gateway.accounts.set_member(1, TESS.user_id, None)  # a grant taken back: no more of that account's firings
    assert await fire(world, on_account["id"]) == 2


async def test_listeners_hear_every_committed_change_and_no_refused_one(world: World) -> None:
    made = await world.rule_sets.create(body("a", "account", "1"), TOM)
    rid = made["id"]
    for attempt in (lambda: world.rule_sets.create(body("b", "account", "2"), TOM),  # tess's account
                    lambda: world.rule_sets.create(body("a", "user"), TOM),  # the name is taken
                    lambda: world.rule_sets.update(rid, body("a", "account", "1"), TESS),  # not hers
                    lambda: world.rule_sets.update(rid, body("a", "account", "1", mode="live", actions=[{"kind": "close_all"}]),
                                                   TOM),  # a live close_all, not confirmed
                    lambda: world.rule_sets.delete(rid, TESS)):
        with pytest.raises(CoinwireError):
            await attempt()
    assert world.events == [("created", rid, True)]
    await world.rule_sets.update(rid, body("a2", "user"), TOM)
    await world.rule_sets.set_enabled(rid, False, TOM)
    await world.rule_sets.set_enabled(rid, True, TOM)
    await world.rule_sets.delete(rid, TOM)
    assert world.events == [("created", rid, True), ("updated", rid, True), ("disabled", rid, False), ("enabled", rid, True),
                            ("deleted", rid, True)]
    assert await world.rule_sets.repo.get(rid) is None


async def test_a_failing_listener_does_not_undo_the_change(world: World) -> None:
    def broken(event: str, row: RuleSetRow) -> None:
        raise RuntimeError("listener bug")

    world.rule_sets.listen(broken)
    made = await world.rule_sets.create(body("kept", "user"), TOM)
    assert (await world.rule_sets.get(made["id"], TOM))["name"] == "kept"
    assert world.events == [("created", made["id"], True)]


async def test_an_admin_changing_a_users_rule_set_keeps_it_on_that_users_scope(world: World) -> None:
    hook = [{"kind": "webhook", "url": "https://example.test/hook", "secret": "tom-only"}]
    made = await world.rule_sets.create(body("mine", "user", actions=hook), TOM)
    assert made["scope_id"] == str(TOM.user_id) and made["actions"][0]["secret"] == "tom-only"
    seen = await world.rule_sets.get(made["id"], ADMIN)
    assert seen["actions"][0]["secret"] == "set"  # another's secret is not shown, even to an admin
    changed = await world.rule_sets.update(made["id"], body("mine 2", "user", actions=hook), ADMIN)
    assert (changed["owner_id"], changed["scope_id"]) == (TOM.user_id, str(TOM.user_id))
    with pytest.raises(CoinwireError) as refused:
        await world.rule_sets.update(made["id"], body("mine 3", "user", str(ADMIN.user_id)), ADMIN)
    assert refused.value.code == "user_not_found"
    assert (await world.rule_sets.get(made["id"], TOM))["name"] == "mine 2"
