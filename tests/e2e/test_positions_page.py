"""Perpetual positions on the dashboard, on a real server's demo perpetual market.

A trader sets the leverage, opens a long from the ticket, sees the position live (mark, uPnL, margin
ratio, liquidation price), is refused in the server's words (leverage above the bracket, a margin-mode
change with the position open, reduce-only the wrong way), changes the leverage, reduces half and closes
the rest; a viewer granted the account sees the position without a control; phone width has no sideways
overflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PHONE, VIEWER, open_page, rpc_as, serve_with_users, shot, sign_in
from tests.server import DEMO_EXCHANGES, ServerProcess

# the test servers' demo exchange, trading the demo feed's perpetuals beside a spot market
PERP_EXCHANGES = [{**DEMO_EXCHANGES[0], "symbols": ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"]}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path) -> Iterator[ServerProcess]:
    yield from serve_with_users(Path(tmp_path_factory.mktemp("perp")), exchanges=PERP_EXCHANGES)


def _perpetual(server: ServerProcess) -> dict[str, Any]:
    """The demo exchange's first perpetual market (the demo feed's, with a mark price and a funding schedule)."""
    r = httpx.get(server.http + "/xwrap/v1/exchanges", headers=server.headers)
    assert r.status_code == 200, r.text
    demo = next(e for e in r.json() if e["exchange"] == "demo")
    perps = [m for m in demo["markets"] if m.get("kind") == "perpetual" or ":" in m["symbol"]]
    assert perps, f"the demo exchange lists no perpetual market: {[m['symbol'] for m in demo['markets']]}"
    return dict(perps[0])


def _size_for(server: ServerProcess, market: dict[str, Any], notional: Decimal) -> Decimal:
    """An order size on the market's step worth about `notional` of the quote at the last price (at least its minimum)."""
    r = httpx.get(server.http + "/api/v1/tickers", headers=server.headers)
    assert r.status_code == 200, r.text
    last = next(Decimal(t["price"]) for t in r.json() if t["exchange"] == "demo" and t["symbol"] == market["symbol"])
    step = Decimal(market["step"])
    return max((notional / last / step).to_integral_value() * step, Decimal(market["min_size"]), step)


def _no_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert width <= 1, f"the page scrolls sideways by {width}px"


