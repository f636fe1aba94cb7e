// Exchanges: status (live over the exchstatus channel), mode, and their markets.

import type { App } from "../app";
import { Disposer, fill, h, placeholder } from "../ui/dom";

export function exchangesPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const root = h("div", { class: "page exchanges", "data-testid": "exchanges" });
  d.add(app.exchanges.watch((list) => {
    if (!list.length) return fill(root, placeholder("empty", "No exchanges are configured."));
    fill(root, ...list.map((ex) => h("section", { class: "card" },
      h("h3", {}, ex.exchange, " ", h("span", { class: `badge ${ex.status}`, "data-testid": `status-${ex.exchange}` }, ex.status), " ", h("span", { class: "badge" }, ex.mode)),
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ...["Market", "Tick", "Step", "Min size", "Min value", "Maker fee", "Taker fee"].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...ex.markets.map((m) => h("tr", {}, h("td", {}, m.symbol), h("td", { class: "num" }, m.tick), h("td", { class: "num" }, m.step),
          h("td", { class: "num" }, m.min_size), h("td", { class: "num" }, `${m.min_notional} ${m.quote}`),
          h("td", { class: "num" }, `${(Number(m.maker_fee) * 100).toFixed(3)}%`), h("td", { class: "num" }, `${(Number(m.taker_fee) * 100).toFixed(3)}%`))))))));
  }));
  d.every(10_000, () => void app.http.get<typeof app.exchanges.value>("/xwrap/v1/exchanges").then((l) => app.exchanges.set(l), () => undefined));
  return root;
}
