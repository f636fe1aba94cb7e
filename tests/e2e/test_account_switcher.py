"""The account switcher: a trader with two paper accounts switches between them.

Balances, orders and fills follow, and the ticket places on the shown one."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import DESKTOP, PHONE, TRADER, VIEWER, open_page, rpc_as, shot, sign_in
from tests.server import ServerProcess


def _accounts(server: ServerProcess, token: str) -> list[dict[str, Any]]:
    r = httpx.get(server.http + "/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return list(r.json())


def _choose(page: Page, label: str) -> None:
    page.get_by_test_id("account-select").select_option(label=label)


def _two_accounts(server: ServerProcess, name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A new trader with their own paper account on demo and a second one, "Second", that holds 7 ETH more (an admin's deposit)."""
    token = server.traders(name)[name]
    assert [a["name"] for a in _accounts(server, token)] == ["demo"]  # the listing opens her own, the default on demo
    opened = httpx.post(server.http + "/api/v1/accounts", headers={"Authorization": f"Bearer {token}"},
                        json={"exchange": "demo", "kind": "paper", "name": "Second"})
    assert opened.status_code == 201, opened.text
    mine = {a["name"]: a for a in _accounts(server, token)}
    assert set(mine) == {"demo", "Second"} and all(a["role"] == "owner" for a in mine.values()), mine
    rpc_as(server, server.token, [("add_virtual_wallet_tx", {"exchange": "demo", "currency": "ETH", "movement": "7",
                                                               "account": mine["Second"]["id"]})])
    return token, mine["demo"], mine["Second"]


