"""The accounts of this server in memory, who may use each, and the grants an admin gives on them.

Every call that touches funds or orders names an account, or means the caller's own on the
exchange it names; `AccountBook.resolve` is the one place that turns what a client sent into
an account it may use, answering `account_not_found` for any account the caller may not use
(never a hint that it exists). Accounts themselves are stored with their first funds, in the
gateway's change set (`Gateway.account_for`); grants are written here, one short transaction
each, before they are answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from coinwire.core.accounts import GRANT_ROLES, Account, Need, may
from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.ids import IdSequence
from coinwire.store import Store
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.tables import account_members

__all__ = ["AccountBook", "MembersRepository", "account_view", "checked_role"]


def _not_found(account_id: object) -> NotFound:
    return NotFound("account_not_found", f"no account {account_id}", account=account_id)


def account_view(account: Account, members: dict[int, str] | None = None) -> dict[str, Any]:
    """An account as the API shows it (`members`: only to those who may see them: owners and admins)."""
    view: dict[str, Any] = {
        "id": account.id,
        "exchange": account.exchange,
        "kind": account.kind,
        "name": account.name,
        "owner": account.owner_id,
        "created_at": account.created_at,
        "active": account.active,
    }
    if members is not None:
        view["members"] = [{"user_id": user_id, "role": role} for user_id, role in sorted(members.items())]
    return view


class AccountBook:
    """Accounts by id, each user's own account per exchange, and the members of each account."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.members: dict[int, dict[int, str]] = {}  # account id -> user id -> "view" | "trade"
        self.ids = IdSequence()
        self._own: dict[tuple[int | None, str], int] = {}  # (owner, exchange) -> the owner's first account there
        self._personal: dict[int, set[int]] = {}  # user id -> accounts they own or are members of
        self.changed: list[Callable[[], None]] = []  # called after a grant or a new account (the notifier's routing)

    # --- loading ----------------------------------------------------------------------------
    def load(self, accounts: Iterable[Account], members: Iterable[tuple[int, int, str]] = ()) -> None:
        self.accounts, self.members, self._own, self._personal = {}, {}, {}, {}
        for account in sorted(accounts, key=lambda a: a.id):
            self.add(account)
        for account_id, user_id, role in members:
            self.members.setdefault(account_id, {})[user_id] = role
            self._personal.setdefault(user_id, set()).add(account_id)
        self._notify()

    def add(self, account: Account) -> None:
        """Know an account (made now, or loaded): the first one of an owner on an exchange is their default there."""
        self.accounts[account.id] = account
        self.ids.advance_to(account.id)
        self._own.setdefault((account.owner_id, account.exchange), account.id)
        if account.owner_id is not None:
            self._personal.setdefault(account.owner_id, set()).add(account.id)
        self._notify()

    def forget(self, account: Account) -> None:
        """Take back an account whose creating change set the store refused."""
        self.accounts.pop(account.id, None)
        if self._own.get((account.owner_id, account.exchange)) == account.id:
            del self._own[(account.owner_id, account.exchange)]
        if account.owner_id is not None:
            self._personal.get(account.owner_id, set()).discard(account.id)
        self._notify()

    def new(self, owner_id: int | None, exchange: str, kind: str, name: str, ts: int) -> Account:
        """A new account record (not known until `add`: the caller commits it first)."""
        return Account(id=self.ids.next(), exchange=exchange, kind=kind, name=name, owner_id=owner_id, created_at=ts)

    # --- who may use what ----------------------------------------------------------------------
    def own(self, owner_id: int | None, exchange: str) -> Account | None:
        """The owner's own (first) account on the exchange, if any."""
        account_id = self._own.get((owner_id, exchange))
        return self.accounts.get(account_id) if account_id is not None else None

    def may(self, account_id: int, user_id: int | None, is_admin: bool, need: Need = "view") -> bool:
        account = self.accounts.get(account_id)
        return account is not None and may(account, self.members.get(account_id, {}), user_id, is_admin, need)

    def may_read_set(self, owner_id: int | None, held: Iterable[int], user_id: int | None, is_admin: bool) -> bool:
        """Whether this user may read a wallet set owned by `owner_id` that holds funds of the accounts `held`.

        The one rule (`Api.may_read_set` for reads, the notifier for `wallet_set` pushes): admins,
        its owner (None: made before users, the admins'), and a user who may view every account
        whose funds it holds (those accounts' wallets are theirs to read already).
        """
        if is_admin or (owner_id is not None and owner_id == user_id):
            return True
        accounts = list(held)
        return bool(accounts) and all(self.may(a, user_id, False, "view") for a in accounts)

    def require(self, account_id: object, user_id: int | None, is_admin: bool, need: Need = "view") -> Account:
        """The account, when the caller may `need` it; `account_not_found` otherwise (whether or not it exists)."""
        if type(account_id) is not int or not self.may(account_id, user_id, is_admin, need):
            raise _not_found(account_id)
        return self.accounts[account_id]

    def personal(self, user_id: int | None) -> set[int]:
        """The accounts a user owns or was granted (a shared set: do not change it)."""
        return self._personal.get(user_id, set()) if user_id is not None else set()

    def readable(self, user_id: int | None, is_admin: bool) -> Collection[int] | None:
        """The accounts the caller may read (None: all of them, for admins)."""
        if is_admin:
            return None
        return self.personal(user_id)

    def listed(self, user_id: int | None, is_admin: bool) -> list[Account]:
        readable = self.readable(user_id, is_admin)
        return [a for a in self.accounts.values() if readable is None or a.id in readable]

    def members_of(self, account_id: int) -> dict[int, str]:
        return dict(self.members.get(account_id, {}))

    # --- grants -----------------------------------------------------------------------------
    def set_member(self, account_id: int, user_id: int, role: str | None) -> None:
        """Record a grant in memory (`role` None: revoked); `MembersRepository` stores it first."""
        if role is None:
            self.members.get(account_id, {}).pop(user_id, None)
            account = self.accounts.get(account_id)
            if account is None or account.owner_id != user_id:
                self._personal.get(user_id, set()).discard(account_id)
        else:
            self.members.setdefault(account_id, {})[user_id] = role
            self._personal.setdefault(user_id, set()).add(account_id)
        self._notify()

    def _notify(self) -> None:
        for callback in self.changed:
            callback()


