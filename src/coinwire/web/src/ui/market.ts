// Shared market widgets: the market picker, the order book ladder with its depth chart, the ticker list.

import type { App } from "../app";
import type { Book, Market } from "../api/types";
import { decimalsOf } from "../decimal";
import * as fmt from "../format";
import { prefs, setPrefs } from "../prefs";
import { Disposer, fill, h, placeholder } from "./dom";

/** The market the pages look at (remembered in preferences); the first one when none is chosen yet. */
export function currentMarket(app: App): Market | undefined {
  const p = prefs.value;
  return app.market(p.exchange, p.symbol) ?? app.exchanges.value[0]?.markets[0];
}

/** The market select, grouped by exchange; `only`: the markets of one exchange (the Trade page's account's). */
export function marketPicker(app: App, onChange: () => void, now = currentMarket(app), only?: string): HTMLSelectElement {
  const select = h("select", { "aria-label": "market", "data-testid": "market-select" });
  for (const ex of app.exchanges.value.filter((e) => !only || e.exchange === only)) {
    const group = h("optgroup", { label: `${ex.exchange} (${ex.mode})` });
    for (const m of ex.markets) {
      const value = `${m.exchange}|${m.symbol}`;
      group.append(h("option", { value, selected: now?.exchange === m.exchange && now?.symbol === m.symbol }, `${m.symbol} · ${m.exchange}`));
    }
    select.append(group);
  }
  select.addEventListener("change", () => {
    const [exchange, symbol] = select.value.split("|");
    setPrefs({ exchange, symbol });
    onChange();
  });
  return select;
}

/** The order book ladder (asks above, bids below, size bars) and a cumulative depth chart, polled. */
export function bookPanel(app: App, m: Market, d: Disposer, onPrice?: (price: string) => void): HTMLElement {
  const pd = decimalsOf(m.tick);
  const ladder = h("div", { class: "ladder", "data-testid": "book" }, placeholder("loading", "Loading the book…"));
  const canvas = h("canvas", { class: "depth", width: 320, height: 120, "aria-label": "depth chart" });
  const panel = h("section", { class: "card book-card" }, h("h3", {}, `Order book · ${m.symbol}`), ladder, canvas);
  const rows = 12;
  let busy = false;
  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      const book = await app.rpc.call<Book>("get_book", { exchange: m.exchange, symbol: m.symbol, depth: 50 });
      draw(book);
    } catch (e) {
      fill(ladder, placeholder("error", (e as Error).message));
    } finally {
      busy = false;
    }
  };
  const draw = (book: Book) => {
    const asks = book.asks.slice(0, rows).reverse();
    const bids = book.bids.slice(0, rows);
    if (!asks.length && !bids.length) {
      fill(ladder, placeholder("empty", book.synced ? "The book is empty." : "The book is not synced yet."));
      return;
    }
    const max = Math.max(...[...asks, ...bids].map(([, s]) => Number(s)));
    const line = ([px, sz]: [string, string], side: string) =>
      h("button", { type: "button", class: `level ${side}`, title: "use this price", onclick: () => onPrice?.(px) },
        h("span", { class: "bar", style: `width:${((Number(sz) / max) * 100).toFixed(1)}%` }),
        h("span", { class: "px" }, fmt.price(px, pd)),
        h("span", { class: "sz" }, fmt.amount(sz, m.base)));
    const bestBid = Number(bids[0]?.[0]);
    const bestAsk = Number(book.asks[0]?.[0]);
    const spread = Number.isFinite(bestBid) && Number.isFinite(bestAsk) ? fmt.price(bestAsk - bestBid, pd) : "–";
    fill(ladder, ...asks.map((l) => line(l, "ask")), h("div", { class: "spread" }, `spread ${spread}`), ...bids.map((l) => line(l, "bid")));
    depth(canvas, book);
  };
  void load();
  d.every(700, () => void load());
  return panel;
}

function depth(canvas: HTMLCanvasElement, book: Book): void {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const w = canvas.width, hgt = canvas.height;
  ctx.clearRect(0, 0, w, hgt);
  const cum = (levels: [string, string][]) => {
    let total = 0;
    return levels.map(([p, s]) => [Number(p), (total += Number(s))] as [number, number]);
  };
  const bids = cum(book.bids), asks = cum(book.asks);
  if (!bids.length || !asks.length) return;
  const lo = bids[bids.length - 1][0], hi = asks[asks.length - 1][0];
  const top = Math.max(bids[bids.length - 1][1], asks[asks.length - 1][1]);
  const x = (p: number) => ((p - lo) / (hi - lo || 1)) * w;
  const y = (v: number) => hgt - (v / top) * (hgt - 4);
  const area = (pts: [number, number][], color: string) => {
    ctx.beginPath();
    ctx.moveTo(x(pts[0][0]), hgt);
    for (const [p, v] of pts) ctx.lineTo(x(p), y(v));
    ctx.lineTo(x(pts[pts.length - 1][0]), hgt);
    ctx.closePath();
    ctx.fillStyle = color;
    ctx.fill();
  };
  area(bids, "rgba(38,166,154,0.45)");
  area(asks, "rgba(239,83,80,0.45)");
}

/** Every market's latest price, live from the ticker channel; a click picks the market. */
export function tickerList(app: App, d: Disposer, onPick: () => void): HTMLElement {
  const body = h("tbody");
  const table = h("table", { class: "tickers", "data-testid": "tickers" }, h("thead", {}, h("tr", {}, h("th", {}, "Market"), h("th", { class: "num" }, "Price"))), body);
  const prev = new Map<string, number>();
  d.add(app.tickers.watch((tickers) => {
    const now = currentMarket(app);
    const rows = [];
    for (const ex of app.exchanges.value) {
      for (const m of ex.markets) {
        const key = `${m.exchange}:${m.symbol}`;
        const t = tickers.get(key);
        const px = t ? Number(t.price) : NaN;
        const before = prev.get(key);
        const dir = before === undefined || px === before ? "" : px > before ? "up" : "down";
        if (Number.isFinite(px)) prev.set(key, px);
        rows.push(h("tr", { class: `${dir} ${now?.symbol === m.symbol && now?.exchange === m.exchange ? "current" : ""}`, tabindex: 0,
            onclick: () => { setPrefs({ exchange: m.exchange, symbol: m.symbol }); onPick(); },
            onkeydown: (e: Event) => { if ((e as KeyboardEvent).key === "Enter") { setPrefs({ exchange: m.exchange, symbol: m.symbol }); onPick(); } } },
          h("td", {}, m.symbol, h("small", {}, ` ${m.exchange}`)),
          h("td", { class: "num", "data-testid": `ticker-${m.exchange}-${m.symbol}` }, t ? fmt.price(t.price, decimalsOf(m.tick)) : "–")));
      }
    }
    fill(body, rows.length ? rows : [h("tr", {}, h("td", { colspan: 2 }, "No markets."))]);
  }));
  return h("section", { class: "card" }, h("h3", {}, "Markets"), table);
}
