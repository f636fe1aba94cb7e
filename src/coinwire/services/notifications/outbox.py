"""The notifications' store: each user's channels (secrets sealed), subscriptions, and the outbox of deliveries.

The outbox is what makes a notification exactly-once from our side. A delivery becomes a row
whose `key` is UNIQUE (`trade_receipt:<order id>:email`): deriving it again (a bus replay, the
recovery scan at start) inserts nothing. A row moves pending -> sending -> sent, or back to
pending with a later `next_at` after a failure, or to dead once its attempts are spent. It is
marked `sending` (with its attempt counted) in its own transaction BEFORE the channel is
called: after a crash a `sending` row is sent again with the same key, which the receiver
dedupes (the e-mail's Message-ID, the webhook's X-Coinwire-Delivery). So a crash can cost a
repeat the receiver recognises, never a lost notification. See docs/NOTIFICATIONS.md.

Channel secrets (a Telegram bot token, a webhook's signing secret) are sealed with the
credential vault's master keys (AES-256-GCM, `notify:<user>:<kind>` as associated data, so a
row copied to another user or channel does not open) and opened only to send.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coinwire.auth.vault import MasterKeys
from coinwire.core.errors import NotFound
from coinwire.services.notifications.channels import Delivery
from coinwire.store import Store
from coinwire.store.tables import notify_channels, notify_outbox, notify_subscriptions

__all__ = ["ChannelRow", "NotificationStore", "OutboxRow", "SECRET_FIELDS"]

# the one field of each channel kind that is a secret: sealed in the store, never answered
SECRET_FIELDS = {"telegram": "bot_token", "webhook": "secret"}
_decode_delivery = msgspec.json.Decoder(Delivery).decode


class ChannelRow(msgspec.Struct, frozen=True):
    """A user's channel as stored: its public settings, and whether a secret is set (never the secret)."""

    kind: str
    settings: dict[str, Any]
    has_secret: bool


class OutboxRow(msgspec.Struct, frozen=True):
    id: int
    key: str
    user_id: int
    channel: str
    event: str
    delivery: Delivery
    state: str
    attempts: int
    next_at: int
    last_error: str | None
    created_at: int
    updated_at: int


def _row(values: Mapping[str, Any]) -> OutboxRow:
    return OutboxRow(values["id"], values["key"], values["user_id"], values["channel"], values["event"],
                     _decode_delivery(values["payload"]), values["state"], values["attempts"], values["next_at"],
                     values["last_error"], values["created_at"], values["updated_at"])


