"""Tickers and convert on a real `coinwire serve` process with the default demo market, and the CLI against it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from coinwire.api.client import RpcClient
from tests.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("market")))
    proc.start()
    yield proc
    proc.stop()


def demo_tickers(server: ServerProcess) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = httpx.get(server.http + "/api/v1/tickers", params={"exchange": "demo", "quote": "USDT"}, headers=server.headers).json()
        if len(body) == 3:
            return body
        time.sleep(0.1)
    raise AssertionError(f"no demo tickers: {body}")


def test_demo_book_tickers_are_latest_prices(server: ServerProcess) -> None:
    body = demo_tickers(server)
    assert [t["symbol"] for t in body] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    btc = body[0]
    assert btc["source"] == "book" and Decimal(btc["bid"]) < Decimal(btc["price"]) < Decimal(btc["ask"])  # type: ignore[arg-type]
    assert 0 <= btc["age"] < 5  # type: ignore[operator]


def cli_env(server: ServerProcess) -> dict[str, str]:
    return {**os.environ, "COINWIRE_TOKEN": server.token}


def test_cli_convert_through_a_demo_ticker_and_the_usdt_peg(server: ServerProcess) -> None:
    demo_tickers(server)
    run = subprocess.run([sys.executable, "-m", "coinwire.cli", "convert", "2", "btc", "USD", "--json", "--url", server.http],
                         capture_output=True, text=True, timeout=60, env=cli_env(server))
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert [(s["from"], s["to"], s["source"]) for s in body["route"]] == [("BTC", "USDT", "ticker:demo"), ("USDT", "USD", "peg")]
    assert Decimal(body["result"]) == 2 * Decimal(body["route"][0]["rate"])
    refused = subprocess.run([sys.executable, "-m", "coinwire.cli", "convert", "1", "DOGE", "USD", "--url", server.http],
                             capture_output=True, text=True, timeout=60, env=cli_env(server))
    assert refused.returncode != 0 and "unknown_currency" in refused.stderr


async def test_ticker_push_over_rpc(server: ServerProcess) -> None:
    async with RpcClient(server.ws) as rpc:
        answer = await rpc.call("subscribe", channels=["ticker"], tickers=["demo.usdt.eth"])
        assert answer["tickers"] == ["ticker.demo.usdt.eth"]
        got: list[dict[str, object]] = []
        async with asyncio.timeout(10):
            while len(got) < 3:
                method, params = await rpc.notifications.get()
                if method == "ticker":
                    got.append(params)
        assert {t["symbol"] for t in got} == {"ETH/USDT"}
