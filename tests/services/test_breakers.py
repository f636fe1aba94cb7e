"""Circuit breakers in a real platform: notification channels (a webhook, an SMTP relay) behind them, the outbox keeping
what an open breaker refused, /readyz and /metrics showing them, and the settings that shape them.

The outside world is real local servers (tests/notify_servers.py, a TCP server that hangs up): nothing of ours is faked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from coinwire.app import Platform
from coinwire.config import ConfigError, load_settings
from coinwire.core.breaker import BreakerState, DependencyUnavailable
from coinwire.services.breakers import Breakers
from tests.notify_servers import SmtpReceiver, WebhookReceiver
from tests.server import free_port
from tests.services.test_notifications import FUNDS, SECRET, TOM, market_buy, wait_for
from tests.telegram_server import TelegramServer


@asynccontextmanager
async def platform(tmp_path: Path, smtp_port: int = 0, *, failures: int, reset: float, telegram: str = "",
                   **notifications: Any) -> AsyncIterator[Platform]:
    """A platform (demo exchange ready, notifier running) whose breakers open after `failures` for `reset` seconds."""
    smtp = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "sender": "coinwire <bot@coinwire.test>"} if smtp_port else {}
    settings = load_settings(env={"COINWIRE_BREAKER_FAILURES": str(failures), "COINWIRE_BREAKER_RESET_SECONDS": str(reset)},
                             overrides={
        "data_dir": str(tmp_path / "data"),
        "telegram_api_base": telegram or None,
        "exchanges": [{"name": "demo", "tick_interval": 0.02, "paper_funds": FUNDS}],
        "notifications": {"smtp": smtp, "base_delay": 0.05, "max_delay": 0.2, "poll_interval": 0.05, **notifications}})
    p = Platform(settings)
    await p.start()
    try:
        await wait_for(lambda: p.gateway.venues["demo"].status == "ready", 30)
        yield p
    finally:
        await p.stop()


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("coinwire_breaker_state", {"dependency": name})


def test_the_settings_are_read_by_the_registry(tmp_path: Path) -> None:
    settings = load_settings(env={"COINWIRE_BREAKER_FAILURES": "2", "COINWIRE_BREAKER_RESET_SECONDS": "7.5"},
                             overrides={"data_dir": str(tmp_path)})
    assert (settings.breaker_failures, settings.breaker_reset_seconds) == (2, 7.5)
    now = [0.0]
    breakers = Breakers.from_settings(settings, clock=lambda: now[0])
    guard = breakers.get("smtp")
    assert (guard.breaker.failures, guard.breaker.reset_seconds) == (2, 7.5)
    platform_breakers = Platform(settings).breakers  # the process's registry is made from the same settings
    assert (platform_breakers.failures, platform_breakers.reset_seconds) == (2, 7.5)
    defaults = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    assert (defaults.breaker_failures, defaults.breaker_reset_seconds) == (5, 30.0)
    for env in ({"COINWIRE_BREAKER_FAILURES": "0"}, {"COINWIRE_BREAKER_RESET_SECONDS": "0"}):
        with pytest.raises(ConfigError):
            load_settings(env=env, overrides={"data_dir": str(tmp_path)})


async def test_the_registry_opens_at_its_settings_threshold() -> None:
    now = [0.0]
    breakers = Breakers(failures=2, reset_seconds=7.5, clock=lambda: now[0])
    guard = breakers.get("refdata:ecb")

    async def fail() -> None:
        async with guard.call():
            raise OSError("down")

    for _ in range(2):
        with pytest.raises(OSError):
            await fail()
    with pytest.raises(DependencyUnavailable) as refused:
        await fail()
    assert refused.value.retry_after == 7.5 and refused.value.dependency == "refdata:ecb"
    now[0] = 7.5
    assert breakers.states() == {"refdata:ecb": int(BreakerState.HALF_OPEN)}
    async with guard.call():  # the probe
        pass
    assert breakers.states() == {"refdata:ecb": 0} and breakers.not_closed() == []


async def test_a_webhook_failing_opens_its_breaker_the_receipt_waits_in_the_outbox_and_arrives_after_it_closes(
    tmp_path: Path
) -> None:
    hook = WebhookReceiver(SECRET, fail_first=2).start()
    reset = 1.5
    try:
        # attempts=3: the two failures spend two attempts; the refusals while open must spend none, or it would be dead
        async with platform(tmp_path, failures=2, reset=reset, attempts=3) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"webhook": {"url": hook.url, "secret": SECRET}},
                                             "events": {"trade_receipt": ["webhook"]}})
            await market_buy(p, TOM)
            name = "webhook:127.0.0.1"
            await wait_for(lambda: gauge(name) == 2, 10)
            opened_at = time.monotonic()
            assert len(hook.requests) == 2
            # /readyz lists it, yet the process stays ready (orders still work); /metrics shows it
            ready = await p.readiness()  # what GET /readyz answers
            assert ready["ready"] is True and ready["status"] == "degraded"
            assert {"code": "breaker_open", "dependency": "webhook"} in [  # a user's host is not on the public page
                {k: r.get(k) for k in ("code", "dependency")} for r in ready["reasons"]]
            assert "127.0.0.1" not in str(ready["reasons"])
            metrics = generate_latest().decode()  # what GET /metrics answers
            assert f'coinwire_breaker_state{{dependency="{name}"}} 2.0' in metrics
            assert f'coinwire_breaker_opens_total{{dependency="{name}"}}' in metrics
            order = await market_buy(p, TOM)  # an open webhook breaker does not stop orders
            assert order.id > 0
            rows = await service.outbox.rows(TOM)
            assert {r.state for r in rows} == {"pending"}  # held back, nothing lost
            await wait_for(lambda: len(hook.delivered()) >= 2, 20)
            # nothing reached the host while the breaker was open; the probe went after `reset`, then the rest
            assert len(hook.requests) == 4
            assert time.monotonic() - opened_at >= reset - 0.1
            await wait_for(lambda: gauge(name) == 0, 5)
            for _ in range(100):  # the receiver has it; its row is marked sent just after
                rows = await service.outbox.rows(TOM)
                if [r.state for r in rows] == ["sent", "sent"]:
                    break
                await asyncio.sleep(0.05)
            assert [r.state for r in rows] == ["sent", "sent"]
            assert sorted(r.attempts for r in rows) == [1, 3]  # the first: 2 failures and the probe; the other: once
    finally:
        hook.stop()


async def test_telegram_5xx_opens_the_telegram_breaker_and_the_message_arrives_once_after_it(tmp_path: Path) -> None:
    token, chat = "123456:breaker-test-token-abcdefghijklmnop", "7001"
    async with TelegramServer() as tg:
        tg.add_bot(token, chat)
        tg.fail_next(token, 2, 502)
        async with platform(tmp_path, failures=2, reset=1.0, telegram=tg.api_base, attempts=3) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"telegram": {"bot_token": token, "chat_id": chat}},
                                             "events": {"trade_receipt": ["telegram"]}})
            await market_buy(p, TOM)
            await wait_for(lambda: gauge("telegram") == 2, 10)
            sends = [m for _, m in tg.requests].count("sendMessage")
            assert sends == 2
            await asyncio.sleep(0.5)
            assert [m for _, m in tg.requests].count("sendMessage") == 2  # none while open
            await tg.wait_sent(1)
            await wait_for(lambda: gauge("telegram") == 0, 5)
            assert [m for _, m in tg.requests].count("sendMessage") == 3 and len(tg.texts(token, chat)) == 1
            for _ in range(100):
                rows = await service.outbox.rows(TOM)
                if rows and rows[0].state == "sent":
                    break
                await asyncio.sleep(0.05)
            assert [(r.state, r.attempts) for r in rows] == [("sent", 3)]


class HangUp:
    """A TCP server that accepts and closes at once (an SMTP relay that is broken): counts the connections."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> HangUp:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(accept, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_a_broken_smtp_relay_opens_the_smtp_breaker_and_the_mail_is_sent_once_it_works(tmp_path: Path) -> None:
    port = free_port()
    relay = await HangUp(port).start()
    async with platform(tmp_path, port, failures=2, reset=1.0, attempts=3) as p:
        service = p.notifications
        await service.put_settings(TOM, {"channels": {"email": {"address": "tom@example.org"}},
                                         "events": {"trade_receipt": ["email"]}})
        order = await market_buy(p, TOM)
        await wait_for(lambda: gauge("smtp") == 2, 10)
        await asyncio.sleep(0.3)
        assert relay.connections == 2  # none while open
        report = await p.health.report()
        assert report["ready"] is True and any(r.get("dependency") == "smtp" for r in report["reasons"])
        await relay.stop()
        smtp = SmtpReceiver(tmp_path, port=port).start()
        try:
            await wait_for(lambda: len(smtp.messages) >= 1, 10)
            await wait_for(lambda: gauge("smtp") == 0, 5)
            assert f"<trade_receipt.{order.id}.email@coinwire.test>" in smtp.ids()
            for _ in range(100):
                rows = await service.outbox.rows(TOM)
                if rows and rows[0].state == "sent":
                    break
                await asyncio.sleep(0.05)
            assert [(r.state, r.attempts) for r in rows] == [("sent", 3)]
            assert relay.connections == 2
            assert not any(r.get("dependency") == "smtp" for r in (await p.health.report())["reasons"])
        finally:
            smtp.stop()


