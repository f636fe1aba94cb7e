"""Where a live exchange's API keys come from: a user's entry in the credential vault, or environment variables.

Only the gateway calls this, when it connects the exchange's venue: the keys are decrypted
then and handed to the CCXT client that signs the exchange's requests, and go nowhere else
(no API answer, log line or error message carries them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from coinwire.config import ExchangeConfig
from coinwire.core.errors import NotFound
from coinwire.store import Store

if TYPE_CHECKING:
    from coinwire.auth.vault import Credentials

__all__ = ["live_credentials"]


async def live_credentials(cfg: ExchangeConfig, store: Store, data_path: Path, env: Mapping[str, str] | None = None) -> Credentials:
    """`cfg.credentials_user`'s vault entry for the exchange (`coinwire keys set`), else the configured variables."""
    from coinwire.auth.repository import AuthRepository
    from coinwire.auth.vault import Credentials, MasterKeys, Vault  # cryptography: only for live exchanges

    env = os.environ if env is None else env
    if cfg.credentials_user:
        user = await AuthRepository(store).user_by_name(cfg.credentials_user)
        if user is None:
            raise NotFound("unknown_user", f"exchange {cfg.name}: credentials_user {cfg.credentials_user!r} does not exist")
        return await Vault(store, MasterKeys.load(data_path, env)).open(int(user["id"]), cfg.name)
    return Credentials(api_key=env[cfg.credential_env("api_key")], secret=env[cfg.credential_env("secret")],
                       password=env.get(cfg.credential_env("password")) or None)
