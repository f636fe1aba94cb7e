"""Outside signals arriving at POST /api/v1/signals/{provider}: who sent them, their normalised form, stored, then to the runs.

A signal is authenticated one of two ways, both naming exactly one user:

- an API key with the scope `signals:<provider>` (auth.abilities.signal_scope), in the
  `Authorization: Bearer` header, the `key` query parameter, or the body's `key` (or
  `passphrase`) field: TradingView cannot set headers, so its alert carries the key in its
  message. Such a key can do nothing else, so one leaked from an alert cannot read or trade.
- an HMAC-SHA256 in `X-Coinwire-Signature` of `<X-Coinwire-Timestamp>.<raw body>`
  (core.outside_signals.signed_payload), under the user's secret for that provider, with
  `?user=<username>`. The timestamp (unix seconds) must be within SIGNATURE_WINDOW_S of this
  server's clock (`stale_signature` otherwise), and a signature is accepted once within that
  window (`signal_replayed`): a signal someone captured cannot trigger a trade again. Both are
  told only after the signature checks out, so they reveal nothing to a guesser. The secret is made by `rotate`, shown once, and kept in the
  credential vault (auth.vault, entry `signals/<provider>` of the user), because verifying an
  HMAC needs the secret itself, as services.external_accounts explains; every secret is opened
  at start and kept in memory, so an unknown user or provider costs the same comparison as a
  bad signature.

Every refusal of a credential answers the same 401 `invalid_signal_credentials` (unknown user,
unknown key, a key without the scope, a disabled user, a bad signature), so nothing can be
probed; a user who may not run strategies (a viewer) is refused 403. The checks come before
anything is written: the provider (404 `unknown_provider`), the body (400 naming the field),
the credential. An accepted signal is stored (the replay record) and only then queued for the
user's running runs that subscribed to the provider (RunManager.post_signal): no other user's
run can hear it, because the credential names the user and the runs are looked up by owner.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import structlog

from coinwire.auth.abilities import Principal, denial, signal_scope
from coinwire.auth.errors import Forbidden, Unauthenticated
from coinwire.auth.service import AuthService
from coinwire.auth.vault import Credentials, Vault
from coinwire.core.errors import CoinwireError, Conflict, NotFound
from coinwire.core.external_trades import signature_ok
from coinwire.core.outside_signals import (
    SIGNATURE_WINDOW_S,
    TRADINGVIEW,
    check_provider,
    normalise,
    signature_age,
    signed_payload,
    take_credential,
)
from coinwire.services.runs import RunManager
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.outside_signals import add_outside_signal, load_outside_signals
from coinwire.store.store import Store

__all__ = ["OutsideSignals", "SECRET_PREFIX", "vault_entry"]

log = structlog.get_logger("coinwire.outside_signals")

SECRET_PREFIX = "sigsec_"
_VAULT_PREFIX = "signals/"
_DECOY = secrets.token_urlsafe(32)  # what an unknown user's or provider's signature is checked against: the same work


def vault_entry(provider: str) -> str:
    """The vault's name for a user's HMAC secret of one provider (its `exchange` column)."""
    return _VAULT_PREFIX + provider


def _refused() -> Unauthenticated:
    return Unauthenticated("invalid_signal_credentials", "a signal needs an API key with the scope signals:<provider> (header, "
                           "`key` query parameter or body field) or X-Coinwire-Signature with ?user=<name>")


class OutsideSignals:
    """The server's signal providers, the users' HMAC secrets (cached from the vault), and each accepted signal's way to runs."""

    def __init__(self, providers: Sequence[str], auth: AuthService, vault: Vault, store: Store, runs: RunManager,
                 clock: Callable[[], int] = time.time_ns) -> None:
        """`providers`: the configured names (Settings.signal_providers); `tradingview` reads TradingView's format."""
        self.providers = tuple(check_provider(p) for p in providers)
        self.auth = auth
        self.vault = vault
        self.store = store
        self.runs = runs
        self.clock = clock
        self.secrets: dict[tuple[int, str], str] = {}  # (user id, provider) -> HMAC secret
        self._signed: dict[str, int] = {}  # signatures accepted within the window -> when they may be forgotten (ns)
        self._pruned_at = 0

    async def start(self) -> None:
        """Open every stored signal secret (the vault's `signals/<provider>` entries)."""
        for row in await self.vault.list():
            if not str(row["exchange"]).startswith(_VAULT_PREFIX):
                continue
            try:
                entry = await self.vault.open(row["user_id"], row["exchange"])
            except CoinwireError as exc:  # e.g. its master key is gone: that user rotates a new secret; the server starts
                log.warning("signal secret unreadable: rotate it", user_id=row["user_id"], entry=row["exchange"], code=exc.code)
                continue
            self.secrets[(row["user_id"], row["exchange"][len(_VAULT_PREFIX):])] = entry.secret

    def provider(self, name: str) -> str:
        """A provider this server takes, or 404 `unknown_provider` naming those it does."""
        if name not in self.providers:
            raise NotFound("unknown_provider", f"this server takes signals of {', '.join(self.providers) or 'no provider'}, "
                           f"not {name!r}", provider=name[:32])
        return name

    async def rotate(self, principal: Principal, provider: str) -> dict[str, Any]:
        """A new HMAC secret of `provider` for the caller, stored before it is answered; the old one stops working at once."""
        self.provider(provider)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        await self.vault.put(principal.user_id, vault_entry(provider), Credentials(api_key=provider, secret=secret), self.clock())
        self.secrets[(principal.user_id, provider)] = secret
        log.info("signal secret rotated", user_id=principal.user_id, provider=provider)
        return {"provider": provider, "secret": secret, "url": f"/api/v1/signals/{provider}?user={principal.username}"}

    async def receive(self, provider: str, raw: bytes, body: Any, key: str | None, signature: str | None,
                      username: str | None, timestamp: str | None = None) -> dict[str, Any]:
        """Check, store and queue one signal; the answer names the runs it was queued for. Raises on any refusal.

        `timestamp`: the signed signal's X-Coinwire-Timestamp (part of what the signature covers)."""
        self.provider(provider)
        body, in_body = take_credential(body) if isinstance(body, dict) else (body, None)  # not an object: normalise refuses it
        received = self.clock()
        signal = normalise(provider, body, received, tradingview=provider == TRADINGVIEW)
        user_id = await self._signed_by(provider, raw, signature, username, timestamp) if signature is not None else \
            await self._keyed(provider, key or in_body)
        try:
            await add_outside_signal(self.store, user_id, signal, received)
        except Exception as exc:
            if signature is not None:  # not accepted after all: the sender's retry of the same signed signal is not a replay
                self._signed.pop(signature.strip().lower(), None)
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise
        runs = self.runs.post_signal(user_id, signal)
        log.info("outside signal", user_id=user_id, provider=provider, method=signal["method"], runs=len(runs))
        return {"provider": provider, "method": signal["method"], "ts": signal["ts"], "runs": len(runs), "run_ids": runs}

    async def _keyed(self, provider: str, key: str | None) -> int:
        if not key or not key.startswith("cwk_"):
            raise _refused()
        try:
            principal = await self.auth.authenticate(key)
        except CoinwireError:
            raise _refused() from None
        if principal.scopes is None or signal_scope(provider) not in principal.scopes:
            raise _refused()
        self._may_run(principal)
        return principal.user_id

    async def _signed_by(self, provider: str, raw: bytes, signature: str, username: str | None, timestamp: str | None) -> int:
        user = await self.auth.repo.user_by_name(username) if isinstance(username, str) and 0 < len(username) <= 64 else None
        secret = self.secrets.get((user["id"], provider)) if user is not None else None
        good = signature_ok(secret if secret is not None else _DECOY, signed_payload(timestamp or "", raw), signature)
        if user is None or secret is None or not good or user["disabled"]:
            raise _refused()
        now = self.clock()
        age = signature_age(timestamp, now)
        if age is None or age > SIGNATURE_WINDOW_S:
            raise Unauthenticated("stale_signature", f"X-Coinwire-Timestamp must be this server's time within {SIGNATURE_WINDOW_S} s "
                                  "(unix seconds, part of what is signed): send a new signature with the time now")
        if len(self._signed) > 4096 and now - self._pruned_at > 1_000_000_000:  # at most once a second, however busy
            self._signed = {s: until for s, until in self._signed.items() if until > now}
            self._pruned_at = now
        seen = signature.strip().lower()
        if self._signed.get(seen, 0) > now:
            raise Conflict("signal_replayed", "this signed signal was received already: each is accepted once "
                           "(sign each signal with its own timestamp)")
        self._may_run(Principal(user["id"], user["username"], user["role"], user["plan"]))
        self._signed[seen] = now + 2 * SIGNATURE_WINDOW_S * 1_000_000_000  # past the window either way: stale by then
        return int(user["id"])

    @staticmethod
    def _may_run(principal: Principal) -> None:
        """A user who may not run strategies has no runs a signal could move: refused, whatever the credential."""
        if denial(msgspec.structs.replace(principal, scopes=None), "manage", "run") is not None:
            raise Forbidden("forbidden", "signals reach the runs of users who may run strategies")

    async def received(self, principal: Principal, provider: str, since_ns: int, limit: int) -> list[dict[str, Any]]:
        """The caller's own recorded signals of `provider` from `since_ns`, oldest first: a backtest's `signals.jsonl` lines."""
        self.provider(provider)
        await self.store.settled()
        return await load_outside_signals(self.store, principal.user_id, provider, since_ns, limit)
