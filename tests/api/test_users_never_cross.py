"""Users never cross: two traders and a viewer on one server, none reaching another's orders, notifications, labels or totals.

Each test reproduces one way one user reached another (client_oid takeover, existence leak
and silencing, broadcast by anyone, unchecked run labels, whole-account totals, /metrics).
Then the walks: every JSON-RPC method and REST route that takes a client-chosen identifier
(orders, client_oids, wallet sets, runs, accounts, wallets, users), called with another user's
value, answers as for a nonexistent one, and nothing of the other user changes; every HTTP
route (HTTP_RULES), JSON-RPC method (RPC_RULES) and push channel, called with the other user's
ids wherever one goes, shows nothing of theirs, changes nothing of theirs, and pushes none of
their notifications while they trade. Last, accounts: a trader cannot spend or allocate another
trader's funds, and an admin's grant opens exactly what it says (view, trade, revoked).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

import coinwire.api.ohlcv_routes  # noqa: F401 - registers its JSON-RPC methods too
from coinwire.api import methods as api_methods
from coinwire.api.client import RpcClient, RpcError
from coinwire.api.ownership import OWNED_PARAMS
from coinwire.api.position_routes import POSITION_ROUTES
from coinwire.api.rest import XWRAP_ROUTES
from coinwire.auth.abilities import HTTP_RULES, RPC_RULES
from tests.api.conftest import SMTP_ENV
from tests.api.signed_in import error_code
from tests.server import ServerProcess

METRICS_TOKEN = "scrape-" + "s3cret" * 6
USERS = {"tom": "trader", "tess": "trader", "vic": "viewer"}
PERP = "BTC_USDT:USDT"  # the demo exchange's perpetual, where it has one (else the calls are refused before any account)
_serial = itertools.count(1)
_RUN = uuid.uuid4().hex[:6]


def fresh(prefix: str) -> str:
    """An identifier no one has used yet."""
    return f"{prefix}-{_RUN}-{next(_serial)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("cross")), env={"COINWIRE_METRICS_TOKEN": METRICS_TOKEN, **SMTP_ENV})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    """Access tokens of two traders, a viewer and the admin."""
    out = server.users(USERS)
    out["admin"] = server.token
    return out


def connect(server: ServerProcess, token: str) -> RpcClient:
    return RpcClient(f"{server.ws_anonymous}?access_token={token}")


def http(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=10, headers={"Authorization": f"Bearer {token}"})


async def resting_params(rpc: RpcClient) -> dict[str, Any]:
    """A buy limit far under the market: it rests."""
    bid = float((await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
    return {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001", "limit": f"{bid * 0.5:.2f}"}


async def error_of(call: Any) -> dict[str, Any]:
    try:
        await call
    except RpcError as exc:
        return {"code": exc.data.get("code") if exc.data else exc.code, "message": exc.message}
    raise AssertionError("the call was not refused")


def drain(rpc: RpcClient) -> list[tuple[str, Any]]:
    out = []
    while not rpc.notifications.empty():
        out.append(rpc.notifications.get_nowait())
    return out


async def quiet(rpc: RpcClient, method: str, seconds: float = 0.6) -> None:
    """Nothing named `method` arrives within `seconds`."""
    try:
        got = await rpc.notification(method, timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {method} notification: {got}")


# --- finding 1: a client_oid is its owner's -----------------------------------------------------
async def test_the_same_client_oid_names_each_users_own_order_and_a_repeat_never_changes_an_owner(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    oid = fresh("bob")
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["tom"]) as tom:
        params = await resting_params(tess)
        theirs = await tess.call("make_order", client_oid=oid, **params)
        mine = await tom.call("make_order", client_oid=oid, **params)
        assert mine["id"] != theirs["id"], "tom's make_order answered tess's order"
        assert (await tom.call("make_order", client_oid=oid, **params))["id"] == mine["id"]  # a repeat: tom's own
        assert (await tess.call("make_order", client_oid=oid, **params))["id"] == theirs["id"]
        tess_open = {o["id"] for o in await tess.call("list_open_orders")}
        tom_open = {o["id"] for o in await tom.call("list_open_orders")}
        assert theirs["id"] in tess_open and mine["id"] not in tess_open
        assert mine["id"] in tom_open and theirs["id"] not in tom_open
        # each cancels its own by the shared client_oid; funds come back to each
        assert (await tess.call("cancel_order", client_oid=oid))["id"] == theirs["id"]
        assert (await tom.call("cancel_order", client_oid=oid))["id"] == mine["id"]


# --- finding 2: no existence leak, and a refused call silences no one -----------------------------
async def test_another_users_client_oid_reveals_nothing_and_a_refused_call_does_not_silence_its_owner(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    oid = fresh("quiet")
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["tom"]) as tom:
        params = await resting_params(tess)
        theirs = await tess.call("make_order", client_oid=oid, **params)
        # other parameters: for tom the client_oid is simply free
        mine = await tom.call("make_order", client_oid=oid, **{**params, "size": "0.002"})
        assert mine["id"] != theirs["id"] and mine["size"] == "0.002"
        # tom's repeat with other parameters is refused naming tom's own order, nothing of tess's
        refused = await error_of(tom.call("make_order", client_oid=oid, **{**params, "size": "0.003"}))
        assert refused["code"] == "duplicate_client_oid" and f"order {theirs['id']} " not in refused["message"]
        assert f"order {mine['id']} " in refused["message"]  # tom's own order, which tom may know
        drain(tess)
        with http(server, tokens["tess"]) as rest:  # cancelled from elsewhere: the notification goes to the placing connection
            assert rest.post("/xwrap/v1/orders/cancel", json={"client_oid": oid}).json()["id"] == theirs["id"]
        note = await tess.notification("order", timeout=5)
        assert note["id"] == theirs["id"] and note["status"] == "done"
        await tom.call("cancel_order", order_id=mine["id"])


async def test_a_refused_order_under_another_users_client_oid_leaves_the_owners_notifications(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    """The refused call used to drop the routing of the other user's order: it got no notification after."""
    oid = fresh("routed")
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["tom"]) as tom:
        params = await resting_params(tess)
        theirs = await tess.call("make_order", client_oid=oid, **params)
        await error_of(tom.call("make_order", client_oid=oid, **{**params, "size": "100000"}))  # refused: funds
        drain(tess)
        with http(server, tokens["tess"]) as rest:
            assert rest.post("/xwrap/v1/orders/cancel", json={"order_id": theirs["id"]}).status_code == 200
        note = await tess.notification("order", timeout=5)
        assert note["id"] == theirs["id"] and note["status"] == "done"
        await quiet(tom, "order", 0.3)


