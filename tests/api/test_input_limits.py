"""Bad input gets a clear error at the edge: slow and deeply nested bodies, non-ASCII digits, exact JSON numbers, strict integers,
maximum lengths."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets

import coinwire.api.app  # noqa: F401  (mounts every route and registers every method, ohlcv_routes' too)
from coinwire.api import params as P
from coinwire.api.client import RpcClient, RpcError
from coinwire.api.methods import _REGISTRY, METHOD_NAMES
from tests.api.signed_in import error_code
from tests.conftest import POSTGRES_URL, require_service
from tests.server import ServerProcess

EX = "demo"
ENV = {"COINWIRE_BODY_TIMEOUT": "1", "COINWIRE_RATE_LIMIT_IP": "1000/5000", "COINWIRE_RATE_LIMIT_USER": "1000/5000"}
NESTED = b"[" * 200_000  # 200 KB of nesting: deeper than any decoder's recursion limit
LONG = "r" * 100  # beyond the 64 characters of an identifier (the store's VARCHAR(64))
HUGE = "r" * 500_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("input")), env=ENV)
    proc.start()
    yield proc
    proc.stop()


def _reset_postgres() -> None:
    """A fresh public schema in the test database: this module's server is its only user."""
    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    asyncio.run(reset())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def any_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on SQLite (the default) or on PostgreSQL."""
    env = dict(ENV)
    if request.param == "postgresql":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        _reset_postgres()
        env["COINWIRE_STORE_URL"] = POSTGRES_URL
    proc = ServerProcess(Path(tmp_path_factory.mktemp(f"input-{request.param}")), env=env)
    proc.start()
    yield proc
    proc.stop()


def _error(r: httpx.Response) -> str:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    return error_code(r)


async def _frame(server: ServerProcess, text: str | bytes) -> Any:
    """One raw JSON-RPC frame and its answer (what a client library would not let us send)."""
    async with websockets.connect(server.ws, max_size=None) as ws:
        await ws.send(text if isinstance(text, str) else text.decode())
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def _far_limit(rpc: RpcClient) -> str:
    bid = float((await rpc.call("get_pricing", exchange=EX))["BTC_USDT"]["bid"])
    return f"{bid * 0.5:.2f}"


async def _refused(rpc: RpcClient, method: str, **params: Any) -> str:
    try:
        result = await rpc.call(method, **params)
    except RpcError as exc:
        assert exc.code != -32603, exc
        return str(exc.reason)
    raise AssertionError(f"{method} {str(params)[:200]} was accepted: {str(result)[:200]}")


# --- slow bodies (finding 7) --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/xwrap/v1/orders/new", "/api/v1/auth/login"])
def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed(server: ServerProcess, path: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=8) as sock:
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        start = time.monotonic()
        sock.sendall(head.encode() + b'{"exchang')  # 10 of the 100 bytes declared, then nothing
        answer = b""
        while True:  # read until the server closes: it must, and soon
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"body_timeout"' in answer and 0.9 <= waited < 5, waited


# --- nested and unreadable JSON (finding 12) ----------------------------------------------------------------------
def _state_changing_routes(server: ServerProcess) -> list[tuple[str, str]]:
    spec = httpx.get(server.http + "/openapi.json").json()
    routes = [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops
              if m in ("post", "put", "patch", "delete") and path not in SIGN_OUT]
    assert len(routes) >= 12, routes
    return routes


SIGN_OUT = ("/api/v1/auth/logout", "/api/v1/auth/logout_all")  # take no body, and would end the walk's session


def _fill(path: str) -> str:
    """Path parameters filled with plausible values: a route must refuse the body, whatever it names."""
    values = {"set_id": "1", "name": "hodl", "run_id": "r1", "component_id": "c1", "key_id": "k1", "exchange": EX,
              "account_id": "1", "user_id": "1", "schedule_id": "1", "letter_id": "1", "rule_set_id": "1"}
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_deeply_nested_bodies_are_refused_with_a_code_on_every_state_changing_route(server: ServerProcess) -> None:
    answered: dict[str, int] = {}
    with server.client() as http:
        for method, path in _state_changing_routes(server):
            r = http.request(method, _fill(path), content=NESTED, headers={"Content-Type": "application/json"})
            code = _error(r)
            answered[f"{method} {path}"] = r.status_code
            if path.startswith("/api/v1/webhooks/") or path == "/api/v1/signals/{provider}":
                # a webhook's and a signal's own body cap (16 KiB) comes before the signature or key and the JSON
                assert (r.status_code, code) == (413, "payload_too_large"), (method, path, r.text[:200])
            elif path.startswith("/xwrap/"):  # read as any JSON, then as parameters
                assert (r.status_code, code) == (400, "too_deep"), (method, path, r.text[:200])
            elif method == "POST":  # read straight into a shape: an array is refused at its first `[`
                assert r.status_code in (400, 422) and code in ("too_deep", "invalid_params"), (method, path, r.text[:200])
    assert all(400 <= status < 500 for status in answered.values()), answered


async def test_a_deeply_nested_frame_is_a_json_rpc_error_and_the_connection_stays_usable(server: ServerProcess) -> None:
    async with websockets.connect(server.ws, max_size=None) as ws:
        await ws.send(NESTED.decode())
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert answer["error"]["data"]["code"] == "too_deep" and answer["id"] is None
        nested_params = '{"jsonrpc": "2.0", "id": 7, "method": "make_order", "params": {"size": ' + "[" * 100_000 + "}}"
        await ws.send(nested_params)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["error"]["data"]["code"] == "too_deep"
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "get_status", "params": {}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["result"]["status"] == "online"


# --- numbers: ASCII digits only, JSON numbers exact, integers are integers ----------------------------------------
UNICODE_DIGITS = ["٦٠٠٠٠", "０.０１", "१०", "1_000", " 10", "10\u00a0"]


async def test_numbers_in_other_scripts_digits_are_refused(server: ServerProcess) -> None:
    async with RpcClient(server.ws) as rpc:
        far = await _far_limit(rpc)
        for text in UNICODE_DIGITS:
            order = {"exchange": EX, "pair": "BTC_USDT", "side": "buy", "type": "limit"}
            assert await _refused(rpc, "make_order", **order, size=text, limit=far) == "invalid_number", text
            assert await _refused(rpc, "make_order", **order, size="0.001", limit=text) == "invalid_number", text
            wallets = [{"exchange": EX, "currency": "USDT", "allocation": text}]
            assert await _refused(rpc, "create_wallet_set", wallets=wallets) == "invalid_number", text
            assert await _refused(rpc, "add_virtual_wallet_tx", exchange=EX, base="SOL", movement=text) == "invalid_number", text
            assert await _refused(rpc, "convert_to_usd", currency="USDT", value=text) == "invalid_number", text
    with server.client() as http:
        for text in ("١٠", "1_0"):  # integers in a query string: ASCII digits too
            assert _error(http.get("/xwrap/v1/orders/recent", params={"limit": text})) == "invalid_params"
        assert http.get("/xwrap/v1/orders/recent", params={"limit": "5", "include_open": "true"}).status_code == 200


async def test_a_json_number_finer_than_the_grid_is_too_precise_like_the_same_string(server: ServerProcess) -> None:
    async with RpcClient(server.ws) as rpc:
        far = await _far_limit(rpc)
    precise = far + "00000000000000001"  # a JSON float would round this to `far`
    raw = '{"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": 0.001, "limit": %s}'
    with server.client() as http:
        as_number = http.post("/xwrap/v1/orders/new", content=raw % precise, headers={"Content-Type": "application/json"})
        as_string = http.post("/xwrap/v1/orders/new", content=raw % f'"{precise}"', headers={"Content-Type": "application/json"})
        tiny_size = http.post("/xwrap/v1/orders/new", content=(raw % far).replace("0.001", "0.00100000000000000001"),
                              headers={"Content-Type": "application/json"})
    assert _error(as_string) == "too_precise"
    assert _error(as_number) == "too_precise", as_number.text
    assert _error(tiny_size) == "too_precise", tiny_size.text
    frame = '{"jsonrpc": "2.0", "id": 1, "method": "make_order", "params": %s}' % (raw % precise)
    answer = await _frame(server, frame)
    assert answer["error"]["data"]["code"] == "too_precise", answer
    allocation = '{"jsonrpc": "2.0", "id": 2, "method": "create_wallet_set", "params": {"wallets": [{"exchange": "demo", ' \
                 '"currency": "USDT", "allocation": 1.0000000000000000000001}]}}'
    assert (await _frame(server, allocation))["error"]["data"]["code"] == "too_precise"
    exact = '{"jsonrpc": "2.0", "id": 3, "method": "convert_to_usd", "params": {"currency": "USDT", "value": 12.5}}'
    assert (await _frame(server, exact))["result"] == "12.5"  # exact JSON numbers are still numbers


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("cancel_order", {"order_id": "5"}),
        ("cancel_order", {"order_id": 5.0}),
        ("get_book", {"exchange": EX, "pair": "BTC_USDT", "depth": "10"}),
        ("list_recent_orders", {"limit": "5"}),
        ("get_wallet_set", {"set_id": "1"}),
        ("deactivate_wallet_set", {"set_id": "1"}),
        ("get_wallet_set_history", {"set_id": 1.0}),
        ("make_order", {"exchange": EX, "pair": "BTC_USDT", "side": "buy", "size": "0.001", "limit": "1", "cancel_after": "60"}),
        ("list_recent_orders", {"include_open": "true"}),
    ],
)
async def test_integer_and_boolean_fields_refuse_strings_and_floats(server: ServerProcess, method: str, params: dict[str, Any]) -> None:
    async with RpcClient(server.ws) as rpc:
        assert await _refused(rpc, method, **params) == "invalid_params"


def test_xwrap_bodies_are_strict_about_integers(server: ServerProcess) -> None:
    with server.client() as http:
        assert _error(http.post("/xwrap/v1/orders/cancel", json={"order_id": "5"})) == "invalid_params"
        assert _error(http.post("/xwrap/v1/wallets/deactivate", json={"set_id": "1"})) == "invalid_params"
        assert http.get("/xwrap/v1/demo/book/BTC_USDT", params={"depth": "3"}).status_code == 200  # query text is read as an integer


# --- maximum lengths (finding 8, the edge part) ---------------------------------------------------------------------
async def test_over_long_run_ids_are_refused_at_the_edge_and_never_stored(any_store: ServerProcess) -> None:
    async with RpcClient(any_store.ws) as rpc:
        far = await _far_limit(rpc)
        for run_id in (LONG, HUGE):
            order = {"exchange": EX, "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001", "limit": far}
            try:
                await rpc.call("make_order", **order, run_id=run_id, client_oid=f"long-{len(run_id)}")
            except RpcError as exc:
                assert (exc.code, exc.reason) == (-32602, "too_long"), exc
                assert exc.data["field"] == "run_id" and exc.data["max_length"] == P.MAX_ID
                assert "run_id" in exc.message and "64" in exc.message
            else:
                raise AssertionError(f"a {len(run_id)}-character run_id was accepted")
            wallets = [{"exchange": EX, "currency": "USDT", "allocation": "10"}]
            assert await _refused(rpc, "create_wallet_set", wallets=wallets, run_id=run_id) == "too_long"
        assert await _refused(rpc, "make_order", **order, client_oid=LONG) == "too_long"
        made = await rpc.call("make_order", **order, run_id="r" * 64, client_oid="longest-allowed")  # the limit itself is fine
        assert made["run_id"] == "r" * 64
        assert await rpc.call("cancel_order", client_oid="longest-allowed")
        recent = await rpc.call("list_recent_orders", include_open=True, limit=1000)
        assert recent and not [o for o in recent if len(o.get("run_id") or "") > P.MAX_ID]
    with any_store.client() as http:
        r = http.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": EX, "currency": "USDT", "allocation": "1"}], "run_id": HUGE})
        assert (r.status_code, _error(r)) == (400, "too_long")


def _oversized(info: Any, size: int) -> Any:
    """An over-long value for a field of this type, or None when it takes no string."""
    if isinstance(info, msgspec.inspect.StrType):
        return "x" * size
    if isinstance(info, msgspec.inspect.UnionType):
        for option in info.types:
            value = _oversized(option, size)
            if value is not None:
                return value
    if isinstance(info, msgspec.inspect.ListType):
        item = _oversized(info.item_type, size)
        return None if item is None else [item]
    if isinstance(info, msgspec.inspect.StructType):
        for field in info.fields:
            value = _oversized(field.type, size)
            if value is not None:
                return {field.name: value}
    return None


ALL_METHODS = sorted(set(METHOD_NAMES) | set(_REGISTRY))  # the xWrap methods and those registered by route modules


def _string_fields() -> list[tuple[str, str, Any]]:
    cases = []
    for name in ALL_METHODS:
        info = msgspec.inspect.type_info(_REGISTRY[name].params)
        for field in getattr(info, "fields", ()):
            value = _oversized(field.type, 100_000)
            if value is not None:
                cases.append((name, field.name, value))
    return cases


async def test_every_json_rpc_method_refuses_an_oversized_string_with_too_long(server: ServerProcess) -> None:
    cases = _string_fields()
    assert len(cases) >= 30, cases  # every method with a string parameter is walked
    async with RpcClient(server.ws) as rpc:
        for method, field, value in cases:
            assert await _refused(rpc, method, **{field: value}) == "too_long", (method, field)
        for method in ALL_METHODS:  # and none of them answers an internal error to an oversized unknown field
            try:
                await rpc.call(method, **{"x" * 1000: "y" * 100_000})
            except RpcError as exc:
                assert exc.code != -32603 and exc.reason, (method, exc)


def _body_string_fields(spec: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, Any]]:
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    out = []
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        if any(o.get("type") == "number" or "anyOf" in o for o in options):
            continue  # a decimal: at most 100 characters of digits, refused `invalid_number` (tests above)
        if any(o.get("type") == "string" for o in options):
            out.append((name, "x" * 5000))
        elif any(o.get("type") == "array" and o.get("items", {}).get("type") == "string" for o in options):
            out.append((name, ["x" * 5000]))
    return out


def test_every_rest_route_refuses_oversized_strings_in_bodies_paths_and_queries(server: ServerProcess) -> None:
    spec = httpx.get(server.http + "/openapi.json").json()
    walked = 0
    with server.client() as http:
        for path, ops in spec["paths"].items():
            for method, op in ops.items() if path not in SIGN_OUT else ():
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                for name, value in _body_string_fields(spec, body) if body else []:
                    r = http.request(method.upper(), _fill(path), json={name: value})
                    assert _error(r) == "too_long", (method, path, name, r.text[:200])
                    walked += 1
                for param in op.get("parameters", []):
                    if param["in"] == "query" and param.get("schema", {}).get("type") != "integer":
                        r = http.request(method.upper(), _fill(path), params={param["name"]: "x" * 2000})
                        assert _error(r) == "too_long", (method, path, param["name"], r.text[:200])
                        walked += 1
                    elif param["in"] == "path" and param.get("schema", {}).get("type") == "string":
                        long_path = path.replace("{" + param["name"] + "}", "x" * 300)
                        r = http.request(method.upper(), _fill(long_path), json={})
                        assert (r.status_code, _error(r)) == (400, "too_long"), (method, path, param["name"], r.text[:200])
                        walked += 1
    assert walked >= 30, walked


async def test_echo_still_answers_json_numbers_as_numbers(server: ServerProcess) -> None:
    frame = '{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"a": 1.5, "b": [2, 0.25], "c": "x"}}'
    assert (await _frame(server, frame))["result"] == {"a": 1.5, "b": [2, 0.25], "c": "x"}
    deep = '{"jsonrpc": "2.0", "id": 2, "method": "echo", "params": {"a": ' + "[" * 700 + "]" * 700 + "}}"
    answer = await _frame(server, deep)
    assert "result" in answer or answer["error"]["data"]["code"] == "too_deep", str(answer)[:200]


def test_a_run_start_body_is_refused_too_long_whatever_string_is_oversized(server: ServerProcess) -> None:
    with server.client() as http:
        for body in ({"mode": "x" * 5000}, {"params": {"note": "x" * 5000}}, {"balances": {"x" * 5000: "1"}}, {"data": ["x" * 5000]}):
            r = http.put("/runnables/hodl/start", json=body)
            assert (r.status_code, _error(r)) == (422, "too_long"), (body.keys(), r.text[:200])
