// Trade: the order ticket (validated before sending; placed on the shown account, on its exchange),
// open orders with cancel, and every recent order in a virtualised table.

import type { App } from "../app";
import { ApiError } from "../api/http";
import type { Account, Market, Order, Wallet } from "../api/types";
import * as D from "../decimal";
import * as fmt from "../format";
import { accountScope } from "../ui/account_switcher";
import { Disposer, fill, h, placeholder, redrawable } from "../ui/dom";
import { bookPanel, currentMarket, marketPicker } from "../ui/market";
import { VirtualTable } from "../ui/vtable";

export const ORDER_TYPES: [string, string][] = [
  ["limit", "Limit"],
  ["market", "Market"],
  ["limit-immediate-cancel", "IOC"],
  ["limit-fill-kill", "FOK"],
  ["limit-post-only", "Post-only"],
];

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
    const ticket = canTrade ? orderTicket(app, m, inner) : null;
    const cannot = app.can("trade", "order") ? `You may view account ${account?.name}, not trade on it: no order ticket.`
      : "Your role may look, not trade: no order ticket.";
    fill(root,
      h("div", { class: "toolbar" }, marketPicker(app, draw, m, account?.exchange), accountScope(app)),
      h("div", { class: "grid-trade" },
        ticket ? ticket.el : h("section", { class: "card" }, placeholder("empty", cannot)),
        bookPanel(app, m, inner, ticket?.setPrice)),
      openOrders(app, inner, canTrade),
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

/** Funds an order without a wallet set can use: the unallocated available balance of the account it is placed on. */
async function available(app: App, exchange: string, account: Account | null): Promise<Map<string, string>> {
  const per = await app.rpc.call<Record<string, Wallet[]>>("get_unallocated_per_exchange", account ? { account: account.id } : {});
  return new Map((per[exchange] ?? []).map((w) => [w.currency, w.available]));
}

/** Which account the ticket places on, in words (none yet: the server opens the user's paper account with the first order). */
function accountLine(app: App, exchange: string, account: Account | null): HTMLElement {
  return h("div", { class: "muted", "data-testid": "ticket-account" }, "Account: ",
    account ? h("strong", {}, app.accounts.label(account)) : `your own on ${exchange} (opened with your first order)`);
}

function orderTicket(app: App, m: Market, d: Disposer): { el: HTMLElement; setPrice: (p: string) => void } {
  const account = app.accounts.forOrders(m.exchange); // fixed while the page shows it: another choice redraws the page
  let side: "buy" | "sell" = "buy";
  let funds = new Map<string, string>();
  const pd = D.decimalsOf(m.tick), sd = D.decimalsOf(m.step);
  const sideBtns = (["buy", "sell"] as const).map((s) =>
    h("button", { type: "button", class: `side-${s} ${s === side ? "on" : ""}`, "aria-pressed": s === side, "data-side": s,
      onclick: () => { side = s; sideBtns.forEach((b) => { b.classList.toggle("on", b.dataset.side === s); b.setAttribute("aria-pressed", String(b.dataset.side === s)); }); submit.textContent = `${s === "buy" ? "Buy" : "Sell"} ${m.base}`; submit.className = `side-${s}`; recompute(); } },
      s === "buy" ? "Buy" : "Sell"));
  const type = h("select", { name: "type", "aria-label": "order type" }, ...ORDER_TYPES.map(([v, t]) => h("option", { value: v }, t)));
  const priceIn = h("input", { name: "price", inputmode: "decimal", placeholder: `price (${m.quote})`, autocomplete: "off" });
  const sizeIn = h("input", { name: "size", inputmode: "decimal", placeholder: `amount (${m.base})`, autocomplete: "off" });
  const pct = h("input", { type: "range", name: "percent", min: 0, max: 100, step: 1, value: 0, "aria-label": "percent of available" });
  const pctLabel = h("span", { class: "muted" }, "0%");
  const avail = h("div", { class: "muted", "data-testid": "available" }, "available: …");
  const notional = h("div", { class: "muted", "data-testid": "notional" }, "");
  const problems = h("ul", { class: "problems", "data-testid": "ticket-problems", "aria-live": "polite" });
  const result = h("p", { class: "result", "data-testid": "ticket-result", role: "status" });
  const submit = h("button", { type: "submit", class: "side-buy", "data-testid": "place-order" }, `Buy ${m.base}`);

  const touch = (): string | null => {
    const t = app.tickers.value.get(`${m.exchange}:${m.symbol}`);
    return (side === "buy" ? t?.ask : t?.bid) ?? t?.price ?? null;
  };
  const isMarket = () => type.value === "market";

  /** Everything wrong with the ticket as it stands (empty: it may be sent). */
  const validate = (): string[] => {
    const out: string[] = [];
    const size = D.parse(sizeIn.value);
    if (!sizeIn.value.trim()) out.push("Enter an amount.");
    else if (!size || size.units <= 0n) out.push("The amount must be a positive number.");
    else {
      if (!D.isMultiple(size, D.parse(m.step)!)) out.push(`The amount must be a multiple of ${m.step} ${m.base}.`);
      if (D.cmp(size, D.parse(m.min_size)!) < 0) out.push(`The minimum amount is ${m.min_size} ${m.base}.`);
      if (m.max_size && D.cmp(size, D.parse(m.max_size)!) > 0) out.push(`The maximum amount is ${m.max_size} ${m.base}.`);
    }
    let px: D.Dec | null = null;
    if (!isMarket()) {
      px = D.parse(priceIn.value);
      if (!priceIn.value.trim()) out.push("Enter a limit price.");
      else if (!px || px.units <= 0n) out.push("The price must be a positive number.");
      else if (!D.isMultiple(px, D.parse(m.tick)!)) out.push(`The price must be a multiple of ${m.tick} ${m.quote}.`);
    } else {
      const t = touch();
      px = t ? D.parse(t) : null;
    }
    if (size && size.units > 0n && px && px.units > 0n) {
      const value = D.mul(size, px);
      notional.textContent = `≈ ${fmt.price(D.toString(value), pd)} ${m.quote}`;
      if (D.cmp(value, D.parse(m.min_notional)!) < 0) out.push(`The order value must be at least ${m.min_notional} ${m.quote}.`);
      const have = D.parse(funds.get(side === "buy" ? m.quote : m.base) ?? "0")!;
      const need = side === "buy" ? value : size;
      if (funds.size && D.cmp(need, have) > 0) out.push(`Not enough ${side === "buy" ? m.quote : m.base}: ${D.toString(need)} needed, ${D.toString(have)} available.`);
    } else notional.textContent = "";
    return out;
  };
  const recompute = () => {
    priceIn.disabled = isMarket();
    if (isMarket()) priceIn.value = "";
    const issues = validate();
    fill(problems, ...issues.map((t) => h("li", {}, t)));
    submit.disabled = issues.length > 0;
  };
  const fromPercent = () => {
    pctLabel.textContent = `${pct.value}%`;
    const share = D.parse(pct.value)!;
    const step = D.parse(m.step)!;
    if (side === "sell") {
      const have = D.parse(funds.get(m.base) ?? "0")!;
      sizeIn.value = D.toString(D.floorTo(D.divFloor(D.mul(have, share), { units: 100n, scale: 0 }, sd + 2), step));
    } else {
      const px = D.parse(isMarket() ? touch() ?? "" : priceIn.value);
      if (!px || px.units <= 0n) return;
      const have = D.parse(funds.get(m.quote) ?? "0")!;
      const fee = 1 + Number(m.taker_fee); // leave room for the fee
      const spend = D.divFloor(D.mul(have, share), { units: BigInt(Math.round(100 * fee * 1e6)), scale: 6 }, 12);
      sizeIn.value = D.toString(D.floorTo(D.divFloor(spend, px, sd + 2), step));
    }
    recompute();
  };
  const refreshFunds = async () => {
    try {
      funds = await available(app, m.exchange, account);
      avail.textContent = `available: ${fmt.amount(funds.get(m.quote) ?? "0", m.quote)} ${m.quote} · ${fmt.amount(funds.get(m.base) ?? "0", m.base)} ${m.base}`;
      recompute();
    } catch (e) {
      avail.textContent = `available: ${(e as Error).message}`;
    }
  };
  type.addEventListener("change", recompute);
  priceIn.addEventListener("input", recompute);
  sizeIn.addEventListener("input", () => { pct.value = "0"; pctLabel.textContent = "0%"; recompute(); });
  pct.addEventListener("input", fromPercent);
  const quick = h("div", { class: "seg" }, ...[25, 50, 75, 100].map((v) =>
    h("button", { type: "button", onclick: () => { pct.value = String(v); fromPercent(); } }, `${v}%`)));

  const form = h("form", { class: "card ticket", "aria-label": "order ticket", "data-testid": "ticket", novalidate: true },
    h("h3", {}, `Order · ${m.symbol} · ${m.exchange}`),
    app.can("read", "account") ? accountLine(app, m.exchange, account) : null,
    h("div", { class: "seg sides" }, ...sideBtns),
    h("label", {}, "Type", type),
    h("label", {}, `Price (${m.quote})`, h("div", { class: "row" }, priceIn,
      h("button", { type: "button", class: "ghost", title: "best price on the other side", onclick: () => { const t = touch(); if (t) { priceIn.value = t; recompute(); } } }, "touch"))),
    h("label", {}, `Amount (${m.base})`, sizeIn),
    h("label", {}, h("span", {}, "% of available ", pctLabel), pct), quick,
    avail, notional, problems, submit, result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (validate().length) return recompute();
    submit.disabled = true;
    result.className = "result";
    result.textContent = "Sending…";
    const params: Record<string, unknown> = { exchange: m.exchange, symbol: m.symbol, side, type: type.value, size: sizeIn.value.trim() };
    if (account) params.account = account.id;
    if (!isMarket()) params.limit = priceIn.value.trim();
    try {
      const o = await app.rpc.call<Order>("make_order", params);
      result.textContent = `Order #${o.id} ${o.status}${o.done_reason ? ` (${o.done_reason})` : ""}: ${o.side} ${fmt.amount(o.filled_size, m.base)} of ${fmt.amount(o.size, m.base)} ${m.base}${Number(o.avg_price) ? ` at ${fmt.price(o.avg_price, pd)}` : ""}.`;
      result.className = "result ok";
      void refreshFunds();
    } catch (err) {
      const a = err as ApiError;
      result.textContent = `Refused: ${a.message}`;
      result.title = a.code;
      result.className = "result error";
    } finally {
      recompute();
    }
  });
  void refreshFunds();
  d.every(5000, () => void refreshFunds());
  d.add(app.rpc.on("trade", (t: { account?: number }) => { if (!account || t.account === account.id) void refreshFunds(); }));
  d.add(app.tickers.watch(() => { if (isMarket()) recompute(); }));
  recompute();
  return { el: form, setPrice: (p: string) => { if (!isMarket()) { priceIn.value = p; recompute(); } } };
}

