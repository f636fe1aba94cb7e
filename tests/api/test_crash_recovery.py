"""SIGKILL the server in the middle of two traders' order storm, on SQLite and on PostgreSQL.

Two traders, each with their own paper account on two paper exchanges and a wallet set on one
of them, place, cancel and trade from all four accounts (some orders name the account, some
their wallet set, some neither) and now and then try the other trader's account, wallet set or
order, which must be refused. Then the server is killed. The store as the kill left it (read as
the next start reads it: `Store.load_state` then `Ledger.restore`) must show, per account:
the books balance (`Ledger.check`: total = allocated + unallocated; the balances a start restores
from the store's checkpoint and the lines after it equal the sums of every stored line);
every acknowledged order present exactly once, in the account its answer named, of its own
trader; no funds moved between accounts (each account holds its paper funding plus what its own
fills moved, recomputed from the fills table); and every sequence number a client saw stored.
After a restart each account's sequence continues above everything stored before the kill (no
seq is reused), and the server trades on every account again.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import select

from coinwire.api.client import RpcClient, RpcError
from coinwire.core.ledger import Balance, Ledger
from coinwire.core.wallets import LineKind, WalletLine
from coinwire.store import Store
from coinwire.store.tables import accounts, fills, orders
from tests.server import DEMO_EXCHANGES, ServerProcess

EXCHANGES = [DEMO_EXCHANGES[0], {**DEMO_EXCHANGES[0], "name": "demo2", "seed": 23}]
NAMES = [e["name"] for e in EXCHANGES]
FUNDING = {e["name"]: {c: Decimal(a) for c, a in e["paper_funds"].items()} for e in EXCHANGES}
TRADERS = ("ann", "bob")
CLIENTS_PER_TRADER = 4
SET_EXCHANGE = "demo"  # each trader's wallet set holds funds of their account there
SET_FUNDS = {"USDT": "20000", "BTC": "1"}
Notified = tuple[str, int, int, int]  # (order | trade, account, seq, order or trade id)


@dataclass
class Trader:
    name: str
    user_id: int
    token: str
    accounts: dict[str, int] = field(default_factory=dict)  # exchange -> the trader's own account there
    wallet_set: int = 0
    resting: list[int] = field(default_factory=list)  # ids of the trader's resting orders (the other one tries them)

    def rpc(self, server: ServerProcess) -> RpcClient:
        return RpcClient(f"{server.ws_anonymous}?access_token={self.token}")


def atto(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-18)


async def open_traders(server: ServerProcess) -> dict[str, Trader]:
    """The traders, their own account on each exchange (made by their first balance read) and a wallet set each."""
    traders = {}
    for name, token in server.traders(*TRADERS).items():
        async with httpx.AsyncClient(base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
            me = (await http.get("/api/v1/me")).json()
        trader = traders[name] = Trader(name, int(me["id"]), token)
        async with trader.rpc(server) as rpc:
            for exchange in NAMES:
                trader.accounts[exchange] = (await rpc.call("get_wallet", exchange=exchange, currency="USDT"))["account"]
            made = await rpc.call("create_wallet_set", wallets=[
                {"exchange": SET_EXCHANGE, "currency": c, "allocation": a} for c, a in SET_FUNDS.items()])
            trader.wallet_set = made["id"]
    ids = [a for t in traders.values() for a in t.accounts.values()]
    assert len(set(ids)) == len(TRADERS) * len(NAMES), traders  # four accounts, none shared
    return traders


async def codes_for_ids_that_do_not_exist(rpc: RpcClient) -> dict[str, str | None]:
    """The refusal of an account, wallet set and order id that no one has: another trader's must get the same."""
    nobody = 10**12
    calls = {
        "account": ("make_order", {"account": nobody}),
        "wallet_set_id": ("make_order", {"wallet_set_id": nobody, "exchange": SET_EXCHANGE}),
        "order_id": ("cancel_order", {"order_id": nobody}),
    }
    codes = {}
    for name, (method, named) in calls.items():
        params = named if method == "cancel_order" else {
            "exchange": NAMES[0], "pair": "BTC_USDT", "side": "buy", "type": "market", "size": "0.001", **named}
        try:
            await rpc.call(method, **params)
        except RpcError as exc:
            codes[name] = exc.reason
        else:
            raise AssertionError(f"{method} {named} was answered")
    return codes


