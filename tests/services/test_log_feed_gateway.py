"""A warning the gateway logs (a change set the store refused) becomes a `logmessages` message on the bus, with its context."""

from __future__ import annotations

import asyncio
import io

import structlog

from coinwire.logs import configure_logging, forward_warnings
from coinwire.messages import LogMessage, Message
from coinwire.services.gateway import Gateway
from coinwire.services.log_feed import LogFeed
from tests.services.test_gateway_commit import gateway, request  # noqa: F401 - the fixture: a gateway over PostgreSQL


async def test_a_refused_change_set_is_logged_as_a_warning_message_about_its_owner(gateway: Gateway) -> None:  # noqa: F811
    got: list[LogMessage] = []

    def on_log(_subject: str, message: Message) -> None:
        assert isinstance(message, LogMessage)
        got.append(message)

    sub = await gateway.bus.subscribe("log.>", on_log, types=frozenset({LogMessage}), inline=True)
    out = io.StringIO()
    configure_logging("info", out)
    feed = LogFeed(gateway, 20)
    forward_warnings(feed.forward)
    try:
        try:
            await gateway.make_order(request(gateway, 2, "b" * 100, market=False))  # the run_id column is VARCHAR(64)
        except Exception as exc:  # noqa: BLE001 - the refusal is the point
            assert getattr(exc, "code", None) == "store_value_refused", repr(exc)
        else:
            raise AssertionError("the store took a 100-character run_id")
        for _ in range(100):
            if any(m.level == "warning" for m in got):
                break
            await asyncio.sleep(0.02)
    finally:
        forward_warnings(None)
        await feed.close()
        await sub.unsubscribe()
        structlog.reset_defaults()
    warnings = [m for m in got if m.level == "warning"]
    assert len(warnings) == 1, got
    warning = warnings[0]
    assert warning.name == "coinwire.gateway" and warning.message == "change set refused by the store; taken back"
    assert warning.context.get("code") == "store_value_refused" and warning.ts > 0
    assert warning.owner_id is None  # a server warning: admins only
    assert "change set refused by the store" in out.getvalue()  # still in the process's log as before
    assert warning in gateway.recent_logs.messages  # and kept for GET /api/v1/logs
