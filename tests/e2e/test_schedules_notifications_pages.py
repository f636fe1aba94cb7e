"""The Schedules and Notifications pages against a real server: two traders and a viewer, each seeing only their own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PHONE, TRADER, VIEWER, Watched, open_page, shot, sign_in
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path, mailbox: _Mailbox) -> Iterator[ServerProcess]:
    """The e2e server (the conftest's users), its SMTP relay the local one above, retries short enough to park a dead letter in seconds."""
    env = {"COINWIRE_NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "COINWIRE_NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
           "COINWIRE_NOTIFICATIONS_SMTP_SECURITY": "none", "COINWIRE_NOTIFICATIONS_SMTP_SENDER": "coinwire@example.org",
           "COINWIRE_NOTIFICATIONS_ATTEMPTS": "2", "COINWIRE_NOTIFICATIONS_BASE_DELAY": "0.2", "COINWIRE_NOTIFICATIONS_MAX_DELAY": "0.5"}
    proc = ServerProcess(Path(tmp_path_factory.mktemp("web-notify")), env=env)
    proc.start()
    with proc.client() as admin:
        for name, password, role in ((*VIEWER, "viewer"), (*TRADER, "trader")):
            r = admin.post("/api/v1/users", json={"username": name, "password": password, "role": role, "plan": "free"})
            assert r.status_code in (200, 201), r.text
    try:
        yield proc
    finally:
        proc.stop()


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


def _add_schedule(page: Page, name: str, spec: str, *, every: bool = False, zone: str = "UTC") -> None:
    form = page.get_by_test_id("add-schedule")
    form.get_by_label("name").fill(name)
    form.get_by_label("repeat by").select_option("every" if every else "cron")
    form.get_by_label("cron or interval").fill(spec)
    form.get_by_label("time zone").select_option(zone)
    form.get_by_label("job kind").select_option("retrieve_rates")
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
        bad = {"name": "bad", "cron": "61 * * * *", "timezone": "UTC", "job": {"kind": "retrieve_rates"}}
        refused = tom.post("/api/v1/schedules", json=bad)
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
    _add_schedule(page, "bad", "61 * * * *")
    expect(page.get_by_test_id("schedule-form-error")).to_have_text(message)
    with _client(server, TRADER) as tom:
        assert tom.get("/api/v1/schedules").json() == []

    # a good one: its row with the next runs the API computed, in the user's zone
    _add_schedule(page, "tom rates", "*/5 * * * *", zone="Europe/London")
    row = page.get_by_test_id("schedule-row").filter(has_text="tom rates")
    expect(row).to_be_visible()
    with _client(server, TRADER) as tom:
        [mine] = tom.get("/api/v1/schedules").json()
    assert mine["name"] == "tom rates" and mine["cron"] == "*/5 * * * *" and mine["timezone"] == "Europe/London"
    assert len(mine["next_runs"]) >= 3
    next_runs = row.get_by_test_id("schedule-next").locator("li")
    expect(next_runs).to_have_count(min(5, len(mine["next_runs"])))
    expect(next_runs.first).to_have_text(_shown(page, mine["next_runs"][0]))
    expect(row.get_by_test_id("schedule-spec")).to_have_text("*/5 * * * *")
    expect(row.get_by_test_id("schedule-state")).to_have_text("active")

    _add_schedule(page, "tom every minute", "1m", every=True)
    expect(page.get_by_test_id("schedule-row")).to_have_count(2)
    expect(page.get_by_test_id("schedule-row").filter(has_text="tom every minute").get_by_test_id("schedule-spec")).to_have_text("every 1m")

    # pause and resume
    row.get_by_role("button", name="Pause").click()
    expect(row.get_by_test_id("schedule-state")).to_have_text("paused")
    with _client(server, TRADER) as tom:
        assert next(s for s in tom.get("/api/v1/schedules").json() if s["name"] == "tom rates")["state"] == "paused"
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_test_id("schedule-state")).to_have_text("active")
    shot(w, "schedules-trader")

    # another trader sees none of tom's, and adds her own
    t = signed_in(tess)
    t.page.goto("/app/schedules")
    expect(t.page.get_by_test_id("schedules-list")).to_contain_text("No schedules yet")
    _add_schedule(t.page, "tess rates", "0 * * * *")
    expect(t.page.get_by_test_id("schedule-row")).to_have_count(1)
    expect(t.page.get_by_test_id("schedule-row")).to_contain_text("tess rates")
    with _client(server, tess) as her:
        assert [s["name"] for s in her.get("/api/v1/schedules").json()] == ["tess rates"]
        tom_id = mine["id"]
        assert her.delete(f"/api/v1/schedules/{tom_id}").status_code == 404  # not hers: not found, not removed
    page.reload()
    expect(page.get_by_test_id("schedule-row")).to_have_count(2)
    assert page.get_by_test_id("schedule-row").filter(has_text="tess rates").count() == 0

    # a viewer: an empty list, and the API's refusal shown when they try to add one
    v = signed_in(VIEWER)
    v.page.goto("/app/schedules")
    expect(v.page.get_by_test_id("schedules-list")).to_contain_text("No schedules yet")
    with _client(server, VIEWER) as vera:
        answer = vera.post("/api/v1/schedules", json={"name": "v", "every": "1m", "timezone": "UTC", "job": {"kind": "retrieve_rates"}})
        assert answer.status_code == 403, answer.text
        refusal = answer.json()["error"]["message"]
    _add_schedule(v.page, "v", "1m", every=True)
    expect(v.page.get_by_test_id("schedule-form-error")).to_have_text(refusal)
    shot(v, "schedules-viewer")

    # removed, after the modal
    row.get_by_role("button", name="Remove").click()
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("schedule-row")).to_have_count(1)
    with _client(server, TRADER) as tom:
        assert [s["name"] for s in tom.get("/api/v1/schedules").json()] == ["tom every minute"]


