"""The seed's strategy routes: runnables, starting runs in their own processes, runs, components, messages, input.

    GET  /runnables                            built-in strategies, their parameters and docs
    PUT  /runnables/{name}/start               start a run (202 {run_id, status}); name may be an URL-encoded file.py:Class
    GET  /runs                                 every run, newest first, with status and headline metrics
    GET  /runs/{id}                            one run with its report (and progress while running)
    GET  /runs/{id}/components                 its UI components (spec + data)
    GET  /runs/{id}/messages?offset&limit&method&direction&format   its message hub, paged (format=mhubrpc: the seed's)
    GET  /runs/{id}/log                        its run log (a crashed worker's output lands here)
    PUT  /runs/{id}/stop                       stop a running run (409 when it is already done)
    PUT  /runs/{id}/components/{component_id}  {value}: user input, delivered to the running strategy

Errors answer `{"error": {code, message}}` like every other route: 404 unknown strategy or
run, 403 strategy files not allowed (a non-admin naming a `file.py:Class`: `forbidden`),
409 run not running, 422 for a request that cannot run (bad parameters with "did you mean",
empty ranges, missing history, bad balances; a non-admin's `data` outside the history
directory: `file_not_found`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.guard import principal_of
from coinwire.api.json_input import decode_json
from coinwire.api.ownership import Owners
from coinwire.api.query_values import query_int
from coinwire.api.rest import error_response, json_response
from coinwire.auth.abilities import SERVER_FILES, Principal, can
from coinwire.auth.errors import Forbidden
from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.engine import mhubrpc
from coinwire.engine.registry import is_file_ref
from coinwire.services.runs import RunManager
from coinwire.strategies.registry import builtin_strategies

__all__ = ["MAX_PAGE", "MessageQuery", "RunAccess", "add_runs_routes", "for_http", "json_body", "run_endpoint"]

log = structlog.get_logger("coinwire.runs")

MAX_PAGE = 1000
_UNPROCESSABLE_NOT_FOUND = {"history_missing", "no_price_route"}  # "not found" inside a request that exists: 422
_FORMATS = ("native", "mhubrpc")


class RunAccess:
    """Who may touch which run, checked once for both run APIs (these routes and the seed's `/cryptick/v1`).

    With `owners`, a run belongs to whoever started it: others get 404 for it and do not see it listed.
    """

    def __init__(self, manager: RunManager, owners: Owners | None) -> None:
        self.manager = manager
        self.owners = owners

    def require(self, request: Request) -> None:
        """The run the path names must be the caller's (admins: any); 404 `run_not_found` otherwise."""
        principal, run_id = principal_of(request), request.path_params.get("run_id")
        if self.owners is not None and principal is not None and run_id is not None:
            self.owners.require("run", run_id, principal)

    def visible(self, request: Request) -> list[dict[str, Any]]:
        """Every run the caller may see, newest first."""
        principal, runs = principal_of(request), self.manager.list()
        if self.owners is None or principal is None or principal.is_admin:
            return runs
        owners = self.owners
        return [r for r in runs if owners.visible("run", r.get("run_id"), principal)]

    async def start(self, request: Request, name: str, body: Any) -> dict[str, Any]:
        """Start `name` with the native start body `body` for the caller; the run is theirs before the answer goes out.

        Only built-ins for callers without SERVER_FILES: a `file.py:Class` runs that file's code on the server.
        A paper or live run spends the caller's own accounts on the exchanges its balances name,
        through a wallet set that is the caller's (the gateway stores its owner with it; here it is remembered).
        """
        principal = principal_of(request)
        confined = not _may_use_server_files(principal)
        if confined and is_file_ref(name):  # any other name is a built-in's, or unknown to everyone alike (404)
            raise Forbidden("forbidden", "only admins may start a strategy from a file (it runs that file's code on the server); "
                            f"built-in strategies: {', '.join(sorted(builtin_strategies()))}")
        owners = self.owners

        def funded(wallet_set_id: int) -> None:
            if owners is not None and principal is not None:
                owners.record("wallet_set", wallet_set_id, principal)

        started = await self.manager.start(name, _bounded(body, "body"), confined=confined,
                                           owner_id=principal.user_id if principal is not None else None, funded=funded)
        if owners is not None and principal is not None:
            await owners.save("run", started["run_id"], principal)  # committed before the answer
        return started

    def message_query(self, request: Request, default_format: str = "native", default_limit: int | None = 100,
                      max_limit: int = MAX_PAGE) -> MessageQuery:
        """The query of a messages route: `offset`, `limit` (1 to `max_limit`; absent: `default_limit`, None for all),
        `method` (`venue.` a prefix), `direction`, `format` (`native` records, or the seed's `mhubrpc`)."""
        q = request.query_params
        offset = query_int(q.get("offset"), "offset", 0, 0, 2**62)
        limit = default_limit if not q.get("limit") else query_int(q.get("limit"), "limit", 1, 1, max_limit)
        direction = q.get("direction") or None
        if direction not in (None, "in", "out"):
            raise InvalidInput("invalid_params", f"direction must be 'in' or 'out', got {direction!r}")
        shape = q.get("format") or default_format
        if shape not in _FORMATS:
            raise InvalidInput("invalid_params", f"format must be one of {', '.join(_FORMATS)}, got {shape!r}")
        return MessageQuery(offset, limit, q.get("method") or None, direction, shape)

    def messages(self, request: Request, run_id: str) -> tuple[int, int, int, list[dict[str, Any]]]:
        """(total, offset, limit, page) of the run's hub, at most MAX_PAGE a page (`message_query` reads the query)."""
        query = self.message_query(request)
        offset, limit = query.offset, query.limit or MAX_PAGE
        total, messages = self.manager.store.messages(run_id, offset, limit, query.method, query.direction)
        return total, offset, limit, query.render(messages)


class MessageQuery(NamedTuple):
    """What a messages route was asked for; `limit` None is every message from `offset`."""

    offset: int
    limit: int | None
    method: str | None
    direction: str | None
    shape: str  # "native" (coinwire's records) or "mhubrpc" (the seed's)

    def render(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Stored records in the asked format."""
        return mhubrpc.render(messages) if self.shape == "mhubrpc" else messages


def run_endpoint(access: RunAccess, handler: Callable[..., Awaitable[Any]], path: str, status: int = 200,
                 answer: Callable[[Any, int], Response] = json_response,
                 refuse: Callable[[CoinwireError], Response] = error_response) -> Callable[[Request], Awaitable[Response]]:
    """A runs route: the run it names checked as the caller's, the handler's answer, errors mapped to their status.

    `answer` and `refuse` render the outcome (these routes' shapes by default; the seed's API passes its own).
    """

    async def endpoint(request: Request) -> Response:
        try:
            access.require(request)
            return answer(await handler(request, **request.path_params), status)
        except CoinwireError as exc:
            return refuse(for_http(exc, start=path.endswith("/start")))
        except Exception:  # a bug: log it, and still answer in the documented error shape
            log.exception("runs route failed", route=path)
            internal = CoinwireError("internal_error", "Internal error")
            internal.http_status = 500
            return refuse(internal)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def add_runs_routes(app: FastAPI, manager: RunManager, owners: Owners | None = None) -> RunAccess:
    """Mount the runs routes over `manager` (the composition root opens and closes it with the server); answer their access.

    With `owners`, a run belongs to whoever started it: others get 404 for it and do not see it listed.
    """
    access = RunAccess(manager, owners)

    def route(method: str, path: str, handler: Callable[..., Awaitable[Any]], status: int = 200) -> None:
        app.add_api_route(path, run_endpoint(access, handler, path, status), methods=[method], tags=["runs"],
                          summary=handler.__name__)

    async def runnables(request: Request) -> Any:
        """Built-in strategies with their parameters (name, type, default) and documentation."""
        return manager.runnables()

    async def start_run(request: Request, name: str) -> Any:
        """Start a run in its own process: body {mode, start, end, balances, params, fee, fill, liquidity, intrabar, data}.

        Only built-ins for callers without SERVER_FILES: a `file.py:Class` runs that file's code on the server.
        """
        return await access.start(request, name, await json_body(request))

    async def list_runs(request: Request) -> Any:
        """Every run, newest first, with its status and headline metrics."""
        return access.visible(request)

    async def get_run(request: Request, run_id: str) -> Any:
        """One run with its report (null until it ends) and, while running, its progress."""
        return manager.get(run_id)

    async def run_components(request: Request, run_id: str) -> Any:
        """The run's UI components: spec and data rows (live while the run runs)."""
        return manager.store.components(run_id)

    async def run_messages(request: Request, run_id: str) -> Any:
        """The run's message hub, paged: {total, offset, limit, messages}; method `venue.` matches a prefix;
        `format=mhubrpc` renders the messages in the seed's call/result format."""
        total, offset, limit, messages = access.messages(request, run_id)
        return {"total": total, "offset": offset, "limit": limit, "messages": messages}

    async def run_log(request: Request, run_id: str) -> Any:
        """The run log: the strategy's lines, its traceback if it raised, a crashed process's output."""
        return manager.store.log(run_id)

    async def stop_run(request: Request, run_id: str) -> Any:
        """Stop a running run; it keeps what it did so far (status `stopped`). 409 when it is already done."""
        return await manager.stop(run_id)

    async def component_input(request: Request, run_id: str, component_id: str) -> Any:
        """User input {value} for a component of a running run; the strategy gets it as a `ui.input` message."""
        body = await json_body(request)
        if not isinstance(body, dict) or "value" not in body:
            raise InvalidInput("invalid_params", "the body must be a JSON object with a 'value'")
        return manager.post_input(run_id, component_id, body["value"])

    route("GET", "/runnables", runnables)
    route("PUT", "/runnables/{name:path}/start", start_run, status=202)
    route("GET", "/runs", list_runs)
    route("GET", "/runs/{run_id}", get_run)
    route("GET", "/runs/{run_id}/components", run_components)
    route("GET", "/runs/{run_id}/messages", run_messages)
    route("GET", "/runs/{run_id}/log", run_log)
    route("PUT", "/runs/{run_id}/stop", stop_run)
    route("PUT", "/runs/{run_id}/components/{component_id}", component_input, status=202)
    return access


def _may_use_server_files(principal: Principal | None) -> bool:
    """Admins (and a server without users) may name the server's files; others only built-ins and history."""
    return principal is None or can(principal, SERVER_FILES.action, SERVER_FILES.subject)


def for_http(exc: CoinwireError, start: bool) -> CoinwireError:
    """A request that is well-formed JSON but cannot run is 422; unknown strategies and runs stay 404."""
    if exc.code in ("parse_error", "too_deep", "invalid_characters"):
        return exc  # not readable JSON (or a NUL character in it): 400
    if isinstance(exc, InvalidInput) or (start and isinstance(exc, NotFound) and exc.code in _UNPROCESSABLE_NOT_FOUND):
        exc.http_status = 422
    elif type(exc) is CoinwireError and exc.http_status == 400:
        exc.http_status = 422  # plain CoinwireError: input refused by a helper (invalid_time, ...)
    return exc


async def json_body(request: Request) -> Any:
    """The request's JSON body (an empty body: an empty object), decoded as every route decodes JSON."""
    body = await request.body()
    return decode_json(body, exact=False) if body else {}


def _bounded(value: Any, where: str) -> Any:
    """A free-form body (a run's start request) whose every string and key fits MAX_TEXT characters."""
    if isinstance(value, str) and len(value) > P.MAX_TEXT:
        raise InvalidInput("too_long", f"`{where}` is longer than {P.MAX_TEXT} characters", field=where, max_length=P.MAX_TEXT)
    if isinstance(value, dict):
        for key, item in value.items():
            _bounded(key, f"{where} key")
            _bounded(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _bounded(item, f"{where}[{index}]")
    return value
