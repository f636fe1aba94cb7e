// Runs: the list, and a form to start one (strategy, mode, funds by rows or allocation sliders, dates, parameters).
// A run's own page is in run.ts.

import type { App } from "../app";
import type { RunSummary, Runnable, Wallet } from "../api/types";
import * as D from "../decimal";
import * as fmt from "../format";
import { navigate } from "../router";
import { Allocator } from "../ui/alloc";
import { Disposer, fill, h, placeholder } from "../ui/dom";
import { stopButton } from "./run";

export { runPage } from "./run";

type Metrics = { total_return?: number | null; sharpe?: number | null; max_drawdown?: number | null };

export function runsPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const list = h("div", { "data-testid": "runs-list" }, placeholder("loading", "Loading runs…"));
  const load = async () => {
    try {
      const runs = await app.http.get<(RunSummary & { metrics?: Metrics | null })[]>("/runs");
      fill(list, runs.length ? h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ...["Run", "Strategy", "Mode", "Status", "Return", "Sharpe", "Max DD", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...runs.map((r) => h("tr", { "data-run": r.run_id },
          h("td", {}, h("a", { href: `/app/runs/${encodeURIComponent(r.run_id)}`, "data-link": true }, r.run_id)),
          h("td", {}, String(r.strategy ?? "")), h("td", {}, String(r.mode ?? "")), h("td", {}, h("span", { class: `badge ${r.status}` }, r.status)),
          h("td", { class: "num" }, fmt.percent(r.metrics?.total_return)), h("td", { class: "num" }, fmt.fixed(r.metrics?.sharpe, 2)),
          h("td", { class: "num" }, fmt.percent(r.metrics?.max_drawdown)),
          h("td", {}, r.status === "running" && app.can("manage", "run") ? stopButton(app, r.run_id, load) : null)))))
        : placeholder("empty", "No runs yet."));
    } catch (e) {
      fill(list, placeholder("error", (e as Error).message));
    }
  };
  void load();
  d.every(3000, () => void load());
  return h("div", { class: "page runs" },
    app.can("manage", "run") ? startForm(app) : null,
    h("section", { class: "card" }, h("h3", {}, "Runs"), list));
}

/** The funds a run starts with, as the start API takes them: {"exchange:CURRENCY": amount}; or why they cannot be sent. */
interface Funds {
  el: HTMLElement;
  read: () => Record<string, string> | string;
}

/** A backtest's funds: exchange:currency amount rows, added and removed at will. */
function backtestFunds(): Funds {
  const rows = h("div", { class: "fund-rows", "data-testid": "fund-rows" });
  const add = (exchange = "binance", currency = "", amount = "") => {
    const n = rows.children.length + 1;
    const row = h("div", { class: "fund-row", "data-fund-row": n },
      h("input", { value: exchange, "aria-label": `exchange ${n}`, "data-fund": "exchange", autocomplete: "off" }),
      h("input", { value: currency, "aria-label": `currency ${n}`, "data-fund": "currency", placeholder: "USDT", autocomplete: "off" }),
      h("input", { value: amount, "aria-label": `amount ${n}`, "data-fund": "amount", inputmode: "decimal", placeholder: "amount", autocomplete: "off" }),
      h("button", { type: "button", class: "ghost", "aria-label": `remove row ${n}`, onclick: () => row.remove() }, "✕"));
    rows.append(row);
  };
  add("binance", "USDT", "10000");
  const el = h("div", {}, rows, h("button", { type: "button", class: "ghost", "data-testid": "add-fund", onclick: () => add(rows.querySelector<HTMLInputElement>("[data-fund=exchange]")?.value ?? "binance") }, "+ Add a currency"));
  return {
    el,
    read: () => {
      const out: Record<string, string> = {};
      for (const row of rows.children) {
        const [exchange, currency, amount] = ["exchange", "currency", "amount"].map((k) => row.querySelector<HTMLInputElement>(`[data-fund=${k}]`)!.value.trim());
        if (!exchange && !currency && !amount) continue;
        const v = D.parse(amount);
        if (!/^[a-z0-9_-]+$/.test(exchange)) return `Exchange "${exchange}": lower-case letters, digits, - and _ (e.g. binance).`;
        if (!/^[A-Za-z0-9]+$/.test(currency)) return `Currency "${currency}" on ${exchange}: letters and digits (e.g. USDT).`;
        if (!v || v.units <= 0n) return `${currency} on ${exchange}: the amount must be a positive number.`;
        const key = `${exchange}:${currency.toUpperCase()}`;
        if (key in out) return `${currency.toUpperCase()} on ${exchange} is given twice.`;
        out[key] = amount;
      }
      if (!Object.keys(out).length) return "Give the run some funds: an exchange, a currency and an amount.";
      if (new Set(Object.keys(out).map((k) => k.split(":")[0])).size > 1) return "A backtest trades on one exchange: give every row the same exchange.";
      return out;
    },
  };
}