async def storm(server: ServerProcess, me: Trader, other: Trader, seed: int, acked: dict[tuple[str, str], dict[str, Any]],
                absent: dict[str, str | None], crossed: list[str | None], stop: asyncio.Event) -> None:
    """Orders from one client of `me` until the server dies; what was answered goes to `acked` (by trader and client_oid).

    Now and then the other trader's account, wallet set or order instead: each attempt goes to
    `crossed`, with a complaint unless it was refused as an id that does not exist is (`absent`).
    """
    rng = random.Random(seed)
    try:
        async with me.rpc(server) as rpc:
            bids = {ex: Decimal((await rpc.call("get_pricing", exchange=ex))["BTC_USDT"]["bid"]) for ex in NAMES}
            while not stop.is_set():
                exchange = rng.choice(NAMES)
                where: dict[str, Any] = {}
                pick = rng.random()
                if pick < 0.35:
                    where = {"account": me.accounts[exchange]}
                elif pick < 0.6 and exchange == SET_EXCHANGE:
                    where = {"wallet_set_id": me.wallet_set}
                roll = rng.random()
                client_oid = uuid.uuid4().hex
                if roll < 0.06:  # the other trader's account, wallet set or order: refused, whatever the load
                    attempts = [("make_order", {"account": other.accounts[exchange]}, absent["account"]),
                                ("make_order", {"wallet_set_id": other.wallet_set}, absent["wallet_set_id"])]
                    if other.resting:
                        attempts.append(("cancel_order", {"order_id": rng.choice(other.resting)}, absent["order_id"]))
                    method, named, code = rng.choice(attempts)
                    params = named if method == "cancel_order" else {
                        "exchange": SET_EXCHANGE if "wallet_set_id" in named else exchange, "pair": "BTC_USDT", "side": "buy",
                        "type": "market", "size": "0.001", "client_oid": client_oid, **named}
                    try:
                        answer = await rpc.call(method, **params)
                    except RpcError as exc:
                        complaint = None if exc.reason == code else f"{me.name} {method} {named}: refused with {exc.reason}, not {code}"
                    else:
                        complaint = f"{me.name} {method} {named} was answered: {answer}"
                    crossed.append(complaint)
                    continue
                try:
                    if roll < 0.45:
                        price = (bids[exchange] * Decimal(rng.uniform(0.7, 0.95))).quantize(Decimal("0.01"))
                        order = await rpc.call("make_order", exchange=exchange, pair="BTC_USDT", side="buy", size="0.001",
                                               limit=str(price), client_oid=client_oid, **where)
                        me.resting.append(order["id"])
                    elif roll < 0.65 and me.resting:
                        order = await rpc.call("cancel_order", order_id=me.resting.pop(rng.randrange(len(me.resting))))
                        client_oid = order["client_order_id"]
                    else:
                        side = "buy" if roll < 0.85 else "sell"
                        order = await rpc.call("make_order", exchange=exchange, pair="BTC_USDT", side=side, type="market",
                                               size="0.001", client_oid=client_oid, **where)
                except RpcError:
                    continue
                acked[(me.name, client_oid)] = order
    except (ConnectionError, OSError, TimeoutError, websockets.ConnectionClosed):  # the server dies under us: expected
        return


async def storm_until(acked: dict[tuple[str, str], dict[str, Any]], crossed: list[str | None], *,
                      least_seconds: float, patience: float) -> None:
    """Let the storm run at least `least_seconds`, and on until it has made enough orders and crossing attempts.

    A loaded machine makes fewer calls in a fixed time; the kill waits for the counts the test
    asserts (more than 100 orders, at least 10 crossing attempts), up to `patience` seconds.
    """
    await asyncio.sleep(least_seconds)
    deadline = asyncio.get_running_loop().time() + patience
    while (len(acked) <= 100 or len(crossed) < 10) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)


