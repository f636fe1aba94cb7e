"""The dashboard against a real server: sign-in, markets, trading, wallets, runs, preferences, viewers."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, expect

from coinwire.api.client import RpcClient
from tests.conftest import shared_data
from tests.e2e.conftest import DESKTOP, PHONE, TRADER, VIEWER, Watched, open_page, rpc_as, shot, sign_in, toggle_mask
from tests.server import ServerProcess

PAGES = ["overview", "markets", "trade", "wallets", "runs", "exchanges", "rules", "schedules", "notifications", "preferences"]


def test_pages_and_api_share_the_server_without_shadowing(server: ServerProcess, dashboard_built: Path) -> None:
    for path in ("/", "/app/markets", "/app/runs/bt-1"):
        r = httpx.get(server.http + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and '<div id="app">' in r.text
        assert r.headers["cache-control"] == "no-cache" and "default-src 'self'" in r.headers["content-security-policy"]
    runs = httpx.get(server.http + "/runs", headers=server.headers)  # the REST list, not the page
    assert runs.status_code == 200 and runs.headers["content-type"].startswith("application/json")
    assert httpx.get(server.http + "/runs").status_code == 401  # and still guarded
    asset = next((dashboard_built / "assets").glob("index-*.js")).name
    r = httpx.get(f"{server.http}/assets/{asset}")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"] and "immutable" in r.headers["cache-control"]
    for bad in ("/assets/..%2Findex.html", "/assets/nope.js", "/assets/%2e%2e/%2e%2e/api/app.py"):
        assert httpx.get(server.http + bad).status_code == 404


def test_bundle_stays_under_500_kb_gzipped(dashboard_built: Path) -> None:
    total = sum(len(gzip.compress(p.read_bytes(), 9)) for p in (dashboard_built / "assets").glob("*.js"))
    assert 0 < total < 500_000, total


def test_sign_in_refusal_is_shown_plainly(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server)
    w.page.goto("/app/trade")
    expect(w.page).to_have_url(f"{server.http}/app/login?next=%2Fapp%2Ftrade")
    w.page.get_by_label("User name").fill("admin")
    w.page.get_by_label("Password").fill("wrong-password")
    w.page.get_by_role("button", name="Sign in").click()
    expect(w.page.get_by_test_id("login-error")).to_contain_text("wrong user name or password")
    shot(w, "login-desktop")
    w.page.get_by_label("Password").fill("admin-test-password")
    w.page.get_by_role("button", name="Sign in").click()
    expect(w.page).to_have_url(f"{server.http}/app/trade")  # back where the user wanted to go
    w.page.context.close()
    assert not [e for e in w.errors if "401" not in e], w.errors  # the refused sign-in's 401 is the only error


def test_markets_chart_fills_updates_live_and_switches(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/markets")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=chart]')?.dataset.candles || 0) >= 1")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=chart]')?.dataset.updates || 0) >= 3")
    expect(page.get_by_test_id("book").locator(".level.bid").first).to_be_visible()
    expect(page.get_by_test_id("ticker-demo-ETH/USDT")).not_to_have_text("–")
    shot(admin_page, "markets-desktop")
    page.locator("[data-tf='5m']").click()
    expect(page.locator("[data-tf='5m']")).to_have_attribute("aria-pressed", "true")
    page.get_by_test_id("tz-select").select_option("Asia/Kolkata")  # +05:30: 5m buckets still on its wall clock
    page.wait_for_function("() => Number(document.querySelector('[data-testid=chart]')?.dataset.updates || 0) >= 2")
    expect(page.get_by_test_id("chart-status")).to_have_text("live")


def test_orders_placed_cancelled_and_filled(admin_page: Watched, server: ServerProcess) -> None:
    page = admin_page.page
    page.goto("/app/trade")
    ticket = page.get_by_test_id("ticket")
    # validation before sending: off the step grid, below the minimum value
    ticket.get_by_label("Amount (BTC)").fill("0.000001")
    ticket.get_by_placeholder("price (USDT)").fill("1000")
    problems = page.get_by_test_id("ticket-problems")
    expect(problems).to_contain_text("multiple of 0.00001")
    expect(page.get_by_test_id("place-order")).to_be_disabled()
    # a resting limit order, then cancelled
    ticket.get_by_label("Amount (BTC)").fill("0.01")
    expect(problems).to_be_empty()
    page.get_by_test_id("place-order").click()
    expect(page.get_by_test_id("ticket-result")).to_contain_text("open")
    row = page.get_by_test_id("open-orders").locator("tr[data-order]")
    expect(row).to_have_count(1)
    order_id = row.get_attribute("data-order")
    shot(admin_page, "trade-desktop")
    page.get_by_test_id(f"cancel-{order_id}").click()
    expect(page.get_by_test_id("open-orders")).to_contain_text("No open orders")
    # a post-only that would cross: the server's refusal, word for word
    ticket.get_by_label("Type").select_option("limit-post-only")
    ticket.get_by_placeholder("price (USDT)").fill("90000")
    page.get_by_test_id("place-order").click()
    expect(page.get_by_test_id("ticket-result")).to_contain_text("Refused")
    # a market order by % of available: fills, shows in the orders table, the wallet and on the chart
    ticket.get_by_label("Type").select_option("market")
    page.get_by_role("button", name="25%").click()
    page.locator("[data-side=sell]").click()
    page.get_by_role("button", name="25%").click()
    expect(ticket.get_by_label("Amount (BTC)")).to_have_value("2.5")  # a quarter of the 10 BTC
    ticket.get_by_label("Amount (BTC)").fill("0.02")
    page.get_by_test_id("place-order").click()
    expect(page.get_by_test_id("ticket-result")).to_contain_text("filled")
    expect(page.get_by_test_id("recent-orders")).to_contain_text("done filled")
    page.goto("/app/markets")
    expect(page.get_by_test_id("my-fills")).to_contain_text("sell")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=chart] canvas').length > 0")
    shot(admin_page, "markets-with-fill")
    page.goto("/app/wallets")
    expect(page.locator("tr[data-wallet='demo:BTC'] .balance")).to_have_text("9.980000")  # 10 - 0.02


def test_orders_table_stays_virtual_with_a_thousand_rows(admin_page: Watched, server: ServerProcess) -> None:
    async def place() -> None:
        async with RpcClient(server.ws) as rpc:
            await asyncio.gather(*(rpc.call("make_order", exchange="demo", pair="SOL_USDT", side="buy" if i % 2 else "sell",
                                            type="limit", size="0.1", limit=str(50 + i % 40)) for i in range(1000)))

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        pool.submit(asyncio.run, place()).result(timeout=120)
    page = admin_page.page
    page.goto("/app/trade")
    table = page.get_by_test_id("recent-orders")
    expect(table.get_by_test_id("vt-count")).to_have_text("1000 of 1000 rows")
    assert table.locator(".vt-row").count() < 80  # only the rows in view are in the document
    table.get_by_test_id("vt-viewport").evaluate("el => { el.scrollTop = 20000; el.dispatchEvent(new Event('scroll')); }")
    expect(table.locator(".vt-row").first).to_be_visible()
    table.get_by_test_id("vt-filter").fill("buy")
    expect(table.get_by_test_id("vt-count")).to_have_text("500 of 1000 rows")
    table.get_by_test_id("vt-group").select_option("side")
    expect(table.locator(".vt-group").first).to_contain_text("Side: buy (500)")
    table.get_by_role("columnheader", name="#").click()
    shot(admin_page, "trade-orders-table")


def test_wallet_set_created_with_sliders(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/wallets")
    form = page.get_by_test_id("new-wallet-set")
    form.locator("[data-alloc='demo:USDT']").fill("2500")
    form.get_by_label("Description").fill("e2e set")
    form.get_by_role("button", name="Create wallet set").click()
    expect(page.locator("dialog.modal")).to_contain_text("2500 USDT on demo")
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("wallet-sets")).to_contain_text("e2e set")
    expect(page.get_by_test_id("wallet-sets")).to_contain_text("USDT 2,500.00")
    shot(admin_page, "wallets-desktop")


def _backtest_form(page: Page, strategy: str, data: str, params: dict[str, str], start: str = "", end: str = "") -> Locator:
    """The start form of the Runs page filled in for a backtest (not yet sent)."""
    page.goto("/app/runs")
    form = page.get_by_test_id("start-run")
    form.get_by_label("Strategy").select_option(strategy)
    form.get_by_label("Data").fill(data)
    form.get_by_label("Start").fill(start)
    form.get_by_label("End").fill(end)
    for name, value in params.items():
        form.locator(f"[data-param={name}]").fill(value)
    return form


def test_backtest_started_and_report_opened(admin_page: Watched) -> None:
    page = admin_page.page
    form = _backtest_form(page, "ma_cross", str(shared_data("binance-spot-1h/BTC_USDT-1h.json")), {"timeframe": "1h"},
                          "2021-01-01", "2021-03-01")
    form.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/app/runs/[^/]+$"))
    expect(page.get_by_test_id("run-status")).to_have_text("finished", timeout=60_000)
    expect(page.get_by_test_id("run-report")).to_contain_text("Total return")
    expect(page.get_by_test_id("run-messages")).to_contain_text("run.start")
    shot(admin_page, "run-desktop")


def test_masking_and_theme(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/wallets")
    balance = page.locator("tr[data-wallet='demo:USDT'] .balance")
    expect(balance).not_to_have_text("•••••")
    toggle_mask(page)  # saved on the server: the page loaded next reads it there
    page.goto("/app/wallets")
    expect(balance).to_have_text("•••••")
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    shot(admin_page, "wallets-masked-light")
    page.get_by_test_id("theme-toggle").click()
    toggle_mask(page)  # unmasked again for the tests after this one (same user, same server)
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")


def test_viewer_finds_no_trading_controls(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server)
    sign_in(w, *VIEWER)
    page = w.page
    page.goto("/app/trade")
    expect(page.get_by_text("Your role may look, not trade")).to_be_visible()
    assert page.get_by_test_id("ticket").count() == 0 and page.locator("[data-testid^=cancel-]").count() == 0
    page.goto("/app/wallets")
    expect(page.get_by_test_id("wallet-totals")).to_contain_text("USDT")
    assert page.get_by_test_id("new-wallet-set").count() == 0
    page.goto("/app/runs")
    expect(page.get_by_test_id("runs-list")).to_be_visible()
    assert page.get_by_test_id("start-run").count() == 0
    shot(w, "viewer-trade")
    w.page.context.close()
    assert not w.errors, w.errors


def test_refresh_token_rotates_when_the_access_token_runs_out(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server)
    sign_in(w, *TRADER)
    page = w.page
    before = json.loads(page.evaluate("localStorage.getItem('coinwire.session')"))
    page.evaluate("s => localStorage.setItem('coinwire.session', JSON.stringify({...JSON.parse(s), expiresAt: 0}))",
                  json.dumps(before))
    page.goto("/app/overview")
    expect(page.get_by_test_id("user")).to_contain_text("tom · trader")
    page.wait_for_function("r => JSON.parse(localStorage.getItem('coinwire.session')).refresh !== r", arg=before["refresh"])
    after = json.loads(page.evaluate("localStorage.getItem('coinwire.session')"))
    assert after["refresh"] != before["refresh"] and after["expiresAt"] > 0
    # the spent refresh token is dead: presenting it again is refused (and revokes the session)
    spent = httpx.post(server.http + "/api/v1/auth/refresh", json={"refresh_token": before["refresh"]})
    assert spent.status_code == 401
    page.goto("/app/wallets")  # the revoked session sends the tab back to sign-in, saying why
    expect(page.get_by_test_id("login-error")).to_contain_text("Signed out")
    w.page.context.close()
    assert not [e for e in w.errors if "401" not in e], w.errors


def test_every_page_desktop_and_phone_first_paint_and_no_console_errors(browser: Browser, server: ServerProcess) -> None:
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        w = open_page(browser, server, viewport)
        w.page.goto("/app/login")
        w.page.get_by_label("User name").wait_for()
        shot(w, f"login-{name}")
        sign_in(w)
        for p in PAGES:
            try:
                w.page.goto(f"/app/{p}")
                w.page.locator("main#page").wait_for()
                w.page.wait_for_load_state("networkidle") if p != "markets" else w.page.wait_for_timeout(1500)
                w.page.wait_for_timeout(300)
                shot(w, f"{p}-{name}")
            except Exception as exc:
                exc.add_note(f"on /app/{p}, {name} width")
                raise
        w.page.goto("/app/overview")
        w.page.wait_for_function("() => performance.getEntriesByName('first-contentful-paint').length > 0")
        fcp = w.page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
        expect(w.page.get_by_test_id("total-value")).to_contain_text("USD")
        valued = w.page.evaluate("performance.now()")  # the total value is on screen by now
        assert 0 < fcp < 1000, f"first contentful paint of the overview: {fcp} ms"
        print(f"{name}: overview first contentful paint {fcp:.0f} ms, total value shown by {valued:.0f} ms")
        w.page.context.close()
        assert not w.errors, f"{name}: {w.errors}"


def _rpc(server: ServerProcess, calls: list[tuple[str, dict[str, object]]]) -> list[object]:
    """JSON-RPC calls as admin, one after another, from a worker thread (Playwright's sync API owns this one's loop)."""
    async def run() -> list[object]:
        async with RpcClient(server.ws) as rpc:
            return [await rpc.call(method, **params) for method, params in calls]

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def test_markets_recent_public_trades_appear_and_update(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/markets")
    trades = page.get_by_test_id("public-trades")
    expect(trades.locator("tr[data-trade]").first).to_be_visible()
    first = trades.locator("tr[data-trade]").first.get_attribute("data-trade")
    # live: newer trades arrive over the public_trades channel and take the top row
    page.wait_for_function("id => { const r = document.querySelector('[data-testid=public-trades] tr[data-trade]');"
                           " return r && r.dataset.trade !== id; }", arg=first)
    assert trades.locator("tr[data-trade]").count() >= 5
    sides = trades.locator("tr[data-trade] td:last-child").all_inner_texts()
    assert set(sides) <= {"buy", "sell"} and trades.locator("td.num.buy, td.num.sell").count() == len(sides)
    shot(admin_page, "markets-trades-desktop")
    page.get_by_test_id("market-select").select_option("demo|ETH/USDT")
    expect(page.get_by_role("heading", name="Recent trades · ETH/USDT")).to_be_visible()
    expect(trades.locator("tr[data-trade]").first).to_be_visible()
    updates = int(trades.get_attribute("data-updates") or 0)
    page.wait_for_function("n => Number(document.querySelector('[data-testid=public-trades]').dataset.updates) > n", arg=updates)
    page.get_by_test_id("market-select").select_option("demo|BTC/USDT")  # the market the other tests expect


def test_virtual_deposit_changes_totals_and_a_large_withdrawal_is_refused(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/wallets")
    form = page.get_by_test_id("virtual-funds")
    balance = page.locator("tr[data-wallet='demo:ETH'] .balance")
    expect(balance).not_to_have_text("")
    before = balance.inner_text()
    decimals = len(before.split(".")[1])
    expect(form.get_by_label("Account").locator("option:checked")).to_have_text("demo · paper · demo")  # admin's own account there
    form.get_by_label("Currency").select_option("ETH")
    form.get_by_label("Amount").fill("5")
    form.get_by_test_id("virtual-submit").click()
    expect(page.locator("dialog.modal")).to_contain_text("Deposit 5 ETH on demo?")
    page.get_by_test_id("modal-confirm").click()
    expect(balance).to_have_text(f"{float(before.replace(',', '')) + 5:,.{decimals}f}")
    after = balance.inner_text()
    form.locator("[data-kind=withdraw]").click()
    form.get_by_label("Amount").fill("1000000")
    form.get_by_test_id("virtual-submit").click()
    expect(page.locator("dialog.modal")).to_contain_text("Withdraw 1000000 ETH on demo?")
    page.get_by_test_id("modal-confirm").click()
    expect(form.get_by_test_id("virtual-error")).to_contain_text("1000000 ETH needed on demo (unallocated)")
    shot(admin_page, "wallets-virtual-refused")
    expect(balance).to_have_text(after)  # nothing moved


def test_balance_history_chart_after_an_order_filled(admin_page: Watched, server: ServerProcess) -> None:
    wallets = [{"exchange": "demo", "currency": "USDT", "allocation": "5000"}]
    set_id = _rpc(server, [("create_wallet_set", {"wallets": wallets, "description": "history e2e"})])[0]["id"]  # type: ignore[index]
    order = _rpc(server, [("make_order", {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market", "size": "0.01",
                                          "wallet_set_id": set_id})])[0]
    assert order["status"] == "done" and order["filled_size"] == "0.01", order  # type: ignore[index]
    page = admin_page.page
    page.goto("/app/wallets")
    history = page.get_by_test_id(f"history-{set_id}")
    expect(history.locator("[data-wallet='demo:BTC'] canvas").first).to_be_visible()
    expect(history.locator("[data-wallet='demo:USDT'] canvas").first).to_be_visible()
    movements = int(history.get_attribute("data-movements") or 0)
    assert movements >= 3  # the allocation, then the fill's quote out and base in
    page.locator(f"[data-set='{set_id}']").scroll_into_view_if_needed()
    shot(admin_page, "wallets-history-desktop")
    page.set_viewport_size(PHONE)
    expect(history.locator("[data-wallet='demo:BTC'] canvas").first).to_be_visible()
    shot(admin_page, "wallets-history-phone")
    page.set_viewport_size(DESKTOP)
    # live: another fill changes the set's balances, and the chart reads its history again
    _rpc(server, [("make_order", {"exchange": "demo", "pair": "BTC_USDT", "side": "sell", "type": "market", "size": "0.005",
                                  "wallet_set_id": set_id})])
    page.wait_for_function("([id, n]) => Number(document.querySelector(`[data-testid=history-${id}]`).dataset.movements) > n",
                           arg=[set_id, movements], timeout=15_000)


def _sent_soon(page: Page, sent: list[str], method: str) -> None:
    """Wait (at most 10 s) until the page has sent a call of `method`."""
    for _ in range(100):
        if method in sent:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the page never called {method}: {sent}")


def _trader_with_a_set(browser: Browser, server: ServerProcess, description: str) -> tuple[str, int, Watched, list[str]]:
    """The trader signed in, with a new wallet set of 1,000 USDT: (token, set id, window, the JSON-RPC methods its page
    sends, in order)."""
    token = server.login(*TRADER)["access_token"]
    set_id = rpc_as(server, token, [("get_all_wallet_sets", {}),  # the trader's paper account, on first use
                                    ("create_wallet_set", {"wallets": [{"exchange": "demo", "currency": "USDT", "allocation": "1000"}],
                                                           "description": description})])[1]["id"]
    w = open_page(browser, server)
    sign_in(w, *TRADER)
    sent: list[str] = []
    w.page.on("websocket", lambda ws: ws.on("framesent", lambda data: sent.append(str(json.loads(data).get("method")))))
    return token, int(set_id), w, sent


def test_a_fill_reaches_the_open_wallets_page_by_push_without_a_poll(browser: Browser, server: ServerProcess) -> None:
    """The trader's wallets page: no re-read of the sets on a timer; a fill made through the API shows in the set's card."""
    token, set_id, w, sent = _trader_with_a_set(browser, server, "pushed e2e")
    page = w.page
    requests: list[str] = []  # its HTTP requests
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/app/wallets")
    card = page.locator(f"[data-set='{set_id}']")
    expect(card).to_contain_text("pushed e2e")
    _sent_soon(page, sent, "subscribe")
    assert sent.count("get_all_wallet_sets") == 1, sent
    loaded = len(requests)
    page.wait_for_timeout(5_500)  # longer than the 5 s the page used to poll at: nothing is read again meanwhile
    assert sent.count("get_all_wallet_sets") == 1, sent
    order = rpc_as(server, token, [("make_order", {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market",
                                                   "size": "0.01", "wallet_set_id": set_id})])[0]
    assert order["status"] == "done", order
    expect(card.locator(".chips")).to_contain_text(re.compile(r"BTC 0\.01"))  # pushed: no reload, no poll
    assert sent.count("get_all_wallet_sets") == 1, sent
    _sent_soon(page, sent, "get_total_wallet_set")  # funds moved: the three sums are read again
    assert sent.count("get_all_wallet_sets") == 1, sent
    assert [u for u in requests[loaded:] if "/api/v1/accounts" not in u] == []  # (the app re-reads the account list every 30 s)
    card.scroll_into_view_if_needed()
    shot(w, "wallets-pushed-desktop")
    page.context.close()
    assert not w.errors, w.errors


def test_a_set_change_reaches_the_open_overview_by_push_without_a_poll(browser: Browser, server: ServerProcess) -> None:
    """The trader's Overview: the wallet sets are read once, not every 5 s; funds allocated to a set through the API move
    its bar by push."""
    token, set_id, w, sent = _trader_with_a_set(browser, server, "overview e2e")
    page = w.page
    page.goto("/app/overview")
    bar = page.locator(".bar-row", has_text=f"#{set_id} overview e2e")
    expect(bar).to_contain_text(re.compile(r"1,?000\.\d+ USD"))
    _sent_soon(page, sent, "subscribe")
    assert sent.count("get_all_wallet_sets") == 1, sent
    page.wait_for_timeout(5_500)  # longer than the 5 s the page used to poll at: the sets are not read again meanwhile
    assert sent.count("get_all_wallet_sets") == 1, sent
    rpc_as(server, token, [("allocate_to_wallet_set", {"set_id": set_id, "wallets": [{"exchange": "demo", "currency": "USDT",
                                                                                       "allocation": "500"}]})])
    expect(bar).to_contain_text(re.compile(r"1,?500\.\d+ USD"))  # pushed: no reload, no poll
    _sent_soon(page, sent, "get_total_wallet_set")  # funds moved: the three sums are read again
    assert sent.count("get_all_wallet_sets") == 1, sent
    page.context.close()
    assert not w.errors, w.errors


def test_viewer_sees_no_virtual_funds_form(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server)
    sign_in(w, *VIEWER)
    page = w.page
    page.goto("/app/wallets")
    expect(page.get_by_test_id("wallet-totals")).to_contain_text("ETH")
    assert page.get_by_test_id("virtual-funds").count() == 0
    w.page.context.close()
    assert not w.errors, w.errors


def _slide(page: Page, selector: str, value: str) -> None:
    """Move a range input the way a drag does: a new value, then its input event (Playwright cannot fill a range)."""
    page.locator(selector).evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", value)


def _points(page: Page, testid: str) -> int:
    page.wait_for_function("id => Number(document.querySelector(`[data-testid=${id}]`)?.dataset.points) > 0", arg=testid)
    return int(page.get_by_test_id(testid).get_attribute("data-points") or 0)


def test_backtest_from_fund_rows_shows_equity_drawdown_and_trades_on_the_price_chart(browser: Browser, server: ServerProcess) -> None:
    w = open_page(browser, server)
    sign_in(w)
    page = w.page
    form = _backtest_form(page, "ma_cross", str(shared_data("binance-spot-1h/BTC_USDT-1h.json")),
                          {"fast": "20", "slow": "50", "timeframe": "1h"})
    rows = form.get_by_test_id("fund-rows")
    rows.get_by_label("amount 1").fill("5000")
    form.get_by_test_id("add-fund").click()
    form.get_by_test_id("add-fund").click()
    rows.get_by_label("remove row 3").click()
    expect(rows.locator("[data-fund-row]")).to_have_count(2)
    rows.get_by_label("currency 2").fill("BTC")
    rows.get_by_label("amount 2").fill("-1")
    form.get_by_role("button", name="Start").click()
    expect(page.get_by_test_id("run-error")).to_have_text("BTC on binance: the amount must be a positive number.")  # checked here first
    rows.get_by_label("amount 2").fill("0.1")
    form.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/app/runs/bt-[^/]+$"))
    expect(page.get_by_test_id("run-status")).to_have_text("finished", timeout=60_000)
    # the equity curve from 5000 USDT and 0.1 BTC, and its drawdown: as many points, the deepest as the report's metric
    equity = _points(page, "equity-chart")
    assert equity > 100 and _points(page, "drawdown-chart") == equity
    assert page.get_by_test_id("equity-chart").locator("canvas").count() > 0
    max_dd = page.get_by_test_id("run-report").locator("dt:text-is('Max drawdown') + dd").inner_text()
    expect(page.get_by_test_id("drawdown-legend")).to_contain_text(f"Deepest -{max_dd}")
    expect(page.get_by_test_id("equity-legend")).to_contain_text("Final ")
    # the trades as markers on the run's candles
    chart = page.get_by_test_id("run-price-chart")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=run-price-chart]')?.dataset.candles) > 100")
    markers = int(chart.get_attribute("data-markers") or 0)
    assert markers >= 10 and chart.locator("canvas").count() > 0
    expect(page.get_by_test_id("run-price-legend")).to_contain_text("6h candles")
    shot(w, "run-report-desktop")
    run_url = page.url
    w.page.context.close()
    assert not w.errors, w.errors

    phone = open_page(browser, server, PHONE)
    sign_in(phone)
    phone.page.goto(run_url)
    assert _points(phone.page, "equity-chart") == equity
    phone.page.wait_for_function("() => Number(document.querySelector('[data-testid=run-price-chart]')?.dataset.candles) > 100")
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    wide = phone.page.evaluate("[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391)"
                               ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))")
    assert width <= 390, f"the run page is {width} px wide on a 390 px phone: {wide}"
    shot(phone, "run-report-phone")
    phone.page.context.close()
    assert not phone.errors, phone.errors


def test_frontier_backtest_components_are_drawn_as_charts_tables_and_a_form(admin_page: Watched) -> None:
    page = admin_page.page
    params = {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT", "history_bars": "288", "target": "max_sharpe", "cloud": "300"}
    form = _backtest_form(page, "efficient_frontier", str(shared_data("binance-spot-5m")), params, "2021-03-01", "2021-03-03")
    form.get_by_role("button", name="Start").click()
    expect(page.get_by_test_id("run-status")).to_have_text("finished", timeout=60_000)
    comps = page.get_by_test_id("run-components")
    frontier = comps.locator("[data-component=frontier]")
    expect(frontier.locator("svg.xy")).to_have_attribute("data-points", re.compile(r"^\d+$"))
    assert int(frontier.locator("svg.xy").get_attribute("data-points") or 0) >= 50
    expect(frontier.locator(".named-portfolios text")).to_have_text(["max Sharpe", "min variance"])
    expect(frontier.locator("table")).to_contain_text("SOL/USDT")
    assert int(comps.locator("[data-component=cloud] svg.xy").get_attribute("data-points") or 0) == 300
    expect(comps.locator("[data-component=slices] table tbody tr")).not_to_have_count(0)
    expect(comps.locator("[data-component=path] table th").first).to_have_text("time")
    target = comps.locator("[data-component=target]")
    expect(target.get_by_test_id("component-status-target")).to_have_text("reached")
    expect(target.locator("[data-weight='ETH/USDT']")).to_be_disabled()  # a finished run takes no input
    expect(target).to_contain_text("The run is not running")
    frontier.scroll_into_view_if_needed()
    shot(admin_page, "run-frontier-desktop")


def test_paper_run_from_allocation_sliders_takes_a_component_input_after_the_modal(admin_page: Watched) -> None:
    page = admin_page.page
    page.goto("/app/runs")
    form = page.get_by_test_id("start-run")
    form.get_by_label("Strategy").select_option("component_demo")
    form.get_by_label("Mode").select_option("paper")
    funds = form.get_by_test_id("run-funds")
    expect(funds.get_by_test_id("fund-exchange")).to_have_value("demo")
    expect(form.get_by_label("Data")).to_be_hidden()  # a paper run trades the server's exchanges, from now
    amount = funds.locator("[data-alloc='demo:USDT']")
    _slide(page, "[data-slider='demo:USDT']", "1000")  # all of it...
    available = amount.input_value()
    assert float(available) > 1000
    amount.fill("1000")  # ...or an amount typed; the slider follows
    assert 0 < int(funds.locator("[data-slider='demo:USDT']").input_value()) < 1000
    shot(admin_page, "runs-start-paper")
    form.get_by_role("button", name="Start").click()
    expect(page.locator("dialog.modal")).to_contain_text("1000 USDT on demo")
    page.get_by_test_id("modal-confirm").click()
    expect(page).to_have_url(re.compile(r"/app/runs/pp-[^/]+$"))
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    # the strategy's form: a slider and a Buy button, sent only after the confirmation
    order_form = page.locator("[data-component=order_form]")
    _slide(page, "[data-component=order_form] input[type=range]", "0.5")
    order_form.locator("[data-action=buy]").click()
    dialog = page.locator("dialog.modal")
    expect(dialog).to_contain_text('"fraction": 0.5')
    page.get_by_role("button", name="Cancel").click()  # nothing is sent
    order_form.locator("[data-action=buy]").click()
    page.get_by_test_id("modal-confirm").click()
    expect(page.locator(".toast")).to_contain_text("Sent to the strategy.")
    fills = page.locator("[data-component=fills] table tbody tr")
    expect(fills.first).to_contain_text("buy", timeout=15_000)
    # the audit trail: the input and the order it made, filtered and paged
    hub = page.get_by_test_id("run-messages")
    hub.get_by_test_id("hub-method").fill("ui.input")
    expect(hub.locator("tbody tr")).to_have_count(1)
    expect(hub).to_contain_text('"fraction":0.5')
    hub.get_by_test_id("hub-method").fill("venue.")
    expect(hub.locator("tbody tr").first).to_contain_text("venue.make_order")
    expect(hub.get_by_test_id("hub-next")).to_be_disabled()
    # the same in the seed's mhubrpc format: the call and the venue's answer to it, paired by its response_method
    hub.get_by_test_id("hub-format").select_option("mhubrpc")
    call = hub.locator("[data-testid=hub-mhubrpc] li.call").first
    expect(call).to_contain_text('"method":"venue.make_order"')
    answer = f'"method":"{json.loads(call.inner_text())["response_method"]}"'
    expect(hub.locator("[data-testid=hub-mhubrpc] li.result", has_text=answer)).to_have_count(1)
    shot(admin_page, "run-hub-mhubrpc")
    hub.get_by_test_id("hub-format").select_option("native")
    hub.get_by_test_id("hub-method").fill("")
    hub.get_by_test_id("hub-direction").select_option("out")  # only what the strategy sent: orders, components, log lines
    expect(hub.locator("tbody tr", has_text="→")).to_have_count(0)
    expect(hub.locator("tbody tr", has_text="ui.component").first).to_be_visible()
    # the report so far, while it runs: equity drawn, the fill marked on the price chart
    expect(page.get_by_test_id("equity-legend")).to_contain_text("So far", timeout=15_000)
    page.wait_for_function("() => Number(document.querySelector('[data-testid=run-price-chart]')?.dataset.markers) >= 1",
                           timeout=15_000)
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    shot(admin_page, "run-paper-desktop")
    page.get_by_role("button", name="Stop").click()
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("run-status")).to_have_text("stopped")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=run-price-chart]')?.dataset.markers) >= 1")
    expect(page.locator("[data-component=order_form] [data-action=buy]")).to_be_disabled()


def test_fill_markers_show_the_markets_price_decimals(admin_page: Watched, server: ServerProcess) -> None:
    """A market order that walks the book fills at an average with many decimals; its marker shows the market's (tick 0.01: 2)."""
    exchanges = _rpc(server, [("get_exchanges", {})])[0]
    market = next(m for e in exchanges for m in e["markets"] if m["exchange"] == "demo" and m["symbol"] == "BTC/USDT")  # type: ignore[union-attr]
    decimals = len(market["tick"].partition(".")[2].rstrip("0"))
    _rpc(server, [("add_virtual_wallet_tx", {"exchange": "demo", "base": "BTC", "movement": "2"})])
    order = _rpc(server, [("make_order", {"exchange": "demo", "pair": "BTC_USDT", "side": "sell", "type": "market", "size": "1.5"})])[0]
    avg = order["avg_price"]  # type: ignore[index]
    assert order["status"] == "done" and len(avg.partition(".")[2]) > decimals, order  # type: ignore[index]
    page = admin_page.page
    page.goto("/app/markets")
    chart = page.get_by_test_id("chart")
    page.wait_for_function("() => (document.querySelector('[data-testid=chart]')?.dataset.markerLabels || '').includes('S ')")
    labels = (chart.get_attribute("data-marker-labels") or "").split("\n")
    assert labels and all(re.fullmatch(rf"[BS] \d{{1,3}}(,\d{{3}})*\.\d{{{decimals}}}", label) for label in labels), labels
    ours = [float(label[2:].replace(",", "")) for label in labels if label.startswith("S ")]
    assert any(abs(price - float(avg)) <= 10 ** -decimals / 2 + 1e-9 for price in ours), (avg, labels)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=chart] canvas').length > 0")
    shot(admin_page, "markets-fill-marker-decimals")