# --- finding 3: echo_notify reaches the caller's own connections; broadcast is an admin's ----------
async def test_echo_notify_reaches_only_the_callers_connections_and_broadcast_is_admin_only(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    async with connect(server, tokens["vic"]) as vic, connect(server, tokens["vic"]) as vic2, \
            connect(server, tokens["tom"]) as tom, connect(server, tokens["admin"]) as admin:
        for rpc in (vic, vic2, tom, admin):
            await rpc.call("subscribe", channels=["echo_ret"])
        answer = await vic.call("echo_notify", text="URGENT: admin says withdraw to address X")
        assert answer["receivers"] == 2
        assert (await vic2.notification("echo_ret"))["text"].startswith("URGENT")
        await quiet(tom, "echo_ret")
        await quiet(admin, "echo_ret", 0.1)
        big = await error_of(vic.call("echo_notify", blob="x" * 100_000))
        assert big["code"] == "payload_too_large"
        assert (await error_of(vic.call("broadcast_notify", text="hello all")))["code"] == "forbidden"
        assert (await error_of(tom.call("broadcast_notify", text="hello all")))["code"] == "forbidden"
        assert (await admin.call("broadcast_notify", text="maintenance at noon"))["receivers"] >= 4
        assert (await tom.notification("echo_ret"))["text"] == "maintenance at noon"
        assert (await error_of(admin.call("broadcast_notify", blob="x" * 100_000)))["code"] == "payload_too_large"


# --- finding 4: run labels, totals and /metrics -------------------------------------------------
async def test_another_users_run_id_answers_like_an_unknown_run(server: ServerProcess, tokens: dict[str, str]) -> None:
    label = fresh("tess-run")
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["tom"]) as tom:
        params = await resting_params(tess)
        theirs = await tess.call("make_order", client_oid=fresh("r"), run_id=label, **params)  # first use: tess's label
        refused = await error_of(tom.call("make_order", client_oid=fresh("r"), run_id=label, **params))
        assert refused == {"code": "unknown_run", "message": f"no run {label}"}
        wallets = [{"exchange": "demo", "currency": "USDT", "allocation": "1"}]
        assert (await error_of(tom.call("create_wallet_set", run_id=label, wallets=wallets)))["code"] == "unknown_run"
        with http(server, tokens["tom"]) as rest:
            r = rest.post("/xwrap/v1/wallets/new", json={"run_id": label, "wallets": wallets})
            assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_run")
            assert rest.get(f"/runs/{label}").json()["error"]["code"] == "unknown_run"
        own = fresh("tom-run")  # a new label is the caller's
        mine = await tom.call("make_order", client_oid=fresh("r"), run_id=own, **params)
        assert (await error_of(tess.call("create_wallet_set", run_id=own, wallets=wallets)))["code"] == "unknown_run"
        assert (await tom.call("create_wallet_set", run_id=own, wallets=wallets))["id"] >= 1
        await tess.call("cancel_order", order_id=theirs["id"])
        await tom.call("cancel_order", order_id=mine["id"])


async def test_a_refused_call_claims_no_label(server: ServerProcess, tokens: dict[str, str]) -> None:
    """A label named by a call that is then refused stays free: a refused call changes nothing for anyone."""
    wallets = [{"exchange": "demo", "currency": "USDT", "allocation": "1"}]
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["tom"]) as tom:
        params = await resting_params(tom)
        squat, empty = fresh("squat"), fresh("empty")
        bad = await error_of(tom.call("make_order", client_oid=fresh("r"), run_id=squat, **{**params, "size": "abc"}))
        assert bad["code"] == "invalid_number"
        assert (await error_of(tom.call("create_wallet_set", run_id=empty, wallets=[])))["code"] == "bad_wallet_config"
        # both labels are still free: the first user to use one in an accepted call owns it
        assert (await tess.call("create_wallet_set", run_id=squat, wallets=wallets))["id"]
        assert (await tess.call("make_order", client_oid=fresh("r"), run_id=empty, **params))["id"]
        assert (await error_of(tom.call("create_wallet_set", run_id=squat, wallets=wallets)))["code"] == "unknown_run"


def _usdt(view: dict[str, Any]) -> str:
    """The USDT balance of an aggregate view (`0` when it holds none)."""
    return next((w["balance"] for w in view["wallets"] if w["currency"] == "USDT"), "0")


async def test_totals_show_only_what_the_caller_may_read(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["vic"]) as vic, \
            connect(server, tokens["admin"]) as admin:
        made = await tess.call("create_wallet_set", wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "1234"}])
        try:
            assert _usdt(await vic.call("get_allocated_wallet_set")) == "0"
            unallocated = _usdt(await vic.call("get_unallocated_wallet_set"))
            assert _usdt(await vic.call("get_total_wallet_set")) == unallocated  # vic allocated nothing
            every = await vic.call("get_all_wallet_sets")
            assert str(made["id"]) not in every and _usdt(every["allocated"]) == "0"
            assert _usdt(every["total"]) == unallocated
            assert float(_usdt(await tess.call("get_allocated_wallet_set"))) >= 1234
            (tess_account,) = (await tess.call("get_wallet_set", set_id=made["id"]))["accounts"]
            assert float(_usdt(await admin.call("get_allocated_wallet_set", account=tess_account))) >= 1234  # admins: any account named
            with http(server, tokens["vic"]) as rest:
                assert _usdt(rest.get("/xwrap/v1/wallets/allocated").json()) == "0"
                assert _usdt(rest.get("/xwrap/v1/wallets/total").json()) == unallocated
                assert _usdt(rest.get("/xwrap/v1/wallets/sets").json()["allocated"]) == "0"
        finally:
            await tess.call("deactivate_wallet_set", set_id=made["id"])


def test_metrics_are_for_admins_and_the_scrape_token(server: ServerProcess, tokens: dict[str, str]) -> None:
    for name in ("tom", "vic"):
        with http(server, tokens[name]) as rest:
            r = rest.get("/metrics")
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (name, r.status_code)
    with http(server, tokens["admin"]) as rest:
        assert rest.get("/metrics").status_code == 200
    with http(server, METRICS_TOKEN) as scraper:
        assert scraper.get("/metrics").status_code == 200
        assert scraper.get("/xwrap/v1/orders/open").status_code == 401  # the token opens /metrics only
    with http(server, METRICS_TOKEN[:-1] + "x") as wrong:
        assert wrong.get("/metrics").status_code == 401


