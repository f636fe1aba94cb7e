"""Accounts: one user's funds on one exchange, and who else may see or trade them.

An account is what makes funds belong to someone. Every wallet, wallet set wallet, order and
fill names exactly one account, so `total = allocated + unallocated` holds per account and no
order, allocation or notification of one account touches another's. A `paper` account holds
virtual funds on a paper exchange; a `live` account is the funds a user's own keys reach on a
live exchange; an `external` account tracks a bot or exchange coinwire does not trade for (its
`exchange` is a free label, never a venue): its trades arrive by signed webhook and no order is
ever placed on it. An admin may grant another user `view` (read its wallets, orders and
notifications) or `trade` (that, and place, cancel and allocate) on an account: a desk shared by
several traders. Admins read everything; nothing else crosses users.

Pure: the decisions live here, the records are kept and stored by `services.accounts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

__all__ = ["Account", "ACCOUNT_KINDS", "EXTERNAL", "GRANT_ROLES", "Need", "may", "UNOWNED"]

ACCOUNT_KINDS = ("paper", "live", "external")
EXTERNAL = "external"  # the kind whose holdings follow webhook trades (services.external_accounts)
GRANT_ROLES = ("view", "trade")
Need = Literal["view", "trade"]
UNOWNED = None  # the owner of accounts made before users existed: admins'


class Account(msgspec.Struct, kw_only=True, gc=False):
    """One user's funds on one exchange. `owner_id` None: made before users existed (the admins')."""

    id: int
    exchange: str
    kind: str  # "paper" | "live" | "external"
    name: str
    owner_id: int | None
    created_at: int
    active: bool = True


def may(account: Account, members: Mapping[int, str], user_id: int | None, is_admin: bool, need: Need) -> bool:
    """May this user `need` (view or trade) on the account? Admins may all; owners all; members what their grant says."""
    if is_admin:
        return True
    if user_id is None:
        return False
    if account.owner_id == user_id:
        return True
    role = members.get(user_id)
    return role == "trade" or (role == "view" and need == "view")
