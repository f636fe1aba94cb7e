"""The one place access rules are enforced: HTTP middleware, JSON-RPC calls and push channels.

HTTP: every request is matched to its route template, the template's rule is looked up in
`coinwire.auth.abilities.HTTP_RULES` and checked before the route runs; a route without a
rule answers 403 `no_rule`. `GET /metrics` (admins) also takes the scrape token
(COINWIRE_METRICS_TOKEN) as its bearer credential, compared in constant time. The middleware
also limits request bodies (413) and the time they take to arrive (408), path and query
values (400 `too_long`; 400 `invalid_characters` for a NUL character), counts the
client address's and the user's token buckets (429 + Retry-After) and authenticates the
`Authorization: Bearer` credential (an access token or an API key). JSON-RPC methods and
push channels go through `authorize()` with their rules from RPC_RULES and PUSH_RULES.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import structlog
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coinwire.api import params as P
from coinwire.api.seed_errors import ERROR_CODE_HEADER, is_seed_path, seed_error_body
from coinwire.auth.abilities import PUSH_RULES, RPC_RULES, Principal, Rule, denial, http_rule
from coinwire.auth.audit import AuditLog
from coinwire.auth.errors import Forbidden, RateLimited, Unauthenticated
from coinwire.auth.ratelimit import RateLimiter
from coinwire.auth.service import AuthService
from coinwire.core.errors import CoinwireError, InvalidInput

__all__ = ["GuardMiddleware", "EdgeLimits", "authorize", "authorize_rpc", "authorize_channel", "credential_of", "client_ip"]

log = structlog.get_logger("coinwire.guard")
METRICS_PATH = "/metrics"
_encode = msgspec.json.Encoder().encode


class EdgeLimits(msgspec.Struct, frozen=True):
    """Request budgets: per client address and per user (requests/second and burst), body bytes and seconds."""

    ip_rate: float = 50.0
    ip_burst: float = 200.0
    user_rate: float = 50.0
    user_burst: float = 200.0
    max_body: int = 1_048_576
    body_timeout: float = 10.0  # a body must arrive whole within this time of the request's headers


# Path segments a route takes, by name: the same limits as the parameters of that name
_PATH_LIMITS = {
    "run_id": P.MAX_ID,
    "component_id": P.MAX_ID,
    "key_id": P.MAX_ID,
    "exchange": P.MAX_NAME,
    "pair": P.MAX_SYMBOL,
    "symbol": P.MAX_SYMBOL,
}


def authorize(principal: Principal | None, rule: Rule | None, what: str) -> None:
    """Raise unless `principal` may use something governed by `rule` (None: no rule, always denied)."""
    if rule is None:
        raise Forbidden("no_rule", f"{what} has no access rule: denied")
    if rule.public:
        return
    reason = denial(principal, rule.action, rule.subject)
    if reason == "unauthenticated":
        raise Unauthenticated("unauthenticated", "sign in first: send `Authorization: Bearer <token or API key>`")
    if reason is not None:
        messages = {
            "forbidden": f"your role may not {rule.action} {rule.subject}",
            "scope_missing": f"this API key's scopes do not allow {rule.action} {rule.subject}",
            "plan_required": f"{rule.subject} is a feature of the pro plan",
        }
        raise Forbidden(reason, messages[reason])


def authorize_rpc(principal: Principal | None, method: str) -> None:
    authorize(principal, RPC_RULES.get(method), f"method {method!r}")


def authorize_channel(principal: Principal | None, channel: str) -> None:
    authorize(principal, PUSH_RULES.get(channel), f"channel {channel!r}")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value, "latin-1")
    return None


def credential_of(scope: Scope, allow_query: bool = False) -> str | None:
    """The bearer credential of a request: the Authorization header (or, for WebSockets, `access_token`)."""
    header = _header(scope, b"authorization")
    if header is not None:
        kind, _, value = header.partition(" ")
        return value.strip() if kind.lower() == "bearer" and value.strip() else ""
    if allow_query:
        from urllib.parse import parse_qs

        values: list[str] | None = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("access_token")
        if values:
            return values[0]
    return None


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_CSP = (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
_CDN_PAGES = ("/docs", "/redoc")  # FastAPI's API browsers load their scripts from a CDN: no CSP there


def _with_security_headers(scope: Scope, send: Send) -> Send:
    """Every answer carries the browser hardening headers (and, but for the API browsers, a strict CSP)."""
    extra = _SECURITY_HEADERS if scope["path"].startswith(_CDN_PAGES) else [*_SECURITY_HEADERS, _CSP]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_headers


async def _answer(send: Send, exc: CoinwireError, path: str) -> None:
    headers = []
    if is_seed_path(path):  # the seed's strategy API: its own error shape, the code in a header
        body = seed_error_body(exc)
        headers.append((ERROR_CODE_HEADER.lower().encode(), exc.code.encode()))
    else:
        body = _encode({"error": exc.to_dict()})
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if isinstance(exc, RateLimited):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    if isinstance(exc, Unauthenticated):
        headers.append((b"www-authenticate", b"Bearer"))
    if exc.http_status == 408:  # the rest of a late body may still come: this connection is done
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """ASGI middleware in front of every HTTP route (the `/rpc` WebSocket authenticates in `rpc_asgi`)."""

    def __init__(self, app: ASGIApp, auth: AuthService, limiter: RateLimiter, limits: EdgeLimits,
                 audit: AuditLog | None = None, metrics_token: str = "") -> None:
        self.app = app
        self.metrics_token = metrics_token.encode()  # empty: /metrics is for admins only
        self.auth = auth
        self.audit = audit
        self.limiter = limiter
        self.limits = limits

    def _route(self, scope: Scope) -> tuple[str, str] | None:
        router = scope["app"].router
        for route in router.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                _check_lengths(scope, child.get("path_params", {}))
                return scope["method"], route.path
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        changes = scope["method"] not in ("GET", "HEAD", "OPTIONS")
        try:
            scope.setdefault("state", {})
            receive = await self._check(scope, receive)
        except CoinwireError as exc:
            if exc.http_status >= 401:
                log.warning("request refused", code=exc.code, method=scope["method"], path=scope["path"], client_ip=client_ip(scope))
            if changes:
                self._audit(scope, exc.code)
            await _answer(_with_security_headers(scope, send), exc, scope["path"])
            return
        if not changes or self.audit is None or "route" not in scope["state"]:
            await self.app(scope, receive, _with_security_headers(scope, send))
            return
        status = [500]
        secured = _with_security_headers(scope, send)

        async def noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await secured(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            self._audit(scope, str(status[0]))

    def _audit(self, scope: Scope, outcome: str) -> None:
        """A state-changing request: who, which route, which resource (the path), the outcome."""
        if self.audit is not None:
            action = f"{scope['method']} {scope['state'].get('route', scope['path'])}"
            self.audit.record(scope["state"].get("principal"), action, scope["path"], outcome, client_ip(scope))

    async def _check(self, scope: Scope, receive: Receive) -> Receive:
        ip = client_ip(scope)
        wait = await self.limiter.take(f"ip:{ip}", self.limits.ip_rate, self.limits.ip_burst)
        if wait > 0:
            raise RateLimited("rate_limited", "too many requests from this address", wait)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limits.max_body):
            raise _too_large(self.limits.max_body)
        found = self._route(scope)
        if found is None:
            return receive  # no such route: the router answers 404 / 405 and runs nothing
        rule = http_rule(*found)
        scope["state"]["route"] = found[1]
        principal: Principal | None = None
        if rule is not None and not rule.public:
            credential = credential_of(scope)
            if found[1] == METRICS_PATH and credential and self._is_metrics_token(credential):
                return receive  # a scraper: the token is no user's and opens /metrics only
            if credential:
                principal = await self.auth.authenticate(credential)
                scope["state"]["principal"] = principal
                wait = await self.limiter.take(f"user:{principal.user_id}", self.limits.user_rate, self.limits.user_burst)
                if wait > 0:
                    raise RateLimited("rate_limited", "too many requests for this user", wait)
            elif credential == "":
                raise Unauthenticated("invalid_token", "the Authorization header must be `Bearer <token>`")
        authorize(principal, rule, f"{found[0]} {found[1]}")
        scope["state"]["principal"] = principal
        return await self._buffered(scope, receive)

    def _is_metrics_token(self, credential: str) -> bool:
        return bool(self.metrics_token) and hmac.compare_digest(credential.encode(), self.metrics_token)

    async def _buffered(self, scope: Scope, receive: Receive) -> Receive:
        """Read the body whole before the route runs (within the size and time limits); replay it after.

        A body that does not arrive within `body_timeout` (one declaring 100 bytes and sending
        10) answers 408 `body_timeout` and the connection is closed, instead of holding a
        route, and the connection, open for as long as the client likes.
        """
        length = _header(scope, b"content-length")
        if length == "0" or (length is None and scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS")):
            return receive
        chunks, seen = [], 0
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return receive
                    chunks.append(message.get("body", b""))
                    seen += len(chunks[-1])
                    if seen > self.limits.max_body:
                        raise _too_large(self.limits.max_body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            exc = CoinwireError("body_timeout", f"the request body did not arrive within {self.limits.body_timeout:g} s")
            exc.http_status = 408
            raise exc from None
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _check_lengths(scope: Scope, path_params: dict[str, Any]) -> None:
    """Path segments and query values beyond their limits (400 `too_long`) or with a NUL character
    (400 `invalid_characters`: no column of PostgreSQL can hold one) are refused before anything runs."""
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
        raise InvalidInput("invalid_characters", "paths and query values must not contain NUL characters (%00)")
    for name, value in path_params.items():
        limit = _PATH_LIMITS.get(name, P.MAX_PATH_PARAM)
        if isinstance(value, str) and len(value) > limit:
            raise _too_long(name, limit)
    query = scope.get("query_string", b"")
    if len(query) > P.MAX_QUERY_VALUE:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if len(value) > P.MAX_QUERY_VALUE:
                raise _too_long(name[:64], P.MAX_QUERY_VALUE)


def _too_long(field: str, limit: int) -> CoinwireError:
    return InvalidInput("too_long", f"`{field}` is longer than {limit} characters", field=field, max_length=limit)


def _too_large(limit: int) -> CoinwireError:
    exc = CoinwireError("body_too_large", f"request bodies are limited to {limit} bytes")
    exc.http_status = 413
    return exc


def principal_of(request: Any) -> Principal | None:
    """The caller the middleware authenticated (None on public routes)."""
    return getattr(request.state, "principal", None)