# --- every identifier, with another user's value --------------------------------------------------
# identifiers a client sends: ids of orders, wallet sets, runs, accounts and wallets; `wallets.account`
# is the account of each entry of a `wallets` list (create_wallet_set, allocate_to_wallet_set)
IDS = {"order_id", "client_oid", "client_order_id", "set_id", "wallet_set_id", "run_id", "account", "wallet_id", "wallets.account",
       "account_id", "user_id", "schedule_id", "rule_set_id"}
ABSENT = {"order_id": 10**12, "set_id": 10**9, "wallet_set_id": 10**9, "account": 10**9, "wallet_id": 10**12, "wallets.account": 10**9,
          "account_id": 10**9, "user_id": 10**9, "schedule_id": 10**12, "rule_set_id": 10**12}
# a rule set of tess's on her account (a dry run: the sweep's calls must not change it)
RULE_SET = {"scope": "account", "mode": "dry_run", "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": "10", "trail_pct": "5"}],
            "actions": [{"kind": "notify", "message": "tess's stop"}]}
# a schedule of tess's (its JSON-RPC methods name it `id`): a yearly one, so its next runs do not move during a sweep
SCHEDULE = {"every": None, "cron": "0 0 1 1 *", "timezone": "UTC", "job": {"kind": "run_strategy", "strategy": "hodl", "for": "1h"}}


class Victim(msgspec.Struct):
    """Tess's resources, and what must stay as it is."""

    order_id: int
    client_oid: str
    set_id: int
    run_id: str
    account: int  # the account funding her set (not her first one)
    wallet_id: int  # her first account's unallocated USDT wallet
    user_id: int
    schedule_id: int
    rule_set_id: int


def _identifier_methods() -> dict[str, list[str]]:
    """Every JSON-RPC method with a parameter naming a client-chosen identifier, from the registry itself."""
    found = {}
    for name, entry in api_methods._REGISTRY.items():
        if entry.params is dict or not hasattr(entry.params, "__struct_fields__"):
            continue
        fields = set(entry.params.__struct_fields__)
        if "wallets" in fields:
            fields.add("wallets.account")
        named = sorted(IDS & fields)
        if named:
            found[name] = named
    return found


def test_the_walk_covers_every_owned_parameter() -> None:
    walked = _identifier_methods()
    for name, owned in OWNED_PARAMS.items():
        assert {p for _, p in owned} <= set(walked.get(name, ())), name
    assert {"make_order", "make_oco", "cancel_order", "get_wallet_set", "create_wallet_set", "get_wallet", "allocate_to_wallet_set"} \
        <= set(walked)
    # every method that touches funds or orders takes an account, and the walk names another user's there
    for name in ("make_order", "make_oco", "cancel_order", "list_open_orders", "list_recent_orders", "get_wallet", "get_all_wallet_sets",
                 "get_allocated_wallet_set", "get_unallocated_wallet_set", "get_total_wallet_set", "get_unallocated_per_exchange",
                 "add_virtual_wallet_tx", "subscribe", "get_positions", "get_funding", "set_leverage", "set_margin_mode",
                 "set_position_mode", "adjust_margin", "close_position"):
        assert "account" in walked[name], name
    assert "wallets.account" in walked["create_wallet_set"] and "wallets.account" in walked["allocate_to_wallet_set"]
    assert "wallet_id" in walked["add_virtual_wallet_tx"]


def _base(method: str, order: dict[str, Any], own_set: int | None = None) -> dict[str, Any]:
    """Valid parameters of `method` but for the identifier under test (a new method fails here until given some).

    `own_set`: a wallet set of the caller's, so that allocating names nothing else of anyone's.
    """
    wallets = [{"exchange": "demo", "currency": "USDT", "allocation": "1"}]
    samples: dict[str, dict[str, Any]] = {
        "make_order": {**order, "client_oid": fresh("walk")},
        # a buy OCO: its limit leg rests far under the market, its stop leg far over it
        "make_oco": {**{k: v for k, v in order.items() if k != "type"}, "stop_price": f"{Decimal(order['limit']) * 3:.2f}",
                     "client_oid": fresh("walk")},
        "cancel_order": {},
        "list_open_orders": {},
        "list_recent_orders": {},
        "create_wallet_set": {"wallets": wallets},
        "deactivate_wallet_set": {},
        "get_wallet_set": {},
        "get_wallet_set_history": {},
        "get_wallet": {"exchange": "demo", "currency": "USDT"},
        "allocate_to_wallet_set": {"wallets": wallets, **({"set_id": own_set} if own_set is not None else {})},
        "get_all_wallet_sets": {},
        "get_allocated_wallet_set": {},
        "get_unallocated_wallet_set": {},
        "get_total_wallet_set": {},
        "get_unallocated_per_exchange": {},
        "add_virtual_wallet_tx": {"exchange": "demo", "currency": "USDT", "movement": "1"},
        "subscribe": {"channels": ["order", "trade"]},
        "unsubscribe": {"channels": ["public_trades"]},
        # perpetual positions: another user's account must read and change nothing of theirs
        "get_positions": {},
        "get_funding": {},
        "set_leverage": {"exchange": "demo", "pair": PERP, "leverage": 3},
        "set_margin_mode": {"exchange": "demo", "pair": PERP, "mode": "isolated"},
        "set_position_mode": {"exchange": "demo", "hedge_mode": True},
        "adjust_margin": {"exchange": "demo", "pair": PERP, "amount": "1"},
        "close_position": {"exchange": "demo", "pair": PERP},
        "get_signals": {},  # another user's run: no signal of theirs
    }
    assert method in samples, f"{method} takes an identifier: give it sample parameters here"
    return dict(samples[method])


def _with(params: dict[str, Any], field: str, value: object) -> dict[str, Any]:
    """`params` with `field` set to `value` (`wallets.account`: on every entry of `wallets`)."""
    if field == "wallets.account":
        return {**params, "wallets": [{**w, "account": value} for w in params["wallets"]]}
    return {**params, field: value}


def _normal(outcome: dict[str, Any], values: tuple[object, ...]) -> dict[str, Any]:
    """An outcome with the identifier values written out of its message."""
    if "message" in outcome:
        message = outcome["message"]
        for value in values:
            # the value as a whole token only: an id of 256 is not the 256 of "HMAC-SHA256"
            message = re.sub(rf"'?(?<!\w){re.escape(str(value))}(?!\w)'?", "<id>", message)
        return {**outcome, "message": message}
    return outcome


