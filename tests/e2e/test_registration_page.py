"""Self-registration in the browser: the admin opens it on the Admin page, a visitor signs up through the form."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import DESKTOP, PHONE, TRADER, Watched, open_page, shot, sign_in
from tests.refdata.refdata_server import ECB_DAILY
from tests.server import ServerProcess


class _Ecb(BaseHTTPRequestHandler):
    """The ECB's daily reference rates, in their published format: EUR, GBP and more become display currencies."""

    def do_GET(self) -> None:
        if self.path != "/ecb/eurofxref-daily.xml":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(ECB_DAILY)))
        self.end_headers()
        self.wfile.write(ECB_DAILY)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path) -> Iterator[ServerProcess]:
    ecb = ThreadingHTTPServer(("127.0.0.1", 0), _Ecb)
    threading.Thread(target=ecb.serve_forever, daemon=True).start()
    config = f'[market_data]\nfx_source = "ecb"\nfx_url = "http://127.0.0.1:{ecb.server_port}/ecb/eurofxref-daily.xml"\n'
    proc = ServerProcess(Path(tmp_path_factory.mktemp("web")), config=config)
    proc.start()
    proc.traders(TRADER[0])
    try:
        yield proc
    finally:
        proc.stop()
        ecb.shutdown()
        ecb.server_close()


def _visitor(browser: Browser, server: ServerProcess, viewport: dict[str, int] = DESKTOP) -> Watched:
    """A signed-out browser in Paris (its time zone is what the form offers first)."""
    context = browser.new_context(viewport=viewport, base_url=server.http, timezone_id="Europe/Paris")  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    return Watched(context.new_page())


def _done(w: Watched, ignore: str = "") -> None:
    """Close the page: it must have logged no console error (but the refusals `ignore` names, by status)."""
    w.page.context.close()
    errors = [e for e in w.errors if not ignore or f"status of {ignore}" not in e]
    assert not errors, f"console errors: {w.errors}"


def test_an_admin_opens_self_registration_and_a_visitor_signs_up_through_the_form(browser: Browser, server: ServerProcess) -> None:
    closed = _visitor(browser, server)
    closed.page.goto("/")
    expect(closed.page.get_by_role("button", name="Sign in")).to_be_visible()
    closed.page.wait_for_load_state("networkidle")
    expect(closed.page.get_by_test_id("join")).to_be_hidden()  # off by default: no way to sign up
    _done(closed)

    admin = open_page(browser, server)
    sign_in(admin)
    admin.page.get_by_role("link", name="Admin").click()
    toggle = admin.page.get_by_test_id("self-registration")
    expect(toggle).to_be_enabled()
    expect(toggle).not_to_be_checked()
    expect(admin.page.get_by_test_id("registration-state")).to_contain_text("Closed")
    toggle.check()
    expect(admin.page.get_by_role("dialog")).to_contain_text("create a viewer account")
    admin.page.get_by_test_id("modal-confirm").click()
    expect(admin.page.get_by_test_id("registration-state")).to_contain_text("Open")
    expect(toggle).to_be_checked()
    shot(admin, "register-admin-settings")

    visitor = _visitor(browser, server)
    page = visitor.page
    page.goto("/")
    expect(page.get_by_test_id("join")).to_be_visible()
    shot(visitor, "register-sign-in")
    page.get_by_role("button", name="Create an account").click()
    form = page.get_by_role("form", name="create an account")
    expect(form.get_by_label("Time zone")).to_have_value("Europe/Paris")  # the browser's own
    expect(form.get_by_label("Show values in")).to_have_value("USD")
    form.get_by_label("User name").fill("zoe")
    form.get_by_label("Password (at least 8 characters)").fill("zoe-password-1")
    form.get_by_label("Repeat password").fill("zoe-password-1")
    form.get_by_label("Show values in").select_option("EUR")
    shot(visitor, "register-form")
    form.get_by_label("Repeat password").fill("zoe-password-2")
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_test_id("register-error")).to_have_text("The two passwords differ.")
    form.get_by_label("Repeat password").fill("zoe-password-1")
    form.get_by_label("User name").fill(TRADER[0])  # taken: the server's words
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_test_id("register-error")).to_contain_text("already exists")
    shot(visitor, "register-form-refused")
    form.get_by_label("User name").fill("zoe")
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_test_id("user")).to_have_text("zoe · viewer")  # signed in, as the role the admin chose
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    page.get_by_role("link", name="Preferences").click()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    expect(page.get_by_label("Show values in")).to_have_value("EUR")
    expect(page.get_by_test_id("fx-note")).to_have_text("")  # the ECB's rate: values shown in EUR
    _done(visitor, ignore="409")  # the taken name's refusal

    # the server holds what the form sent, for zoe alone
    token = server.login("zoe", "zoe-password-1")["access_token"]
    prefs = httpx.get(server.http + "/api/v1/me/preferences", headers={"Authorization": f"Bearer {token}"}).json()
    assert (prefs["time_zone"], prefs["currency"]) == ("Europe/Paris", "EUR")
    with server.client() as http:
        assert {u["username"]: u["role"] for u in http.get("/api/v1/users").json()}["zoe"] == "viewer"

    admin.page.reload()
    expect(admin.page.get_by_test_id("user-row").filter(has_text="zoe")).to_contain_text("viewer")
    admin.page.get_by_test_id("self-registration").uncheck()
    expect(admin.page.get_by_test_id("registration-state")).to_contain_text("Closed")
    _done(admin)
    after = _visitor(browser, server)
    after.page.goto("/")
    after.page.wait_for_load_state("networkidle")
    expect(after.page.get_by_test_id("join")).to_be_hidden()
    _done(after)


def test_the_sign_up_form_at_phone_width_and_no_admin_page_for_a_trader(browser: Browser, server: ServerProcess) -> None:
    with server.client() as admin:
        admin.put("/api/v1/admin/settings", json={"self_registration": True}).raise_for_status()
    try:
        w = _visitor(browser, server, PHONE)
        w.page.goto("/")
        w.page.get_by_role("button", name="Create an account").click()
        expect(w.page.get_by_role("button", name="Create account")).to_be_visible()
        width = w.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width  # nothing sideways
        shot(w, "register-form-phone")
        w.page.get_by_role("button", name="Sign in").click()  # back to sign-in
        expect(w.page.get_by_role("form", name="sign in")).to_be_visible()
        _done(w)
    finally:
        with server.client() as admin:
            admin.put("/api/v1/admin/settings", json={"self_registration": False}).raise_for_status()

    t = open_page(browser, server)
    sign_in(t, TRADER[0], f"{TRADER[0]}-password")
    expect(t.page.get_by_role("link", name="Logs")).to_be_visible()
    expect(t.page.get_by_role("link", name="Admin")).to_have_count(0)
    t.page.goto("/app/admin")
    expect(t.page.get_by_role("alert")).to_contain_text("may not see Admin")
    _done(t)
