"""Authentication and authorisation failures, each with a stable code (401, 403, 429)."""

from __future__ import annotations

from coinwire.core.errors import DomainError

__all__ = ["Unauthenticated", "Forbidden", "RateLimited"]


class Unauthenticated(DomainError):
    """No credentials, or credentials that are forged, expired, revoked or of the wrong kind."""

    http_status = 401
    rpc_code = -32010


class Forbidden(DomainError):
    """Known caller, action not allowed by its role, plan or key scope."""

    http_status = 403
    rpc_code = -32011


class RateLimited(DomainError):
    """Too many requests (or failed logins): retry after `retry_after` seconds."""

    http_status = 429
    rpc_code = -32012

    def __init__(self, code: str, message: str, retry_after: float) -> None:
        super().__init__(code, message, retry_after=max(1, int(retry_after + 0.999)))

    @property
    def retry_after(self) -> int:
        return int(self.data["retry_after"])  # type: ignore[call-overload, no-any-return]
