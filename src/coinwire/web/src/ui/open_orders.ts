// Open orders with their state and trigger: an OCO's legs and a bracket's children (placed, or pending its fill) as one row that opens.

import type { App } from "../app";
import type { Order } from "../api/types";
import * as C from "../conditional";
import { decimalsOf } from "../decimal";
import * as fmt from "../format";
import { Disposer, fill, h, placeholder } from "./dom";

/** A trigger level, or a trailing stop's: its current level and its distance (before activation: where it starts). */
function stopText(o: Order, pd: number): string {
  if (o.type === "trailing-stop") {
    const level = o.stop_price ? fmt.price(o.stop_price, pd) : o.activation_price ? `from ${fmt.price(o.activation_price, pd)}` : "at once";
    return `${level} · trails ${o.trailing_delta ?? "?"}`;
  }
  return o.stop_price ? fmt.price(o.stop_price, pd) : "";
}

/** A bracket leg's level: its trigger, or a take profit's limit. */
function legLevel(leg: { stop_price?: string | null; limit?: string | null; percent?: string | null; trailing_delta?: string | null } | null,
                  pd: number): string {
  if (!leg) return "";
  const level = leg.stop_price ?? leg.limit;
  if (level) return fmt.price(level, pd);
  if (leg.percent) return `${leg.percent}% of fill`;
  return leg.trailing_delta ? `trailing ${leg.trailing_delta} from fill` : "";
}

function stateText(o: Order): string {
  return `${o.status}${o.emulated ? " · emulated" : ""}${o.time_in_force && o.time_in_force !== "GTC" ? ` · ${o.time_in_force}` : ""}`;
}

