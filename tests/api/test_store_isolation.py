"""A server on PostgreSQL: one user's value the store cannot hold fails that user's calls alone, with a stable code
(never an internal error); another user's concurrent orders all succeed and are all there after a restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.conftest import postgres_database
from tests.server import ServerProcess


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own on the test PostgreSQL server, dropped afterwards."""
    with postgres_database() as url:
        yield url


async def _storm(url: str, run_id: str, count: int, placed: list[dict[str, Any]], refused: list[RpcError]) -> None:
    async with RpcClient(url) as rpc:
        bid = float((await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])

        async def one(i: int) -> None:
            params: dict[str, Any] = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "size": "0.001",
                                      "client_oid": uuid.uuid4().hex, "run_id": run_id}
            if i % 3:
                params.update(type="limit", limit=f"{bid * 0.8:.2f}")
            else:
                params.update(type="market")
            try:
                placed.append(await rpc.call("make_order", **params))
            except RpcError as exc:
                refused.append(exc)

        for start in range(0, count, 10):  # ten at a time in flight: they share group commits with the other user's
            await asyncio.gather(*(one(i) for i in range(start, min(count, start + 10))))


async def test_a_value_the_store_cannot_hold_fails_only_its_caller(tmp_path: Path, database: str) -> None:
    server = ServerProcess(tmp_path, env={"COINWIRE_STORE_URL": database})
    server.start()
    try:
        tokens = server.traders("tom", "tess")
        tom_placed: list[dict[str, Any]] = []
        tom_refused: list[RpcError] = []
        tess_placed: list[dict[str, Any]] = []
        tess_refused: list[RpcError] = []
        await asyncio.gather(
            _storm(f"{server.ws_anonymous}?access_token={tokens['tom']}", "t" * 100, 60, tom_placed, tom_refused),
            _storm(f"{server.ws_anonymous}?access_token={tokens['tess']}", "tess-run", 120, tess_placed, tess_refused),
        )
        assert tess_refused == [] and len(tess_placed) == 120
        assert tom_placed == [] and len(tom_refused) == 60
        for exc in tom_refused:  # refused with a stable code (at the edge, or by the store), never an internal error
            assert exc.code != -32603 and exc.data and exc.data.get("code") not in (None, "internal_error"), (exc.code, exc.data)
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tess']}") as tess:
            resting = {o["id"] for o in await tess.call("list_open_orders")}
        assert {o["id"] for o in tess_placed if o["status"] != "done"} == resting
        server.kill()
        server.start()
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tess']}") as tess, \
                RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as tom:
            assert {o["id"] for o in await tess.call("list_open_orders")} == resting  # memory was what the store holds
            assert await tom.call("list_open_orders") == []
    finally:
        server.stop()