def test_open_see_change_leverage_reduce_and_close_a_position(browser: Browser, server: ServerProcess) -> None:
    token = server.traders("pia")["pia"]
    market = _perpetual(server)
    symbol, base, step = market["symbol"], market["base"], Decimal(market["step"])
    size = _size_for(server, market, Decimal(200)) * 2  # even, so half of it is on the step

    w = open_page(browser, server)
    sign_in(w, "pia", "pia-password")
    page = w.page
    page.goto("/app/trade")
    page.get_by_test_id("market-select").select_option(f"demo|{symbol}")
    ticket = page.get_by_test_id("ticket")
    expect(ticket.get_by_test_id("ticket-perp")).to_be_visible()
    expect(page.get_by_test_id("positions")).to_contain_text(f"No open position on {symbol}.")

    # leverage: above the bracket's maximum refused in the server's words, 5x set
    lev = page.get_by_test_id("leverage")
    lev.get_by_label("leverage").fill("1000")
    lev.get_by_test_id("leverage-set").click()
    answer = lev.get_by_test_id("leverage-result")
    if market.get("max_leverage"):  # the ticket knows the maximum: refused before sending
        expect(answer).to_have_text(f"Refused: The maximum leverage on this market is {market['max_leverage']}x.")
    else:
        expect(answer).to_contain_text("Refused:")
    lev.get_by_label("leverage").fill("5")
    lev.get_by_test_id("leverage-set").click()
    expect(answer).to_have_text(f"Leverage on {symbol} set to 5x.")
    lev.get_by_label("margin mode").select_option("isolated")
    lev.get_by_test_id("margin-mode-set").click()
    expect(answer).to_have_text(f"Margin mode on {symbol} set to isolated.")

    # reduce-only with no position: refused on the ticket, nothing sent
    ticket.get_by_label("order type").select_option("market")
    ticket.get_by_label(f"Amount ({base})").fill(str(size))
    ticket.locator("input[name=reduce_only]").check()
    expect(ticket.get_by_test_id("ticket-problems")).to_have_text(
        f"Reduce-only: there is no short position on {symbol} for this buy to reduce.")
    expect(ticket.get_by_test_id("place-order")).to_be_disabled()
    ticket.locator("input[name=reduce_only]").uncheck()

    # open a long from the ticket; the position shows with its mark, uPnL, margin ratio and liquidation price
    ticket.get_by_test_id("place-order").click()
    expect(ticket.get_by_test_id("ticket-result")).to_contain_text("done")
    row = page.get_by_test_id("positions").get_by_test_id("position-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("position-side")).to_have_text("Long 5x")
    expect(row.get_by_test_id("position-margin")).to_contain_text("Isolated")
    expect(row.get_by_test_id("position-size")).to_contain_text(base)
    expect(row.get_by_test_id("position-mark")).not_to_have_text("–")
    expect(row.get_by_test_id("position-ratio")).to_contain_text("%")
    expect(row.get_by_test_id("position-liq")).not_to_have_text("–")
    held = rpc_as(server, token, [("get_positions", {})])[0]
    assert len(held) == 1 and held[0]["side"] == "long" and Decimal(held[0]["size"]) == size and held[0]["leverage"] == 5, held
    assert held[0]["margin_mode"] == "isolated" and held[0]["liquidation_price"] is not None, held
    first_seq = held[0]["seq"]
    shot(w, "positions-trade-open-desktop")

    # a margin-mode change with the position open: the server's refusal, as worded
    lev.get_by_label("margin mode").select_option("cross")
    lev.get_by_test_id("margin-mode-set").click()
    expect(answer).to_contain_text("Refused:")
    refusal = answer.inner_text()
    assert "margin" in refusal.lower(), refusal
    assert answer.get_attribute("title") == "margin_mode_change_with_open_position"
    expect(lev.get_by_label("margin mode")).to_have_value("isolated")  # the mode it still is

    # isolated margin: removing more than there is refused first, then 10 USDT added
    margin_in = row.get_by_label("margin change")
    result = page.get_by_test_id("positions-result")
    margin_in.fill("-1000000")
    row.get_by_test_id("position-margin-apply").click()
    expect(result).to_contain_text("can be removed: the position's isolated margin.")
    margin_in.fill("10")
    row.get_by_test_id("position-margin-apply").click()
    expect(result).to_have_text(f"Isolated margin of {symbol} changed by 10 {market['settle']}.")
    added = rpc_as(server, token, [("get_positions", {})])[0][0]
    assert Decimal(added["isolated_margin"]) == Decimal(held[0]["isolated_margin"]) + 10, (held, added)
    # a change made elsewhere (here through the API) reaches the row by its positions_updated push
    more = rpc_as(server, token, [("adjust_margin", {"exchange": "demo", "pair": symbol.replace("/", "_"), "amount": "5"})])[0]
    shown = Decimal(more["isolated_margin"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
    expect(row.get_by_test_id("position-margin")).to_have_text(f"Isolated {shown:,}")

    # leverage changed with the position open: the row follows
    lev.get_by_label("leverage").fill("10")
    lev.get_by_test_id("leverage-set").click()
    expect(answer).to_have_text(f"Leverage on {symbol} set to 10x.")
    expect(row.get_by_test_id("position-side")).to_have_text("Long 10x")

    # reduce: more than the position refused first, then half of it
    reduce_in = row.get_by_label("reduce by")
    reduce_in.fill(str(size * 2))
    row.get_by_test_id("position-reduce").click()
    expect(result).to_contain_text("reduce by at most that, or close it")
    half = (size / 2).quantize(step)
    reduce_in.fill(str(half))
    page.wait_for_timeout(1500)  # mark pushes meanwhile update the row in place: the amount typed stays
    expect(reduce_in).to_have_value(str(half))
    row.get_by_test_id("position-reduce").click()
    expect(result).to_contain_text(f"Reduced {symbol}")
    left = rpc_as(server, token, [("get_positions", {})])[0]
    assert len(left) == 1 and Decimal(left[0]["size"]) == size - half and left[0]["seq"] > first_seq, left
    expect(row.get_by_test_id("position-size")).to_contain_text(str(Decimal(left[0]["size"])))

    # the Positions page: the same position, and the funding history panel
    page.goto("/app/positions")
    expect(page.get_by_test_id("positions").get_by_test_id("position-row")).to_have_count(1)
    expect(page.get_by_test_id("funding")).to_be_visible()
    shot(w, "positions-page-desktop")

    # a viewer granted the account sees the position, and no control
    pia_account = held[0]["account"]
    admin = server.headers
    vera = next(u for u in httpx.get(server.http + "/api/v1/users", headers=admin).json() if u["username"] == VIEWER[0])
    granted = httpx.put(f"{server.http}/api/v1/accounts/{pia_account}/members/{vera['id']}", headers=admin, json={"role": "view"})
    assert granted.status_code in (200, 201, 204), granted.text
    v = open_page(browser, server)
    sign_in(v, *VIEWER)
    v.page.goto("/app/positions")
    vrow = v.page.get_by_test_id("position-row")
    expect(vrow).to_have_count(1)
    expect(vrow).to_contain_text(symbol)
    expect(v.page.get_by_test_id("position-close")).to_have_count(0)
    expect(v.page.get_by_test_id("position-reduce")).to_have_count(0)
    shot(v, "positions-page-viewer")
    v.page.context.close()
    assert not v.errors, f"console errors: {v.errors}"

    # close the rest (confirmed in the modal): the row goes, nothing is left
    page.goto("/app/trade")
    row = page.get_by_test_id("positions").get_by_test_id("position-row")
    row.get_by_test_id("position-close").click()
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("positions-result")).to_contain_text(f"Closing {symbol}")
    expect(page.get_by_test_id("positions")).to_contain_text(f"No open position on {symbol}.")
    assert rpc_as(server, token, [("get_positions", {})])[0] == []
    shot(w, "positions-trade-closed-desktop")
    w.page.context.close()
    assert not w.errors, f"console errors: {w.errors}"


def test_positions_at_phone_width(browser: Browser, server: ServerProcess) -> None:
    token = server.traders("pim")["pim"]
    market = _perpetual(server)
    size = _size_for(server, market, Decimal(300))
    opened = rpc_as(server, token, [("make_order", {"exchange": "demo", "symbol": market["symbol"], "side": "sell",
                                                    "type": "market", "size": str(size)})])[0]
    assert opened["status"] == "done", opened
    w = open_page(browser, server, PHONE)
    sign_in(w, "pim", "pim-password")
    w.page.goto("/app/positions")
    row = w.page.get_by_test_id("position-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("position-side")).to_contain_text("Short")
    _no_overflow(w.page)
    shot(w, "positions-page-phone")
    w.page.goto("/app/trade")
    w.page.get_by_test_id("market-select").select_option(f"demo|{market['symbol']}")
    expect(w.page.get_by_test_id("leverage")).to_be_visible()
    _no_overflow(w.page)
    shot(w, "positions-trade-phone")
    w.page.context.close()
    assert not w.errors, f"console errors: {w.errors}"


def test_hedge_mode_legs_from_the_ticket(browser: Browser, server: ServerProcess) -> None:
    token = server.traders("hal")["hal"]
    market = _perpetual(server)
    symbol, base = market["symbol"], market["base"]
    size = _size_for(server, market, Decimal(150))
    w = open_page(browser, server)
    sign_in(w, "hal", "hal-password")
    page = w.page
    page.goto("/app/trade")
    page.get_by_test_id("market-select").select_option(f"demo|{symbol}")
    ticket, lev = page.get_by_test_id("ticket"), page.get_by_test_id("leverage")
    expect(ticket.get_by_test_id("ticket-position-side")).to_be_hidden()  # one-way: no leg to choose
    lev.get_by_label("position mode").select_option("hedge")
    lev.get_by_test_id("position-mode-set").click()
    expect(lev.get_by_test_id("leverage-result")).to_have_text("Position mode on demo: hedge (long and short legs).")
    expect(ticket.get_by_test_id("ticket-position-side")).to_be_visible()

    ticket.get_by_label("order type").select_option("market")
    ticket.get_by_label(f"Amount ({base})").fill(str(size))
    ticket.get_by_label("position side").select_option("long")
    ticket.get_by_test_id("place-order").click()  # buy: opens the long leg
    expect(ticket.get_by_test_id("ticket-result")).to_contain_text("done")
    ticket.get_by_role("button", name="Sell", exact=True).click()
    ticket.get_by_label("position side").select_option("short")
    ticket.get_by_test_id("place-order").click()  # sell on the short leg: opens it beside the long
    expect(ticket.get_by_test_id("ticket-result")).to_contain_text("done")
    rows = page.get_by_test_id("positions").get_by_test_id("position-row")
    expect(rows).to_have_count(2)
    expect(rows.get_by_test_id("position-side")).to_have_text([re.compile("^Long"), re.compile("^Short")])
    legs = rpc_as(server, token, [("get_positions", {})])[0]
    assert sorted((p["position_side"], p["side"]) for p in legs) == [("long", "long"), ("short", "short")], legs

    # reduce-only on the wrong leg is refused on the ticket; a changed mode with legs open, by the server
    ticket.locator("input[name=reduce_only]").check()
    ticket.get_by_label("position side").select_option("long")
    ticket.get_by_role("button", name="Buy", exact=True).click()
    expect(ticket.get_by_test_id("ticket-problems")).to_contain_text(
        "A reduce-only buy reduces a short position: choose the short side, or untick reduce-only.")
    lev.get_by_label("position mode").select_option("one-way")
    lev.get_by_test_id("position-mode-set").click()
    expect(lev.get_by_test_id("leverage-result")).to_contain_text("Refused:")
    expect(lev.get_by_label("position mode")).to_have_value("hedge")  # the mode it still is
    expect(page.get_by_test_id("recent-orders")).to_contain_text("2 of 2 rows")
    shot(w, "positions-hedge-desktop")

    # each leg closes on its own
    for _ in range(2):
        rows.first.get_by_test_id("position-close").click()
        page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("positions")).to_contain_text(f"No open position on {symbol}.")
    assert rpc_as(server, token, [("get_positions", {})])[0] == []
    w.page.context.close()
    assert not w.errors, f"console errors: {w.errors}"
