"""Open WebSocket connections end when their credentials do: at the token's expiry, at a revocation, or at the re-check.

Every `/rpc` connection is registered here with the function that ends it. It ends with
close code 4001 (`CREDENTIALS_ENDED`) and the reason as close reason:

- `token_expired` at the instant its access token expires (a timer per connection; the
  client can swap in a fresh token first with the `authenticate` method below);
- `session_revoked`, `key_revoked`, `user_disabled` as soon as the auth service ends the
  credential in this process (logout, logout_all, a revoked API key, a new password, a
  disabled user: `AuthService.listeners`);
- whatever `AuthService.recheck` answers, within `SESSION_RECHECK` seconds, for what another
  process ended (`coinwire user disable` works on the store directly). A connection that
  passes takes its role and plan as they are now and counts as checked, so `Api.call`'s own
  re-check (the backstop) does not run on the calls, make_order's among them.

An ended connection leaves the notifier before its close frame is queued, so nothing more
is pushed to it, and the messages it still sends are not run. None of this touches the
order path: the timers and the re-check run beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from coinwire.api.context import CallContext
from coinwire.api.methods import SESSION_RECHECK, Api, method
from coinwire.api.params import Secret
from coinwire.auth.abilities import Principal
from coinwire.auth.endings import TOKEN_EXPIRED, CredentialsEnded
from coinwire.auth.errors import Forbidden, Unauthenticated
from coinwire.auth.service import AuthService
from coinwire.core.errors import InvalidInput

__all__ = ["OpenConnections", "CREDENTIALS_ENDED", "RECHECK_SECONDS", "AuthenticateParams"]

log = structlog.get_logger("coinwire.rpc")

CREDENTIALS_ENDED = 4001  # WebSocket close code: the connection's credential ended (the reason says how)
RECHECK_SECONDS = SESSION_RECHECK * 0.9  # every open connection's credential is confirmed this often: before Api.call would

End = Callable[[str], None]


class _Open:
    __slots__ = ("ctx", "end", "timer")

    def __init__(self, ctx: CallContext, end: End) -> None:
        self.ctx, self.end = ctx, end
        self.timer: asyncio.TimerHandle | None = None


class OpenConnections:
    """The open WebSocket connections by id, each with its expiry timer and the function that ends it."""

    def __init__(self, auth: AuthService, clock: Callable[[], float] = time.time, recheck: float = RECHECK_SECONDS) -> None:
        self.auth = auth
        self.clock = clock
        self.recheck = recheck
        self._open: dict[int, _Open] = {}
        self._task: asyncio.Task[None] | None = None
        auth.listeners.append(self.credentials_ended)

    async def start(self) -> None:
        """Start the re-check of every open connection's credential (what other processes ended)."""
        if self._task is None:
            self._task = asyncio.create_task(self._recheck_loop(), name="credential-recheck")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def __len__(self) -> int:
        return len(self._open)

    def add(self, ctx: CallContext, end: End) -> None:
        """Register an accepted connection; `end(reason)` closes it (and must remove it from the notifier first)."""
        entry = self._open[ctx.connection_id] = _Open(ctx, end)
        self._arm(entry)

    def remove(self, ctx: CallContext) -> None:
        entry = self._open.pop(ctx.connection_id, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()

    def renew(self, ctx: CallContext, principal: Principal) -> None:
        """The connection goes on with `principal` (a fresh credential of the same user): its expiry moves with it."""
        ctx.principal = principal
        ctx.checked_at = time.monotonic()
        entry = self._open.get(ctx.connection_id)
        if entry is not None:
            if entry.timer is not None:
                entry.timer.cancel()
            self._arm(entry)

    def _arm(self, entry: _Open) -> None:
        """A timer at the instant the connection's access token expires (API keys do not expire)."""
        principal = entry.ctx.principal
        entry.timer = None
        if principal is None or principal.expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, principal.expires_at - self.clock())
        entry.timer = loop.call_later(delay, self._end, entry.ctx.connection_id, TOKEN_EXPIRED)

    def _end(self, connection_id: int, reason: str) -> None:
        entry = self._open.pop(connection_id, None)
        if entry is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
        principal = entry.ctx.principal
        log.info("websocket ended: its credential ended", reason=reason, user_id=principal.user_id if principal else None)
        entry.end(reason)

    def credentials_ended(self, ending: CredentialsEnded) -> None:
        """From the auth service: end every connection authenticated with what just ended."""
        for connection_id in [cid for cid, e in self._open.items() if e.ctx.principal is not None and ending.ends(e.ctx.principal)]:
            self._end(connection_id, ending.reason)

    async def recheck_all(self) -> None:
        """Confirm each open connection's session or key once (one read per credential); end those that ended."""
        groups: dict[tuple[str | None, str | None], list[int]] = {}
        for cid, opened in self._open.items():
            principal = opened.ctx.principal
            if principal is not None:
                groups.setdefault((principal.session_id, principal.key_id), []).append(cid)
        for ids in groups.values():
            entry = self._open.get(ids[0])
            if entry is None or entry.ctx.principal is None:
                continue
            try:
                current = await self.auth.recheck(entry.ctx.principal)
            except Unauthenticated as exc:
                for cid in ids:
                    self._end(cid, exc.code)
                continue
            except Exception:  # a store hiccup: the next round tries again
                log.warning("credential re-check failed", exc_info=True)
                continue
            checked = time.monotonic()
            for cid in ids:
                live = self._open.get(cid)
                if live is None or live.ctx.principal is None:
                    continue
                fresh = msgspec.structs.replace(current, expires_at=live.ctx.principal.expires_at)
                if fresh != live.ctx.principal:  # a new role or plan; the same object keeps its allowed methods
                    live.ctx.principal = fresh
                live.ctx.checked_at = checked

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.recheck)
            if self._open:
                await self.recheck_all()


class AuthenticateParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    access_token: Secret  # at most MAX_SECRET characters, like every credential the API reads


@method("authenticate", AuthenticateParams)
async def authenticate(api: Api, p: AuthenticateParams, ctx: CallContext) -> Any:
    """Swaps this connection's credential for a fresh access token of the same user (before the old one expires).

    Answers `{user_id, expires_at}`; the connection then ends when the new token expires.
    """
    if ctx.send is None or api.connections is None or api.auth is None:
        raise InvalidInput("not_a_stream", "authenticate renews a WebSocket connection's credential (/rpc)")
    if p.access_token.startswith("cwk_"):
        raise InvalidInput("not_an_access_token", "authenticate takes an access token (an API key does not expire)")
    principal = await api.auth.authenticate(p.access_token)
    current = ctx.principal
    if current is None or principal.user_id != current.user_id:
        raise Forbidden("other_user", "a connection keeps its user: open a new connection to act as another")
    api.connections.renew(ctx, principal)
    return {"user_id": principal.user_id, "expires_at": principal.expires_at}