async def _rpc_outcome(rpc: RpcClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        await rpc.call(method, **params)
    except RpcError as exc:
        return {"code": exc.data.get("code") if exc.data else exc.code, "message": exc.message}
    return {"ok": True}


def _http_outcome(rest: httpx.Client, verb: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    url = re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(params.get(m.group(1), "demo")), path)
    rest_params = {k: v for k, v in params.items() if k not in names}
    if verb == "GET":
        r = rest.get(url, params={k: str(v) for k, v in rest_params.items()})
    else:
        r = rest.request(verb, url, json=rest_params)
    if r.status_code < 300:
        return {"ok": True}
    error = r.json()["error"]
    return {"status": r.status_code, "code": error_code(r), "message": error if isinstance(error, str) else error["message"]}


def _balances(view: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The balances of a wallet-set-shaped view (not their USD values: the market moves those)."""
    return sorted((w["exchange"], w["currency"], w["balance"], w["available"], w["hold"]) for w in view["wallets"])


async def _victim_state(tess: RpcClient, victim: Victim) -> Any:
    """Tess's open orders, her set's balances, and every account's of hers: total, allocated and unallocated."""
    orders = sorted((o["id"], o["account"], o["status"], o["size"], o["limit"]) for o in await tess.call("list_open_orders"))
    funds = [_balances(await tess.call(f"get_{kind}_wallet_set")) for kind in ("total", "allocated", "unallocated")]
    return orders, _balances(await tess.call("get_wallet_set", set_id=victim.set_id)), funds


async def _make_victim(tess: RpcClient, tess_rest: httpx.Client, order: dict[str, Any], label: str) -> tuple[Victim, str]:
    """Tess's account (a second one), a wallet set it funds, an order on that set, her first account's USDT wallet, and a
    spare order whose client_oid others may use (it makes their own order: a client_oid is each user's key)."""
    account = tess_rest.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": fresh(label)}).json()["id"]
    run_id = fresh(label)
    made = await tess.call("create_wallet_set", run_id=run_id,
                           wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "50", "account": account}])
    oid = fresh(label)
    placed = await tess.call("make_order", client_oid=oid, wallet_set_id=made["id"], run_id=run_id, **order)
    assert placed["account"] == account
    spare = fresh(f"{label}-spare")
    await tess.call("make_order", client_oid=spare, **order)
    wallet = await tess.call("get_wallet", exchange="demo", currency="USDT")
    schedule = tess_rest.post("/api/v1/schedules", json={**{k: v for k, v in SCHEDULE.items() if v}, "name": fresh(label)})
    rule_set = tess_rest.post("/api/v1/rulesets", json={**RULE_SET, "name": fresh(label), "scope_id": str(account)})
    assert rule_set.status_code == 201, rule_set.text
    victim = Victim(order_id=placed["id"], client_oid=oid, set_id=made["id"], run_id=run_id, account=account, wallet_id=wallet["id"],
                    user_id=tess_rest.get("/api/v1/me").json()["id"], schedule_id=schedule.json()["id"],
                    rule_set_id=rule_set.json()["id"])
    return victim, spare


@pytest.mark.parametrize("caller", ["tom", "vic"])
async def test_every_identifier_of_another_user_answers_as_a_nonexistent_one(
    server: ServerProcess, tokens: dict[str, str], caller: str
) -> None:
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens[caller]) as them:
        order = await resting_params(tess)
        with http(server, tokens["tess"]) as tess_rest:
            victim, spare = await _make_victim(tess, tess_rest, order, "tess-walk")
        own_set = (await them.call("create_wallet_set", wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "1"}]))["id"] \
            if caller == "tom" else None
        before = await _victim_state(tess, victim)
        drain(tess)
        theirs = {"order_id": victim.order_id, "client_oid": victim.client_oid, "client_order_id": victim.client_oid,
                  "set_id": victim.set_id, "wallet_set_id": victim.set_id, "run_id": victim.run_id, "account": victim.account,
                  "wallets.account": victim.account, "wallet_id": victim.wallet_id, "account_id": victim.account, "user_id": victim.user_id,
                  "schedule_id": victim.schedule_id, "rule_set_id": victim.rule_set_id}
        routes = {name: [(verb, path) for verb, path, m in XWRAP_ROUTES if m == name] for name in _identifier_methods()}
        with http(server, tokens[caller]) as rest:
            for method, fields in _identifier_methods().items():
                for field in fields:
                    absent = ABSENT.get(field) or fresh("never")
                    params = _base(method, order, own_set)
                    outcomes = []
                    for value in (spare if (method, field) == ("make_order", "client_oid") else theirs[field], absent):
                        given = _with(params, field, value)
                        if method in ("make_order", "make_oco"):
                            given["client_oid"] = fresh("walk") if field != "client_oid" else value
                        got = await _rpc_outcome(them, method, given)
                        outcomes.append(_normal(got, (value,)))
                        for verb, path in routes[method]:
                            outcomes.append(_normal(_http_outcome(rest, verb, path, given), (value,)))
                    half = len(outcomes) // 2
                    if field == "run_id" and method in ("make_order", "make_oco", "create_wallet_set"):
                        # a label never used is the caller's on first use; another user's answers as an unknown run
                        expected = "unknown_run" if caller == "tom" else "forbidden"
                        assert all(o.get("code") == expected for o in outcomes[:half]), (method, outcomes)
                        continue
                    assert outcomes[:half] == outcomes[half:], (caller, method, field, outcomes)
                    for o in outcomes:
                        assert f"order {victim.order_id} " not in str(o) and "already names" not in str(o.get("message", ""))
                    if field in ("account", "wallets.account") and caller == "tom" and method != "unsubscribe":
                        assert outcomes[0].get("code") == "account_not_found", (method, field, outcomes)
            # REST routes with an identifier in the path (runs, accounts): the app's routes, from its OpenAPI document
            paths = rest.get("/openapi.json", headers={"Authorization": f"Bearer {tokens['admin']}"}).json()["paths"]
            walked = set()
            for path, verbs in paths.items():
                names = set(re.findall(r"{(\w+)}", path)) & IDS
                if not names or path.startswith("/xwrap/"):
                    continue
                walked.add(path)
                for verb in verbs:
                    body = {"role": "view"} if path.endswith("{user_id}") and verb == "put" else {}
                    got = []
                    for values in ({n: theirs[n] for n in names}, {n: ABSENT.get(n) or fresh("never") for n in names}):
                        got.append(_normal(_http_outcome(rest, verb.upper(), path, {**body, **values}), tuple(values.values())))
                    assert got[0] == got[1], (path, verb, got)
            assert "/api/v1/accounts/{account_id}/members/{user_id}" in walked and "/runs/{run_id}" in walked
            assert "/api/v1/schedules/{schedule_id}/pause" in walked and "/api/v1/rulesets/{rule_set_id}/enable" in walked
        await quiet(tess, "order", 0.5)  # nothing happened to tess's order
        assert await _victim_state(tess, victim) == before
        assert (await tess.call("cancel_order", client_oid=victim.client_oid))["id"] == victim.order_id
        await tess.call("cancel_order", client_oid=spare)
        await tess.call("deactivate_wallet_set", set_id=victim.set_id)
        while caller == "tom" and (left := await them.call("list_open_orders")):  # an OCO leg's cancel ends its sibling too
            await them.call("cancel_order", order_id=left[0]["id"])


