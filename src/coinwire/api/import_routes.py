"""Import of a live account's history over HTTP, and its progress pushed on the `import_progress` channel.

    POST /api/v1/accounts/{account_id}/import   start one, or resume the account's failed (or interrupted) one
                                                where it stopped: 202 and the import; 409 `import_running` while
                                                one runs, 400 `import_unavailable` for an account that is not live
    GET  /api/v1/accounts/{account_id}/import   the account's newest import: state, step, done/total, error, and
                                                what it found; 404 `import_not_found` when it never had one

The account is checked by the one account check (`Api.account`): reading needs `view` on it,
starting needs `trade`; any account the caller may not use is `account_not_found`. Progress
messages `{"account_id", "import_id", "step", "done", "total", "eta_s", "state"}` go only to the
connections listening on `import_progress` whose user may view the account (the notifier's
readers of it: its owner, the users it was granted to, every admin, the admins' own accounts
included), by the check every account read goes through (`AccountBook.may`); they travel on the
bus (services.import_progress), so they reach those connections on every api process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request

from coinwire.api.context import CallContext
from coinwire.api.guard import principal_of
from coinwire.api.methods import Api
from coinwire.api.rest import json_endpoint, refuse_body
from coinwire.auth.errors import Unauthenticated
from coinwire.core.errors import InvalidInput, NotFound
from coinwire.services.account_import import AccountImports, progress_view
from coinwire.store.account_imports import ImportRow

__all__ = ["CHANNEL", "add_import_routes", "import_view"]

log = structlog.get_logger("coinwire.api.imports")

CHANNEL = "import_progress"


def import_view(row: ImportRow) -> dict[str, Any]:
    """An import as the API shows it: its progress, times, why it failed, and what it found (no cursor internals)."""
    cursor = row.cursor
    return {
        **progress_view(row),
        "error": row.error,
        "started_at": row.started_at,
        "updated_at": row.updated_at,
        "finished_at": row.finished_at,
        "markets": cursor.get("markets", []),
        "currency": cursor.get("currency"),
        "unpriced": cursor.get("unpriced", []),
        "candles": cursor.get("candles_written", 0),
    }


def add_import_routes(app: FastAPI, api: Api, imports: AccountImports) -> None:
    """Mount the two import routes."""
    book = api.gateway.accounts

    def caller(request: Request, account_id: int, need: str) -> tuple[int, CallContext]:
        principal = principal_of(request)  # the guard authenticated it: these routes are never public
        if principal is None:
            raise Unauthenticated("unauthenticated", "sign in to import an account's history")
        ctx = CallContext("http", principal=principal)
        api.account(ctx, account_id, need="trade" if need == "trade" else "view")
        return principal.user_id, ctx

    async def start_import(request: Request, account_id: int) -> Any:
        """Start the account's import, or resume its unfinished one where it stopped."""
        if request.query_params:
            raise InvalidInput("invalid_params", f"unknown query parameters {sorted(request.query_params)}")
        await refuse_body(request)
        user_id, _ = caller(request, account_id, "trade")
        row = await imports.begin(book.accounts[account_id], user_id)
        log.info("account import started", account=account_id, import_id=row.id, by=user_id, step=row.step)
        return import_view(row)

    async def get_import(request: Request, account_id: int) -> Any:
        """The account's newest import, as far as it is."""
        if request.query_params:
            raise InvalidInput("invalid_params", f"unknown query parameters {sorted(request.query_params)}")
        caller(request, account_id, "view")
        row = await imports.status(account_id)
        if row is None:
            raise NotFound("import_not_found", f"account {account_id} has never been imported", account=account_id)
        return import_view(row)

    def route(method: str, handler: Callable[..., Awaitable[Any]], status: int) -> None:
        endpoint = json_endpoint(handler, f"{method} import", status)
        app.add_api_route("/api/v1/accounts/{account_id:int}/import", endpoint, methods=[method], tags=["accounts"],
                          summary=handler.__name__)

    route("POST", start_import, 202)
    route("GET", get_import, 200)
