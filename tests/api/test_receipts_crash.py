"""Exactly one receipt per completed order over 100 market orders, with a SIGKILL of the server mid-stream.

A real server e-mails its receipts through a real SMTP server (aiosmtpd). While a trader
places market orders one after another, the server is killed (SIGKILL: no shutdown, no flush)
as soon as some receipts have arrived, then started again, and the trader goes on until 100
orders have completed with a fill. Then every completed order has its receipt, under the
Message-ID its key gives, and no other receipt arrived.

Duplicates. The receiver keeps every message it got (`raw`) and dedupes them on Message-ID
(`distinct`), as a mail system can. The notifier marks a row `sending` before it calls the
relay and `sent` after, one row at a time, so the kill can interrupt at most ONE row between
the relay's acceptance and its `sent` record: after the restart that row is sent again with
the same Message-ID. Hence `raw <= distinct + 1`, and `distinct` is exactly the completed orders.
The test makes that instant happen: the SMTP server kills the coinwire server while it holds the
12th receipt and before it answers, and that receipt must then arrive twice, under one Message-ID.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient
from tests.notify_servers import SmtpReceiver
from tests.server import ServerProcess

ORDERS = 100


async def place(server: ServerProcess, token: str, count: int, stop_when: Any = None) -> list[int]:
    """`count` market buys, one after another; the ids answered (the server may die under it: then those so far)."""
    ids: list[int] = []
    try:
        async with RpcClient(f"{server.ws_anonymous}?access_token={token}") as rpc:
            for _ in range(count):
                answer = await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market",
                                        size="0.001", client_oid=uuid.uuid4().hex)
                ids.append(int(answer["id"]))
                if stop_when is not None:
                    if stop_when():
                        break
                    await asyncio.sleep(0.05)  # a pace the receipts keep up with, so the kill falls mid-stream
    except Exception:  # the kill: the connection ends mid-call
        if stop_when is None:
            raise
    return ids


async def completed(server: ServerProcess, token: str) -> set[int]:
    """The trader's orders that are done with a fill."""
    async with RpcClient(f"{server.ws_anonymous}?access_token={token}") as rpc:
        orders = await rpc.call("list_recent_orders", limit=1000)
    return {int(o["id"]) for o in orders if o["status"] == "done" and Decimal(o["filled_size"]) > 0}


@pytest.mark.timeout(240)
def test_one_receipt_per_completed_order_across_a_sigkill(tmp_path: Path, store_env: dict[str, str]) -> None:
    smtp = SmtpReceiver(tmp_path).start()
    env = {**store_env, "COINWIRE_NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "COINWIRE_NOTIFICATIONS_SMTP_PORT": str(smtp.port),
           "COINWIRE_NOTIFICATIONS_SMTP_SECURITY": "none", "COINWIRE_NOTIFICATIONS_SMTP_SENDER": "coinwire <bot@coinwire.test>",
           "COINWIRE_NOTIFICATIONS_POLL_INTERVAL": "0.05", "COINWIRE_NOTIFICATIONS_BASE_DELAY": "0.1"}
    server = ServerProcess(tmp_path / "server", env=env)
    (tmp_path / "server").mkdir()
    server.start()
    try:
        token = server.traders("tom")["tom"]
        r = httpx.put(server.http + "/api/v1/me/notifications", headers={"Authorization": f"Bearer {token}"},
                      json={"channels": {"email": {"address": "tom@example.org"}}, "events": {"trade_receipt": ["email"]}})
        assert r.status_code == 200, r.text

        # mid-stream, at the worst instant: the SMTP server has the 12th receipt and kills the coinwire server before it
        # answers 250, so that receipt is sent but its row still says `sending`
        killed: list[str] = []

        def kill_on_the_12th(count: int) -> None:
            if count == 12 and not killed:
                message_id = str(smtp.messages[-1]["Message-ID"])
                server.kill()  # dead (waited for) before `killed` says so: the placing loop stops on `killed`
                killed.append(message_id)

        smtp.on_message = kill_on_the_12th
        before = asyncio.run(place(server, token, ORDERS, stop_when=lambda: bool(killed)))
        # the placing loop ends on the flag or on the dropped connection, either of which can come before the SMTP
        # thread's kill has finished: wait for the kill itself
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert killed and server.proc is not None and server.proc.poll() is not None, "the server was not killed mid-stream"
        assert 12 <= len(before) < ORDERS
        server.start()
        token = server.login("tom", "tom-password")["access_token"]
        done = asyncio.run(completed(server, token))
        asyncio.run(place(server, token, ORDERS - len(done)))
        done = asyncio.run(completed(server, token))
        assert len(done) == ORDERS
        assert set(before) <= done  # every order acknowledged before the kill completed

        expected = {f"<trade_receipt.{order_id}.email@coinwire.test>" for order_id in done}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and set(smtp.distinct()) != expected:
            time.sleep(0.1)
        time.sleep(1.0)  # anything late or repeated would arrive now
        assert set(smtp.distinct()) == expected  # exactly one receipt per completed order, no other
        raw = sum(smtp.ids().values())
        assert raw <= len(expected) + 1, smtp.ids().most_common(3)  # at most the one row in flight at the kill
        assert smtp.ids()[killed[0]] == 2  # that one: sent again after the restart, under the same Message-ID
        assert all(rcpt == ["tom@example.org"] for rcpt in smtp.recipients)
    finally:
        server.stop()
        smtp.stop()
