// Runs: the list, a form to start one (strategy, mode, balances, dates, parameters), and a run's
// page: status, report metrics and trades, its UI components, log and message-hub audit trail.

import type { App } from "../app";
import type { RunSummary, Runnable } from "../api/types";
import * as fmt from "../format";
import { navigate } from "../router";
import { Disposer, fill, h, placeholder } from "../ui/dom";

export function runsPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const list = h("div", { "data-testid": "runs-list" }, placeholder("loading", "Loading runs…"));
  const load = async () => {
    try {
      const runs = await app.http.get<RunSummary[]>("/runs");
      fill(list, runs.length ? h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ...["Run", "Strategy", "Mode", "Status", "Return", "Sharpe", "Max DD", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...runs.map((r) => h("tr", { "data-run": r.run_id },
          h("td", {}, h("a", { href: `/app/runs/${encodeURIComponent(r.run_id)}`, "data-link": true }, r.run_id)),
          h("td", {}, String(r.strategy ?? "")), h("td", {}, String(r.mode ?? "")), h("td", {}, h("span", { class: `badge ${r.status}` }, r.status)),
          h("td", { class: "num" }, fmt.percent(r.total_return as number)), h("td", { class: "num" }, fmt.fixed(r.sharpe as number, 2)),
          h("td", { class: "num" }, fmt.percent(r.max_drawdown as number)),
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

function stopButton(app: App, runId: string, after: () => void): HTMLElement {
  return h("button", { type: "button", class: "ghost danger", onclick: async () => {
    if (!(await app.confirm(`Stop ${runId}?`, "The run stops at once and keeps its partial report.", "Stop"))) return;
    try {
      await app.http.put(`/runs/${encodeURIComponent(runId)}/stop`);
      app.toast(`${runId} stopped.`);
    } catch (e) {
      app.toast((e as Error).message, "error");
    }
    after();
  } }, "Stop");
}

function startForm(app: App): HTMLElement {
  const strategy = h("select", { name: "strategy", "aria-label": "strategy" });
  const mode = h("select", { name: "mode" }, ...["backtest", "paper"].map((m) => h("option", { value: m }, m)));
  const balances = h("input", { name: "balances", value: "binance:USDT=10000", "aria-label": "balances" });
  const start = h("input", { name: "start", type: "date" });
  const end = h("input", { name: "end", type: "date" });
  const data = h("input", { name: "data", placeholder: "server path of candle files (empty: the history store)" });
  const fee = h("input", { name: "fee", value: "0.001", inputmode: "decimal" });
  const params = h("div", { class: "params" });
  const doc = h("p", { class: "muted" });
  const error = h("p", { class: "error", role: "alert", "data-testid": "run-error" });
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
    h("div", { class: "form-grid" },
      h("label", {}, "Strategy", strategy), h("label", {}, "Mode", mode),
      h("label", {}, "Balances (exchange:CURRENCY=amount, comma-separated)", balances), h("label", {}, "Fee", fee),
      h("label", {}, "Start", start), h("label", {}, "End", end), h("label", { class: "wide" }, "Data", data)),
    doc, h("h4", {}, "Parameters"), params, error,
    h("button", { type: "submit", class: "primary" }, "Start"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const body: Record<string, unknown> = { mode: mode.value, balances: balances.value.split(",").map((s) => s.trim()).filter(Boolean), fee: fee.value.trim() };
    if (start.value) body.start = start.value;
    if (end.value) body.end = end.value;
    if (data.value.trim()) body.data = data.value.trim();
    const p: Record<string, unknown> = {};
    for (const input of params.querySelectorAll<HTMLInputElement>("input[data-param]")) {
      if (input.value === "") continue;
      const t = input.dataset.type;
      p[input.dataset.param!] = t === "int" || t === "float" ? Number(input.value) : t === "bool" ? input.value === "true" : input.value;
    }
    body.params = p;
    try {
      const started = await app.http.put<{ run_id: string }>(`/runnables/${encodeURIComponent(strategy.value)}/start`, body);
      navigate(`/app/runs/${encodeURIComponent(started.run_id)}`);
    } catch (err) {
      error.textContent = (err as Error).message;
    }
  });
  return form;
}

interface Component {
  id: string;
  kind?: string;
  type?: string;
  title?: string;
  [key: string]: unknown;
}

export function runPage(app: App, params: Record<string, string>, d: Disposer): HTMLElement {
  const id = params.id;
  const base = `/runs/${encodeURIComponent(id)}`;
  const head = h("div", {}, placeholder("loading", "Loading the run…"));
  const metrics = h("div", { "data-testid": "run-report" });
  const trades = h("div", {});
  const components = h("div", { "data-testid": "run-components" });
  const log = h("pre", { class: "log", "data-testid": "run-log" });
  const messages = h("div", { "data-testid": "run-messages" });
  let done = false;
  const load = async () => {
    if (done) return;
    try {
      const run = await app.http.get<RunSummary & { report?: Record<string, unknown> | null; progress?: Record<string, unknown> }>(base);
      fill(head, h("h2", {}, id, " ", h("span", { class: `badge ${run.status}`, "data-testid": "run-status" }, run.status)),
        h("p", { class: "muted" }, `${run.strategy ?? ""} · ${run.mode ?? ""}`),
        run.status === "running" && app.can("manage", "run") ? stopButton(app, id, load) : null);
      const rep = run.report;
      if (rep) {
        const keys: [string, string, (v: unknown) => string][] = [
          ["initial_equity", "Initial equity", (v) => fmt.fixed(v as number, 2)], ["final_equity", "Final equity", (v) => fmt.fixed(v as number, 2)],
          ["total_return", "Total return", (v) => fmt.percent(v as number)], ["cagr", "CAGR", (v) => fmt.percent(v as number)],
          ["sharpe", "Sharpe", (v) => fmt.fixed(v as number, 2)], ["sortino", "Sortino", (v) => fmt.fixed(v as number, 2)],
          ["max_drawdown", "Max drawdown", (v) => fmt.percent(v as number)], ["win_rate", "Win rate", (v) => fmt.percent(v as number)],
          ["round_trips", "Round trips", (v) => String(v ?? "–")], ["fees", "Fees", (v) => fmt.fixed(v as number, 2)],
          ["exposure", "Exposure", (v) => fmt.percent(v as number)], ["candles", "Candles", (v) => String(v ?? "–")],
        ];
        fill(metrics, h("dl", { class: "metrics" }, ...keys.flatMap(([k, label, f]) => [h("dt", {}, label), h("dd", {}, f(rep[k]))])));
        const list = (rep.trades as { time: number; symbol: string; side: string; price: string; size: string }[] | undefined) ?? [];
        fill(trades, list.length ? h("table", { class: "grid" },
          h("thead", {}, h("tr", {}, ...["Time", "Market", "Side", "Price", "Size"].map((t) => h("th", {}, t)))),
          h("tbody", {}, ...list.slice(-200).reverse().map((t) => h("tr", {}, h("td", {}, fmt.time(t.time)), h("td", {}, t.symbol),
            h("td", { class: t.side }, t.side), h("td", { class: "num" }, fmt.price(t.price)), h("td", { class: "num" }, fmt.amount(t.size, t.symbol.split("/")[0]))))))
          : placeholder("empty", "No trades."));
      } else fill(metrics, placeholder(run.status === "running" ? "loading" : "empty",
        run.status === "running" ? `Running… ${run.progress ? JSON.stringify(run.progress) : ""}` : "No report."));
      if (run.status !== "running") done = true;
      void reloadMessages();
      const [comps, lines] = await Promise.all([
        app.http.get<Component[]>(`${base}/components`).catch(() => [] as Component[]),
        app.http.get<Record<string, unknown>[]>(`${base}/log`).catch(() => []),
      ]);
      fill(components, comps.length ? comps.map((c) => componentView(app, id, c, run.status === "running")) : placeholder("empty", "This strategy shows no components."));
      log.textContent = lines.length ? lines.map((l) => `${l.time ?? l.ts ?? ""} ${l.level ?? ""} ${l.message ?? l.msg ?? JSON.stringify(l)}`).join("\n") : "(empty)";
    } catch (e) {
      fill(head, placeholder("error", (e as Error).message));
      done = true;
    }
  };
  const reloadMessages = messagesPanel(app, base, messages);
  void load();
  d.every(2000, () => void load());
  return h("div", { class: "page run" }, head,
    h("section", { class: "card" }, h("h3", {}, "Report"), metrics),
    h("section", { class: "card" }, h("h3", {}, "Trades"), trades),
    h("section", { class: "card" }, h("h3", {}, "Components"), components),
    h("section", { class: "card" }, h("h3", {}, "Log"), log),
    h("section", { class: "card" }, h("h3", {}, "Message hub audit trail"), messages));
}

/** A strategy's UI component, generically: its data as a table or text; inputs confirmed in a modal before sending. */
function componentView(app: App, runId: string, c: Component, live: boolean): HTMLElement {
  const kind = String(c.kind ?? c.type ?? "component");
  const body = h("pre", { class: "component-data" }, JSON.stringify(Object.fromEntries(Object.entries(c).filter(([k]) => !["id", "kind", "type", "title"].includes(k))), null, 1).slice(0, 2000));
  const send = live && app.can("manage", "run") && /form|slider|button|input/.test(kind)
    ? h("form", { class: "row" }, h("input", { name: "value", placeholder: '{"action": "..."} or a value', "aria-label": "value" }),
      h("button", { type: "submit" }, "Send"))
    : null;
  send?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const raw = (send.querySelector("input") as HTMLInputElement).value;
    let value: unknown = raw;
    try { value = JSON.parse(raw); } catch { /* plain text */ }
    if (!(await app.confirm(`Send to ${c.title ?? c.id}?`, h("pre", {}, JSON.stringify(value, null, 1)), "Send"))) return;
    try {
      await app.http.put(`/runs/${encodeURIComponent(runId)}/components/${encodeURIComponent(c.id)}`, { value });
      app.toast("Sent to the strategy.");
    } catch (err) {
      app.toast((err as Error).message, "error");
    }
  });
  return h("div", { class: "component" }, h("h4", {}, `${c.title ?? c.id} `, h("small", { class: "muted" }, kind)), body, send);
}

/** The paged, filterable audit trail; answers its reload (the run page calls it while the run goes on). */
function messagesPanel(app: App, base: string, el: HTMLElement): () => Promise<void> {
  let offset = 0;
  const limit = 50;
  const method = h("input", { placeholder: "method prefix (e.g. venue.)", "aria-label": "method filter" });
  const list = h("div", {});
  const info = h("span", { class: "muted" });
  const load = async () => {
    try {
      const page = await app.http.get<{ total: number; messages: Record<string, unknown>[] }>(`${base}/messages`, { offset, limit, method: method.value.trim() || undefined });
      info.textContent = page.total ? `${offset + 1}–${Math.min(offset + limit, page.total)} of ${page.total}` : "";
      fill(list, page.messages.length ? h("table", { class: "grid small" }, h("tbody", {}, ...page.messages.map((m) => h("tr", {},
        h("td", {}, String(m.direction ?? "")), h("td", {}, String(m.method ?? "")), h("td", { class: "mono" }, JSON.stringify(m.params ?? m.payload ?? m).slice(0, 160))))))
        : placeholder("empty", "No messages."));
    } catch (e) {
      fill(list, placeholder("error", (e as Error).message));
    }
  };
  method.addEventListener("change", () => { offset = 0; void load(); });
  fill(el, h("div", { class: "toolbar" }, method,
    h("button", { type: "button", class: "ghost", onclick: () => { offset = Math.max(0, offset - limit); void load(); } }, "‹ newer"),
    h("button", { type: "button", class: "ghost", onclick: () => { offset += limit; void load(); } }, "older ›"), info), list);
  return load;
}
