"""Sign-in, sessions, the caller's abilities, API keys and users under `/api/v1`.

    POST   /api/v1/auth/login        {username, password} -> {access_token, refresh_token, token_type, expires_in}
    GET    /api/v1/auth/registration whether self-registration is open: {open, currencies, password_min_length, ...}
    POST   /api/v1/auth/register     {username, password, time_zone, currency} -> 201, tokens as a sign-in answers
    POST   /api/v1/auth/refresh      {refresh_token} -> a new pair (the old refresh token is spent)
    POST   /api/v1/auth/logout       ends this session
    POST   /api/v1/auth/logout_all   ends every session of the caller
    GET    /api/v1/auth/sessions     the caller's open sessions
    GET    /api/v1/me                who the caller is
    GET    /api/v1/me/abilities      the rules for the dashboard (what to show)
    GET    /api/v1/api_keys          the caller's API keys (never the keys themselves)
    POST   /api/v1/api_keys          {name, scopes} -> {id, key}: the key is shown this once
    DELETE /api/v1/api_keys/{key_id}
    GET    /api/v1/users             (admin) every user
    POST   /api/v1/users             (admin) {username, password, role, plan}
    GET    /api/v1/audit             (admin) ?user&action&limit&before: state-changing actions, newest first
    GET    /api/v1/admin/settings    (admin) {self_registration, registration_role}
    PUT    /api/v1/admin/settings    (admin) any of those; fields left out keep their value
    GET    /api/v1/logs              ?limit: recent logmessages, newest first (admins all; others their own orders')

Bodies are strict: unknown fields answer 400 `invalid_params`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.guard import client_ip, principal_of
from coinwire.api.json_input import decode_shape
from coinwire.api.query_values import INT64_MAX, query_int
from coinwire.api.rest import error_response, json_response
from coinwire.auth.abilities import Principal, abilities
from coinwire.auth.audit import AuditLog
from coinwire.auth.registration import Registration
from coinwire.auth.service import AuthService
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.services.log_feed import LogRing

__all__ = ["add_auth_routes"]

log = structlog.get_logger("coinwire.auth")


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class LoginBody(_Body):
    username: P.Ident
    password: P.Secret


class RegisterBody(_Body):
    username: P.Ident
    password: P.Secret
    time_zone: P.Name
    currency: P.Word


class SiteSettingsBody(_Body):
    self_registration: bool | None = None
    registration_role: P.Word | None = None


class RefreshBody(_Body):
    refresh_token: P.Secret


class ApiKeyBody(_Body):
    name: P.Ident
    scopes: Annotated[list[P.Word], msgspec.Meta(max_length=P.MAX_LIST)]


class UserBody(_Body):
    username: P.Ident
    password: P.Secret
    role: P.Word = "trader"
    plan: P.Word = "free"


async def _body(request: Request, shape: type) -> Any:
    return decode_shape(await request.body(), shape, "the request body")


def add_auth_routes(app: FastAPI, auth: AuthService, audit: AuditLog, logs: LogRing, registration: Registration) -> None:
    def route(method: str, path: str, handler: Callable[..., Awaitable[Any]], shape: type | None = None, status: int = 200) -> None:
        async def endpoint(request: Request) -> Response:
            try:
                args: list[Any] = [request, principal_of(request)]
                if shape is not None:
                    args.append(await _body(request, shape))
                return json_response(await handler(*args, **request.path_params), status)
            except CoinwireError as exc:
                return error_response(exc)
            except Exception:
                log.exception("auth route failed", route=path)
                return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        openapi: dict[str, Any] = {}
        if shape is not None:
            (_schema,), defs = msgspec.json.schema_components([shape], ref_template="#/components/schemas/{name}")
            openapi["requestBody"] = {"content": {"application/json": {"schema": defs[shape.__name__]}}, "required": True}
        app.add_api_route(path, endpoint, methods=[method], tags=["auth"], summary=handler.__name__, openapi_extra=openapi)

    async def login(request: Request, _: None, body: LoginBody) -> Any:
        """Sign in: a short-lived access token and a refresh token."""
        client = request.headers.get("user-agent", "")
        return await auth.login(body.username, body.password, client_ip(request.scope), client)

    async def registration_status(request: Request, _: None) -> Any:
        """Whether anyone may create an account here (the sign-in page offers it only then), and what to ask."""
        return await registration.status()

    async def register(request: Request, _: None, body: RegisterBody) -> Any:
        """Create an account (when an admin opened self-registration) and sign it in: tokens as a sign-in answers."""
        client = request.headers.get("user-agent", "")
        tokens, principal = await registration.register(body.username, body.password, body.time_zone, body.currency,
                                                        client_ip(request.scope), client)
        request.state.principal = principal  # the audit row of this request names the user it made
        return tokens

    async def get_site_settings(request: Request, me: Principal) -> Any:
        """The settings an admin changes at runtime (admins only)."""
        return await registration.site.get()

    async def put_site_settings(request: Request, me: Principal, body: SiteSettingsBody) -> Any:
        """Change runtime settings (admins only); fields left out keep their value. Answers the settings now in force."""
        change = {f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not None}
        now = await registration.site.update(change, me.user_id)
        for field, value in change.items():  # the audit row of the request has no body: what changed, one row each
            audit.record(me, f"setting {field}", str(value).lower() if isinstance(value, bool) else str(value), "changed",
                         client_ip(request.scope))
        log.info("site settings changed", user=me.username, **change)
        return now

    async def refresh(request: Request, _: None, body: RefreshBody) -> Any:
        """Trade a refresh token for a new pair; a spent one revokes the session."""
        return await auth.refresh(body.refresh_token)

    async def logout(request: Request, me: Principal) -> Any:
        """End this session."""
        return await auth.logout(me)

    async def logout_all(request: Request, me: Principal) -> Any:
        """End every session of the caller."""
        return await auth.logout_all(me)

    async def sessions(request: Request, me: Principal) -> Any:
        """The caller's open sessions."""
        return await auth.sessions(me)

    async def me(request: Request, me: Principal) -> Any:
        """Who is calling."""
        return {"id": me.user_id, "username": me.username, "role": me.role, "plan": me.plan, "session_id": me.session_id,
                "scopes": list(me.scopes) if me.scopes is not None else None}

    async def my_abilities(request: Request, me: Principal) -> Any:
        """The access rules as they apply to the caller (the dashboard hides the rest)."""
        return abilities(me)

    async def list_keys(request: Request, me: Principal) -> Any:
        """The caller's API keys: id, name, scopes (never the key)."""
        return await auth.api_keys(me)

    async def create_key(request: Request, me: Principal, body: ApiKeyBody) -> Any:
        """A new API key with scopes (read, trade, admin); the key is in this answer only."""
        return await auth.create_api_key(me, body.name, body.scopes)

    async def revoke_key(request: Request, me: Principal, key_id: str) -> Any:
        """Revoke one of the caller's API keys."""
        return await auth.revoke_api_key(me, key_id)

    async def list_users(request: Request, me: Principal) -> Any:
        """Every user (admins only)."""
        return await auth.list_users()

    async def create_user(request: Request, me: Principal, body: UserBody) -> Any:
        """Create a user (admins only)."""
        return await auth.create_user(body.username, body.password, body.role, body.plan)

    async def audit_log(request: Request, me: Principal) -> Any:
        """State-changing actions (admins only): ?user=NAME&action=PREFIX&limit=N&before=ID, newest first."""
        q = request.query_params
        unknown = set(q) - {"user", "action", "limit", "before"}
        if unknown:
            raise InvalidInput("invalid_params", f"unknown query parameters {sorted(unknown)}")
        limit = query_int(q.get("limit"), "limit", 100, 1, 1000, "invalid_limit")
        before = query_int(q.get("before"), "before", 0, 1, INT64_MAX) or None
        return await audit.query(q.get("user") or None, q.get("action") or None, limit, before)

    async def recent_logs(request: Request, me: Principal) -> Any:
        """Recent log messages (?limit=N, 1..1000, default 100), newest first: an admin's all, another user's only their own."""
        q = request.query_params
        unknown = set(q) - {"limit"}
        if unknown:
            raise InvalidInput("invalid_params", f"unknown query parameters {sorted(unknown)}")
        limit = query_int(q.get("limit"), "limit", 100, 1, 1000, "invalid_limit")
        return {"logs": logs.recent(me, limit)}

    route("GET", "/api/v1/audit", audit_log)
    route("GET", "/api/v1/logs", recent_logs)
    route("POST", "/api/v1/auth/login", login, LoginBody)
    route("GET", "/api/v1/auth/registration", registration_status)
    route("POST", "/api/v1/auth/register", register, RegisterBody, status=201)
    route("GET", "/api/v1/admin/settings", get_site_settings)
    route("PUT", "/api/v1/admin/settings", put_site_settings, SiteSettingsBody)
    route("POST", "/api/v1/auth/refresh", refresh, RefreshBody)
    route("POST", "/api/v1/auth/logout", logout)
    route("POST", "/api/v1/auth/logout_all", logout_all)
    route("GET", "/api/v1/auth/sessions", sessions)
    route("GET", "/api/v1/me", me)
    route("GET", "/api/v1/me/abilities", my_abilities)
    route("GET", "/api/v1/api_keys", list_keys)
    route("POST", "/api/v1/api_keys", create_key, ApiKeyBody, status=201)
    route("DELETE", "/api/v1/api_keys/{key_id}", revoke_key)
    route("GET", "/api/v1/users", list_users)
    route("POST", "/api/v1/users", create_user, UserBody, status=201)
