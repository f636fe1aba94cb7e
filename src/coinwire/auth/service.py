"""Sign-in, sessions with rotating refresh tokens, API keys and users: who a credential belongs to.

A login creates a session and answers a short-lived access token (JWT) plus a refresh token
`<session id>.<secret>`; only the SHA-256 of the secret is stored. Each refresh replaces the
secret; presenting a replaced one again means the token was copied, so the whole session
is revoked. API keys `cwk_<id>_<secret>` are stored hashed and shown once. Repeated failed
logins pause that name at that address, and an address's many failures pause it briefly
(`auth.login_throttle`); the log never holds what a failed login typed. Every credential the
service ends early (logout, a revoked key, a new password, a disabled user) is told to its
`listeners` as a `CredentialsEnded`, so connections opened with it can end at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import structlog

from coinwire.auth.abilities import PLANS, ROLES, SCOPES, SIGNAL_SCOPE_PREFIX, Principal, denial, scope_known
from coinwire.auth.endings import KEY_REVOKED, SESSION_REVOKED, USER_DISABLED, CredentialsEnded
from coinwire.auth.errors import Forbidden, RateLimited, Unauthenticated
from coinwire.auth.login_throttle import LoginThrottle, name_digest
from coinwire.auth.passwords import DUMMY_HASH, check_password_rules, hash_password, needs_rehash, verify_password
from coinwire.auth.repository import AuthRepository
from coinwire.auth.tokens import TokenSigner
from coinwire.core.errors import InvalidInput, NotFound, NotReady

__all__ = ["AuthService", "LoginThrottle", "check_username"]

log = structlog.get_logger("coinwire.auth")

RECHECK_PATIENCE = 3.0  # seconds a long-lived connection's re-check waits for the store before `store_unavailable`
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
_KEY = re.compile(r"^cwk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_username(username: object) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidInput("invalid_username", "a username is 2-64 characters: lower-case letters, digits, '_', '.', '-'")
    return username


class AuthService:
    """Users, sessions, tokens and API keys over an AuthRepository."""

    def __init__(self, repo: AuthRepository, signer: TokenSigner, clock: Callable[[], float] = time.time,
                 throttle: LoginThrottle | None = None) -> None:
        self.repo = repo
        self.signer = signer
        self.clock = clock
        self.throttle = throttle or LoginThrottle()
        self._verify_seconds = 0.05  # how long a password check takes (a moving average): a refusal without one waits as long
        # told of every credential ended early; called inline, after the store has it (see `coinwire.api.connections`)
        self.listeners: list[Callable[[CredentialsEnded], None]] = []

    def _now(self) -> int:
        return int(self.clock())

    def _ended(self, ending: CredentialsEnded) -> None:
        for listener in self.listeners:
            try:
                listener(ending)
            except Exception:  # a listener's bug must not undo the revocation
                log.exception("credential ending not delivered", reason=ending.reason)

    # --- users -------------------------------------------------------------------------------
    async def bootstrap(self, admin_password: str | None) -> str | None:
        """On an empty store, create `admin`; answers the generated one-time password (None if given or not needed).

        Under the store's start-up lock (Store.exclusive): of several processes starting together on
        one empty database, the first makes the admin and the others find it made.
        """
        async with self.repo.store.exclusive():
            if await self.repo.count_users():
                return None
            generated = None if admin_password else secrets.token_urlsafe(15)
            await self.create_user("admin", admin_password or generated or "", "admin", "pro")
            return generated

    async def create_user(self, username: str, password: str, role: str = "trader", plan: str = "free",
                          prefs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A new user; `prefs`, their first preferences row (`auth.preferences.new_row`), is written with it."""
        check_username(username)
        check_password_rules(password)
        if role not in ROLES:
            raise InvalidInput("invalid_role", f"role must be one of {', '.join(ROLES)}")
        if plan not in PLANS:
            raise InvalidInput("invalid_plan", f"plan must be one of {', '.join(PLANS)}")
        user_id = await self.repo.add_user(username, hash_password(password), role, plan, self._now(), prefs)
        log.info("user created", user=username, role=role, plan=plan)
        return {"id": user_id, "username": username, "role": role, "plan": plan, "disabled": False}

    async def register(self, username: str, password: str, role: str, prefs: Mapping[str, Any], client_ip: str,
                       client: str = "") -> tuple[dict[str, Any], Principal]:
        """A user who signed themselves up (`auth.registration` decided they may), signed in: their tokens and principal.

        The user and their preferences are one transaction; the session follows, as at a sign-in.
        """
        user = await self.create_user(username, password, role, "free", prefs)
        return await self._open_session(user["id"], username, role, "free", client_ip, client)

    async def list_users(self) -> list[dict[str, Any]]:
        return [
            {"id": u["id"], "username": u["username"], "role": u["role"], "plan": u["plan"], "disabled": bool(u["disabled"]),
             "created_at": u["created_at"]}
            for u in await self.repo.list_users()
        ]

    async def require_user(self, username: str) -> dict[str, Any]:
        """The user named `username`, or `unknown_user` (the CLI asks this too)."""
        user = await self.repo.user_by_name(username)
        if user is None:
            raise NotFound("unknown_user", f"no user named {username!r}")
        return user

    async def set_password(self, username: str, password: str) -> None:
        """A new password ends every session of the user."""
        user = await self.require_user(username)
        await self.repo.update_user(user["id"], password_hash=hash_password(check_password_rules(password)))
        await self.repo.revoke_sessions(self._now(), "password_changed", user_id=user["id"])
        self._ended(CredentialsEnded(reason=SESSION_REVOKED, user_id=user["id"]))

    async def set_disabled(self, username: str, disabled: bool = True) -> None:
        user = await self.require_user(username)
        await self.repo.update_user(user["id"], disabled=disabled)
        if disabled:
            await self.repo.revoke_sessions(self._now(), "user_disabled", user_id=user["id"])
            self._ended(CredentialsEnded(reason=USER_DISABLED, user_id=user["id"], keys_too=True))

    # --- sign-in and sessions ----------------------------------------------------------------
    async def login(self, username: str, password: str, client_ip: str, client: str = "") -> dict[str, Any]:
        name = name_digest(username)
        now = self.clock()
        over_ceiling = self.throttle.check(name, client_ip, now)  # True: a name's one try past the address's ceiling
        user = await self.repo.user_by_name(username) if isinstance(username, str) else None
        if over_ceiling and user is None:
            # a made-up name while the address sprays: refused without the hash's CPU, after as long
            await asyncio.sleep(self._verify_seconds)
            ok = False
        else:
            started = time.perf_counter()
            ok = verify_password(user["password_hash"] if user else DUMMY_HASH, password) and user is not None
            self._verify_seconds = 0.8 * self._verify_seconds + 0.2 * (time.perf_counter() - started)
        if not ok or user is None or user["disabled"]:
            self.throttle.failed(name, client_ip, now)
            # never what was typed: the user-name field may hold a password; an existing user is named by id
            log.warning("sign-in refused", user_id=user["id"] if user else None, client_ip=client_ip)
            if over_ceiling:
                raise RateLimited("login_locked", "too many failed sign-ins: wait before trying again",
                                  self.throttle.address_wait(client_ip, now))
            raise Unauthenticated("invalid_credentials", "wrong user name or password")
        self.throttle.succeeded(name, client_ip)
        if needs_rehash(user["password_hash"]):
            await self.repo.update_user(user["id"], password_hash=hash_password(password))
        tokens, _ = await self._open_session(user["id"], user["username"], user["role"], user["plan"], client_ip, client)
        return tokens

    async def _open_session(self, user_id: int, username: str, role: str, plan: str, client_ip: str,
                            client: str) -> tuple[dict[str, Any], Principal]:
        session_id = secrets.token_hex(16)
        secret = secrets.token_urlsafe(32)
        await self.repo.add_session(session_id, user_id, _sha(secret), self._now(), client[:200])
        log.info("signed in", user=username, session=session_id, client_ip=client_ip)
        principal = Principal(user_id, username, role, plan, session_id=session_id)
        return self._tokens(principal, f"{session_id}.{secret}"), principal

    def _tokens(self, principal: Principal, refresh: str) -> dict[str, Any]:
        return {
            "access_token": self.signer.issue(principal, self._now()),
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": self.signer.ttl,
        }

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        session_id, _, secret = refresh_token.partition(".") if isinstance(refresh_token, str) else ("", "", "")
        session = await self.repo.session(session_id) if session_id and secret else None
        if session is None or session["revoked_at"] is not None:
            raise Unauthenticated("invalid_refresh_token", "the refresh token is not valid: sign in again")
        if not hmac.compare_digest(session["refresh_hash"], _sha(secret)):
            await self.repo.revoke_sessions(self._now(), "refresh_reused", session_id=session_id)
            self._ended(CredentialsEnded(reason=SESSION_REVOKED, session_id=session_id))
            log.warning("refresh token reused: session revoked", session=session_id)
            raise Unauthenticated("refresh_token_reused", "this refresh token was already used: the session is revoked")
        new_secret = secrets.token_urlsafe(32)
        if not await self.repo.rotate_refresh(session_id, session["refresh_hash"], _sha(new_secret), self._now()):
            await self.repo.revoke_sessions(self._now(), "refresh_reused", session_id=session_id)
            self._ended(CredentialsEnded(reason=SESSION_REVOKED, session_id=session_id))
            raise Unauthenticated("refresh_token_reused", "this refresh token was already used: the session is revoked")
        principal = await self._session_principal(session_id)
        return self._tokens(principal, f"{session_id}.{new_secret}")

    async def _session_principal(self, session_id: str) -> Principal:
        row = await self.repo.session_and_user(session_id)
        if row is not None and row["disabled"]:  # first: disabling a user also revokes their sessions
            raise Unauthenticated(USER_DISABLED, "the user is disabled")
        if row is None or row["revoked_at"] is not None:
            raise Unauthenticated(SESSION_REVOKED, "the session has ended: sign in again")
        return Principal(row["id"], row["username"], row["role"], row["plan"], session_id=session_id)

    async def logout(self, principal: Principal) -> dict[str, Any]:
        if principal.session_id is None:
            raise InvalidInput("not_a_session", "an API key has no session to end")
        await self.repo.revoke_sessions(self._now(), "logout", session_id=principal.session_id)
        self._ended(CredentialsEnded(reason=SESSION_REVOKED, session_id=principal.session_id))
        return {"revoked": 1}

    async def logout_all(self, principal: Principal) -> dict[str, Any]:
        revoked = await self.repo.revoke_sessions(self._now(), "logout_all", user_id=principal.user_id)
        self._ended(CredentialsEnded(reason=SESSION_REVOKED, user_id=principal.user_id))
        return {"revoked": revoked}

    async def sessions(self, principal: Principal) -> list[dict[str, Any]]:
        rows = await self.repo.user_sessions(principal.user_id)
        return [{**r, "current": r["id"] == principal.session_id} for r in rows]

    # --- credentials on requests -------------------------------------------------------------
    async def authenticate(self, credential: str) -> Principal:
        """The principal of a bearer access token or an API key; anything else is 401 with a stable code."""
        if credential.startswith("cwk_"):
            return await self._api_key_principal(credential)
        principal = self.signer.verify(credential, self._now())
        assert principal.session_id is not None  # verify() requires the claim
        current = await self._session_principal(principal.session_id)
        if current.user_id != principal.user_id:
            raise Unauthenticated("invalid_token", "the token does not match its session")
        return msgspec.structs.replace(current, expires_at=principal.expires_at)  # role and plan as they are now

    async def recheck(self, principal: Principal) -> Principal:
        """The principal as it is now (a long-lived WebSocket): raises when its session or key was revoked.

        Its token's expiry is not checked here: the connection ends at that instant by itself. A store
        that does not answer within RECHECK_PATIENCE (a partition holds its bytes) is `store_unavailable`,
        retryable: a call due for its re-check is refused, never left hanging, and the connections'
        periodic re-check goes on to the next round.
        """
        try:
            return await asyncio.wait_for(self._recheck(principal), RECHECK_PATIENCE)
        except TimeoutError:
            raise NotReady("store_unavailable", "the session could not be confirmed: the store does not answer; "
                                                "retry shortly") from None

    async def _recheck(self, principal: Principal) -> Principal:
        if principal.session_id is not None:
            current = await self._session_principal(principal.session_id)
            return msgspec.structs.replace(current, expires_at=principal.expires_at)
        if principal.key_id is not None:
            row = await self.repo.api_key_and_user(principal.key_id)
            if row is None or row["revoked_at"] is not None:
                raise Unauthenticated(KEY_REVOKED, "the API key was revoked")
            if row["disabled"]:
                raise Unauthenticated(USER_DISABLED, "the user is disabled")
            return Principal(row["id"], row["username"], row["role"], row["plan"], scopes=tuple(row["scopes"].split(",")),
                             key_id=principal.key_id)
        return principal

    # --- API keys ----------------------------------------------------------------------------
    async def create_api_key(self, principal: Principal, name: str, scopes: list[str]) -> dict[str, Any]:
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise InvalidInput("invalid_name", "an API key name is 1 to 64 characters")
        if not isinstance(scopes, list) or not scopes or not all(scope_known(s) for s in scopes):
            raise InvalidInput("invalid_scopes", f"scopes: one or more of {', '.join(SCOPES)}, or {SIGNAL_SCOPE_PREFIX}<provider>")
        if "admin" in scopes and principal.role != "admin":
            raise Forbidden("forbidden", "only admins can create admin-scoped keys")
        if len(",".join(sorted(set(scopes)))) > 64:
            raise InvalidInput("invalid_scopes", "a key's scopes take at most 64 characters together: make two keys")
        if any(s.startswith(SIGNAL_SCOPE_PREFIX) for s in scopes) and denial(principal, "manage", "run") is not None:
            raise Forbidden("forbidden", "a signals key posts to its user's runs: only users who may run strategies create one")
        if principal.scopes is not None:
            raise Forbidden("forbidden", "API keys are created by a signed-in user, not by another key")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        key = f"cwk_{key_id}_{secret}"
        await self.repo.add_api_key(key_id, principal.user_id, name, ",".join(sorted(set(scopes))), _sha(key), self._now())
        return {"id": key_id, "name": name, "scopes": sorted(set(scopes)), "key": key}

    async def _api_key_principal(self, key: str) -> Principal:
        match = _KEY.match(key)
        row = await self.repo.api_key_and_user(match.group(1)) if match else None
        if row is None or not hmac.compare_digest(row["key_hash"], _sha(key)) or row["revoked_at"] is not None:
            raise Unauthenticated("invalid_api_key", "the API key is not valid")
        if row["disabled"]:
            raise Unauthenticated("user_disabled", "the user is disabled")
        return Principal(row["id"], row["username"], row["role"], row["plan"], scopes=tuple(row["scopes"].split(",")),
                         key_id=match.group(1) if match else None)

    async def api_keys(self, principal: Principal) -> list[dict[str, Any]]:
        return [{**r, "scopes": r["scopes"].split(",")} for r in await self.repo.user_api_keys(principal.user_id)]

    async def revoke_api_key(self, principal: Principal, key_id: str) -> dict[str, Any]:
        if not await self.repo.revoke_api_key(key_id, principal.user_id, self._now()):
            raise NotFound("unknown_api_key", "no such API key")
        self._ended(CredentialsEnded(reason=KEY_REVOKED, key_id=key_id))
        return {"id": key_id, "revoked": True}
