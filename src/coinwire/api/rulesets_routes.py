"""Rule sets over REST under `/api/v1/rulesets` (the JSON-RPC `*_rule_set` methods, one implementation: `Api.call`),
and the `rule_fired` push channel's routing.

    GET    /api/v1/rulesets                        the caller's rule sets (admins: every one), with live status
    POST   /api/v1/rulesets                        a rule set's JSON form, plus `confirm` (201)
    GET    /api/v1/rulesets/{id}                   one rule set with its live status
    PUT    /api/v1/rulesets/{id}                   replace it wholly (same body as POST)
    DELETE /api/v1/rulesets/{id}                   delete it with its firing history
    POST   /api/v1/rulesets/{id}/enable|disable    enable (body {"confirm": true} for a live close_all) or disable it
    GET    /api/v1/rulesets/{id}/firings           ?limit=&before=: its firings, newest first

Another user's rule set id answers 404 `rule_set_not_found`, like an id that does not exist
(services.rule_sets.RuleSets.owned, the one place). Viewers may list their own; creating and
changing is for traders and admins (auth.abilities: `manage` on `rule_set`).

`RuleFiredPush` is what the controller calls with each firing: it goes over the bus to every api
process, whose notifier pushes it to the `rule_fired` listeners who own the rule set or may read its
scope (api.portfolio_access.still_readable's rule), never to anyone else.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api.guard import principal_of
from coinwire.api.json_input import decode_json
from coinwire.api.methods import Api
from coinwire.api.query_values import INT64_MAX, query_int
from coinwire.api.rest import add_components, error_response, http_context, json_response, openapi_entry
from coinwire.auth.errors import Unauthenticated
from coinwire.bus.base import Bus
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.messages import RuleFired, rule_fired_subject
from coinwire.services.rule_sets import MAX_FIRINGS_PAGE
from coinwire.store.rules import RuleSetRow

__all__ = ["CHANNEL", "RuleFiredPush", "add_rulesets_routes"]

log = structlog.get_logger("coinwire.api")

CHANNEL = "rule_fired"


class RuleFiredPush:
    """The controller's publisher: a firing (services.rule_sets.firing_view, plus the rule set's name) onto the bus.

    Why the bus: the controller runs beside the gateway, while the rule set's readers may be connected to
    any api process; each one's notifier pushes `RuleFired` to its own connections that may read it
    (api.notifier). The message carries the readers' rule's inputs, as this process knows them.
    """

    def __init__(self, api: Api, bus: Bus) -> None:
        self.api = api
        self.bus = bus
        self._sending: set[asyncio.Task[None]] = set()

    def __call__(self, row: RuleSetRow, firing: dict[str, Any]) -> None:
        """Publish `{rule_set_id, name, scope, scope_id, firing}` (in a task: the controller does not wait for the bus)."""
        task = asyncio.get_running_loop().create_task(self.publish(row, firing))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def publish(self, row: RuleSetRow, firing: dict[str, Any]) -> None:
        payload = {"rule_set_id": row.id, "name": row.name, "scope": row.scope, "scope_id": row.scope_id, "firing": firing}
        owners = self.api.owners
        if row.scope == "user":
            scope_owner: int | None = int(row.scope_id)
        elif row.scope in ("wallet_set", "run") and owners is not None:
            scope_owner = owners.owner_of(row.scope, row.scope_id)
        else:
            scope_owner = None
        message = RuleFired(row.id, row.owner_id, row.scope, row.scope_id, scope_owner, payload)
        try:
            await self.bus.publish(rule_fired_subject(row.id), message)
        except Exception:  # the firing is in its rule set's journal (GET .../firings): the push alone is lost
            log.warning("rule_fired push not published", rule_set=row.id, exc_info=True)

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)


async def _body(request: Request) -> dict[str, Any]:
    data = await request.body()
    given = decode_json(data) if data.strip() else {}
    if not isinstance(given, dict):
        raise InvalidInput("invalid_params", "the body must be a JSON object")
    if "id" in given:
        raise InvalidInput("invalid_params", "the rule set's id is in the path, not the body", field="id")
    return given


def add_rulesets_routes(app: FastAPI, api: Api) -> None:
    """Mount the rule set routes; each calls the JSON-RPC method of the same meaning through `api.call`."""

    def route(method: str, path: str, name: str, status: int = 200, body: bool = False, query: bool = False) -> None:
        async def endpoint(request: Request) -> Response:
            try:
                principal = principal_of(request)
                if principal is None:
                    raise Unauthenticated("unauthenticated", "sign in to use rule sets")
                if not query and request.query_params:
                    raise InvalidInput("invalid_params", f"{name} takes no query parameters")
                if not body and (await request.body()).strip():  # the path says everything: a body is a mistake
                    raise InvalidInput("invalid_params", f"{name} takes no body")
                raw: dict[str, Any] = await _body(request) if body else {}
                if query:
                    unknown = sorted(set(request.query_params) - {"limit", "before"})
                    if unknown:
                        raise InvalidInput("invalid_params", f"unknown query parameters {unknown}; known: limit, before")
                    raw["limit"] = query_int(request.query_params.get("limit"), "limit", 100, 1, MAX_FIRINGS_PAGE)
                    before = request.query_params.get("before")
                    if before:
                        raw["before"] = query_int(before, "before", 0, 0, INT64_MAX)
                if "rule_set_id" in request.path_params:
                    raw["id"] = int(request.path_params["rule_set_id"])
                return json_response(await api.call(name, raw, http_context(request, principal)), status)
            except CoinwireError as exc:
                return error_response(exc)
            except Exception:  # a bug: log it, and still answer in the documented error shape
                log.exception("rule set route failed", route=path)
                return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

        endpoint.__name__ = f"{name}_http"
        endpoint.__doc__ = api.methods[name].handler.__doc__
        documented = method if body else "GET"  # a route without a body: its fields but the path's are query parameters
        extra = openapi_entry(api, name, documented, path.replace("{rule_set_id:int}", "{id:int}"), components)
        for parameter in extra["parameters"]:  # the methods' `id` is the path's `rule_set_id`
            if parameter["in"] == "path" and parameter["name"] == "id":
                parameter["name"] = "rule_set_id"
        app.add_api_route(path, endpoint, methods=[method], tags=["rule sets"], summary=name, openapi_extra=extra)

    components: dict[str, Any] = {}
    one = "/api/v1/rulesets/{rule_set_id:int}"
    route("GET", "/api/v1/rulesets", "list_rule_sets")
    route("POST", "/api/v1/rulesets", "create_rule_set", status=201, body=True)
    route("GET", one, "get_rule_set")
    route("PUT", one, "update_rule_set", body=True)
    route("DELETE", one, "delete_rule_set")
    route("POST", f"{one}/enable", "enable_rule_set", body=True)
    route("POST", f"{one}/disable", "disable_rule_set")
    route("GET", f"{one}/firings", "get_rule_firings", query=True)
    add_components(app, components)