async def test_send_test_while_open_says_why_and_reaches_nobody(tmp_path: Path) -> None:
    hook = WebhookReceiver(SECRET, fail_first=100).start()
    try:
        async with platform(tmp_path, failures=1, reset=60.0) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"webhook": {"url": hook.url, "secret": SECRET}}, "events": {}})
            first: dict[str, Any] = await service.send_test(TOM, "webhook")
            assert first["sent"] is False and "500" in first["reason"]
            second = await service.send_test(TOM, "webhook")
            assert second["sent"] is False and second["code"] == "dependency_unavailable"
            assert len(hook.requests) == 1
    finally:
        hook.stop()


async def test_a_rule_sets_webhook_action_is_held_back_while_its_hosts_breaker_is_open(tmp_path: Path) -> None:
    from coinwire.bus import MemoryBus
    from coinwire.services.controller_actions import ActionContext, ActionRunner
    from coinwire.services.gateway import Gateway
    from coinwire.store import Store

    hook = WebhookReceiver(SECRET, fail_first=2, status=503).start()
    now = [0.0]
    breakers = Breakers(failures=2, reset_seconds=30.0, clock=lambda: now[0])
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path)})

    async def notify(*_: Any) -> int:
        return 0

    gateway = Gateway(settings, Store(f"sqlite:///{tmp_path / 'unused.db'}"), MemoryBus())  # the webhook action needs none
    runner = ActionRunner(gateway, None, notify, breakers=breakers)
    ctx = ActionContext(command_id="9:1", firing_id=9, index=1, rule_set_id=3, rule_set_name="floor", owner_id=TOM,
                        scope="account", scope_id="1", mode="live", time_ns=1, values={"value": "1"})
    action = {"kind": "webhook", "url": hook.url, "secret": SECRET}
    try:
        for _ in range(2):
            outcome = await runner.run(ctx, action, {})
            assert outcome.status == "pending" and outcome.detail["http_status"] == 503
        held = await runner.run(ctx, action, {})
        assert held.status == "pending" and held.detail["error"] == "dependency_unavailable"
        assert held.detail["dependency"] == "webhook:127.0.0.1" and len(hook.requests) == 2
        now[0] += 30.0
        done = await runner.run(ctx, action, {})
        assert done.status == "done" and [r["answered"] for r in hook.requests] == [503, 503, 200]
    finally:
        await runner.close()
        hook.stop()