# --- every route, method and channel: nothing of another user's is read, written or pushed ---------
# Routes the sweep does not call, and why: they take the caller's own credentials and no identifier
# of anyone's resource, and calling them would end the sweep's own session or start a run.
NOT_CALLED = {
    ("POST", "/api/v1/auth/login"): "a user name and a password",
    ("POST", "/api/v1/auth/refresh"): "the caller's own refresh token",
    ("POST", "/api/v1/auth/logout"): "ends the caller's own session",
    ("POST", "/api/v1/auth/logout_all"): "ends the caller's own sessions",
    ("PUT", "/runnables/{name:path}/start"): "starts a run of the caller's own (its body names no one's resource)",
    ("POST", "/api/v1/auth/register"): "a new user's name and password (closed here: registration_closed before the body is read)",
}
PATH_SAMPLES = {"component_id": "c", "name": "hodl", "exchange": "demo", "symbol": "BTC_USDT", "pair": "BTC_USDT", "currency": "USDT",
                "path": "index.html", "letter_id": "1", "scope": "account", "provider": "tradingview"}
# bodies of the routes that are not xWrap methods (those take their method's sample parameters)
BODY_SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/api/v1/me/preferences"): {},
    ("PUT", "/api/v1/me/notifications"): {},  # the caller's own, emptied
    ("POST", "/api/v1/me/notifications/test"): {"channel": "webhook"},
    ("POST", "/api/v1/api_keys"): {"name": "sweep", "scopes": ["read"]},
    ("POST", "/api/v1/users"): {"username": "sweeper", "password": "sweeper-password"},
    ("POST", "/api/v1/accounts"): {"exchange": "demo", "kind": "paper", "name": "sweep"},
    ("PUT", "/api/v1/accounts/{account_id:int}/members/{user_id:int}"): {"role": "view"},
    ("PUT", "/api/v1/admin/settings"): {"self_registration": False},
    ("PUT", "/runs/{run_id}/components/{component_id}"): {"value": 1},
    ("POST", "/api/v1/frontier"): {"assets": ["BTC", "ETH"]},
    ("POST", "/api/v1/schedules"): {**{k: v for k, v in SCHEDULE.items() if v}, "name": "sweep"},
    ("POST", "/api/v1/rulesets"): {**RULE_SET, "scope": "user", "name": "sweep", "actions": [{"kind": "notify"}]},  # the caller's own
}
RPC_SAMPLES: dict[str, dict[str, Any]] = {
    "echo": {"x": 1}, "authenticate": {}, "echo_notify": {"x": 1}, "broadcast_notify": {"x": 1}, "get_status": {},
    "get_exchanges": {}, "get_pricing": {"exchange": "demo"}, "get_book": {"exchange": "demo", "pair": "BTC_USDT"},
    "get_ohlcv": {"exchange": "demo", "pair": "BTC_USDT"}, "convert_to_usd": {"currency": "BTC", "value": "1", "side": "bid"},
    "subscribe_ohlcv": {"exchange": "demo", "symbol": "BTC/USDT", "timeframe": "1m"}, "unsubscribe_ohlcv": {"subscription": 1},
    "get_rates": {"exchange": "demo", "symbol": "BTC_USDT", "since": "7d"},
    "list_schedules": {}, "get_schedule": {"id": 10**12}, "remove_schedule": {"id": 10**12}, "pause_schedule": {"id": 10**12},
    "resume_schedule": {"id": 10**12}, "add_schedule": {**{k: v for k, v in SCHEDULE.items() if v}, "name": "sweep-rpc"},
    "get_notifications": {}, "set_notifications": {},  # the caller's own (no id to name)
    "list_rule_sets": {}, "get_rule_set": {"id": 10**12}, "update_rule_set": {"id": 10**12}, "delete_rule_set": {"id": 10**12},
    "enable_rule_set": {"id": 10**12}, "disable_rule_set": {"id": 10**12}, "get_rule_firings": {"id": 10**12},
    "create_rule_set": {**RULE_SET, "scope": "user", "name": "sweep-rpc", "actions": [{"kind": "notify"}]},
    "subscribe_portfolio_ohlcv": {"scope": "account", "id": 1}, "unsubscribe_portfolio_ohlcv": {"subscription": 1},
    "get_analysis": {"series": "market:demo:BTC/USDT:1h", "indicator": "sma", "params": [20]},
    "subscribe_analysis": {"series": "portfolio:account:1:1h", "indicator": "sma", "params": [20]},
    "unsubscribe_analysis": {"subscription": 1}, "get_signals": {},
}


class Marks(msgspec.Struct):
    """What is tess's: the ids a client could name, and what only her things carry (none may reach another user)."""

    ids: dict[str, Any]  # parameter or path name -> her value
    texts: list[str]  # strings only her things carry: account name, set description, run label, client_oids, key name, token
    accounts: set[int]
    user_id: int


def _leaks(marks: Marks, answer: Any, sent: dict[str, Any]) -> list[str]:
    """What of tess's an answer shows: her texts (but for what the caller itself sent), her accounts or her user id."""
    text = msgspec.json.encode(answer).decode()
    for value in sent.values():
        if isinstance(value, str) and value:
            text = text.replace(value, "<sent>")
    found = [t for t in marks.texts if t in text]
    if isinstance(answer, dict) and set(answer) == {"error"}:  # REST's refusal shape
        answer = answer["error"]
    if isinstance(answer, dict) and set(answer) <= {"status", "code", "message", "account", "field"}:
        return found  # a refusal: its data repeats what was sent (`account`), nothing more

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if type(value) is int and ((key == "account" and value in marks.accounts)
                                           or (key in ("owner", "owner_id", "user_id") and value == marks.user_id)):
                    found.append(f"{key}={value}")
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(answer)
    return found


