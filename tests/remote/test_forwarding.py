"""Forwarded Api calls (api/forwarding.py) in one process over `MemoryRequests`, and the raw subjects on a real NATS.

The replica's `Forwarder` and the gateway process's `CallResponder` around a real `Api`: an answer comes
back as the same JSON bytes one process would encode, an error with the same code, message, statuses
and data; a repeat of a key answers what the first call answered (per user); nobody serving, or a
responder whose gateway stepped down, is `gateway_unavailable` after the wait.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire import metrics
from coinwire.api.context import CallContext
from coinwire.api.forwarding import (
    CallResponder,
    Forwarder,
    RemoteAccounts,
    RemoteError,
    call_subject,
)
from coinwire.api.guard import principal_of
from coinwire.api.methods import Api
from coinwire.api.notifier import Notifier
from coinwire.api.route_forwarding import REQUEST_BYTES, GatewayRoutesForwarder, RouteRunner
from coinwire.auth.abilities import Principal
from coinwire.bus import MemoryBus
from coinwire.bus.requests import MemoryRequests, NatsRequests, NoResponder
from coinwire.core.accounts import Account
from coinwire.core.errors import CoinwireError, NotReady
from coinwire.messages import Message
from coinwire.services.accounts import AccountBook
from tests.conftest import NATS_URL, require_service

ALICE = Principal(1, "alice", "trader", "free")
BOB = Principal(2, "bob", "trader", "free")
_encode = msgspec.json.Encoder().encode


class Pair:
    def __init__(self, wait: float = 0.5) -> None:
        self.bus = MemoryBus()
        self.requests = MemoryRequests()
        self.api = Api(None, Notifier(self.bus), None)  # type: ignore[arg-type]  # echo and echo_notify need only the notifier
        self.book = AccountBook()
        self.lost: str | None = None
        self.seqs = {7: 42}
        self.responder = CallResponder(self.api, self.requests, ["demo"], lambda: self.lost, self.book,
                                       lambda a: self.seqs.get(a, 0))
        self.forwarder = Forwarder(self.requests, ["demo"], wait)


def ctx(principal: Principal | None, key: str | None = None) -> CallContext:
    made = CallContext("http", principal=principal)
    made.idempotency_key = key
    return made


async def test_an_answer_is_the_bytes_one_process_would_encode() -> None:
    pair = Pair()
    await pair.responder.start()
    params: dict[str, Any] = {"price": Decimal("0.10"), "size": 3, "nested": {"a": [1, Decimal("2.5")]}, "text": "é"}
    here = _encode(await pair.api.call("echo", dict(params), ctx(ALICE)))
    there = await pair.forwarder.call("echo", dict(params), ctx(ALICE))
    assert isinstance(there, msgspec.Raw) and bytes(there) == here
    await pair.responder.close()


async def test_an_error_keeps_its_code_message_statuses_and_data() -> None:
    pair = Pair()
    await pair.responder.start()
    big = {"blob": "x" * 5000}
    with pytest.raises(CoinwireError) as local:
        await pair.api.call("echo_notify", dict(big), ctx(ALICE))
    with pytest.raises(RemoteError) as remote:
        await pair.forwarder.call("echo_notify", dict(big), ctx(ALICE))
    got, want = remote.value, local.value
    assert (got.code, got.message, got.http_status, got.rpc_code, got.to_dict()) == (
        want.code, want.message, want.http_status, want.rpc_code, want.to_dict())
    assert got.code == "payload_too_large"
    await pair.responder.close()


async def test_a_repeated_key_answers_the_first_answer_per_user() -> None:
    pair = Pair()
    await pair.responder.start()
    first = await pair.forwarder.call("echo", {"n": 1}, ctx(ALICE, "k1"))
    again = await pair.forwarder.call("echo", {"n": 2}, ctx(ALICE, "k1"))  # a retry: the kept answer, not a second run
    other = await pair.forwarder.call("echo", {"n": 3}, ctx(BOB, "k1"))  # another user's key is another key
    fresh = await pair.forwarder.call("echo", {"n": 4}, ctx(ALICE))  # no key: each call its own
    assert [msgspec.json.decode(bytes(r)) for r in (first, again, other, fresh)] == [{"n": 1}, {"n": 1}, {"n": 3}, {"n": 4}]
    elsewhere = await pair.forwarder.call("echo_notify", {"n": 5}, ctx(ALICE, "k1"))  # the same key on another method
    assert msgspec.json.decode(bytes(elsewhere)) == {"status": "ok", "receivers": 0}
    await pair.responder.close()


async def test_nobody_serving_or_a_stepped_down_gateway_is_gateway_unavailable_after_the_wait() -> None:
    pair = Pair(wait=0.4)
    unavailable, retries = metrics.FORWARDED.labels("gateway_unavailable"), metrics.FORWARD_RETRIES.labels()
    before = (sum(unavailable.counts), retries.value)
    started = time.monotonic()
    with pytest.raises(NotReady) as nobody:
        await pair.forwarder.call("echo", {}, ctx(ALICE))
    assert nobody.value.code == "gateway_unavailable" and nobody.value.http_status == 503
    assert 0.35 <= time.monotonic() - started < 1.5
    assert sum(unavailable.counts) == before[0] + 1 and retries.value >= before[1] + 3  # a try every 0.1 s
    await pair.responder.start()
    assert msgspec.json.decode(bytes(await pair.forwarder.call("echo", {"up": True}, ctx(ALICE)))) == {"up": True}
    pair.lost = "lease gateway:demo lost: taken"  # stepped down: it answers nothing more, and stops serving
    with pytest.raises(NotReady, match="no gateway answered"):
        await pair.forwarder.call("echo", {}, ctx(ALICE))
    await asyncio.sleep(0.4)
    with pytest.raises(NoResponder):
        await pair.requests.request("gwapi._", b"{}", 0.1)
    pair.lost = None  # it took its shard back (services.gateway_leases): it serves again
    await asyncio.sleep(0.4)
    assert msgspec.json.decode(bytes(await pair.forwarder.call("echo", {"back": True}, ctx(ALICE)))) == {"back": True}
    await pair.responder.close()
    with pytest.raises(NoResponder):  # closed: the watch is gone and serves nothing again
        await pair.requests.request("gwapi._", b"{}", 0.1)


async def _until(check: Any) -> None:
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")


async def test_the_replica_loads_the_gateways_book_by_pages_then_follows_its_changes_and_asks_seqs() -> None:
    pair = Pair()
    pair.book.load([Account(id=i, exchange="demo", kind="paper", name=f"a{i}", owner_id=1, created_at=0) for i in (7, 9, 12)],
                   [(7, 2, "view")])
    pair.responder.page_size = 2  # two pages
    await pair.responder.start()
    mirror = AccountBook()
    remote = RemoteAccounts(pair.forwarder, pair.requests, mirror)
    await remote.start()
    await _until(lambda: remote.loaded)
    assert sorted(mirror.accounts) == [7, 9, 12] and mirror.personal(1) == {7, 9, 12}
    assert mirror.may(7, 2, False, "view") and not mirror.may(7, 2, False, "trade") and not mirror.may(9, 2, False, "view")
    # a new account and a grant, published as they happen (only what changed)
    pair.book.add(Account(id=13, exchange="demo", kind="paper", name="bob", owner_id=2, created_at=0))
    pair.book.set_member(9, 2, "trade")
    await _until(lambda: 13 in mirror.accounts and mirror.may(9, 2, False, "trade"))
    assert mirror.personal(2) == {7, 9, 13}
    pair.book.set_member(7, 2, None)  # taken back
    await _until(lambda: not mirror.may(7, 2, False, "view"))
    assert mirror.personal(2) == {9, 13}
    assert await pair.forwarder.latest_seq(7) == 42 and await pair.forwarder.latest_seq(99) == 0
    # the gateway's process started again: the replica loads the book anew
    await pair.responder.close()
    pair.book.load([Account(id=i, exchange="demo", kind="paper", name=f"a{i}", owner_id=3, created_at=0) for i in (7, 20)])
    await pair.responder.start()
    await _until(lambda: sorted(mirror.accounts) == [7, 20])
    assert mirror.personal(3) == {7, 20} and mirror.personal(2) == set()
    await remote.close()
    await pair.responder.close()


def test_calls_naming_a_configured_exchange_go_to_its_subject() -> None:
    assert call_subject({"exchange": "demo", "pair": "BTC_USDT"}, {"demo"}) == "gwapi.demo"
    assert call_subject({"exchange": "other"}, {"demo"}) == "gwapi._"
    assert call_subject({"exchange": 5}, {"demo"}) == call_subject(None, {"demo"}) == "gwapi._"


@pytest.mark.services
async def test_on_nats_requests_are_answered_once_and_typed_subscribers_never_see_them() -> None:
    from coinwire.bus.nats import NatsBus

    parts = urlsplit(NATS_URL)
    require_service("nats", parts.hostname or "127.0.0.1", parts.port or 4222)
    replica, gateway = NatsBus(NATS_URL, "t28remfwd"), NatsBus(NATS_URL, "t28remfwd")
    await replica.start()
    await gateway.start()
    try:
        seen: list[tuple[str, Message]] = []

        async def typed(subject: str, message: Message) -> None:
            seen.append((subject, message))

        await gateway.subscribe(">", typed)
        runs: list[bytes] = []

        async def answer(data: bytes) -> bytes:
            runs.append(data)
            return data[::-1]

        served = await NatsRequests(gateway).serve("gwapi._", answer, "gwapi")
        second = await NatsRequests(gateway).serve("gwapi._", answer, "gwapi")  # a queue group: one of them answers
        asker = NatsRequests(replica)
        assert await asker.request("gwapi._", b"abc", 2.0) == b"cba"
        await NatsRequests(replica).emit("gwevents.accounts", b"not a typed message")
        await asyncio.sleep(0.2)
        assert runs == [b"abc"] and seen == []
        await served.stop()
        await second.stop()
        with pytest.raises(NoResponder):
            await asker.request("gwapi._", b"abc", 1.0)
    finally:
        await gateway.delete_stream()
        await replica.close()
        await gateway.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([ALICE, BOB]), st.sampled_from(["k1", "k2", None]), st.integers(0, 99)),
                min_size=1, max_size=12))
def test_each_users_key_answers_its_first_call_whatever_came_between(calls: list[tuple[Principal, str | None, int]]) -> None:
    async def run() -> None:
        pair = Pair()
        await pair.responder.start()
        first: dict[tuple[int, str], int] = {}
        for principal, key, n in calls:
            got = msgspec.json.decode(bytes(await pair.forwarder.call("echo", {"n": n}, ctx(principal, key))))
            if key is None:
                assert got == {"n": n}  # no key: every call runs
            else:
                assert got == {"n": first.setdefault((principal.user_id, key), n)}
        await pair.responder.close()

    asyncio.run(run())


class _GuardLeft:
    """What the replica's guard leaves in the scope of a request it let through: the caller and the route's template."""

    def __init__(self, app: Any, principal: Principal | None) -> None:
        self.app, self.principal = app, principal

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("state", {}).update(principal=self.principal, route=scope["path"])
        await self.app(scope, receive, send)


def _gateway_routes() -> tuple[FastAPI, list[str]]:
    """The routes as the gateway's process has them: who called, with what, a big answer, a bug."""
    app, runs = FastAPI(), []

    @app.api_route("/runs", methods=["GET", "POST"])
    async def the_runs(request: Request) -> dict[str, Any]:
        runs.append(request.method)
        principal = principal_of(request)
        return {"served": "gateway", "caller": principal.username if principal else None, "query": dict(request.query_params),
                "body": (await request.body()).decode(), "authorization": request.headers.get("authorization"),
                "client": request.client.host if request.client else None, "mine": request.headers.get("x-mine")}

    @app.get("/api/v1/logs")
    async def big() -> PlainTextResponse:
        return PlainTextResponse("".join(chr(65 + i % 26) for i in range(700_000)))

    @app.get("/runs/boom")
    async def boom() -> None:
        raise RuntimeError("a bug in a route")

    return app, runs