class NotificationStore:
    """Channels, subscriptions and the outbox over a started `Store`; each call is one short transaction."""

    def __init__(self, store: Store, keys: MasterKeys, clock: Callable[[], int] = time.time_ns) -> None:
        self.store, self.keys, self.clock = store, keys, clock

    def _dialect(self) -> Any:
        return postgresql if self.store.dialect == "postgresql" else sqlite

    # --- secrets -----------------------------------------------------------------------------------
    def _seal(self, user_id: int, kind: str, secret: str) -> dict[str, Any]:
        nonce = secrets.token_bytes(12)
        box = AESGCM(self.keys.keys[self.keys.current]).encrypt(nonce, secret.encode(), f"notify:{user_id}:{kind}".encode())
        return {"key_id": self.keys.current, "nonce": nonce.hex(), "ciphertext": base64.b64encode(box).decode()}

    def _unseal(self, values: Mapping[str, Any]) -> str | None:
        if values["ciphertext"] is None:
            return None
        key = self.keys.keys.get(values["key_id"])
        if key is None:
            return None  # the master key is gone: the channel has no usable secret (the send says so)
        try:
            plain = AESGCM(key).decrypt(bytes.fromhex(values["nonce"]), base64.b64decode(values["ciphertext"]),
                                        f"notify:{values['user_id']}:{values['kind']}".encode())
        except (InvalidTag, ValueError):
            return None
        return plain.decode()

    # --- settings ------------------------------------------------------------------------------------
    async def settings(self, user_id: int) -> tuple[dict[str, ChannelRow], dict[str, list[str]]]:
        """The user's channels (no secret) and subscriptions (event -> channels, sorted)."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(notify_channels).where(notify_channels.c.user_id == user_id))).all()
            subs = (await conn.execute(select(notify_subscriptions).where(notify_subscriptions.c.user_id == user_id))).all()
        channels = {r.kind: ChannelRow(r.kind, msgspec.json.decode(r.settings), r.ciphertext is not None) for r in rows}
        events: dict[str, list[str]] = {}
        for s in subs:
            events.setdefault(s.event, []).append(s.channel)
        return channels, {e: sorted(c) for e, c in sorted(events.items())}

    async def replace(self, user_id: int, channels: Mapping[str, tuple[dict[str, Any], str | None]],
                      events: Mapping[str, Iterable[str]]) -> None:
        """Set the user's channels and subscriptions to exactly these, in one transaction.

        `channels`: kind -> (public settings, secret); a secret of None keeps the stored one.
        """
        now = int(self.clock())
        async with self.store.writer.begin() as conn:  # reads, then writes: Store.writer says why
            kept = {r.kind: dict(r._mapping) for r in (await conn.execute(
                select(notify_channels).where(notify_channels.c.user_id == user_id))).all()}
            await conn.execute(delete(notify_channels).where(notify_channels.c.user_id == user_id))
            await conn.execute(delete(notify_subscriptions).where(notify_subscriptions.c.user_id == user_id))
            for kind, (settings, secret) in channels.items():
                sealed: dict[str, Any] = {"key_id": None, "nonce": None, "ciphertext": None}
                if secret is not None:
                    sealed = self._seal(user_id, kind, secret)
                elif kind in kept:
                    sealed = {k: kept[kind][k] for k in sealed}
                await conn.execute(insert(notify_channels).values(
                    user_id=user_id, kind=kind, settings=msgspec.json.encode(settings).decode(), updated_at=now, **sealed))
            rows = [{"user_id": user_id, "event": e, "channel": c} for e, cs in events.items() for c in set(cs)]
            if rows:
                await conn.execute(insert(notify_subscriptions), rows)

    async def target(self, user_id: int, kind: str) -> dict[str, Any] | None:
        """The channel's settings with its secret opened (only for a send), None when the user has no such channel."""
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(notify_channels).where(
                and_(notify_channels.c.user_id == user_id, notify_channels.c.kind == kind)))).first()
        if row is None:
            return None
        values = row._mapping
        target: dict[str, Any] = msgspec.json.decode(values["settings"])
        if kind in SECRET_FIELDS:
            target[SECRET_FIELDS[kind]] = self._unseal(dict(values))
        return target

    async def users_with(self, kind: str) -> list[int]:
        """Every user who has set a channel of this kind (a process's Telegram bots at its start)."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(notify_channels.c.user_id).where(notify_channels.c.kind == kind))).all()
        return sorted(r.user_id for r in rows)

    async def subscribed(self, user_id: int, event: str) -> list[str]:
        """The channels the user chose for `event`."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(notify_subscriptions.c.channel).where(
                and_(notify_subscriptions.c.user_id == user_id, notify_subscriptions.c.event == event)))).all()
        return sorted(r.channel for r in rows)

    async def subscribers(self, event: str) -> list[int]:
        """Every user with a channel chosen for `event` (events that are no one order's, like an exchange degraded)."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(notify_subscriptions.c.user_id).where(
                notify_subscriptions.c.event == event).distinct())).all()
        return sorted(r.user_id for r in rows)

    async def channels_since(self, user_id: int) -> int | None:
        """When the user last set their channels (ns), None when they have none."""
        async with self.store.engine.connect() as conn:
            value = (await conn.execute(select(func.max(notify_channels.c.updated_at)).where(
                notify_channels.c.user_id == user_id))).scalar()
        return None if value is None else int(value)

    # --- the outbox ----------------------------------------------------------------------------------
    async def enqueue(self, deliveries: Iterable[tuple[str, Delivery]]) -> int:
        """Add (channel, delivery) rows due now; a key already there adds nothing. How many rows were new."""
        now = int(self.clock())
        rows = [{"key": d.key, "user_id": d.user_id, "channel": channel, "event": d.event,
                 "payload": msgspec.json.encode(d).decode(), "state": "pending", "attempts": 0, "next_at": now,
                 "last_error": None, "created_at": now, "updated_at": now} for channel, d in deliveries]
        if not rows:
            return 0
        statement = self._dialect().insert(notify_outbox).on_conflict_do_nothing(index_elements=["key"])
        added = 0
        async with self.store.engine.begin() as conn:
            for row in rows:
                added += (await conn.execute(statement, row)).rowcount or 0
        return added

    async def release_sending(self) -> int:
        """At start: rows left `sending` by a crash go back to pending, to be sent again under the same key."""
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(notify_outbox).where(notify_outbox.c.state == "sending")
                                        .values(state="pending", updated_at=int(self.clock())))
        return result.rowcount or 0

    async def due(self, limit: int = 100) -> list[OutboxRow]:
        """Pending rows whose time has come, oldest first."""
        now = int(self.clock())
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(notify_outbox).where(
                and_(notify_outbox.c.state == "pending", notify_outbox.c.next_at <= now))
                .order_by(notify_outbox.c.next_at, notify_outbox.c.id).limit(limit))).all()
        return [_row(dict(r._mapping)) for r in rows]

    async def next_due_at(self) -> int | None:
        """When the earliest pending row is due (ns), None when there is none."""
        async with self.store.engine.connect() as conn:
            value = (await conn.execute(select(func.min(notify_outbox.c.next_at)).where(notify_outbox.c.state == "pending"))).scalar()
        return None if value is None else int(value)

    async def claim(self, row_id: int) -> int | None:
        """Mark a pending row `sending` and count its attempt (recorded before the send); its attempt number, or
        None when another worker claimed it first."""
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(notify_outbox).where(
                and_(notify_outbox.c.id == row_id, notify_outbox.c.state == "pending"))
                .values(state="sending", attempts=notify_outbox.c.attempts + 1, updated_at=int(self.clock())))
            if not result.rowcount:
                return None
            return int((await conn.execute(select(notify_outbox.c.attempts).where(notify_outbox.c.id == row_id))).scalar_one())

    async def sent(self, row_id: int) -> None:
        await self._set(row_id, state="sent", last_error=None)

    async def failed(self, row_id: int, reason: str, next_at: int | None) -> None:
        """A failed attempt: pending again at `next_at`, or dead (None)."""
        if next_at is None:
            await self._set(row_id, state="dead", last_error=reason)
        else:
            await self._set(row_id, state="pending", last_error=reason, next_at=next_at)

    async def deferred(self, row_id: int, reason: str, next_at: int) -> None:
        """A claimed row that was not tried (its dependency's breaker is open): pending again at `next_at`, its attempt
        given back, so a dependency's outage never spends a delivery's attempts nor parks it as a dead letter."""
        await self._set(row_id, state="pending", last_error=reason, next_at=next_at,
                        attempts=notify_outbox.c.attempts - 1)

    async def _set(self, row_id: int, **values: Any) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(update(notify_outbox).where(notify_outbox.c.id == row_id)
                               .values(updated_at=int(self.clock()), **values))

    async def rows(self, user_id: int | None = None, state: str | None = None, limit: int = 100) -> list[OutboxRow]:
        """Outbox rows, newest first: a user's (None: everyone's), in one state (None: any)."""
        statement = select(notify_outbox)
        if user_id is not None:
            statement = statement.where(notify_outbox.c.user_id == user_id)
        if state is not None:
            statement = statement.where(notify_outbox.c.state == state)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(statement.order_by(notify_outbox.c.id.desc()).limit(limit))).all()
        return [_row(dict(r._mapping)) for r in rows]

    async def retry(self, user_id: int, row_id: int) -> OutboxRow:
        """A user's dead letter back to pending, its attempts counted afresh; NotFound for anyone else's or a live row."""
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(notify_outbox).where(and_(
                notify_outbox.c.id == row_id, notify_outbox.c.user_id == user_id, notify_outbox.c.state == "dead"))
                .values(state="pending", attempts=0, next_at=int(self.clock()), updated_at=int(self.clock())))
            if not result.rowcount:
                raise NotFound("dead_letter_not_found", f"you have no dead letter {row_id}")
            row = (await conn.execute(select(notify_outbox).where(notify_outbox.c.id == row_id))).one()
        return _row(dict(row._mapping))
