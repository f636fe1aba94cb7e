"""The portfolio pages against a real server: value candles updating live, masking, scopes kept per user, the Overview's chart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from coinwire.core.daily_stats import DailyStats, day_bounds
from coinwire.store.portfolio_daily import write_days
from coinwire.store.store import Store
from tests.e2e.conftest import (
    ADMIN_PASSWORD,
    PHONE,
    TRADER,
    VIEWER,
    Watched,
    open_page,
    rpc_as,
    serve_with_users,
    shot,
    sign_in,
    toggle_mask,
)
from tests.feeds.binance_server import RecordedBinance, ServerRunner, served_on_thread
from tests.feeds.test_ccxt_feed import capture
from tests.refdata.refdata_server import RefDataVenue
from tests.server import DEMO_EXCHANGES, ServerProcess
from tests.venues.binance_history import seeded_history
from tests.venues.binance_trading import API_KEY, SECRET, TradingBinance, trading_urls
from tests.venues.conftest import OPTIONS

MASK = "•••••"


@pytest.fixture(scope="module")
def refdata_base() -> Iterator[str]:
    """The local CoinGecko stand-in (the top coins by market cap the balance view compares with), on a thread of its own."""
    venue = RefDataVenue()
    venue.coins = 12
    with served_on_thread(venue, timeout=10) as runner:
        yield f"http://127.0.0.1:{runner.port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path, refdata_base: str) -> Iterator[ServerProcess]:
    """The harness's server with its viewer and trader, and top coins by market cap from the stand-in."""
    config = f'[market_data]\ncoin_source = "coingecko"\ncoin_url = "{refdata_base}/cg/api/v3"\ntop = 12\n'
    yield from serve_with_users(Path(tmp_path_factory.mktemp("web-portfolio")), config=config)


def _dataset(page: Page, testid: str, key: str) -> str | None:
    value = page.evaluate(f"() => document.querySelector('[data-testid={testid}]')?.dataset.{key} ?? null")
    return None if value is None else str(value)


def _wait_live(page: Page, updates: int = 2) -> None:
    """The chart has its history and the forming candle has changed `updates` times since."""
    page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.candles || 0) >= 1")
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.updates || 0) >= {updates}", timeout=30_000)


