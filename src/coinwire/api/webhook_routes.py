"""External accounts' webhooks over REST: the signed trade delivery, rotating its secret, the trades it delivered.

    POST /api/v1/webhooks/{account_id}                  a trade, signed (public: the signature is the credential)
    POST /api/v1/accounts/{account_id}/webhook-secret   a new secret for the account, shown once (trade right on it)
    GET  /api/v1/accounts/{account_id}/webhook-trades   its latest delivered trades, newest first (view right)

A delivery carries `X-Coinwire-Signature`: the hex HMAC-SHA256 of the raw body under the
account's secret. It needs no bearer token, so the guard's per-address rate limit is its rate
limit, and its body is refused beyond MAX_WEBHOOK_BODY (413 `payload_too_large`) before it is
read further. Answers: 201 applied, 200 `duplicate: true` (the trade id was applied before:
nothing changes), 401 `invalid_signature` for a bad or missing signature AND for an account that
does not exist or is not external (the same answer: accounts cannot be probed), 400
`invalid_trade` naming the field, `trade_not_settled`, `insufficient_funds` (the trade takes more
than the account holds). The other two routes check the account where every account id is
checked (`Api.account`): one the caller may not use is `account_not_found`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request

from coinwire.api.context import CallContext
from coinwire.api.guard import principal_of
from coinwire.api.methods import Api
from coinwire.api.rest import bounded_body, json_endpoint, refuse_body
from coinwire.auth.errors import Unauthenticated
from coinwire.core.accounts import EXTERNAL, Account
from coinwire.core.errors import InvalidInput
from coinwire.services.external_accounts import ExternalAccounts

__all__ = ["MAX_WEBHOOK_BODY", "SIGNATURE_HEADER", "add_webhook_routes"]

log = structlog.get_logger("coinwire.api")

MAX_WEBHOOK_BODY = 16_384  # one trade is a few hundred bytes
SIGNATURE_HEADER = "X-Coinwire-Signature"


def add_webhook_routes(app: FastAPI, api: Api, external: ExternalAccounts) -> None:
    book = api.gateway.accounts

    def external_account(request: Request, account_id: int, need: str) -> Account:
        principal = principal_of(request)
        if principal is None:
            raise Unauthenticated("unauthenticated", "sign in to manage webhooks")
        api.account(CallContext("http", principal=principal), account_id, need="trade" if need == "trade" else "view")
        account = book.accounts[account_id]
        if account.kind != EXTERNAL:
            raise InvalidInput("not_external", f"account {account_id} is a {account.kind} account: only an external account "
                               "has a webhook")
        return account

    async def deliver(request: Request, account_id: int) -> tuple[Any, int]:
        """Apply one signed trade to an external account (201), or recognise one applied before (200, duplicate)."""
        body = await bounded_body(request, MAX_WEBHOOK_BODY, "a webhook body")
        applied, answer = await external.deliver(account_id, body, request.headers.get(SIGNATURE_HEADER))
        return answer, 201 if applied else 200

    async def rotate(request: Request, account_id: int) -> tuple[Any, int]:
        """A new webhook secret (the old one stops working now), answered this once."""
        await refuse_body(request)
        account = external_account(request, account_id, "trade")
        secret = await external.rotate(account)
        return {"account": account.id, "webhook_secret": secret, "webhook_url": f"/api/v1/webhooks/{account.id}"}, 200

    async def trades(request: Request, account_id: int) -> tuple[Any, int]:
        """The account's latest delivered trades (up to 100), newest first."""
        if request.query_params:
            raise InvalidInput("invalid_params", f"unknown query parameters {sorted(request.query_params)}")
        account = external_account(request, account_id, "view")
        return {"account": account.id, "trades": await external.trades(account.id)}, 200

    def route(method: str, path: str, handler: Callable[..., Awaitable[tuple[Any, int]]]) -> None:
        endpoint = json_endpoint(handler, path, status=None)
        app.add_api_route(path, endpoint, methods=[method], tags=["webhooks"], summary=handler.__name__)

    route("POST", "/api/v1/webhooks/{account_id:int}", deliver)
    route("POST", "/api/v1/accounts/{account_id:int}/webhook-secret", rotate)
    route("GET", "/api/v1/accounts/{account_id:int}/webhook-trades", trades)

