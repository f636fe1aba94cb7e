"""A long-lived connection's re-check of its session answers `store_unavailable` when the store does not answer, never hangs."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import pytest
from sqlalchemy import text

from coinwire.auth import service
from coinwire.auth.repository import AuthRepository
from coinwire.auth.service import AuthService
from coinwire.auth.tokens import TokenSigner
from coinwire.core.errors import NotReady
from coinwire.store import Store


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_recheck_the_store_does_not_answer_is_store_unavailable_within_its_patience(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "RECHECK_PATIENCE", 0.5)
    auth = AuthService(AuthRepository(store), TokenSigner(secrets.token_bytes(32)))
    await auth.create_user("ann", "correct horse battery", role="trader")
    tokens = await auth.login("ann", "correct horse battery", "10.0.0.1")
    principal = await auth.authenticate(tokens["access_token"])
    assert (await auth.recheck(principal)).user_id == principal.user_id  # the store answers: confirmed
    holder = Store(store.url, schema=store.schema)  # another connection holds the sessions table: reads of it wait
    await holder.start()
    try:
        async with holder.engine.begin() as conn:
            await conn.execute(text("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            with pytest.raises(NotReady) as refused:
                await auth.recheck(principal)
            waited = time.monotonic() - started
        assert refused.value.code == "store_unavailable" and 0.4 <= waited < 3, waited
        assert (await asyncio.wait_for(auth.recheck(principal), 5)).user_id == principal.user_id  # the lock gone: confirmed
    finally:
        await holder.close()
