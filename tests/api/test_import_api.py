"""Import over the API: a real server with a live Binance account on the local signed Binance (seeded with a recorded past).

Who may do what: the admins' live account is granted to ann (trade) and vic (view); bob has
nothing on it. Ann starts the import, vic reads it, bob sees nothing of it (404 as for any
account he may not use), and only ann's, vic's and the admin's connections hear its progress. Then the
server is SIGKILLed in the middle of an import and started again: the import resumes where it
stopped and the store ends with every seeded trade once. What the import rebuilt is read back
through the portfolio candles route, in the owner's display currency (the admins' account: USD;
its trades' quote USDT converts by its peg), against the same independent reference as the
service's test (tests/services/test_account_import.py: holdings summed forward from the seeded
events times the recorded closes at each boundary).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient
from tests.conftest import shared_data
from tests.feeds.binance_server import RecordedBinance, ServerRunner, served_on_thread
from tests.feeds.test_ccxt_feed import capture
from tests.notify_servers import SmtpReceiver
from tests.server import DEMO_EXCHANGES, ServerProcess
from tests.services.test_account_import import EIGHT, reference_close
from tests.venues.binance_history import SeededHistory, seeded_history
from tests.venues.binance_trading import API_KEY, LOST_RESPONSE, SECRET, TradingBinance, trading_urls
from tests.venues.conftest import OPTIONS

ENV = {"COINWIRE_BINANCE_API_KEY": API_KEY, "COINWIRE_BINANCE_SECRET": SECRET, "COINWIRE_IMPORT_PAGE_LIMIT": "50",
       "COINWIRE_IMPORT_TIMEFRAME": "5m", "COINWIRE_IMPORT_HISTORY_START": "2020-12-01"}


@pytest.fixture(scope="module")
def seeded() -> SeededHistory:
    shared_data("binance-spot-5m", "BTC_USDT-5m.json")
    return seeded_history()


@pytest.fixture
def venue(seeded: SeededHistory) -> Iterator[tuple[TradingBinance, ServerRunner]]:
    trading = TradingBinance(RecordedBinance(capture()), dict(seeded.balances), history=seeded.history)
    trading.trades.extend(seeded.btc_trades)
    with served_on_thread(trading) as runner:
        yield trading, runner


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(tmp_path / "smtp").start()
    yield receiver
    receiver.stop()


@pytest.fixture
def server(tmp_path: Path, venue: tuple[TradingBinance, ServerRunner], smtp: SmtpReceiver) -> Iterator[ServerProcess]:
    live = {"name": "binance", "mode": "live", "feed": "ccxt", "symbols": ["BTC/USDT"], "poll_interval": 0.2,
            "ccxt_websocket": False, "ccxt_urls": trading_urls(venue[1]), "ccxt_options": OPTIONS}
    mail = {"COINWIRE_NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "COINWIRE_NOTIFICATIONS_SMTP_PORT": str(smtp.port),
            "COINWIRE_NOTIFICATIONS_SMTP_SECURITY": "none", "COINWIRE_NOTIFICATIONS_SMTP_SENDER": "coinwire <bot@coinwire.test>"}
    (tmp_path / "server").mkdir()
    proc = ServerProcess(tmp_path / "server", exchanges=[*DEMO_EXCHANGES, live], env={**ENV, **mail})
    proc.start(timeout=60)
    yield proc
    proc.stop()


def live_account(server: ServerProcess) -> int:
    with server.client() as admin:
        (account,) = [a for a in admin.get("/api/v1/accounts").json() if a["exchange"] == "binance"]
    return int(account["id"])


def people(server: ServerProcess, account: int) -> dict[str, str]:
    tokens = server.users({"ann": "trader", "bob": "trader", "vic": "viewer"})
    with server.client() as admin:
        for name, role in (("ann", "trade"), ("vic", "view")):
            user = me(server, tokens[name])["id"]
            admin.put(f"/api/v1/accounts/{account}/members/{user}", json={"role": role}).raise_for_status()
    return tokens


def me(server: ServerProcess, token: str) -> dict[str, Any]:
    return dict(httpx.get(server.http + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).json())


def as_user(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def wait_for(server: ServerProcess, token: str, account: int, state: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    with as_user(server, token) as client:
        while time.monotonic() < deadline:
            answer = client.get(f"/api/v1/accounts/{account}/import")
            if answer.status_code == 200:
                body = answer.json()
                if body["state"] == state:
                    return body
            time.sleep(0.1)
    raise AssertionError(f"import not {state} in {timeout}s: {body}\n{server.log()}")


def imported_candles_are_visible(server: ServerProcess, seeded: SeededHistory, account: int) -> None:
    """The account's 15-minute candles over the seeded days, as its owner's chart reads them: every bucket from the
    first event's to past the last trade, each close the reference's, in USD (the header says so)."""
    answer = httpx.get(f"{server.http}/api/v1/portfolio/account/{account}/ohlcv", headers=server.headers, timeout=30,
                       params={"timeframe": "15m", "start": "2021-01-01", "end": "2021-01-10"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Currency"] == "USD" and "X-Next-Start" not in answer.headers
    rows = json.loads(answer.text, parse_float=Decimal, parse_int=Decimal)
    assert rows, "the imported past is not in the owner's currency"
    times = [int(row[0]) for row in rows]
    first_event = min(d["insertTime"] for d in seeded.history.deposits) // 1000
    assert times == list(range(first_event - first_event % 900, times[-1] + 1, 900)), times[:3]  # every bucket, none missing
    assert times[-1] + 900 >= max(t["time"] for t in seeded.all_trades()) // 1000  # covered to the history's end
    for t, _, high, low, close, _ in rows:
        assert close == reference_close(seeded, int(t) + 900).quantize(EIGHT, rounding=ROUND_HALF_EVEN), t
        assert low <= close <= high
    daily = httpx.get(f"{server.http}/api/v1/portfolio/account/{account}/ohlcv", headers=server.headers, timeout=30,
                      params={"timeframe": "1d", "start": "2021-01-01", "end": "2021-01-10"})
    closes = {int(row[0]): row[4] for row in json.loads(daily.text, parse_float=Decimal, parse_int=Decimal)}
    assert daily.headers["X-Currency"] == "USD" and closes  # the daily rollup: each day closes at its last bucket's close
    by_time = {int(row[0]): row[4] for row in rows}
    assert all(close == by_time[max(t for t in by_time if t < day + 86_400)] for day, close in closes.items())


def stored_trades(server: ServerProcess) -> list[tuple[str, str]]:
    with sqlite3.connect(server.data_dir / "coinwire.db") as db:
        return [(s, t) for s, t in db.execute("SELECT symbol, trade_id FROM account_trades")]


async def listen(server: ServerProcess, token: str, out: list[dict[str, Any]], ready: asyncio.Event, stop: asyncio.Event) -> None:
    async with RpcClient(f"{server.ws_anonymous}?access_token={token}") as rpc:
        await rpc.call("subscribe", channels=["import_progress"])
        ready.set()
        while not stop.is_set():
            try:
                out.append(await rpc.notification("import_progress", timeout=0.2))
            except TimeoutError:
                continue


async def test_ann_imports_vic_watches_and_bob_sees_nothing_of_it(
    seeded: SeededHistory, server: ServerProcess, smtp: SmtpReceiver
) -> None:
    account = live_account(server)
    tokens = people(server, account)
    for name in ("ann", "vic"):  # both want to hear of finished imports by e-mail: only the one who started it is told
        with as_user(server, tokens[name]) as client:
            client.put("/api/v1/me/notifications", json={"channels": {"email": {"address": f"{name}@example.org"}},
                                                         "events": {"import_finished": ["email"]}}).raise_for_status()
    listening = {**tokens, "admin": server.token}  # the account is the admins' own (owner None): an admin hears it too
    heard: dict[str, list[dict[str, Any]]] = {name: [] for name in listening}
    ready = {name: asyncio.Event() for name in listening}
    stop = asyncio.Event()
    listeners = [asyncio.create_task(listen(server, listening[n], heard[n], ready[n], stop)) for n in listening]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready.values())), 10)

    with as_user(server, tokens["bob"]) as bob, as_user(server, tokens["vic"]) as vic, as_user(server, tokens["ann"]) as ann:
        assert ann.get(f"/api/v1/accounts/{account}/import").json()["error"]["code"] == "import_not_found"
        for refused in (bob.post(f"/api/v1/accounts/{account}/import"), bob.get(f"/api/v1/accounts/{account}/import")):
            assert (refused.status_code, refused.json()["error"]["code"]) == (404, "account_not_found")
        assert vic.post(f"/api/v1/accounts/{account}/import").status_code in (403, 404)  # a viewer starts nothing
        bobs_own = bob.get("/api/v1/accounts").json()[0]["id"]  # his paper account: no history to import
        assert bob.post(f"/api/v1/accounts/{bobs_own}/import").json()["error"]["code"] == "import_unavailable"

        started = ann.post(f"/api/v1/accounts/{account}/import")
        assert started.status_code == 202, started.text
        import_id = started.json()["import_id"]
        again = ann.post(f"/api/v1/accounts/{account}/import")
        assert again.status_code in (202, 409)  # 409 import_running while it runs (it may be done already)
        if again.status_code == 409:
            assert again.json()["error"]["code"] == "import_running"

        done = wait_for(server, tokens["vic"], account, "done")
        assert done["import_id"] in (import_id, import_id + 1) and done["currency"] == "USDT"
        assert done["markets"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"] and done["candles"] > 200
        assert bob.get(f"/api/v1/accounts/{account}/import").status_code == 404
        imported_candles_are_visible(server, seeded, account)

    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*listeners)
    for name in ("ann", "vic", "admin"):
        assert {m["account_id"] for m in heard[name]} == {account}
        assert heard[name][-1]["state"] == "done" and {"balances", "trades", "rebuild"} <= {m["step"] for m in heard[name]}
    assert heard["bob"] == []
    deadline = time.monotonic() + 20
    while not smtp.messages and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    (mail,) = smtp.distinct().values()
    assert smtp.recipients[0] == ["ann@example.org"]
    assert f"account {account}" in SmtpReceiver.body(mail, "plain") and "finished" in SmtpReceiver.body(mail, "plain")
    assert sorted(stored_trades(server)) == sorted(
        (t["symbol"].removesuffix("USDT") + "/USDT", str(t["id"])) for t in seeded.all_trades())


def test_a_kill_mid_import_resumes_at_restart_without_duplicates(
    seeded: SeededHistory, venue: tuple[TradingBinance, ServerRunner], server: ServerProcess
) -> None:
    trading, _ = venue
    account = live_account(server)
    trading.fault_delay = 0.3
    trading.fail("myTrades", *[LOST_RESPONSE] * 40)  # each page of trades takes a while: the kill lands among them
    with server.client() as admin:
        started = admin.post(f"/api/v1/accounts/{account}/import")
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = admin.get(f"/api/v1/accounts/{account}/import").json()
            if body["step"] == "trades" and body["done"] >= 1:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the import never got into its trades: {body}")
    before = len(stored_trades(server))
    server.kill()
    assert 0 < before < len(seeded.all_trades())

    server.start(timeout=60)
    done = wait_for(server, server.token, account, "done")
    assert done["import_id"] == started.json()["import_id"]  # the same import, resumed
    trades = stored_trades(server)
    assert len(trades) == len(set(trades)) == len(seeded.all_trades())
