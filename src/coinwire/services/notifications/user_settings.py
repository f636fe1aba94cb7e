"""A user's notification settings as the API reads and writes them: checked, and answered without secrets.

    {"channels": {"email": {"address": "me@example.org"},
                  "telegram": {"bot_token": "123:abc", "chat_id": "42"},
                  "webhook": {"url": "https://example.org/hook", "secret": "..."}},
     "events": {"trade_receipt": ["email", "webhook"], "order_filled": ["telegram"]}}

A PUT sets exactly what it sends (a channel or event left out is removed). A secret
(`bot_token`, `secret`) left out keeps the stored one; answers say `"set"` in its place and
never carry it. Every refusal names its problem with a stable code, and nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from coinwire.core.errors import InvalidInput
from coinwire.services.notifications.channels import EVENTS
from coinwire.services.notifications.email import check_address
from coinwire.services.notifications.outbox import SECRET_FIELDS, ChannelRow
from coinwire.services.notifications.webhook import check_url

__all__ = ["CHANNEL_KINDS", "checked_settings", "settings_view"]

CHANNEL_KINDS = ("email", "telegram", "webhook")
_FIELDS = {"email": ("address",), "telegram": ("bot_token", "chat_id"), "webhook": ("url", "secret")}
_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")  # what BotFather hands out: "<bot id>:<35 characters>"
_CHAT_ID = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")
SECRET_MIN, SECRET_MAX = 16, 256


def checked_settings(body: object, available: Collection[str], stored: Mapping[str, ChannelRow]
                     ) -> tuple[dict[str, tuple[dict[str, Any], str | None]], dict[str, list[str]]]:
    """The body's channels (kind -> (public settings, secret or None to keep)) and events, or InvalidInput.

    `available`: the channel kinds this server can send; `stored`: the user's channels now (a
    secret may be left out only where one is stored).
    """
    if not isinstance(body, dict) or set(body) - {"channels", "events"}:
        raise InvalidInput("invalid_params", 'the body must be {"channels": {...}, "events": {...}}')
    raw_channels, raw_events = body.get("channels", {}), body.get("events", {})
    if not isinstance(raw_channels, dict) or not isinstance(raw_events, dict):
        raise InvalidInput("invalid_params", '"channels" and "events" must be objects')
    channels: dict[str, tuple[dict[str, Any], str | None]] = {}
    for kind, values in raw_channels.items():
        if kind not in CHANNEL_KINDS:
            raise InvalidInput("unknown_channel", f"unknown channel {kind!r}; channels are {', '.join(CHANNEL_KINDS)}", channel=kind)
        if kind not in available:
            raise InvalidInput("channel_unavailable", f"this server cannot send {kind} notifications", channel=kind)
        if not isinstance(values, dict):
            raise InvalidInput("invalid_params", f"channels.{kind} must be an object")
        extra = set(values) - set(_FIELDS[kind])
        if extra:
            raise InvalidInput("invalid_params", f"channels.{kind} has unknown fields: {', '.join(sorted(extra))}")
        channels[kind] = _channel(kind, values, stored.get(kind))
    events: dict[str, list[str]] = {}
    for event, chosen in raw_events.items():
        if event not in EVENTS:
            raise InvalidInput("unknown_event", f"unknown event {event!r}; events are {', '.join(EVENTS)}", event=event)
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            raise InvalidInput("invalid_params", f"events.{event} must be a list of channel names")
        for kind in chosen:
            if kind not in CHANNEL_KINDS:
                raise InvalidInput("unknown_channel", f"unknown channel {kind!r} in events.{event}", channel=kind)
            if kind not in channels:
                raise InvalidInput("channel_not_configured", f"events.{event} names {kind}, but no {kind} channel is set",
                                   channel=kind, event=event)
        if chosen:
            events[event] = sorted(set(chosen))
    return channels, events


def _channel(kind: str, values: Mapping[str, Any], stored: ChannelRow | None) -> tuple[dict[str, Any], str | None]:
    if kind == "email":
        address = check_address(values.get("address"))
        if address is None:
            raise InvalidInput("invalid_email", "channels.email.address must be an e-mail address like name@example.org")
        return {"address": address}, None
    secret_field = SECRET_FIELDS[kind]
    secret = values.get(secret_field)
    if secret is None and (stored is None or not stored.has_secret):
        raise InvalidInput(f"missing_{secret_field}", f"channels.{kind}.{secret_field} is needed (none is stored yet)")
    if kind == "telegram":
        if secret is not None and (not isinstance(secret, str) or not _BOT_TOKEN.fullmatch(secret)):
            raise InvalidInput("invalid_bot_token", "channels.telegram.bot_token must be a token as BotFather gives it (123456:ABC...)")
        chat = values.get("chat_id")
        chat = str(chat) if isinstance(chat, int) and not isinstance(chat, bool) else chat
        if not isinstance(chat, str) or not _CHAT_ID.fullmatch(chat):
            raise InvalidInput("invalid_chat_id", "channels.telegram.chat_id must be a chat's number or a @channel name")
        return {"chat_id": chat}, secret
    url = check_url(values.get("url"))
    if secret is not None and (not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX):
        raise InvalidInput("invalid_webhook_secret", f"channels.webhook.secret must be {SECRET_MIN} to {SECRET_MAX} characters")
    return {"url": url}, secret


def settings_view(channels: Mapping[str, ChannelRow], events: Mapping[str, list[str]]) -> dict[str, Any]:
    """The answer: public settings, `"set"` for a stored secret, every event (an empty list when none)."""
    out: dict[str, Any] = {}
    for kind, row in sorted(channels.items()):
        view = dict(row.settings)
        if kind in SECRET_FIELDS:
            view[SECRET_FIELDS[kind]] = "set" if row.has_secret else None
        out[kind] = view
    return {"channels": out, "events": {e: list(events.get(e, [])) for e in EVENTS}}
