"""A minimal HTTP answer on the server's port while the process waits for its gateway leases, before the API listens.

Why: the API's server binds its port only once every service started, and a gateway waiting for
another's lease has not started; without this, an operator's `/readyz` (and a Kubernetes probe)
would see a refused connection instead of what the process waits for. It answers `/healthz` 200
and everything else 503 with `/readyz`'s shape (`ready` false, reason `lease_waiting`), one
request per connection, and closes before the API binds the port. Best effort: a port already in
use (another process's) leaves it off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
import structlog

__all__ = ["WaitingProbe"]

log = structlog.get_logger("coinwire.waiting_probe")

_READ_LIMIT = 8192


class WaitingProbe:
    """Answers HTTP on (host, port) from `waiting()` (what the process waits for) until closed."""

    def __init__(self, host: str, port: int, waiting: Callable[[], str | None]) -> None:
        self.host = host
        self.port = port
        self.waiting = waiting
        self._server: asyncio.Server | None = None

    async def start(self) -> bool:
        """Listen; False (logged) when the port cannot be bound."""
        try:
            self._server = await asyncio.start_server(self._answer, self.host, self.port, reuse_address=True)
        except OSError as exc:
            log.warning("cannot answer probes while waiting for the gateway leases", port=self.port, error=str(exc))
            return False
        return True

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            parts = request[:_READ_LIMIT].split(b" ", 2)
            path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
            message = self.waiting() or "waiting for the gateway leases"
            body: dict[str, object]
            if path == b"/healthz":
                status, body = "200 OK", {"status": "ok"}
            else:
                status, body = "503 Service Unavailable", {
                    "ready": False, "status": "degraded", "reasons": [{"code": "lease_waiting", "message": message}],
                    "checks": {"lease": False}, "exchanges": {}}
            data = msgspec.json.encode(body)
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                         "Connection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        """Stop listening (the API binds the port next)."""
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()
