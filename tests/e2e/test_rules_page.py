"""The Rules page against a real server: a trailing stop made in one click (asking first: it sells everything, live),
seen armed with its peak, trigger and distance; a rule set built from the form that fires, its firing in the history and
flagged on the portfolio chart; another user and a viewer see none of it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import PHONE, SHOTS, TRADER, VIEWER, Watched, open_page, sign_in
from tests.server import ServerProcess

SLOW = 60_000  # a firing waits for the portfolio tracker's samples and the controller


def _snap(target: Locator | Page, name: str) -> Path:
    """An element (or the viewport) at a readable size, not a whole long page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


def _own_paper_account(server: ServerProcess) -> int:
    me = httpx.get(server.http + "/api/v1/me", headers=server.headers).json()
    accounts = httpx.get(server.http + "/api/v1/accounts", headers=server.headers).json()
    return int(next(a["id"] for a in accounts if a["owner"] == me["id"] and a["kind"] == "paper" and a["exchange"] == "demo"))


def _rule_sets(server: ServerProcess) -> list[dict]:
    answer = httpx.get(server.http + "/api/v1/rulesets", headers=server.headers).json()
    return list(answer if isinstance(answer, list) else answer["rule_sets"])


def test_trailing_stop_from_the_form_armed_fired_and_flagged_on_the_chart(admin_page: Watched, browser: Browser,
                                                                          server: ServerProcess) -> None:
    page = admin_page.page
    account = _own_paper_account(server)
    page.goto("/app/rules")
    expect(page.get_by_test_id("rule-sets")).to_contain_text("No rule sets yet")

    # one click with two percentages: a live trailing stop that sells everything, so the page asks first
    preset = page.get_by_test_id("preset-form")
    expect(preset.get_by_test_id("preset-scope").locator(f"option[value='account:{account}']")).to_have_count(1)
    preset.get_by_test_id("preset-scope").select_option(f"account:{account}")
    preset.get_by_label("arm after a rise of (%)").fill("0")  # armed at the first sample
    preset.get_by_label("sell on a fall from the peak of (%)").fill("50")  # far from firing in this test
    preset.get_by_test_id("preset-trailing-stop").click()
    dialog = page.locator("dialog.modal")
    expect(dialog).to_contain_text("sold at market")
    _snap(dialog, "rules-confirm-dialog")
    page.get_by_test_id("modal-confirm").click()

    stop = page.get_by_test_id("rule-set-row").filter(has_text="Trailing stop +0% / -50%")
    expect(stop).to_have_attribute("data-state", "armed", timeout=SLOW)
    expect(stop.get_by_test_id("rule-armed")).to_have_text("armed")
    expect(stop.get_by_test_id("rule-peak")).to_contain_text(re.compile(r"\d"))
    expect(stop.get_by_test_id("rule-trigger")).to_contain_text(re.compile(r"\d"))
    expect(stop.get_by_test_id("rule-distance")).to_contain_text(re.compile(r"\d+\.\d\d%"))
    made = next(r for r in _rule_sets(server) if r["name"] == "Trailing stop +0% / -50%")
    assert made["scope"] == "account" and str(made["scope_id"]) == str(account) and made["enabled"] is True
    assert [r["kind"] for r in made["rules"]] == ["portfolio_trailing_stop"] and [a["kind"] for a in made["actions"]] == ["close_all"]
    status = made["status"]["rules"][0]
    assert status["armed"] is True
    # what the page shows is the server's live state: the trigger is half the peak
    assert abs(float(status["trigger"]) - float(status["peak"]) / 2) <= 1e-6 * float(status["peak"])
    _snap(page.get_by_test_id("rule-sets"), "rules-armed")

    # switching it on again asks again; Cancel leaves it off (nothing sent)
    stop.locator("[data-action=disable]").click()
    expect(stop).to_have_attribute("data-state", "disabled")
    stop.locator("[data-action=enable]").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    page.wait_for_timeout(500)
    expect(stop).to_have_attribute("data-state", "disabled")
    assert next(r for r in _rule_sets(server) if r["id"] == made["id"])["enabled"] is False
    stop.locator("[data-action=enable]").click()
    page.get_by_test_id("modal-confirm").click()
    expect(stop).to_have_attribute("data-state", "armed", timeout=SLOW)

    # the form: a trailing stop armed at once with a hair-thin trail fires on the portfolio's first dip; dry run, so
    # its close-everything is recorded, not traded, and no confirmation is asked
    form = page.get_by_test_id("builder-form")
    form.get_by_label("name").fill("tight trail")
    form.get_by_test_id("builder-scope").select_option(f"account:{account}")
    form.get_by_label("mode").select_option("dry_run")
    rule = form.get_by_test_id("rule")
    rule.get_by_test_id("rule-kind").select_option("portfolio_trailing_stop")
    rule.locator("input[name=arm_pct]").fill("0")
    rule.locator("input[name=trail_pct]").fill("0.0001")
    form.get_by_test_id("action-kind").select_option("close_all")
    form.get_by_test_id("add-action").click()
    form.get_by_test_id("action").nth(1).get_by_test_id("action-kind").select_option("notify")
    form.get_by_test_id("builder-submit").click()
    expect(form.get_by_test_id("builder-error")).to_have_text("")
    tight = page.get_by_test_id("rule-set-row").filter(has_text="tight trail")
    expect(tight).to_have_attribute("data-state", "fired", timeout=SLOW)
    tight.locator("[data-action=firings]").click()
    firing = page.get_by_test_id("rule-firing-row").first
    expect(firing).to_contain_text("dry run")
    expect(firing.get_by_test_id("firing-values")).to_contain_text(re.compile(r"peak [\d,]+\.\d\d · trigger [\d,]+\.\d\d"))
    expect(firing.get_by_test_id("firing-action-status").first).to_have_text("recorded")
    _snap(page.get_by_test_id("rule-firings-card"), "rules-firing-history")
    assert dialog.count() == 0

    # the firing on the portfolio chart of that account
    page.get_by_test_id("firings-on-chart").click()
    expect(page).to_have_url(re.compile(rf"/app/portfolio\?scope=account&id={account}$"))
    page.wait_for_function("() => Number(document.querySelector('[data-testid=portfolio-chart]')?.dataset.candles || 0) >= 1")
    page.wait_for_function("() => (document.querySelector('[data-testid=portfolio-chart]')?.dataset.firingLabels || '')"
                           ".includes('tight trail (dry run)')", timeout=SLOW)
    _snap(page.locator(".portfolio-chart"), "rules-firing-on-chart")

    # at phone width the list stacks into labelled cells without sideways overflow
    phone = open_page(browser, server, PHONE)
    try:
        sign_in(phone)
        phone.page.goto("/app/rules")
        expect(phone.page.get_by_test_id("rule-set-row")).to_have_count(2)
        width = phone.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the Rules page is {width} px wide at {PHONE['width']}"
        _snap(phone.page, "rules-list-phone")
    finally:
        phone.page.context.close()
    assert not phone.errors, phone.errors

    # another user and a viewer: none of the admin's rule sets, on the page or the chart
    for who, password in (TRADER, VIEWER):
        other = open_page(browser, server)
        try:
            sign_in(other, who, password)
            other.page.goto("/app/rules")
            expect(other.page.get_by_test_id("rule-sets")).to_have_attribute("data-loaded", re.compile(r"\d"))
            expect(other.page.get_by_test_id("rule-sets")).to_contain_text("No rule sets")
            expect(other.page.get_by_test_id("rule-set-row")).to_have_count(0)
            if who == VIEWER[0]:
                expect(other.page.get_by_test_id("rules-read-only")).to_be_visible()
                expect(other.page.get_by_test_id("preset-form")).to_have_count(0)
                expect(other.page.get_by_test_id("builder-form")).to_have_count(0)
        finally:
            other.page.context.close()
        assert not other.errors, other.errors
