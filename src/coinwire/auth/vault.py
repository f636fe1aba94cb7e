"""The credential vault: exchange API keys encrypted with AES-256-GCM under named master keys.

Each record is encrypted under the current master key with a fresh 96-bit nonce and the
owner and exchange as associated data (a row moved to another user or exchange fails to
decrypt). The row keeps the key id, so `rotate()` can re-encrypt everything under a new
key while old rows stay readable. Master keys come from COINWIRE_MASTER_KEY (base64 of 32
bytes, key id `env`), or from `<data_dir>/master_keys.json` (mode 0600), created on first use.
Plaintext exists only inside `open()`, called by whoever makes the exchange call; the
vault never logs or returns secrets in errors.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coinwire.auth.tokens import write_private
from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.store import Store
from coinwire.store.tables import credentials

__all__ = ["Credentials", "MasterKeys", "Vault", "VaultError"]

_FILE = "master_keys.json"


class VaultError(CoinwireError):
    """A record that cannot be decrypted (wrong or missing master key): the message never holds secrets."""

    http_status = 500


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an exchange call needs; `repr` hides the values."""

    api_key: str
    secret: str
    password: str | None = None

    def __repr__(self) -> str:
        return "Credentials(***)"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class MasterKeys:
    """Named 256-bit keys and which one encrypts new records."""

    def __init__(self, keys: dict[str, bytes], current: str, path: Path | None = None) -> None:
        if current not in keys or any(len(k) != 32 for k in keys.values()):
            raise VaultError("invalid_master_key", "master keys must be 32 bytes and the current one must exist")
        self.keys, self.current, self.path = keys, current, path

    @classmethod
    def load(cls, data_dir: Path, env: Mapping[str, str]) -> MasterKeys:
        raw = env.get("COINWIRE_MASTER_KEY", "")
        if raw:
            try:
                key = base64.b64decode(raw, validate=True)
            except ValueError:
                raise VaultError("invalid_master_key", "COINWIRE_MASTER_KEY must be base64 of 32 bytes") from None
            return cls({"env": key}, "env")
        path = data_dir / _FILE
        if not path.exists():
            key_id = secrets.token_hex(4)
            try:
                write_private(path, json.dumps({"current": key_id, "keys": {key_id: _b64(AESGCM.generate_key(256))}}).encode())
            except FileExistsError:
                pass
        data = json.loads(path.read_text())
        return cls({k: base64.b64decode(v) for k, v in data["keys"].items()}, data["current"], path)

    def add_new(self) -> str:
        """A new current key, saved to the key file (0600) before anything is encrypted with it."""
        if self.path is None:
            raise InvalidInput("rotation_needs_file", "keys from COINWIRE_MASTER_KEY rotate by changing the variable; use a key file")
        key_id = secrets.token_hex(4)
        self.keys[key_id] = AESGCM.generate_key(256)
        self.current = key_id
        tmp = self.path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        write_private(tmp, json.dumps({"current": key_id, "keys": {k: _b64(v) for k, v in self.keys.items()}}).encode())
        os.replace(tmp, self.path)
        return key_id


class Vault:
    """Encrypted exchange credentials per (user, exchange) in the store."""

    def __init__(self, store: Store, keys: MasterKeys) -> None:
        self.store, self.keys = store, keys

    def _seal(self, user_id: int, exchange: str, creds: Credentials) -> dict[str, Any]:
        nonce = secrets.token_bytes(12)
        box = AESGCM(self.keys.keys[self.keys.current]).encrypt(nonce, msgspec.json.encode(creds), f"{user_id}:{exchange}".encode())
        return {"key_id": self.keys.current, "nonce": nonce.hex(), "ciphertext": _b64(box)}

    def _unseal(self, row: dict[str, Any]) -> Credentials:
        key = self.keys.keys.get(row["key_id"])
        if key is None:
            raise VaultError("master_key_missing", f"the master key {row['key_id']!r} of this record is not available")
        try:
            plain = AESGCM(key).decrypt(bytes.fromhex(row["nonce"]), base64.b64decode(row["ciphertext"]),
                                        f"{row['user_id']}:{row['exchange']}".encode())
        except (InvalidTag, ValueError):
            raise VaultError("credentials_unreadable", "stored credentials failed authentication (wrong key or altered)") from None
        return msgspec.json.decode(plain, type=Credentials)

    async def put(self, user_id: int, exchange: str, creds: Credentials, now: int) -> None:
        if not creds.api_key.strip() or not creds.secret.strip():  # a blank line is a paste gone wrong, never a key
            raise InvalidInput("empty_credentials", "the API key and the secret must not be empty or blank")
        row = {"user_id": user_id, "exchange": exchange, **self._seal(user_id, exchange, creds), "updated_at": now}
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        statement = dialect.insert(credentials).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=["user_id", "exchange"], set_={k: statement.excluded[k] for k in ("key_id", "nonce", "ciphertext", "updated_at")}
        )
        async with self.store.engine.begin() as conn:
            await conn.execute(statement)

    async def open(self, user_id: int, exchange: str) -> Credentials:
        """Decrypt one record: call this at the moment of the exchange call and drop the result after."""
        async with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(
                select(credentials).where(and_(credentials.c.user_id == user_id, credentials.c.exchange == exchange)))]
        if not rows:
            raise NotFound("no_credentials", f"no stored credentials for exchange {exchange!r}")
        return self._unseal(rows[0])

    async def list(self, user_id: int | None = None) -> list[dict[str, Any]]:
        """Which records exist (user, exchange, key id, updated): never their contents."""
        statement = select(credentials.c.user_id, credentials.c.exchange, credentials.c.key_id, credentials.c.updated_at)
        if user_id is not None:
            statement = statement.where(credentials.c.user_id == user_id)
        async with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(statement.order_by(credentials.c.user_id, credentials.c.exchange))]

    async def delete(self, user_id: int, exchange: str) -> bool:
        async with self.store.engine.begin() as conn:
            result = await conn.execute(
                delete(credentials).where(and_(credentials.c.user_id == user_id, credentials.c.exchange == exchange)))
        return bool(result.rowcount)

    async def rotate(self) -> dict[str, Any]:
        """A new master key; every record re-encrypted under it in one transaction. Old keys stay readable."""
        new_id = self.keys.add_new()
        async with self.store.writer.begin() as conn:  # reads, then writes: Store.writer says why
            rows = [dict(r._mapping) for r in await conn.execute(select(credentials))]
            for row in rows:
                sealed = self._seal(row["user_id"], row["exchange"], self._unseal(row))
                await conn.execute(update(credentials).where(
                    and_(credentials.c.user_id == row["user_id"], credentials.c.exchange == row["exchange"])).values(**sealed))
        return {"key_id": new_id, "reencrypted": len(rows)}