def notifications_seen(rpc: RpcClient) -> list[Notified]:
    """The order and trade notifications a watcher has received so far: (channel, account, seq, order or trade id)."""
    seen = []
    while not rpc.notifications.empty():
        channel, params = rpc.notifications.get_nowait()
        if channel in ("order", "trade"):
            seen.append((channel, params["account"], params["seq"], params["id"]))
    return seen


def seqs_per_account(seen: list[Notified]) -> dict[int, list[int]]:
    """The seqs one watcher received per account, in arrival order: none twice.

    Not necessarily ascending: two commands' notifications may interleave on the bus (a seq
    is taken when a command's rows are handed to the writer, the notification published after
    its commit, and a publish may yield to the next command's).
    """
    per_account: dict[int, list[int]] = defaultdict(list)
    for _, account, seq, _ in seen:
        per_account[account].append(seq)
    for account, seqs in per_account.items():
        twice = [seq for seq, n in Counter(seqs).items() if n > 1]
        assert not twice, f"account {account}: seqs {twice[:5]} notified twice"
    return per_account


@dataclass
class Stored:
    """The store as the next start finds it."""

    ledger: Ledger  # restored from the wallets, sets and the sums of lines (checkpoint + lines after it), and checked
    lines: list[WalletLine]  # every stored line
    last_seqs: dict[int, int]  # account -> the seq of its latest stored notification
    orders: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    accounts: dict[int, dict[str, Any]]


async def state_at_the_kill(url: str, journal: bool) -> Stored:
    """Read as the next start reads it (the SQLite journal applied first): `Store.load_state`, then `Ledger.restore`."""
    async with Store(url, journal=journal) as store:
        state = await store.load_state()
        ledger = Ledger.restore(state.wallets, state.wallet_sets, state.totals)  # raises unless every account balances
        every_line = await store.line_totals()  # the source of truth: what the kept totals must equal
        assert ledger.totals().wallets == every_line.wallets and state.totals.holds == every_line.holds
        lines = await store.wallet_lines([w.id for w in state.wallets])
        async with store.engine.connect() as conn:
            order_rows = [dict(r) for r in (await conn.execute(select(
                orders.c.id, orders.c.client_oid, orders.c.owner_id, orders.c.account_id, orders.c.exchange, orders.c.status,
                orders.c.filled_size, orders.c.seq))).mappings()]
            fill_rows = [dict(r) for r in (await conn.execute(select(
                fills.c.id, fills.c.order_id, fills.c.account_id, fills.c.exchange, fills.c.symbol, fills.c.side, fills.c.size,
                fills.c.notional, fills.c.fee, fills.c.fee_currency))).mappings()]
            account_rows = {r["id"]: dict(r) for r in (await conn.execute(select(accounts))).mappings()}
    return Stored(ledger, lines, dict(state.last_seqs), order_rows, fill_rows, account_rows)


def expected_totals(account_rows: dict[int, dict[str, Any]], fill_rows: list[dict[str, Any]]) -> dict[int, dict[str, Decimal]]:
    """Each account's funds as its paper funding plus what its own fills moved (an independent reckoning of the ledger)."""
    expected = {account_id: dict(FUNDING[row["exchange"]]) for account_id, row in account_rows.items()}
    for fill in fill_rows:
        base, quote = fill["symbol"].split("/")
        sign = 1 if fill["side"] == "buy" else -1
        mine = expected[fill["account_id"]]
        mine[base] = mine.get(base, Decimal(0)) + sign * Decimal(fill["size"])
        mine[quote] = mine.get(quote, Decimal(0)) - sign * Decimal(fill["notional"])
        fee_currency = fill["fee_currency"] or quote
        mine[fee_currency] = mine.get(fee_currency, Decimal(0)) - Decimal(fill["fee"])
    return expected


