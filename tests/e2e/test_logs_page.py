"""The Logs page: recent log messages and live ones; an admin sees the server's warnings, a trader only their own orders'."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
from playwright.sync_api import Browser, expect

from coinwire.api.client import RpcClient
from tests.e2e.conftest import PHONE, TRADER, open_page, shot, sign_in
from tests.server import ServerProcess


def _tom_order_done(server: ServerProcess, token: str, client_oid: str) -> None:
    """Tom places a limit order far from the market and cancels it (from a worker thread: Playwright owns this one's loop)."""
    async def run() -> None:
        async with RpcClient(f"{server.ws_anonymous}?access_token={token}") as tom:
            bid = float((await tom.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
            await tom.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001",
                           limit=f"{bid * 0.5:.2f}", client_oid=client_oid)
            await tom.call("cancel_order", client_oid=client_oid)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)


def test_logs_page_shows_warnings_live_to_admins_and_a_trader_only_their_own(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server)
    sign_in(w)
    page = w.page
    page.get_by_role("link", name="Logs").click()
    expect(page.get_by_test_id("logs")).to_be_visible()
    page.wait_for_load_state("networkidle")
    # live: a warning the server logs while the page is open (a refused sign-in)
    assert httpx.post(server.http + "/api/v1/auth/login", json={"username": "tom", "password": "not-his-password"}).status_code == 401
    row = page.get_by_test_id("log-row").filter(has_text="sign-in refused").first
    expect(row).to_be_visible()
    expect(row).to_contain_text("warning")
    expect(row).to_contain_text("coinwire.auth")
    expect(row).to_contain_text("client_ip=")
    with server.client() as admin:
        recent = admin.get("/api/v1/logs", params={"limit": 1}).json()["logs"][0]
    assert recent["message"] == "sign-in refused"
    shown = datetime.fromtimestamp(recent["created"], UTC).strftime("%d/%m/%Y, %H:%M:%S")  # the user's zone: UTC
    expect(row).to_contain_text(shown)
    shot(w, "logs-admin")
    w.page.context.close()
    assert not w.errors, f"console errors: {w.errors}"

    t = open_page(browser, server)
    sign_in(t, *TRADER)
    page = t.page
    page.goto("/app/logs")
    expect(page.get_by_test_id("logs")).to_be_visible()
    page.wait_for_load_state("networkidle")
    token = httpx.post(server.http + "/api/v1/auth/login", json={"username": TRADER[0], "password": TRADER[1]}).json()["access_token"]
    _tom_order_done(server, token, "tom-logs-page-1")
    expect(page.get_by_test_id("log-row").filter(has_text="Order tom-logs-page-1 is done (cancelled)")).to_be_visible()
    page.reload()  # the recent ones, from the REST route: still only his own
    expect(page.get_by_test_id("log-row").filter(has_text="Order tom-logs-page-1 is done (cancelled)")).to_be_visible()
    assert page.get_by_test_id("log-row").filter(has_text="sign-in refused").count() == 0
    assert page.get_by_test_id("log-row").count() == 1
    shot(t, "logs-trader")
    t.page.context.close()
    assert not t.errors, f"console errors: {t.errors}"


def test_logs_page_at_phone_width(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server, PHONE)
    sign_in(w)
    w.page.goto("/app/logs")
    expect(w.page.get_by_test_id("log-row").first).to_be_visible()  # at least the exchange's start
    w.page.wait_for_load_state("networkidle")
    shot(w, "logs-phone")
    w.page.context.close()
    assert not w.errors, f"console errors: {w.errors}"
