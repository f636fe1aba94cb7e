"""Accounts over REST under `/api/v1/accounts`: the caller's accounts, opening paper ones, one account, its balances, its grants.

    GET    /api/v1/accounts                                  the accounts the caller may read (admins: every one)
    POST   /api/v1/accounts {exchange, kind, name}           a further paper account of the caller (201)
    POST   /api/v1/accounts {exchange, kind: external, name, holdings?}
                                                             an external account (a free exchange label, opening holdings),
                                                             answered with its webhook secret, once (201)
    GET    /api/v1/accounts/{account_id}                     one account the caller may read
    GET    /api/v1/accounts/{account_id}/balances            its total, allocated and unallocated funds per currency
    GET    /api/v1/accounts/{account_id}/members             who else may view or trade it (its owner and admins)
    PUT    /api/v1/accounts/{account_id}/members/{user_id}   {role: view|trade}: an admin grants a user
    DELETE /api/v1/accounts/{account_id}/members/{user_id}   an admin takes a grant back

An account id is checked where every other one is (`Api.account`): one the caller may not read
answers 404 `account_not_found`, whether or not it exists, before anything else is said about it
(a trader who may read an account but is no admin is then refused a grant with 403); only a
malformed body, which says nothing of the account, is refused (400) before it. Grants are
stored (`MembersRepository`) before they take effect in memory (`AccountBook.set_member`), one at
a time, so what is answered is what a restart loads back; the guard audits every state-changing
request here like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from fastapi import FastAPI, Request

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.guard import authorize, principal_of
from coinwire.api.json_input import decode_shape
from coinwire.api.methods import Api
from coinwire.api.rest import json_endpoint
from coinwire.auth.abilities import GRANT_ACCOUNTS, Principal
from coinwire.auth.errors import Unauthenticated
from coinwire.auth.repository import AuthRepository
from coinwire.core.accounts import ACCOUNT_KINDS, EXTERNAL, Account
from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.numbers import str_to_atto
from coinwire.services.accounts import MembersRepository, account_view, checked_role
from coinwire.services.external_accounts import ExternalAccounts

__all__ = ["MAX_ACCOUNTS_PER_USER", "MAX_ACCOUNT_NAME", "MAX_HOLDINGS", "GrantBody", "OpenAccountBody", "add_accounts_routes",
           "caller_role", "checked_holdings", "checked_label", "checked_name"]

log = structlog.get_logger("coinwire.api")

MAX_ACCOUNT_NAME = 64  # accounts.name is VARCHAR(64)
# Accounts one user may open (each is funded with the exchange's paper funds, held in memory and
# in every balance read): a bound on what one signed-in trader can make the server carry.
MAX_ACCOUNTS_PER_USER = 50


MAX_HOLDINGS = 100  # currencies an external account may open with


class OpenAccountBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    exchange: P.Name
    kind: P.Word
    name: P.Text  # checked further: 1 to MAX_ACCOUNT_NAME printable characters
    # an external account's opening holdings: currency -> amount (> 0, exact); refused on any other kind
    holdings: dict[P.Word, P.Number] | None = None


def checked_holdings(holdings: dict[str, Any] | None) -> dict[str, int]:
    """An external account's opening holdings in ATTO per currency (`invalid_holdings` naming the currency otherwise)."""
    if holdings is None:
        return {}
    if len(holdings) > MAX_HOLDINGS:
        raise InvalidInput("invalid_holdings", f"at most {MAX_HOLDINGS} currencies", field="holdings")
    out: dict[str, int] = {}
    for currency, amount in holdings.items():
        code = currency.upper()
        if not (code.isascii() and code.isalnum() and 1 <= len(code) <= 16) or code in out:
            raise InvalidInput("invalid_holdings", f"{currency!r} is no currency code (such as BTC), or is named twice",
                               field="holdings")
        try:
            atto = str_to_atto(amount if isinstance(amount, str) else str(amount), f"holdings.{code}")
        except InvalidInput:
            atto = -1
        if atto <= 0 or isinstance(amount, bool | float):
            raise InvalidInput("invalid_holdings", f"holdings.{code}: an exact decimal string above zero, got {amount!r}",
                               field=f"holdings.{code}")
        out[code] = atto
    return out


class GrantBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    role: P.Word


