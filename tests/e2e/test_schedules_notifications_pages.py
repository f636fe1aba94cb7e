"""The Schedules and Notifications pages against a real server: two traders and a viewer, each seeing only their own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect

from coinwire.api.client import RpcClient
from tests.e2e.conftest import PHONE, TRADER, VIEWER, Watched, open_page, serve_with_users, shot, sign_in
from tests.server import ServerProcess, free_port

TESS = ("tess", "tess-password-1")  # a second trader


class _Mailbox:
    """An SMTP server's handler (aiosmtpd): every message it accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.port = free_port()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class _Hooks:
    """A webhook receiver: answers `status` (500: down) and keeps what reached it while it answered 200."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hooks.status == 200:
                    hooks.received.append((dict(self.headers), body))
                self.send_response(hooks.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[_Mailbox]:
    box = _Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=box.port)
    smtp.start()
    yield box
    smtp.stop()


@pytest.fixture(scope="module")
def hooks() -> Iterator[_Hooks]:
    h = _Hooks()
    yield h
    h.server.shutdown()
    h.server.server_close()  # its listening socket too: left to the collector it warns in whichever test runs then


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path, mailbox: _Mailbox) -> Iterator[ServerProcess]:
    """The e2e server (the conftest's users), its SMTP relay the local one above, retries short enough to park a dead letter in seconds."""
    env = {"COINWIRE_NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "COINWIRE_NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
           "COINWIRE_NOTIFICATIONS_SMTP_SECURITY": "none", "COINWIRE_NOTIFICATIONS_SMTP_SENDER": "coinwire@example.org",
           "COINWIRE_NOTIFICATIONS_ATTEMPTS": "2", "COINWIRE_NOTIFICATIONS_BASE_DELAY": "0.2", "COINWIRE_NOTIFICATIONS_MAX_DELAY": "0.5"}
    yield from serve_with_users(Path(tmp_path_factory.mktemp("web-notify")), env)


@pytest.fixture(scope="module")
def tess(server: ServerProcess) -> tuple[str, str]:
    with server.client() as admin:
        r = admin.post("/api/v1/users", json={"username": TESS[0], "password": TESS[1], "role": "trader", "plan": "free"})
        assert r.status_code in (200, 201), r.text
    return TESS


def _client(server: ServerProcess, user: tuple[str, str]) -> httpx.Client:
    token = server.login(*user)["access_token"]
    return httpx.Client(base_url=server.http, timeout=15, headers={"Authorization": f"Bearer {token}"})


def _shown(page: Page, iso_or_seconds: Any) -> str:
    """A time as the dashboard shows it in the user's zone (UTC for these users): 06/12/2026, 14:05:00."""
    return str(page.evaluate("t => new Date(typeof t === 'number' ? t * 1000 : t).toLocaleString('en-GB', "
                             "{timeZone: 'UTC', hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', "
                             "hour: '2-digit', minute: '2-digit', second: '2-digit'})", iso_or_seconds))


@pytest.fixture
def signed_in(browser: Browser, server: ServerProcess) -> Iterator[Any]:
    opened: list[Watched] = []

    def sign(user: tuple[str, str], viewport: dict[str, int] | None = None) -> Watched:
        w = open_page(browser, server, viewport) if viewport else open_page(browser, server)
        sign_in(w, *user)
        opened.append(w)
        return w

    yield sign
    for w in opened:
        w.page.context.close()
    expected = ("status of 400", "status of 403", "status of 404")  # the refusals these tests ask for on purpose
    for w in opened:
        assert not [e for e in w.errors if not any(x in e for x in expected)], f"console errors: {w.errors}"


# retrieve_rates is registered by the rates service once it is wired to the scheduler: these schedules start a
# strategy instead, at times that do not come during a test (a run would start as the schedule's owner)
JOB = {"kind": "run_strategy", "strategy": "hodl", "mode": "paper", "balances": {"demo:USDT": "100"}, "params": {}, "for": "1h"}


def _add_schedule(page: Page, name: str, spec: str, *, every: bool = False, zone: str = "UTC") -> None:
    form = page.get_by_test_id("add-schedule")
    form.get_by_label("name", exact=True).fill(name)
    form.get_by_label("repeat by", exact=True).select_option("every" if every else "cron")
    form.get_by_label("cron or interval", exact=True).fill(spec)
    form.get_by_label("time zone", exact=True).select_option(zone)
    form.get_by_label("job kind", exact=True).select_option("run_strategy")
    form.get_by_label("strategy", exact=True).select_option("hodl")
    form.get_by_label("mode", exact=True).select_option("paper")
    form.get_by_label("each run lasts", exact=True).fill("1h")
    form.get_by_label("funds", exact=True).fill("demo:USDT=100")
    form.get_by_role("button", name="Add schedule").click()


def test_schedules_page_adds_shows_next_runs_pauses_and_keeps_users_apart(
    signed_in: Any, server: ServerProcess, tess: tuple[str, str],
) -> None:
    w = signed_in(TRADER)
    page = w.page
    page.get_by_role("link", name="Schedules").click()
    expect(page.get_by_test_id("schedules-list")).to_contain_text("No schedules yet")

    # a bad cron: the API's own message, and nothing stored
    with _client(server, TRADER) as tom:
        bad = {"name": "bad", "cron": "61 * * * *", "timezone": "UTC", "job": JOB}
        refused = tom.post("/api/v1/schedules", json=bad)
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
    _add_schedule(page, "bad", "61 * * * *")
    expect(page.get_by_test_id("schedule-form-error")).to_have_text(message)
    with _client(server, TRADER) as tom:
        assert tom.get("/api/v1/schedules").json() == []

    # a good one: its row with the next runs the API computed, in the user's zone
    _add_schedule(page, "tom nightly", "30 3 * * *", zone="Europe/London")
    row = page.get_by_test_id("schedule-row").filter(has_text="tom nightly")
    expect(row).to_be_visible()
    with _client(server, TRADER) as tom:
        [listed] = tom.get("/api/v1/schedules").json()
        mine = tom.get(f"/api/v1/schedules/{listed['id']}").json()
    assert mine["name"] == "tom nightly" and mine["cron"] == "30 3 * * *" and mine["timezone"] == "Europe/London"
    assert mine["job"] == JOB
    assert len(mine["next_runs"]) == 5
    next_runs = row.get_by_test_id("schedule-next").locator("li")
    expect(next_runs).to_have_count(5)
    for i, run in enumerate(mine["next_runs"]):  # 03:30 in London each day, shown in the user's zone (UTC)
        assert "T03:30:00" in run["at"]
        expect(next_runs.nth(i)).to_have_text(_shown(page, run["ms"] / 1000))
    expect(row.get_by_test_id("schedule-spec")).to_have_text("30 3 * * *")
    expect(row.get_by_test_id("schedule-job")).to_have_text("Run a strategy for a period · hodl · paper · for 1h")
    expect(row.get_by_test_id("schedule-state")).to_have_text("active")

    _add_schedule(page, "tom daily", "1d", every=True)
    expect(page.get_by_test_id("schedule-row")).to_have_count(2)
    expect(page.get_by_test_id("schedule-row").filter(has_text="tom daily").get_by_test_id("schedule-spec")).to_have_text("every 1d")

    # pause and resume
    row.get_by_role("button", name="Pause").click()
    expect(row.get_by_test_id("schedule-state")).to_have_text("paused")
    with _client(server, TRADER) as tom:
        assert next(s for s in tom.get("/api/v1/schedules").json() if s["name"] == "tom nightly")["paused"] is True
    expect(row.get_by_test_id("schedule-next")).to_have_text("paused")
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_test_id("schedule-state")).to_have_text("active")
    expect(row.get_by_test_id("schedule-next").locator("li")).to_have_count(5)
    shot(w, "schedules-trader")

    # another trader sees none of tom's, and adds her own
    t = signed_in(tess)
    t.page.goto("/app/schedules")
    expect(t.page.get_by_test_id("schedules-list")).to_contain_text("No schedules yet")
    _add_schedule(t.page, "tess early", "0 4 * * *")
    expect(t.page.get_by_test_id("schedule-row")).to_have_count(1)
    expect(t.page.get_by_test_id("schedule-row")).to_contain_text("tess early")
    with _client(server, tess) as her:
        assert [s["name"] for s in her.get("/api/v1/schedules").json()] == ["tess early"]
        tom_id = mine["id"]
        assert her.delete(f"/api/v1/schedules/{tom_id}").status_code == 404  # not hers: not found, not removed
    page.reload()
    expect(page.get_by_test_id("schedule-row")).to_have_count(2)
    assert page.get_by_test_id("schedule-row").filter(has_text="tess early").count() == 0

    # a viewer: an empty list, and the API's refusal shown when they try to add one
    v = signed_in(VIEWER)
    v.page.goto("/app/schedules")
    expect(v.page.get_by_test_id("schedules-list")).to_have_text("No schedules.")
    with _client(server, VIEWER) as vera:
        answer = vera.post("/api/v1/schedules", json={"name": "v", "every": "1d", "timezone": "UTC", "job": JOB})
        assert answer.status_code == 403, answer.text
        refusal = answer.json()["error"]["message"]
    expect(v.page.get_by_test_id("schedules-read-only")).to_be_visible()
    _add_schedule(v.page, "v", "1d", every=True)
    expect(v.page.get_by_test_id("schedule-form-error")).to_have_text(refusal)
    with _client(server, VIEWER) as vera:
        assert vera.get("/api/v1/schedules").json() == []
    shot(v, "schedules-viewer")

    # removed, after the modal
    row.get_by_role("button", name="Remove").click()
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("schedule-row")).to_have_count(1)
    with _client(server, TRADER) as tom:
        assert [s["name"] for s in tom.get("/api/v1/schedules").json()] == ["tom daily"]


