"""The controller on a paper platform (store, gateway, portfolio tracker, notifications: all coinwire's own, running):
a portfolio trailing stop fires and leaves the account flat in its quote, selling in slices of the visible bids; a
dry run records and notifies without trading; two users' rule sets never touch each other's accounts, nor a viewer's
the account it may only view; a webhook action is signed and retried against a real local HTTP server; a market with
no bid is retried and the detail says what was sold; a position trailing stop follows one market's mid; a wallet set's
close_all sells the set's funds only; a close_all to another currency sells into it and spends the quote on it; a rearmed
set firing again while its first close_all waits sells nothing twice.

The demo feed fills the books once and is stopped; from then on the test sets each book, so the portfolio values are
known: an account funded with 10,000 USDT, 1 BTC and 10 ETH is worth 10,000 + BTC + 10 * ETH.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from coinwire.app import Platform
from coinwire.auth.preferences import PreferencesRepository
from coinwire.config import load_settings
from coinwire.core.accounts import Account
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.orders import OrderRequest, OrderType, Side
from coinwire.core.rules import parse_rule_set, rule_set_dict
from coinwire.messages import BookSnapshot
from coinwire.services.controller import Controller
from coinwire.services.controller_actions import ActionRunner
from coinwire.store.rules import RuleSetRow, RuleStore
from tests.notify_servers import WebhookReceiver

T = TypeVar("T")
ALICE, BOB, VIC = 601, 602, 603
SECRET = "whsec-rules-0123456789"
FUNDS = {"USDT": "10000", "BTC": "1", "ETH": "10"}
DEEP = "1000"


@asynccontextmanager
async def platform(tmp_path: Path, symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")) -> AsyncIterator[Platform]:
    """A platform whose demo books were filled once by the feed, then only by the test; the tracker samples every 50 ms."""
    settings = load_settings(env={}, overrides={
        "data_dir": str(tmp_path / "data"), "portfolio_sample_interval": 0.05,
        "exchanges": [{"name": "demo", "tick_interval": 0.05, "symbols": list(symbols), "paper_funds": FUNDS}],
        "notifications": {"base_delay": 0.05, "max_delay": 0.2, "poll_interval": 0.05}})  # fmt: skip
    p = Platform(settings)
    await p.start()
    try:
        await wait_for(lambda: p.gateway.venues["demo"].status == "ready", 30)
        for feed in p.feeds:
            await feed.close()
        await asyncio.sleep(0.1)
        yield p
    finally:
        await p.stop()


async def tracked_alice(p: Platform) -> Account:
    """Alice's demo account, the books at 30,000, once the tracker values it (rules read its samples)."""
    alice = await p.gateway.account_for(ALICE, "demo")
    await prices(p, "30000")
    await wait_for(lambda: p.portfolio is not None and ("account", str(alice.id)) in p.portfolio.portfolios)
    return alice


async def sell_btc(p: Platform, size: str) -> None:
    """Alice sells `size` BTC at market."""
    spot = p.gateway.venues["demo"].markets["BTC/USDT"].instrument
    await p.gateway.make_order(OrderRequest(
        exchange="demo", instrument=spot, side=Side.SELL, type=OrderType.MARKET, size=spot.parse_size(size, "size"),
        limit=0, cancel_after=0, client_oid=f"sell-{size}", wallet_set_id=None, run_id=None, owner_id=ALICE))  # fmt: skip