def check_what_clients_saw(traders: dict[str, Trader], acked: dict[tuple[str, str], dict[str, Any]],
                           received: dict[str, list[Notified]]) -> dict[int, int]:
    """Each watcher saw only its trader's accounts, each from seq 1 with no gap; one event per (account, seq).

    Returns the highest seq clients saw per account (answers and notifications).
    """
    events: dict[tuple[int, int], tuple[str, int]] = {}
    for order in acked.values():
        events.setdefault((order["account"], order["seq"]), ("order", order["id"]))
    for name, notified in received.items():
        per_account = seqs_per_account(notified)
        assert set(per_account) == set(traders[name].accounts.values())  # all its own, none of the other's
        for account, seqs in per_account.items():
            assert min(seqs) == 1, (account, sorted(seqs)[:5])  # from the account's first event on
        for channel, account, seq, event_id in notified:
            assert events.setdefault((account, seq), (channel, event_id)) == (channel, event_id), (account, seq)
    highest: dict[int, int] = defaultdict(int)
    for account, seq in events:
        highest[account] = max(highest[account], seq)
    return highest


def check_orders(traders: dict[str, Trader], acked: dict[tuple[str, str], dict[str, Any]], stored: Stored) -> None:
    """Every acknowledged order exactly once, in the account its answer named, of its own trader; done stays done."""
    counts = Counter((row["owner_id"], row["client_oid"]) for row in stored.orders)
    assert all(n == 1 for n in counts.values())
    by_key = {(row["owner_id"], row["client_oid"]): row for row in stored.orders}
    missing = [key for key in acked if (traders[key[0]].user_id, key[1]) not in by_key]
    assert not missing, f"{len(missing)} acknowledged orders are missing after the crash"
    for (name, client_oid), answer in acked.items():
        row = by_key[(traders[name].user_id, client_oid)]
        assert row["account_id"] == answer["account"] == traders[name].accounts[row["exchange"]], (name, answer, row)
        if answer["status"] == "done":
            assert row["status"] == "done", (answer, row)
            assert Decimal(row["filled_size"]) == Decimal(answer["filled_size"])
    for row in stored.orders:  # nobody's order spends another's account, nor one on another exchange
        account = stored.accounts[row["account_id"]]
        assert (account["owner_id"], account["exchange"]) == (row["owner_id"], row["exchange"]), row


def check_no_funds_crossed(stored: Stored) -> None:
    """Each account holds its funding plus what its own fills moved; every line is on its order's and fill's account."""
    ledger = stored.ledger
    order_account = {row["id"]: row["account_id"] for row in stored.orders}
    fill_account = {row["id"]: row["account_id"] for row in stored.fills}
    for row in stored.fills:
        assert fill_account[row["id"]] == order_account[row["order_id"]], row
    wallets = {w.id: w for w in ledger.all_wallets()}
    funded: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in stored.lines:
        wallet = wallets[line.wallet_id]
        if line.order_id is not None:
            assert order_account[line.order_id] == wallet.account_id, (line, wallet)
        if line.fill_id is not None:
            assert fill_account[line.fill_id] == wallet.account_id, (line, wallet)
        if line.kind is LineKind.VIRTUAL_TX:
            funded[wallet.account_id][wallet.currency] += line.movement
    with localcontext() as ctx:
        ctx.prec = 60
        expected = expected_totals(stored.accounts, stored.fills)
        for account_id, row in stored.accounts.items():
            assert {c: atto(a) for c, a in funded[account_id].items()} == FUNDING[row["exchange"]], account_id
            totals = ledger.exchange_totals((account_id,))
            assert {ex for ex, _ in totals} == {row["exchange"]}
            assert {c: atto(b.balance) for (_, c), b in totals.items()} == expected[account_id], account_id
            allocated, unallocated = ledger.allocated(accounts=(account_id,)), ledger.unallocated((account_id,))
            for pair, total in totals.items():
                assert total == allocated.get(pair, Balance()) + unallocated.get(pair, Balance())