function openOrders(app: App, d: Disposer, canTrade: boolean): HTMLElement {
  const several = app.accounts.several();
  const body = h("div", { "data-testid": "open-orders" }, placeholder("loading", "Loading open orders…"));
  const load = async () => {
    try {
      const orders = await app.rpc.call<Order[]>("list_open_orders", app.accounts.scope());
      if (!orders.length) return fill(body, placeholder("empty", "No open orders."));
      fill(body, h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ...["#", "Market", ...(several ? ["Account"] : []), "Side", "Type", "Price", "Amount", "Filled", "Created", ""]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, ...orders.map((o) => {
          const m = app.market(o.exchange, o.symbol);
          const cancel = canTrade && app.accounts.byId(o.account)?.role !== "view" ? h("button", { type: "button", class: "ghost danger", "data-testid": `cancel-${o.id}`, onclick: async (e: Event) => {
            (e.currentTarget as HTMLButtonElement).disabled = true;
            try {
              await app.rpc.call("cancel_order", { order_id: o.id });
              app.toast(`Order #${o.id} cancelled.`);
            } catch (e) {
              app.toast(`Cancel refused: ${(e as Error).message}`, "error");
            }
            void load();
          } }, "Cancel") : null;
          return h("tr", { "data-order": o.id },
            h("td", {}, String(o.id)), h("td", {}, `${o.symbol} · ${o.exchange}`),
            several ? h("td", { class: "muted" }, app.accounts.short(o.account)) : null, h("td", { class: o.side }, o.side), h("td", {}, o.type),
            h("td", { class: "num" }, fmt.price(o.limit, m ? D.decimalsOf(m.tick) : 2)), h("td", { class: "num" }, fmt.amount(o.size, m?.base ?? "")),
            h("td", { class: "num" }, fmt.amount(o.filled_size, m?.base ?? "")), h("td", {}, fmt.time(o.created_at)), h("td", {}, cancel));
        }))));
    } catch (e) {
      fill(body, placeholder("error", (e as Error).message));
    }
  };
  void load();
  d.every(3000, () => void load());
  d.add(app.rpc.on("order", (o: { account?: number }) => { if (app.accounts.shows(o.account)) void load(); }));
  return h("section", { class: "card" }, h("h3", {}, "Open orders"), body);
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
