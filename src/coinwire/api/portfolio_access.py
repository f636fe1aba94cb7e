"""The one place a portfolio scope a client names (account, wallet set, run, user) is checked and resolved.

Every portfolio route and method (candles, the live feed, daily stats, the balance) asks
`portfolio_scope` first and works only with what it returns. Each scope is checked through the
single place that already decides who may read it: an account through the account book (the
`view` right: owners, members and admins), a wallet set or a run through `Owners`, a user total
by id (the caller's own; admins any user that exists). Unknown, malformed and forbidden ids all
answer the same `not_found`, so another user's ids cannot be probed. The result carries the
owner's time zone and display currency: a portfolio is valued and rolled up in its owner's
terms, whoever reads it (a viewer of an account sees it in the owner's currency).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from coinwire.auth.abilities import Principal
from coinwire.auth.preferences import DEFAULTS, PreferencesRepository
from coinwire.auth.repository import AuthRepository
from coinwire.core.errors import NotFound

if TYPE_CHECKING:
    from coinwire.api.methods import Api

__all__ = ["PORTFOLIO_SCOPES", "PortfolioScope", "portfolio_scope", "scope_not_found", "still_readable"]

PORTFOLIO_SCOPES = ("account", "wallet_set", "run", "user")  # the same names as core.portfolio.SCOPES
_MAX_ID = 128  # characters of an id a client may send (a run label is free-form text)


class PortfolioScope(msgspec.Struct, frozen=True):
    """A portfolio the caller may read: what it is, whose it is, and that owner's time zone and currency.

    `owner_id` None: a resource from before users existed (an admin's). `scope_id` is the id in its
    canonical text form (an account or user id without leading zeros), the key the tracker and the
    store use.
    """

    scope: str
    scope_id: str
    owner_id: int | None
    time_zone: str
    currency: str


def scope_not_found(scope: object, scope_id: object) -> NotFound:
    """The one answer for an unknown, malformed or forbidden scope or id (no hint which)."""
    return NotFound("not_found", f"no portfolio {str(scope)[:32]}/{str(scope_id)[:_MAX_ID]}")


def _int_id(scope: str, scope_id: str) -> int:
    if not (scope_id.isascii() and scope_id.isdigit()) or len(scope_id) > 18:
        raise scope_not_found(scope, scope_id)
    return int(scope_id)


async def _owner(api: Api, principal: Principal | None, scope: str, scope_id: str) -> tuple[str, int | None]:
    """(canonical id, owner) of a scope the caller may read; `not_found` otherwise."""
    is_admin = principal is None or principal.is_admin  # no users at all: everything is the caller's, as an admin's
    user_id = principal.user_id if principal is not None else None
    if scope == "account":
        account_id = _int_id(scope, scope_id)
        if not api.gateway.accounts.may(account_id, user_id, is_admin, "view"):
            raise scope_not_found(scope, scope_id)
        return str(account_id), api.gateway.accounts.accounts[account_id].owner_id
    if scope == "wallet_set":
        set_id = _int_id(scope, scope_id)
        try:
            api.gateway.ledger.wallet_set(set_id)  # it exists (an admin may name any, but not an invented one)
        except NotFound:
            raise scope_not_found(scope, scope_id) from None
        return _owned(api, principal, "wallet_set", str(set_id))
    if scope == "run":
        return _owned(api, principal, "run", scope_id)
    if scope == "user":
        wanted = _int_id(scope, scope_id)
        if principal is not None and wanted == principal.user_id:
            return str(wanted), wanted  # the caller's own (signed in: the user exists)
        if principal is not None and not principal.is_admin:
            raise scope_not_found(scope, scope_id)
        if await AuthRepository(api.gateway.store).user_by_id(wanted) is None:
            raise scope_not_found(scope, scope_id)
        return str(wanted), wanted
    raise scope_not_found(scope, scope_id)


def _owned(api: Api, principal: Principal | None, kind: str, resource_id: str) -> tuple[str, int | None]:
    """A wallet set or run through `Owners`: the caller's own, or any for admins; a run must have an owner on record."""
    owners = api.owners
    if owners is None:  # a server without users: nothing is owned by anyone
        return resource_id, None
    owner = owners.owner_of(kind, resource_id)
    if kind == "run" and owner is None:  # an unknown label, never a run anyone started
        raise scope_not_found(kind, resource_id)
    if principal is not None and not owners.visible(kind, resource_id, principal):
        raise scope_not_found(kind, resource_id)
    return resource_id, owner


async def portfolio_scope(api: Api, principal: Principal | None, scope: str, scope_id: str) -> PortfolioScope:
    """The portfolio `scope`/`scope_id` when `principal` may read it, with its owner's time zone and currency.

    `principal` None: a server without users (every portfolio is readable). Raises `not_found`
    (NotFound, HTTP 404 / JSON-RPC -32001) for an unknown scope, an unknown or malformed id, or
    one the caller may not read: one answer for all three.
    """
    if not isinstance(scope, str) or not isinstance(scope_id, str) or len(scope_id) > _MAX_ID or not scope_id:
        raise scope_not_found(scope, scope_id)
    canonical, owner_id = await _owner(api, principal, scope, scope_id)
    prefs: dict[str, Any] = DEFAULTS
    if owner_id is not None:
        prefs = await PreferencesRepository(api.gateway.store).get(owner_id)
    return PortfolioScope(scope=scope, scope_id=canonical, owner_id=owner_id,
                          time_zone=str(prefs["time_zone"]), currency=str(prefs["currency"]))


def still_readable(api: Api, principal: Principal | None, scope: PortfolioScope) -> bool:
    """Whether `principal` may still read a scope `portfolio_scope` once gave it (a live feed asks before each push).

    From memory only (the account book and the owners), so it costs nothing per push: a revoked
    grant ends a viewer's account feed at its next candle.
    """
    if principal is None or principal.is_admin:
        return True
    if scope.scope == "account":
        return api.gateway.accounts.may(int(scope.scope_id), principal.user_id, False, "view")
    if scope.scope in ("wallet_set", "run"):
        return api.owners is None or api.owners.visible(scope.scope, scope.scope_id, principal)
    return scope.owner_id == principal.user_id