def test_switching_accounts_changes_balances_orders_and_fills_and_the_ticket_places_on_the_shown_one(
        browser: Browser, server: ServerProcess) -> None:
    token, first, second = _two_accounts(server, "ada")
    bid = float(rpc_as(server, token, [("get_pricing", {"exchange": "demo"})])[0]["BTC_USDT"]["bid"])
    resting = rpc_as(server, token, [("make_order", {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit",
                                                     "size": "0.01", "limit": f"{bid * 0.5:.2f}", "account": first["id"]})])[0]
    assert resting["status"] == "open" and resting["account"] == first["id"], resting

    w = open_page(browser, server)
    sign_in(w, "ada", "ada-password")
    page = w.page
    select = page.get_by_test_id("account-select")
    expect(select).to_have_value("")  # All accounts, the default view
    expect(select.locator("option").first).to_have_text("All accounts (2)")
    expect(select.locator("optgroup[label=demo] option")).to_have_text(["demo · paper", "Second · paper"])

    # balances: all of her accounts, then each one
    page.goto("/app/wallets")
    expect(page.get_by_test_id("account-scope")).to_contain_text("All accounts")
    expect(page.locator("tr[data-wallet='demo:ETH'] .balance")).to_have_text("207.000000")  # 100 + 100 + 7
    shot(w, "accounts-wallets-all-desktop")
    _choose(page, "Second · paper")
    expect(page.get_by_test_id("account-scope")).to_contain_text("Account Second · paper · demo")
    expect(page.locator("tr[data-wallet='demo:ETH'] .balance")).to_have_text("107.000000")
    # virtual funds go to the shown account (her own paper account: she may)
    form = page.get_by_test_id("virtual-funds")
    expect(form.get_by_label("Account").locator("option")).to_have_text(["Second · paper · demo"])
    form.get_by_label("Currency").select_option("ETH")
    form.get_by_label("Amount").fill("3")
    form.get_by_test_id("virtual-submit").click()
    expect(page.locator("dialog.modal")).to_contain_text("Deposit 3 ETH on Second (demo)?")
    page.get_by_test_id("modal-confirm").click()
    expect(page.locator("tr[data-wallet='demo:ETH'] .balance")).to_have_text("110.000000")
    _choose(page, "demo · paper")
    expect(page.locator("tr[data-wallet='demo:ETH'] .balance")).to_have_text("100.000000")
    # orders: the resting one is the first account's only
    page.goto("/app/trade")
    page.get_by_test_id("market-select").select_option("demo|BTC/USDT")
    open_orders = page.get_by_test_id("open-orders")
    expect(open_orders.locator(f"tr[data-order='{resting['id']}']")).to_be_visible()
    expect(page.get_by_test_id("ticket-account")).to_have_text("Account: demo · paper")
    _choose(page, "Second · paper")
    expect(open_orders).to_contain_text("No open orders")
    expect(page.get_by_test_id("ticket-account")).to_have_text("Account: Second · paper")
    expect(page.get_by_test_id("available")).to_contain_text("1,000,000.00 USDT")

    # the ticket places on the shown account: a limit order that rests, and a market order that fills
    ticket = page.get_by_test_id("ticket")
    ticket.get_by_label("Amount (BTC)").fill("0.01")
    ticket.get_by_placeholder("price (USDT)").fill(f"{bid * 0.4:.2f}")
    page.get_by_test_id("place-order").click()
    expect(page.get_by_test_id("ticket-result")).to_contain_text("open")
    expect(open_orders.locator("tr[data-order]")).to_have_count(1)
    placed = int(open_orders.locator("tr[data-order]").get_attribute("data-order") or 0)
    ticket.get_by_label("Type").select_option("market")
    ticket.get_by_label("Amount (BTC)").fill("0.02")
    page.get_by_test_id("place-order").click()
    expect(page.get_by_test_id("ticket-result")).to_contain_text("filled")
    filled = int(page.get_by_test_id("ticket-result").inner_text().split("#")[1].split(" ")[0])
    expect(page.get_by_test_id("recent-orders")).to_contain_text("done filled")
    shot(w, "accounts-trade-second-desktop")
    on_second, on_first = rpc_as(server, token, [("list_recent_orders", {"include_open": True, "account": second["id"]}),
                                                 ("list_recent_orders", {"include_open": True, "account": first["id"]})])
    assert {o["id"] for o in on_second} == {placed, filled} and {o["account"] for o in on_second} == {second["id"]}
    assert {o["id"] for o in on_first} == {resting["id"]}
    _choose(page, "demo · paper")  # the first account's orders: not the ones just placed
    expect(open_orders.locator(f"tr[data-order='{resting['id']}']")).to_be_visible()
    expect(open_orders.locator("tr[data-order]")).to_have_count(1)

    # fills on the chart's page: the shown account's
    page.goto("/app/markets")
    fills = page.get_by_test_id("my-fills")
    expect(fills).to_contain_text("No fills on this market yet")
    _choose(page, "Second · paper")
    expect(fills.locator(f"tr[data-order='{filled}']")).to_be_visible()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=chart] canvas').length > 0")
    shot(w, "accounts-markets-second-desktop")
    _choose(page, "All accounts (2)")
    expect(fills.locator(f"tr[data-order='{filled}']")).to_contain_text("Second")  # the account column, with both shown

    # the choice stays in this browser: a reload shows the same account
    _choose(page, "Second · paper")
    page.goto("/app/wallets")
    expect(select).to_have_value(str(second["id"]))
    expect(page.locator("tr[data-wallet='demo:ETH'] .balance")).to_have_text("110.000000")
    page.context.close()
    assert not w.errors, f"console errors: {w.errors}"


