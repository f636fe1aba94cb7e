"""The Telegram channel: a delivery's text sent to the user's chat by the user's own bot (python-telegram-bot).

Each user brings a bot (its token, from @BotFather) and the chat id it writes to; both come
in the channel's target. Errors are classified for the notifier's worker: Telegram's 429
(with `retry_after`), its 5xx answers and network faults are worth retrying; 400 (a chat that
does not exist), 401/404 (a token Telegram does not know) and 403 (the user blocked the bot)
are not, retrying cannot help.

A bot token is the whole credential of a bot and sits in every Bot API URL
(`/bot<token>/sendMessage`), so python-telegram-bot's errors and the HTTP client's log lines
can carry it. `scrub` removes it from any text we pass on, and `redact_library_logs` puts a
filter on the loggers of python-telegram-bot and httpx that rewrites their records before any
handler sees them.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from coinwire.services.notifications.channels import Delivery, DeliveryFailed

__all__ = ["DEFAULT_API_BASE", "MAX_TEXT", "TelegramChannel", "bot_for", "classify", "redact_library_logs", "retry_seconds", "scrub",
           "send_text"]

DEFAULT_API_BASE = "https://api.telegram.org"
MAX_TEXT = 4096  # characters Telegram accepts in one message
_TOKEN_IN_URL = re.compile(r"/bot[^/\s'\"]+")  # the path segment of every Bot API URL
_TOKEN_SHAPE = re.compile(r"\b\d{3,}:[A-Za-z0-9_-]{20,}\b")  # what @BotFather hands out: <bot id>:<secret>
# the loggers of python-telegram-bot and of its HTTP client that may print a Bot API URL
_LIBRARY_LOGGERS = ("httpx", "telegram", "telegram.Bot", "telegram.request.BaseRequest", "telegram.request.HTTPXRequest",
                    "telegram.ext.ExtBot", "telegram.ext.Updater", "telegram.ext.Application")


def scrub(text: str, *tokens: str) -> str:
    """`text` without any bot token: the ones named, any Bot API URL's token segment, anything shaped like a token."""
    for token in tokens:
        if token:
            text = text.replace(token, "<token>")
    text = _TOKEN_IN_URL.sub("/bot<token>", text)
    return _TOKEN_SHAPE.sub("<token>", text)


class _RedactFilter(logging.Filter):
    """Rewrites a record's message without tokens (a filter on a logger sees its records before any handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactFilter()


def redact_library_logs() -> None:
    """Put the token filter on the library loggers (once each: adding it again is a no-op)."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def bot_for(api_base: str, token: str, read_timeout: float = 10.0) -> tuple[Bot, HTTPXRequest]:
    """A Bot on `api_base` (Telegram's or a local Bot API server) and the one HTTP client it uses; shut the client down after."""
    redact_library_logs()
    request = HTTPXRequest(connection_pool_size=4, read_timeout=read_timeout, connect_timeout=10.0)
    base = api_base.rstrip("/")
    bot = Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot", request=request, get_updates_request=request)
    return bot, request


def retry_seconds(exc: RetryAfter) -> float:
    """The seconds Telegram asks us to wait (the attribute's type changes from int to timedelta in a later major version)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def classify(exc: TelegramError, token: str) -> DeliveryFailed:
    """A python-telegram-bot error as the notifier's DeliveryFailed: retryable or not, its reason without the token."""
    if isinstance(exc, RetryAfter):
        return DeliveryFailed(f"telegram rate limit: retry after {retry_seconds(exc):g} s", retryable=True)
    if isinstance(exc, InvalidToken):
        return DeliveryFailed("telegram refused the bot token (unknown or revoked): set a new one", retryable=False)
    if isinstance(exc, Forbidden):
        return DeliveryFailed(f"telegram refused the message: {scrub(exc.message, token)}", retryable=False)
    if isinstance(exc, (BadRequest, ChatMigrated)):
        return DeliveryFailed(f"telegram refused the message as invalid: {scrub(str(exc), token)}", retryable=False)
    if isinstance(exc, TimedOut):
        return DeliveryFailed("telegram did not answer in time", retryable=True)
    if isinstance(exc, NetworkError):  # 5xx answers and connection faults
        return DeliveryFailed(f"telegram is unreachable or failing: {scrub(exc.message, token)}", retryable=True)
    return DeliveryFailed(f"telegram error: {scrub(str(exc), token)}", retryable=True)


def target_fields(target: Mapping[str, Any]) -> tuple[str, str]:
    """The target's bot token and chat id; DeliveryFailed(retryable=False) when either is missing."""
    token, chat_id = target.get("bot_token"), target.get("chat_id")
    if not isinstance(token, str) or not token or chat_id in (None, ""):
        raise DeliveryFailed("the telegram channel needs a bot_token and a chat_id", retryable=False)
    return token, str(chat_id)


class TelegramChannel:
    """Sends a delivery's plain text (cut to Telegram's 4096 characters) with sendMessage."""

    kind = "telegram"

    def __init__(self, api_base: str = DEFAULT_API_BASE, read_timeout: float = 10.0) -> None:
        self.api_base = api_base
        self.read_timeout = read_timeout

    async def send(self, target: Mapping[str, Any], delivery: Delivery) -> None:
        """Deliver, or raise DeliveryFailed (retryable for 429, 5xx and network faults; not for 400/401/403)."""
        token, chat_id = target_fields(target)
        await send_text(self.api_base, token, chat_id, delivery.text, self.read_timeout)


async def send_text(api_base: str, token: str, chat_id: str, text: str, read_timeout: float = 10.0) -> None:
    """One sendMessage with a client of its own, closed after; DeliveryFailed on any failure."""
    bot, request = bot_for(api_base, token, read_timeout)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    try:
        await bot.send_message(chat_id=chat_id, text=text)
    except TelegramError as exc:
        raise classify(exc, token) from None  # not chained: the cause's text may hold the token
    finally:
        await request.shutdown()