async def wait_for(predicate: Callable[[], Any], seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def stored(read: Callable[[], Awaitable[T]], predicate: Callable[[T], bool], seconds: float = 15) -> T:
    """What `read` returns once `predicate` holds for it: waits for a stored state rather than the memory ahead of it."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate(value := await read()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"stored state not reached in time; last read: {value!r}")
        await asyncio.sleep(0.02)
    return value


async def set_book(p: Platform, symbol: str, bids: list[tuple[str, str]], ask: str) -> None:
    """Replace a book: these bids (price, size), one deep ask."""
    market = p.gateway.venues["demo"].markets[symbol]
    inst = market.instrument
    message = BookSnapshot("demo", symbol, p.gateway.now(), market.sync.last_update_id + 1,
                           [(inst.parse_price(px, "price"), inst.parse_size(sz, "size")) for px, sz in bids],
                           [(inst.parse_price(ask, "price"), inst.parse_size(DEEP, "size"))])  # fmt: skip
    await p.gateway.apply_market(message)


async def prices(p: Platform, btc: str, eth: str = "2000", btc_bids: list[tuple[str, str]] | None = None) -> None:
    step = Decimal("0.01")
    await set_book(p, "BTC/USDT", btc_bids or [(btc, DEEP)], str(Decimal(btc) + step))
    await set_book(p, "ETH/USDT", [(eth, DEEP)], str(Decimal(eth) + step))


def balances(p: Platform, account_id: int) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for w in p.gateway.ledger.all_wallets():
        if w.account_id == account_id:
            out[w.currency] = out.get(w.currency, Decimal(0)) + Decimal(w.balance).scaleb(-ATTO_DECIMALS)
    return out


def rule_set(name: str, scope: str, scope_id: str, rules: list[dict[str, Any]], actions: list[dict[str, Any]],
             mode: str = "live") -> dict[str, Any]:
    return rule_set_dict(parse_rule_set({"name": name, "scope": scope, "scope_id": scope_id, "mode": mode, "rules": rules,
                                         "actions": actions}))


def finished(view: dict[str, Any]) -> bool:
    """A pushed firing whose every action has finished."""
    return all(a["status"] in ("done", "failed", "recorded") for a in view["actions"])


TRAILING = {"kind": "portfolio_trailing_stop", "arm_pct": "10", "trail_pct": "5"}


async def add(rules: RuleStore, owner: int, spec: dict[str, Any]) -> RuleSetRow:
    return await rules.add(RuleSetRow(owner_id=owner, name=spec["name"], scope=spec["scope"], scope_id=spec["scope_id"],
                                      spec=spec, enabled=True, created_ns=1, updated_ns=1))


@asynccontextmanager
async def controller(p: Platform, **kw: Any) -> AsyncIterator[Controller]:
    assert p.portfolio is not None
    prefs = PreferencesRepository(p.store)

    async def zone_of(user_id: int) -> str:
        return str((await prefs.get(user_id))["time_zone"])

    c = Controller(None, RuleStore(p.store), p.portfolio, p.gateway, None, p.notifications.notify, p.analyser,
                   zone_of=zone_of, retry_base=0.05, retry_max=0.2, **kw)
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def test_a_trailing_stop_fires_and_leaves_the_account_flat_a_dry_run_only_tells_a_viewer_touches_nothing(
        tmp_path: Path) -> None:
    hook = WebhookReceiver(SECRET).start()
    try:
        async with platform(tmp_path) as p:
            g = p.gateway
            alice, bob = await g.account_for(ALICE, "demo"), await g.account_for(BOB, "demo")
            g.accounts.set_member(alice.id, VIC, "view")  # vic may see alice's account, not trade it
            for user in (ALICE, BOB):
                await p.notifications.put_settings(user, {"channels": {"webhook": {"url": hook.url, "secret": SECRET}},
                                                          "events": {"rule_fired": ["webhook"]}})
            await prices(p, "30000")  # each account: 10,000 + 30,000 + 20,000 = 60,000
            await wait_for(lambda: all(p.portfolio is not None and ("account", str(a.id)) in p.portfolio.portfolios
                                       and p.portfolio.portfolios[("account", str(a.id))].builder is not None
                                       for a in (alice, bob)))
            store = RuleStore(p.store)
            mine = await add(store, ALICE, rule_set("stop", "account", str(alice.id), [TRAILING],
                                                    [{"kind": "close_all"}, {"kind": "notify", "message": "all sold"}]))
            dry = await add(store, BOB, rule_set("stop", "account", str(bob.id), [TRAILING], [{"kind": "close_all"}],
                                                 mode="dry_run"))
            viewer = await add(store, VIC, rule_set("grab", "account", str(alice.id),
                                                    [{"kind": "portfolio_take_profit", "pct": "5"}], [{"kind": "close_all"}]))
            pushed: list[dict[str, Any]] = []
            async with controller(p, runner=ActionRunner(g, None, p.notifications.notify, depth_levels=2)) as c:
                c.listeners.append(lambda row, view: pushed.append({**view, "owner": row.owner_id}))
                await wait_for(lambda: all(c.live[r.id].state.rules[0].reference is not None for r in (mine, dry, viewer)))
                await prices(p, "38000")  # 68,000: +13.3%, the stops are armed; the viewer's take-profit fires
                await wait_for(lambda: any(f["rule_set_id"] == viewer.id and finished(f) for f in pushed))
                assert balances(p, alice.id)["BTC"] == 1 and balances(p, alice.id)["ETH"] == 10  # vic cannot trade it
                [vf] = await store.firings(viewer.id)
                assert vf.commands[0].status == "done" and vf.commands[0].detail["sold"] == {}
                assert not any(f["rule_set_id"] in (mine.id, dry.id) for f in pushed)
                # 64,700 > 64,600 (5% under the peak of 68,000): not yet
                await prices(p, "34700")
                await asyncio.sleep(0.3)
                assert not any(f["rule_set_id"] in (mine.id, dry.id) for f in pushed)
                # 64,000 <= 64,600: fires; the BTC bids are thin (0.3 a level), so the sell goes in slices
                await prices(p, "34000", btc_bids=[("34000", "0.3"), ("33990", "0.3"), ("33980", "0.3"), ("33970", DEEP)])
                await wait_for(lambda: any(f["rule_set_id"] == mine.id and finished(f) for f in pushed))
                await wait_for(lambda: any(f["rule_set_id"] == dry.id for f in pushed))

                held = balances(p, alice.id)
                assert held.get("BTC", 0) == 0 and held.get("ETH", 0) == 0
                [firing] = await store.firings(mine.id)
                # values at the mids (each ask is a cent above its bid): 10,000 + 34,000.005 + 10 * 2,000.005
                assert Decimal(firing.values["value"]) == Decimal("64000.055")
                assert Decimal(firing.values["peak"]) == Decimal("68000.055")
                assert Decimal(firing.values["trigger"]) == Decimal("68000.055") * Decimal("0.95")
                close, note = firing.commands
                assert (close.status, note.status) == ("done", "done")
                orders = close.detail["orders"]
                btc_orders = [o for o in orders if o["market"].endswith(":BTC/USDT")]
                assert [Decimal(o["filled"]) for o in btc_orders] == [Decimal("0.6"), Decimal("0.4")]  # two levels a slice
                assert [o["client_oid"] for o in orders] == [f"cw-r{firing.id}-0-{n}" for n in range(len(orders))]
                fills = [f for o in orders for f in await g.order_fills(g.existing_order(o["client_oid"], ALICE).id)]  # type: ignore[union-attr]
                proceeds = sum(Decimal(f.notional - f.fee).scaleb(-ATTO_DECIMALS) for f in fills)
                assert held["USDT"] == Decimal(10000) + proceeds  # every coin went to USDT, nothing else moved
                assert Decimal(34000 * 3 * Decimal("0.3") + Decimal("0.1") * 33970 + 10 * 2000) > proceeds > Decimal(50000)

                # bob's dry run: recorded, told, nothing traded
                [recorded] = await store.firings(dry.id)
                assert recorded.mode == "dry_run" and [cmd.status for cmd in recorded.commands] == ["recorded"]
                assert balances(p, bob.id) == {"USDT": Decimal(10000), "BTC": Decimal(1), "ETH": Decimal(10)}
                assert not await g.recent_orders(include_open=True, limit=10, accounts=[bob.id])

                # the notifications: alice's `notify` action, bob's dry-run notice; signed webhooks, one each
                await wait_for(lambda: len([r for r in hook.delivered() if r["json"].get("rule_set_id") in (mine.id, dry.id)]) >= 2)
                told = {r["json"]["rule_set_id"]: r for r in hook.delivered()}
                assert told[mine.id]["verified"] and told[dry.id]["verified"]
                assert told[mine.id]["headers"]["x-coinwire-event"] == "rule_fired"
                assert told[dry.id]["json"]["mode"] == "dry_run"

                # once: no second firing while the value keeps falling
                await prices(p, "20000")
                await asyncio.sleep(0.3)
                assert len(await store.firings(mine.id)) == 1 and len(await store.firings(dry.id)) == 1
                assert c.live[mine.id].state.done
    finally:
        hook.stop()


async def test_a_market_without_bids_is_retried_and_a_signed_webhook_is_delivered_after_failures(tmp_path: Path) -> None:
    hook = WebhookReceiver(SECRET, fail_first=2).start()
    try:
        async with platform(tmp_path) as p:
            alice = await tracked_alice(p)
            store = RuleStore(p.store)
            row = await add(store, ALICE, rule_set("floor", "account", str(alice.id),
                                                   [{"kind": "portfolio_stop", "value": "59500"}],
                                                   [{"kind": "close_all"}, {"kind": "webhook", "url": hook.url, "secret": SECRET}]))
            async with controller(p) as c:
                await wait_for(lambda: row.id in c.live and c.live[row.id].state.rules[0].reference is not None)
                # ETH has no bid at all: BTC sells, ETH waits; the webhook (the next command) waits for it
                await set_book(p, "ETH/USDT", [], "2000.01")
                await set_book(p, "BTC/USDT", [("29000", DEEP)], "29000.01")  # 10,000 + 29,000 + 20,000 (ETH's last price)
                await wait_for(lambda: balances(p, alice.id).get("BTC", 1) == 0)
                await asyncio.sleep(0.3)
                [firing] = await store.firings(row.id)
                close, call = firing.commands
                assert close.status == "pending" and close.attempts >= 2 and call.status == "pending" and not hook.requests
                assert close.detail["left"] == {f"{alice.id}:demo:ETH/USDT": "10"}
                assert Decimal(close.detail["sold"][f"{alice.id}:demo:BTC/USDT"]) == 1
                await set_book(p, "ETH/USDT", [("1990", DEEP)], "2000.01")  # bids again: the retry sells it
                await wait_for(lambda: any(r["answered"] == 200 for r in hook.requests))
                await wait_for(lambda: c.commands == [])
                [firing] = await store.firings(row.id)
                close, call = firing.commands
                assert close.status == "done" and call.status == "done" and call.attempts == 3
                assert balances(p, alice.id).get("ETH", 0) == 0
                assert [r["answered"] for r in hook.requests] == [500, 500, 200] and all(r["verified"] for r in hook.requests)
                body = json.loads(hook.requests[-1]["body"])
                assert body["rule_set_id"] == row.id and Decimal(body["values"]["value"]) <= 59500
                assert hook.requests[-1]["headers"]["x-coinwire-delivery"] == f"{firing.id}:1"
    finally:
        hook.stop()


async def test_a_user_scope_closes_every_own_account_and_no_one_elses(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        g = p.gateway
        first = await g.account_for(ALICE, "demo")
        second = await g.open_account(ALICE, "demo", "paper", "second")
        other = await g.account_for(BOB, "demo")
        await prices(p, "30000")
        await wait_for(lambda: p.portfolio is not None and ("user", str(ALICE)) in p.portfolio.portfolios)
        store = RuleStore(p.store)
        row = await add(store, ALICE, rule_set("all", "user", str(ALICE), [{"kind": "portfolio_stop", "pct": "1"}],
                                               [{"kind": "close_all"}]))
        async with controller(p) as c:
            await wait_for(lambda: c.live[row.id].state.rules[0].reference is not None)
            await prices(p, "28000")
            await wait_for(lambda: c.firings == 1 and c.commands == [])
            for account in (first, second):
                held = balances(p, account.id)
                assert held.get("BTC", 0) == 0 and held.get("ETH", 0) == 0 and held["USDT"] > 10000
            assert balances(p, other.id) == {"USDT": Decimal(10000), "BTC": Decimal(1), "ETH": Decimal(10)}
            [firing] = await store.firings(row.id)
            markets = {o["market"].split(":")[0] for o in firing.commands[0].detail["orders"]}
            assert markets == {str(first.id), str(second.id)}  # the owner's two accounts, sold by market sells
            for o in firing.commands[0].detail["orders"]:
                order = g.existing_order(o["client_oid"], ALICE)
                assert order is not None and order.side is Side.SELL and order.account_id in (first.id, second.id)


async def test_cancel_orders_frees_the_held_coins_then_close_all_sells_them_and_closes_the_perpetual(tmp_path: Path) -> None:
    """An open limit sell holds 0.5 BTC (close_all sells only what is available): `cancel_orders` first, then
    `close_all` sells all of it and closes the account's perpetual long reduce-only."""
    async with platform(tmp_path, ("BTC/USDT", "ETH/USDT", "BTC/USDT:USDT")) as p:
        g = p.gateway
        alice = await g.account_for(ALICE, "demo")
        await prices(p, "30000")
        perp = g.venues["demo"].markets["BTC/USDT:USDT"].instrument
        spot = g.venues["demo"].markets["BTC/USDT"].instrument
        await g.make_order(OrderRequest(
            exchange="demo", instrument=perp, side=Side.BUY, type=OrderType.MARKET, size=perp.parse_size("0.01", "size"),
            limit=0, cancel_after=0, client_oid="long", wallet_set_id=None, run_id=None, owner_id=ALICE))  # fmt: skip
        resting = await g.make_order(OrderRequest(
            exchange="demo", instrument=spot, side=Side.SELL, type=OrderType.LIMIT, size=spot.parse_size("0.5", "size"),
            limit=spot.parse_price("99999", "price"), cancel_after=0, client_oid="far", wallet_set_id=None, run_id=None,
            owner_id=ALICE))  # fmt: skip
        assert resting.status == "open" and [p.size for p in g.positions(accounts=[alice.id])] == ["0.01"]
        await prices(p, "30001")
        await wait_for(lambda: p.portfolio is not None and ("account", str(alice.id)) in p.portfolio.portfolios)
        store = RuleStore(p.store)
        row = await add(store, ALICE, rule_set("out", "account", str(alice.id), [{"kind": "portfolio_stop", "value": "1000000"}],
                                               [{"kind": "cancel_orders"}, {"kind": "close_all"}]))
        async with controller(p) as c:
            await wait_for(lambda: c.firings == 1 and c.commands == [])
        [firing] = await store.firings(row.id)
        cancel, close = firing.commands
        assert (cancel.status, cancel.detail["cancelled"]) == ("done", [int(resting.id)])
        assert close.status == "done" and Decimal(close.detail["sold"][f"{alice.id}:demo:BTC/USDT"]) == 1
        [closed] = close.detail["closed"]
        assert (closed["symbol"], Decimal(closed["size"])) == ("BTC/USDT:USDT", Decimal("0.01"))
        assert g.positions(accounts=[alice.id]) == [] and g.open_orders(accounts=[alice.id]) == []
        held = balances(p, alice.id)
        assert held.get("BTC", 0) == 0 and held.get("ETH", 0) == 0


async def test_an_indicator_rule_on_a_balance_fires_through_the_analyser(tmp_path: Path) -> None:
    """`balance:<account>:BTC` `value` below 0.5: the analyser follows the balance; a sale of 0.6 BTC makes it hold."""
    async with platform(tmp_path) as p:
        alice = await tracked_alice(p)
        store = RuleStore(p.store)
        rule = {"kind": "indicator", "series": f"balance:{alice.id}:BTC", "indicator": "value", "op": "below", "threshold": "0.5"}
        row = await add(store, ALICE, rule_set("low btc", "account", str(alice.id), [rule], [{"kind": "notify"}]))
        async with controller(p) as c:
            key = c.live[row.id].keys[0]
            await wait_for(lambda: p.analyser.latest(key) == 1.0)
            await asyncio.sleep(0.3)
            assert c.firings == 0  # 1 BTC: not below 0.5
            await sell_btc(p, "0.6")
            await prices(p, "30002")  # a market change: the next tracker pass sees the new balance
            await wait_for(lambda: c.firings == 1 and c.commands == [])
        [firing] = await store.firings(row.id)
        assert firing.commands[0].status == "done" and firing.values["indicator"] == key
        assert Decimal(firing.values["indicator_value"]) == Decimal("0.4")


async def test_an_indicator_rule_against_another_output_has_that_output_computed_too(tmp_path: Path) -> None:
    """`value` below `other` (the same balance's SMA 2): the controller asks the analyser for both keys, so the rule
    holds once the sale drops the balance under its own average; with `other` only read, nothing would compute it."""
    async with platform(tmp_path) as p:
        alice = await tracked_alice(p)
        store = RuleStore(p.store)
        other = f"balance.{alice.id}.BTC:sma(2)"
        rule = {"kind": "indicator", "series": f"balance:{alice.id}:BTC", "indicator": "value", "op": "below", "other": other}
        row = await add(store, ALICE, rule_set("under its average", "account", str(alice.id), [rule], [{"kind": "notify"}]))
        async with controller(p) as c:
            assert other in c.live[row.id].keys
            await wait_for(lambda: p.analyser.latest(c.live[row.id].keys[0]) == 1.0)
            await sell_btc(p, "0.6")
            await prices(p, "30002")
            await wait_for(lambda: p.analyser.latest(other) == 0.7 and c.firings == 1 and c.commands == [])
        [firing] = await store.firings(row.id)
        assert Decimal(firing.values["indicator_value"]) == Decimal("0.4")


async def test_a_close_all_waits_while_the_exchange_is_not_ready_and_finishes_once_it_is(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        g = p.gateway
        alice = await tracked_alice(p)
        venue = g.venues["demo"]
        await g.set_status(venue, "degraded")  # orders refused: exchange_not_ready
        store = RuleStore(p.store)
        row = await add(store, ALICE, rule_set("out", "account", str(alice.id), [{"kind": "portfolio_stop", "value": "1000000"}],
                                               [{"kind": "close_all"}]))
        async with controller(p) as c:
            # the journal, not memory: an attempt counts itself before its `running` row is stored
            [firing] = await stored(lambda: store.firings(row.id), lambda fs: len(fs) == 1 and fs[0].commands[0].attempts >= 3
                                    and fs[0].commands[0].status == "pending")
            assert firing.commands[0].detail["error"] == "exchange_not_ready"
            assert balances(p, alice.id)["BTC"] == 1  # nothing sold while it was down
            await g.set_status(venue, "ready")
            await wait_for(lambda: c.commands == [])
        [firing] = await store.firings(row.id)
        assert firing.commands[0].status == "done" and firing.commands[0].attempts >= 4
        assert balances(p, alice.id).get("BTC", 0) == 0 and balances(p, alice.id).get("ETH", 0) == 0


def set_balances(p: Platform, account_id: int, wallet_set_id: int | None) -> dict[str, Decimal]:
    """An account's balances in one partition: unallocated (None) or one wallet set's."""
    out: dict[str, Decimal] = {}
    for w in p.gateway.ledger.all_wallets():
        if w.account_id == account_id and w.wallet_set_id == wallet_set_id and w.balance:
            out[w.currency] = out.get(w.currency, Decimal(0)) + Decimal(w.balance).scaleb(-ATTO_DECIMALS)
    return out


async def test_a_position_trailing_stop_follows_the_markets_mid_arms_then_fires_and_its_action_runs(tmp_path: Path) -> None:
    """A trailing stop on BTC/USDT's mid (30,000.005 the reference): the portfolio barely moves (ETH falls as BTC rises),
    so only the market's own price arms it (+10%) and fires it (5% under the peak); its close_all then sells."""
    async with platform(tmp_path) as p:
        alice = await tracked_alice(p)
        store = RuleStore(p.store)
        rule = {"kind": "position_trailing_stop", "symbol": "BTC/USDT", "arm_pct": "10", "trail_pct": "5"}
        row = await add(store, ALICE, rule_set("btc stop", "account", str(alice.id), [rule], [{"kind": "close_all"}]))
        async with controller(p) as c:
            state = lambda: c.live[row.id].state.rules[0]  # noqa: E731
            await wait_for(lambda: state().reference is not None)
            assert state().reference == Decimal("30000.005")
            await prices(p, "32900", eth="1700")  # +9.67%: not armed (the portfolio: 59,900)
            await wait_for(lambda: state().last == Decimal("32900.005"))
            assert not state().armed
            await prices(p, "33100", eth="1700")  # +10.33%: armed at a peak of 33,100.005; the portfolio is worth 60,100
            await wait_for(lambda: state().armed)
            assert state().peak == Decimal("33100.005")
            await prices(p, "31500", eth="1700")  # above the trigger 31,445.00475: holds back
            await wait_for(lambda: state().last == Decimal("31500.005"))
            await asyncio.sleep(0.2)
            assert c.firings == 0
            await prices(p, "31400", eth="1700")  # at or under the trigger: fires, and the close_all sells
            await wait_for(lambda: c.firings == 1 and c.commands == [])
        [firing] = await store.firings(row.id)
        assert firing.values["symbol"] == "BTC/USDT" and Decimal(firing.values["price"]) == Decimal("31400.005")
        assert Decimal(firing.values["reference"]) == Decimal("30000.005")
        assert Decimal(firing.values["peak"]) == Decimal("33100.005")
        assert Decimal(firing.values["trigger"]) == Decimal("33100.005") * Decimal("0.95")
        assert Decimal(firing.values["value"]) < Decimal(60000)  # the portfolio fell, never rose 10%: the market's stop fired
        [close] = firing.commands
        assert close.status == "done" and Decimal(close.detail["sold"][f"{alice.id}:demo:BTC/USDT"]) == 1
        held = balances(p, alice.id)
        assert held.get("BTC", 0) == 0 and held.get("ETH", 0) == 0 and held["USDT"] > 10000


async def test_a_wallet_set_scope_closes_only_the_sets_funds_and_leaves_the_rest_of_the_account(tmp_path: Path) -> None:
    async with platform(tmp_path) as p:
        g = p.gateway
        alice = await g.account_for(ALICE, "demo")
        ws = await g.create_wallet_set(run_id=None, description="a sleeve", owner_id=ALICE, allocations=[
            ("demo", "USDT", 1_000 * 10**18), ("demo", "BTC", 4 * 10**17), ("demo", "ETH", 3 * 10**18)])  # fmt: skip
        await prices(p, "30000")
        await wait_for(lambda: p.portfolio is not None and ("wallet_set", str(ws.id)) in p.portfolio.portfolios)
        assert set_balances(p, alice.id, ws.id) == {"USDT": 1000, "BTC": Decimal("0.4"), "ETH": 3}
        outside = set_balances(p, alice.id, None)
        assert outside == {"USDT": 9000, "BTC": Decimal("0.6"), "ETH": 7}
        store = RuleStore(p.store)
        row = await add(store, ALICE, rule_set("sleeve", "wallet_set", str(ws.id), [{"kind": "portfolio_stop", "pct": "1"}],
                                               [{"kind": "close_all"}]))
        async with controller(p) as c:
            await wait_for(lambda: c.live[row.id].state.rules[0].reference is not None)
            await prices(p, "28000")  # the set: 1,000 + 0.4 * 28,000 + 3 * 2,000 = 18,200, down from 19,000
            await wait_for(lambda: c.firings == 1 and c.commands == [])
        [firing] = await store.firings(row.id)
        [close] = firing.commands
        assert close.status == "done"
        assert {k: Decimal(v) for k, v in close.detail["sold"].items()} == {
            f"{alice.id}/set{ws.id}:demo:BTC/USDT": Decimal("0.4"), f"{alice.id}/set{ws.id}:demo:ETH/USDT": Decimal(3)}
        in_set = set_balances(p, alice.id, ws.id)
        assert set(in_set) == {"USDT"} and in_set["USDT"] > 1000 + Decimal("0.4") * 27000 + 3 * 1900
        assert set_balances(p, alice.id, None) == outside  # the rest of the account: not one unit moved
        for o in close.detail["orders"]:
            order = g.existing_order(o["client_oid"], ALICE)
            assert order is not None and order.side is Side.SELL and order.wallet_set_id == ws.id


async def test_a_rearmed_firing_while_the_first_close_all_is_pending_never_sells_a_holding_twice(tmp_path: Path) -> None:
    """`rearm` (cooldown 1h, on a test clock). ETH has no bid when the set fires: its close_all sells BTC and waits for
    ETH. An hour later (the clock moved) it fires again: a second firing, journaled with its own close_all and notify,
    finds no BTC left and waits for ETH too. Once ETH has bids it is sold, by one of them. Each holding is sold exactly
    once over both firings, every order placed is one a journal names, and both firings are stored with each command
    `done` once finished, its detail saying what it sold (docs/RULES.md: a firing is one command per action)."""
    offset = [0]

    def clock() -> int:
        return time.time_ns() + offset[0]

    async with platform(tmp_path) as p:
        g = p.gateway
        alice = await tracked_alice(p)
        await set_book(p, "ETH/USDT", [], "2000.01")
        store = RuleStore(p.store)
        spec = rule_set("out", "account", str(alice.id), [{"kind": "portfolio_stop", "value": "1000000"}],
                        [{"kind": "close_all"}, {"kind": "notify", "message": "closed"}])
        spec.update(after="rearm", cooldown="1h")
        row = await add(store, ALICE, rule_set_dict(parse_rule_set(spec)))
        async with controller(p, clock=clock) as c:
            await wait_for(lambda: balances(p, alice.id).get("BTC", 1) == 0)
            await stored(lambda: store.firings(row.id), lambda fs: len(fs) == 1 and fs[0].commands[0].attempts >= 2
                         and fs[0].commands[0].detail.get("left") == {f"{alice.id}:demo:ETH/USDT": "10"})
            await set_book(p, "BTC/USDT", [("30001", DEEP)], "30001.01")  # a sample within the cooldown: no firing
            await asyncio.sleep(0.3)
            assert c.firings == 1
            offset[0] = 3601 * 10**9
            await set_book(p, "BTC/USDT", [("30002", DEEP)], "30002.01")  # after the cooldown: a new reference, holding
            await wait_for(lambda: c.firings == 2)
            firings = await stored(lambda: store.firings(row.id), lambda fs: len(fs) == 2 and all(
                f.commands[0].attempts >= 1 and f.commands[0].status == "pending" for f in fs))
            second = max(firings, key=lambda f: f.id)
            assert second.commands[0].detail["left"] == {f"{alice.id}:demo:ETH/USDT": "10"}
            assert second.commands[0].detail["sold"] == {} and second.commands[1].status == "pending"
            await set_book(p, "ETH/USDT", [("1990", DEEP)], "2000.01")  # bids: the retries sell it, once
            await wait_for(lambda: c.commands == [])
            assert c.firings == 2
        firings = await store.firings(row.id)
        assert len(firings) == 2
        sold: dict[str, Decimal] = {}
        oids: list[str] = []
        for firing in firings:
            close, note = firing.commands
            assert (close.kind, close.status, note.kind, note.status) == ("close_all", "done", "notify", "done")
            assert close.detail["left"] == {}
            for market, size in close.detail["sold"].items():
                sold[market] = sold.get(market, Decimal(0)) + Decimal(size)
            oids += [o["client_oid"] for o in close.detail["orders"]]
        assert sold == {f"{alice.id}:demo:BTC/USDT": 1, f"{alice.id}:demo:ETH/USDT": 10}  # once each, over both firings
        assert len(set(oids)) == len(oids)
        placed = await g.recent_orders(include_open=True, limit=50, accounts=[alice.id])
        assert sorted(o.client_order_id for o in placed) == sorted(oids)  # no order beyond those the journals name
        held = balances(p, alice.id)
        assert held.get("BTC", 0) == 0 and held.get("ETH", 0) == 0


async def test_a_close_all_to_another_currency_sells_into_it_and_spends_the_quote_on_it(tmp_path: Path) -> None:
    """`currency = "ETH"` with a BTC/ETH market: BTC is sold into ETH on BTC/ETH (not into USDT, the quote most markets
    use), ETH (the target) is kept, and the USDT is spent on ETH with market buys on ETH/USDT, as a backtest does
    (tests/engine/test_rules_backtest.py::test_close_all_to_another_currency_sells_to_it_and_spends_the_quote_on_it);
    the ETH asks are thin, so the buys go in slices of the visible depth (two levels here)."""
    async with platform(tmp_path, ("BTC/USDT", "ETH/USDT", "BTC/ETH")) as p:
        g = p.gateway
        alice = await g.account_for(ALICE, "demo")
        await prices(p, "30000")
        await set_book(p, "BTC/ETH", [("15", DEEP)], "15.01")
        market = g.venues["demo"].markets["ETH/USDT"]
        inst = market.instrument
        await g.apply_market(BookSnapshot("demo", "ETH/USDT", g.now(), market.sync.last_update_id + 1,
                                          [(inst.parse_price("1999", "price"), inst.parse_size(DEEP, "size"))],
                                          [(inst.parse_price(px, "price"), inst.parse_size(sz, "size"))
                                           for px, sz in (("2000", "1"), ("2001", "1"), ("2002", "1"), ("2003", DEEP))]))
        await wait_for(lambda: p.portfolio is not None and ("account", str(alice.id)) in p.portfolio.portfolios)
        store = RuleStore(p.store)
        row = await add(store, ALICE, rule_set("to eth", "account", str(alice.id), [{"kind": "portfolio_stop", "value": "1000000"}],
                                               [{"kind": "close_all", "currency": "ETH"}]))
        async with controller(p, runner=ActionRunner(g, None, p.notifications.notify, depth_levels=2)) as c:
            await wait_for(lambda: c.firings == 1 and c.commands == [])
        [firing] = await store.firings(row.id)
        [close] = firing.commands
        assert close.status == "done" and close.detail["left"] == {}
        assert {k: Decimal(v) for k, v in close.detail["sold"].items()} == {f"{alice.id}:demo:BTC/ETH": 1}
        buys = [o for o in close.detail["orders"] if o.get("side") == "buy"]
        assert {o["market"] for o in buys} == {f"{alice.id}:demo:ETH/USDT"}
        # two levels a slice: 1 + 1 ETH at 2,000 and 2,001 (4,005.001 USDT with fees), then with the 5,994.999 left
        # 1 at 2,002 and 1.9905 at 2,003 (the most whose cost and 0.1% fee fit); the 0.04 USDT left is dust
        assert [Decimal(o["filled"]) for o in buys] == [Decimal(2), Decimal("2.9905")]
        bought = Decimal(close.detail["bought"][f"{alice.id}:demo:ETH/USDT"])
        assert bought == sum(Decimal(o["filled"]) for o in buys)
        held = balances(p, alice.id)
        assert held.get("BTC", 0) == 0 and held.get("USDT", 0) < 5  # what is left is below the market's smallest order
        fills = [f for o in close.detail["orders"] for f in await g.order_fills(g.existing_order(o["client_oid"], ALICE).id)]  # type: ignore[union-attr]
        assert held["ETH"] == Decimal(10) + bought + Decimal(15) * Decimal("0.999")  # the BTC: 15 ETH less the 0.1% fee
        assert Decimal(10000) - held["USDT"] == sum(Decimal(f.notional + f.fee).scaleb(-ATTO_DECIMALS) for f in fills
                                                   if f.side is Side.BUY)
        assert close.detail["dust"] == {f"{alice.id}:demo:ETH/USDT": str(held["USDT"])}
