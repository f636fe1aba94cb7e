// A run's page: status, report metrics, equity and drawdown charts, its trades on the price chart and in a table,
// the strategy's UI components, its log and its message-hub audit trail.

import type { App } from "../app";
import type { RunSummary } from "../api/types";
import * as fmt from "../format";
import { prefs } from "../prefs";
import { CandleChart, fitAll, type FillMark } from "../ui/chart";
import { componentView, type RunComponent, type View } from "../ui/components";
import { Disposer, fill, h, placeholder } from "../ui/dom";
import { LineChart } from "../ui/series";

interface Trade { time: number; symbol: string; side: "buy" | "sell"; price: string; size: string; fee?: string; fee_currency?: string }
type Bar = [number, number, number, number, number, number];

interface Report {
  quote?: string;
  start?: number;
  end?: number;
  trades?: Trade[];
  equity?: [number, string][];
  equity_sampled_from?: number;
  prices?: Record<string, { timeframe: string; candles: Bar[] }>;
  note?: string;
  [key: string]: unknown;
}

const LIVE_REDRAW_MS = 10_000;

type Run = RunSummary & { report?: Report | null; progress?: Record<string, unknown>; error?: string | null };

const METRICS: [string, string, (v: unknown) => string][] = [
  ["initial_equity", "Initial equity", (v) => fmt.fixed(v as number, 2)], ["final_equity", "Final equity", (v) => fmt.fixed(v as number, 2)],
  ["total_return", "Total return", (v) => fmt.percent(v as number)], ["cagr", "CAGR", (v) => fmt.percent(v as number)],
  ["sharpe", "Sharpe", (v) => fmt.fixed(v as number, 2)], ["sortino", "Sortino", (v) => fmt.fixed(v as number, 2)],
  ["max_drawdown", "Max drawdown", (v) => fmt.percent(v as number)], ["win_rate", "Win rate", (v) => fmt.percent(v as number)],
  ["round_trips", "Round trips", (v) => String(v ?? "–")], ["fees", "Fees", (v) => fmt.fixed(v as number, 2)],
  ["exposure", "Exposure", (v) => fmt.percent(v as number)], ["candles", "Candles", (v) => String(v ?? "–")],
];

