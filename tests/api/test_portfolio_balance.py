"""GET /api/v1/portfolio/user/{id}/balance against a real server whose top coins come from the local CoinGecko stand-in.

ann holds coins only through an external account (so every amount is known here); the answer's
weights are checked against an independent computation from the stand-in's own prices and caps.
ben may not read ann's balance, a viewer reads their own, the admin any; bad `top` is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.feeds.binance_server import served_on_thread
from tests.refdata.refdata_server import RefDataVenue, coingecko_coin
from tests.server import ServerProcess

HELD = {"BTC": "1", "ETH": "10", "C4": "100", "USDT": "1000", "NOPRICE": "5"}


@pytest.fixture(scope="module")
def refdata_base() -> Iterator[str]:
    """The CoinGecko stand-in, served from a thread of its own for the module's server."""
    venue = RefDataVenue()
    venue.coins = 12  # more than the default top of 10 once the stablecoin is left out
    with served_on_thread(venue, timeout=10) as runner:
        yield f"http://127.0.0.1:{runner.port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, refdata_base: str) -> Iterator[ServerProcess]:
    config = f'[market_data]\ncoin_source = "coingecko"\ncoin_url = "{refdata_base}/cg/api/v3"\ntop = 12\n'
    proc = ServerProcess(Path(tmp_path_factory.mktemp("balance")), config=config)
    proc.start()
    yield proc
    proc.stop()


def client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=10, headers={"Authorization": f"Bearer {token}"})


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> dict[str, dict[str, Any]]:
    tokens = server.traders("ann", "ben")
    tokens.update(server.users({"val": "viewer"}))
    tokens["admin"] = server.token
    with server.client() as admin:
        ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
    with client(server, tokens["ann"]) as ann:
        ok(ann.post("/api/v1/accounts", json={"exchange": "wallet", "kind": "external", "name": "cold", "holdings": HELD}), 201)
    return {name: {"token": token, "id": ids[name]} for name, token in tokens.items()}


def expected(top: int) -> dict[str, tuple[Fraction, Fraction]]:
    """asset -> (weight, cap weight), exact, from the stand-in's own list (USDT is a stablecoin: cash)."""
    coins = [coingecko_coin(rank) for rank in range(1, 13)]
    prices = {c["symbol"].upper(): Fraction(str(c["current_price"])) for c in coins}
    index = [(c["symbol"].upper(), Fraction(c["market_cap"])) for c in coins if c["symbol"] != "usdt"][:top]
    values = {a: Fraction(q) * prices[a] for a, q in HELD.items() if a in prices and a != "USDT"}
    caps = dict(index)
    names = set(values) | set(caps)
    return {n: (values.get(n, Fraction(0)) / sum(values.values()), caps.get(n, Fraction(0)) / sum(caps.values())) for n in names}


def balance_of(server: ServerProcess, token: str, user_id: int, query: str = "") -> Any:
    """The balance once the tracker valued the user's holdings (it samples every second)."""
    with client(server, token) as rest:
        deadline = time.monotonic() + 20
        while True:
            answer = ok(rest.get(f"/api/v1/portfolio/user/{user_id}/balance{query}"))
            if (answer["assets"] and answer["total"] != "0") or time.monotonic() > deadline:
                return answer
            time.sleep(0.3)


def test_weights_match_an_independent_computation(server: ServerProcess, users: dict[str, dict[str, Any]]) -> None:
    ann = users["ann"]
    answer = balance_of(server, ann["token"], ann["id"], "?top=3")
    assert answer["user"] == ann["id"] and answer["top"] == 3 and answer["index"] == ["BTC", "ETH", "C4"]
    assert answer["unpriced"] == ["NOPRICE"]
    assert Decimal(answer["cash"]) == Decimal(1000)  # USDT pegged 1:1 to USD, the default display currency
    want = expected(3)
    got = {r["asset"]: r for r in answer["assets"]}
    assert set(got) == set(want)
    for asset, (weight, cap_weight) in want.items():
        assert abs(Fraction(got[asset]["weight"]) - weight) < Fraction(1, 10**10)
        assert abs(Fraction(got[asset]["cap_weight"]) - cap_weight) < Fraction(1, 10**10)
        assert got[asset]["stance"] == ("over" if Decimal(got[asset]["difference"]) > 0 else "under")
    assert sum(Decimal(r["weight"]) for r in answer["assets"]) == 1
    assert sum(Decimal(r["difference"]) for r in answer["assets"]) == 0
    assert Decimal(got["BTC"]["value"]) == Decimal("61000.5") and Decimal(got["ETH"]["amount"]) == 10
    default = balance_of(server, ann["token"], ann["id"])
    assert default["top"] == 10 and len(default["index"]) == 10 and "USDT" not in default["index"]


def test_users_read_only_their_own(server: ServerProcess, users: dict[str, dict[str, Any]]) -> None:
    ann, ben, val = users["ann"], users["ben"], users["val"]
    with client(server, ben["token"]) as rest:
        refused(rest.get(f"/api/v1/portfolio/user/{ann['id']}/balance"), 404, "not_found")
        refused(rest.get("/api/v1/portfolio/user/999999/balance"), 404, "not_found")
        refused(rest.get("/api/v1/portfolio/user/x/balance"), 404, "not_found")
        mine = ok(rest.get(f"/api/v1/portfolio/user/{ben['id']}/balance"))
    assert mine["total"] == "0" and all(r["stance"] == "under" for r in mine["assets"])
    with client(server, val["token"]) as rest:
        refused(rest.get(f"/api/v1/portfolio/user/{ann['id']}/balance"), 404, "not_found")
        assert ok(rest.get(f"/api/v1/portfolio/user/{val['id']}/balance"))["user"] == val["id"]
    assert balance_of(server, users["admin"]["token"], ann["id"])["unpriced"] == ["NOPRICE"]  # admins read any


def test_bad_top_and_parameters(server: ServerProcess, users: dict[str, dict[str, Any]]) -> None:
    ann = users["ann"]
    with client(server, ann["token"]) as rest:
        for top in ("0", "101", "-1", "ten", "1.5", ""):
            refused(rest.get(f"/api/v1/portfolio/user/{ann['id']}/balance", params={"top": top}), 400, "invalid_top")
        refused(rest.get(f"/api/v1/portfolio/user/{ann['id']}/balance", params={"n": "3"}), 400, "invalid_params")