def checked_role(role: object) -> str:
    if role not in GRANT_ROLES:
        raise InvalidInput("invalid_role", f"a grant's role is one of {', '.join(GRANT_ROLES)}, got {role!r}", field="role")
    return str(role)


class MembersRepository:
    """Stores grants: one short transaction each, before it is answered."""

    def __init__(self, store: Store, clock: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.clock = clock

    async def all(self) -> list[tuple[int, int, str]]:
        try:
            async with self.store.engine.connect() as conn:
                rows = await conn.execute(select(account_members.c.account_id, account_members.c.user_id, account_members.c.role))
                return [(int(a), int(u), str(r)) for a, u, r in rows]
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise

    async def put(self, account_id: int, user_id: int, role: str, granted_by: int | None) -> None:
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        statement = dialect.insert(account_members).values(
            account_id=account_id, user_id=user_id, role=role, granted_by=granted_by, granted_at=int(self.clock()))
        statement = statement.on_conflict_do_update(index_elements=["account_id", "user_id"],
                                                    set_={"role": role, "granted_by": granted_by, "granted_at": int(self.clock())})
        await self._run(statement)

    async def remove(self, account_id: int, user_id: int) -> None:
        await self._run(delete(account_members).where(account_members.c.account_id == account_id,
                                                      account_members.c.user_id == user_id))

    async def _run(self, statement: Any) -> None:
        try:
            async with self.store.engine.begin() as conn:
                await conn.execute(statement)
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise
