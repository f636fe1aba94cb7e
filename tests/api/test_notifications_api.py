"""/api/v1/me/notifications: each user's own channels, checked whole, secrets never answered; test sends; dead letters.

Two traders and a viewer on one real server, with a real SMTP server (aiosmtpd) and a real
webhook receiver on 127.0.0.1 as the outside world.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from coinwire.services.notifications.channels import EVENTS
from tests.notify_servers import SmtpReceiver, WebhookReceiver
from tests.server import ServerProcess

PATH = "/api/v1/me/notifications"
SECRET = "whsec-tom-0123456789abcdef"
BOT_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
SMTP_PASSWORD = "smtp-pw-never-logged-4711"


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(Path(tmp_path_factory.mktemp("smtp")), login=("coinwire", SMTP_PASSWORD)).start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(SECRET, fail_first=1_000_000).start()  # never accepts: every delivery ends a dead letter
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpReceiver) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("server")), env={
        "COINWIRE_NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "COINWIRE_NOTIFICATIONS_SMTP_PORT": str(smtp.port),
        "COINWIRE_NOTIFICATIONS_SMTP_SECURITY": "none", "COINWIRE_NOTIFICATIONS_SMTP_USERNAME": "coinwire",
        "COINWIRE_NOTIFICATIONS_SMTP_PASSWORD": SMTP_PASSWORD, "COINWIRE_NOTIFICATIONS_SMTP_SENDER": "coinwire <bot@coinwire.test>",
        "COINWIRE_NOTIFICATIONS_ATTEMPTS": "2", "COINWIRE_NOTIFICATIONS_BASE_DELAY": "0.1",
        "COINWIRE_NOTIFICATIONS_POLL_INTERVAL": "0.1"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> dict[str, dict[str, str]]:
    tokens = server.users({"tom": "trader", "tess": "trader", "vic": "viewer"})
    return {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}


def _error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def _no_events() -> dict[str, list[str]]:
    return {e: [] for e in EVENTS}


def test_each_users_settings_are_their_own_checked_whole_and_never_answer_a_secret(
        server: ServerProcess, users: dict[str, dict[str, str]]) -> None:
    http = server.http
    assert httpx.get(http + PATH).status_code == 401
    for name in users:
        r = httpx.get(http + PATH, headers=users[name])
        assert r.status_code == 200, r.text
        assert r.json() == {"channels": {}, "events": _no_events()}

    toms = {"channels": {"email": {"address": "tom@example.org"}, "webhook": {"url": "https://example.org/tom", "secret": SECRET},
                         "telegram": {"bot_token": BOT_TOKEN, "chat_id": "4242"}},
            "events": {"trade_receipt": ["email", "webhook"], "order_filled": ["telegram"]}}
    r = httpx.put(http + PATH, headers=users["tom"], json=toms)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["channels"] == {"email": {"address": "tom@example.org"},
                                  "telegram": {"chat_id": "4242", "bot_token": "set"},
                                  "webhook": {"url": "https://example.org/tom", "secret": "set"}}
    assert answer["events"] == _no_events() | {"trade_receipt": ["email", "webhook"], "order_filled": ["telegram"]}
    assert SECRET not in r.text and BOT_TOKEN not in r.text
    assert httpx.get(http + PATH, headers=users["tom"]).json() == answer

    # a secret left out keeps the stored one; a PUT sets exactly what it sends (telegram gone)
    r = httpx.put(http + PATH, headers=users["tom"], json={
        "channels": {"email": {"address": "tom@example.org"}, "webhook": {"url": "https://example.org/tom2"}},
        "events": {"trade_receipt": ["email", "webhook"]}})
    assert r.status_code == 200, r.text
    assert r.json()["channels"] == {"email": {"address": "tom@example.org"},
                                    "webhook": {"url": "https://example.org/tom2", "secret": "set"}}
    kept = r.json()

    refused = [
        ({"channels": {}, "events": {"order_exploded": []}}, "unknown_event"),
        ({"channels": {"pigeon": {}}}, "unknown_channel"),
        ({"channels": {"email": {"address": "a@b.co"}}, "events": {"trade_receipt": ["pigeon"]}}, "unknown_channel"),
        ({"channels": {"email": {"address": "not an address"}}}, "invalid_email"),
        ({"channels": {"webhook": {"url": "ftp://example.org/x", "secret": SECRET}}}, "invalid_webhook_url"),
        ({"channels": {"webhook": {"url": "javascript:alert(1)", "secret": SECRET}}}, "invalid_webhook_url"),
        ({"channels": {"webhook": {"url": "https://example.org/x", "secret": "short"}}}, "invalid_webhook_secret"),
        ({"channels": {"telegram": {"bot_token": "nope", "chat_id": "1"}}}, "invalid_bot_token"),
        ({"channels": {"email": {"address": "a@b.co"}}, "events": {"order_done": ["webhook"]}}, "channel_not_configured"),
        ({"channels": {"email": {"address": "a@b.co", "cc": "x"}}}, "invalid_params"),
        ({"channels": [], "events": {}}, "invalid_params"),
    ]
    for body, code in refused:
        r = httpx.put(http + PATH, headers=users["tom"], json=body)
        assert _error(r) == (400, code), (body, r.text)
        assert httpx.get(http + PATH, headers=users["tom"]).json() == kept  # nothing stored on a refusal
    # tess has no webhook stored: she must give a secret
    r = httpx.put(http + PATH, headers=users["tess"], json={"channels": {"webhook": {"url": "https://example.org/t"}}})
    assert _error(r) == (400, "missing_secret")

    # a viewer sets their own; tom's never reach tess or vic, theirs never reach tom
    r = httpx.put(http + PATH, headers=users["vic"], json={"channels": {"email": {"address": "vic@example.org"}},
                                                          "events": {"daily_stats": ["email"]}})
    assert r.status_code == 200, r.text
    assert httpx.get(http + PATH, headers=users["tess"]).json() == {"channels": {}, "events": _no_events()}
    assert httpx.get(http + PATH, headers=users["tom"]).json() == kept
    assert httpx.get(http + PATH, headers=users["vic"]).json()["channels"] == {"email": {"address": "vic@example.org"}}


def test_a_test_send_reaches_the_callers_own_channel_or_says_why_not(
        server: ServerProcess, users: dict[str, dict[str, str]], smtp: SmtpReceiver) -> None:
    http = server.http
    httpx.put(http + PATH, headers=users["vic"], json={"channels": {"email": {"address": "vic@example.org"}}}).raise_for_status()
    before = len(smtp.messages)
    r = httpx.post(http + PATH + "/test", headers=users["vic"], json={"channel": "email"}, timeout=30)
    assert r.json() == {"channel": "email", "sent": True}, r.text
    assert len(smtp.messages) == before + 1
    assert smtp.recipients[-1] == ["vic@example.org"]  # the caller's own address, through the relay with its login
    r = httpx.post(http + PATH + "/test", headers=users["tess"], json={"channel": "webhook"})
    assert r.json() == {"channel": "webhook", "sent": False, "reason": "no webhook channel is set"}
    assert _error(httpx.post(http + PATH + "/test", headers=users["tess"], json={"channel": "pigeon"})) == (400, "unknown_channel")
    assert _error(httpx.post(http + PATH + "/test", headers=users["tess"], json={})) == (400, "invalid_params")


def _order(server: ServerProcess, headers: dict[str, str]) -> dict[str, Any]:
    """A market buy that fills at once on the demo exchange (make_order over JSON-RPC)."""
    async def place() -> dict[str, Any]:
        async with RpcClient(f"{server.ws_anonymous}?access_token={headers['Authorization'].split()[1]}") as rpc:
            return dict(await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001"))

    return asyncio.run(place())


def test_spent_retries_park_a_dead_letter_its_user_sees_and_no_one_else(
        server: ServerProcess, users: dict[str, dict[str, str]], hook: WebhookReceiver) -> None:
    http = server.http
    httpx.put(http + PATH, headers=users["tess"], json={"channels": {"webhook": {"url": hook.url, "secret": SECRET}},
                                                       "events": {"trade_receipt": ["webhook"]}}).raise_for_status()
    order = _order(server, users["tess"])
    deadline = time.monotonic() + 20
    letters: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not letters:
        letters = httpx.get(http + PATH + "/dead_letters", headers=users["tess"]).json()["dead_letters"]
        time.sleep(0.1)
    assert len(letters) == 1, letters
    letter = letters[0]
    assert letter["key"] == f"trade_receipt:{order['id']}:webhook"
    assert (letter["state"], letter["attempts"], letter["last_error"]) == ("dead", 2, "webhook 127.0.0.1 answered HTTP 500")
    assert len(hook.requests) == 2  # attempts = 2: sent twice, then parked
    assert all(r["verified"] for r in hook.requests)  # each signed with tess's secret
    assert {r["headers"]["x-coinwire-delivery"] for r in hook.requests} == {letter["key"]}  # the same key on the retry

    # another user neither sees nor retries it (as if it did not exist); its owner does
    for name in ("tom", "vic"):
        assert httpx.get(http + PATH + "/dead_letters", headers=users[name]).json() == {"dead_letters": []}
        r = httpx.post(http + PATH + f"/dead_letters/{letter['id']}/retry", headers=users[name])
        assert _error(r) == (404, "dead_letter_not_found")
    assert _error(httpx.post(http + PATH + "/dead_letters/abc/retry", headers=users["tess"])) == (400, "invalid_id")
    r = httpx.post(http + PATH + f"/dead_letters/{letter['id']}/retry", headers=users["tess"])
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["attempts"]) == ("pending", 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(hook.requests) < 4:
        time.sleep(0.1)
    assert len(hook.requests) == 4  # two more attempts after the retry, then parked again
    time.sleep(0.3)
    again = httpx.get(http + PATH + "/dead_letters", headers=users["tess"]).json()["dead_letters"]
    assert [(x["id"], x["state"], x["attempts"]) for x in again] == [(letter["id"], "dead", 2)]


def test_no_secret_reaches_the_log_or_an_answer(server: ServerProcess, users: dict[str, dict[str, str]]) -> None:
    for name in users:
        assert all(s not in httpx.get(server.http + PATH, headers=users[name]).text for s in (SECRET, BOT_TOKEN, SMTP_PASSWORD))
    log = server.log_path.read_text(errors="replace")
    for secret in (SECRET, BOT_TOKEN, SMTP_PASSWORD):
        assert secret not in log
    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("coinwire.db*") if p.is_file())
    assert SECRET.encode() not in stored and BOT_TOKEN.encode() not in stored  # sealed in the store


def test_a_runs_start_and_stop_reach_its_owner_only(server: ServerProcess, users: dict[str, dict[str, str]]) -> None:
    toms, tess = WebhookReceiver(SECRET).start(), WebhookReceiver(SECRET).start()
    try:
        events = {"run_started": ["webhook"], "run_stopped": ["webhook"], "run_failed": ["webhook"]}
        for name, receiver in (("tom", toms), ("tess", tess)):
            r = httpx.put(server.http + PATH, headers=users[name],
                          json={"channels": {"webhook": {"url": receiver.url, "secret": SECRET}}, "events": events})
            assert r.status_code == 200, r.text
        with httpx.Client(base_url=server.http, headers=users["tom"], timeout=30) as tom:
            started = tom.put("/runnables/hodl/start", json={"mode": "paper", "balances": {"demo:USDT": "100"},
                                                              "params": {"timeframe": "1s"}})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            assert tom.put(f"/runs/{run_id}/stop").status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(toms.delivered()) < 2:
            time.sleep(0.1)
        got = [(r["headers"]["x-coinwire-event"], r["json"]["run_id"], r["headers"]["x-coinwire-delivery"]) for r in toms.delivered()]
        assert sorted(got) == [("run_started", run_id, f"run_started:{run_id}:webhook"),
                               ("run_stopped", run_id, f"run_stopped:{run_id}:webhook")]
        assert all(r["verified"] for r in toms.requests)
        assert tess.requests == []  # tom's run is no one else's news
    finally:
        toms.stop()
        tess.stop()


async def _rpc(server: ServerProcess, headers: dict[str, str], method: str, **params: Any) -> Any:
    async with RpcClient(f"{server.ws_anonymous}?access_token={headers['Authorization'].split()[1]}") as rpc:
        return await rpc.call(method, **params)


def test_json_rpc_reads_and_sets_the_callers_own_like_rest(server: ServerProcess, users: dict[str, dict[str, str]]) -> None:
    body = {"channels": {"webhook": {"url": "https://example.org/vic", "secret": SECRET}}, "events": {"order_done": ["webhook"]}}
    answer = asyncio.run(_rpc(server, users["vic"], "set_notifications", **body))  # a viewer's own: allowed
    assert answer["channels"] == {"webhook": {"url": "https://example.org/vic", "secret": "set"}}
    assert asyncio.run(_rpc(server, users["vic"], "get_notifications")) == httpx.get(server.http + PATH, headers=users["vic"]).json()
    assert SECRET not in str(answer)
    with pytest.raises(RpcError) as refused:
        asyncio.run(_rpc(server, users["vic"], "set_notifications", channels={}, events={"nope": []}))
    assert refused.value.data["code"] == "unknown_event"
    assert httpx.get(server.http + PATH, headers=users["vic"]).json()["channels"] == answer["channels"]  # nothing stored
    assert asyncio.run(_rpc(server, users["tess"], "get_notifications"))["channels"] != answer["channels"]
