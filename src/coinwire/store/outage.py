"""Which store errors mean "the database does not answer", and the one refusal a client gets for them: `store_unavailable`.

Why: a database that goes away (PostgreSQL restarted, connections refused, the database
dropped) surfaces as a driver error wherever the store is read, first in authentication,
which reads the session of every HTTP request. Left alone it answered 500 `internal_error`;
it is an outage the client can only wait out, so it answers 503 with a stable code, while
errors that are bugs stay `internal_error`.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from coinwire.core.errors import NotReady

__all__ = ["store_unreachable", "store_unavailable"]


def store_unreachable(exc: BaseException) -> bool:
    """True for a failure to reach the database: a connection refused or lost, not a statement it refused.

    A PostgreSQL server that is down refuses the connection with the driver's own
    `ConnectionRefusedError`, not wrapped by SQLAlchemy; at the API's edge every other
    component's network errors arrive translated (`venues/ccxt_errors.py`), so a bare
    `ConnectionError` there is the store's.
    """
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, ConnectionError)):
        return True
    # a driver error raised while connecting carries no statement; one that lost its connection says so
    return isinstance(exc, DBAPIError) and (exc.statement is None or exc.connection_invalidated)


def store_unavailable() -> NotReady:
    """The refusal for a request that needs the store while it does not answer (503, JSON-RPC -32004)."""
    return NotReady("store_unavailable", "the store does not answer; try again shortly")
