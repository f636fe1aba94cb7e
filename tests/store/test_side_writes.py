"""A side store's transaction that reads and then writes begins on `Store.writer`: on SQLite it waits for another writer's
commit instead of failing at once with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from coinwire.auth.vault import MasterKeys
from coinwire.services.notifications.outbox import NotificationStore
from coinwire.store import Store


async def test_settings_replaced_while_another_connection_commits_wait_their_turn(tmp_path: Path) -> None:
    """The intermittent 500 on PUT /api/v1/me/notifications: its replace read the user's channels, another connection (the
    outbox worker) committed, and the replace's delete could no longer upgrade its stale snapshot to a write."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'side.db'}", journal=False)
    await store.start()
    try:
        notifications = NotificationStore(store, MasterKeys.load(tmp_path, {}))
        await notifications.replace(1, {"email": ({"address": "a@example.org"}, None)}, {"trade_receipt": ["email"]})
        other = sqlite3.connect(tmp_path / "side.db", isolation_level=None, timeout=10)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock while the replace starts
        other.execute("UPDATE notify_channels SET updated_at = updated_at + 1")
        replacing = asyncio.create_task(notifications.replace(
            1, {"webhook": ({"url": "https://example.org/h"}, "s3cret")}, {"order_filled": ["webhook"]}))
        await asyncio.sleep(0.2)
        assert not replacing.done()  # waiting for the lock, not failed
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(replacing, 10)
        stored, events = await notifications.settings(1)
        assert list(stored) == ["webhook"] and events == {"order_filled": ["webhook"]}
    finally:
        await store.close()
