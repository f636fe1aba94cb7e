"""Conditional orders on the dashboard against a real server: the ticket's checks, a stop-limit listed with its
trigger line, a bracket (its children pending before the parent fills) and an OCO each shown as one row with their
orders under it."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_FLOOR, Decimal

from playwright.sync_api import expect

from coinwire.api.client import RpcClient, RpcError
from tests.e2e.conftest import Watched, shot
from tests.server import ServerProcess


def _rpc(server: ServerProcess, method: str, **params: object) -> object:
    """One JSON-RPC call as admin from a worker thread (Playwright's sync API owns this thread's loop)."""
    async def run() -> object:
        async with RpcClient(server.ws) as rpc:
            return await rpc.call(method, **params)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def _market(server: ServerProcess) -> tuple[Decimal, Decimal]:
    """The demo BTC/USDT market's last price and tick, as the server answers them now."""
    with server.client() as c:
        ticker = next(t for t in c.get("/api/v1/tickers").json() if t["exchange"] == "demo" and t["symbol"] == "BTC/USDT")
        exchange = next(e for e in c.get("/xwrap/v1/exchanges").json() if e["exchange"] == "demo")
    tick = Decimal(next(m for m in exchange["markets"] if m["symbol"] == "BTC/USDT")["tick"])
    return Decimal(ticker["price"]), tick


def _on_tick(price: Decimal, tick: Decimal) -> Decimal:
    return (price / tick).to_integral_value(ROUND_FLOOR) * tick


def _grouped(price: Decimal) -> str:
    """A price as the ticket's reasons word it: "62,000", "61,500.5"."""
    whole, _, frac = format(price.normalize(), "f").partition(".")
    return f"{int(whole):,}" + (f".{frac}" if frac else "")


def _shown(price: Decimal, tick: Decimal) -> str:
    """A price as the tables and the chart show it: grouped, at the market's decimals."""
    return f"{price:,.{max(0, -int(tick.normalize().as_tuple().exponent))}f}"


def _open_orders(server: ServerProcess) -> list[dict[str, object]]:
    orders = _rpc(server, "list_open_orders")
    assert isinstance(orders, list)
    return orders


def test_wrong_side_stop_and_bad_fields_refused_before_sending(admin_page: Watched, server: ServerProcess) -> None:
    page = admin_page.page
    page.goto("/app/trade")
    ticket = page.get_by_test_id("ticket")
    problems = page.get_by_test_id("ticket-problems")
    before = len(_open_orders(server))
    ticket.get_by_label("Type").select_option("stop-limit")
    page.locator("[data-side=sell]").click()
    ticket.get_by_label("Amount (BTC)").fill("0.01")
    # only the stop-limit's fields show: a stop price, its trigger, a limit and time in force; no trailing delta, no bracket
    expect(ticket.get_by_placeholder("trigger level (USDT)")).to_be_visible()
    expect(ticket.get_by_label("Time in force")).to_be_visible()
    expect(ticket.locator("input[name=trailing_delta]")).to_be_hidden()
    expect(ticket.get_by_test_id("bracket")).to_be_hidden()
    last, tick = _market(server)
    stop = _on_tick(last * Decimal("1.2"), tick)  # far above the market: the demo price does not walk that far meanwhile
    ticket.get_by_placeholder("trigger level (USDT)").fill(str(stop))
    ticket.get_by_placeholder("price (USDT)").fill(str(stop))
    reason = re.compile(rf"A sell stop at {re.escape(_grouped(stop))} would trigger now: the last price is [\d,.]+\.")
    expect(problems).to_contain_text(reason)
    expect(page.get_by_test_id("place-order")).to_be_disabled()
    shot(admin_page, "ticket-stop-would-trigger")
    # off the tick
    ticket.get_by_placeholder("trigger level (USDT)").fill(str(_on_tick(last * Decimal("0.8"), tick) + tick / 3))
    expect(problems).to_contain_text(f"The stop price must be a multiple of {tick} USDT.")
    # a trailing stop: its delta is above 0 and below 100%
    ticket.get_by_label("Type").select_option("trailing-stop")
    expect(ticket.get_by_placeholder("price (USDT)")).to_be_hidden()
    ticket.locator("input[name=trailing_delta]").fill("150%")
    expect(problems).to_contain_text("A trailing delta in percent must be above 0% and below 100%.")
    ticket.locator("input[name=trailing_delta]").fill("1.5%")
    expect(problems).to_be_empty()
    # good till date: the expiry must be in the future
    ticket.get_by_label("Type").select_option("limit")
    ticket.get_by_placeholder("price (USDT)").fill(str(_on_tick(last * Decimal("1.2"), tick)))
    ticket.get_by_label("Time in force").select_option("GTD")
    expect(problems).to_contain_text("Good till date needs an expiry date and time.")
    ticket.get_by_label("Expires").fill("2020-01-01T00:00")
    expect(problems).to_contain_text("The expiry must be in the future.")
    # a bracket on a long: its stop loss below the entry
    ticket.get_by_label("Time in force").select_option("GTC")
    page.locator("[data-side=buy]").click()
    entry = _on_tick(last * Decimal("0.9"), tick)
    ticket.get_by_placeholder("price (USDT)").fill(str(entry))
    ticket.get_by_label("Attach a take profit and a stop loss").check()
    ticket.get_by_placeholder("take profit (USDT)").fill(str(entry + 100 * tick))
    ticket.get_by_placeholder("stop loss (USDT)").fill(str(entry + 10 * tick))
    expect(problems).to_contain_text(f"A long's stop loss must be below its entry ({_grouped(entry)}).")
    shot(admin_page, "ticket-bracket-refused")
    assert len(_open_orders(server)) == before  # nothing was sent


