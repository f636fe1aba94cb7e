"""Position methods and routes at the edge: stable codes for bad input (never a 500), viewers read only, users never cross.

A real server; each refusal is checked over JSON-RPC and over REST, and a fuzz of the new
parameters' types and values answers only documented codes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.signed_in import code_of, http, rpc
from tests.server import ServerProcess

USERS = {"pam": "trader", "pete": "trader", "val": "viewer"}
SPOT = "BTC_USDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("positions")))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    return server.users(USERS)





async def test_bad_parameters_answer_stable_codes_over_json_rpc(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with rpc(server, tokens["pam"]) as pam:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("set_leverage", {"exchange": "demo", "pair": SPOT, "leverage": 0}, "invalid_leverage"),
            ("set_leverage", {"exchange": "demo", "pair": SPOT, "leverage": "10"}, "invalid_params"),
            ("set_leverage", {"exchange": "demo", "pair": SPOT, "leverage": 5}, "not_a_perpetual"),
            ("set_leverage", {"exchange": "nowhere", "pair": SPOT, "leverage": 5}, "unknown_exchange"),
            ("set_leverage", {"exchange": "demo", "leverage": 5}, "missing_parameter"),
            ("set_leverage", {"exchange": "demo", "pair": "BTC-USDT", "leverage": 5}, "invalid_symbol"),
            ("set_margin_mode", {"exchange": "demo", "pair": SPOT, "mode": "both"}, "invalid_margin_mode"),
            ("set_margin_mode", {"exchange": "demo", "pair": SPOT, "mode": "cross"}, "not_a_perpetual"),
            ("set_position_mode", {"exchange": "demo", "hedge_mode": "yes"}, "invalid_params"),
            ("adjust_margin", {"exchange": "demo", "pair": SPOT, "amount": "0"}, "invalid_amount"),
            ("adjust_margin", {"exchange": "demo", "pair": SPOT, "amount": "abc"}, "invalid_number"),
            ("adjust_margin", {"exchange": "demo", "pair": SPOT, "amount": "5", "position_side": "up"}, "invalid_position_side"),
            ("close_position", {"exchange": "demo", "pair": SPOT, "position_side": "sideways"}, "invalid_position_side"),
            ("close_position", {"exchange": "demo", "pair": SPOT}, "not_a_perpetual"),
            ("close_position", {"exchange": "demo", "pair": SPOT, "symbol": "ETH/USDT"}, "conflicting_parameters"),
            ("get_positions", {"pair": SPOT}, "missing_parameter"),
            ("get_positions", {"exchange": "nowhere"}, "unknown_exchange"),
            ("get_positions", {"account": 0}, "invalid_params"),
            ("get_funding", {"limit": 0}, "invalid_limit"),
            ("get_funding", {"limit": 1001}, "invalid_limit"),
            ("get_funding", {"pair": SPOT}, "missing_parameter"),
            ("make_order", {"exchange": "demo", "pair": SPOT, "side": "buy", "type": "market", "size": "0.001",
                            "position_side": "long"}, "not_a_perpetual"),
            ("make_order", {"exchange": "demo", "pair": SPOT, "side": "buy", "type": "market", "size": "0.001",
                            "position_side": "up"}, "invalid_position_side"),
            ("make_order", {"exchange": "demo", "pair": SPOT, "side": "buy", "type": "market", "size": "0.001",
                            "position_side": 1}, "invalid_params"),
        ]
        for method, params, code in cases:
            assert await code_of(pam, method, **params) == code, (method, params)


FUZZ_VALUES: list[Any] = [None, True, -1, 2**70, 1.5, "", "x" * 5000, [], {}, "\u0000"]
FUZZ_FIELDS = ["leverage", "amount", "mode", "position_side", "account", "pair"]


@pytest.mark.parametrize(("value", "field"), list(itertools.product(FUZZ_VALUES, FUZZ_FIELDS)))
def test_fuzzed_values_of_the_new_parameters_never_crash_the_rest_routes(server: ServerProcess, tokens: dict[str, str], value: Any,
                                                                         field: str) -> None:
    body = {"leverage": 3, "amount": "1", "mode": "cross", "position_side": "long", field: value}
    with http(server, tokens["pam"]) as client:
        for method, path, keys in (("PUT", "/api/v1/positions/demo/BTC_USDT:USDT/leverage", ("leverage", "account")),
                                   ("PUT", "/api/v1/positions/demo/BTC_USDT:USDT/margin-mode", ("mode", "account")),
                                   ("POST", "/api/v1/positions/demo/BTC_USDT:USDT/margin", ("amount", "position_side", "account")),
                                   ("POST", "/api/v1/positions/demo/BTC_USDT:USDT/close", ("position_side", "account"))):
            sent = {k: body[k] for k in keys if k in body} | ({field: value} if field in keys or field == "pair" else {})
            r = client.request(method, path, json=sent)
            assert r.status_code < 500, (method, path, sent, r.text)
            if r.status_code >= 400:
                assert r.json()["error"]["code"], r.text
        r = client.get("/api/v1/positions", params={field: value} if isinstance(value, (str, int)) else {})
        assert r.status_code < 500, r.text


def test_rest_routes_answer_the_same_codes(server: ServerProcess, tokens: dict[str, str]) -> None:
    with http(server, tokens["pam"]) as client:
        r = client.put(f"/api/v1/positions/demo/{SPOT}/leverage", json={"leverage": 5})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "not_a_perpetual")
        r = client.put(f"/api/v1/positions/demo/{SPOT}/margin-mode", json={"mode": "sideways"})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_margin_mode")
        r = client.put(f"/api/v1/positions/demo/{SPOT}/leverage", json={"leverage": 5, "exchange": "other"})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "conflicting_parameters")
        r = client.put(f"/api/v1/positions/demo/{SPOT}/leverage?leverage=5")
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_params")
        r = client.put(f"/api/v1/positions/demo/{SPOT}/leverage", content=b"[1]", headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_params")
        r = client.get("/api/v1/funding", params={"limit": "many"})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_params")


def test_viewers_are_refused_every_change_and_nobody_signed_out_gets_anything(server: ServerProcess, tokens: dict[str, str]) -> None:
    with http(server, tokens["val"]) as viewer:
        for method, path, body in (("PUT", f"/api/v1/positions/demo/{SPOT}/leverage", {"leverage": 5}),
                                   ("PUT", f"/api/v1/positions/demo/{SPOT}/margin-mode", {"mode": "cross"}),
                                   ("PUT", "/api/v1/positions/demo/mode", {"hedge_mode": True}),
                                   ("POST", f"/api/v1/positions/demo/{SPOT}/margin", {"amount": "5"}),
                                   ("POST", f"/api/v1/positions/demo/{SPOT}/close", {})):
            r = viewer.request(method, path, json=body)
            assert r.status_code == 403, (path, r.text)
    r = httpx.get(server.http + "/api/v1/positions", timeout=10)
    assert r.status_code == 401


async def test_another_users_account_is_not_found_for_reads_and_changes(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with rpc(server, tokens["pete"]) as pete:
        pete_account = (await pete.call("get_wallet", exchange="demo", currency="USDT"))["account"]
    async with rpc(server, tokens["pam"]) as pam:
        assert await code_of(pam, "get_positions", account=pete_account) == "account_not_found"
        assert await code_of(pam, "get_funding", account=pete_account) == "account_not_found"
        assert await code_of(pam, "set_position_mode", exchange="demo", hedge_mode=True, account=pete_account) == "account_not_found"
    async with rpc(server, tokens["val"]) as val:
        assert await code_of(val, "get_positions", account=pete_account) == "account_not_found"
        assert await code_of(val, "subscribe", channels=["positions_updated"], account=pete_account) == "account_not_found"
