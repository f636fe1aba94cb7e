"""The dashboard against a real server: sign-in, markets, trading, wallets, runs, preferences, viewers."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import Watched, shot


def test_markets_chart_fills_and_updates_live(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/markets")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=chart]')?.dataset.candles || 0) >= 1")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=chart]')?.dataset.updates || 0) >= 3")
    expect(page.get_by_test_id("book").locator(".level.bid").first).to_be_visible()
    shot(admin_page, "markets-desktop")