def _no_sideways_overflow(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide at {PHONE['width']}"


def _buy(server: ServerProcess, token: str, size: str) -> None:
    """A market buy on the demo exchange: the portfolio then holds BTC (its value moves with the price) and traded volume."""
    rpc_as(server, token, [("make_order", {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market", "size": size})])


def test_portfolio_candles_update_live_switch_and_fit_a_phone(admin_page: Watched, browser: Browser, server: ServerProcess) -> None:
    _buy(server, server.token, "0.02")
    page = admin_page.page
    page.goto("/app/portfolio")
    expect(page.get_by_test_id("scope-picker")).to_have_value(re.compile(r"^user:\d+$"))
    _wait_live(page, updates=2)
    before = float(_dataset(page, "portfolio-chart", "volume") or 0)
    _buy(server, server.token, "0.01")  # a fill: the forming candle's volume grows by its notional (at least 0.01 BTC's worth)
    page.wait_for_function(f"() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.volume || 0) > {before}",
                           timeout=30_000)
    assert float(_dataset(page, "portfolio-chart", "close") or 0) > 0
    expect(page.get_by_test_id("portfolio-status")).to_have_text("live")
    expect(page.get_by_test_id("portfolio-value")).to_contain_text(re.compile(r"\d"))
    expect(page.get_by_test_id("balance-row").first).to_be_visible()  # the user's total: weights against market caps
    expect(page.get_by_test_id("daily-stats")).not_to_contain_text("could not be read")
    shot(admin_page, "portfolio-desktop")

    # the REST history agrees with what the page drew: one candle per bucket, the last close the page's value
    me = httpx.get(server.http + "/api/v1/me", headers=server.headers).json()
    rows = httpx.get(f"{server.http}/api/v1/portfolio/user/{me['id']}/ohlcv", params={"timeframe": "15m"}, headers=server.headers).json()
    assert len(rows) >= 1 and all(len(r) == 6 for r in rows)

    page.locator(".portfolio-chart [data-tf='1h']").click()
    expect(page.locator(".portfolio-chart [data-tf='1h']")).to_have_attribute("aria-pressed", "true")
    page.get_by_test_id("portfolio-tz").select_option("Asia/Kolkata")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.candles || 0) >= 1")
    expect(page.get_by_test_id("portfolio-status")).to_contain_text(re.compile(r"1h · Asia/Kolkata|live"))

    # the scope picker lists the user's own account; choosing it draws that portfolio
    picker = page.get_by_test_id("scope-picker")
    account = picker.locator("option[value^='account:']").first
    value = account.get_attribute("value")
    assert value
    picker.select_option(value)
    expect(page).to_have_url(re.compile(r"/app/portfolio\?scope=account&id=\d+$"))
    page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.candles || 0) >= 1")

    phone = open_page(browser, server, PHONE)
    try:
        sign_in(phone)
        phone.page.goto("/app/portfolio")
        _wait_live(phone.page, updates=1)
        _no_sideways_overflow(phone.page)
        shot(phone, "portfolio-phone")
    finally:
        phone.page.context.close()
    assert not phone.errors, phone.errors


def _drawn_columns(page: Page) -> int:
    """Columns of the chart's first row that are drawn (the pane, and the value axis unless it is hidden)."""
    return int(page.evaluate("""() => [...(document.querySelector('[data-testid=portfolio-chart] table tr')?.children ?? [])]
        .filter((td) => td.querySelector('canvas') && td.getBoundingClientRect().width > 0).length"""))


def test_masking_hides_portfolio_values_volumes_and_axis(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/portfolio")
    _wait_live(page, updates=1)
    expect(page.get_by_test_id("portfolio-chart")).to_have_attribute("data-masked", "false")
    expect(page.get_by_test_id("portfolio-value")).to_contain_text(re.compile(r"\d"))
    assert _drawn_columns(page) == 2  # the pane and the value axis
    toggle_mask(page)
    try:
        expect(page.locator("html")).to_have_class(re.compile("masked"))
        chart = page.get_by_test_id("portfolio-chart")
        expect(chart).to_have_attribute("data-masked", "true")
        expect(page.get_by_test_id("portfolio-value")).to_have_text(MASK)
        expect(page.get_by_test_id("portfolio-change")).not_to_contain_text(re.compile(r"^[+-]?\d[\d,]*\.\d+ "))
        page.wait_for_function("""() => [...(document.querySelector('[data-testid=portfolio-chart] table tr')?.children ?? [])]
            .filter((td) => td.querySelector('canvas') && td.getBoundingClientRect().width > 0).length === 1""")  # no value axis
        shot(admin_page, "portfolio-masked-desktop")
        # a new view (the Overview's chart) starts masked too
        page.goto("/app/overview")
        page.wait_for_function("() => document.querySelector('[data-testid=portfolio-chart]')?.dataset.masked === 'true'")
        expect(page.get_by_test_id("portfolio-value")).to_have_text(MASK)
        expect(page.get_by_test_id("total-value")).to_have_text(MASK)
    finally:
        toggle_mask(page)  # unmasked again for the tests after this one (a closed page would abort the write)
        expect(page.locator("html")).not_to_have_class(re.compile("masked"))


def test_overview_draws_the_users_portfolio_candles(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/overview")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.candles || 0) >= 1")
    expect(page.get_by_test_id("total-value")).to_contain_text("USD")
    expect(page.get_by_test_id("portfolio-value")).to_contain_text(re.compile(r"\d"))
    shot(admin_page, "overview-portfolio-desktop")


def test_another_users_portfolio_is_not_found_on_the_page(browser: Browser, server: ServerProcess) -> None:
    admin_accounts = httpx.get(server.http + "/api/v1/accounts", headers=server.headers).json()
    theirs = next(a for a in admin_accounts if a["owner"] is not None and a["kind"] == "paper")
    w = open_page(browser, server)
    sign_in(w, *TRADER)
    page = w.page
    page.goto("/app/portfolio")
    options = page.get_by_test_id("scope-picker").locator("option")
    expect(options.first).not_to_have_text("loading…")
    assert f"account:{theirs['id']}" not in [o.get_attribute("value") for o in options.all()]
    page.goto(f"/app/portfolio?scope=account&id={theirs['id']}")
    expect(page.get_by_test_id("portfolio-status")).to_have_class("error")
    expect(page.get_by_test_id("portfolio-chart")).not_to_have_attribute("data-candles", re.compile(r"[1-9]"))
    w.page.context.close()
    # the refused daily stats and balance reads are the page's only console errors (the browser logs each 404)
    assert not [e for e in w.errors if "404" not in e], w.errors


# --- daily stats: the table and its bar chart, with recorded days, masked ------------------------------------------

DESKTOP_1280 = {"width": 1280, "height": 800}
# three recorded days of the admin's paper account, oldest first: (closing, pnl, realised, fees, trades, win rate, deposits)
DAYS = [("10120.5", "120.5", "100.25", "3.75", 4, "0.75", "0"),
        ("10575.25", "-45.25", "-60.5", "1.25", 2, "0.5", "500"),
        ("10655.25", "80", "0", "0", 0, None, "0")]
MONEY = ("Close", "PnL", "Realised", "Unrealised", "Fees", "Funding", "Peak", "Deposits", "Withdrawals")


def _recorded_days(zone: ZoneInfo, today: date) -> list[DailyStats]:
    """What the recorder would have stored for the three days before `today` (the owner's local days)."""
    out = []
    for i, (closing, pnl, realised, fees, trades, win_rate, deposits) in enumerate(DAYS):
        day = today - timedelta(days=len(DAYS) - i)
        start, end = day_bounds(day, zone)
        close, gain = Decimal(closing), Decimal(pnl)
        out.append(DailyStats(
            day=day.isoformat(), start=start, end=end, currency="USD", status="recorded", closing=close,
            opening=close - gain - Decimal(deposits), pnl=gain, realised=Decimal(realised), unrealised=gain - Decimal(realised),
            fees=Decimal(fees), deposits=Decimal(deposits), trades=trades, closing_trades=trades,
            winning_trades=int(trades * Decimal(win_rate or 0)), win_rate=None if win_rate is None else Decimal(win_rate),
            exposure=Decimal("0.25"), peak=Decimal("10700"), drawdown=Decimal("0.0042")))
    return out


@pytest.fixture(scope="module")
def daily_server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path) -> Iterator[tuple[ServerProcess, int]]:
    """A server whose admin's paper account has three recorded days, written to its store while it was stopped (as the
    daily stats API's test does), then started again; with the account's id."""
    folder = Path(tmp_path_factory.mktemp("web-daily"))
    proc = ServerProcess(folder)
    proc.start()
    try:
        with proc.client() as admin:
            me = admin.get("/api/v1/me").json()
            zone = ZoneInfo(admin.get("/api/v1/me/preferences").json()["time_zone"])
            account = next(a["id"] for a in admin.get("/api/v1/accounts").json() if a["owner"] == me["id"] and a["kind"] == "paper")
    finally:
        proc.stop()
    url = f"sqlite:///{folder / 'coinwire.db'}"
    days = _recorded_days(zone, datetime.now(UTC).astimezone(zone).date())

    async def write() -> None:
        async with Store(url, journal=True) as store:
            await write_days(store, "account", str(account), days, now_ns=time.time_ns())

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may own this thread's event loop
        pool.submit(asyncio.run, write()).result(timeout=60)
    proc.start()
    try:
        yield proc, account
    finally:
        proc.stop()


def _cells(page: Page, label: str) -> list[str]:
    """The daily table's cells of one column, newest day first (as the table lists them)."""
    return [str(t) for t in page.evaluate(
        f"() => [...document.querySelectorAll('[data-testid=daily-row] td[data-label=\"{label}\"]')].map((td) => td.textContent)")]


def _bars(page: Page) -> list[dict[str, Any]]:
    """The bar chart's bars in the order drawn (oldest day first): class, height and the tooltip's text."""
    return list(page.evaluate("""() => [...document.querySelectorAll('[data-testid=daily-stats] svg.daily-chart rect')].map((r) =>
        ({cls: r.getAttribute('class'), height: Number(r.getAttribute('height')), title: r.querySelector('title')?.textContent}))"""))


def test_daily_stats_table_and_chart_show_recorded_days_and_masking_hides_their_money(
        browser: Browser, daily_server: tuple[ServerProcess, int]) -> None:
    server, account = daily_server
    days = [d["day"] for d in httpx.get(f"{server.http}/api/v1/portfolio/account/{account}/daily", headers=server.headers).json()
            if d["status"] == "recorded"]  # fmt: skip
    assert len(days) == 3, days
    path = f"/app/portfolio?scope=account&id={account}"
    w = open_page(browser, server, DESKTOP_1280)
    sign_in(w)
    page = w.page
    masked = False
    try:
        page.goto(path)
        expect(page.get_by_test_id("daily-row")).to_have_count(3)
        # the table: newest day first, money at the user's 2 decimals, counts and ratios as they are
        newest_first = list(reversed(DAYS))
        assert _cells(page, "Day") == list(reversed(days))
        assert _cells(page, "Close") == [f"{Decimal(d[0]):,.2f}" for d in newest_first] == ["10,655.25", "10,575.25", "10,120.50"]
        assert _cells(page, "PnL") == ["80.00", "-45.25", "120.50"]
        assert _cells(page, "Fees") == ["0.00", "1.25", "3.75"]
        assert _cells(page, "Deposits") == ["0.00", "500.00", "0.00"]
        assert _cells(page, "Trades") == ["0", "2", "4"]
        assert _cells(page, "Win rate") == ["–", "50.00%", "75.00%"]
        assert _cells(page, "Drawdown") == ["0.42%"] * 3
        # the chart: one bar per day in date order, up for a gain and down for a loss, heights in proportion to the PnL
        bars = _bars(page)
        assert [b["cls"] for b in bars] == ["up", "down", "up"]
        tallest = bars[0]["height"]
        assert tallest == pytest.approx(56)  # the largest move fills half the chart (less its margin)
        assert [b["height"] / tallest for b in bars] == pytest.approx([1, 45.25 / 120.5, 80 / 120.5])
        assert [b["title"] for b in bars] == [f"{days[0]}: 120.50", f"{days[1]}: -45.25", f"{days[2]}: 80.00"]
        shot(w, "portfolio-daily-desktop")

        phone = open_page(browser, server, PHONE)
        try:
            sign_in(phone)
            phone.page.goto(path)
            expect(phone.page.get_by_test_id("daily-row")).to_have_count(3)
            assert _cells(phone.page, "PnL") == ["80.00", "-45.25", "120.50"]
            _no_sideways_overflow(phone.page)
            shot(phone, "portfolio-daily-phone")
        finally:
            phone.page.context.close()
        assert not phone.errors, phone.errors

        toggle_mask(page)
        masked = True
        expect(page.locator("html")).to_have_class(re.compile("masked"))
        # every money column hidden, in the table and in the bars' tooltips; counts, ratios and the bars' shape stay
        page.wait_for_function("() => document.querySelector('[data-testid=daily-row] td[data-label=Close]')?.textContent === '•••••'")
        for label in MONEY:
            assert _cells(page, label) == [MASK] * 3, label
        assert _cells(page, "Trades") == ["0", "2", "4"] and _cells(page, "Win rate") == ["–", "50.00%", "75.00%"]
        assert [b["title"] for b in _bars(page)] == [f"{day}: {MASK}" for day in days]
        assert [b["cls"] for b in _bars(page)] == ["up", "down", "up"]
        text = page.get_by_test_id("daily-stats").inner_text()
        for figure in ("10,655.25", "10,575.25", "10,120.50", "120.50", "45.25", "80.00", "500.00", "3.75", "1.25"):
            assert figure not in text, figure
        shot(w, "portfolio-daily-masked-desktop")

        phone = open_page(browser, server, PHONE)
        try:
            sign_in(phone)
            phone.page.goto(path)  # a new view starts masked (the preference is the server's)
            expect(phone.page.get_by_test_id("daily-row")).to_have_count(3)
            phone.page.wait_for_function(
                "() => document.querySelector('[data-testid=daily-row] td[data-label=PnL]')?.textContent === '•••••'")
            assert _cells(phone.page, "PnL") == [MASK] * 3 and _cells(phone.page, "Trades") == ["0", "2", "4"]
            _no_sideways_overflow(phone.page)
            shot(phone, "portfolio-daily-masked-phone")
        finally:
            phone.page.context.close()
        assert not phone.errors, phone.errors
    finally:
        if masked:
            toggle_mask(page)
            expect(page.locator("html")).not_to_have_class(re.compile("masked"))
        page.context.close()
    assert not w.errors, w.errors


# --- import with progress, against the local signed Binance holding a recorded past ------------------------------


@pytest.fixture(scope="module")
def binance() -> Iterator[ServerRunner]:
    """The local signed Binance (recorded book, a seeded past of trades, deposits and withdrawals), on its own loop."""
    seeded = seeded_history()
    venue = TradingBinance(RecordedBinance(capture()), dict(seeded.balances), history=seeded.history)
    venue.trades.extend(seeded.btc_trades)
    with served_on_thread(venue) as runner:
        yield runner


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path, binance: ServerRunner) -> Iterator[ServerProcess]:
    exchanges = [*DEMO_EXCHANGES, {"name": "binance", "mode": "live", "feed": "ccxt", "symbols": ["BTC/USDT"],
                                   "ccxt_websocket": False, "ccxt_urls": trading_urls(binance), "ccxt_options": OPTIONS}]
    env = {"COINWIRE_BINANCE_API_KEY": API_KEY, "COINWIRE_BINANCE_SECRET": SECRET, "COINWIRE_IMPORT_PAGE_LIMIT": "20",
           "COINWIRE_IMPORT_HISTORY_START": "2020-10-01", "COINWIRE_IMPORT_TIMEFRAME": "5m"}
    proc = ServerProcess(Path(tmp_path_factory.mktemp("web-live")), exchanges=exchanges, env=env)
    proc.start(wait_ready=False)  # the local Binance has no ticker route: its market feed never reads `ready`, trading does
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(proc.http + "/readyz", timeout=1.0).json()["exchanges"].get("demo") == "ready":
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError(f"server not up:\n{proc.log()}")
        yield proc
    finally:
        proc.stop()


def test_importing_page_shows_progress_and_the_end(browser: Browser, live_server: ServerProcess) -> None:
    w = open_page(browser, live_server)
    sign_in(w, "admin", ADMIN_PASSWORD)
    page = w.page
    pushed: list[dict[str, Any]] = []  # the `import_progress` notifications the page's WebSocket received
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: pushed.extend(_progress_pushes(frame))))
    page.goto("/app/importing")
    row = page.get_by_test_id("import-row").first
    expect(row).to_be_visible(timeout=30_000)
    account = int(row.get_attribute("data-account") or 0)
    # every text the progress line shows, kept as it changes (the pushes come faster than a test polls)
    page.evaluate("""() => { window.seen = []; const el = document.querySelector('[data-testid=import-text]');
        new MutationObserver(() => window.seen.push(el.textContent))
          .observe(el, {childList: true, characterData: true, subtree: true}); }""")
    row.get_by_test_id("import-start").click()
    try:  # a picture of it under way (the steps may outrun the status reads: then only the end is pictured)
        page.wait_for_function("() => / of \\d+/.test(document.querySelector('[data-testid=import-text]').textContent)", timeout=20_000)
        shot(w, "importing-running-desktop")
    except PlaywrightTimeout:
        pass
    expect(row).to_have_attribute("data-state", "done", timeout=120_000)
    expect(row.get_by_test_id("import-text")).to_have_text("Finished: your history is in.")
    expect(row.get_by_role("link", name="See its portfolio")).to_have_attribute("href", f"/app/portfolio?scope=account&id={account}")
    assert page.evaluate("() => document.querySelector('[data-testid=import-bar]').value") == 1
    seen: list[str] = page.evaluate("() => window.seen")
    counted = [t for t in seen if re.search(r" · \d+ of \d+", t)]
    assert counted, f"no progress with done of total was shown: {seen}"
    # the progress came by push (an admin may view the platform's own live account, so hears its `import_progress`)
    mine = [p for p in pushed if p.get("account_id") == account]
    assert [p["state"] for p in mine][-1:] == ["done"] and any(p["state"] == "running" for p in mine), pushed
    shot(w, "importing-desktop")
    status = httpx.get(f"{live_server.http}/api/v1/accounts/{account}/import", headers=live_server.headers).json()
    assert status["state"] == "done"
    # a second import (a new one: adds nothing twice) is pushed to the page under way and finished, and the page ends
    # finished again (not left at the first one's end: its row shows the new import's end)
    pushed.clear()
    row.get_by_test_id("import-start").click()
    deadline = time.monotonic() + 120
    while not any(p.get("account_id") == account and p["state"] == "done" for p in pushed):
        assert time.monotonic() < deadline, pushed
        page.wait_for_timeout(100)
    again = httpx.get(f"{live_server.http}/api/v1/accounts/{account}/import", headers=live_server.headers).json()
    assert again["state"] == "done" and again["import_id"] != status["import_id"]
    second = [(p["import_id"], p["state"]) for p in pushed if p.get("account_id") == account]
    assert second[0] == (again["import_id"], "running") and second[-1] == (again["import_id"], "done"), second
    expect(row.get_by_test_id("import-start")).to_have_text("Import again")
    expect(row).to_have_attribute("data-state", "done")
    expect(row.get_by_test_id("import-text")).to_have_text("Finished: your history is in.")
    page.set_viewport_size(PHONE)
    _no_sideways_overflow(page)
    shot(w, "importing-phone")
    w.page.context.close()
    assert not [e for e in w.errors if "404" not in e], w.errors  # the first status read: no import yet (404)