/** A paper or live run's funds: sliders over the unallocated funds of one exchange of that mode. */
function allocatedFunds(app: App, mode: string): Funds {
  const exchange = h("select", { "aria-label": "exchange", "data-testid": "fund-exchange" });
  const box = h("div", {}, placeholder("loading", "Loading unallocated funds…"));
  let alloc: Allocator | null = null;
  let per: Record<string, Wallet[]> = {};
  const draw = () => {
    alloc = new Allocator(per[exchange.value] ?? [], `No unallocated funds on ${exchange.value || "any " + mode + " exchange"}.`);
    fill(box, alloc.el);
  };
  exchange.addEventListener("change", draw);
  app.rpc.call<Record<string, Wallet[]>>("get_unallocated_per_exchange").then((answer) => {
    per = answer;
    const modes = new Map(app.exchanges.value.map((e) => [e.exchange, e.mode]));
    const names = Object.keys(per).filter((x) => (modes.get(x) ?? mode) === mode && per[x].some((w) => Number(w.available) > 0));
    fill(exchange, ...names.map((x) => h("option", { value: x }, x)));
    draw();
  }, (e: Error) => fill(box, placeholder("error", e.message)));
  return {
    el: h("div", {}, h("label", {}, "Exchange", exchange), box),
    read: () => {
      if (!alloc) return "The unallocated funds are still loading.";
      const bad = alloc.problem();
      if (bad) return bad;
      const chosen = alloc.chosen();
      if (!chosen.length) return "Allocate something: move a slider or type an amount.";
      return Object.fromEntries(chosen.map((a) => [`${a.exchange}:${a.currency}`, a.allocation]));
    },
  };
}

function startForm(app: App): HTMLElement {
  const strategy = h("select", { name: "strategy", "aria-label": "strategy" });
  const mode = h("select", { name: "mode", "aria-label": "mode" }, ...["backtest", "paper", "live"].map((m) => h("option", { value: m }, m)));
  const start = h("input", { name: "start", type: "date" });
  const end = h("input", { name: "end", type: "date" });
  const data = h("input", { name: "data", placeholder: "server path of candle files (empty: the history store)" });
  const fee = h("input", { name: "fee", value: "0.001", inputmode: "decimal" });
  const params = h("div", { class: "params" });
  const doc = h("p", { class: "muted" });
  const fundsBox = h("div", { class: "funds", "data-testid": "run-funds" });
  const error = h("p", { class: "error", role: "alert", "data-testid": "run-error" });
  const backtestOnly = [h("label", {}, "Start", start), h("label", {}, "Fee", fee), h("label", { class: "wide" }, "Data", data)];
  let funds: Funds = backtestFunds();
  const showMode = () => {
    const bt = mode.value === "backtest";
    for (const el of backtestOnly) el.hidden = !bt;
    funds = bt ? backtestFunds() : allocatedFunds(app, mode.value);
    fill(fundsBox, h("h4", {}, bt ? "Funds (amounts per exchange and currency)" : `Funds (a share of your unallocated ${mode.value} funds)`), funds.el);
  };
  mode.addEventListener("change", showMode);
  showMode();
  let runnables: Runnable[] = [];
  const showParams = () => {
    const r = runnables.find((x) => x.name === strategy.value);
    doc.textContent = r?.module_doc.split("\n")[0] ?? "";
    fill(params, ...(r?.parameters ?? []).map((p) => h("label", {}, `${p.name} (${p.type})`,
      h("input", { name: `param-${p.name}`, "data-param": p.name, "data-type": p.type, value: p.default === null || p.default === undefined ? "" : String(p.default) }))));
  };
  strategy.addEventListener("change", showParams);
  app.http.get<Runnable[]>("/runnables").then((list) => {
    runnables = list;
    fill(strategy, ...list.map((r) => h("option", { value: r.name }, r.name)));
    showParams();
  }, (e: Error) => (error.textContent = e.message));
  const form = h("form", { class: "card", "aria-label": "start a run", "data-testid": "start-run" },
    h("h3", {}, "Start a run"),
    h("div", { class: "form-grid" }, h("label", {}, "Strategy", strategy), h("label", {}, "Mode", mode), ...backtestOnly.slice(0, 1),
      h("label", {}, "End", end), ...backtestOnly.slice(1)),
    fundsBox, doc, h("h4", {}, "Parameters"), params, error,
    h("button", { type: "submit", class: "primary" }, "Start"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const balances = funds.read();
    if (typeof balances === "string") return void (error.textContent = balances);
    const bt = mode.value === "backtest";
    const body: Record<string, unknown> = { mode: mode.value, balances };
    if (bt) body.fee = fee.value.trim();
    if (bt && start.value) body.start = start.value;
    if (end.value) body.end = end.value;
    if (bt && data.value.trim()) body.data = data.value.trim();
    const p: Record<string, unknown> = {};
    for (const input of params.querySelectorAll<HTMLInputElement>("input[data-param]")) {
      if (input.value === "") continue;
      const t = input.dataset.type;
      p[input.dataset.param!] = t === "int" || t === "float" ? Number(input.value) : t === "bool" ? input.value === "true" : input.value;
    }
    body.params = p;
    if (!bt) { // funds leave the unallocated pool for the run's wallet set (real money in live mode): ask first
      const what = h("div", {}, h("ul", {}, ...Object.entries(balances).map(([k, v]) => h("li", {}, `${v} ${k.split(":")[1]} on ${k.split(":")[0]}`))),
        h("p", { class: "muted" }, mode.value === "live" ? "A live run places real orders with these funds." : "A paper run trades these funds against the exchange's live book."));
      if (!(await app.confirm(`Start ${strategy.value} (${mode.value})?`, what, "Start"))) return;
    }
    try {
      const started = await app.http.put<{ run_id: string }>(`/runnables/${encodeURIComponent(strategy.value)}/start`, body);
      navigate(`/app/runs/${encodeURIComponent(started.run_id)}`);
    } catch (err) {
      error.textContent = (err as Error).message;
    }
  });
  return form;
}