async def test_a_replica_sends_gateway_routes_to_the_gateways_process_over_nats_and_serves_the_rest() -> None:
    """The whole request over the bus (the caller, not the token), the answer back as it was, in parts when big."""
    from coinwire.bus.nats import NatsBus

    parts = urlsplit(NATS_URL)
    require_service("nats", parts.hostname or "127.0.0.1", parts.port or 4222)
    namespace = f"t28routes{time.monotonic_ns() % 10**9}"
    replica_bus, gateway_bus = NatsBus(NATS_URL, namespace), NatsBus(NATS_URL, namespace)
    await replica_bus.start()
    await gateway_bus.start()
    routes, runs = _gateway_routes()
    api = Api(None, Notifier(gateway_bus), None)  # type: ignore[arg-type]  # echo needs nothing more
    responder = CallResponder(api, NatsRequests(gateway_bus), ["demo"], lambda: None, AccountBook(), lambda a: 0,
                              routes=RouteRunner(routes))
    forwarder = Forwarder(NatsRequests(replica_bus), ["demo"], 1.0)
    replica = FastAPI()

    @replica.get("/runs")
    async def wrong() -> dict[str, str]:
        return {"wrong": "the replica's own empty engine"}

    @replica.get("/api/v1/ohlcv/{exchange}/{symbol}")
    async def ohlcv(exchange: str, symbol: str) -> dict[str, str]:
        return {"served": "here"}

    replica.add_middleware(GatewayRoutesForwarder, forwarder=forwarder)
    try:
        await responder.start()
        await forwarder.start()
        transport = httpx.ASGITransport(app=_GuardLeft(replica, ALICE))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"Authorization": "Bearer secret"}) as http:
            got = (await http.get("/runs", params={"status": "running"}, headers={"X-Mine": "1"})).json()
            assert got == {"served": "gateway", "caller": "alice", "query": {"status": "running"}, "body": "",
                           "authorization": None, "client": "127.0.0.1", "mine": "1"}
            posted = await http.post("/runs", content=b'{"a": 1}', headers={"Idempotency-Key": "k1"})
            again = await http.post("/runs", content=b'{"a": 2}', headers={"Idempotency-Key": "k1"})  # a retry: run once
            assert posted.json()["body"] == '{"a": 1}' and again.json() == posted.json() and runs.count("POST") == 1
            big = await http.get("/api/v1/logs")  # 700 kB: in three parts over NATS, whole here
            assert big.status_code == 200 and big.text == "".join(chr(65 + i % 26) for i in range(700_000))
            assert big.headers["content-type"].startswith("text/plain") and int(big.headers["content-length"]) == 700_000
            bug = await http.get("/runs/boom")
            assert (bug.status_code, bug.json()["error"]["code"]) == (500, "internal_error")
            too_big = await http.post("/runs", content=b"x" * (REQUEST_BYTES + 1))
            assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "forwarded_body_too_large")
            assert (await http.get("/api/v1/ohlcv/demo/BTC_USDT")).json() == {"served": "here"}  # the replica's own
            # a forwarded call's big result comes in parts too
            echoed = await forwarder.call("echo", {"blob": "y" * 600_000}, ctx(ALICE))
            assert msgspec.json.decode(bytes(echoed)) == {"blob": "y" * 600_000}
            # two users' big answers at once under the same Idempotency-Key: each gets their own, whole
            hers, his = await asyncio.gather(forwarder.call("echo", {"blob": "a" * 600_000}, ctx(ALICE, "same")),
                                             forwarder.call("echo", {"blob": "b" * 600_000}, ctx(BOB, "same")))
            assert (msgspec.json.decode(bytes(hers)), msgspec.json.decode(bytes(his))) == ({"blob": "a" * 600_000},
                                                                                            {"blob": "b" * 600_000})
            await responder.close()  # nobody serves: gateway_unavailable after the wait, never a 500
            down = await http.get("/runs")
            assert (down.status_code, down.json()["error"]["code"]) == (503, "gateway_unavailable")
    finally:
        await forwarder.close()
        await responder.close()
        await gateway_bus.delete_stream()
        await replica_bus.close()
        await gateway_bus.close()
