"""A real local Telegram Bot API server for the tests: getMe, getUpdates (offset, long poll), sendMessage, over HTTP.

It serves `/bot<token>/<method>` on 127.0.0.1 at an ephemeral port, as Telegram does: an
unknown token answers 401, a chat the bot cannot reach 400 ("chat not found") and a chat that
blocked it 403. Tests register bots and chats, enqueue incoming messages (`say`), read what the
bots sent (`sent`), and make a method (sendMessage, getUpdates) fail its next N calls with 429 (retry_after) or a 5xx.
Parameters arrive as python-telegram-bot posts them: form fields, JSON values as text.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["TelegramServer", "Sent"]


@dataclass
class Sent:
    token: str
    chat_id: str
    text: str


@dataclass
class _Bot:
    bot_id: int
    username: str
    chats: set[str] = field(default_factory=set)  # chats the bot may write to
    blocked: set[str] = field(default_factory=set)  # chats whose user blocked the bot (403)
    updates: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # method -> (status, retry_after) of its next calls
    polls: int = 0


def _error(status: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status)


class TelegramServer:
    """Start with `async with TelegramServer() as tg:`; `tg.api_base` is what a client's `api_base` points at."""

    def __init__(self) -> None:
        self.bots: dict[str, _Bot] = {}
        self.sent: list[Sent] = []
        self.requests: list[tuple[str, str]] = []  # (token, method) of every request, in order
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        self._closing = False

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- what tests set up -------------------------------------------------------------------
    def add_bot(self, token: str, *chats: str) -> None:
        bot_id = int(token.split(":", 1)[0])
        self.bots[token] = _Bot(bot_id, f"bot{bot_id}", set(chats))

    def block(self, token: str, chat_id: str) -> None:
        self.bots[token].blocked.add(chat_id)

    def fail_next(self, token: str, times: int, status: int, retry_after: int = 1, method: str = "sendMessage") -> None:
        """The bot's next `times` calls of `method` answer `status` (429: with `retry_after`) instead."""
        self.bots[token].failures.setdefault(method, []).extend([(status, retry_after)] * times)

    async def say(self, token: str, chat_id: str, text: str, from_id: int | None = None, date: int | None = None) -> None:
        """A user writes `text` in `chat_id` to the bot: an update its next getUpdates returns."""
        bot = self.bots[token]
        update_id = next(self._ids)
        sender = int(from_id if from_id is not None else chat_id)
        bot.updates.append({"update_id": update_id, "message": {
            "message_id": update_id, "date": int(date if date is not None else time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": {"id": sender, "is_bot": False, "first_name": f"user{sender}"}, "text": text}})
        async with self._changed:
            self._changed.notify_all()

    def texts(self, token: str, chat_id: str) -> list[str]:
        return [s.text for s in self.sent if s.token == token and s.chat_id == chat_id]

    async def wait_sent(self, count: int, timeout: float = 10.0) -> list[Sent]:
        """Wait until at least `count` messages were sent in all; the messages sent."""
        deadline = time.monotonic() + timeout
        while len(self.sent) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} sent messages, got {len(self.sent)}: {self.sent}")
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    pass
        return list(self.sent)

    async def wait_polls(self, token: str, polls: int, timeout: float = 10.0) -> None:
        """Wait until the bot has asked for updates `polls` times (its poller is running)."""
        deadline = time.monotonic() + timeout
        while self.bots[token].polls < polls:
            if time.monotonic() > deadline:
                raise AssertionError(f"bot {token.split(':')[0]} polled {self.bots[token].polls} times, expected {polls}")
            await asyncio.sleep(0.02)

    # --- the Bot API -------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> JSONResponse:
        token, method = request.path_params["token"], request.path_params["method"]
        self.requests.append((token, method))
        bot = self.bots.get(token)
        if bot is None:
            return _error(401, "Unauthorized")
        params = await self._params(request)
        failures = bot.failures.get(method)
        if failures:
            status, retry_after = failures.pop(0)
            if status == 429:
                return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
            return _error(status, "Internal Server Error" if status == 500 else "Bad Gateway")
        if method == "getMe":
            return JSONResponse({"ok": True, "result": {"id": bot.bot_id, "is_bot": True, "first_name": bot.username,
                                                         "username": bot.username}})
        if method == "getUpdates":
            return JSONResponse({"ok": True, "result": await self._updates(bot, params)})
        if method == "sendMessage":
            return self._send(token, bot, params)
        return _error(404, "Not Found")

    @staticmethod
    async def _params(request: Request) -> dict[str, str]:
        if request.headers.get("content-type", "").startswith("application/json"):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in (await request.json()).items()}
        # form-urlencoded, as python-telegram-bot posts messages without files (no multipart parser needed)
        return dict(urllib.parse.parse_qsl((await request.body()).decode(), keep_blank_values=True))

    async def _updates(self, bot: _Bot, params: dict[str, str]) -> list[dict[str, Any]]:
        bot.polls += 1
        offset = int(params.get("offset", "0") or 0)
        bot.updates = [u for u in bot.updates if u["update_id"] >= offset]  # Telegram forgets what an offset confirmed
        timeout = float(params.get("timeout", "0") or 0)
        deadline = time.monotonic() + timeout
        async with self._changed:
            self._changed.notify_all()  # wait_polls and friends
        while not bot.updates and not self._closing and time.monotonic() < deadline:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        return list(bot.updates)

    def _send(self, token: str, bot: _Bot, params: dict[str, str]) -> JSONResponse:
        chat_id, text = params.get("chat_id", ""), params.get("text", "")
        if chat_id in bot.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id not in bot.chats:
            return _error(400, "Bad Request: chat not found")
        if not text:
            return _error(400, "Bad Request: message text is empty")
        self.sent.append(Sent(token, chat_id, text))
        asyncio.get_running_loop().create_task(self._notify())
        message_id = next(self._ids)
        return JSONResponse({"ok": True, "result": {"message_id": message_id, "date": int(time.time()),
                                                     "chat": {"id": int(chat_id), "type": "private"}, "text": text}})

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> TelegramServer:
        app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._closing = True
        self._server.should_exit = True
        async with self._changed:
            self._changed.notify_all()  # long polls answer at once
        await self._task