def test_the_choice_is_per_user_and_other_users_accounts_never_show(browser: Browser, server: ServerProcess) -> None:
    _, _, second = _two_accounts(server, "bea")
    w = open_page(browser, server)
    sign_in(w, "bea", "bea-password")
    page = w.page
    _choose(page, "Second · paper")
    page.get_by_test_id("sign-out").click()
    # another trader in the same browser: his own accounts only, "All accounts", even with her choice planted under his key
    tom_id = httpx.post(server.http + "/api/v1/auth/login", json={"username": TRADER[0], "password": TRADER[1]}).json()
    tom_token = tom_id["access_token"]
    tom = httpx.get(server.http + "/api/v1/me/abilities", headers={"Authorization": f"Bearer {tom_token}"}).json()["user"]["id"]
    page.evaluate("([k, v]) => localStorage.setItem(k, v)", [f"coinwire.account.{tom}", str(second["id"])])
    page.get_by_label("User name").fill(TRADER[0])
    page.get_by_label("Password").fill(TRADER[1])
    page.get_by_role("button", name="Sign in").click()
    select = page.get_by_test_id("account-select")
    expect(select).to_have_value("")
    theirs = {a["id"] for a in _accounts(server, tom_token)}
    assert second["id"] not in theirs
    shown = {int(v) for v in select.locator("option").evaluate_all("os => os.map(o => o.value).filter(Boolean)")}
    assert shown == theirs and shown  # his own paper account on demo, opened by the listing
    page.goto("/app/wallets")
    expect(page.locator("tr[data-wallet='demo:ETH'] .balance")).to_have_text("100.000000")
    # and she gets her choice back on her next sign-in here
    page.get_by_test_id("sign-out").click()
    sign_in(w, "bea", "bea-password")
    expect(page.get_by_test_id("account-select")).to_have_value(str(second["id"]))
    page.context.close()
    assert not w.errors, f"console errors: {w.errors}"

    # a viewer: the switcher with the viewer's own account, no ticket whichever is shown
    v = open_page(browser, server)
    sign_in(v, *VIEWER)
    v.page.goto("/app/trade")
    login = httpx.post(server.http + "/api/v1/auth/login", json={"username": VIEWER[0], "password": VIEWER[1]})
    mine = _accounts(server, login.json()["access_token"])
    v.page.get_by_test_id("account-select").select_option(str(mine[0]["id"]))
    expect(v.page.get_by_test_id("account-scope")).to_contain_text(f"Account {mine[0]['name']} · paper")
    expect(v.page.get_by_text("Your role may look, not trade")).to_be_visible()
    assert v.page.get_by_test_id("ticket").count() == 0
    v.page.context.close()
    assert not v.errors, f"console errors: {v.errors}"


def test_switcher_and_account_pages_at_phone_width_and_a_wallet_set_from_the_shown_account(browser: Browser, server: ServerProcess) -> None:
    token, first, second = _two_accounts(server, "cy")
    w = open_page(browser, server, PHONE)
    sign_in(w, "cy", "cy-password")
    page = w.page
    _choose(page, "Second · paper")
    for name in ("overview", "wallets", "trade", "markets"):
        page.goto(f"/app/{name}")
        expect(page.get_by_test_id("account-scope").first).to_contain_text("Account Second · paper")
        page.wait_for_load_state("networkidle") if name != "markets" else page.wait_for_timeout(1500)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], f"{name}: {wide} px wide at phone width"
        shot(w, f"accounts-{name}-phone")
    box = page.get_by_test_id("account-select").bounding_box()
    assert box is not None and box["width"] > PHONE["width"] * 0.8  # its own row, full width, under the header's buttons
    page.set_viewport_size(DESKTOP)
    page.goto("/app/overview")
    expect(page.get_by_test_id("account-scope")).to_contain_text("Account Second · paper")
    page.wait_for_load_state("networkidle")
    shot(w, "accounts-overview-desktop")
    # a wallet set made on the Wallets page takes the shown account's funds, and is listed with it only
    page.goto("/app/wallets")
    form = page.get_by_test_id("new-wallet-set")
    form.locator("[data-alloc='demo:USDT']").fill("250")
    form.get_by_label("Description").fill("cy second set")
    form.get_by_role("button", name="Create wallet set").click()
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("wallet-sets")).to_contain_text("cy second set")
    expect(page.locator("tr[data-wallet='demo:USDT'] td").nth(3)).to_have_text("250.00")  # allocated, of this account
    sets = rpc_as(server, token, [("get_all_wallet_sets", {"account": second["id"]}), ("get_all_wallet_sets", {"account": first["id"]})])
    made = [s for k, s in sets[0].items() if k.isdigit()]
    assert [(s["description"], {w["account"] for w in s["wallets"]}) for s in made] == [("cy second set", {second["id"]})]
    assert sets[1]["allocated"]["wallets"] == []  # nothing of the first account's was allocated
    _choose(page, "demo · paper")
    expect(page.get_by_test_id("wallet-sets")).to_contain_text("No wallet sets yet")
    expect(page.locator("tr[data-wallet='demo:USDT'] .balance")).to_have_text("1,000,000.00")
    page.context.close()
    assert not w.errors, f"console errors: {w.errors}"
