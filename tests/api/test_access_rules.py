"""Every route, RPC method and push channel has exactly one access rule; rules without a route are stale."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.routing import Route

from coinwire.api.context import CHANNELS
from coinwire.app import create_app
from coinwire.auth.abilities import HTTP_RULES, PUSH_RULES, RPC_RULES, Principal, abilities, can, denial, http_rule
from coinwire.config import load_settings


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("rules")
    return create_app(load_settings(overrides={"data_dir": str(data)}))


def _routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = set()
    for route in app.routes:
        assert isinstance(route, Route), f"{route!r}: mounts and websocket routes need their own rule handling"
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_http_route_has_a_rule_and_every_rule_a_route(app) -> None:  # type: ignore[no-untyped-def]
    routes = _routes(app)
    missing = sorted(r for r in routes if http_rule(*r) is None)
    assert not missing, f"routes without an access rule (add them to coinwire.auth.abilities.HTTP_RULES): {missing}"
    assert not sorted(set(HTTP_RULES) - routes), "rules for routes that do not exist"


def test_every_rpc_method_and_channel_has_a_rule(app) -> None:  # type: ignore[no-untyped-def]
    methods = set(app.state.api.methods)
    assert not sorted(methods - set(RPC_RULES)), "JSON-RPC methods without a rule in RPC_RULES"
    assert not sorted(set(RPC_RULES) - methods)
    assert set(PUSH_RULES) == set(CHANNELS)


async def test_a_route_added_without_a_rule_is_denied_by_the_middleware() -> None:
    import httpx
    from fastapi import FastAPI
    from fastapi.responses import Response

    from coinwire.api.guard import EdgeLimits, GuardMiddleware, authorize
    from coinwire.auth.errors import Forbidden
    from coinwire.auth.ratelimit import MemoryBuckets

    app = FastAPI()
    ran: list[bool] = []

    async def new_thing() -> Response:
        ran.append(True)
        return Response("ran")

    app.add_api_route("/api/v1/new_thing", new_thing, methods=["POST"])
    app.add_middleware(GuardMiddleware, auth=None, limiter=MemoryBuckets(), limits=EdgeLimits(max_body=10))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.post("/api/v1/new_thing")
        assert r.status_code == 403 and r.json()["error"]["code"] == "no_rule" and not ran
        big = await http.post("/api/v1/new_thing", content=b"x" * 11)
        assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large" and not ran
        assert (await http.get("/nothing/here")).status_code == 404
    with pytest.raises(Forbidden) as refused:
        authorize(Principal(1, "admin", "admin", "pro"), None, "GET /new/route")
    assert refused.value.code == "no_rule"


@pytest.mark.parametrize("role, action, subject, allowed", [
    ("viewer", "read", "order", True),
    ("viewer", "trade", "order", False),
    ("viewer", "manage", "wallet_set", False),
    ("trader", "trade", "order", True),
    ("trader", "admin", "user", False),
    ("admin", "admin", "user", True),
])
def test_role_table(role: str, action: str, subject: str, allowed: bool) -> None:
    assert can(Principal(2, "u", role, "free"), action, subject) is allowed


def test_ownership_scopes_and_plan() -> None:
    tom, admin = Principal(2, "tom", "trader", "free"), Principal(1, "admin", "admin", "pro")
    assert can(tom, "read", "wallet_set", owner_id=2) and not can(tom, "read", "wallet_set", owner_id=3)
    assert can(admin, "read", "wallet_set", owner_id=3)
    read_key = Principal(2, "tom", "trader", "free", scopes=("read",))
    assert denial(read_key, "trade", "order") == "scope_missing" and denial(read_key, "read", "order") is None
    assert denial(tom, "read", "frontier") == "plan_required"
    assert denial(None, "read", "market") == "unauthenticated"
    admin_key = Principal(1, "admin", "admin", "pro", scopes=("read",))
    assert not admin_key.is_admin and not can(admin_key, "read", "wallet_set", owner_id=3)
    # logmessages, order, trade: their own accounts' only
    assert abilities(tom)["channels"] == ["echo_ret", "exchstatus", "import_progress", "logmessages", "order", "orders_executed",
                                          "orders_updated", "positions_updated", "public_trades", "rate", "rule_fired", "ticker", "trade",
                                          "wallet_set"]


def test_the_secret_file_is_private(tmp_path: Path) -> None:
    from coinwire.auth.tokens import load_secret

    first = load_secret(tmp_path, {})
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600 and len(first) >= 64
    assert load_secret(tmp_path, {}) == first
    assert load_secret(tmp_path, {"COINWIRE_JWT_SECRET": "s" * 40}) == b"s" * 40
    with pytest.raises(ValueError):
        load_secret(tmp_path, {"COINWIRE_JWT_SECRET": "short"})
