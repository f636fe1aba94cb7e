"""Credentials that ended before their time (logout, a revoked key, a disabled user): the event the auth service sends.

The auth service is the one that revokes, so it is the one that says so: each ending is a
`CredentialsEnded` given to the service's listeners (in one process, the open WebSocket
connections' registry, `coinwire.api.connections`). The event names what ended, never a
credential itself, so it can later travel between processes as it is.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import msgspec

from coinwire.auth.abilities import Principal

__all__ = ["CredentialsEnded", "SESSION_REVOKED", "KEY_REVOKED", "USER_DISABLED", "TOKEN_EXPIRED"]

# why a credential ended: the stable codes a refused call answers, and an ended WebSocket's close reason
TOKEN_EXPIRED = "token_expired"
SESSION_REVOKED = "session_revoked"
KEY_REVOKED = "key_revoked"
USER_DISABLED = "user_disabled"


class CredentialsEnded(msgspec.Struct, frozen=True, kw_only=True):
    """One session, one API key, a user's sessions, or every credential of a user, ended for `reason`."""

    reason: str
    session_id: str | None = None
    key_id: str | None = None
    user_id: int | None = None
    keys_too: bool = False  # with `user_id`: the user's API keys end as well (a disabled user), not only sessions

    def ends(self, principal: Principal) -> bool:
        """Whether a caller authenticated as `principal` lost its credential by this ending."""
        if self.session_id is not None:
            return principal.session_id == self.session_id
        if self.key_id is not None:
            return principal.key_id == self.key_id
        if self.user_id is None or principal.user_id != self.user_id:
            return False
        return principal.session_id is not None or self.keys_too