async def _tess_everything(tess: RpcClient, rest: httpx.Client) -> Any:
    """Everything of tess's a sweep could change: her accounts, each one's balances, orders, sets, API keys, preferences."""
    accounts = rest.get("/api/v1/accounts").json()
    balances = {}
    for account in accounts:
        view = rest.get(f"/api/v1/accounts/{account['id']}/balances").json()
        balances[account["id"]] = {k: sorted((w["currency"], w["balance"], w["hold"]) for w in view[k]) for k in ("total", "allocated")}
    orders = sorted((o["id"], o["account"], o["status"], o["size"]) for o in await tess.call("list_open_orders"))
    sets = sorted((k, str(_balances(v))) for k, v in (await tess.call("get_all_wallet_sets")).items() if k.isdigit())
    keys = sorted((k["id"], k.get("revoked_at")) for k in rest.get("/api/v1/api_keys").json())
    schedules = rest.get("/api/v1/schedules").json()
    return (accounts, balances, orders, sets, keys, rest.get("/api/v1/me/preferences").json(), schedules,
            rest.get("/api/v1/me/notifications").json(),
            # her rule sets without their live status, which the controller moves as it samples her portfolio
            [{k: v for k, v in rs.items() if k != "status"} for rs in rest.get("/api/v1/rulesets").json()])


@pytest.mark.parametrize("caller", ["tom", "vic"])
async def test_no_route_method_or_channel_reads_writes_or_pushes_another_users_things(
    server: ServerProcess, tokens: dict[str, str], caller: str
) -> None:
    """Every HTTP route (HTTP_RULES), JSON-RPC method (RPC_RULES) and push channel, called by tom (a trader) or vic (a viewer)
    with tess's ids wherever an id goes: no answer shows anything of hers, nothing of hers changes, and none of her order or
    trade notifications reaches them, while she trades beside them."""
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens[caller]) as them, \
            connect(server, tokens["admin"]) as admin_rpc:
        order = await resting_params(tess)
        with http(server, tokens["tess"]) as tess_rest, http(server, tokens[caller]) as rest:
            victim, spare = await _make_victim(tess, tess_rest, order, "sweep")
            key = tess_rest.post("/api/v1/api_keys", json={"name": fresh("tess-key"), "scopes": ["read"]}).json()
            hook, mailbox = f"https://example.org/{fresh('tess-hook')}", f"{fresh('tess')}@example.org"
            tess_rest.put("/api/v1/me/notifications", json={
                "channels": {"email": {"address": mailbox}, "webhook": {"url": hook, "secret": fresh("tess-webhook-secret")}},
                "events": {"trade_receipt": ["email"], "order_filled": ["webhook"]}}).raise_for_status()
            # an outside signal of hers (docs/SIGNALS.md): kept for her replay, never in their answers
            alert_key = tess_rest.post("/api/v1/api_keys", json={"name": fresh("tess-tv"), "scopes": ["signals:tradingview"]}).json()
            alert = fresh("tess-alert")
            httpx.post(f"{server.http}/api/v1/signals/tradingview", json={"ticker": "BTCUSDT", "comment": alert,
                                                                         "key": alert_key["key"]}).raise_for_status()
            account_names = [a["name"] for a in tess_rest.get("/api/v1/accounts").json()]
            marks = Marks(
                ids={"order_id": victim.order_id, "client_oid": victim.client_oid, "client_order_id": victim.client_oid,
                     "set_id": victim.set_id, "wallet_set_id": victim.set_id, "run_id": victim.run_id, "account": victim.account,
                     "account_id": victim.account, "wallet_id": victim.wallet_id, "user_id": victim.user_id, "key_id": key["id"],
                     "access_token": tokens["tess"], "schedule_id": victim.schedule_id, "id": victim.schedule_id,
                     "rule_set_id": victim.rule_set_id},
                texts=[*[n for n in account_names if n.startswith("sweep")], victim.run_id, victim.client_oid, spare, key["name"],
                       key["key"],
                       tokens["tess"], "Logical Wallet for Run: " + victim.run_id,
                       tess_rest.get(f"/api/v1/schedules/{victim.schedule_id}").json()["name"], hook, mailbox,
                       tess_rest.get(f"/api/v1/rulesets/{victim.rule_set_id}").json()["name"], "tess's stop",
                       alert, alert_key["key"], alert_key["name"]],
                accounts={a["id"] for a in tess_rest.get("/api/v1/accounts").json()}, user_id=victim.user_id)
            allowed = rest.get("/api/v1/me/abilities").json()["channels"]
            await them.call("subscribe", channels=allowed)
            before = await _tess_everything(tess, tess_rest)
            drain(tess)
            leaks: list[tuple[str, list[str]]] = []
            # every HTTP route, with tess's ids in the path, and in the query (xWrap reads) or the body (xWrap writes); the
            # xWrap ones also without ids in the query or body, so that their lists of the caller's own are read too
            methods = {(verb, path): name for verb, path, name in [*XWRAP_ROUTES, *POSITION_ROUTES]}
            for verb, template in sorted(HTTP_RULES):
                if (verb, template) in NOT_CALLED:
                    continue
                names = re.findall(r"{(\w+)(?::\w+)?}", template)
                values = {n: marks.ids.get(n, PATH_SAMPLES.get(n)) for n in names}
                assert all(v is not None for v in values.values()), f"{template}: give its path parameters a sample"
                path = re.sub(r"{(\w+)(?::\w+)?}", lambda m, values=values: str(values[m.group(1)]), template)
                method = methods.get((verb, template))
                variants: list[dict[str, Any]] = [{}]
                if method is not None and method in _identifier_methods():
                    fields = set(api_methods._REGISTRY[method].params.__struct_fields__) - set(names)
                    base = _base(method, order)
                    variants = [{**base, **{f: marks.ids[f] for f in fields & set(marks.ids)}}, base]
                elif method is None and verb != "GET":  # a route whose only input is its body must have a sample one
                    assert names or (verb, template) in BODY_SAMPLES, \
                        f"{verb} {template}: give it a sample body (or say in NOT_CALLED why not)"
                    variants = [BODY_SAMPLES.get((verb, template), {})]
                for extra in variants:
                    if verb == "GET":
                        r = rest.get(path, params={k: str(v) for k, v in extra.items() if not isinstance(v, (list, dict))})
                    else:
                        r = rest.request(verb, path, json=extra)
                    assert r.status_code != 500, (verb, template, r.text)  # 503: the dashboard is not built here
                    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
                    leaks += [(f"{verb} {template}", found) for found in [_leaks(marks, answer, {**values, **extra})] if found]
            # every JSON-RPC method, with tess's ids in every parameter that takes one, and without them (the caller's own)
            for method in sorted(RPC_RULES):
                entry = api_methods._REGISTRY.get(method)
                fields = set(getattr(entry.params, "__struct_fields__", ())) if entry is not None else {"access_token"}
                base = _base(method, order) if method in _identifier_methods() else dict(RPC_SAMPLES[method])
                named = {**base, **{f: marks.ids[f] for f in fields & set(marks.ids)}}
                if "wallets" in named:
                    named = _with(named, "wallets.account", victim.account)
                for params in (named, base) if named != base else (base,):
                    try:
                        answer = await them.call(method, **params)
                    except RpcError as exc:
                        answer = {"code": exc.reason, "message": exc.message}
                    leaks += [(method, found) for found in [_leaks(marks, answer, params)] if found]
            assert not leaks, leaks
            await quiet(tess, "order", 0.3)  # nothing happened to her orders
            assert await _tess_everything(tess, tess_rest) == before
            # push: she trades on both her accounts, over JSON-RPC and REST; they hear nothing of it, admins and she do
            await admin_rpc.call("subscribe", channels=["order", "trade"])
            drain(them), drain(admin_rpc)
            bought = await tess.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001",
                                     client_oid=fresh("sweep-mkt"))
            placed = tess_rest.post("/xwrap/v1/orders/new", json={**order, "account": victim.account, "client_oid": fresh("sweep")}).json()
            tess_rest.post("/xwrap/v1/orders/cancel", json={"order_id": placed["id"]}).raise_for_status()
            heard: list[tuple[str, Any]] = []  # the admin, following every account, hears both orders end
            async with asyncio.timeout(5):
                while not {placed["id"], bought["id"]} <= {p["id"] for n, p in heard if n == "order" and p["status"] == "done"}:
                    heard.append(await admin_rpc.notifications.get())
            assert any(n == "trade" and p["account"] in marks.accounts for n, p in heard), "her market order filled: a trade"
            await asyncio.sleep(0.5)
            theirs = [(n, p) for n, p in drain(them) if n in ("order", "trade", "logmessages")]
            assert not [(n, p) for n, p in theirs if _leaks(marks, p, {}) or p.get("account") in marks.accounts], theirs
        # clean up: her orders and set, tom's own orders
        await tess.call("cancel_order", order_id=victim.order_id)
        await tess.call("cancel_order", client_oid=spare)
        await tess.call("deactivate_wallet_set", set_id=victim.set_id)
        while caller == "tom" and (left := await them.call("list_open_orders")):  # an OCO leg's cancel ends its sibling too
            await them.call("cancel_order", order_id=left[0]["id"])