def checked_name(name: str) -> str:
    """An account's name: 1 to 64 printable characters, not only spaces (it is shown in every account switcher)."""
    if not 1 <= len(name) <= MAX_ACCOUNT_NAME or not name.isprintable() or not name.strip():
        raise InvalidInput("invalid_account_name", f"an account's name is 1 to {MAX_ACCOUNT_NAME} printable characters, "
                           "not only spaces", field="name")
    return name


def checked_label(label: str) -> bool:
    """Whether an external account's exchange label is a plain name (it is shown, and keys the account's wallets)."""
    return 1 <= len(label) <= 64 and label.isascii() and all(c.isalnum() or c in "._-" for c in label)


def caller_role(account: Account, members: dict[int, str], principal: Principal) -> str:
    """What the caller is to the account: `owner`, `admin` (may do all, owns it not), or the grant's `trade` / `view`."""
    if account.owner_id == principal.user_id:
        return "owner"
    if principal.is_admin:
        return "admin"
    return members.get(principal.user_id, "view")


def add_accounts_routes(app: FastAPI, api: Api, users: AuthRepository, members: MembersRepository,
                        external: ExternalAccounts) -> None:
    book = api.gateway.accounts
    granting = asyncio.Lock()  # one grant at a time: the store and memory change in the same order

    def caller(request: Request) -> tuple[Principal, CallContext]:
        principal = principal_of(request)  # the guard authenticated it: these routes are never public
        if principal is None:
            raise Unauthenticated("unauthenticated", "sign in to use accounts")
        return principal, CallContext("http", principal=principal)

    def readable(ctx: CallContext, account_id: int) -> Account:
        """The account, when the caller may read it; `account_not_found` otherwise (`Api.account` decides; any id, huge too)."""
        api.account(ctx, account_id, need="view")
        return book.accounts[account_id]

    def view(account: Account, principal: Principal) -> dict[str, Any]:
        grants = book.members_of(account.id)
        role = caller_role(account, grants, principal)
        shown = account_view(account, grants if role in ("owner", "admin") else None)  # members: owners and admins only
        shown["role"] = role
        return shown

    def members_view(account: Account) -> dict[str, Any]:
        return {"account": account.id, "members": account_view(account, book.members_of(account.id))["members"]}

    async def list_accounts(request: Request) -> Any:
        """The accounts the caller may read (owned, granted; admins: every account), oldest first.

        Listing opens the caller's own paper accounts (a first use)."""
        if request.query_params:
            raise InvalidInput("invalid_params", f"unknown query parameters {sorted(request.query_params)}")
        principal, ctx = caller(request)
        await api.own_accounts(ctx)  # a first use, as a balance read is: the switcher shows the caller's accounts at once
        return [view(a, principal) for a in sorted(book.listed(principal.user_id, principal.is_admin), key=lambda a: a.id)]

    async def open_account(request: Request) -> Any:
        """Open a further paper account of the caller on a paper exchange, funded with the exchange's paper funds;
        or an external one (`kind: external`), answered with its webhook secret (`webhook_secret`, shown this once)."""
        principal, _ = caller(request)
        body = decode_shape(await request.body(), OpenAccountBody, "the request body")
        if body.kind not in ACCOUNT_KINDS:
            raise InvalidInput("invalid_account_kind", f"kind is one of {', '.join(ACCOUNT_KINDS)}, got {body.kind!r}", field="kind")
        name = checked_name(body.name)
        if body.holdings is not None and body.kind != EXTERNAL:
            raise InvalidInput("invalid_holdings", "only an external account opens with holdings", field="holdings")
        holdings = checked_holdings(body.holdings)
        if body.kind == EXTERNAL and not checked_label(body.exchange):
            raise InvalidInput("invalid_exchange_label", "an external account's exchange is 1 to 64 letters, digits or ._- "
                               "(the bot or exchange it tracks, such as cryptohopper)", field="exchange")
        owned = sum(1 for a in book.accounts.values() if a.owner_id == principal.user_id)
        if owned >= MAX_ACCOUNTS_PER_USER:
            raise InvalidInput("too_many_accounts", f"a user may hold at most {MAX_ACCOUNTS_PER_USER} accounts",
                               limit=MAX_ACCOUNTS_PER_USER)
        if body.kind == EXTERNAL:
            account, secret = await external.open(principal.user_id, body.exchange, name, holdings)
            return {**view(account, principal), "webhook_secret": secret, "webhook_url": f"/api/v1/webhooks/{account.id}"}
        account = await api.gateway.open_account(principal.user_id, body.exchange, body.kind, name)
        log.info("account opened", account=account.id, exchange=account.exchange, owner=principal.user_id)
        return view(account, principal)

    async def get_account(request: Request, account_id: int) -> Any:
        """One account the caller may read, with the caller's `role` on it (and its `members`, for its owner and admins)."""
        principal, ctx = caller(request)
        return view(readable(ctx, account_id), principal)

    async def get_balances(request: Request, account_id: int) -> Any:
        """The account's funds per currency: `total` = `allocated` (in wallet sets) + `unallocated`, as wallet views."""
        _, ctx = caller(request)
        account = readable(ctx, account_id)
        out: dict[str, Any] = {"account": account.id, "exchange": account.exchange}
        for kind in ("total", "allocated", "unallocated"):
            out[kind] = api.wallets.aggregate(kind, accounts=(account.id,))["wallets"]
        return out

    def grants_of(request: Request, account_id: int) -> tuple[Principal, Account]:
        """The account, for a caller who may read it, and who must then be an admin (403 otherwise)."""
        principal, ctx = caller(request)
        account = readable(ctx, account_id)
        authorize(principal, GRANT_ACCOUNTS, "granting accounts")
        return principal, account

    async def get_members(request: Request, account_id: int) -> Any:
        """Who else may view or trade the account: its owner and admins may see it."""
        principal, ctx = caller(request)
        account = readable(ctx, account_id)
        if caller_role(account, book.members_of(account.id), principal) not in ("owner", "admin"):
            authorize(principal, GRANT_ACCOUNTS, "an account's members")  # a member: 403 with the rule's reason
        return members_view(account)

    async def grantee(user_id: int) -> dict[str, Any]:
        user = await users.user_by_id(user_id) if 1 <= user_id <= 2**62 else None
        if user is None:
            raise NotFound("unknown_user", f"no user {user_id}", field="user_id")
        return user

    async def put_member(request: Request, account_id: int, user_id: int) -> Any:
        """An admin grants a user `view` (read its funds, orders and notifications) or `trade` (also place, cancel, allocate)."""
        # the body first: refusing it says nothing of the account, whatever the path names
        role = checked_role(decode_shape(await request.body(), GrantBody, "the request body").role)
        principal, account = grants_of(request, account_id)
        user = await grantee(user_id)
        if account.owner_id == user_id:
            raise InvalidInput("grant_to_owner", f"user {user_id} owns account {account_id} and may do everything on it already")
        if role == "trade" and user["role"] == "viewer":
            raise InvalidInput("grant_exceeds_role", f"user {user_id} is a viewer, who never trades: grant `view`, or make them a trader")
        async with granting:
            await members.put(account.id, user_id, role, principal.user_id)
            book.set_member(account.id, user_id, role)
        log.info("account granted", account=account.id, user=user_id, role=role, by=principal.user_id)
        return members_view(account)

    async def delete_member(request: Request, account_id: int, user_id: int) -> Any:
        """An admin takes a user's grant back (answered the same whether or not there was one)."""
        principal, account = grants_of(request, account_id)
        await grantee(user_id)
        async with granting:
            await members.remove(account.id, user_id)
            book.set_member(account.id, user_id, None)
        log.info("account grant revoked", account=account.id, user=user_id, by=principal.user_id)
        return members_view(account)

    def route(method: str, path: str, handler: Callable[..., Awaitable[Any]], body: type | None = None, status: int = 200) -> None:
        endpoint = json_endpoint(handler, path, status)
        openapi: dict[str, Any] = {}
        if body is not None:
            (_,), defs = msgspec.json.schema_components([body], ref_template="#/components/schemas/{name}")
            openapi["requestBody"] = {"content": {"application/json": {"schema": defs[body.__name__]}}, "required": True}
        app.add_api_route(path, endpoint, methods=[method], tags=["accounts"], summary=handler.__name__, openapi_extra=openapi)

    one = "/api/v1/accounts/{account_id:int}"
    route("GET", "/api/v1/accounts", list_accounts)
    route("POST", "/api/v1/accounts", open_account, OpenAccountBody, status=201)
    route("GET", one, get_account)
    route("GET", one + "/balances", get_balances)
    route("GET", one + "/members", get_members)
    route("PUT", one + "/members/{user_id:int}", put_member, GrantBody)
    route("DELETE", one + "/members/{user_id:int}", delete_member)