def test_notifications_page_round_trips_keeps_secrets_write_only_and_users_apart(
    signed_in: Any, server: ServerProcess, tess: tuple[str, str],
) -> None:
    w = signed_in(TRADER)
    page = w.page
    page.get_by_role("link", name="Notifications").click()
    form = page.get_by_test_id("notifications-form")
    expect(form).to_be_visible()
    bot_token = "123456:tom_secret_bot_token_0123456789"
    hook_secret = "tom-webhook-signing-secret"

    # a URL that is not http(s): the API's message
    form.get_by_label("webhook URL").fill("ftp://example.org/hook")
    form.get_by_label("Signing secret (HMAC-SHA256)").fill(hook_secret)
    form.get_by_role("checkbox", name="Run failed by Webhook").check()
    with _client(server, TRADER) as tom:
        bad = {"channels": {"webhook": {"url": "ftp://example.org/hook", "secret": hook_secret}}, "events": {"run_failed": ["webhook"]}}
        refused = tom.put("/api/v1/me/notifications", json=bad)
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("notifications-error")).to_have_text(message)
    with _client(server, TRADER) as tom:
        assert tom.get("/api/v1/me/notifications").json()["channels"] == {}  # nothing stored

    form.get_by_label("e-mail address").fill("tom@example.org")
    form.get_by_label("Bot token").fill(bot_token)
    form.get_by_label("chat id").fill("424242")
    form.get_by_label("webhook URL").fill("https://hooks.example.org/tom")
    form.get_by_label("Signing secret (HMAC-SHA256)").fill(hook_secret)
    form.get_by_role("checkbox", name="Trade receipt by E-mail").check()
    form.get_by_role("checkbox", name="Run failed by Telegram").check()
    form.get_by_role("checkbox", name="Order triggered by Telegram").check()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("telegram_bot_token-state")).to_contain_text("set")
    expect(form.get_by_label("Bot token")).to_have_value("")

    with _client(server, TRADER) as tom:
        saved = tom.get("/api/v1/me/notifications").json()
    assert saved["channels"]["email"]["address"] == "tom@example.org"
    assert saved["channels"]["telegram"]["chat_id"] == "424242"
    assert saved["channels"]["telegram"]["bot_token"] == "set" and saved["channels"]["webhook"]["secret"] == "set"
    assert saved["channels"]["webhook"]["url"] == "https://hooks.example.org/tom"
    assert saved["events"]["run_failed"] == ["telegram", "webhook"] and saved["events"]["trade_receipt"] == ["email"]
    assert saved["events"]["order_filled"] == [] and saved["events"]["order_triggered"] == ["telegram"]
    # the matrix offers every event the server knows (its answer lists them all), each with its label and when it is sent
    rows = form.locator("[data-testid=event-matrix] tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.event)") == list(saved["events"])
    triggered = form.locator("tr[data-event=order_triggered]")
    expect(triggered).to_contain_text("Order triggered")
    expect(triggered.locator("small.about")).to_contain_text("a stop, take-profit or trailing stop fired")

    page.reload()
    form = page.get_by_test_id("notifications-form")
    expect(form.get_by_label("e-mail address")).to_have_value("tom@example.org")
    expect(form.get_by_label("chat id")).to_have_value("424242")
    expect(form.get_by_label("Bot token")).to_have_value("")
    expect(form.get_by_label("Bot token")).to_have_attribute("placeholder", "set — replace")
    expect(form.get_by_label("Signing secret (HMAC-SHA256)")).to_have_attribute("placeholder", "set — replace")
    expect(form.get_by_role("checkbox", name="Trade receipt by E-mail")).to_be_checked()
    expect(form.get_by_role("checkbox", name="Run failed by Telegram")).to_be_checked()
    expect(form.get_by_role("checkbox", name="Order triggered by Telegram")).to_be_checked()
    expect(form.get_by_role("checkbox", name="Run failed by Webhook")).to_be_checked()
    expect(form.get_by_role("checkbox", name="Order filled by E-mail")).not_to_be_checked()
    assert bot_token not in page.content() and hook_secret not in page.content()

    # saved again without typing the secrets: the stored ones are kept
    form.get_by_role("checkbox", name="Order filled by E-mail").check()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("notifications-error")).to_have_text("")
    with _client(server, TRADER) as tom:
        again = tom.get("/api/v1/me/notifications").json()
    assert again["events"]["order_filled"] == ["email"]
    assert again["channels"]["telegram"]["bot_token"] == "set" and again["channels"]["webhook"]["secret"] == "set"
    shot(w, "notifications-trader")

    # another trader and a viewer: their own, empty settings; nothing of tom's on their pages
    for user in (tess, VIEWER):
        o = signed_in(user)
        o.page.goto("/app/notifications")
        f = o.page.get_by_test_id("notifications-form")
        expect(f).to_be_visible()
        expect(f.get_by_label("e-mail address")).to_have_value("")
        expect(f.get_by_label("Bot token")).to_have_attribute("placeholder", "not set")
        expect(f.get_by_role("checkbox", name="Trade receipt by E-mail")).not_to_be_checked()
        assert "tom@example.org" not in o.page.content()
        with _client(server, user) as them:
            theirs = them.get("/api/v1/me/notifications").json()
        assert "tom@example.org" not in str(theirs)
    expect(page.get_by_test_id("dead-letters")).to_be_visible()


