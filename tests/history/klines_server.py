"""A local stand-in for Binance's public candle REST API, answering from the recorded 1h BTCUSDT file.

Serves what `ccxt.binance().fetch_ohlcv` asks for, in Binance's shapes: `exchangeInfo` (spot
BTCUSDT; empty for the futures APIs that `load_markets` also asks) and `/api/v3/klines` with
`startTime`, `endTime` and `limit` (default 500, at most 1000), 12 cells a kline, prices as
decimal strings. It records every klines request so tests can check the paging. Nothing
here imports coinwire; the market description is the ccxt feed tests' (tests/feeds/binance_server.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.feeds.binance_server import EXCHANGE_INFO  # Binance's real-shaped spot BTCUSDT market

_INTERVAL_MS = {"1h": 3_600_000}


class KlinesVenue:
    """The recorded rows and the log of klines requests (`(startTime, endTime, limit)`)."""

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = rows
        self.requests: list[tuple[int | None, int | None, int]] = []
        self.server: ThreadingHTTPServer | None = None

    def klines(self, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("symbol") != "BTCUSDT":
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        step = _INTERVAL_MS.get(query.get("interval", ""))
        if step is None:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        limit = min(int(query.get("limit", 500)), 1000)
        self.requests.append((start, end, limit))
        out = []
        for row in self.rows:
            t = int(row[0])
            if (start is None or t >= start) and (end is None or t <= end):
                out.append([t, *(f"{v:.8f}" for v in row[1:6]), t + step - 1, "0", 0, "0", "0", "0"])
                if len(out) == limit:
                    break
        return 200, out

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v3/exchangeInfo":
            return 200, EXCHANGE_INFO
        if path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
            return 200, {**EXCHANGE_INFO, "symbols": []}
        if path == "/api/v3/klines":
            return self.klines(query)
        return 404, {"code": -1, "msg": f"no route {path}"}

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


def _handler(venue: KlinesVenue) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
            status, body = venue.answer(parsed.path, query)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def serve_klines(source: Path) -> Iterator[KlinesVenue]:
    """A running server on 127.0.0.1 (a free port) for the duration of the block."""
    venue = KlinesVenue(json.loads(source.read_text()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(venue))
    venue.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield venue
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