# --- funds are their owner's; a grant opens exactly what it says --------------------------------------
async def _code(call: Any) -> str | None:
    return (await error_of(call))["code"]


def _funds(rest: httpx.Client, account: int) -> Any:
    view = rest.get(f"/api/v1/accounts/{account}/balances").json()
    return {k: sorted((w["currency"], w["balance"], w["hold"]) for w in view[k]) for k in ("total", "allocated", "unallocated")}


async def test_a_trader_cannot_spend_or_allocate_another_traders_funds(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["tom"]) as tom:
        order = await resting_params(tess)
        with http(server, tokens["tess"]) as tess_rest, http(server, tokens["tom"]) as tom_rest:
            accounts = [a["id"] for a in tess_rest.get("/api/v1/accounts").json() if a["role"] == "owner"]
            before = {a: _funds(tess_rest, a) for a in accounts}
            own_set = (await tom.call("create_wallet_set", wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "1"}]))["id"]
            usdt = {"exchange": "demo", "currency": "USDT", "allocation": "100"}
            for account in accounts:
                assert await _code(tom.call("make_order", **order, account=account)) == "account_not_found"
                assert await _code(tom.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001",
                                            account=account)) == "account_not_found"
                assert await _code(tom.call("create_wallet_set", wallets=[{**usdt, "account": account}])) == "account_not_found"
                assert await _code(tom.call("allocate_to_wallet_set", set_id=own_set, wallets=[{**usdt, "account": account}])) == \
                    "account_not_found"
                assert await _code(tom.call("add_virtual_wallet_tx", exchange="demo", currency="USDT", movement="-1",
                                            account=account)) == "account_not_found"
                for path, body in (("/xwrap/v1/orders/new", {**order, "account": account}),
                                   ("/xwrap/v1/wallets/new", {"wallets": [{**usdt, "account": account}]})):
                    r = tom_rest.post(path, json=body)
                    assert (r.status_code, r.json()["error"]["code"]) == (404, "account_not_found"), path
            assert {a: _funds(tess_rest, a) for a in accounts} == before
            await tom.call("deactivate_wallet_set", set_id=own_set)