def _order_done(server: ServerProcess, user: tuple[str, str], client_oid: str) -> None:
    """`user` places a limit order far below the market and cancels it: one order_done (in a worker thread, off Playwright's loop)."""
    token = server.login(*user)["access_token"]

    async def run() -> None:
        async with RpcClient(f"{server.ws_anonymous}?access_token={token}") as rpc:
            bid = float((await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
            await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001",
                           limit=f"{bid * 0.5:.2f}", client_oid=client_oid)
            await rpc.call("cancel_order", client_oid=client_oid)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)


def test_send_test_per_channel_and_a_dead_letter_retried(
    signed_in: Any, server: ServerProcess, tess: tuple[str, str], mailbox: _Mailbox, hooks: _Hooks,
) -> None:
    secret = "tess-webhook-signing-secret"
    w = signed_in(tess)
    page = w.page
    page.goto("/app/notifications")
    form = page.get_by_test_id("notifications-form")
    form.get_by_label("e-mail address").fill("tess@example.org")
    form.get_by_label("webhook URL").fill(hooks.url)
    form.get_by_label("Signing secret (HMAC-SHA256)").fill(secret)
    form.get_by_role("checkbox", name="Order done by Webhook").check()
    expect(page.get_by_test_id("dead-letters")).to_contain_text("None")

    # "Send test" saves what is on screen first, then the local SMTP server gets one message for tess
    form.locator("[data-test-channel=email]").click()
    expect(page.get_by_test_id("test-result-email")).to_have_text("Sent: check that it arrived.")
    deadline = time.monotonic() + 10
    while not any(m["To"] == "tess@example.org" for m in mailbox.messages) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m["To"] for m in mailbox.messages].count("tess@example.org") == 1
    with _client(server, tess) as her:
        assert her.get("/api/v1/me/notifications").json()["events"]["order_done"] == ["webhook"]

    # a webhook that is down: the test says why it was not sent
    hooks.status = 500
    form.locator("[data-test-channel=webhook]").click()
    expect(page.get_by_test_id("test-result-webhook")).to_contain_text("Not sent:")
    expect(page.get_by_test_id("test-result-webhook")).to_contain_text("500")

    # an order of hers is done while it is down: two attempts, then a dead letter on her page only
    _order_done(server, tess, "tess-dead-letter-1")
    with _client(server, tess) as her:
        deadline = time.monotonic() + 20
        while not her.get("/api/v1/me/notifications/dead_letters").json()["dead_letters"] and time.monotonic() < deadline:
            time.sleep(0.2)
        [letter] = her.get("/api/v1/me/notifications/dead_letters").json()["dead_letters"]
    page.reload()
    row = page.get_by_test_id("dead-letter")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("webhook")
    expect(row).to_contain_text("order_done")
    expect(row).to_contain_text(letter["last_error"])
    shot(w, "notifications-dead-letter")
    for other in (TRADER, VIEWER):
        with _client(server, other) as them:
            assert them.get("/api/v1/me/notifications/dead_letters").json()["dead_letters"] == []
            assert them.post(f"/api/v1/me/notifications/dead_letters/{letter['id']}/retry").status_code == 404

    # the receiver is back: Retry delivers it once, signed with her secret
    hooks.status = 200
    row.get_by_role("button", name="Retry").click()
    deadline = time.monotonic() + 10
    while not hooks.received and time.monotonic() < deadline:
        time.sleep(0.1)
    [(headers, body)] = hooks.received
    signature = {k.lower(): v for k, v in headers.items()}["x-coinwire-signature"]
    assert signature == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert json.loads(body)["event"] == "order_done"
    page.reload()
    expect(page.get_by_test_id("dead-letters")).to_contain_text("None")


def test_pages_at_phone_width(signed_in: Any) -> None:
    w = signed_in(TRADER, PHONE)
    for name in ("schedules", "notifications"):
        w.page.goto(f"/app/{name}")
        w.page.locator("main#page .card").first.wait_for()
        w.page.wait_for_load_state("networkidle")
        overflow = w.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name}: {overflow}px sideways overflow at phone width"
        shot(w, f"{name}-phone")
