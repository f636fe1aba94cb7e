"""An account import's progress reaches, over NATS, every api process's connections whose user may view the account.

The publisher (services.import_progress, in the process running the import) and the notifier (in
an api process apart from it, with its own mirror of the account book) are on two connections
to the real NATS server, as two processes are. Tom owns the account and Vic was granted `view`
on it: they and the admin receive each progress message, in the order made; Tess, another
trader, and a connection not listening on the channel receive nothing; a message of Tess's own
account reaches her alone (and the admin).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier
from coinwire.auth.abilities import Principal
from coinwire.bus.nats import NatsBus
from coinwire.core.accounts import Account
from coinwire.services.accounts import AccountBook
from coinwire.services.import_progress import ImportProgressPublisher
from tests.conftest import NATS_URL, nats_namespace

pytestmark = pytest.mark.services

ADMIN, TOM, TESS, VIC = (Principal(1, "admin", "admin", "pro"), Principal(2, "tom", "trader", "free"),
                         Principal(3, "tess", "trader", "free"), Principal(4, "vic", "viewer", "free"))


def progress(account_id: int, done: int, state: str = "running") -> dict[str, Any]:
    return {"account_id": account_id, "import_id": 9, "step": "trades", "done": done, "total": 3, "eta_s": None, "state": state}


def connect(notifier: Notifier, principal: Principal, got: list[dict[str, Any]], listening: bool = True) -> None:
    async def send(data: bytes) -> None:
        got.append(json.loads(data))

    ctx = CallContext("rpc", send, principal, push=lambda data: got.append(json.loads(data)))
    if listening:
        ctx.channels.add("import_progress")
    notifier.add(ctx)


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)


async def test_progress_published_where_the_import_runs_reaches_the_readers_on_another_process() -> None:
    with nats_namespace() as namespace:
        importing, replica = NatsBus(NATS_URL, namespace), NatsBus(NATS_URL, namespace)
        await importing.start()
        await replica.start()
        book = AccountBook()  # the replica's mirror of the gateway's account book
        book.add(Account(id=7, exchange="binance", kind="live", name="tom's", owner_id=TOM.user_id, created_at=0))
        book.add(Account(id=8, exchange="binance", kind="live", name="tess's", owner_id=TESS.user_id, created_at=0))
        book.set_member(7, VIC.user_id, "view")
        notifier = Notifier(replica, accounts=book)
        await notifier.start()
        publisher = ImportProgressPublisher(importing)
        got: dict[str, list[dict[str, Any]]] = {name: [] for name in ("tom", "vic", "admin", "tess", "tom_elsewhere")}
        for name, principal in (("tom", TOM), ("vic", VIC), ("admin", ADMIN), ("tess", TESS)):
            connect(notifier, principal, got[name])
        connect(notifier, TOM, got["tom_elsewhere"], listening=False)
        try:
            for done in range(3):
                publisher(progress(7, done))
            publisher(progress(7, 3, "done"))
            publisher(progress(8, 1))
            await publisher.idle()
            await until(lambda: len(got["admin"]) == 5)
            seen = {name: [(m["params"]["account_id"], m["params"]["done"], m["params"]["state"]) for m in messages]
                    for name, messages in got.items()}
            toms = [(7, 0, "running"), (7, 1, "running"), (7, 2, "running"), (7, 3, "done")]
            assert seen["tom"] == toms and seen["vic"] == toms  # the owner and the granted viewer, in order
            assert seen["admin"] == [*toms, (8, 1, "running")]
            assert seen["tess"] == [(8, 1, "running")]  # her own import only
            assert seen["tom_elsewhere"] == []  # not listening on the channel
            assert {m["method"] for messages in got.values() for m in messages} == {"import_progress"}
        finally:
            await publisher.close()
            await notifier.close()
            await importing.close()
            await replica.close()
