"""External accounts: opening one with its webhook secret, rotating the secret, and applying the trades its webhook delivers.

An external account tracks a bot or exchange coinwire does not trade for. Its secret is made
here, shown once to whoever opened (or rotated) it, and kept in the credential vault
(auth.vault: AES-GCM under the server's master key, entry `webhook/<account id>` of the
account's owner), because verifying an HMAC needs the secret itself: a hash would not do, and a
secret derived from a server key could not be rotated alone. The secrets of every external
account are opened when the service starts and kept in memory, so a delivery costs no store
read and an unknown account is refused in the same time as a bad signature.

A delivery is checked in this order, each refusal writing nothing: the signature (unknown
account and bad or missing signature answer the same 401 `invalid_signature`, so no one can
probe which accounts exist), the body (`invalid_trade` naming the field, `trade_not_settled`),
then the trade id: one already applied answers `duplicate: true` and changes nothing. Per
account, deliveries are applied one at a time (two concurrent deliveries of one id: one is
applied, the other is the duplicate), and the stored trade's key (account, trade id) travels
in the change set of the wallet lines it applied, so after a restart the store still knows it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy import select

from coinwire.auth.errors import Unauthenticated
from coinwire.auth.vault import Credentials, Vault
from coinwire.core.accounts import EXTERNAL, Account
from coinwire.core.errors import NotFound
from coinwire.core.external_trades import ExternalTrade, movements, read_trade, signature_ok
from coinwire.core.numbers import atto_to_str
from coinwire.services.gateway import Gateway
from coinwire.store import Store
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.tables import external_trades

__all__ = ["ExternalAccounts", "SECRET_PREFIX", "vault_entry"]

log = structlog.get_logger("coinwire.external")

SECRET_PREFIX = "whsec_"  # recognisable in a paste, like other services' webhook secrets
_DECOY = secrets.token_urlsafe(32)  # what an unknown account's delivery is checked against: the same work as a real one


def vault_entry(account_id: int) -> str:
    """The vault's name for an account's webhook secret (its `exchange` column: one entry per account)."""
    return f"webhook/{account_id}"


def _refused() -> Unauthenticated:
    return Unauthenticated("invalid_signature", "X-Coinwire-Signature must be the hex HMAC-SHA256 of the body under this "
                           "webhook's secret")


class ExternalAccounts:
    """External accounts' secrets (in the vault, cached) and their webhook deliveries, applied once each."""

    def __init__(self, gateway: Gateway, store: Store, vault: Vault, clock: Callable[[], int] = time.time_ns) -> None:
        self.gateway = gateway
        self.store = store
        self.vault = vault
        self.clock = clock
        self.secrets: dict[int, str] = {}  # account id -> its webhook secret (opened from the vault)
        self.applied: dict[int, set[str]] = {}  # account id -> trade ids applied by this process (older ones: the store)
        self.locks: dict[int, asyncio.Lock] = {}
        self.listeners: list[Callable[[Account, ExternalTrade], None]] = []  # after a trade is applied (a tracker's volume)

    async def start(self) -> None:
        """Open every external account's secret (one without: its owner rotates one; logged)."""
        for account in list(self.gateway.accounts.accounts.values()):
            if account.kind != EXTERNAL:
                continue
            try:
                self.secrets[account.id] = (await self.vault.open(_vault_user(account), vault_entry(account.id))).secret
            except NotFound:
                log.warning("external account without a webhook secret: rotate one", account=account.id)

    # --- accounts and secrets -------------------------------------------------------------
    async def open(self, owner_id: int | None, label: str, name: str, holdings: Mapping[str, int]) -> tuple[Account, str]:
        """A new external account with its opening holdings, and its webhook secret (to be shown once: the vault keeps it sealed)."""
        account = await self.gateway.open_external(owner_id, label, name, holdings)
        log.info("external account opened", account=account.id, exchange=label, owner=owner_id)
        return account, await self.rotate(account)

    async def rotate(self, account: Account) -> str:
        """A new webhook secret for the account, stored before it is answered; the old one stops working at once."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        await self.vault.put(_vault_user(account), vault_entry(account.id), Credentials(api_key=str(account.id), secret=secret),
                             self.clock())
        self.secrets[account.id] = secret
        log.info("webhook secret rotated", account=account.id)
        return secret

    # --- deliveries -------------------------------------------------------------------------
    async def deliver(self, account_id: int, body: bytes, signature: str | None) -> tuple[bool, dict[str, Any]]:
        """Check and apply one delivery: (True, answer) when applied now, (False, answer) for a duplicate; raises on refusal."""
        account = self.gateway.accounts.accounts.get(account_id)
        secret = self.secrets.get(account_id) if account is not None and account.kind == EXTERNAL else None
        good = signature_ok(secret if secret is not None else _DECOY, body, signature)
        if secret is None or account is None or not good:
            raise _refused()
        trade = read_trade(body, account_id, self.clock())
        lock = self.locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            seen = self.applied.setdefault(account_id, set())
            if trade.trade_id in seen or await self._stored(account_id, trade.trade_id):
                seen.add(trade.trade_id)
                return False, {"account": account_id, "trade_id": trade.trade_id, "duplicate": True}
            moves = movements(trade)
            await self.gateway.apply_external(account, trade, moves)
            seen.add(trade.trade_id)
        for listener in self.listeners:
            listener(account, trade)
        log.info("webhook trade applied", account=account_id, trade_id=trade.trade_id, kind=trade.kind)
        return True, {"account": account_id, "trade_id": trade.trade_id, "duplicate": False, "kind": trade.kind,
                      "applied": {currency: atto_to_str(amount) for currency, amount in sorted(moves.items())}}

    async def _stored(self, account_id: int, trade_id: str) -> bool:
        """Whether an earlier process stored this trade (this one's are in `applied`; the journal of an earlier one was
        applied before this one loaded its state, so no `settled` wait is needed here)."""
        statement = select(external_trades.c.trade_id).where(external_trades.c.account_id == account_id,
                                                             external_trades.c.trade_id == trade_id)
        try:
            async with self.store.engine.connect() as conn:
                return (await conn.execute(statement)).first() is not None
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise

    async def trades(self, account_id: int, limit: int = 100) -> list[dict[str, Any]]:
        """The account's latest stored webhook trades, newest first (what its set-up page lists)."""
        statement = (select(external_trades).where(external_trades.c.account_id == account_id)
                     .order_by(external_trades.c.received_at.desc()).limit(limit))
        await self.store.settled()  # the latest may still be on their way from the store's journal
        async with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(statement)]
        return [{"trade_id": r["trade_id"], "kind": r["kind"], "side": r["side"], "base": r["base"], "quote": r["quote"],
                 "size": r["size"], "notional": r["notional"], "fee": r["fee"], "created_at": r["created_at"],
                 "received_at": r["received_at"], "shape": r["shape"]} for r in rows]


def _vault_user(account: Account) -> int:
    return account.owner_id if account.owner_id is not None else 0  # 0: accounts of before users (the admins')

