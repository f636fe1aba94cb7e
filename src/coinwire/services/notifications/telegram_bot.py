"""Each user's Telegram bot, polled for commands (getUpdates long polling) and answered from the user's own chat only.

A user configures a bot token and the chat id that is theirs; `TelegramBots` then runs one
long-polling task per user. A message is answered only when it comes from that chat: anything
else (someone else who found the bot) is ignored and logged with the chat id, never the
token. Messages older than `stale_seconds` when the poller starts are skipped, so a restart
does not replay yesterday's commands. Polling survives Telegram's faults: a 429 waits its
`retry_after`, network faults and 5xx back off (up to `max_backoff`), and a token Telegram
refuses is retried slowly with a warning until the user sets a new one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from telegram import Bot
from telegram.error import Conflict, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from coinwire.services.notifications.telegram import bot_for, retry_seconds, scrub

__all__ = ["CommandAnswerer", "StoredBots", "TelegramBots", "TelegramTargets"]

log = structlog.get_logger("coinwire.telegram")

POLL_TIMEOUT = 25  # seconds a getUpdates waits for a message (Telegram's long poll)
STALE_SECONDS = 120.0


class CommandAnswerer(Protocol):
    """What answers a user's message (TelegramCommands): the reply text, or None to say nothing."""

    async def answer(self, user_id: int, text: str) -> str | None: ...


@dataclass
class _Poller:
    user_id: int
    token: str
    chat_id: str
    bot: Bot
    request: HTTPXRequest
    task: asyncio.Task[None] | None = None
    offset: int | None = None
    started_at: float = field(default_factory=time.time)


class TelegramBots:
    """The bots of the users who configured one: `configure`, `remove`, `start`, `close`."""

    def __init__(self, api_base: str, commands: CommandAnswerer, *,
                 poll_timeout: int = POLL_TIMEOUT, stale_seconds: float = STALE_SECONDS, backoff: float = 1.0,
                 max_backoff: float = 60.0, wall_clock: Callable[[], float] = time.time) -> None:
        self.api_base = api_base
        self.commands = commands
        self.poll_timeout = poll_timeout
        self.stale_seconds = stale_seconds
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.wall_clock = wall_clock
        self._pollers: dict[int, _Poller] = {}
        self._started = False

    def configured(self) -> dict[int, str]:
        """The users with a bot, and their chat id (no token)."""
        return {user_id: p.chat_id for user_id, p in self._pollers.items()}

    async def configure(self, user_id: int, bot_token: str, chat_id: str | int) -> None:
        """Poll this bot for the user from now on (a bot already configured for the user is replaced)."""
        await self.remove(user_id)
        bot, request = bot_for(self.api_base, bot_token, read_timeout=self.poll_timeout + 10.0)
        poller = _Poller(user_id, bot_token, str(chat_id), bot, request, started_at=self.wall_clock())
        self._pollers[user_id] = poller
        if self._started:
            self._run(poller)

    async def remove(self, user_id: int) -> None:
        """Stop polling the user's bot (nothing when there is none)."""
        poller = self._pollers.pop(user_id, None)
        if poller is not None:
            await self._stop(poller)

    async def start(self) -> None:
        self._started = True
        for poller in self._pollers.values():
            if poller.task is None:
                self._run(poller)

    async def close(self) -> None:
        self._started = False
        pollers, self._pollers = list(self._pollers.values()), {}
        await asyncio.gather(*(self._stop(p) for p in pollers))

    def _run(self, poller: _Poller) -> None:
        poller.task = asyncio.create_task(self._poll(poller), name=f"telegram-bot-user-{poller.user_id}")

    @staticmethod
    async def _stop(poller: _Poller) -> None:
        if poller.task is not None:
            poller.task.cancel()
            await asyncio.gather(poller.task, return_exceptions=True)
        await poller.request.shutdown()

    async def _poll(self, poller: _Poller) -> None:
        delay = self.backoff
        while True:
            try:
                updates = await poller.bot.get_updates(offset=poller.offset, timeout=self.poll_timeout,
                                                       allowed_updates=["message"])
                delay = self.backoff
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except (InvalidToken, Forbidden) as exc:
                log.warning("telegram refused the bot token; polling again later", user=poller.user_id,
                            error=scrub(str(exc), poller.token))
                await asyncio.sleep(self.max_backoff)
                continue
            except (Conflict, TelegramError) as exc:  # another poller of the same bot, 5xx, network faults
                log.info("telegram polling failed; retrying", user=poller.user_id, error=scrub(str(exc), poller.token),
                         retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            for update in updates:
                poller.offset = update.update_id + 1  # confirmed at the next getUpdates: a message is handled once
                try:
                    await self._handle(poller, update.message)
                except Exception:  # a bug answering one message must not end the user's polling
                    log.exception("telegram message not handled", user=poller.user_id)

    async def _handle(self, poller: _Poller, message: object) -> None:
        text = getattr(message, "text", None)
        chat = getattr(message, "chat", None)
        if not isinstance(text, str) or chat is None:
            return
        chat_id = str(chat.id)
        if chat_id != poller.chat_id:
            log.info("telegram message from another chat ignored", user=poller.user_id, chat=chat_id)
            return
        date = getattr(message, "date", None)
        if date is not None and date.timestamp() < poller.started_at - self.stale_seconds:
            log.info("telegram message older than the poller ignored", user=poller.user_id, sent_at=date.isoformat())
            return
        reply = await self.commands.answer(poller.user_id, text)
        if not reply:
            return
        try:
            await poller.bot.send_message(chat_id=poller.chat_id, text=reply[:4096])
        except TelegramError as exc:  # the answer is lost, the poller goes on; the user can ask again
            log.warning("telegram answer not sent", user=poller.user_id, error=scrub(str(exc), poller.token))



class TelegramTargets(Protocol):
    """Where the users' Telegram settings are kept (services/notifications/outbox.NotificationStore)."""

    async def users_with(self, kind: str) -> list[int]: ...

    async def target(self, user_id: int, kind: str) -> dict[str, object] | None: ...


class StoredBots:
    """Keeps `TelegramBots` polling exactly the bots the users stored: all of them at start, one user's after a change.

    The stored channel is the truth (the settings API writes it, in any process); this process
    polls what it says, so a removed channel stops its poller and a new token replaces the old.
    """

    def __init__(self, bots: TelegramBots, targets: TelegramTargets) -> None:
        self.bots = bots
        self.targets = targets

    async def start(self) -> None:
        await self.bots.start()
        for user_id in await self.targets.users_with("telegram"):
            await self.user_changed(user_id)

    async def user_changed(self, user_id: int) -> None:
        """Poll the user's stored bot from their stored chat, or nothing when they have none (a settings listener)."""
        target = await self.targets.target(user_id, "telegram")
        token = None if target is None else target.get("bot_token")
        if target is None or not isinstance(token, str) or not token:
            await self.bots.remove(user_id)
            return
        await self.bots.configure(user_id, token, str(target.get("chat_id", "")))

    async def close(self) -> None:
        await self.bots.close()