async def check_after_restart(server: ServerProcess, traders: dict[str, Trader], stored: Stored) -> None:
    """Every account trades again with seqs above all stored before the kill; resting orders and own funds as they were."""
    watchers = {name: t.rpc(server) for name, t in traders.items()}
    for watcher in watchers.values():
        await watcher.connect()
    for trader in traders.values():
        async with trader.rpc(server) as rpc:
            for exchange, account in trader.accounts.items():
                order = await rpc.call("make_order", exchange=exchange, pair="BTC_USDT", side="buy", type="market", size="0.001",
                                       account=account)
                assert order["status"] == "done" and order["account"] == account
                assert order["seq"] > stored.last_seqs.get(account, 0), (account, order["seq"], stored.last_seqs)
            open_orders = await rpc.call("list_open_orders")
            assert {o["account"] for o in open_orders} <= set(trader.accounts.values())
            resting = {row["client_oid"] for row in stored.orders if row["owner_id"] == trader.user_id and row["status"] == "open"}
            assert resting <= {o["client_order_id"] for o in open_orders}  # resting orders survived with their holds
            mine = await rpc.call("get_all_wallet_sets")  # the trader's own set, and the sums of their own accounts
            assert set(mine) - {"total", "allocated", "unallocated"} == {str(trader.wallet_set)}
            funds = {kind: {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in mine[kind]["wallets"]}
                     for kind in ("total", "allocated", "unallocated")}
            for pair, total in funds["total"].items():
                assert total == funds["allocated"].get(pair, 0) + funds["unallocated"].get(pair, 0), pair
    await asyncio.sleep(0.5)  # the notifications of those orders reach the watchers
    for name, watcher in watchers.items():
        notified = notifications_seen(watcher)
        await watcher.close()
        per_account = seqs_per_account(notified)
        assert set(per_account) == set(traders[name].accounts.values())
        for account, seqs in per_account.items():  # no seq handed out before the kill is handed out again, and none skipped
            first = min(seqs)
            assert first > stored.last_seqs.get(account, 0), (name, account, first, stored.last_seqs.get(account))
            assert sorted(seqs) == list(range(first, first + len(seqs))), (name, account, sorted(seqs))


async def test_sigkill_mid_storm_of_two_traders_keeps_every_account_whole(tmp_path: Path, store_env: dict[str, str]) -> None:
    server = ServerProcess(tmp_path, exchanges=EXCHANGES, env=store_env)
    server.start()
    try:
        traders = await open_traders(server)
        ann, bob = traders["ann"], traders["bob"]
        watchers = {name: t.rpc(server) for name, t in traders.items()}  # a second connection of each trader
        for watcher in watchers.values():
            await watcher.connect()
            await watcher.call("subscribe", channels=["order", "trade"])
        async with ann.rpc(server) as rpc:
            absent = await codes_for_ids_that_do_not_exist(rpc)
        acked: dict[tuple[str, str], dict[str, Any]] = {}
        crossed: list[str | None] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(storm(server, me, other, seed * 2 + i, acked, absent, crossed, stop))
                 for seed in range(CLIENTS_PER_TRADER) for i, (me, other) in enumerate(((ann, bob), (bob, ann)))]
        await storm_until(acked, crossed, least_seconds=2.0, patience=60.0)
        server.kill()  # SIGKILL while both traders' clients are still sending
        stop.set()
        await asyncio.gather(*tasks)
        received = {}
        for name, watcher in watchers.items():
            await watcher.close()
            received[name] = notifications_seen(watcher)
        assert len(acked) > 100, f"the storm acknowledged only {len(acked)} orders"
        assert {order["account"] for order in acked.values()} == {a for t in traders.values() for a in t.accounts.values()}
        assert len(crossed) >= 10 and not any(crossed), crossed  # tried under load, refused every time
        highest_seen = check_what_clients_saw(traders, acked, received)

        url = store_env.get("COINWIRE_STORE_URL", f"sqlite:///{tmp_path / 'coinwire.db'}")
        stored = await state_at_the_kill(url, journal="COINWIRE_STORE_URL" not in store_env)
        stored.ledger.check()  # Ledger.restore checked it too: total = allocated + unallocated per account, lines = wallets
        for account, seq in highest_seen.items():  # what a client saw was stored before it was sent
            assert seq <= stored.last_seqs.get(account, 0), (account, seq, stored.last_seqs)
        check_orders(traders, acked, stored)
        check_no_funds_crossed(stored)

        server.start()
        await check_after_restart(server, traders, stored)
    finally:
        server.stop()
