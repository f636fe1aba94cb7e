"""External accounts and their signed trade webhooks, end to end against a real server.

Two traders (ann, ben), a viewer (val) and the admin. ann opens an external account with
opening holdings and gets its secret once; trades arrive in kripto's Trade shape and in
coinwire's own fill shape, signed; every refusal (signature, unknown account, each malformed
field, an unsettled trade, a trade taking more than held, an oversized body) is checked for its
status and stable code and for leaving the balances as they were; a duplicate id, sequential or
concurrent, is applied once; a restart (SQLite and PostgreSQL) keeps the secret and still
recognises every trade id applied before.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.core.external_trades import sign
from tests.api.signed_in import code_of, ok, refused, rpc
from tests.server import ServerProcess

# the kripto seed's Trade, as its README shows it
KRIPTO = {"id": "aa368788-bb4f-40c0-b80f-afcfdaf18574", "side": "buy", "productId": "BTC-GBP", "funds": "9.95024875",
          "settled": True, "createdAt": "2020-05-19T19:39:00", "fillFees": "0.049751102976", "filledSize": "0.00125952",
          "executedValue": "9.9502205952"}
OPENING = {"GBP": "100", "USDT": "500"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("webhooks")))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> dict[str, dict[str, Any]]:
    tokens = server.traders("ann", "ben")
    tokens.update(server.users({"val": "viewer"}))
    tokens["admin"] = server.token
    with server.client() as admin:
        ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
    return {name: {"token": token, "id": ids[name]} for name, token in tokens.items()}


def client(server: ServerProcess, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.http, timeout=10, headers=headers)


def body_of(trade: dict[str, Any]) -> bytes:
    return json.dumps(trade).encode()


def post(server: ServerProcess, account_id: int, body: bytes, secret: str | None, signature: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None or secret is not None:
        headers["X-Coinwire-Signature"] = signature if signature is not None else sign(str(secret), body)
    return httpx.post(f"{server.http}/api/v1/webhooks/{account_id}", content=body, headers=headers, timeout=10)


def holdings(server: ServerProcess, token: str, account_id: int) -> dict[str, Decimal]:
    with client(server, token) as rest:
        balances = ok(rest.get(f"/api/v1/accounts/{account_id}/balances"))
    return {w["currency"]: Decimal(w["balance"]) for w in balances["total"] if Decimal(w["balance"])}


@pytest.fixture(scope="module")
def hopper(server: ServerProcess, users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """ann's external account (cryptohopper), opened with OPENING; its view with the secret it was answered."""
    with client(server, users["ann"]["token"]) as ann:
        opened = ok(ann.post("/api/v1/accounts", json={"exchange": "cryptohopper", "kind": "external", "name": "hopper",
                                                        "holdings": OPENING}), 201)
    return dict(opened)


def test_opening_answers_the_secret_once(server: ServerProcess, users: dict[str, dict[str, Any]], hopper: dict[str, Any]) -> None:
    assert hopper["kind"] == "external" and hopper["exchange"] == "cryptohopper" and hopper["role"] == "owner"
    assert hopper["webhook_secret"].startswith("whsec_") and len(hopper["webhook_secret"]) > 40
    assert hopper["webhook_url"] == f"/api/v1/webhooks/{hopper['id']}"
    with client(server, users["ann"]["token"]) as ann:
        again = ok(ann.get(f"/api/v1/accounts/{hopper['id']}"))
        listed = [a for a in ok(ann.get("/api/v1/accounts")) if a["id"] == hopper["id"]]
    assert "webhook_secret" not in again and listed and "webhook_secret" not in listed[0]
    assert holdings(server, users["ann"]["token"], hopper["id"]) == {c: Decimal(v) for c, v in OPENING.items()}


def test_opening_refusals_write_nothing(server: ServerProcess, users: dict[str, dict[str, Any]]) -> None:
    with client(server, users["ben"]["token"]) as ben:
        before = ok(ben.get("/api/v1/accounts"))
        refused(ben.post("/api/v1/accounts", json={"exchange": "demo", "kind": "external", "name": "x"}), 400, "invalid_exchange_label")
        refused(ben.post("/api/v1/accounts", json={"exchange": "a b", "kind": "external", "name": "x"}), 400, "invalid_exchange_label")
        refused(ben.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": "x", "holdings": {"BTC": "1"}}),
                400, "invalid_holdings")
        for bad in ({"BTC": "-1"}, {"BTC": "0"}, {"BTC": "abc"}, {"BTC": 1.5}, {"B-C": "1"}, {"BTC": "0.0000000000000000001"}):
            refused(ben.post("/api/v1/accounts", json={"exchange": "bot", "kind": "external", "name": "x", "holdings": bad}),
                    400, "invalid_holdings")
        assert ok(ben.get("/api/v1/accounts")) == before


