"""The outside-signals service on a real store (SQLite and PostgreSQL): an HMAC secret survives a restart of the service
(opened from the vault at start), a signed signal is stored and read back as its owner's only, another user's name or a
bad signature is refused alike, and a viewer's signal is refused whatever her credential."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from coinwire.auth.abilities import Principal
from coinwire.auth.errors import Forbidden, Unauthenticated
from coinwire.auth.repository import AuthRepository
from coinwire.auth.service import AuthService
from coinwire.auth.tokens import TokenSigner
from coinwire.auth.vault import MasterKeys, Vault
from coinwire.core.errors import NotFound
from coinwire.core.external_trades import sign
from coinwire.core.outside_signals import signed_payload
from coinwire.services.outside_signals import OutsideSignals
from coinwire.services.runs import RunManager
from coinwire.store import Store

NOW = 1_800_000_000_000_000_000
TS = str(NOW // 1_000_000_000)  # the signed signals' X-Coinwire-Timestamp: the service's time now


def signed(secret: str, raw: bytes) -> str:
    return sign(secret, signed_payload(TS, raw))


def service(store: Store, tmp_path: Path, auth: AuthService) -> OutsideSignals:
    return OutsideSignals(["tradingview", "news"], auth, Vault(store, MasterKeys.load(tmp_path, {})), store,
                          RunManager(tmp_path, allow_user_strategies=False), clock=lambda: NOW)


async def test_a_secret_outlives_a_restart_and_signals_stay_their_owners(store: Store, tmp_path: Path) -> None:
    auth = AuthService(AuthRepository(store), TokenSigner(secrets.token_bytes(32)))
    users = {name: await auth.create_user(name, f"{name}-password", role) for name, role in
             (("ann", "trader"), ("ben", "trader"), ("val", "viewer"))}
    principal = {n: Principal(u["id"], u["username"], u["role"], u["plan"]) for n, u in users.items()}
    first = service(store, tmp_path, auth)
    await first.start()
    secret = (await first.rotate(principal["ann"], "news"))["secret"]
    with pytest.raises(NotFound):
        await first.rotate(principal["ann"], "generic")  # not a provider of this server
    again = service(store, tmp_path, auth)  # a restarted server: the secret comes from the vault
    await again.start()
    body = {"method": "headline", "params": {"text": "ETF"}}
    raw = json.dumps(body).encode()
    answer = await again.receive("news", raw, body, None, signed(secret, raw), "ann", TS)
    assert (answer["method"], answer["ts"], answer["runs"]) == ("headline", NOW, 0)
    for user, signature in (("ben", signed(secret, raw)), ("ann", signed(secret, raw + b" ")), ("nobody", signed(secret, raw)),
                            ("ann", sign(secret, raw))):  # the last: the body alone signed, not its time
        with pytest.raises(Unauthenticated) as refused:
            await again.receive("news", raw, body, None, signature, user, TS)
        assert refused.value.code == "invalid_signal_credentials"
    # a secret made while she could run strategies (the route refuses a viewer one): as a viewer, her signals move nothing
    viewer_secret = (await again.rotate(principal["val"], "news"))["secret"]
    with pytest.raises(Forbidden):
        await again.receive("news", raw, body, None, signed(viewer_secret, raw), "val", TS)
    assert await again.received(principal["ann"], "news", 0, 10) == [
        {"provider": "news", "method": "headline", "ts": NOW, "params": {"text": "ETF"}}]
    assert await again.received(principal["ben"], "news", 0, 10) == []
    assert await again.received(principal["ann"], "news", NOW + 1, 10) == []
