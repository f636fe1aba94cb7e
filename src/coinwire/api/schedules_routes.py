"""Schedules over REST under `/api/v1/schedules`, the same methods as JSON-RPC's `*_schedule` (one implementation: `Api.call`).

    GET    /api/v1/schedules                      the caller's schedules (admins: every one), with next run and last tick
    POST   /api/v1/schedules                      {name, cron | every, timezone, job: {kind, ...}, misfire} (201)
    GET    /api/v1/schedules/{id}                 one schedule with its next 5 run times
    DELETE /api/v1/schedules/{id}                 remove it (and its tick history)
    POST   /api/v1/schedules/{id}/pause|resume    pause it; resume it from now

Another user's schedule id answers 404 `schedule_not_found`, like an id that does not exist
(services.scheduler.Scheduler.owned, the one place). Viewers may list their own; adding and
changing is for traders and admins (auth.abilities: `manage` on `schedule`).

`OwnersForSchedules` gives the scheduler's run kinds the API's owners table: a scheduled run is
its schedule owner's run, as if the owner had started it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api.guard import principal_of
from coinwire.api.json_input import decode_json
from coinwire.api.methods import Api
from coinwire.api.ownership import Owners
from coinwire.api.rest import error_response, http_context, json_response
from coinwire.auth.abilities import Principal
from coinwire.auth.errors import Unauthenticated
from coinwire.core.errors import CoinwireError, InvalidInput

__all__ = ["OwnersForSchedules", "add_schedules_routes"]

log = structlog.get_logger("coinwire.api")


class OwnersForSchedules:
    """The API's run owners as services.scheduler.RunOwnership: whose runs a step may reach, who owns a scheduled run."""

    def __init__(self, owners: Owners) -> None:
        self.owners = owners

    def owns(self, run_id: str, user: Principal) -> bool:
        return self.owners.visible("run", run_id, user)

    async def started(self, run_id: str, user_id: int) -> None:
        await self.owners.save("run", run_id, _as_user(user_id))

    def funded(self, wallet_set_id: int, user_id: int) -> None:
        self.owners.record("wallet_set", wallet_set_id, _as_user(user_id))


def _as_user(user_id: int) -> Principal:
    return Principal(user_id=user_id, username="", role="trader", plan="free")  # only the id is recorded


def add_schedules_routes(app: FastAPI, api: Api) -> None:
    """Mount the schedule routes; each calls the JSON-RPC method of the same meaning through `api.call`."""

    def route(method: str, path: str, name: str, status: int = 200, body: bool = False) -> None:
        async def endpoint(request: Request) -> Response:
            try:
                principal = principal_of(request)
                if principal is None:
                    raise Unauthenticated("unauthenticated", "sign in to use schedules")
                raw: dict[str, Any] = {}
                if not body and await request.body():  # the path says everything: a body is a mistake, refused first
                    raise InvalidInput("invalid_params", f"{name} takes no body")
                if body:
                    given = decode_json(await request.body(), exact=False) if await request.body() else None
                    if not isinstance(given, dict):
                        raise InvalidInput("invalid_params", "the body must be a JSON object (name, cron or every, job, ...)")
                    raw = given
                if "schedule_id" in request.path_params:
                    raw = {"id": int(request.path_params["schedule_id"])}
                return json_response(await api.call(name, raw, http_context(request, principal)), status)
            except CoinwireError as exc:
                return error_response(exc)
            except Exception:  # a bug: log it, and still answer in the documented error shape
                log.exception("schedules route failed", route=path)
                return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

        handler: Callable[..., Awaitable[Any]] = api.methods[name].handler
        endpoint.__name__ = f"{name}_http"
        endpoint.__doc__ = handler.__doc__
        app.add_api_route(path, endpoint, methods=[method], tags=["schedules"], summary=name)

    route("GET", "/api/v1/schedules", "list_schedules")
    route("POST", "/api/v1/schedules", "add_schedule", status=201, body=True)
    route("GET", "/api/v1/schedules/{schedule_id:int}", "get_schedule")
    route("DELETE", "/api/v1/schedules/{schedule_id:int}", "remove_schedule")
    route("POST", "/api/v1/schedules/{schedule_id:int}/pause", "pause_schedule")
    route("POST", "/api/v1/schedules/{schedule_id:int}/resume", "resume_schedule")