def test_preferences_set_through_the_api_are_what_the_dashboard_uses_and_its_changes_reach_the_server(
        browser: Browser, server: ServerProcess) -> None:
    """The user's preferences are the server's: set through the API, they are the dashboard's in a fresh browser; set in the
    dashboard, the API reads them."""
    pair = httpx.post(server.http + "/api/v1/auth/login", json={"username": TRADER[0], "password": TRADER[1]}).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    r = httpx.put(server.http + "/api/v1/me/preferences", headers=headers,
                  json={"time_zone": "Pacific/Auckland", "crypto_decimals": 3, "stable_decimals": 4, "mask": True})
    assert r.status_code == 200, r.text
    w = open_page(browser, server)  # a new browser context: nothing of the user in its storage
    page = w.page
    page.goto("/")
    expect(page.locator("html")).not_to_have_class(re.compile("masked"))  # signed out: the defaults
    sign_in(w, *TRADER)
    expect(page.locator("html")).to_have_class(re.compile("masked"))
    page.goto("/app/markets")
    expect(page.get_by_test_id("tz-select")).to_have_value("Pacific/Auckland")  # the chart's zone, not in the page's own list
    page.goto("/app/preferences")
    form = page.get_by_role("form", name="preferences")
    expect(form.locator("select[name=tz]")).to_have_value("Pacific/Auckland")
    expect(form.locator("input[name=crypto]")).to_have_value("3")
    expect(form.locator("input[name=stable]")).to_have_value("4")
    shot(w, "preferences-from-server")
    form.locator("input[name=crypto]").fill("5")
    form.locator("input[name=crypto]").dispatch_event("change")
    form.locator("input[name=mask]").uncheck()
    expect(page.locator("html")).not_to_have_class(re.compile("masked"))

    def saved() -> dict[str, object]:
        return httpx.get(server.http + "/api/v1/me/preferences", headers=headers).json()

    for _ in range(50):
        if saved()["crypto_decimals"] == 5 and saved()["mask"] is False:
            break
        page.wait_for_timeout(100)
    assert {k: saved()[k] for k in ("time_zone", "crypto_decimals", "stable_decimals", "mask")} == \
        {"time_zone": "Pacific/Auckland", "crypto_decimals": 5, "stable_decimals": 4, "mask": False}
    with server.client() as admin:  # and nobody else's changed
        assert admin.get("/api/v1/me/preferences").json()["crypto_decimals"] == 6
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_label("User name")).to_be_visible()
    w.page.context.close()
    assert not w.errors, w.errors
