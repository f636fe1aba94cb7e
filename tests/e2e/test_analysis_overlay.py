"""The portfolio chart's Indicators control against a real server: the analyser's peak and SMA n drawn over stored
portfolio candles, drawdown from the peak in the legend, every stream ended when the view changes; another user's chart
shows none of the admin's values."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from coinwire.core.portfolio import BUCKET_S, PortfolioCandle
from coinwire.store import Store
from coinwire.store.portfolio_candles import PortfolioCandleRow, write_portfolio_candles
from tests.conftest import postgres_database
from tests.e2e.conftest import SHOTS, TRADER, VIEWER, open_page, serve_with_users, sign_in
from tests.feeds.binance_server import served_on_thread
from tests.refdata.refdata_server import RefDataVenue
from tests.server import ServerProcess

BARS = 40
SLOW = 45_000  # a new stream waits for the analyser's warm-up over the stored candles


def _rising_then_falling(end: int, now: Decimal) -> list[PortfolioCandle]:
    """BARS closed 15-minute candles ending at `end`, leading to about `now`: up 0.5% of it a bar to a peak, then down
    0.25% a bar (a drawdown at the end)."""
    out: list[PortfolioCandle] = []
    up, down = (now * Decimal("0.005")).quantize(Decimal(1)), (now * Decimal("0.0025")).quantize(Decimal(1))
    value = now - (BARS - 10) * up + 10 * down
    for i in range(BARS):
        step = up if i < BARS - 10 else -down
        o, c = value, value + step
        out.append(PortfolioCandle(end - (BARS - i) * BUCKET_S, o, max(o, c) + down, min(o, c) - down, c, Decimal(0), "complete"))
        value = c
    return out


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path, store_url: str) -> Iterator[ServerProcess]:
    """A server on its own database, with the viewer and the trader, and the market caps the total's balance card reads."""
    with served_on_thread(RefDataVenue(), timeout=10) as venue:
        config = f'[market_data]\ncoin_source = "coingecko"\ncoin_url = "http://127.0.0.1:{venue.port}/cg/api/v3"\ntop = 12\n'
        yield from serve_with_users(Path(tmp_path_factory.mktemp("web-analysis")), env={"COINWIRE_STORE_URL": store_url},
                                    config=config)


def _seed(store_url: str, user_id: int, now: Decimal) -> list[PortfolioCandle]:
    """The user's whole portfolio gets BARS stored candles up to the forming one (valued in USD, the default)."""
    end = int(time.time()) // BUCKET_S * BUCKET_S
    candles = _rising_then_falling(end, now)

    async def store_them() -> None:
        store = Store(store_url)
        await store.start()
        try:
            await write_portfolio_candles(store, [PortfolioCandleRow.of("user", str(user_id), "USD", c, 1) for c in candles])
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        pool.submit(asyncio.run, store_them()).result(timeout=60)
    return candles


def _wait_overlays(page: Page, *labels: str) -> None:
    """Until the chart has drawn a line for each label (in whatever order their histories came)."""
    page.wait_for_function(
        "(labels) => { const lines = (document.querySelector('[data-testid=portfolio-chart]')?.dataset.overlays || '').split('\\n');"
        " return labels.every((l) => lines.some((x) => x.startsWith(l + ':') && Number(x.slice(l.length + 1)) > 0)); }",
        arg=list(labels),
        timeout=SLOW,
    )


def _overlays(page: Page) -> dict[str, int]:
    text = page.evaluate("() => document.querySelector('[data-testid=portfolio-chart]')?.dataset.overlays ?? ''")
    return {k: int(v) for k, v in (line.rsplit(":", 1) for line in str(text).splitlines() if line)}



