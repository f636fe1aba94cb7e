// Markets: live candlestick chart (timeframe, time zone, volume, the shown account's fills and trigger lines), order book, recent public trades, tickers.

import type { App } from "../app";
import { ohlcvStream } from "../api/rpc";
import type { Order } from "../api/types";
import { triggerLines } from "../conditional";
import { decimalsOf } from "../decimal";
import * as fmt from "../format";
import { prefs, setPrefs } from "../prefs";
import { accountScope } from "../ui/account_switcher";
import { CandleChart, type FillMark } from "../ui/chart";
import { Disposer, fill, h, placeholder, redrawable } from "../ui/dom";
import { bookPanel, currentMarket, marketPicker, tickerList } from "../ui/market";
import { endPublicTrades, publicTradesPanel } from "../ui/trades";

export const TIMEFRAMES = ["1m", "5m", "15m", "1h", "4h", "1d"];
export const ZONES = ["UTC", Intl.DateTimeFormat().resolvedOptions().timeZone, "Europe/London", "America/New_York", "Asia/Tokyo", "Asia/Kolkata"]
  .filter((z, i, all) => z && all.indexOf(z) === i);

export function marketsPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const root = h("div", { class: "page markets" });
  d.add(() => endPublicTrades(app)); // a market switch only replaces the pattern; leaving stops the channel
  return redrawable(root, d, (inner, redraw) => fill(root, marketsView(app, inner, redraw)));
}

function marketsView(app: App, d: Disposer, redraw: () => void): HTMLElement[] {
  const m = currentMarket(app);
  if (!m) return [placeholder("empty", "No exchange has markets yet.")];
  const p = prefs.value;
  const tfButtons = h("div", { class: "seg", role: "group", "aria-label": "timeframe" },
    ...TIMEFRAMES.map((tf) => h("button", { type: "button", class: tf === p.timeframe ? "on" : "", "aria-pressed": tf === p.timeframe, "data-tf": tf,
      onclick: () => { setPrefs({ timeframe: tf }); redraw(); } }, tf)));
  const tz = h("select", { "aria-label": "time zone", "data-testid": "tz-select" }, ...[...new Set([p.tz, ...ZONES])].map((z) => h("option", { value: z, selected: z === p.tz }, z)));
  tz.addEventListener("change", () => { setPrefs({ tz: tz.value }); redraw(); });
  const last = h("span", { class: "last", "data-testid": "last-price" }, "–");
  const status = h("span", { class: "muted", "data-testid": "chart-status" }, "loading…");
  const box = h("div", { class: "chart", "data-testid": "chart" });
  const chartCard = h("section", { class: "card chart-card" },
    h("div", { class: "toolbar" }, marketPicker(app, redraw), tfButtons, tz, last, status), box);
  const fills = h("div", { "data-testid": "my-fills" }, placeholder("loading", "Loading your fills…"));
  const view = [
    h("div", { class: "grid-markets" },
      h("div", { class: "side" }, tickerList(app, d, redraw)),
      chartCard,
      h("div", { class: "side" }, bookPanel(app, m, d), publicTradesPanel(app, m, d))),
    h("section", { class: "card" }, h("h3", {}, `Your fills · ${m.symbol}`), accountScope(app), fills),
  ];

  // the chart needs its box in the document to measure itself
  requestAnimationFrame(() => {
    if (!box.isConnected) return;
    const chart = new CandleChart(box, p.tz, decimalsOf(m.tick));
    d.add(() => chart.dispose());
    d.add(prefs.watch(() => chart.restyle()));
    d.add(ohlcvStream(app.rpc, { exchange: m.exchange, symbol: m.symbol, timeframe: p.timeframe, tz: p.tz },
      (snap) => {
        chart.setHistory(snap.candles);
        status.textContent = snap.candles.length ? `${snap.candles.length} candles` : "no candles yet: waiting for trades";
        box.dataset.candles = String(chart.candleCount);
      },
      (c) => {
        chart.update(c);
        last.textContent = fmt.price(c[4], decimalsOf(m.tick));
        status.textContent = "live";
        box.dataset.candles = String(chart.candleCount);
        box.dataset.updates = String(Number(box.dataset.updates ?? 0) + 1);
      },
      (e) => { status.textContent = e.message; status.className = "error"; }));
    const loadFills = async () => {
      try {
        const orders = await app.rpc.call<Order[]>("list_recent_orders", { include_open: true, limit: 500, exchange: m.exchange, ...app.accounts.scope() });
        const mine = orders.filter((o) => o.symbol === m.symbol && Number(o.filled_size) > 0);
        chart.setFills(mine.map((o): FillMark => ({
          time: Date.parse(o.done_at ?? o.created_at) / 1000, side: o.side, price: o.avg_price, size: o.filled_size })));
        fill(fills, mine.length ? fillTable(app, mine, decimalsOf(m.tick), m.base) : placeholder("empty", "No fills on this market yet."));
      } catch (e) {
        fill(fills, placeholder("error", (e as Error).message));
      }
    };
    void loadFills();
    let busy = false;
    const loadLines = async () => {
      if (busy) return;
      busy = true;
      try {
        const open = await app.rpc.call<Order[]>("list_open_orders", app.accounts.scope());
        chart.setTriggerLines(triggerLines(open, m.exchange, m.symbol));
      } catch (e) {
        status.textContent = `trigger lines: ${(e as Error).message}`;
      } finally {
        busy = false;
      }
    };
    void loadLines();
    // an order push (placed, triggered, cancelled, a trailing stop's level moved) draws the lines again
    d.add(app.rpc.on("order", (o: { symbol?: string; account?: number }) => {
      if (o.symbol === m.symbol && app.accounts.shows(o.account)) void loadLines();
    }));
    d.every(10_000, () => void loadLines());
    d.add(app.rpc.on("trade", (t: { symbol: string; account?: number }) => {
      if (t.symbol === m.symbol && app.accounts.shows(t.account)) void loadFills();
    }));
    d.every(10_000, () => void loadFills());
  });
  return view;
}

function fillTable(app: App, orders: Order[], pd: number, base: string): HTMLElement {
  const several = app.accounts.several();
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ...["Time", ...(several ? ["Account"] : []), "Side", "Type", "Filled", "Avg price", "Fee"].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...orders.slice(0, 50).map((o) => h("tr", { "data-order": o.id },
      h("td", {}, fmt.time(o.done_at ?? o.created_at)),
      several ? h("td", { class: "muted" }, app.accounts.short(o.account)) : null,
      h("td", { class: o.side }, o.side),
      h("td", {}, o.type),
      h("td", { class: "num" }, fmt.amount(o.filled_size, base)),
      h("td", { class: "num" }, fmt.price(o.avg_price, pd)),
      h("td", { class: "num" }, `${fmt.amount(o.fee, o.fee_currency)} ${o.fee_currency}`)))));
}