def _progress_pushes(frame: str | bytes) -> list[dict[str, Any]]:
    """The `import_progress` params in one WebSocket frame (a JSON-RPC notification, or a batch of them)."""
    try:
        data = json.loads(frame)
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    return [m["params"] for m in items if isinstance(m, dict) and m.get("method") == "import_progress"]


# --- external accounts: the webhook secret shown once ----------------------------------------------------------------

KRIPTO = {"id": "aa368788-bb4f-40c0-b80f-afcfdaf18574", "side": "buy", "productId": "BTC-GBP", "funds": "9.95024875",
          "settled": True, "createdAt": "2020-05-19T19:39:00", "fillFees": "0.049751102976", "filledSize": "0.00125952",
          "executedValue": "9.9502205952"}


def _deliver(server: ServerProcess, account: int, secret: str, trade: dict[str, object]) -> httpx.Response:
    body = json.dumps(trade).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{server.http}/api/v1/webhooks/{account}", content=body,
                      headers={"Content-Type": "application/json", "X-Coinwire-Signature": signature})


def test_external_account_set_up_shows_the_secret_once(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server)
    sign_in(w, *TRADER)
    page = w.page
    page.goto("/app/external")
    form = page.get_by_test_id("external-form")
    form.get_by_label("account name").fill("Hopper")
    form.get_by_label("what it tracks").fill("cryptohopper")
    form.get_by_label("opening holdings").fill("GBP=100, BTC=zero")
    form.get_by_role("button", name="Add external account").click()
    expect(page.get_by_test_id("external-error")).to_contain_text('"BTC=zero": write each holding as CURRENCY=amount')
    expect(page.get_by_test_id("secret-once")).to_have_count(0)  # refused first: nothing was made
    form.get_by_label("opening holdings").fill("GBP=100")
    form.get_by_role("button", name="Add external account").click()
    once = page.get_by_test_id("secret-once")
    expect(once).to_be_visible()
    secret = page.get_by_test_id("webhook-secret").input_value()
    assert len(secret) >= 16
    row = page.get_by_test_id("external-row").filter(has_text="Hopper")
    expect(row).to_be_visible()
    account = int(row.get_attribute("data-account") or 0)
    expect(page.get_by_test_id("webhook-url")).to_have_text(f"{server.http}/api/v1/webhooks/{account}")
    shot(w, "external-secret-desktop")
    # the secret shown is the account's: a trade signed with it is applied, once
    assert _deliver(server, account, secret, KRIPTO).status_code == 201
    assert _deliver(server, account, secret, KRIPTO).json().get("duplicate") is True
    assert _deliver(server, account, "not-the-secret", {**KRIPTO, "id": "other"}).status_code == 401

    page.get_by_test_id("secret-done").click()
    expect(once).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("external-row").filter(has_text="Hopper")).to_be_visible()
    assert secret not in page.content()  # never shown again

    row = page.get_by_test_id("external-row").filter(has_text="Hopper")
    row.get_by_role("button", name="Rotate secret").click()
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("secret-once")).to_be_visible()
    rotated = page.get_by_test_id("webhook-secret").input_value()
    assert rotated and rotated != secret
    assert _deliver(server, account, secret, {**KRIPTO, "id": "after-rotation"}).status_code == 401  # the old one stopped
    assert _deliver(server, account, rotated, {**KRIPTO, "id": "after-rotation"}).status_code == 201
    page.set_viewport_size(PHONE)
    _no_sideways_overflow(page)
    shot(w, "external-secret-phone")
    w.page.context.close()
    assert not [e for e in w.errors if "400" not in e], w.errors

    # another user neither lists it nor may rotate it
    viewer = open_page(browser, server)
    sign_in(viewer, *VIEWER)
    viewer.page.goto("/app/external")
    expect(viewer.page.get_by_test_id("external-list")).to_contain_text("No external account yet")
    token = server.login(*VIEWER)["access_token"]
    r = httpx.post(f"{server.http}/api/v1/accounts/{account}/webhook-secret", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (403, 404), r.text
    viewer.page.context.close()