def test_peak_and_sma_lines_over_the_portfolio_and_drawdown_in_the_legend(store_url: str, server: ServerProcess,
                                                                           browser: Browser) -> None:
    # `store_url` first: its database is made before Playwright's loop runs in this thread
    admin = open_page(browser, server, {"width": 1280, "height": 800})
    try:
        sign_in(admin)
        page = admin.page
        page.goto("/app/portfolio")
        # the live value first: the stored history is made to lead to it, so both are drawn on one scale
        page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.close || 0) > 0",
                               timeout=SLOW)
        now = Decimal(str(page.get_by_test_id("portfolio-chart").get_attribute("data-close"))).quantize(Decimal(1))
        me = httpx.get(server.http + "/api/v1/me", headers=server.headers).json()
        seeded = _seed(store_url, int(me["id"]), now)
        page.reload()
        page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.candles || 0) >= 30")
        assert _overlays(page) == {}  # nothing chosen: nothing subscribed or drawn
        control = page.get_by_test_id("indicators")
        control.locator("[data-indicator=peak]").check()
        _wait_overlays(page, "Peak")
        page.get_by_test_id("sma-n").fill("5")
        page.get_by_test_id("indicators").locator("[data-indicator=sma]").check()
        page.get_by_test_id("indicators").locator("[data-indicator=drawdown]").check()
        _wait_overlays(page, "Peak", "SMA 5")
        drawn = _overlays(page)
        # the analyser's warm-up over the stored candles: a peak per bar, an SMA 5 from the fifth
        assert drawn["Peak"] >= BARS - 1 and drawn["SMA 5"] >= BARS - 5, drawn
        peak = max(c.close for c in seeded)
        last = seeded[-1].close
        expected = float((peak - last) / peak * 100)
        legend = page.get_by_test_id("indicator-legend")
        expect(legend).to_contain_text(re.compile(r"Drawdown −\d+\.\d\d%"))
        shown = float(re.search(r"−(\d+\.\d\d)%", legend.inner_text() or "").group(1))  # type: ignore[union-attr]
        assert abs(shown - expected) <= 0.01, (shown, expected)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "portfolio-indicators.png"))

        # the choice is kept across visits; a timeframe the analyser does not roll up says so and draws no line
        page.reload()
        _wait_overlays(page, "SMA 5")
        expect(page.get_by_test_id("sma-n")).to_have_value("5")
        page.locator(".portfolio-chart [data-tf='1w']").click()
        expect(page.get_by_test_id("indicator-legend")).to_contain_text("15m to 1d")
        page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.candles || 0) >= 1")
        assert _overlays(page) == {}
        page.locator(".portfolio-chart [data-tf='15m']").click()
        _wait_overlays(page, "Peak")
        assert not admin.errors, admin.errors
    finally:
        admin.page.context.close()

    # an indicator rule on the same series: the Rules page shows the analyser's current value of it
    rule = {"kind": "indicator", "series": f"portfolio:user:{me['id']}:15m", "indicator": "peak", "op": "below", "threshold": "1"}
    made = httpx.post(server.http + "/api/v1/rulesets", headers=server.headers, json={
        "name": "peak watch", "scope": "user", "scope_id": str(me["id"]), "mode": "dry_run", "rules": [rule],
        "actions": [{"kind": "notify"}]})
    assert made.status_code in (200, 201), made.text
    rules = open_page(browser, server, {"width": 1280, "height": 800})
    try:
        sign_in(rules)
        rules.page.goto("/app/rules")
        row = rules.page.get_by_test_id("rule-set-row").filter(has_text="peak watch")
        expect(row.get_by_test_id("rule-indicator")).to_contain_text(f"portfolio.user.{me['id']}.15m:peak()")
        expect(row.get_by_test_id("rule-indicator-value")).to_have_text(re.compile(r"^\d[\d,]*\.\d\d$"), timeout=SLOW)
        shown_peak = float(row.get_by_test_id("rule-indicator-value").inner_text().replace(",", ""))
        assert abs(shown_peak - float(max(c.close for c in seeded))) <= 0.01  # a money figure: the display's two decimals
        expect(row.get_by_test_id("rule-compared-to")).to_contain_text("1")
        row.screenshot(path=str(SHOTS / "rules-indicator-value.png"))
        assert not rules.errors, rules.errors
    finally:
        rules.page.context.close()

    # another user and a viewer: their own portfolios, none of the admin's values on their charts
    for who, password in (TRADER, VIEWER):
        other = open_page(browser, server, {"width": 1280, "height": 800})
        try:
            sign_in(other, who, password)
            page = other.page
            page.goto("/app/portfolio")
            page.get_by_test_id("indicators").locator("[data-indicator=peak]").check()
            page.wait_for_timeout(1500)
            assert all(n == 0 for n in _overlays(page).values()), (who, _overlays(page))
            expect(page.get_by_test_id("indicator-legend")).not_to_contain_text("unavailable")
            assert not other.errors, other.errors
        finally:
            other.page.context.close()
