"""The efficient-frontier run page: a clicked point chosen after the modal, the weight path drawn, weight sliders, pause and resume."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PHONE, open_page, shot, sign_in
from tests.server import ServerProcess

DESKTOP = {"width": 1280, "height": 800}
PARAMS = {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT", "timeframe": "1s", "history_bars": "8", "cloud": "200", "points": "12",
          "depth_share": "0.2", "tolerance": "0.05"}


@pytest.fixture
def frontier_run(server: ServerProcess) -> Iterator[str]:
    """A paper run of efficient_frontier on the demo exchange, stopped when the test ends."""
    with server.client() as admin:
        started = admin.put("/runnables/efficient_frontier/start",
                            json={"mode": "paper", "balances": {"demo:USDT": "100000"}, "params": PARAMS})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        try:
            yield run_id
        finally:
            admin.put(f"/runs/{run_id}/stop")


def _slide(page: Page, selector: str, value: str) -> None:
    """Move a range input the way a drag does: a new value, then its input event (Playwright cannot fill a range)."""
    page.locator(selector).evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", value)


def _path_steps(page: Page) -> int:
    return int(page.locator("[data-component=frontier] svg.xy").get_attribute("data-path") or 0)


def test_click_a_frontier_point_see_the_weight_path_set_sliders_and_pause(browser: Browser, server: ServerProcess,
                                                                          frontier_run: str) -> None:
    w = open_page(browser, server, DESKTOP)
    sign_in(w)
    page = w.page
    page.goto(f"/app/runs/{frontier_run}")
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    frontier = page.locator("[data-component=frontier]")
    target = page.locator("[data-component=target]")
    expect(frontier.locator("circle.pick")).to_have_count(12, timeout=60_000)
    expect(target.get_by_test_id("component-status-target")).to_have_text("choosing")
    assert page.locator("[data-component=target] input[data-field=point]").count() == 0  # no number to type any more

    # a click on a point: on a short demo history neighbouring points can overlap, even all of them on a flat one (the
    # later drawn takes the click), and the plot is drawn again with each new bar. So the click goes to the centre of
    # a point at the moment it is on top there, and the modal names the point that took it. Cancel sends nothing,
    # Trade to it sends it
    frontier.locator("svg.xy").scroll_into_view_if_needed()
    on_top = """() => {
        for (const c of document.querySelectorAll('[data-component=frontier] circle.pick')) {
            const r = c.getBoundingClientRect();
            const [x, y] = [r.x + r.width / 2, r.y + r.height / 2];
            const top = document.elementFromPoint(x, y);
            if (top && top.matches('[data-component=frontier] circle.pick')) return {x, y};
        }
        return null;
    }"""
    at = page.wait_for_function(on_top).json_value()
    page.mouse.click(at["x"], at["y"])
    dialog = page.locator("dialog.modal")
    expect(dialog.get_by_test_id("frontier-choice")).to_contain_text(re.compile(r"Point \d+ of the frontier"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(target.get_by_test_id("component-status-target")).to_have_text("choosing")
    at = page.wait_for_function(on_top).json_value()
    page.mouse.click(at["x"], at["y"])
    expect(dialog).to_contain_text("volatility")
    page.get_by_test_id("modal-confirm").click()
    expect(page.locator(".toast").last).to_contain_text("Sent to the strategy.")
    expect(target.get_by_test_id("component-status-target")).to_have_text(re.compile("trading|reached"), timeout=15_000)
    # the run trades towards it: the weight path grows on the frontier plot, from all cash, with its current point
    page.wait_for_function("() => Number(document.querySelector('[data-component=frontier] svg.xy')?.dataset.path) >= 2",
                           timeout=30_000)
    expect(frontier.locator(".weight-path-dots circle").first).to_be_attached()
    expect(frontier.locator(".weight-path-now text")).to_have_text("held now")
    assert frontier.locator("polyline.weight-path").count() == 1
    frontier.scroll_into_view_if_needed()
    shot(w, "frontier-path-desktop")

    # custom weights with sliders: moving one rescales the others, the total stays 100%
    _slide(page, "[data-component=target] input[data-weight='BTC/USDT']", "60")
    expect(target.get_by_test_id("weights-total")).to_have_text("total 100.0%")
    values = [float(target.locator(f"[data-weight-value='{a}']").input_value()) for a in ("BTC/USDT", "ETH/USDT", "SOL/USDT")]
    assert values[0] == 60.0 and abs(sum(values) - 100) < 0.2
    target.locator("[data-action=pick]").click()
    expect(dialog).to_contain_text('"BTC/USDT": 0.6')
    page.get_by_test_id("modal-confirm").click()
    expect(target.get_by_test_id("component-status-target")).to_have_text("confirming", timeout=15_000)
    expect(target.locator("[data-weight-value='BTC/USDT']")).to_have_value("60.0")  # the form drawn again shows the pick
    target.scroll_into_view_if_needed()
    shot(w, "frontier-sliders-desktop")
    target.locator("[data-action=confirm]").click()
    expect(dialog).to_contain_text('"action": "confirm"')
    expect(dialog).not_to_contain_text("weights")  # the action goes alone
    page.get_by_test_id("modal-confirm").click()
    expect(target.get_by_test_id("component-status-target")).to_have_text(re.compile("trading|reached"), timeout=15_000)

    # pause: the badge shows, the path stops growing, the button turns into Resume
    target.locator("[data-action=pause]").click()
    page.get_by_test_id("modal-confirm").click()
    expect(target.get_by_test_id("component-paused-target")).to_have_text("rebalancing paused", timeout=15_000)
    expect(target.locator("[data-action=resume]")).to_be_visible()
    steps = _path_steps(page)
    page.wait_for_timeout(4000)  # four one-second steps of the strategy, two redraws of the page
    assert _path_steps(page) == steps
    expect(page.get_by_test_id("run-log")).to_contain_text("rebalancing paused: no order until it is resumed")
    shot(w, "frontier-paused-desktop")

    phone = open_page(browser, server, PHONE)
    sign_in(phone)
    phone.page.goto(f"/app/runs/{frontier_run}")
    expect(phone.page.locator("[data-component=target]").get_by_test_id("component-paused-target")).to_be_visible(timeout=15_000)
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    wide = phone.page.evaluate("[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391)"
                               ".slice(0, 6).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))")
    assert width <= 390, f"the frontier run page is {width} px wide on a 390 px phone: {wide}"
    phone.page.locator("[data-component=frontier]").scroll_into_view_if_needed()
    shot(phone, "frontier-phone")
    phone.page.locator("[data-component=target]").scroll_into_view_if_needed()
    shot(phone, "frontier-target-phone")
    phone.page.context.close()
    assert not phone.errors, phone.errors

    target.locator("[data-action=resume]").click()
    page.get_by_test_id("modal-confirm").click()
    expect(target.locator("[data-action=pause]")).to_be_visible(timeout=15_000)
    expect(target.get_by_test_id("component-paused-target")).to_have_count(0)
    w.page.context.close()
    assert not w.errors, w.errors