def test_kripto_trade_applied_then_duplicate(server: ServerProcess, users: dict[str, dict[str, Any]], hopper: dict[str, Any]) -> None:
    account, secret, token = hopper["id"], hopper["webhook_secret"], users["ann"]["token"]
    answer = ok(post(server, account, body_of(KRIPTO), secret), 201)
    assert answer["duplicate"] is False and answer["trade_id"] == KRIPTO["id"]
    paid = Decimal("9.9502205952") + Decimal("0.049751102976")
    expected = {"GBP": Decimal(100) - paid, "USDT": Decimal(500), "BTC": Decimal("0.00125952")}
    assert holdings(server, token, account) == expected
    assert answer["applied"] == {"BTC": "0.00125952", "GBP": str(-paid)}
    again = ok(post(server, account, body_of(KRIPTO), secret), 200)
    assert again["duplicate"] is True
    changed = dict(KRIPTO, filledSize="5")  # the same id with other content: still the trade applied once
    assert ok(post(server, account, body_of(changed), secret), 200)["duplicate"] is True
    assert holdings(server, token, account) == expected
    with client(server, token) as ann:
        trades = ok(ann.get(f"/api/v1/accounts/{account}/webhook-trades"))["trades"]
    assert [(t["trade_id"], t["shape"], t["size"], t["notional"], t["fee"]) for t in trades if t["trade_id"] == KRIPTO["id"]] == [
        (KRIPTO["id"], "kripto", "0.00125952", "9.9502205952", "0.049751102976")]


def test_own_shape_trade_and_transfers(server: ServerProcess, users: dict[str, dict[str, Any]], hopper: dict[str, Any]) -> None:
    account, secret, token = hopper["id"], hopper["webhook_secret"], users["ann"]["token"]
    before = holdings(server, token, account)
    ok(post(server, account, body_of({"id": "dep-1", "kind": "deposit", "currency": "eth", "amount": "2.5",
                                      "timestamp": "2026-12-01T10:00:00Z"}), secret), 201)
    ok(post(server, account, body_of({"id": 9001, "side": "sell", "symbol": "ETH/USDT", "exec_amount": "0.5",
                                      "exec_price": "3000.1", "fee": "0.3", "fee_currency": "USDT",
                                      "timestamp": 1_764_583_200_000_000_000}), secret), 201)
    ok(post(server, account, body_of({"id": "wd-1", "kind": "withdrawal", "currency": "ETH", "amount": "1",
                                      "timestamp": "2026-12-01T11:00:00+01:00"}), secret), 201)
    after = holdings(server, token, account)
    assert after["ETH"] == Decimal("2.5") - Decimal("0.5") - Decimal(1)
    assert after["USDT"] == before["USDT"] + Decimal("1500.05") - Decimal("0.3")
    assert {c: v for c, v in after.items() if c not in ("ETH", "USDT")} == {c: v for c, v in before.items() if c != "USDT"}


