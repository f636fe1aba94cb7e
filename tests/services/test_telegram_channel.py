"""TelegramChannel against a real local Bot API server: delivered, failures classified, the bot token in no error or log."""

from __future__ import annotations

import logging

import pytest

from coinwire.services.notifications.channels import Delivery, DeliveryFailed
from coinwire.services.notifications.telegram import TelegramChannel, scrub
from tests.telegram_server import TelegramServer

TOKEN = "123456:AAE-secretsecretsecretsecret_01"
OTHER = "654321:BBF-anothersecretsecretsecret_02"
CHAT = "5001"


def delivery(text: str = "BTC/GBP buy filled: 0.0002 at 50000") -> Delivery:
    return Delivery(key="receipt:1", user_id=1, event="trade_receipt", subject="Trade receipt", text=text)


async def failure(channel: TelegramChannel, target: dict[str, str]) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as failed:
        await channel.send(target, delivery())
    return failed.value


async def test_send_delivers_the_text_to_the_target_chat() -> None:
    async with TelegramServer() as tg:
        tg.add_bot(TOKEN, CHAT)
        tg.add_bot(OTHER, "6001")
        channel = TelegramChannel(tg.api_base)
        assert channel.kind == "telegram"
        await channel.send({"bot_token": TOKEN, "chat_id": CHAT}, delivery())
        await channel.send({"bot_token": OTHER, "chat_id": 6001}, delivery("second"))  # a number as chat id too
        assert tg.texts(TOKEN, CHAT) == ["BTC/GBP buy filled: 0.0002 at 50000"]
        assert tg.texts(OTHER, "6001") == ["second"]
        await channel.send({"bot_token": TOKEN, "chat_id": CHAT}, delivery("x" * 5000))  # cut to Telegram's limit
        assert len(tg.texts(TOKEN, CHAT)[-1]) == 4096


async def test_rate_limits_and_server_errors_are_retryable_then_delivered_once() -> None:
    async with TelegramServer() as tg:
        tg.add_bot(TOKEN, CHAT)
        channel = TelegramChannel(tg.api_base)
        target = {"bot_token": TOKEN, "chat_id": CHAT}
        tg.fail_next(TOKEN, 1, 429, retry_after=7)
        tg.fail_next(TOKEN, 1, 500)
        tg.fail_next(TOKEN, 1, 502)
        limited = await failure(channel, target)
        assert limited.retryable and "retry after 7 s" in limited.reason
        for _ in range(2):
            broken = await failure(channel, target)
            assert broken.retryable and "telegram is unreachable or failing" in broken.reason
        await channel.send(target, delivery())  # the caller's retry goes through, once
        assert tg.texts(TOKEN, CHAT) == [delivery().text]


async def test_refusals_are_not_retryable() -> None:
    async with TelegramServer() as tg:
        tg.add_bot(TOKEN, CHAT, "5002")
        tg.block(TOKEN, "5002")
        channel = TelegramChannel(tg.api_base)
        unknown_chat = await failure(channel, {"bot_token": TOKEN, "chat_id": "9999"})
        assert not unknown_chat.retryable and "chat not found" in unknown_chat.reason.lower()
        blocked = await failure(channel, {"bot_token": TOKEN, "chat_id": "5002"})
        assert not blocked.retryable and "blocked" in blocked.reason
        bad_token = await failure(channel, {"bot_token": "777777:CCC-notregisteredsecretsecret", "chat_id": CHAT})
        assert not bad_token.retryable and "token" in bad_token.reason
        missing = await failure(channel, {"chat_id": CHAT})
        assert not missing.retryable and missing.reason == "the telegram channel needs a bot_token and a chat_id"
        assert tg.sent == []


async def test_a_server_that_is_down_is_retryable() -> None:
    async with TelegramServer() as tg:
        base = tg.api_base
    down = await failure(TelegramChannel(base), {"bot_token": TOKEN, "chat_id": CHAT})
    assert down.retryable


async def test_the_token_never_reaches_an_error_or_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the library's debug lines and httpx's request lines print URLs
    async with TelegramServer() as tg:
        tg.add_bot(TOKEN, CHAT)
        channel = TelegramChannel(tg.api_base)
        await channel.send({"bot_token": TOKEN, "chat_id": CHAT}, delivery())
        reasons = []
        for status in (429, 500):
            tg.fail_next(TOKEN, 1, status)
            reasons.append((await failure(channel, {"bot_token": TOKEN, "chat_id": CHAT})).reason)
        reasons.append((await failure(channel, {"bot_token": TOKEN, "chat_id": "404"})).reason)
        bad = "888888:DDD-notknownsecretsecretsecret"
        refused = await failure(channel, {"bot_token": bad, "chat_id": CHAT})
        reasons.append(refused.reason)
        assert refused.__cause__ is None and refused.__suppress_context__  # no chained library error to print
    base = tg.api_base
    reasons.append((await failure(TelegramChannel(base), {"bot_token": TOKEN, "chat_id": CHAT})).reason)
    output = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "/bot<token>/sendMessage" in output  # the HTTP client did log its requests, without the token
    for secret in (TOKEN, TOKEN.split(":")[1], "notknownsecretsecretsecret"):
        assert secret not in output
        assert all(secret not in reason for reason in reasons)


def test_scrub_removes_named_tokens_urls_and_token_shapes() -> None:
    assert scrub(f"POST http://h/bot{TOKEN}/getMe", TOKEN) == "POST http://h/bot<token>/getMe"
    assert scrub("https://api.telegram.org/botabc/sendMessage") == "https://api.telegram.org/bot<token>/sendMessage"
    assert scrub(f"The token `{OTHER}` was rejected") == "The token `<token>` was rejected"
    assert scrub("chat 5001 not found") == "chat 5001 not found"