export function stopButton(app: App, runId: string, after: () => void): HTMLElement {
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

/** Calls `fn` with `el` once it is in the document (charts measure their box). */
function whenShown(el: HTMLElement, d: Disposer, fn: () => void): void {
  const id = requestAnimationFrame(() => (el.isConnected ? fn() : whenShown(el, d, fn)));
  d.add(() => cancelAnimationFrame(id));
}

export function runPage(app: App, params: Record<string, string>, d: Disposer): HTMLElement {
  const id = params.id;
  const base = `/runs/${encodeURIComponent(id)}`;
  const head = h("div", {}, placeholder("loading", "Loading the run…"));
  const metrics = h("div", { "data-testid": "run-report" });
  const charts = h("section", { class: "card", hidden: true }, h("h3", {}, "Equity and drawdown"));
  const price = h("section", { class: "card", hidden: true }, h("h3", {}, "Trades on the price chart"));
  const trades = h("div", {});
  const components = h("div", { "data-testid": "run-components" });
  const log = logPanel();
  const messages = h("div", { "data-testid": "run-messages" });
  const views = new Map<string, { key: string; view: View }>();
  d.add(() => views.forEach((v) => v.view.dispose?.()));
  let done = false;
  // charts are drawn again when the report moved on: at once after the run ends, at most every
  // LIVE_REDRAW_MS while it runs (the interim report changes with every candle)
  let drawnKey = "";
  let drawnAt = 0;
  let chartsD = new Disposer();
  d.add(() => chartsD.dispose());
  const load = async () => {
    if (done) return;
    try {
      const run = await app.http.get<Run>(base);
      const rep = run.report;
      const period = rep?.start ? ` · ${fmt.time(rep.start)} – ${fmt.time(rep.end)}` : "";
      fill(head, h("h2", {}, id, " ", h("span", { class: `badge ${run.status}`, "data-testid": "run-status" }, run.status)),
        h("p", { class: "muted" }, `${run.strategy ?? ""} · ${run.mode ?? ""}${period}`),
        run.error ? h("p", { class: "error" }, run.error) : null,
        run.status === "running" && app.can("manage", "run") ? stopButton(app, id, load) : null);
      if (rep) {
        fill(metrics, h("dl", { class: "metrics" }, ...METRICS.flatMap(([k, label, f]) => [h("dt", {}, label), h("dd", {}, f(rep[k]))])),
          rep.note ? h("p", { class: "muted" }, rep.note) : null);
        fill(trades, tradeTable(rep.trades ?? []));
        const key = `${run.status}:${rep.equity?.length ?? 0}:${rep.equity?.at(-1)?.[1] ?? ""}:${rep.trades?.length ?? 0}`;
        if (key !== drawnKey && (run.status !== "running" || !drawnKey || Date.now() - drawnAt >= LIVE_REDRAW_MS)) {
          [drawnKey, drawnAt] = [key, Date.now()];
          chartsD.dispose();
          chartsD = new Disposer();
          for (const card of [charts, price]) card.replaceChildren(card.firstElementChild!);  // keep the heading
          drawEquity(charts, rep, chartsD);
          drawPrices(price, rep, chartsD);
        }
      } else fill(metrics, placeholder(run.status === "running" ? "loading" : "empty",
        run.status === "running" ? `Running… ${run.progress ? JSON.stringify(run.progress) : ""}` : "No report."));
      const live = run.status === "running";
      if (!live) done = true;
      void reloadMessages();
      const [comps, lines] = await Promise.all([
        app.http.get<RunComponent[]>(`${base}/components`).catch(() => [] as RunComponent[]),
        app.http.get<LogLine[]>(`${base}/log`).catch(() => [] as LogLine[]),
      ]);
      drawComponents(app, id, live, comps, components, views);
      log.set(lines);
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
    charts, price,
    h("section", { class: "card" }, h("h3", {}, "Trades"), trades),
    h("section", { class: "card" }, h("h3", {}, "Components"), components),
    h("section", { class: "card" }, h("h3", {}, "Log"), log.el),
    h("section", { class: "card" }, h("h3", {}, "Message hub audit trail"), messages));
}

function tradeTable(list: Trade[]): HTMLElement {
  if (!list.length) return placeholder("empty", "No trades.");
  return h("div", { class: "table-wrap scroll-y" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ...["Time", "Market", "Side", "Price", "Size", "Fee"].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...list.slice(-200).reverse().map((t) => h("tr", {}, h("td", {}, fmt.time(t.time)), h("td", {}, t.symbol),
      h("td", { class: t.side }, t.side), h("td", { class: "num" }, t.price), h("td", { class: "num" }, fmt.amount(t.size, t.symbol.split("/")[0])),
      h("td", { class: "num" }, t.fee ? `${fmt.amount(t.fee, t.fee_currency ?? "")} ${t.fee_currency ?? ""}` : "–"))))),
    list.length > 200 ? h("p", { class: "muted" }, `The newest 200 of ${list.length} trades.`) : null);
}

/** The equity curve (an area in the quote) and the drawdown from its running peak (percent below it). */
function drawEquity(card: HTMLElement, rep: Report, d: Disposer): void {
  const points = (rep.equity ?? []).map(([t, v]) => [t, Number(v)] as [number, number]);
  if (!points.length) return;
  card.hidden = false;
  const quote = rep.quote ?? "";
  let peak = -Infinity, worst = 0, worstAt = points[0][0];
  const dd = points.map(([t, v]): [number, number] => {
    peak = Math.max(peak, v);
    const x = peak > 0 ? (v / peak - 1) * 100 : 0;
    if (x < worst) [worst, worstAt] = [x, t];
    return [t, x];
  });
  const eqBox = h("div", { class: "chart small", "data-testid": "equity-chart" });
  const ddBox = h("div", { class: "chart small", "data-testid": "drawdown-chart" });
  const last = rep.equity![rep.equity!.length - 1][1];
  const sampled = rep.equity_sampled_from && rep.equity_sampled_from > points.length ? ` (${points.length} of ${rep.equity_sampled_from} points: every low, high and drawdown kept)` : "";
  card.append(h("div", { class: "grid-2" },
    h("div", {}, h("h4", {}, `Equity (${quote})`), eqBox,
      h("p", { class: "legend muted", "data-testid": "equity-legend" }, `${rep.status === "running" ? "So far" : "Final"} ${fmt.amount(last, quote)} ${quote}${sampled}`)),
    h("div", {}, h("h4", {}, "Drawdown (%)"), ddBox,
      h("p", { class: "legend muted", "data-testid": "drawdown-legend" }, `Deepest ${worst.toFixed(2)}% on ${fmt.time(worstAt)}`))));
  whenShown(card, d, () => {
    const equity = new LineChart(eqBox, () => prefs.value.tz, (v) => (prefs.value.mask ? fmt.MASK : v.toLocaleString("en-US", { maximumFractionDigits: 2 })));
    const drawdown = new LineChart(ddBox, () => prefs.value.tz, (v) => `${v.toFixed(2)}%`);
    equity.set([{ name: `equity (${quote})`, points, area: true, color: "--accent" }]);
    drawdown.set([{ name: "drawdown", points: dd, area: true, color: "--sell", max: 0 }]);
    d.add(() => { equity.dispose(); drawdown.dispose(); });
    d.add(prefs.watch(() => { equity.restyle(); drawdown.restyle(); }));
  });
}

/** Candles of each traded market over the run (from the report), its fills as buy/sell markers. */
function drawPrices(card: HTMLElement, rep: Report, d: Disposer): void {
  const markets = Object.entries(rep.prices ?? {}).filter(([, p]) => p.candles.length);
  if (!markets.length) return;
  card.hidden = false;
  const select = h("select", { "aria-label": "market", "data-testid": "run-price-market" }, ...markets.map(([s]) => h("option", { value: s }, s)));
  const box = h("div", { class: "chart", "data-testid": "run-price-chart" });
  const legend = h("p", { class: "legend muted", "data-testid": "run-price-legend" });
  card.append(h("div", { class: "toolbar" }, markets.length > 1 ? select : h("strong", {}, markets[0][0]), legend), box);
  whenShown(card, d, () => {
    let chart: CandleChart | null = null;
    const draw = () => {
      chart?.dispose();
      const symbol = select.value || markets[0][0];
      const { timeframe, candles } = rep.prices![symbol];
      const mine = (rep.trades ?? []).filter((t) => t.symbol === symbol);
      const decimals = mine.length ? Math.max(...mine.map((t) => (t.price.split(".")[1] ?? "").length)) : 2;
      chart = new CandleChart(box, prefs.value.tz, decimals);
      chart.setHistory(candles);
      chart.setFills(mine.map((t): FillMark => ({ time: t.time, side: t.side, price: t.price, size: t.size })));
      fitAll(chart.chart);
      box.dataset.candles = String(chart.candleCount);
      box.dataset.markers = String(mine.length);
      const buys = mine.filter((t) => t.side === "buy").length;
      legend.textContent = `${candles.length} ${timeframe} candles · ${buys} buys ▲, ${mine.length - buys} sells ▼`;
    };
    select.addEventListener("change", draw);
    draw();
    d.add(() => chart?.dispose());
    d.add(prefs.watch(() => chart?.restyle()));
  });
}

/** Components drawn once per version (a newer chart or table is updated in place; a form is drawn again). */
function drawComponents(app: App, runId: string, live: boolean, comps: RunComponent[], el: HTMLElement, views: Map<string, { key: string; view: View }>): void {
  if (!comps.length) {
    if (!el.querySelector(".placeholder")) fill(el, placeholder("empty", "This strategy shows no components."));
    return;
  }
  el.querySelector(":scope > .placeholder")?.remove();
  for (const c of comps) {
    const key = `${c.version}:${live}`;
    const had = views.get(c.id);
    if (had?.key === key) continue;
    if (had?.view.update && had.key.endsWith(`:${live}`)) {
      had.view.update(c);
      had.key = key;
      continue;
    }
    const view = componentView({ app, runId, live }, c);
    if (had) {
      had.view.dispose?.();
      had.view.el.replaceWith(view.el);
    } else el.append(view.el);
    views.set(c.id, { key, view });
  }
}

interface LogLine { ts?: number; level?: string; message?: string }

const LEVELS = ["debug", "info", "warning", "error"];

/** The run log, filtered by lowest level and text; the newest 500 matching lines. */
function logPanel(): { el: HTMLElement; set: (lines: LogLine[]) => void } {
  let all: LogLine[] = [];
  const level = h("select", { "aria-label": "lowest log level", "data-testid": "log-level" }, ...LEVELS.map((l) => h("option", { value: l }, l === "debug" ? "all levels" : `${l} and above`)));
  const text = h("input", { type: "search", placeholder: "text in the line", "aria-label": "log filter", "data-testid": "log-filter" });
  const info = h("span", { class: "muted" });
  const pre = h("pre", { class: "log", "data-testid": "run-log" });
  const draw = () => {
    const min = LEVELS.indexOf(level.value);
    const needle = text.value.trim().toLowerCase();
    const shown = all.filter((l) => LEVELS.indexOf(l.level ?? "info") >= min && (!needle || (l.message ?? "").toLowerCase().includes(needle)));
    pre.textContent = shown.length
      ? shown.slice(-500).map((l) => `${l.ts ? fmt.time(l.ts / 1e9) : ""} ${(l.level ?? "").toUpperCase().padEnd(7)} ${l.message ?? JSON.stringify(l)}`).join("\n")
      : all.length ? "(no line matches)" : "(empty)";
    info.textContent = all.length ? `${Math.min(shown.length, 500)} of ${all.length} lines${shown.length > 500 ? " (the newest 500 that match)" : ""}` : "";
  };
  level.addEventListener("change", draw);
  text.addEventListener("input", draw);
  return { el: h("div", {}, h("div", { class: "toolbar" }, level, text, info), pre), set: (lines) => { all = lines; draw(); } };
}

const PREFIXES = ["run.", "market.", "venue.", "venue.fill", "venue.order", "strategy.log", "ui.", "ui.input", "ui.component"];

type HubRecord = { seq: number; ts: number; direction: string; method: string; params: unknown };
type MhubrpcRecord = { mhubrpc: string; method: string; params?: unknown; response_method?: string; result?: unknown; error?: unknown };

/** The audit trail, paged in run order and filtered by method (exact, or a prefix ending in "."), and direction; shown as a
 * table of coinwire's records or, as an option, in the seed's mhubrpc format (calls, their results, notifications). */
function messagesPanel(app: App, base: string, el: HTMLElement): () => Promise<void> {
  let offset = 0, total = 0;
  const limit = 50;
  const method = h("input", { type: "search", class: "hub-method", placeholder: "method or prefix (venue.)", "aria-label": "method filter", list: "hub-methods", "data-testid": "hub-method" });
  const direction = h("select", { "aria-label": "direction", "data-testid": "hub-direction" },
    h("option", { value: "" }, "in and out"), h("option", { value: "in" }, "in (to the strategy)"), h("option", { value: "out" }, "out (from it)"));
  const shape = h("select", { "aria-label": "format", "data-testid": "hub-format" },
    h("option", { value: "native" }, "table"), h("option", { value: "mhubrpc" }, "mhubrpc (the seed's format)"));
  const list = h("div", {});
  const info = h("span", { class: "muted", "data-testid": "hub-page" });
  const nav = (label: string, testid: string, to: () => number) => h("button", { type: "button", class: "ghost", "data-testid": testid,
    onclick: () => { offset = to(); void load(); } }, label);
  const first = nav("« first", "hub-first", () => 0);
  const prev = nav("‹ previous", "hub-prev", () => Math.max(0, offset - limit));
  const next = nav("next ›", "hub-next", () => offset + limit);
  const last = nav("last »", "hub-last", () => Math.max(0, Math.floor((total - 1) / limit) * limit));
  let asked = 0;
  const load = async () => {
    const mine = ++asked;
    try {
      const seed = shape.value === "mhubrpc";
      const page = await app.http.get<{ total: number; messages: (HubRecord | MhubrpcRecord)[] }>(`${base}/messages`,
        { offset, limit, method: method.value.trim() || undefined, direction: direction.value || undefined, format: seed ? "mhubrpc" : undefined });
      if (mine !== asked) return; // a newer question (another filter or page) is on its way: draw only its answer
      total = page.total;
      if (offset && offset >= total) { // the filter left fewer pages: show its last
        offset = Math.max(0, Math.floor((total - 1) / limit) * limit);
        return load();
      }
      info.textContent = total ? `${offset + 1}–${Math.min(offset + limit, total)} of ${total}` : "";
      first.disabled = prev.disabled = offset === 0;
      next.disabled = last.disabled = offset + limit >= total;
      if (!page.messages.length) return fill(list, placeholder("empty", method.value || direction.value ? "No message matches." : "No messages."));
      if (seed) { // one JSON object a line, as the seed's hub carries them: a result's method is its call's response_method
        return fill(list, h("ol", { class: "mhubrpc mono", start: offset + 1, "data-testid": "hub-mhubrpc" },
          ...(page.messages as MhubrpcRecord[]).map((m) => h("li", {
            class: "response_method" in m ? "call" : "result" in m ? "result" : "error" in m ? "error" : "notification" }, JSON.stringify(m)))));
      }
      fill(list, h("div", { class: "table-wrap" }, h("table", { class: "grid small" },
        h("thead", {}, h("tr", {}, ...["#", "Time", "", "Method", "Params"].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...(page.messages as HubRecord[]).map((m) => h("tr", {},
          h("td", { class: "num" }, String(m.seq)), h("td", {}, fmt.time(m.ts / 1e9)), h("td", {}, m.direction === "in" ? "→" : "←"),
          h("td", {}, m.method), h("td", { class: "mono" }, JSON.stringify(m.params).slice(0, 160))))))));
    } catch (e) {
      if (mine === asked) fill(list, placeholder("error", (e as Error).message));
    }
  };
  let timer = 0;
  method.addEventListener("input", () => { window.clearTimeout(timer); timer = window.setTimeout(() => { offset = 0; void load(); }, 300); });
  direction.addEventListener("change", () => { offset = 0; void load(); });
  shape.addEventListener("change", () => void load());
  fill(el, h("datalist", { id: "hub-methods" }, ...PREFIXES.map((p) => h("option", { value: p }))),
    h("div", { class: "toolbar" }, method, direction, shape, first, prev, next, last, info), list);
  return load;
}
