// The market's recent public trades: the server's ring (REST), then live from the `public_trades` channel.

import type { App } from "../app";
import type { Market, PublicTrade } from "../api/types";
import { decimalsOf } from "../decimal";
import * as fmt from "../format";
import { prefs } from "../prefs";
import { Disposer, fill, h, placeholder } from "./dom";

const SHOWN = 40; // rows in the panel
const REDRAW_MS = 250; // busy markets trade many times a second: draw at most this often

/** `trade.<exchange>.<quote>.<base>`: the subject pattern of one market's public trades. */
export function tradeSubject(m: Market): string {
  return ["trade", m.exchange, m.quote, m.base].map((t) => t.toLowerCase()).join(".");
}

/** Stop the connection's `public_trades` notifications (when the page that showed them is left). */
export function endPublicTrades(app: App): void {
  app.rpc.call("unsubscribe", { channels: ["public_trades"] }).catch(() => undefined);
}

/**
 * Recent trades of `m`, newest first: time, price, amount and the taker's side, coloured.
 *
 * Each (re)connection subscribes to the market's trades and then reads the ring again, so a
 * gap after a reconnect fills. The subscription outlives this panel (a market switch replaces
 * its pattern); the page calls `endPublicTrades` when it is left.
 */
export function publicTradesPanel(app: App, m: Market, d: Disposer): HTMLElement {
  const pd = decimalsOf(m.tick), sd = decimalsOf(m.step);
  const body = h("div", { class: "trades-list", "data-testid": "public-trades" }, placeholder("loading", "Loading recent trades…"));
  let trades: PublicTrade[] = [];
  let seen = new Set<string>();
  let fresh = new Set<string>(); // arrived since the last draw: highlighted until the next
  let dirty = false, updates = 0;

  const add = (incoming: PublicTrade[]) => {
    for (const t of incoming) {
      if (t.exchange !== m.exchange || t.symbol !== m.symbol || seen.has(t.id)) continue;
      seen.add(t.id);
      fresh.add(t.id);
      trades.push(t);
    }
    trades.sort(newestFirst);
    trades = trades.slice(0, SHOWN);
    seen = new Set(trades.map((t) => t.id));
    dirty = true;
  };
  // Rows stay in the document once drawn: a draw inserts the new trades' rows and removes those that fell off, so a busy
  // market costs the page a few rows a draw (and the flash of those), not a new table four times a second.
  const tbody = h("tbody");
  const rows = new Map<string, HTMLElement>(); // the rows in `tbody`, by trade id
  const row = (t: PublicTrade) => h("tr", { "data-trade": t.id, class: fresh.has(t.id) ? "new" : "" },
    h("td", {}, clock(t.time)),
    h("td", { class: `num ${t.side}` }, fmt.price(t.price, pd)),
    h("td", { class: "num" }, fmt.fixed(t.amount, sd)),
    h("td", { class: t.side }, t.side));
  const draw = () => {
    if (!dirty) return;
    dirty = false;
    body.dataset.updates = String(++updates);
    if (!trades.length) return fill(body, placeholder("empty", "No trades on this market since the server started."));
    if (!tbody.isConnected) {
      tbody.replaceChildren();
      rows.clear();
      fill(body, h("table", { class: "grid small trades" },
        h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", { class: "num" }, `Price (${m.quote})`),
          h("th", { class: "num" }, `Amount (${m.base})`), h("th", {}, "Side"))), tbody));
    }
    // shown rows keep their order (one sort, stable), so a walk inserts the new ones where they go and drops the rest
    for (const old of tbody.querySelectorAll("tr.new")) old.classList.remove("new"); // the last draw's are not new any more
    let at = tbody.firstElementChild;
    const drop = (el: Element) => { rows.delete((el as HTMLElement).dataset.trade ?? ""); el.remove(); };
    for (const t of trades) {
      const shown = rows.get(t.id);
      if (shown === undefined) {
        const made = row(t);
        rows.set(t.id, made);
        tbody.insertBefore(made, at);
        continue;
      }
      while (at !== null && at !== shown) {
        const gone = at;
        at = at.nextElementSibling;
        drop(gone);
      }
      at = shown.nextElementSibling;
    }
    while (at !== null) {
      const gone = at;
      at = at.nextElementSibling;
      drop(gone);
    }
    fresh = new Set();
  };

  let pushed: PublicTrade[] = [];
  d.add(app.rpc.on("public_trades", (t: PublicTrade) => pushed.push(t)));
  d.every(REDRAW_MS, () => {
    if (pushed.length) add(pushed.splice(0));
    draw();
  });
  d.add(app.rpc.keep({
    open: async (rpc) => {
      try {
        await rpc.call("subscribe", { channels: ["public_trades"], public_trades: [tradeSubject(m)] });
        const ring = await app.http.get<PublicTrade[]>(`/api/v1/trades/${encodeURIComponent(m.exchange)}/${m.base}_${m.quote}`, { limit: SHOWN });
        add(ring);
        draw();
      } catch (e) {
        fill(body, placeholder("error", (e as Error).message));
      }
    },
  }));
  return h("section", { class: "card trades-card" }, h("h3", {}, `Recent trades · ${m.symbol}`), body);
}

/** By time, then (trades of one instant) by the venue's id when it is a number, as most venues' are. */
function newestFirst(a: PublicTrade, b: PublicTrade): number {
  if (a.time !== b.time) return b.time - a.time;
  const x = Number(a.id), y = Number(b.id);
  return Number.isFinite(x) && Number.isFinite(y) ? y - x : 0;
}

function clock(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString("en-GB", { timeZone: prefs.value.tz, hour12: false });
}
