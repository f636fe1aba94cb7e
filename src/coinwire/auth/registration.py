"""Self-registration: whether it is open, and signing up a new user with their time zone and currency.

Closed unless an admin opens it (`auth.site_settings`). A sign-up is checked like everything else
that makes a user: the user-name and password rules of admin-created users
(`auth.service.check_username`, `auth.passwords.check_password_rules`), the time zone and
currency as preferences are (`auth.preferences.checked`: an IANA zone this system knows, a
currency the FX source knows). The user, with the role the admin chose and the `free` plan, and
their preferences are written in one transaction, then a session is opened as at a sign-in.

Each address may try `per_hour` sign-ups an hour (a token bucket, in Redis when the cache is:
shared by every process), counted once the request is well-formed and registration open, so a
typo costs nothing but neither spraying accounts nor probing which names are taken (a taken
name answers 409 `user_exists`) goes faster than that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from coinwire.auth.abilities import Principal
from coinwire.auth.errors import Forbidden, RateLimited
from coinwire.auth.passwords import MAX_LENGTH, MIN_LENGTH, check_password_rules
from coinwire.auth.preferences import checked, new_row
from coinwire.auth.ratelimit import RateLimiter
from coinwire.auth.service import AuthService, check_username
from coinwire.auth.site_settings import SiteSettings

__all__ = ["DEFAULT_PER_HOUR", "Registration"]

log = structlog.get_logger("coinwire.auth")

DEFAULT_PER_HOUR = 10  # sign-up attempts per client address an hour (COINWIRE_REGISTER_PER_HOUR)


class Registration:
    """Self-registration over the auth service, the admin's settings and the rate limiter."""

    def __init__(self, auth: AuthService, site: SiteSettings, limiter: RateLimiter, currencies: Callable[[], set[str]],
                 per_hour: int = DEFAULT_PER_HOUR, clock: Callable[[], int] = time.time_ns) -> None:
        self.auth = auth
        self.site = site
        self.limiter = limiter
        self.currencies = currencies  # the display currencies the FX source knows now (it may load later)
        self.per_hour = per_hour
        self.clock = clock

    async def status(self) -> dict[str, Any]:
        """What the sign-in page needs: open or not and, when open, the currencies and password lengths to offer."""
        if await self.site.open_role() is None:
            return {"open": False}
        return {"open": True, "currencies": sorted(self.currencies()), "password_min_length": MIN_LENGTH,
                "password_max_length": MAX_LENGTH}

    async def register(self, username: str, password: str, time_zone: str, currency: str, client_ip: str,
                       client: str = "") -> tuple[dict[str, Any], Principal]:
        """Sign up and sign in: the new user's tokens (as a sign-in answers) and principal."""
        role = await self.site.open_role()
        if role is None:
            raise Forbidden("registration_closed", "self-registration is closed on this server: ask an admin for an account")
        check_username(username)
        check_password_rules(password)
        prefs = checked({"time_zone": time_zone, "currency": currency}, self.currencies())
        wait = await self.limiter.take(f"register:{client_ip}", self.per_hour / 3600.0, float(self.per_hour))
        if wait > 0:
            raise RateLimited("registration_limited", "too many sign-ups from this address: wait before trying again", wait)
        tokens, principal = await self.auth.register(username, password, role, new_row(prefs, int(self.clock())), client_ip,
                                                     client)
        log.info("user registered", user_id=principal.user_id, user=username, role=role, client_ip=client_ip)
        return tokens, principal
