"""A server's Telegram wiring, end to end: a user's stored bot carries their notifications and answers their chat only.

The server reaches a real local Bot API server (`tests/telegram_server.py`, set with
COINWIRE_TELEGRAM_API_BASE). tom and tess each store a bot and chat through
`PUT /api/v1/me/notifications`; the server starts polling each bot then, sends tom's fills to
tom's chat, answers tom's `/balance` in his chat and nobody's in a stranger's, never shows a
token in an answer, and stops polling tom's bot when he removes the channel. vic (a viewer)
stores his own bot and is answered about his own (empty) accounts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from coinwire.api.client import RpcClient
from tests.server import ServerProcess
from tests.telegram_server import TelegramServer

TOM, TESS, VIC = "111:tom-secret-token-AAAAAAAAAAAA", "222:tess-secret-token-BBBBBBBBBBB", "333:vic-secret-token-CCCCCCCCCCCC"


async def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_stored_bots_notify_and_answer_their_own_chat_only(tmp_path: Path) -> None:
    async with TelegramServer() as tg:
        tg.add_bot(TOM, "501", "999")
        tg.add_bot(TESS, "502")
        tg.add_bot(VIC, "503")
        server = ServerProcess(tmp_path, env={"COINWIRE_TELEGRAM_API_BASE": tg.api_base, "COINWIRE_RECORD_RATES": "false"})
        await asyncio.to_thread(server.start)
        try:
            tokens = await asyncio.to_thread(server.users, {"tom": "trader", "tess": "trader", "vic": "viewer"})

            def rest(user: str) -> httpx.AsyncClient:
                return httpx.AsyncClient(base_url=server.http, timeout=30, headers={"Authorization": f"Bearer {tokens[user]}"})

            async with rest("tom") as tom, rest("tess") as tess, rest("vic") as vic:
                for client, token, chat in ((tom, TOM, "501"), (tess, TESS, "502"), (vic, VIC, "503")):
                    r = await client.put("/api/v1/me/notifications", json={
                        "channels": {"telegram": {"bot_token": token, "chat_id": chat}}, "events": {"order_filled": ["telegram"]}})
                    assert r.status_code == 200, r.text
                    assert token not in r.text and r.json()["channels"]["telegram"]["chat_id"] == chat
                for token in (TOM, TESS, VIC):
                    await tg.wait_polls(token, 1)

                async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as rpc:
                    await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.01")
                await wait_for(lambda: any("BTC" in t for t in tg.texts(TOM, "501")))
                assert tg.texts(TESS, "502") == [] and tg.texts(VIC, "503") == []  # tom's fill is tom's alone

                await tg.say(TOM, "501", "/balance")
                await tg.say(TOM, "999", "/balance")  # a stranger who found tom's bot
                await tg.say(VIC, "503", "/balance")
                await wait_for(lambda: any("USDT" in t for t in tg.texts(TOM, "501")[1:]) and tg.texts(VIC, "503"))
                await asyncio.sleep(1.0)
                assert tg.texts(TOM, "999") == []
                assert tg.texts(TESS, "502") == []

                polls = tg.bots[TOM].polls
                r = await tom.put("/api/v1/me/notifications", json={"channels": {}, "events": {}})
                assert r.status_code == 200, r.text
                await asyncio.sleep(1.5)
                settled = tg.bots[TOM].polls
                await asyncio.sleep(1.5)
                assert tg.bots[TOM].polls == settled and settled <= polls + 2  # tom's bot is no longer polled
                log = server.log()
                assert all(token.split(":")[1] not in log for token in (TOM, TESS, VIC))
        finally:
            await asyncio.to_thread(server.stop)
