"""NUL characters and numbers a column or a Decimal cannot hold are refused at the edge, with a code, never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.api.test_ownership_restart import _users
from tests.server import ServerProcess

NESTED = b"[" * 200_000  # deeper than the decoder's recursion limit
ORDER = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001", "limit": "1000"}


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_nul_characters_are_refused_at_the_edge_and_the_audit_log_keeps_writing(
        tmp_path: Path, store_env: dict[str, str]) -> None:
    """After every NUL request (anonymous ones too) a later audited action still appears in the audit log."""
    server = ServerProcess(tmp_path, env=store_env)
    server.start()
    try:
        tokens = _users(server)
        tom = {"Authorization": f"Bearer {tokens['tom']['access_token']}"}
        nul = "\u0000"
        with httpx.Client(base_url=server.http) as http:
            assert _error(http.put("/runs/a%00b/stop")) == (400, "invalid_characters")  # anonymous: recorded all the same
            assert _error(http.post("/api/v1/auth/login", json={"username": f"ad{nul}min", "password": "whatever-1"})) == (
                400, "invalid_characters")
            assert _error(http.post("/api/v1/auth/refresh", json={"refresh_token": f"a{nul}.b"})) == (400, "invalid_characters")
            assert _error(http.delete("/api/v1/api_keys/a%00b", headers=tom)) == (400, "invalid_characters")
            assert _error(http.post("/api/v1/api_keys", json={"name": f"k{nul}"}, headers=tom)) == (400, "invalid_characters")
            assert _error(http.post("/xwrap/v1/orders/new", json={**ORDER, "client_oid": f"x{nul}y"}, headers=tom)) == (
                400, "invalid_characters")
            assert _error(http.get("/xwrap/v1/status", params={"x": nul}, headers=tom)) == (400, "invalid_characters")
        with server.client() as admin:
            assert _error(admin.get("/api/v1/audit", params={"user": f"a{nul}b"})) == (400, "invalid_characters")
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']['access_token']}") as rpc:
            with pytest.raises(RpcError) as refused:
                await rpc.call("make_order", client_oid=f"x{nul}y", **{**ORDER, "size": "-1"})
            assert (refused.value.code, refused.value.data["code"]) == (-32602, "invalid_characters")
            assert (await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]  # the connection stays usable
        made = httpx.post(server.http + "/xwrap/v1/wallets/new", headers=tom,
                          json={"wallets": [{"exchange": "demo", "currency": "USDT", "allocation": "10"}]})
        assert made.status_code == 200, made.text
        with server.client() as admin:
            rows = admin.get("/api/v1/audit").json()
        assert ("tom", "POST /xwrap/v1/wallets/new", "200") in [(r["username"], r["action"], r["outcome"]) for r in rows]
        refused_path = [(r["action"], r["target"]) for r in rows if r["action"].startswith("PUT /runs/")]
        assert refused_path == [("PUT /runs/a\ufffdb/stop", "/runs/a\ufffdb/stop")]  # refused before its route is known
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/api/v1/convert", {"amount": "1e999999", "from": "BTC", "to": "USDT"}, (400, "number_out_of_range")),
        ("/api/v1/convert", {"amount": "1e-999999", "from": "BTC", "to": "USDT"}, (400, "number_out_of_range")),
        ("/api/v1/convert", {"amount": "\u0661", "from": "BTC", "to": "USDT"}, (400, "invalid_amount")),
        ("/api/v1/convert", {"amount": "1_0", "from": "BTC", "to": "USDT"}, (400, "invalid_amount")),
        ("/api/v1/audit", {"before": "99999999999999999999999"}, (400, "invalid_params")),
        ("/api/v1/audit", {"limit": "\u0661\u0660"}, (400, "invalid_limit")),
        ("/api/v1/audit", {"limit": "1_0"}, (400, "invalid_limit")),
        ("/api/v1/ohlcv/demo/BTC_USDT", {"start": "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"}, (400, "invalid_time")),
        ("/api/v1/ohlcv/demo/BTC_USDT", {"end": "99999999999999999999999"}, (400, "invalid_time")),
        ("/api/v1/ohlcv/demo/BTC_USDT", {"start": "\u00b2"}, (400, "invalid_time")),
        ("/xwrap/v1/orders/recent", {"limit": "99999999999999999999"}, (400, "invalid_params")),
    ],
)
def test_query_numbers_are_ascii_and_bounded(server: ServerProcess, path: str, params: dict[str, str],
                                              expected: tuple[int, str]) -> None:
    with server.client() as http:
        assert _error(http.get(path, params=params)) == expected


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/users", "/api/v1/api_keys",
                                  "/api/v1/frontier"])
def test_nested_bodies_are_too_deep_on_routes_with_a_typed_shape(server: ServerProcess, path: str) -> None:
    with server.client() as http:
        assert _error(http.post(path, content=NESTED, headers={"Content-Type": "application/json"})) == (400, "too_deep")