async def test_a_grant_opens_exactly_what_it_says_and_a_revoke_closes_it(server: ServerProcess, tokens: dict[str, str]) -> None:
    """view: read the account's funds and orders, hear its notifications, trade nothing; trade: place and cancel on it and
    allocate from it, never mint; revoked: nothing, not even through a wallet set it funds or a channel followed before."""
    wallets = [{"exchange": "demo", "currency": "USDT", "allocation": "10"}]
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens["tom"]) as tom, \
            connect(server, tokens["tom"]) as tom_follows, connect(server, tokens["vic"]) as vic:
        order = await resting_params(tess)
        with http(server, tokens["tess"]) as tess_rest, http(server, tokens["tom"]) as tom_rest, \
                http(server, tokens["admin"]) as admin:
            desk = tess_rest.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": fresh("desk")}).json()["id"]
            users = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
            members = f"/api/v1/accounts/{desk}/members"
            first = await tess.call("make_order", **order, account=desk, client_oid=fresh("desk"))
            assert await _code(tom.call("get_total_wallet_set", account=desk)) == "account_not_found"  # not yet granted

            # view
            for name in ("tom", "vic"):
                admin.put(f"{members}/{users[name]}", json={"role": "view"}).raise_for_status()
            tom_sees = _usdt(await tom.call("get_total_wallet_set", account=desk))
            assert tom_sees == _usdt(await tess.call("get_total_wallet_set", account=desk))
            assert first["id"] in {o["id"] for o in await tom.call("list_open_orders", account=desk)}
            assert first["id"] in {o["id"] for o in await vic.call("list_recent_orders", account=desk, include_open=True)}
            assert tom_rest.get(f"/api/v1/accounts/{desk}/balances").status_code == 200
            await tom_follows.call("subscribe", channels=["order"], account=desk)
            for call in (tom.call("make_order", **order, account=desk),
                         tom.call("create_wallet_set", wallets=[{**wallets[0], "account": desk}]),
                         tom.call("cancel_order", order_id=first["id"], account=desk),
                         tom.call("add_virtual_wallet_tx", exchange="demo", currency="USDT", movement="1", account=desk)):
                assert await _code(call) == "account_not_found"
            assert await _code(tom.call("cancel_order", order_id=first["id"])) == "order_not_found"
            drain(tom), drain(tom_follows), drain(vic)
            second = await tess.call("make_order", **order, account=desk, client_oid=fresh("desk"))
            for rpc in (tom, tom_follows, vic):  # every reader of the account hears of it, whoever placed it
                assert (await rpc.notification("order"))["id"] == second["id"]

            # trade
            admin.put(f"{members}/{users['tom']}", json={"role": "trade"}).raise_for_status()
            assert admin.put(f"{members}/{users['vic']}", json={"role": "trade"}).json()["error"]["code"] == "grant_exceeds_role"
            held = _funds(tess_rest, desk)
            mine = await tom.call("make_order", **order, account=desk, client_oid=fresh("desk"))
            assert mine["account"] == desk and mine["id"] in {o["id"] for o in await tess.call("list_open_orders", account=desk)}
            assert _funds(tess_rest, desk) != held  # it holds the account's funds
            assert (await tom.call("cancel_order", order_id=second["id"]))["status"] == "done"  # hers, on the account: his to cancel now
            tom_set = (await tom.call("create_wallet_set", wallets=[{**wallets[0], "account": desk}]))["id"]
            await tom.call("allocate_to_wallet_set", set_id=tom_set, wallets=wallets)  # more from the set's account
            assert await _code(tom.call("add_virtual_wallet_tx", exchange="demo", currency="USDT", movement="1", account=desk)) == \
                "account_not_found"  # a member never mints

            # revoked
            admin.delete(f"{members}/{users['tom']}").raise_for_status()
            assert desk not in {a["id"] for a in tom_rest.get("/api/v1/accounts").json()}
            before = _funds(tess_rest, desk)
            for call in (tom.call("get_total_wallet_set", account=desk), tom.call("list_open_orders", account=desk),
                         tom.call("make_order", **order, account=desk),
                         tom.call("make_order", **order, wallet_set_id=tom_set),  # the set he made from it reaches it no more
                         tom.call("allocate_to_wallet_set", set_id=tom_set, wallets=wallets),
                         tom.call("cancel_order", order_id=mine["id"], account=desk)):
                assert await _code(call) == "account_not_found"
            assert await _code(tom.call("cancel_order", order_id=mine["id"])) == "order_not_found"  # his order, its account not his
            assert _funds(tess_rest, desk) == before
            drain(tom), drain(tom_follows), drain(vic)
            third = await tess.call("make_order", **order, account=desk, client_oid=fresh("desk"))
            assert (await vic.notification("order"))["id"] == third["id"]  # still a viewer of it
            await quiet(tom, "order", 0.3)
            await quiet(tom_follows, "order", 0.1)  # followed while granted: ended by the revoke

            # the desk's funds come home: tess cancels what rests on it, tom gives his set back
            for o in await tess.call("list_open_orders", account=desk):
                await tess.call("cancel_order", order_id=o["id"])
            await tom.call("deactivate_wallet_set", set_id=tom_set)
            admin.delete(f"{members}/{users['vic']}").raise_for_status()
            assert _funds(tess_rest, desk)["allocated"] == [] or all(b == "0" for _, b, _ in _funds(tess_rest, desk)["allocated"])


# --- conditional orders: a viewer places none; legs and children are their owner's ---------------------------------
async def test_a_viewer_places_no_conditional_order_oco_or_bracket(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with connect(server, tokens["vic"]) as vic, connect(server, tokens["tess"]) as tess:
        order = await resting_params(tess)
        low, high = order["limit"], f"{Decimal(order['limit']) * 3:.2f}"
        base = {k: v for k, v in order.items() if k not in ("type", "limit")}
        calls = [
            ("make_order", "/xwrap/v1/orders/new", {**base, "side": "sell", "type": "stop-market", "stop_price": low}),
            ("make_order", "/xwrap/v1/orders/new", {**base, "type": "trailing-stop", "trailing_delta": "1%"}),
            ("make_order", "/xwrap/v1/orders/new", {**order, "take_profit": {"limit": high},
                                                     "stop_loss": {"stop_price": f"{Decimal(low) / 2:.2f}"}}),
            ("make_oco", "/xwrap/v1/orders/oco", {**base, "limit": low, "stop_price": high}),
        ]
        with http(server, tokens["vic"]) as rest:
            for method, path, params in calls:
                assert await _code(vic.call(method, **params, client_oid=fresh("vic"))) == "forbidden", (method, params)
                r = rest.post(path, json={**params, "client_oid": fresh("vic")})
                assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), (path, r.text)
            assert rest.get("/xwrap/v1/orders/open").json() == []


@pytest.mark.parametrize("caller", ["tom", "vic"])
async def test_another_users_oco_legs_and_bracket_children_are_not_found(
    server: ServerProcess, tokens: dict[str, str], caller: str
) -> None:
    """Tess's OCO legs and the children her filled bracket placed: by id or by client_oid, to tom or vic they do not exist."""
    async with connect(server, tokens["tess"]) as tess, connect(server, tokens[caller]) as them:
        order = await resting_params(tess)
        low, high = Decimal(order["limit"]), Decimal(order["limit"]) * 3
        key = fresh("tess-oco")
        legs = await tess.call("make_oco", exchange="demo", pair="BTC_USDT", side="buy", size="0.001", limit=f"{low:.2f}",
                               stop_price=f"{high:.2f}", client_oid=key)
        parent = await tess.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001",
                                 client_oid=fresh("tess-bracket"), take_profit={"limit": f"{high:.2f}"},
                                 stop_loss={"stop_price": f"{low:.2f}"})
        async with asyncio.timeout(10):
            while len(children := [o for o in await tess.call("list_open_orders") if o["parent_id"] == parent["id"]]) < 2:
                await asyncio.sleep(0.1)
        hers = [*legs, *children]
        before = sorted((o["id"], o["status"]) for o in await tess.call("list_open_orders"))
        refused = "order_not_found" if caller == "tom" else "forbidden"  # a viewer cancels nothing at all
        with http(server, tokens[caller]) as rest:
            for o in hers:
                assert await _code(them.call("cancel_order", order_id=o["id"])) == refused, o
                assert await _code(them.call("cancel_order", client_oid=o["client_order_id"])) == refused, o
                r = rest.post("/xwrap/v1/orders/cancel", json={"order_id": o["id"]})
                assert r.json()["error"]["code"] == refused, r.text
            assert not {o["id"] for o in hers} & {o["id"] for o in rest.get("/xwrap/v1/orders/open").json()}
            assert not {o["id"] for o in hers} & {o["id"] for o in rest.get("/xwrap/v1/orders/recent?include_open=true").json()}
        assert sorted((o["id"], o["status"]) for o in await tess.call("list_open_orders")) == before
        for first in (legs[0], children[0]):  # each cancels its list
            await tess.call("cancel_order", order_id=first["id"])
        assert not {o["id"] for o in hers} & {o["id"] for o in await tess.call("list_open_orders")}
