"""Builds the access layer of one process: token signer, auth service, owners, rate limiter, edge limits.

Settings come from the environment (all optional): COINWIRE_JWT_SECRET (else a 0600 file in
the data directory), COINWIRE_ADMIN_PASSWORD (else a one-time password printed on the first
start), COINWIRE_ACCESS_TOKEN_TTL (seconds, default 900), COINWIRE_RATE_LIMIT_IP and
COINWIRE_RATE_LIMIT_USER (`rate/burst` requests per second, default 50/200),
COINWIRE_RATE_LIMIT_RPC (JSON-RPC requests per WebSocket connection, default 1000/5000),
COINWIRE_MAX_BODY (bytes, default 1 MiB), COINWIRE_BODY_TIMEOUT (seconds a request body may take
to arrive, default 10), COINWIRE_CORS_ORIGINS (comma-separated origins
allowed to call the API from a browser; default none), COINWIRE_METRICS_TOKEN (a bearer token,
at least 32 characters, that opens `GET /metrics` to a scraper; default none: admins only),
COINWIRE_REGISTER_PER_HOUR (self-registration attempts per client address an hour, default 10).
Buckets live in Redis when the cache does. Whether self-registration is open is a runtime
setting (`auth.site_settings`), its defaults in the configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

import structlog

from coinwire.api.connections import OpenConnections
from coinwire.api.guard import EdgeLimits
from coinwire.api.ownership import Owners
from coinwire.auth.audit import AuditLog
from coinwire.auth.ratelimit import RateLimiter, limiter_from_url
from coinwire.auth.registration import DEFAULT_PER_HOUR, Registration
from coinwire.auth.repository import AuthRepository
from coinwire.auth.service import AuthService
from coinwire.auth.site_settings import RegistrationSettings, SiteSettings
from coinwire.auth.tokens import TokenSigner, load_secret
from coinwire.config import ConfigError, Settings
from coinwire.store import Store

__all__ = ["Access", "edge_limits"]

log = structlog.get_logger("coinwire.auth")


def _rate(env: Mapping[str, str], name: str, default: tuple[float, float]) -> tuple[float, float]:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        rate, _, burst = raw.partition("/")
        pair = float(rate), float(burst or rate)
    except ValueError:
        raise ConfigError(f"{name} must be `rate/burst` requests per second, e.g. 50/200; got {raw!r}") from None
    if pair[0] <= 0 or pair[1] < 1:
        raise ConfigError(f"{name}: the rate must be > 0 and the burst >= 1")
    return pair


def edge_limits(env: Mapping[str, str]) -> EdgeLimits:
    ip = _rate(env, "COINWIRE_RATE_LIMIT_IP", (50.0, 200.0))
    user = _rate(env, "COINWIRE_RATE_LIMIT_USER", (50.0, 200.0))
    body = env.get("COINWIRE_MAX_BODY", "")
    if body and not body.isdigit():
        raise ConfigError(f"COINWIRE_MAX_BODY must be a number of bytes, got {body!r}")
    timeout = env.get("COINWIRE_BODY_TIMEOUT", "")
    try:
        body_timeout = float(timeout or 10.0)
    except ValueError:
        raise ConfigError(f"COINWIRE_BODY_TIMEOUT must be a number of seconds, got {timeout!r}") from None
    if not 0 < body_timeout <= 3600:
        raise ConfigError(f"COINWIRE_BODY_TIMEOUT must be between 0 and 3600 seconds, got {timeout!r}")
    return EdgeLimits(ip_rate=ip[0], ip_burst=ip[1], user_rate=user[0], user_burst=user[1], max_body=int(body or 1_048_576),
                      body_timeout=body_timeout)


def _per_hour(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise ConfigError(f"{name} must be a whole number from 1 to 100000 (attempts an hour), got {raw!r}")
    return int(raw)


class Access:
    """Everything that decides who may call: built with the app, started once the store is open.

    `currencies` answers the display currencies the FX source knows (a new user's currency is one of them).
    """

    def __init__(self, settings: Settings, store: Store, env: Mapping[str, str], currencies: Callable[[], set[str]]) -> None:
        ttl = env.get("COINWIRE_ACCESS_TOKEN_TTL", "")
        if ttl and not ttl.isdigit():
            raise ConfigError(f"COINWIRE_ACCESS_TOKEN_TTL must be seconds, got {ttl!r}")
        self.env = env
        self.repo = AuthRepository(store)
        self.signer = TokenSigner(load_secret(settings.data_path, env), ttl=int(ttl or 900))
        self.service = AuthService(self.repo, self.signer)
        self.connections = OpenConnections(self.service)  # open WebSockets end with their credentials
        self.owners = Owners(self.repo)
        self.audit = AuditLog(store)
        self.limiter: RateLimiter = limiter_from_url(settings.cache_url, settings.namespace)
        self.limits = edge_limits(env)
        self.rpc_limit = _rate(env, "COINWIRE_RATE_LIMIT_RPC", (1000.0, 5000.0))
        self.cors_origins = [o.strip() for o in env.get("COINWIRE_CORS_ORIGINS", "").split(",") if o.strip()]
        self.metrics_token = env.get("COINWIRE_METRICS_TOKEN", "")
        if self.metrics_token and len(self.metrics_token) < 32:
            raise ConfigError("COINWIRE_METRICS_TOKEN must be at least 32 characters (it opens /metrics to whoever holds it)")
        defaults = RegistrationSettings(self_registration=settings.self_registration, registration_role=settings.registration_role)
        self.site = SiteSettings(store, defaults)
        self.registration = Registration(self.service, self.site, self.limiter, currencies,
                                         per_hour=_per_hour(env, "COINWIRE_REGISTER_PER_HOUR", DEFAULT_PER_HOUR))
        self.settings = settings

    async def start(self) -> None:
        """Create `admin` on an empty store (printing a generated password once) and load the owners."""
        generated = await self.service.bootstrap(self.env.get("COINWIRE_ADMIN_PASSWORD") or None)
        if generated is not None:
            # to the console only, never to the log: shown once, then only its argon2id hash exists
            print(f"\ncoinwire: created user 'admin' with the one-time password: {generated}\n"
                  "          sign in and change it: coinwire user passwd admin\n", file=sys.stderr, flush=True)
        role = await self.site.open_role()  # says so when a stored choice is held closed (a live exchange)
        if role is not None:
            log.info("self-registration is open: anyone who reaches this server may create an account", role=role)
        await self.owners.load()
        await self.audit.start()
        await self.connections.start()
        host = self.settings.host
        if not (host in ("localhost", "::1") or host.startswith("127.")):
            log.warning("bound beyond this machine: put TLS in front (a reverse proxy) before anyone signs in over it",
                        host=host)

    async def close(self) -> None:
        """Write what is buffered; a failure is logged and never keeps the platform from stopping."""
        for close in (self.connections.close, self.audit.close, self.owners.close, self.limiter.close):
            try:
                await close()
            except Exception:
                log.exception("access layer did not close cleanly")
