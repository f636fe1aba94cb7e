"""A paper platform with the controller in a process of its own, for tests/services/test_controller_crash.py.

    python -m tests.services.controller_child FOLDER [kill]

The platform keeps its store under FOLDER/data; its demo feed fills the books once and is stopped,
then the books follow FOLDER/books.json ({symbol: {"bids": [[price, size], ...], "ask": price}}),
read again whenever the file changes. User 601's paper account is opened, the controller started
(it resumes the commands a previous process left), and FOLDER/ready-<pid> written.

With `kill`, the process SIGKILLs itself as soon as the gateway has committed the first fill of
user 601: an order of a `close_all` is stored, the command's record of it is not, the next market is
not sold yet. Without it, once the controller has no command left it writes FOLDER/report-<pid>.json
(the account's orders and fills, its balances, the rule sets' firings and commands, all read from the
store) and waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from coinwire.app import Platform
from coinwire.auth.preferences import PreferencesRepository
from coinwire.config import load_settings
from coinwire.core.errors import NotFound, NotReady
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.orders import Fill, Order
from coinwire.messages import BookSnapshot, Message
from coinwire.services.controller import Controller
from coinwire.store.rules import RuleStore

ALICE = 601
FUNDS = {"USDT": "10000", "BTC": "1", "ETH": "10"}


class KillOnFill:
    """A gateway listener: the first fill of ALICE's, committed, ends the process there and then."""

    async def on_market(self, message: Message) -> None: ...

    def on_execution(self, orders: list[Order], fills: list[Fill]) -> None:
        if any(f.account_id and o.owner_id == ALICE for f in fills for o in orders):
            os.kill(os.getpid(), signal.SIGKILL)


async def apply_books(p: Platform, books: dict[str, Any]) -> None:
    for symbol, book in books.items():
        market = p.gateway.venues["demo"].markets[symbol]
        inst = market.instrument
        bids = [(inst.parse_price(px, "price"), inst.parse_size(sz, "size")) for px, sz in book["bids"]]
        asks = [(inst.parse_price(book["ask"], "price"), inst.parse_size("1000", "size"))]
        await p.gateway.apply_market(BookSnapshot("demo", symbol, p.gateway.now(), market.sync.last_update_id + 1, bids, asks))


async def follow_books(p: Platform, path: Path) -> None:
    seen = 0
    while True:
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        if stamp != seen:
            seen = stamp
            await apply_books(p, json.loads(path.read_text()))
        await asyncio.sleep(0.02)


def expected_value(books: dict[str, Any]) -> Decimal:
    """10,000 USDT + 1 BTC + 10 ETH at the books' mids, each a cent above its bid."""
    mid = {symbol: Decimal(book["bids"][0][0]) + Decimal("0.005") for symbol, book in books.items()}
    return Decimal(10000) + mid["BTC/USDT"] + 10 * mid["ETH/USDT"]


async def report(p: Platform, store: RuleStore, account_id: int) -> dict[str, Any]:
    orders = [o for o in await p.store.list_orders(limit=1000) if o.account_id == account_id]
    fills = {o.client_oid: [msgspec.to_builtins(f) for f in await p.store.list_fills(order_id=o.id)] for o in orders}
    held: dict[str, str] = {}
    for w in p.gateway.ledger.all_wallets():
        if w.account_id == account_id:
            held[w.currency] = str(Decimal(held.get(w.currency, "0")) + Decimal(w.balance).scaleb(-ATTO_DECIMALS))
    firings = [msgspec.to_builtins(f) for row in await store.list_for(None) for f in await store.firings(row.id)]
    return {"orders": [{"client_oid": o.client_oid, "symbol": o.symbol, "side": o.side.value, "size": o.size,
                        "filled": o.filled_size} for o in orders],
            "fills": fills, "balances": held, "firings": firings}  # fmt: skip


async def main(folder: Path, kill: bool) -> None:
    settings = load_settings(env={}, overrides={
        "data_dir": str(folder / "data"), "portfolio_sample_interval": 0.05,
        "exchanges": [{"name": "demo", "tick_interval": 0.05, "symbols": ["BTC/USDT", "ETH/USDT"], "paper_funds": FUNDS}]})  # fmt: skip
    p = Platform(settings)
    await p.start()
    while p.gateway.venues["demo"].status != "ready":
        await asyncio.sleep(0.02)
    for feed in p.feeds:
        await feed.close()
    account = await p.gateway.account_for(ALICE, "demo")  # before the books: their change makes the tracker value it
    books = asyncio.create_task(follow_books(p, folder / "books.json"))
    await asyncio.sleep(0.2)
    expected = expected_value(json.loads((folder / "books.json").read_text()))
    while kill:  # the first process's controller starts once the tracker values the account at the test's books
        try:
            if p.portfolio is not None and p.portfolio.value_now("account", str(account.id)) == expected:
                break
        except (NotFound, NotReady):
            pass
        await asyncio.sleep(0.02)
    if kill:
        p.gateway.listeners.append(KillOnFill())
    assert p.portfolio is not None
    store = RuleStore(p.store)
    prefs = PreferencesRepository(p.store)

    async def zone_of(user_id: int) -> str:
        return str((await prefs.get(user_id))["time_zone"])

    controller = Controller(None, store, p.portfolio, p.gateway, None, p.notifications.notify, None,
                            zone_of=zone_of, retry_base=0.05, retry_max=0.2)
    await controller.start()
    (folder / f"ready-{os.getpid()}").write_text(str(account.id))
    if not kill:
        while controller.commands or not controller.live:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a wrong second firing or order would show by now
        (folder / f"report-{os.getpid()}.json").write_text(json.dumps(await report(p, store, account.id)))
    await asyncio.Event().wait()  # until killed
    books.cancel()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), len(sys.argv) > 2 and sys.argv[2] == "kill"))
