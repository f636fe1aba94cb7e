"""Every xWrap REST route, /uri_map, /openapi.json, /metrics and the health checks, over real HTTP.

One real `coinwire serve` process per module (tests/api/conftest.py); every request goes
through httpx, so routing, parameter merging, status codes and JSON shapes are all real.
Shapes are checked against the seed's xWrap docs (sections 1.3 and 1.4).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coinwire.api.rest import XWRAP_ROUTES
from tests.server import ServerProcess

EX = "demo"
PAIRS = ("BTC_USDT", "ETH_USDT", "SOL_USDT")
SEED_ORDER_FIELDS = {
    "id", "created_at", "wallet_set_id", "exchange", "client_order_id", "run_id", "type", "pair", "size", "side",
    "limit", "cancel_after", "status", "done_reason", "done_at", "exchange_at", "last_updated_at", "filled_size",
    "avg_price",
}
SEED_WALLET_FIELDS = {"currency", "exchange", "id", "balance", "available", "hold", "present_value"}
SEED_WALLET_SET_FIELDS = {"timestamp", "description", "id", "wallets", "type"}


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def oid() -> str:
    return uuid.uuid4().hex


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def expect_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The documented error shape: `{"error": {"code", "message", ...}}` with the given HTTP status."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def best(http: httpx.Client, pair: str = "BTC_USDT") -> tuple[Decimal, Decimal]:
    quote = ok(http.get(f"/xwrap/v1/{EX}/pricing"))[pair]
    return Decimal(quote["bid"]), Decimal(quote["ask"])


def far_below(http: httpx.Client, factor: str = "0.5") -> str:
    """A buy limit that rests far from the market, so it never fills during a test."""
    bid, _ = best(http)
    return str((bid * Decimal(factor)).quantize(Decimal("0.01")))


def new_order(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/xwrap/v1/orders/new", json={"exchange": EX, "pair": "BTC_USDT", "client_oid": oid(), **body})


def state(http: httpx.Client) -> tuple[list[tuple[str, str, str, str]], list[int], list[str]]:
    """What a failed command must leave alone: every exchange wallet, the open orders, the wallet sets."""
    total = ok(http.get("/xwrap/v1/wallets/total"))
    wallets = [(w["exchange"], w["currency"], w["balance"], w["hold"]) for w in total["wallets"]]
    open_ids = [o["id"] for o in ok(http.get("/xwrap/v1/orders/open"))]
    sets = sorted(ok(http.get("/xwrap/v1/wallets/sets")))
    return wallets, open_ids, sets


def wallet(wallet_set: dict[str, Any], currency: str, exchange: str = EX) -> dict[str, Any]:
    return next(w for w in wallet_set["wallets"] if w["currency"] == currency and w["exchange"] == exchange)


def check_wallet_set(view: dict[str, Any]) -> None:
    assert SEED_WALLET_SET_FIELDS <= set(view), view
    for w in view["wallets"]:
        assert SEED_WALLET_FIELDS <= set(w), w
        assert Decimal(w["balance"]) == Decimal(w["available"]) + Decimal(w["hold"])
        assert set(w["present_value"]) == {"balance_usd", "available_usd", "hold_usd"}


# --- status, exchanges, pricing, book, ohlcv -----------------------------------------------------------
def test_status(http: httpx.Client) -> None:
    status = ok(http.get("/xwrap/v1/status"))
    assert status["status"] == "online" and status["version"]
    assert status["config"] == {"currencies": ["BTC", "ETH", "SOL", "USDT"], "exchanges": [EX]}
    expect_error(http.get("/xwrap/v1/status", params={"verbose": "1"}), 400, "invalid_params")


def test_exchanges(http: httpx.Client) -> None:
    (demo,) = ok(http.get("/xwrap/v1/exchanges"))
    assert {"exchange", "class", "status", "pairs", "currencies", "mode"} <= set(demo)
    assert demo["exchange"] == EX and demo["status"] == "ready" and demo["mode"] == "paper"
    assert sorted(demo["pairs"]) == list(PAIRS) and demo["currencies"] == ["BTC", "ETH", "SOL", "USDT"]
    assert [e["exchange"] for e in ok(http.get("/xwrap/v1/exchanges", params={"mode": "paper"}))] == [EX]
    assert ok(http.get("/xwrap/v1/exchanges", params={"mode": "live"})) == []
    expect_error(http.get("/xwrap/v1/exchanges", params={"mode": "moon"}), 400, "invalid_mode")


def test_pricing(http: httpx.Client) -> None:
    pricing = ok(http.get(f"/xwrap/v1/{EX}/pricing"))
    assert sorted(pricing) == list(PAIRS)
    for pair, quote in pricing.items():
        assert set(quote) == {"bid", "ask"}
        assert isinstance(quote["bid"], str) and isinstance(quote["ask"], str)  # exact decimals, not floats
        assert 0 < Decimal(quote["bid"]) < Decimal(quote["ask"]), (pair, quote)
    expect_error(http.get("/xwrap/v1/nope/pricing"), 404, "unknown_exchange")


def test_book(http: httpx.Client) -> None:
    book = ok(http.get(f"/xwrap/v1/{EX}/book/BTC_USDT", params={"depth": 7}))
    assert book["exchange"] == EX and book["pair"] == "BTC_USDT" and book["symbol"] == "BTC/USDT"
    assert len(book["bids"]) == 7 and len(book["asks"]) == 7
    for side in ("bids", "asks"):
        assert all(len(level) == 2 and all(isinstance(x, str) for x in level) for level in book[side])
    bids = [Decimal(p) for p, _ in book["bids"]]
    asks = [Decimal(p) for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert ok(http.get(f"/xwrap/v1/{EX}/book/eth_usdt", params={"depth": 1}))["symbol"] == "ETH/USDT"
    assert len(ok(http.get(f"/xwrap/v1/{EX}/book/SOL_USDT"))["bids"]) == 100  # the default depth
    expect_error(http.get(f"/xwrap/v1/{EX}/book/DOGE_USDT"), 404, "unknown_symbol")
    expect_error(http.get("/xwrap/v1/nope/book/BTC_USDT"), 404, "unknown_exchange")
    expect_error(http.get(f"/xwrap/v1/{EX}/book/BTCUSDT"), 400, "invalid_symbol")
    expect_error(http.get(f"/xwrap/v1/{EX}/book/BTC_USDT", params={"depth": 0}), 400, "invalid_depth")
    expect_error(http.get(f"/xwrap/v1/{EX}/book/BTC_USDT", params={"depth": "ten"}), 400, "invalid_params")


def test_ohlcv(http: httpx.Client) -> None:
    url = f"/xwrap/v1/ohlcv/{EX}/BTC_USDT"
    deadline = time.monotonic() + 10
    while not (answer := ok(http.get(url)))["points"] and time.monotonic() < deadline:
        time.sleep(0.2)  # candles come from the demo feed's public trades
    assert set(answer) == {"exchange", "pair", "generated_at", "points"}
    assert answer["exchange"] == EX and answer["pair"] == "BTC_USDT"
    assert isinstance(answer["generated_at"], int) and abs(answer["generated_at"] - time.time()) < 60
    assert answer["points"], "no candles after 10 s of demo trades"
    for t, low, high, open_, close, volume, received_at in answer["points"]:  # the seed's point layout
        assert isinstance(t, int) and isinstance(received_at, int) and t % 60 == 0 and received_at >= t
        assert Decimal(low) <= min(Decimal(open_), Decimal(close)) <= max(Decimal(open_), Decimal(close)) <= Decimal(high)
        assert Decimal(volume) > 0
    last = answer["points"][-1][0]
    assert ok(http.get(url, params={"start": last + 60}))["points"] == []
    assert [p[0] for p in ok(http.get(url, params={"start": last, "end": last}))["points"]] == [last]
    daily = ok(http.get(url, params={"freq": "daily"}))["points"]
    assert daily and all(p[0] % 86_400 == 0 for p in daily)
    expect_error(http.get(url, params={"start": "yesterday"}), 400, "invalid_params")
    expect_error(http.get(url, params={"start": 10, "end": 5}), 400, "invalid_range")
    expect_error(http.get(url, params={"freq": "weekly"}), 400, "invalid_freq")
    expect_error(http.get("/xwrap/v1/ohlcv/nope/BTC_USDT"), 404, "unknown_exchange")
    expect_error(http.get(f"/xwrap/v1/ohlcv/{EX}/DOGE_USDT"), 404, "unknown_symbol")


# --- orders -----------------------------------------------------------------------------------------
def test_limit_order_rests_is_listed_and_cancels(http: httpx.Client) -> None:
    price = far_below(http, "0.8")
    key = oid()
    order = ok(new_order(http, side="buy", type="limit", size="0.01", limit=price, client_oid=key, run_id="rest-run"))
    assert SEED_ORDER_FIELDS <= set(order), set(order) ^ SEED_ORDER_FIELDS
    assert order["status"] == "open" and order["done_reason"] is None and order["filled_size"] == "0"
    assert order["client_order_id"] == key and order["run_id"] == "rest-run" and order["pair"] == "BTC_USDT"
    assert order["size"] == "0.01" and Decimal(order["limit"]) == Decimal(price) and order["side"] == "buy"
    assert [o for o in ok(http.get("/xwrap/v1/orders/open")) if o["id"] == order["id"]] == [order]
    assert order["id"] in [o["id"] for o in ok(http.get("/xwrap/v1/orders/open", params={"exchange": EX}))]
    hold = Decimal(wallet(ok(http.get("/xwrap/v1/wallets/unallocated")), "USDT")["hold"])
    assert hold >= Decimal("0.01") * Decimal(price)
    # recent orders: open ones only with include_open
    assert order["id"] in [o["id"] for o in ok(http.get("/xwrap/v1/orders/recent", params={"include_open": "true"}))]
    assert order["id"] not in [o["id"] for o in ok(http.get("/xwrap/v1/orders/recent"))]

    cancelled = ok(http.post("/xwrap/v1/orders/cancel", json={"order_id": order["id"]}))
    assert cancelled["id"] == order["id"] and cancelled["status"] == "done" and cancelled["done_reason"] == "cancelled"
    assert cancelled["done_at"] is not None
    assert order["id"] not in [o["id"] for o in ok(http.get("/xwrap/v1/orders/open"))]
    recent = ok(http.get("/xwrap/v1/orders/recent", params={"limit": 5}))
    assert len(recent) <= 5 and recent[0]["id"] == order["id"] and SEED_ORDER_FIELDS <= set(recent[0])
    expect_error(http.post("/xwrap/v1/orders/cancel", json={"order_id": order["id"]}), 409, "order_done")
    expect_error(http.post("/xwrap/v1/orders/cancel", json={"client_oid": key}), 409, "order_done")


def test_cancel_errors(http: httpx.Client) -> None:
    expect_error(http.post("/xwrap/v1/orders/cancel", json={"order_id": 10**9}), 404, "order_not_found")
    expect_error(http.post("/xwrap/v1/orders/cancel", json={"client_oid": oid()}), 404, "order_not_found")
    expect_error(http.post("/xwrap/v1/orders/cancel", json={}), 400, "missing_parameter")
    expect_error(http.post("/xwrap/v1/orders/cancel", json={"order_id": "first"}), 400, "invalid_params")
    expect_error(http.post("/xwrap/v1/orders/cancel", content=b"order_id=1"), 400, "parse_error")
    # parameters may also come in the query string, and a client_oid cancels too
    order = ok(new_order(http, side="buy", size="0.01", limit=far_below(http)))
    expect_error(http.post("/xwrap/v1/orders/cancel", json={"order_id": order["id"], "exchange": "other"}), 404, "order_not_found")
    cancelled = ok(http.post("/xwrap/v1/orders/cancel", params={"client_oid": order["client_order_id"]}))
    assert cancelled["done_reason"] == "cancelled"


def test_market_order_fills_and_settles(http: httpx.Client) -> None:
    before = Decimal(wallet(ok(http.get("/xwrap/v1/wallets/unallocated")), "BTC")["balance"])
    order = ok(new_order(http, side="buy", type="market", size="0.02"))
    assert order["status"] == "done" and order["done_reason"] == "filled" and order["limit"] == "0"
    assert Decimal(order["filled_size"]) == Decimal("0.02") and Decimal(order["avg_price"]) > 0
    after = Decimal(wallet(ok(http.get("/xwrap/v1/wallets/unallocated")), "BTC")["balance"])
    assert after - before == Decimal("0.02")
    assert order["id"] in [o["id"] for o in ok(http.get("/xwrap/v1/orders/recent"))]


def test_client_oid_is_idempotent_and_conflicts_with_other_params(http: httpx.Client) -> None:
    key, price = oid(), far_below(http, "0.7")
    first = ok(new_order(http, side="buy", size="0.01", limit=price, client_oid=key))
    again = ok(new_order(http, side="buy", size="0.01", limit=price, client_oid=key))
    assert again["id"] == first["id"]
    before = state(http)
    error = expect_error(new_order(http, side="buy", size="0.02", limit=price, client_oid=key), 409, "duplicate_client_oid")
    assert error["order_id"] == first["id"]
    assert state(http) == before
    assert [o["id"] for o in ok(http.get("/xwrap/v1/orders/open")) if o["client_order_id"] == key] == [first["id"]]
    ok(http.post("/xwrap/v1/orders/cancel", json={"order_id": first["id"]}))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"exchange": "nope"}, 404, "unknown_exchange"),
        ({"pair": "XYZ_USDT"}, 404, "unknown_symbol"),
        ({"size": "5000", "limit": "100000"}, 400, "insufficient_funds"),
        ({"side": "sell", "size": "500", "limit": "100000"}, 400, "insufficient_funds"),
        ({"wallet_set_id": 999999}, 404, "wallet_set_not_found"),
        ({"size": "-1"}, 400, "invalid_size"),
        ({"size": "lots"}, 400, "invalid_number"),
        ({"limit": "30000.001"}, 400, "too_precise"),
        ({"type": "stop"}, 400, "unknown_order_type"),
        ({"side": "up"}, 400, "invalid_side"),
        ({"limit": None}, 400, "missing_limit"),
        ({"cancel_after": -1}, 400, "invalid_cancel_after"),
        ({"leverage": 10}, 400, "invalid_params"),  # unknown field
        ({"size": ["0.01"]}, 400, "invalid_params"),  # wrong type
    ],
)
def test_make_order_errors_write_nothing(http: httpx.Client, body: dict[str, Any], status: int, code: str) -> None:
    before = state(http)
    full = {"side": "buy", "type": "limit", "size": "0.01", "limit": "30000", **body}
    expect_error(new_order(http, **full), status, code)
    assert state(http) == before


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "parse_error"),
        (b"[1, 2]", "invalid_params"),  # a JSON body must be an object of keyword parameters
        (b'"make me an order"', "invalid_params"),
        (b"", "invalid_params"),  # no body: the required parameters are missing
    ],
)
def test_bad_request_bodies_write_nothing(http: httpx.Client, content: bytes, code: str) -> None:
    before = state(http)
    headers = {"content-type": "application/json"}
    for path in ("/xwrap/v1/orders/new", "/xwrap/v1/wallets/new", "/xwrap/v1/wallets/virtual/transaction"):
        expect_error(http.post(path, content=content, headers=headers), 400, code)
    assert state(http) == before


def test_insufficient_funds_reports_the_shortfall(http: httpx.Client) -> None:
    error = expect_error(new_order(http, side="buy", size="5000", limit="100000"), 400, "insufficient_funds")
    assert error["exchange"] == EX and error["currency"] == "USDT"
    assert Decimal(error["needed"]) > Decimal(error["available"])


def test_list_order_errors(http: httpx.Client) -> None:
    expect_error(http.get("/xwrap/v1/orders/open", params={"status": "open"}), 400, "invalid_params")
    expect_error(http.get("/xwrap/v1/orders/open", params={"wallet_set_id": "mine"}), 400, "invalid_params")
    expect_error(http.get("/xwrap/v1/orders/recent", params={"limit": 0}), 400, "invalid_limit")
    expect_error(http.get("/xwrap/v1/orders/recent", params={"include_open": "maybe"}), 400, "invalid_params")


# --- wallets ------------------------------------------------------------------------------------------
def test_wallet_aggregates(http: httpx.Client) -> None:
    sets = ok(http.get("/xwrap/v1/wallets/sets"))
    assert {"total", "allocated", "unallocated"} <= set(sets)
    for key, view in sets.items():
        check_wallet_set(view)
        assert key in ("total", "allocated", "unallocated") or (key.isdigit() and view["type"] == "logical")
    total = ok(http.get("/xwrap/v1/wallets/total"))
    allocated = ok(http.get("/xwrap/v1/wallets/allocated"))
    unallocated = ok(http.get("/xwrap/v1/wallets/unallocated"))
    for view, kind in ((total, "total"), (allocated, "allocated"), (unallocated, "unallocated")):
        check_wallet_set(view)
        assert view["type"] == kind
    assert {w["currency"] for w in total["wallets"]} == {"BTC", "ETH", "SOL", "USDT"}
    assert wallet(total, "USDT")["present_value"]["balance_usd"] == wallet(total, "USDT")["balance"]
    by_key = lambda view: {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in view["wallets"]}  # noqa: E731
    alloc, unalloc = by_key(allocated), by_key(unallocated)
    for key, balance in by_key(total).items():
        assert balance == alloc.get(key, 0) + unalloc.get(key, 0)
    per_exchange = ok(http.get("/xwrap/v1/wallets/unallocated_exchange"))
    assert list(per_exchange) == [EX]
    assert {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in per_exchange[EX]} == unalloc
    aggregated = ok(http.get("/xwrap/v1/wallets/sets", params={"aggregate_only": "true"}))
    assert "wallets" not in aggregated["total"] and set(aggregated["total"]["aggregate"]) == {"BTC", "ETH", "SOL", "USDT"}
    for path in ("total", "allocated", "unallocated", "unallocated_exchange"):
        expect_error(http.get(f"/xwrap/v1/wallets/{path}", params={"extra": "1"}), 400, "invalid_params")
    expect_error(http.get("/xwrap/v1/wallets/sets", params={"aggregate_only": "perhaps"}), 400, "invalid_params")


def test_wallet_set_lifecycle(http: httpx.Client) -> None:
    run = f"run-{oid()[:8]}"
    unallocated_before = Decimal(wallet(ok(http.get("/xwrap/v1/wallets/unallocated")), "USDT")["balance"])
    created = ok(http.post("/xwrap/v1/wallets/new", json={"run_id": run, "wallets": [
        {"exchange": EX, "currency": "USDT", "allocation": "2500.5"},
        {"exchange": EX, "currency": "eth", "allocation": 1},
    ]}))
    assert list(created) == ["id"] and isinstance(created["id"], int)
    set_id = created["id"]
    view = ok(http.get(f"/xwrap/v1/wallets/{set_id}"))
    check_wallet_set(view)
    assert view["id"] == set_id and view["run_id"] == run and view["type"] == "logical" and view["active"] is True
    assert view["description"] == f"Logical Wallet for Run: {run}"
    assert wallet(view, "USDT")["balance"] == "2500.5" and wallet(view, "ETH")["available"] == "1"
    assert isinstance(wallet(view, "USDT")["id"], int)
    assert wallet(view, "USDT")["present_value"]["balance_usd"] == "2500.5"
    assert str(set_id) in ok(http.get("/xwrap/v1/wallets/sets"))
    assert Decimal(wallet(ok(http.get("/xwrap/v1/wallets/allocated")), "USDT")["balance"]) >= Decimal("2500.5")
    unallocated = Decimal(wallet(ok(http.get("/xwrap/v1/wallets/unallocated")), "USDT")["balance"])
    assert unallocated_before - unallocated == Decimal("2500.5")
    aggregate = ok(http.get(f"/xwrap/v1/wallets/{set_id}", params={"aggregate_only": "true"}))["aggregate"]
    assert set(aggregate) == {"ETH", "USDT"}

    # a set spends only what it holds; its orders show under its id
    resting = ok(new_order(http, side="buy", size="0.01", limit=far_below(http), wallet_set_id=set_id))
    assert resting["wallet_set_id"] == set_id
    assert [o["id"] for o in ok(http.get("/xwrap/v1/orders/open", params={"wallet_set_id": set_id}))] == [resting["id"]]
    before = state(http)
    expect_error(new_order(http, side="buy", size="1", limit="30000", wallet_set_id=set_id), 400, "insufficient_funds")
    assert state(http) == before

    history = ok(http.get(f"/xwrap/v1/wallets/history/{set_id}"))
    assert history["id"] == set_id and history["run_id"] == run and history["current"]["id"] == set_id
    assert isinstance(history["timestamp"], float) and len(history["data"]) >= 3  # two allocations and a hold
    for ts, point in history["data"]:
        assert isinstance(ts, int) and {"currency", "id", "balance", "available", "hold"} <= set(point)

    assert ok(http.post("/xwrap/v1/wallets/deactivate", json={"set_id": set_id})) == {"id": set_id, "active": False}
    assert resting["id"] not in [o["id"] for o in ok(http.get("/xwrap/v1/orders/open"))]
    assert str(set_id) not in ok(http.get("/xwrap/v1/wallets/sets"))
    assert Decimal(wallet(ok(http.get("/xwrap/v1/wallets/unallocated")), "USDT")["balance"]) == unallocated_before
    assert ok(http.get(f"/xwrap/v1/wallets/{set_id}"))["active"] is False
    expect_error(http.post("/xwrap/v1/wallets/deactivate", json={"set_id": set_id}), 409, "wallet_set_inactive")
    expect_error(new_order(http, side="buy", size="0.01", limit="30000", wallet_set_id=set_id), 409, "wallet_set_inactive")


def test_wallet_set_errors(http: httpx.Client) -> None:
    expect_error(http.get("/xwrap/v1/wallets/424242"), 404, "wallet_set_not_found")
    expect_error(http.get("/xwrap/v1/wallets/history/424242"), 404, "wallet_set_not_found")
    expect_error(http.get("/xwrap/v1/wallets/abc"), 404, "not_found")  # no such route: still the error shape
    expect_error(http.post("/xwrap/v1/wallets/deactivate", json={"set_id": 424242}), 404, "wallet_set_not_found")
    expect_error(http.post("/xwrap/v1/wallets/deactivate", json={}), 400, "missing_parameter")
    expect_error(http.post("/xwrap/v1/wallets/deactivate", json={"wallet_set_id": 424242}), 404, "wallet_set_not_found")
    before = state(http)
    new = "/xwrap/v1/wallets/new"
    expect_error(http.post(new, json={"run_id": "x", "wallets": [{"exchange": EX, "currency": "USDT", "allocation": "1e12"}]}),
                 400, "insufficient_funds")
    # all or nothing: the first allocation fits, the second does not
    expect_error(http.post(new, json={"run_id": "x", "wallets": [
        {"exchange": EX, "currency": "USDT", "allocation": "10"},
        {"exchange": EX, "currency": "BTC", "allocation": "1e6"},
    ]}), 400, "insufficient_funds")
    expect_error(http.post(new, json={"run_id": "x", "wallets": [{"exchange": EX, "currency": "DOGE", "allocation": "1"}]}),
                 400, "bad_wallet_config")
    expect_error(http.post(new, json={"run_id": "x", "wallets": [{"exchange": EX, "currency": "USDT", "allocation": "-5"}]}),
                 400, "bad_wallet_config")
    expect_error(http.post(new, json={"run_id": "x", "wallets": []}), 400, "bad_wallet_config")
    expect_error(http.post(new, json={"run_id": "x", "wallets": [{"exchange": "nope", "currency": "USDT", "allocation": "1"}]}),
                 404, "unknown_exchange")
    expect_error(http.post(new, json={"run_id": "x", "wallets": [{"exchange": EX, "currency": "USDT"}]}), 400, "invalid_params")
    expect_error(http.post(new, json={"run_id": "x", "wallets": "all of them"}), 400, "invalid_params")
    assert state(http) == before


def test_virtual_wallet_transaction(http: httpx.Client) -> None:
    url = "/xwrap/v1/wallets/virtual/transaction"
    sol = lambda: Decimal(wallet(ok(http.get("/xwrap/v1/wallets/unallocated")), "SOL")["balance"])  # noqa: E731
    before = sol()
    credit = ok(http.post(url, json={"exchange": EX, "base": "SOL", "movement": "12.5"}))
    assert list(credit) == ["id"] and isinstance(credit["id"], int)
    assert sol() == before + Decimal("12.5")
    debit = ok(http.post(url, json={"exchange": EX, "currency": "sol", "movement": -12.5}))
    assert debit["id"] > credit["id"] and sol() == before
    unchanged = state(http)
    expect_error(http.post(url, json={"exchange": EX, "base": "SOL", "movement": "-1e9"}), 400, "insufficient_funds")
    expect_error(http.post(url, json={"exchange": EX, "base": "SOL", "movement": "0"}), 400, "invalid_amount")
    expect_error(http.post(url, json={"exchange": EX, "movement": "1"}), 400, "missing_parameter")
    expect_error(http.post(url, json={"exchange": "nope", "base": "SOL", "movement": "1"}), 404, "unknown_exchange")
    expect_error(http.post(url, json={"exchange": EX, "base": "SOL", "movement": "1", "memo": "gift"}), 400, "invalid_params")
    assert state(http) == unchanged


def test_deactivate_by_the_seeds_wallet_set_id(http: httpx.Client) -> None:
    url = "/xwrap/v1/wallets/deactivate"
    set_id = ok(http.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": EX, "currency": "USDT", "allocation": "7"}]}))["id"]
    expect_error(http.post(url, json={"set_id": set_id, "wallet_set_id": set_id}), 400, "conflicting_parameters")
    assert ok(http.get(f"/xwrap/v1/wallets/{set_id}"))["active"] is True
    assert ok(http.post(url, json={"wallet_set_id": set_id})) == {"id": set_id, "active": False}
    expect_error(http.post(url, json={"wallet_set_id": set_id}), 409, "wallet_set_inactive")


def test_virtual_wallet_transaction_names_its_wallet_by_id_or_is_refused(http: httpx.Client) -> None:
    unchanged = state(http)
    url = "/xwrap/v1/wallets/virtual/transaction"
    error = expect_error(http.post(url, json={"exchange": EX, "base": "SOL", "movement": "3", "wallet_id": 10**9}), 404, "wallet_not_found")
    assert error["field"] == "wallet_id"
    sol = http.get(f"/xwrap/v1/wallets/{EX}/SOL").json()  # the caller's account wallet: its id is the unallocated wallet's
    expect_error(http.post(url, json={"exchange": EX, "base": "BTC", "movement": "3", "wallet_id": sol["id"]}), 400,
                 "conflicting_parameters")
    assert state(http) == unchanged
    assert http.post(url, json={"exchange": EX, "movement": "3", "wallet_id": sol["id"]}).status_code == 200
    after = http.get(f"/xwrap/v1/wallets/{EX}/SOL").json()
    assert Decimal(after["balance"]) == Decimal(sol["balance"]) + 3 and after["account"] == sol["account"]
    assert http.post(url, json={"exchange": EX, "base": "SOL", "movement": "-3"}).status_code == 200


# --- robustness -----------------------------------------------------------------------------------------
def test_unknown_routes_and_methods_answer_the_error_shape(http: httpx.Client) -> None:
    expect_error(http.get("/xwrap/v1/nothing/here/at/all"), 404, "not_found")
    expect_error(http.get("/xwrap/v1/orders/new"), 405, "method_not_allowed")
    expect_error(http.post("/xwrap/v1/status"), 405, "method_not_allowed")


def test_out_of_range_ids_are_answered_in_the_error_shape(http: httpx.Client) -> None:
    """An id too large for the store must not crash the request handler or write anything."""
    before = state(http)
    response = http.post("/xwrap/v1/orders/cancel", json={"order_id": 2**63})
    assert response.status_code in (400, 404, 500) and response.json()["error"]["code"]
    response = new_order(http, side="buy", size="0.01", limit=far_below(http), cancel_after=10**30)
    assert response.status_code in (400, 500) and response.json()["error"]["code"]
    assert state(http) == before
    assert ok(http.get("/xwrap/v1/status"))["status"] == "online"


def test_out_of_range_ids_are_invalid_params(http: httpx.Client) -> None:
    expect_error(http.post("/xwrap/v1/orders/cancel", json={"order_id": 2**63}), 400, "invalid_params")
    expect_error(http.get("/xwrap/v1/wallets/" + str(2**70)), 400, "invalid_params")
    body = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "size": "0.01", "limit": "100", "cancel_after": 10**30}
    expect_error(http.post("/xwrap/v1/orders/new", json=body), 400, "invalid_params")


# --- uri_map, OpenAPI, metrics, health -------------------------------------------------------------------------
def test_uri_map_lists_every_route(http: httpx.Client) -> None:
    uri_map = ok(http.get("/uri_map"))
    assert [(e["methods"], e["uri"], e["api_method"]) for e in uri_map] == [
        ([m], path.replace(":int", ""), name) for m, path, name in XWRAP_ROUTES
    ]
    assert all(e["doc"] for e in uri_map)
    seed = {
        "/xwrap/v1/status", "/xwrap/v1/exchanges", "/xwrap/v1/orders/open", "/xwrap/v1/orders/recent",
        "/xwrap/v1/orders/new", "/xwrap/v1/wallets/sets", "/xwrap/v1/wallets/allocated", "/xwrap/v1/wallets/unallocated",
        "/xwrap/v1/wallets/unallocated_exchange", "/xwrap/v1/wallets/total", "/xwrap/v1/wallets/{set_id}",
        "/xwrap/v1/wallets/history/{set_id}", "/xwrap/v1/wallets/new", "/xwrap/v1/wallets/virtual/transaction",
        "/xwrap/v1/{exchange}/pricing", "/xwrap/v1/{exchange}/book/{pair}",
    }
    assert seed <= {e["uri"] for e in uri_map}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_openapi_document(http: httpx.Client) -> None:
    doc = ok(http.get("/openapi.json"))
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "coinwire" and doc["info"]["version"]
    for method, path, name in XWRAP_ROUTES:
        operation = doc["paths"][path.replace(":int", "")][method.lower()]
        assert operation["summary"] == name and operation["description"]
        in_path = re.findall(r"{(\w+)", path)
        declared = {p["name"]: p for p in operation.get("parameters", [])}
        for param in in_path:
            assert declared[param]["in"] == "path" and declared[param]["required"] is True
        if method == "POST":
            assert operation["requestBody"]["content"]["application/json"]["schema"]
    set_id = {p["name"]: p for p in doc["paths"]["/xwrap/v1/wallets/{set_id}"]["get"]["parameters"]}["set_id"]
    assert set_id["schema"]["type"] == "integer"
    book = {p["name"]: p for p in doc["paths"]["/xwrap/v1/{exchange}/book/{pair}"]["get"]["parameters"]}
    assert book["depth"]["in"] == "query" and book["depth"]["schema"]["type"] == "integer"
    # every reference resolves inside the document (a `#/$defs/...` left in an operation would not)
    refs = set(_refs(doc))
    assert "#/components/schemas/MakeOrderParams" in refs
    for ref in refs:
        assert isinstance(_resolve(doc, ref), dict), ref
    make_order = doc["components"]["schemas"]["MakeOrderParams"]
    assert {"exchange", "side"} <= set(make_order["required"])
    assert {"size", "funds", "idempotency_key"} <= set(make_order["properties"])  # exactly one of size and funds (checked)
    json.dumps(doc)  # plain JSON all the way down


def _samples(families: list[Any], name: str) -> list[Any]:
    return [s for f in families for s in f.samples if s.name == name]


def test_metrics_after_traffic_on_every_route(http: httpx.Client) -> None:
    """Drive one request through every xWrap route, then read the Prometheus exposition."""
    ok(new_order(http, side="buy", type="market", size="0.001"))
    set_id = ok(http.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": EX, "currency": "USDT", "allocation": "1"}]}))["id"]
    samples = {
        "/xwrap/v1/wallets/history/{set_id:int}": f"/xwrap/v1/wallets/history/{set_id}",
        "/xwrap/v1/wallets/{set_id:int}": f"/xwrap/v1/wallets/{set_id}",
        "/xwrap/v1/wallets/{exchange}/{currency}": f"/xwrap/v1/wallets/{EX}/USDT",
        "/xwrap/v1/ohlcv/{exchange}/{pair}": f"/xwrap/v1/ohlcv/{EX}/BTC_USDT",
        "/xwrap/v1/{exchange}/pricing": f"/xwrap/v1/{EX}/pricing",
        "/xwrap/v1/{exchange}/book/{pair}": f"/xwrap/v1/{EX}/book/BTC_USDT",
    }
    for method, path, _ in XWRAP_ROUTES:
        if method == "GET":
            ok(http.get(samples.get(path, path)))
        else:
            assert http.post(path, json={"unknown_field": 1}).status_code == 400
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in ("coinwire_orders_total", "coinwire_request_seconds", "coinwire_book_level_updates_total",
                 "coinwire_event_loop_lag_seconds"):
        assert name in text, name
    families = list(text_string_to_metric_families(text))
    orders = [s for s in _samples(families, "coinwire_orders_total") if s.labels["exchange"] == EX]
    assert sum(s.value for s in orders) >= 1 and {"market"} <= {s.labels["type"] for s in orders}
    book = [s for s in _samples(families, "coinwire_book_level_updates_total") if s.labels["exchange"] == EX]
    assert book and book[0].value > 0
    (lag,) = _samples(families, "coinwire_event_loop_lag_seconds")
    assert lag.value >= 0
    (behind,) = _samples(families, "coinwire_store_journal_behind_bytes")  # the store's journal, caught up or a few ms behind
    assert 0 <= behind.value < 1_000_000
    (restarts,) = _samples(families, "coinwire_store_journal_helper_restarts")
    assert restarts.value == 0
    counts = {s.labels["method"]: s.value for s in _samples(families, "coinwire_request_seconds_count") if s.labels["transport"] == "http"}
    for _, path, _ in XWRAP_ROUTES:
        assert counts.get(path, 0) >= 1, path  # labelled by route template: bounded cardinality
    assert not any(f"/{set_id}" in label for label in counts)


def test_health_checks(http: httpx.Client) -> None:
    assert ok(http.get("/healthz")) == {"status": "ok"}
    ready = ok(http.get("/readyz"))
    assert ready["ready"] is True
    assert ready["checks"] == {"store": True, "bus": True, "cache": True}
    assert ready["exchanges"] == {EX: "ready"}