def test_stop_limit_from_the_ticket_listed_untriggered_with_its_line_on_the_chart(admin_page: Watched, server: ServerProcess) -> None:
    page = admin_page.page
    page.goto("/app/trade")
    ticket = page.get_by_test_id("ticket")
    last, tick = _market(server)
    stop = _on_tick(last * Decimal("0.95"), tick)
    ticket.get_by_label("Type").select_option("stop-limit")
    page.locator("[data-side=sell]").click()
    ticket.get_by_label("Amount (BTC)").fill("0.01")
    ticket.get_by_placeholder("trigger level (USDT)").fill(str(stop))
    ticket.get_by_placeholder("price (USDT)", exact=True).fill(str(stop - 10 * tick))
    expect(page.get_by_test_id("ticket-problems")).to_be_empty()
    page.get_by_test_id("place-order").click()
    expect(page.get_by_test_id("ticket-result")).to_contain_text("untriggered")
    placed = [o for o in _open_orders(server) if o["type"] == "stop-limit"]
    assert len(placed) == 1 and placed[0]["status"] == "untriggered" and Decimal(str(placed[0]["stop_price"])) == stop
    oid = placed[0]["id"]
    expect(page.get_by_test_id(f"state-{oid}")).to_have_text("untriggered")
    expect(page.get_by_test_id(f"stop-{oid}")).to_have_text(_shown(stop, tick))
    shot(admin_page, "open-orders-stop-limit")
    # a trailing stop follows the market from its acceptance: its line sits at its current level
    trailing = _rpc(server, "make_order", exchange="demo", pair="BTC_USDT", side="sell", type="trailing-stop", size="0.01",
                    trailing_delta="2%")
    assert isinstance(trailing, dict) and trailing["stop_price"]
    tid = trailing["id"]
    expect(page.get_by_test_id(f"stop-{tid}")).to_contain_text("· trails 2%")
    page.goto("/app/markets")
    chart = page.get_by_test_id("chart")
    expect(chart).to_have_attribute("data-trigger-lines", re.compile(
        rf"^Stop sell [\d.]+ #{oid} @ {re.escape(_shown(stop, tick))}\nTrail sell [\d.]+ #{tid} @ [\d,.]+$"))
    page.wait_for_function("() => document.querySelectorAll('[data-testid=chart] canvas').length > 0")
    shot(admin_page, "markets-trigger-line")
    page.goto("/app/trade")
    page.get_by_test_id(f"cancel-{oid}").click()
    page.get_by_test_id(f"cancel-{tid}").click()
    expect(page.get_by_test_id("open-orders")).to_contain_text("No open orders")
    page.goto("/app/markets")
    expect(page.get_by_test_id("chart")).to_have_attribute("data-trigger-lines", "")


