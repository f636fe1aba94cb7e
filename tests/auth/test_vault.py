"""The credential vault on a real store: AES-GCM records bound to owner and exchange, rotation, no plaintext at rest."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import select, update

from coinwire.auth.vault import Credentials, MasterKeys, Vault, VaultError
from coinwire.core.errors import NotFound
from coinwire.store import Store
from coinwire.store.tables import credentials

CREDS = Credentials(api_key="AKIA-live-key-123", secret="s3cr3t-live-secret-456")


async def test_put_open_rotate_and_tamper(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    await store.start()
    try:
        keys = MasterKeys.load(tmp_path, {})
        assert (tmp_path / "master_keys.json").stat().st_mode & 0o777 == 0o600
        vault = Vault(store, keys)
        await vault.put(1, "binance", CREDS, 1)
        await vault.put(2, "binance", Credentials(api_key="other", secret="other-secret"), 1)
        assert await vault.open(1, "binance") == CREDS and "live" not in repr(CREDS)
        raw = (tmp_path / "c.db").read_bytes()
        assert b"s3cr3t-live-secret-456" not in raw and b"AKIA-live-key-123" not in raw
        assert [r["exchange"] for r in await vault.list(1)] == ["binance"] and "ciphertext" not in (await vault.list())[0]
        old_key = keys.current
        assert (await vault.rotate())["reencrypted"] == 2
        assert keys.current != old_key and {r["key_id"] for r in await vault.list()} == {keys.current}
        again = Vault(store, MasterKeys.load(tmp_path, {}))  # the new key was saved
        assert await again.open(1, "binance") == CREDS
        # a record copied to another owner fails authentication (owner and exchange are associated data)
        async with store.engine.begin() as conn:
            row = (await conn.execute(select(credentials).where(credentials.c.user_id == 1))).mappings().one()
            await conn.execute(update(credentials).where(credentials.c.user_id == 2).values(
                key_id=row["key_id"], nonce=row["nonce"], ciphertext=row["ciphertext"]))
        with pytest.raises(VaultError) as bad:
            await again.open(2, "binance")
        assert bad.value.code == "credentials_unreadable" and "s3cr3t" not in str(bad.value)
        with pytest.raises(NotFound):
            await again.open(1, "kraken")
        env_vault = Vault(store, MasterKeys.load(tmp_path, {"COINWIRE_MASTER_KEY": base64.b64encode(b"k" * 32).decode()}))
        with pytest.raises(VaultError) as missing:
            await env_vault.open(1, "binance")
        assert missing.value.code == "master_key_missing"
    finally:
        await store.close()
