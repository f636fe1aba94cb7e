// Trade: the order ticket (validated before sending; placed on the shown account, on its exchange),
// open orders with cancel, and every recent order in a virtualised table.

import type { App } from "../app";
import type { Account, Market, Order } from "../api/types";
import * as fmt from "../format";
import { accountScope } from "../ui/account_switcher";
import { Disposer, fill, h, placeholder, redrawable } from "../ui/dom";
import { bookPanel, currentMarket, marketPicker } from "../ui/market";
import { openOrders } from "../ui/open_orders";
import { orderTicket } from "../ui/order_ticket";
import { fundingPanel, leverageControls, livePositions, positionsPanel } from "../ui/positions";
import { isPerpetual } from "../positions";
import { VirtualTable } from "../ui/vtable";

export function tradePage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const root = h("div", { class: "page trade" });
  return redrawable(root, d, (inner, draw) => {
    const account = app.accounts.chosen.value;
    const m = tradedMarket(app, account);
    if (!m) {
      fill(root, accountScope(app), placeholder("empty", account
        ? `Account ${account.name} is on ${account.exchange}, which has no markets yet.` : "No exchange has markets yet."));
      return;
    }
    const canTrade = app.can("trade", "order") && (!account || account.role !== "view");
    const perp = isPerpetual(m) ? livePositions(app, inner) : null; // a spot market adds nothing to the page
    const ticket = canTrade ? orderTicket(app, m, inner, perp ?? undefined) : null;
    const cannot = app.can("trade", "order") ? `You may view account ${account?.name}, not trade on it: no order ticket.`
      : "Your role may look, not trade: no order ticket.";
    fill(root,
      h("div", { class: "toolbar" }, marketPicker(app, draw, m, account?.exchange), accountScope(app)),
      h("div", { class: perp ? "grid-trade with-perp" : "grid-trade" },
        ticket ? ticket.el : h("section", { class: "card" }, placeholder("empty", cannot)),
        bookPanel(app, m, inner, ticket?.setPrice),
        perp ? leverageControls(app, inner, m, app.accounts.forOrders(m.exchange) ?? account, perp) : null),
      perp ? positionsPanel(app, inner, perp, m) : null,
      openOrders(app, inner, canTrade),
      perp ? fundingPanel(app, inner, m) : null,
      recentOrders(app, inner));
  });
}

/**
 * The market the Trade page trades: the last one looked at, but on the shown account's exchange
 * (the same symbol there when it lists it, else its first market), since an order is placed on
 * the account's exchange. Choosing an account does not change the market the Markets page shows.
 */
function tradedMarket(app: App, account: Account | null): Market | undefined {
  const m = currentMarket(app);
  if (!account || m?.exchange === account.exchange) return m;
  return app.market(account.exchange, m?.symbol ?? "") ?? app.exchanges.value.find((e) => e.exchange === account.exchange)?.markets[0];
}

function recentOrders(app: App, d: Disposer): HTMLElement {
  const table = new VirtualTable<Order>([
    { key: "id", title: "#", value: (o) => o.id, num: true },
    { key: "time", title: "Time", value: (o) => o.created_at, render: (o) => fmt.time(o.created_at) },
    { key: "symbol", title: "Market", value: (o) => `${o.symbol} · ${o.exchange}` },
    ...(app.accounts.several() ? [{ key: "account", title: "Account", value: (o: Order) => app.accounts.short(o.account) }] : []),
    { key: "side", title: "Side", value: (o) => o.side, render: (o) => h("span", { class: o.side }, o.side) },
    { key: "type", title: "Type", value: (o) => o.type },
    { key: "status", title: "Status", value: (o) => (o.done_reason ? `${o.status} ${o.done_reason}` : o.status) },
    { key: "stop", title: "Stop", value: (o) => Number(o.stop_price ?? 0), render: (o) => (o.stop_price ? fmt.price(o.stop_price) : ""), num: true },
    { key: "size", title: "Amount", value: (o) => Number(o.size), render: (o) => fmt.amount(o.size, app.market(o.exchange, o.symbol)?.base ?? ""), num: true },
    { key: "filled", title: "Filled", value: (o) => Number(o.filled_size), render: (o) => fmt.amount(o.filled_size, app.market(o.exchange, o.symbol)?.base ?? ""), num: true },
    { key: "price", title: "Avg price", value: (o) => Number(o.avg_price), render: (o) => fmt.price(o.avg_price), num: true },
  ], d, undefined, "id");
  const load = async () => {
    try {
      table.setRows(await app.rpc.call<Order[]>("list_recent_orders", { include_open: true, limit: 1000, ...app.accounts.scope() }));
    } catch (e) {
      app.toast(`Orders: ${(e as Error).message}`, "error");
    }
  };
  void load();
  let timer = 0;
  d.add(app.rpc.on("order", (o: { account?: number }) => {
    if (!app.accounts.shows(o.account)) return;
    window.clearTimeout(timer);
    timer = window.setTimeout(load, 300);
  }));
  d.every(10_000, () => void load());
  return h("section", { class: "card", "data-testid": "recent-orders" }, h("h3", {}, "Orders and fills"), table.el);
}