def test_bracket_children_shown_as_one_row_and_cancelled_together(admin_page: Watched, server: ServerProcess) -> None:
    page = admin_page.page
    last, tick = _market(server)
    take_profit, stop_loss = _on_tick(last * Decimal("1.2"), tick), _on_tick(last * Decimal("0.8"), tick)
    parent = _rpc(server, "make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.01",
                  take_profit={"limit": str(take_profit)}, stop_loss={"stop_price": str(stop_loss)})
    assert isinstance(parent, dict)
    pid = parent["id"]
    page.goto("/app/trade")
    head = page.locator(f"tr[data-group-head='bracket:{pid}']")
    expect(head).to_be_visible()
    children = page.locator(f"tr[data-group='bracket:{pid}']")
    expect(children).to_have_count(2)
    expect(children.first).to_be_hidden()  # one row until it is opened
    expect(page.get_by_test_id(f"summary-bracket-{pid}")).to_contain_text(f"children of #{pid}")
    page.get_by_test_id(f"expand-bracket-{pid}").click()
    expect(children.nth(0)).to_be_visible()
    expect(children.nth(1)).to_be_visible()
    states = sorted(children.locator("td.state").all_inner_texts())
    assert states == ["open", "untriggered"], states  # the take profit rests as a limit, the stop loss waits
    shot(admin_page, "open-orders-bracket")
    page.get_by_test_id(f"cancel-group-bracket-{pid}").click()
    expect(page.get_by_test_id("open-orders")).to_contain_text("No open orders")
    assert not [o for o in _open_orders(server) if o.get("parent_id") == pid]


def test_bracket_parent_before_its_fill_shows_its_pending_children(admin_page: Watched, server: ServerProcess) -> None:
    page = admin_page.page
    last, tick = _market(server)
    entry = _on_tick(last * Decimal("0.9"), tick)  # a resting buy well below the market: it does not fill meanwhile
    take_profit, stop_loss = _on_tick(last * Decimal("1.2"), tick), _on_tick(last * Decimal("0.8"), tick)
    parent = _rpc(server, "make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.01",
                  limit=str(entry), take_profit={"limit": str(take_profit)}, stop_loss={"stop_price": str(stop_loss)})
    assert isinstance(parent, dict) and parent["status"] == "open", parent
    assert parent["bracket"]["take_profit"]["type"] == "limit" and parent["bracket"]["stop_loss"]["type"] == "stop-market"
    pid = parent["id"]
    page.goto("/app/trade")
    head = page.locator(f"tr[data-group-head='bracket:{pid}']")
    expect(head).to_be_visible()
    levels = page.get_by_test_id(f"pending-bracket-{pid}")
    expect(levels).to_have_text(re.compile(f"^TP {re.escape(_shown(take_profit, tick))}\\s+SL {re.escape(_shown(stop_loss, tick))}$"))
    pending = page.locator(f"tr.pending[data-group='bracket:{pid}']")
    expect(pending).to_have_count(2)
    expect(pending.first).to_be_hidden()  # one row until it is opened
    page.get_by_test_id(f"expand-bracket-{pid}").click()
    take, stop = page.locator(f"tr[data-pending='{pid}:take-profit']"), page.locator(f"tr[data-pending='{pid}:stop-loss']")
    expect(take).to_be_visible()
    expect(stop).to_be_visible()
    for row in (take, stop):
        expect(row.locator("td.state")).to_have_text("placed once filled")
        expect(row).to_contain_text("sell")
        expect(row).to_contain_text("as filled")
    expect(take).to_contain_text(_shown(take_profit, tick))
    expect(stop).to_contain_text("stop-market")
    expect(stop).to_contain_text(_shown(stop_loss, tick))
    color = "e => getComputedStyle(e).color"
    assert take.locator("td").nth(1).evaluate(color) != head.locator("td").nth(1).evaluate(color)  # greyed beside its parent
    assert not [o for o in _open_orders(server) if o.get("parent_id") == pid]  # nothing placed yet
    shot(admin_page, "open-orders-bracket-pending")
    page.get_by_test_id(f"cancel-group-bracket-{pid}").click()
    expect(page.get_by_test_id("open-orders")).to_contain_text("No open orders")
    assert not [o for o in _open_orders(server) if o["id"] == pid or o.get("parent_id") == pid]


