// Overview: the portfolio's value as live candles (the user's total, or the shown account's) beside its total value in the
// user's currency, its spread over exchanges, wallet sets and assets, recent fills (all of the shown account's, or of every account the user may read) and the running strategies.

import type { App } from "../app";
import type { Order, RunSummary, WalletSet } from "../api/types";
import * as fmt from "../format";
import { prefs } from "../prefs";
import { accountScope } from "../ui/account_switcher";
import { Disposer, fill, h, placeholder } from "../ui/dom";
import { liveSets, type WalletSets } from "../ui/live_wallet_sets";
import { portfolioChartCard, userScope } from "./portfolio";

function bars(parts: [string, number][], rate: number, currency: string): HTMLElement {
  const total = parts.reduce((s, [, v]) => s + v, 0);
  if (!total) return placeholder("empty", "Nothing to show.");
  return h("div", { class: "bars" }, ...parts.sort((a, b) => b[1] - a[1]).map(([label, v]) => h("div", { class: "bar-row" },
    h("span", {}, label), h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: `width:${((v / total) * 100).toFixed(1)}%` })),
    h("span", { class: "num" }, `${fmt.percent(v / total, 1)} · ${fmt.money(v, rate, currency)}`))));
}

export function overviewPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const value = h("div", { class: "big", "data-testid": "total-value" }, "…");
  const byExchange = h("div", {}, placeholder("loading", "Loading…"));
  const byAsset = h("div", {}, placeholder("loading", "Loading…"));
  const bySet = h("div", {}, placeholder("loading", "Loading…"));
  const fills = h("div", {}, placeholder("loading", "Loading…"));
  const runs = h("div", {}, placeholder("loading", "Loading…"));
  const scope = app.accounts.scope();
  if (app.can("read", "wallet_set")) walletSetsLive(app, scope, d, { value, byExchange, byAsset, bySet });
  const load = async () => {
    if (app.can("read", "order")) {
      try {
        const orders = (await app.rpc.call<Order[]>("list_recent_orders", { limit: 1000, ...scope })).filter((o) => Number(o.filled_size) > 0).slice(0, 10);
        fill(fills, orders.length ? h("table", { class: "grid" }, h("tbody", {}, ...orders.map((o) => h("tr", {},
          h("td", {}, fmt.time(o.done_at ?? o.created_at)), h("td", { class: o.side }, o.side), h("td", {}, o.symbol),
          app.accounts.several() ? h("td", { class: "muted" }, app.accounts.short(o.account)) : null,
          h("td", { class: "num" }, fmt.amount(o.filled_size, o.symbol.split("/")[0])), h("td", { class: "num" }, fmt.price(o.avg_price))))))
          : placeholder("empty", "No fills yet."));
      } catch (e) {
        fill(fills, placeholder("error", (e as Error).message));
      }
    }
    if (app.can("read", "run")) {
      try {
        const list = (await app.http.get<RunSummary[]>("/runs")).filter((r) => r.status === "running");
        fill(runs, list.length ? h("ul", {}, ...list.map((r) => h("li", {}, h("a", { href: `/app/runs/${encodeURIComponent(r.run_id)}`, "data-link": true }, r.run_id),
          ` ${r.strategy ?? ""} · ${r.mode ?? ""} · return ${fmt.percent(r.total_return as number)}`)))
          : placeholder("empty", "No strategy is running."));
      } catch (e) {
        fill(runs, placeholder("error", (e as Error).message));
      }
    }
  };
  void load();
  d.every(5000, () => void load()); // recent fills and running strategies; the wallet sets are pushed
  return h("div", { class: "page overview" },
    h("section", { class: "card hero" }, h("h3", {}, "Total value"), value, accountScope(app),
      h("a", { href: "/app/portfolio", "data-link": true }, "Portfolio, daily stats and balance")),
    portfolioChartCard(app, d, app.accounts.chosen.value ? { scope: "account", id: String(app.accounts.chosen.value.id) } : userScope(app),
      app.accounts.chosen.value ? `Value · ${app.accounts.chosen.value.name}` : "Value · the accounts I own"),
    h("div", { class: "cols" },
      h("section", { class: "card" }, h("h3", {}, "By exchange"), byExchange),
      h("section", { class: "card" }, h("h3", {}, "By asset"), byAsset),
      h("section", { class: "card" }, h("h3", {}, "By wallet set"), bySet)),
    h("div", { class: "cols" },
      h("section", { class: "card" }, h("h3", {}, "Recent fills"), fills),
      h("section", { class: "card" }, h("h3", {}, "Running strategies"), runs)));
}

/**
 * The total value and its spread over exchanges, assets and wallet sets, from the sets read once at open (and again
 * after a reconnection) and kept current by the `wallet_set` push channel, as the Wallets page does: no poll. A pushed
 * set is redrawn at once; when funds moved, the three sums are read again (ui/live_wallet_sets.ts).
 */
function walletSetsLive(app: App, scope: { account?: number }, d: Disposer,
  el: { value: HTMLElement; byExchange: HTMLElement; byAsset: HTMLElement; bySet: HTMLElement }): void {
  let all: WalletSets | null = null; // the latest reading, with pushed sets put in
  const draw = () => {
    if (!all) return;
    const { rate, currency } = app.fx.value;
    const usd = (w: { present_value?: { balance_usd: string | null } }) => Number(w.present_value?.balance_usd ?? 0);
    const total = all.total?.wallets ?? [];
    el.value.textContent = fmt.money(total.reduce((s, w) => s + usd(w), 0), rate, currency);
    const group = (key: (w: (typeof total)[number]) => string) => {
      const m = new Map<string, number>();
      for (const w of total) m.set(key(w), (m.get(key(w)) ?? 0) + usd(w));
      return [...m.entries()];
    };
    fill(el.byExchange, bars(group((w) => w.exchange), rate, currency));
    fill(el.byAsset, bars(group((w) => w.currency), rate, currency));
    const sets: [string, number][] = app.accounts.sets(all)
      .map((s) => [`#${s.id} ${s.description}`, s.wallets.reduce((t, w) => t + usd(w), 0)]);
    sets.push(["unallocated", (all.unallocated?.wallets ?? []).reduce((t, w) => t + usd(w), 0)]);
    fill(el.bySet, bars(sets, rate, currency));
  };
  const live = liveSets(app, () => all, d);
  live.start({
    set: draw,
    totals: async () => {
      const [total, allocated, unallocated] = await Promise.all(["total", "allocated", "unallocated"].map((kind) =>
        app.rpc.call<WalletSet>(`get_${kind}_wallet_set`, scope)));
      if (!all) return;
      all = { ...all, total, allocated, unallocated };
      draw();
    },
    reload: async () => {
      try {
        all = await app.rpc.call<WalletSets>("get_all_wallet_sets", scope);
        draw();
        live.shown(all);
      } catch (e) {
        el.value.textContent = "–"; // not "…" forever: the reason is shown below
        fill(el.byExchange, placeholder("error", (e as Error).message));
      }
    },
  });
  d.add(app.fx.watch(draw)); // the user's currency (and its rate) or the mask changed: drawn again from what is held
  d.add(prefs.watch(draw));
}