def test_webhook_trades_are_the_portfolios_volume(server: ServerProcess, users: dict[str, dict[str, Any]]) -> None:
    """A trade's notional is volume of the account's candles and its owner's total; a late one counts in the forming bucket,
    one stamped ahead of its receipt at its receipt."""
    with client(server, users["ben"]["token"]) as ben:
        opened = ok(ben.post("/api/v1/accounts", json={"exchange": "bot-volume", "kind": "external", "name": "volume",
                                                        "holdings": {"USDT": "5000"}}), 201)
    account, secret = opened["id"], opened["webhook_secret"]
    now_ns = time.time_ns()
    ok(post(server, account, body_of({"id": "vol-now", "side": "buy", "symbol": "ETH/USDT", "exec_amount": "0.1",
                                      "exec_price": "3000", "timestamp": now_ns}), secret), 201)  # 300 USDT now
    ok(post(server, account, body_of(dict(KRIPTO, id="vol-late", productId="ETH-USDT", funds="250", filledSize="0.1",
                                          executedValue="250", fillFees="0")), secret), 201)  # 250 USDT, stamped in 2020
    ok(post(server, account, body_of({"id": "vol-dep", "kind": "deposit", "currency": "USDT", "amount": "77",
                                      "timestamp": now_ns}), secret), 201)  # a transfer: no volume
    ok(post(server, account, body_of({"id": "vol-ahead", "side": "sell", "symbol": "ETH/USDT", "exec_amount": "0.05",
                                      "exec_price": "2000", "timestamp": now_ns + 86_400 * 10**9}), secret), 201)
    # 100 USDT stamped a day ahead (the sender's clock): counted at its receipt, opening no future bucket
    since = now_ns // 1_000_000_000 - 3600
    candles: list[list[float]] = []
    totals: list[list[float]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the tracker's next pass (every second) picks the trades up
        with client(server, users["ben"]["token"]) as ben:
            candles = ok(ben.get(f"/api/v1/portfolio/account/{account}/ohlcv", params={"timeframe": "15m", "start": since}))
            totals = ok(ben.get(f"/api/v1/portfolio/user/{users['ben']['id']}/ohlcv", params={"timeframe": "15m", "start": since}))
        if sum(Decimal(str(c[5])) for c in candles) >= 650:
            break
        time.sleep(0.25)
    assert sum(Decimal(str(c[5])) for c in candles) == Decimal(650)  # USDT is pegged to ben's USD
    assert sum(Decimal(str(c[5])) for c in totals) >= Decimal(650)
    with client(server, users["ben"]["token"]) as ben:  # the late trade rewrote no past bucket
        assert ok(ben.get(f"/api/v1/portfolio/account/{account}/ohlcv",
                          params={"timeframe": "1d", "start": "2020-05-01", "end": "2020-06-01"})) == []
    with client(server, users["ann"]["token"]) as ann:
        refused(ann.get(f"/api/v1/portfolio/account/{account}/ohlcv"), 404, "not_found")


def test_concurrent_deliveries_of_one_id_apply_once(server: ServerProcess, users: dict[str, dict[str, Any]],
                                                   hopper: dict[str, Any]) -> None:
    account, secret, token = hopper["id"], hopper["webhook_secret"], users["ann"]["token"]
    before = holdings(server, token, account)
    body = body_of({"id": "burst-1", "kind": "deposit", "currency": "SOL", "amount": "7", "timestamp": "2026-12-02T00:00:00Z"})

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
            answers = await asyncio.gather(*(http.post(f"/api/v1/webhooks/{account}", content=body,
                                                       headers={"X-Coinwire-Signature": sign(secret, body)}) for _ in range(12)))
        return sorted(a.status_code for a in answers)

    assert asyncio.run(burst()) == [200] * 11 + [201]
    assert holdings(server, token, account) == {**before, "SOL": Decimal(7)}


def test_signature_and_unknown_accounts_answer_alike(server: ServerProcess, users: dict[str, dict[str, Any]],
                                                     hopper: dict[str, Any]) -> None:
    account, secret, token = hopper["id"], hopper["webhook_secret"], users["ann"]["token"]
    before = holdings(server, token, account)
    body = body_of(dict(KRIPTO, id="sig-1"))
    errors = [
        refused(post(server, account, body, None), 401, "invalid_signature"),  # missing
        refused(post(server, account, body, None, signature="00" * 32), 401, "invalid_signature"),  # wrong
        refused(post(server, account, body, "whsec_another"), 401, "invalid_signature"),  # another secret
        refused(post(server, account, body + b" ", None, signature=sign(secret, body)), 401, "invalid_signature"),  # altered
        refused(post(server, 987_654_321, body, secret), 401, "invalid_signature"),  # no such account
        refused(post(server, 2**70, body, secret), 401, "invalid_signature"),
    ]
    with client(server, token) as ann:
        paper = min(a["id"] for a in ok(ann.get("/api/v1/accounts")) if a["kind"] == "paper")
    errors.append(refused(post(server, paper, body, secret), 401, "invalid_signature"))  # not external
    assert len({e["message"] for e in errors}) == 1  # nothing tells an existing account from another
    assert holdings(server, token, account) == before
    ok(post(server, account, body, secret), 201)  # refused deliveries stored nothing: the id is still new


MALFORMED_KRIPTO: list[tuple[str, Any, str]] = [
    ("id", None, "invalid_trade"), ("id", "has space", "invalid_trade"), ("id", "x" * 65, "invalid_trade"),
    ("side", "hold", "invalid_trade"), ("productId", "BTCGBP", "invalid_trade"), ("productId", "BTC-BTC", "invalid_trade"),
    ("settled", "yes", "invalid_trade"), ("settled", False, "trade_not_settled"), ("createdAt", "yesterday", "invalid_trade"),
    ("createdAt", None, "invalid_trade"), ("fillFees", "-0.1", "invalid_trade"), ("filledSize", "0", "invalid_trade"),
    ("filledSize", "1e400", "invalid_trade"), ("executedValue", "abc", "invalid_trade"), ("executedValue", True, "invalid_trade"),
    ("funds", "x", "invalid_trade"),
]
OWN = {"id": "own-bad", "side": "buy", "symbol": "BTC/USDT", "exec_amount": "0.01", "exec_price": "100", "fee": "0.01",
       "timestamp": "2026-12-01T00:00:00Z"}
MALFORMED_OWN: list[tuple[str, Any]] = [
    ("symbol", "BTC"), ("symbol", "BTC/USDT:USDT"), ("exec_amount", "-1"), ("exec_price", None), ("fee", "x"),
    ("fee_currency", "BTC"), ("kind", "airdrop"), ("timestamp", "2026-13-01"), ("side", None),
]


def test_each_malformed_field_is_named_and_writes_nothing(server: ServerProcess, users: dict[str, dict[str, Any]],
                                                          hopper: dict[str, Any]) -> None:
    account, secret, token = hopper["id"], hopper["webhook_secret"], users["ann"]["token"]
    before = holdings(server, token, account)
    for field, value, code in MALFORMED_KRIPTO:
        trade = dict(KRIPTO, id="bad-1")
        trade[field] = value
        error = refused(post(server, account, body_of(trade), secret), 400, code)
        assert error["field"] == field, (field, error)
    for field, value in MALFORMED_OWN:
        error = refused(post(server, account, body_of(dict(OWN, **{field: value})), secret), 400, "invalid_trade")
        assert error["field"] == field, (field, error)
    for transfer in ({"currency": "E T H"}, {"amount": "0"}):
        error = refused(post(server, account, body_of({"id": "bad-2", "kind": "deposit", "currency": "ETH", "amount": "1",
                                                       "timestamp": "2026-12-01T00:00:00Z", **transfer}), secret),
                        400, "invalid_trade")
        assert error["field"] == next(iter(transfer))
    for raw in (b"not json", b"[1, 2]", b""):
        assert refused(post(server, account, raw, secret), 400, "invalid_trade")["field"] == "body"
    refused(post(server, account, b" " * 20_000, secret), 413, "payload_too_large")
    assert holdings(server, token, account) == before
    ok(post(server, account, body_of(dict(KRIPTO, id="bad-1")), secret), 201)  # nothing of the refusals was stored


def test_a_trade_taking_more_than_held_is_refused_whole(server: ServerProcess, users: dict[str, dict[str, Any]],
                                                        hopper: dict[str, Any]) -> None:
    account, secret, token = hopper["id"], hopper["webhook_secret"], users["ann"]["token"]
    before = holdings(server, token, account)
    sell = body_of({"id": "short-1", "side": "sell", "symbol": "DOGE/USDT", "exec_amount": "1000", "exec_price": "0.1",
                    "timestamp": "2026-12-03T00:00:00Z"})
    refused(post(server, account, sell, secret), 400, "insufficient_funds")
    assert holdings(server, token, account) == before
    ok(post(server, account, body_of({"id": "doge-in", "kind": "deposit", "currency": "DOGE", "amount": "1000",
                                      "timestamp": "2026-12-03T00:00:00Z"}), secret), 201)
    ok(post(server, account, sell, secret), 201)  # the refused id was never stored
    assert holdings(server, token, account) == {**before, "USDT": before["USDT"] + 100}


def test_no_order_is_placed_on_an_external_account(server: ServerProcess, users: dict[str, dict[str, Any]],
                                                   hopper: dict[str, Any]) -> None:
    async def attempt() -> tuple[str, str]:
        async with rpc(server, users["ann"]["token"]) as ann:
            on_demo = await code_of(ann, "make_order", exchange="demo", symbol="BTC/USDT", side="buy", type="market",
                                    size="0.001", account=hopper["id"])
            on_label = await code_of(ann, "make_order", exchange="cryptohopper", symbol="BTC/USDT", side="buy",
                                     type="market", size="0.001", account=hopper["id"])
        return on_demo, on_label

    on_demo, on_label = asyncio.run(attempt())
    assert on_demo == "account_not_tradable"
    assert on_label == "unknown_exchange"  # its label is no venue: the exchange is unknown before the account is looked at


def test_other_users_and_viewers(server: ServerProcess, users: dict[str, dict[str, Any]], hopper: dict[str, Any]) -> None:
    """ben sees nothing of ann's external account and cannot post to it; val, granted view, reads its trades, never rotates."""
    account = hopper["id"]
    with client(server, users["ben"]["token"]) as ben:
        refused(ben.get(f"/api/v1/accounts/{account}"), 404, "account_not_found")
        refused(ben.get(f"/api/v1/accounts/{account}/webhook-trades"), 404, "account_not_found")
        refused(ben.post(f"/api/v1/accounts/{account}/webhook-secret"), 404, "account_not_found")
        assert account not in [a["id"] for a in ok(ben.get("/api/v1/accounts"))]
        ben_own = ok(ben.post("/api/v1/accounts", json={"exchange": "bot", "kind": "external", "name": "ben's"}), 201)
    refused(post(server, account, body_of(dict(KRIPTO, id="ben-1")), ben_own["webhook_secret"]), 401, "invalid_signature")
    with client(server) as anonymous:
        refused(anonymous.post(f"/api/v1/accounts/{account}/webhook-secret"), 401, "unauthenticated")
    with server.client() as admin:
        ok(admin.put(f"/api/v1/accounts/{account}/members/{users['val']['id']}", json={"role": "view"}))
        ok(admin.put(f"/api/v1/accounts/{account}/members/{users['ben']['id']}", json={"role": "view"}))
    with client(server, users["val"]["token"]) as val:
        assert ok(val.get(f"/api/v1/accounts/{account}/webhook-trades"))["trades"]
        refused(val.post(f"/api/v1/accounts/{account}/webhook-secret"), 403, "forbidden")
    with client(server, users["ben"]["token"]) as ben:
        assert ok(ben.get(f"/api/v1/accounts/{account}/webhook-trades"))["trades"]
        refused(ben.post(f"/api/v1/accounts/{account}/webhook-secret"), 404, "account_not_found")  # view is no trade right
        refused(ben.post(f"/api/v1/accounts/{ben_own['id']}/webhook-trades"), 405, "method_not_allowed")
    with server.client() as admin:
        ok(admin.delete(f"/api/v1/accounts/{account}/members/{users['ben']['id']}"))


def test_rotating_the_secret(server: ServerProcess, users: dict[str, dict[str, Any]], hopper: dict[str, Any]) -> None:
    account, old = hopper["id"], hopper["webhook_secret"]
    with client(server, users["ann"]["token"]) as ann:
        refused(ann.post(f"/api/v1/accounts/{account}/webhook-secret", content=b'{"secret": "mine"}'), 400, "invalid_params")
        ok(post(server, account, body_of(dict(KRIPTO, id="before-rotate")), old), 201)  # a refused rotation changed nothing
        rotated = ok(ann.post(f"/api/v1/accounts/{account}/webhook-secret"))
        paper = min(a["id"] for a in ok(ann.get("/api/v1/accounts")) if a["kind"] == "paper")
        refused(ann.post(f"/api/v1/accounts/{paper}/webhook-secret"), 400, "not_external")
    new = rotated["webhook_secret"]
    assert new != old and new.startswith("whsec_")
    body = body_of(dict(KRIPTO, id="after-rotate"))
    refused(post(server, account, body, old), 401, "invalid_signature")
    ok(post(server, account, body, new), 201)
    hopper["webhook_secret"] = new


@pytest.fixture(params=["sqlite", "postgresql"])
def restart_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    from tests.conftest import postgres_database

    with postgres_database() as url:
        yield {"COINWIRE_STORE_URL": url}


def test_a_restart_keeps_the_secret_and_every_applied_id(tmp_path: Path, restart_env: dict[str, str]) -> None:
    proc = ServerProcess(tmp_path, env=restart_env)
    proc.start()
    try:
        token = proc.traders("cid")["cid"]
        with client(proc, token) as cid:
            opened = ok(cid.post("/api/v1/accounts", json={"exchange": "hopper", "kind": "external", "name": "h",
                                                           "holdings": {"GBP": "50"}}), 201)
        account, secret = opened["id"], opened["webhook_secret"]
        ok(post(proc, account, body_of(KRIPTO), secret), 201)
        expected = holdings(proc, token, account)
        proc.stop()
        proc.start()
        token = proc.login("cid", "cid-password")["access_token"]
        assert ok(post(proc, account, body_of(KRIPTO), secret), 200)["duplicate"] is True
        assert holdings(proc, token, account) == expected
        proc.kill()  # no shutdown: what was acknowledged is what survives
        proc.start()
        token = proc.login("cid", "cid-password")["access_token"]
        assert ok(post(proc, account, body_of(KRIPTO), secret), 200)["duplicate"] is True
        ok(post(proc, account, body_of(dict(KRIPTO, id="second")), secret), 201)
        proc.kill()
        proc.start()
        token = proc.login("cid", "cid-password")["access_token"]
        assert ok(post(proc, account, body_of(dict(KRIPTO, id="second")), secret), 200)["duplicate"] is True
        assert holdings(proc, token, account)["BTC"] == 2 * Decimal("0.00125952")
    finally:
        proc.stop()
