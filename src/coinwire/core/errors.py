"""Expected domain failures, each with a stable code a client can branch on.

    CoinwireError
     ├── InvalidInput      the request itself is malformed (JSON-RPC -32602, HTTP 400/422)
     └── DomainError       well-formed but refused by the domain (JSON-RPC -32000.., HTTP 4xx)
          ├── NotFound     unknown exchange, symbol, order, wallet set (HTTP 404)
          ├── Conflict     duplicate client_oid, order already done (HTTP 409)
          └── InsufficientFunds  (HTTP 400, code insufficient_funds)

Bugs are ordinary exceptions; these are the failures a caller must react to.
"""

from __future__ import annotations

__all__ = [
    "CoinwireError",
    "InvalidInput",
    "DomainError",
    "NotFound",
    "Conflict",
    "InsufficientFunds",
    "NotReady",
]


class CoinwireError(Exception):
    """Base of every expected failure: a stable machine code plus a sentence for a person."""

    code: str = "error"
    http_status: int = 400
    rpc_code: int = -32000

    def __init__(self, code: str, message: str, **data: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, **self.data}


class InvalidInput(CoinwireError):
    http_status = 400
    rpc_code = -32602


class DomainError(CoinwireError):
    http_status = 400
    rpc_code = -32000


class NotFound(DomainError):
    http_status = 404
    rpc_code = -32001


class Conflict(DomainError):
    http_status = 409
    rpc_code = -32002


class InsufficientFunds(DomainError):
    http_status = 400
    rpc_code = -32003

    def __init__(self, message: str, **data: object) -> None:
        super().__init__("insufficient_funds", message, **data)


class NotReady(DomainError):
    """The exchange is not `ready` yet (or degraded): retry later."""

    http_status = 503
    rpc_code = -32004