def test_oco_from_the_ticket_is_one_row_and_a_leg_cancel_cancels_the_list(admin_page: Watched, server: ServerProcess) -> None:
    page = admin_page.page
    page.goto("/app/trade")
    ticket = page.get_by_test_id("ticket")
    last, tick = _market(server)
    ticket.get_by_label("Type").select_option("oco")
    page.locator("[data-side=sell]").click()
    ticket.get_by_label("Amount (BTC)").fill("0.01")
    ticket.get_by_placeholder("price (USDT)", exact=True).fill(str(_on_tick(last * Decimal("1.2"), tick)))
    ticket.get_by_placeholder("trigger level (USDT)").fill(str(_on_tick(last * Decimal("0.8"), tick)))
    expect(page.get_by_test_id("ticket-problems")).to_be_empty()
    page.get_by_test_id("place-order").click()
    expect(page.get_by_test_id("ticket-result")).to_contain_text("OCO #")
    legs = [o for o in _open_orders(server) if o.get("oco_id")]
    assert len(legs) == 2 and len({o["oco_id"] for o in legs}) == 1
    list_id = legs[0]["oco_id"]
    expect(page.locator(f"tr[data-group-head='oco:{list_id}']")).to_be_visible()
    page.get_by_test_id(f"expand-oco-{list_id}").click()
    expect(page.locator(f"tr[data-group='oco:{list_id}']")).to_have_count(2)
    shot(admin_page, "open-orders-oco")
    page.get_by_test_id(f"cancel-{legs[1]['id']}").click()  # one leg: the list goes
    expect(page.get_by_test_id("open-orders")).to_contain_text("No open orders")
    assert not [o for o in _open_orders(server) if o.get("oco_id") == list_id]


def test_a_refusal_only_the_server_can_make_is_shown_in_its_words(admin_page: Watched, server: ServerProcess) -> None:
    """The page has no mark price, so a mark-triggered stop goes to the server, which refuses one that would fire now."""
    page = admin_page.page
    page.goto("/app/trade")
    ticket = page.get_by_test_id("ticket")
    last, tick = _market(server)
    stop = _on_tick(last * Decimal("1.2"), tick)
    try:
        _rpc(server, "make_order", exchange="demo", pair="BTC_USDT", side="sell", type="stop-market", size="0.01",
             stop_price=str(stop), trigger="mark")
        raise AssertionError("the server took a sell stop above the market")
    except RpcError as e:
        words = str(e.data.get("message") or e.message)
        assert e.data.get("reason", e.data.get("code")) == "stop_would_trigger", e.data
    ticket.get_by_label("Type").select_option("stop-market")
    page.locator("[data-side=sell]").click()
    ticket.get_by_label("Amount (BTC)").fill("0.01")
    ticket.get_by_placeholder("trigger level (USDT)").fill(str(stop))
    ticket.locator("select[name=trigger]").select_option("mark")
    expect(page.get_by_test_id("ticket-problems")).to_be_empty()
    page.get_by_test_id("place-order").click()
    result = page.get_by_test_id("ticket-result")
    mark = re.search(r"the mark price is ([\d.]+)", words)  # the server's sentence, the market moving meanwhile
    assert mark, words
    expect(result).to_have_text(re.compile("^Refused: " + re.escape(words).replace(re.escape(mark.group(1)), r"[\d.]+") + "$"))
    expect(result).to_have_attribute("title", "stop_would_trigger")
    assert not [o for o in _open_orders(server) if o["type"] == "stop-market"]