def test_notifications_page_round_trips_keeps_secrets_write_only_and_users_apart(
    signed_in: Any, server: ServerProcess, tess: tuple[str, str],
) -> None:
    w = signed_in(TRADER)
    page = w.page
    page.get_by_role("link", name="Notifications").click()
    form = page.get_by_test_id("notifications-form")
    expect(form).to_be_visible()
    bot_token = "123456:tom-secret-bot-token"
    hook_secret = "tom-webhook-signing-secret"

    # a URL that is not http(s): the API's message
    form.get_by_label("webhook URL").fill("ftp://example.org/hook")
    form.get_by_role("checkbox", name="Run failed by Webhook").check()
    with _client(server, TRADER) as tom:
        bad = {"channels": {"webhook": {"url": "ftp://example.org/hook"}}, "events": {"run_failed": ["webhook"]}}
        refused = tom.put("/api/v1/me/notifications", json=bad)
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("notifications-error")).to_have_text(message)

    form.get_by_label("e-mail address").fill("tom@example.org")
    form.get_by_label("Bot token").fill(bot_token)
    form.get_by_label("chat id").fill("424242")
    form.get_by_label("webhook URL").fill("https://hooks.example.org/tom")
    form.get_by_label("Signing secret (HMAC-SHA256)").fill(hook_secret)
    form.get_by_role("checkbox", name="Trade receipt by E-mail").check()
    form.get_by_role("checkbox", name="Run failed by Telegram").check()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("telegram_bot_token-state")).to_contain_text("set")

    with _client(server, TRADER) as tom:
        saved = tom.get("/api/v1/me/notifications").json()
    assert saved["channels"]["email"]["address"] == "tom@example.org"
    assert saved["channels"]["telegram"]["chat_id"] in ("424242", 424242)
    assert saved["channels"]["telegram"]["bot_token"] == "set" and saved["channels"]["webhook"]["secret"] == "set"
    assert saved["channels"]["webhook"]["url"] == "https://hooks.example.org/tom"
    assert sorted(saved["events"]["run_failed"]) == ["telegram", "webhook"] and saved["events"]["trade_receipt"] == ["email"]

    page.reload()
    form = page.get_by_test_id("notifications-form")
    expect(form.get_by_label("e-mail address")).to_have_value("tom@example.org")
    expect(form.get_by_label("chat id")).to_have_value("424242")
    expect(form.get_by_label("Bot token")).to_have_value("")
    expect(form.get_by_label("Bot token")).to_have_attribute("placeholder", "set — replace")
    expect(form.get_by_label("Signing secret (HMAC-SHA256)")).to_have_attribute("placeholder", "set — replace")
    expect(form.get_by_role("checkbox", name="Trade receipt by E-mail")).to_be_checked()
    expect(form.get_by_role("checkbox", name="Run failed by Telegram")).to_be_checked()
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


def test_pages_at_phone_width(signed_in: Any) -> None:
    w = signed_in(TRADER, PHONE)
    for name in ("schedules", "notifications"):
        w.page.goto(f"/app/{name}")
        w.page.locator("main#page .card").first.wait_for()
        w.page.wait_for_load_state("networkidle")
        overflow = w.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name}: {overflow}px sideways overflow at phone width"
        shot(w, f"{name}-phone")
