"""Role processes for real: `coinwire serve --roles marketdata` and `--roles gateway,api` over PostgreSQL, NATS and Redis.

The marketdata process runs the demo feed and publishes; the gateway,api process runs no feed and
mirrors the books it gets over the bus (its markets and first books asked for, since it starts
after the feed announced them). A paper market order placed through the api process's REST fills
against those books. Killed with SIGKILL, the marketdata process leaves the gateway waiting (its
/readyz says for what, orders are refused); started again, the gateway is ready and fills again.
Also: each process serves /healthz, /readyz and /metrics with its roles, and `serve` refuses roles
it cannot run (exit 2).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.remote.cluster import shared_env as cluster_env
from tests.server import ServerProcess

pytestmark = pytest.mark.services


@pytest.fixture
def shared_env() -> Iterator[dict[str, str]]:
    """A fresh database, and a namespace of its own on NATS and Redis (its stream and keys removed afterwards)."""
    with cluster_env() as env:
        yield env




def _ready(server: ServerProcess, timeout: float = 30.0) -> dict[str, Any]:
    """Until the process's /readyz answers 200 (a process without the gateway has no exchanges to wait for)."""
    return server.until_readyz(200, timeout)


def _until(probe: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def _market_buy(http: httpx.Client) -> httpx.Response:
    return http.post("/xwrap/v1/orders/new", json={"exchange": "demo", "pair": "BTC_USDT", "type": "market", "side": "buy",
                                                  "size": "0.01", "client_oid": uuid.uuid4().hex})


def test_a_gateway_apart_from_the_feeds_mirrors_them_over_the_bus_and_waits_for_them_when_they_die(
        tmp_path: Path, shared_env: dict[str, str]) -> None:
    market = ServerProcess(tmp_path / "md", env={**shared_env, "COINWIRE_ROLES": "marketdata"})
    gateway = ServerProcess(tmp_path / "gw", env={**shared_env, "COINWIRE_ROLES": "gateway,api"})
    for server in (market, gateway):
        server.data_dir.mkdir()
    try:
        market.start(wait_ready=False)
        probe = _ready(market)
        assert probe["roles"] == {"marketdata": []} and probe["exchanges"] == {}  # no gateway here
        gateway.start(timeout=40)  # ready: its paper exchange has the markets and synced books the marketdata process sent
        assert httpx.get(market.http + "/healthz").json() == {"status": "ok", "roles": ["marketdata"]}
        scraped = httpx.get(market.http + "/metrics").text
        assert 'coinwire_process_roles{role="marketdata"} 1.0' in scraped and 'role="gateway"' not in scraped
        with gateway.client() as http:
            scraped = http.get("/metrics").text
            assert 'coinwire_process_roles{role="gateway"} 1.0' in scraped and 'role="marketdata"' not in scraped
            ready = http.get("/readyz").json()
            assert ready["ready"] and ready["roles"] == {"api": [], "gateway": []}
            placed = _market_buy(http)
            assert placed.status_code == 200, placed.text
            order = placed.json()
            assert (order["status"], order["filled_size"]) == ("done", "0.01"), order
            book = http.get("/xwrap/v1/demo/book/BTC_USDT").json()
            assert book["bids"] and book["asks"]

            market.kill()  # SIGKILL: its feed stops mid-stream, no goodbye on the bus
            waiting = _until(lambda: (r := http.get("/readyz")).status_code == 503 and r.json())
            assert [w["code"] for w in waiting["roles"]["gateway"]] == ["market_data_missing"], waiting
            assert waiting["exchanges"] == {"demo": "degraded"} and waiting["checks"] == {"store": True, "bus": True, "cache": True}
            refused = _market_buy(http)
            assert refused.status_code in (409, 503) and refused.json()["error"]["code"] == "exchange_not_ready", refused.text

            market.start(wait_ready=False)  # the same process again: a new feed, its markets and books announced anew
            _ready(market)
            back = _until(lambda: (r := http.get("/readyz")).status_code == 200 and r.json(), timeout=30)
            assert back["roles"]["gateway"] == [] and back["exchanges"] == {"demo": "ready"}
            again = _market_buy(http)
            assert again.status_code == 200 and again.json()["status"] == "done", again.text
            # the admin's paper account, made by the first order, was credited once: two buys of 0.01 BTC on top of 10
            btc = http.get("/xwrap/v1/wallets/total").json()["wallets"]
            assert [w["balance"] for w in btc if w["currency"] == "BTC"] == ["10.02"], btc
            assert [u["username"] for u in http.get("/api/v1/users").json()] == ["admin"]
    finally:
        gateway.stop()
        market.stop()


def _serve(tmp_path: Path, roles: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COINWIRE_")}
    clean.update({"COINWIRE_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, "-m", "coinwire.cli", "serve", "--roles", roles, "--port", "1"], env=clean,
                          capture_output=True, text=True, timeout=60)


def test_serve_refuses_roles_it_cannot_run_with_exit_2_and_what_to_change(tmp_path: Path) -> None:
    unknown = _serve(tmp_path, "api,bogus")
    assert unknown.returncode == 2 and "unknown role bogus: roles are all or a comma list of api, gateway, marketdata" in unknown.stderr
    embedded = _serve(tmp_path, "marketdata")
    assert embedded.returncode == 2
    for setting in ("COINWIRE_STORE_URL=postgresql://", "COINWIRE_BUS_URL=nats://", "COINWIRE_CACHE_URL=redis://"):
        assert setting in " ".join(embedded.stderr.split()), embedded.stderr
    alone = _serve(tmp_path, "engine", COINWIRE_STORE_URL="postgresql://u@127.0.0.1:1/x", COINWIRE_BUS_URL="nats://127.0.0.1:1",
                   COINWIRE_CACHE_URL="redis://127.0.0.1:1/0")
    assert alone.returncode == 2 and "need the gateway role in the same process" in " ".join(alone.stderr.split()), alone.stderr
    assert not (tmp_path / "coinwire.db").exists()  # refused before anything was built