export function openOrders(app: App, d: Disposer, canTrade: boolean): HTMLElement {
  const several = app.accounts.several();
  const body = h("div", { "data-testid": "open-orders" }, placeholder("loading", "Loading open orders…"));
  const expanded = new Set<string>(); // groups the user opened: the table is drawn again on every change
  const titles = ["#", "Market", ...(several ? ["Account"] : []), "Side", "Type", "State", "Trigger", "Stop", "Price", "Amount", "Filled", "Created", ""];

  const cancelBtn = (o: Order, testid: string, label = "Cancel"): HTMLElement | null =>
    canTrade && app.accounts.byId(o.account)?.role !== "view" ? h("button", { type: "button", class: "ghost danger", "data-testid": testid, onclick: async (e: Event) => {
      (e.currentTarget as HTMLButtonElement).disabled = true;
      try {
        await app.rpc.call("cancel_order", { order_id: o.id });
        app.toast(`Order #${o.id} cancelled${o.oco_id ? " with its OCO" : ""}.`);
      } catch (e) {
        app.toast(`Cancel refused: ${(e as Error).message}`, "error");
      }
      void load();
    } }, label) : null;

  const row = (o: Order, attrs: Record<string, string | boolean>, first: HTMLElement | string, cancel: HTMLElement | null,
    stop: HTMLElement | string = ""): HTMLElement => {
    const m = app.market(o.exchange, o.symbol);
    const pd = m ? decimalsOf(m.tick) : 2;
    return h("tr", { "data-order": o.id, ...attrs },
      h("td", {}, first), h("td", {}, `${o.symbol} · ${o.exchange}`),
      several ? h("td", { class: "muted" }, app.accounts.short(o.account)) : null, h("td", { class: o.side }, o.side), h("td", {}, o.type),
      h("td", { class: `state ${o.status}`, "data-testid": `state-${o.id}` }, stateText(o)), h("td", {}, o.trigger ?? ""),
      h("td", { class: "num", "data-testid": `stop-${o.id}` }, stopText(o, pd) || stop),
      h("td", { class: "num" }, Number(o.limit) ? fmt.price(o.limit, pd) : "market"), h("td", { class: "num" }, fmt.amount(o.size, m?.base ?? "")),
      h("td", { class: "num" }, fmt.amount(o.filled_size, m?.base ?? "")), h("td", {}, fmt.time(o.created_at)), h("td", {}, cancel));
  };

  /** A bracket child its parent places once filled: greyed, sized by the fill, cancelled with its parent. */
  const pendingRow = (parent: Order, c: C.PendingChild, attrs: Record<string, string | boolean>): HTMLElement => {
    const m = app.market(parent.exchange, parent.symbol);
    const pd = m ? decimalsOf(m.tick) : 2;
    return h("tr", { class: "child pending", "data-pending": `${parent.id}:${c.role}`, ...attrs },
      h("td", {}, `↳ ${c.role === "take-profit" ? "TP" : "SL"}`), h("td", {}, `${parent.symbol} · ${parent.exchange}`),
      several ? h("td", {}, app.accounts.short(parent.account)) : null, h("td", {}, c.side), h("td", {}, c.type),
      h("td", { class: "state" }, "placed once filled"), h("td", {}, c.trigger ?? ""),
      h("td", { class: "num" }, c.stop_price ? fmt.price(c.stop_price, pd) : c.percent && c.type !== "limit" ? `${c.percent}% of fill`
        : c.trailing_delta ? `trailing ${c.trailing_delta}` : ""),
      h("td", { class: "num" }, c.limit ? fmt.price(c.limit, pd) : c.percent && c.type === "limit" ? `${c.percent}% of fill` : "market"),
      h("td", { class: "num" }, "as filled"),
      h("td", {}, ""), h("td", {}, ""), h("td", {}, ""));
  };

  /** One group: a plain order's row, or a head row (the bracket's parent, or a summary) with its members under it. */
  const groupRows = (g: C.OrderGroup, redraw: () => void): HTMLElement[] => {
    if (g.kind === "order") return [row(g.head!, {}, String(g.head!.id), cancelBtn(g.head!, `cancel-${g.head!.id}`))];
    const open = expanded.has(g.key);
    const tag = `${g.kind}-${g.id}`;
    const toggle = h("button", { type: "button", class: "ghost expander", "aria-expanded": open, "data-testid": `expand-${tag}`,
      title: open ? "hide its orders" : "show its orders",
      onclick: () => { if (open) expanded.delete(g.key); else expanded.add(g.key); redraw(); } },
      `${open ? "▾" : "▸"} ${g.kind === "oco" ? "OCO" : "Bracket"} #${g.id}`);
    const members = g.orders.map((o) => row(o, { class: "child", hidden: !open, "data-group": g.key }, `↳ ${o.id}`, cancelBtn(o, `cancel-${o.id}`)));
    if (g.head && g.pending.length) members.push(...g.pending.map((c) => pendingRow(g.head!, c, { hidden: !open, "data-group": g.key })));
    // cancelling any leg cancels the list; a bracket's parent is cancelled with its children's spec, its children with their OCO
    const target = g.head ?? g.orders[0];
    const groupCancel = target ? cancelBtn(target, `cancel-group-${tag}`, g.kind === "oco" ? "Cancel OCO" : "Cancel bracket") : null;
    let head: HTMLElement;
    if (g.head) {
      // the pending children's levels at a glance, in the parent's Stop cell (a bracket parent is a limit or market order)
      const m = app.market(g.head.exchange, g.head.symbol);
      const pd = m ? decimalsOf(m.tick) : 2;
      const text = g.pending.map((c) => `${c.role === "take-profit" ? "TP" : "SL"} ${legLevel(c, pd)}`).join("\n");
      const levels = text ? h("span", { class: "pending", "data-testid": `pending-${tag}`, title: "placed once filled" }, text) : "";
      head = row(g.head, { class: "group", "data-group-head": g.key }, toggle, groupCancel, levels);
    } else {
      const first = g.orders[0];
      const m = app.market(first.exchange, first.symbol);
      const pd = m ? decimalsOf(m.tick) : 2;
      const legs = g.orders.map((o) => `${C.triggerKind(o.type) ?? "limit"} ${o.stop_price ? fmt.price(o.stop_price, pd) : fmt.price(o.limit, pd)}`).join(" / ");
      const summary = g.kind === "bracket" ? `children of #${g.id}: ${legs}` : legs;
      head = h("tr", { class: "group", "data-group-head": g.key },
        h("td", {}, toggle), h("td", {}, `${first.symbol} · ${first.exchange}`),
        several ? h("td", { class: "muted" }, app.accounts.short(first.account)) : null, h("td", { class: first.side }, first.side),
        h("td", { colspan: 5, "data-testid": `summary-${tag}` }, summary), h("td", { class: "num" }, fmt.amount(first.size, m?.base ?? "")),
        h("td", {}, ""), h("td", {}, fmt.time(first.created_at)), h("td", {}, groupCancel));
    }
    return [head, ...members];
  };

  let last: Order[] = [];
  const draw = () => {
    if (!last.length) return fill(body, placeholder("empty", "No open orders."));
    fill(body, h("table", { class: "grid open-orders" },
      h("thead", {}, h("tr", {}, ...titles.map((t) => h("th", {}, t)))),
      h("tbody", {}, ...C.groupOrders(last).flatMap((g) => groupRows(g, draw)))));
  };
  const load = async () => {
    try {
      last = await app.rpc.call<Order[]>("list_open_orders", app.accounts.scope());
      draw();
    } catch (e) {
      fill(body, placeholder("error", (e as Error).message));
    }
  };
  void load();
  d.every(3000, () => void load());
  d.add(app.rpc.on("order", (o: { account?: number }) => { if (app.accounts.shows(o.account)) void load(); }));
  return h("section", { class: "card" }, h("h3", {}, "Open orders"), body);
}
