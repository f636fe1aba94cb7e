// A strategy's UI components drawn as what they are: time charts, tables, x-y plots, the frontier, forms,
// sliders and buttons. Every input is shown in a confirmation modal before it is sent to the running strategy.

import type { App } from "../app";
import * as fmt from "../format";
import { prefs } from "../prefs";
import { Disposer, fill, h } from "./dom";
import { xyPlot, type XYSeries } from "./plot";
import { LineChart, toSeconds } from "./series";

export interface RunComponent {
  id: string;
  spec: { type: string; title?: string; columns?: string[]; [key: string]: unknown };
  data: unknown[][];
  version: number;
}

/** What a component view needs from its page. */
export interface Host {
  app: App;
  runId: string;
  live: boolean; // the run is running: inputs reach it
}

/** A drawn component; `update` takes a newer version in place when its kind can (charts, tables), else it is drawn again. */
export interface View {
  el: HTMLElement;
  update?: (c: RunComponent) => void;
  dispose?: () => void;
}

const TABLE_ROWS = 200;
const TIME_COLUMNS = new Set(["time", "ts", "timestamp", "date"]);

/** A number as people read it: integers grouped, others to 6 significant digits. */
export function num(v: unknown): string {
  if (typeof v !== "number") return v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return Number(v.toPrecision(6)).toLocaleString("en-US", { maximumFractionDigits: 10 });
}

function columns(c: RunComponent): string[] {
  const given = Array.isArray(c.spec.columns) ? c.spec.columns.map(String) : [];
  const width = Math.max(0, ...c.data.map((r) => r.length));
  return [...given, ...Array.from({ length: Math.max(0, width - given.length) }, (_, i) => `column ${given.length + i + 1}`)];
}

export function componentView(host: Host, c: RunComponent): View {
  const kind = c.spec.type;
  const body = /chart|^line$|^area$/.test(kind) ? timeChartView(c)
    : kind === "table" ? tableView(c)
    : kind === "scatter" ? scatterView(c)
    : kind === "frontier" ? frontierView(host, c)
    : kind === "form" ? formView(host, c)
    : kind === "slider" ? formView(host, { ...c, spec: { ...c.spec, fields: [{ ...c.spec, name: "value", type: "slider" }], single: true } })
    : kind === "button" ? formView(host, { ...c, spec: { ...c.spec, actions: [{ name: String(c.spec.action ?? c.id), label: String(c.spec.label ?? c.spec.title ?? c.id), confirm: true }] } })
    : /^(text|markdown|note|metric|status)$/.test(kind) ? { el: h("p", { class: "component-text" }, String(c.spec.text ?? c.spec.value ?? c.data.map((r) => r.join(" ")).join("\n"))) }
    : { el: h("pre", { class: "component-data" }, JSON.stringify({ spec: c.spec, data: c.data.slice(-50) }, null, 1).slice(0, 4000)) };
  const el = h("div", { class: `component kind-${kind.replace(/[^a-z0-9_-]/gi, "")}`, "data-component": c.id, "data-kind": kind },
    h("h4", {}, `${c.spec.title ?? c.id} `, h("small", { class: "muted" }, kind)), body.el);
  return { el, update: body.update && ((n) => body.update!(n)), dispose: body.dispose };
}

// --- charts and tables ---------------------------------------------------------------------------

function timeChartView(c: RunComponent): View {
  const box = h("div", { class: "chart small", "data-testid": `component-chart-${c.id}` });
  const legend = h("div", { class: "legend muted" });
  let chart: LineChart | null = null;
  const d = new Disposer();
  let latest = c;
  const draw = () => {
    if (!chart) return;
    const cols = columns(latest);
    let ti = cols.findIndex((n) => TIME_COLUMNS.has(n.toLowerCase()));
    if (ti < 0) ti = 0;
    const lines = cols.map((name, i) => ({ name, i })).filter(({ i }) => i !== ti && latest.data.some((r) => typeof r[i] === "number"))
      .map(({ name, i }) => ({ name, area: cols.length === 2 && /area/.test(latest.spec.type),
        points: latest.data.map((r) => [toSeconds(Number(r[ti])), Number(r[i])] as [number, number]) }));
    box.hidden = !chart.set(lines);
    const last = latest.data[latest.data.length - 1];
    fill(legend, last ? lines.map((l) => `${l.name} ${num(last[cols.indexOf(l.name)])}`).join(" · ") + ` · ${latest.data.length} points` : "No data yet.");
  };
  requestAnimationFrame(() => {
    if (!box.isConnected) return;
    chart = new LineChart(box, () => prefs.value.tz, num);
    d.add(() => chart?.dispose());
    d.add(prefs.watch(() => chart?.restyle()));
    draw();
  });
  return { el: h("div", {}, box, legend), update: (n) => { latest = n; draw(); }, dispose: () => d.dispose() };
}

function tableView(c: RunComponent): View {
  const el = h("div", { class: "table-wrap" });
  const draw = (n: RunComponent) => {
    const cols = columns(n);
    if (!n.data.length) return fill(el, h("p", { class: "muted" }, "No rows yet."));
    const rows = n.data.slice(-TABLE_ROWS).reverse(); // newest first
    fill(el, h("table", { class: "grid small", "data-rows": n.data.length },
      h("thead", {}, h("tr", {}, ...cols.map((t) => h("th", {}, t)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...cols.map((name, i) => {
        const v = r[i];
        const time = TIME_COLUMNS.has(name.toLowerCase()) && typeof v === "number";
        return h("td", { class: typeof v === "number" && !time ? "num" : v === "buy" || v === "sell" ? String(v) : "" }, time ? fmt.time(toSeconds(v)) : num(v));
      }))))),
      n.data.length > TABLE_ROWS ? h("p", { class: "muted" }, `The newest ${TABLE_ROWS} of ${n.data.length} rows.`) : null);
  };
  draw(c);
  return { el, update: draw };
}

function pct(v: number): string {
  return `${(v * 100).toFixed(Math.abs(v) < 0.1 ? 1 : 0)}%`;
}

/** Colour from low (red) through yellow to high (green), for a third column such as a Sharpe ratio. */
function heat(values: number[]): string[] {
  const lo = Math.min(...values), hi = Math.max(...values);
  return values.map((v) => `hsl(${Math.round(((v - lo) / (hi - lo || 1)) * 120)} 70% 50%)`);
}

function scatterView(c: RunComponent): View {
  const el = h("div", { class: "plot" });
  const draw = (n: RunComponent) => {
    const cols = columns(n);
    const rows = n.data.filter((r) => typeof r[0] === "number" && typeof r[1] === "number");
    const third = cols.length > 2 ? rows.map((r) => Number(r[2])) : null;
    const fractions = /volatility|return|weight/.test(cols.slice(0, 2).join(" "));
    fill(el, xyPlot(cols[0] ?? "x", cols[1] ?? "y", [{ points: rows.map((r) => [Number(r[0]), Number(r[1])]), kind: "dots", cls: "cloud", r: 2,
      fills: third ? heat(third) : undefined }], fractions ? pct : num),
    third ? h("p", { class: "muted" }, `${rows.length} points; colour: ${cols[2]} from low (red) to high (green).`) : null);
  };
  draw(c);
  return { el, update: draw };
}

interface Portfolio { return: number; volatility: number; sharpe: number; weights: Record<string, number> }

/** Send `value` to a component of the running strategy (after the caller's confirmation). */
async function sendInput(host: Host, componentId: string, value: unknown): Promise<void> {
  try {
    await host.app.http.put(`/runs/${encodeURIComponent(host.runId)}/components/${encodeURIComponent(componentId)}`, { value });
    host.app.toast("Sent to the strategy.");
  } catch (err) {
    host.app.toast((err as Error).message, "error");
  }
}

/** The efficient frontier: the curve (click a point to choose it), its max-Sharpe and min-variance portfolios, the single
 *  assets, and the run's weight path (the rows after `curve_rows`: the weights it held, drawn as a line with markers). */
function frontierView(host: Host, c: RunComponent): View {
  const el = h("div", { class: "plot" });
  const allowed = host.live && host.app.can("manage", "run");
  const draw = (n: RunComponent) => {
    const s = n.spec as RunComponent["spec"] & { assets?: string[]; max_sharpe?: Portfolio; min_variance?: Portfolio; single_assets?: (Portfolio & { asset: string })[]; curve_rows?: number };
    const assets = s.assets ?? [];
    const rows = typeof s.curve_rows === "number" ? n.data.slice(0, s.curve_rows) : n.data;
    const held = typeof s.curve_rows === "number" ? n.data.slice(s.curve_rows) : [];
    const curve = rows.map((r) => [Number(r[1]), Number(r[0])] as [number, number]); // x volatility, y return
    const path = held.map((r) => [Number(r[1]), Number(r[0])] as [number, number]);
    const named = [["max Sharpe", s.max_sharpe], ["min variance", s.min_variance]].filter((p): p is [string, Portfolio] => !!p[1]);
    const singles = s.single_assets ?? [];
    const weightsOf = (r: unknown[]) => Object.fromEntries(assets.map((a, i) => [a, Number(r[3 + i])]));
    const choose = async (i: number) => {
      const r = rows[i];
      const weights = weightsOf(r);
      const what = h("div", { "data-testid": "frontier-choice" },
        h("p", {}, `Point ${i} of the frontier: return ${pct(Number(r[0]))}, volatility ${pct(Number(r[1]))}, Sharpe ${num(r[2])} (a year).`),
        h("table", { class: "grid small" }, h("tbody", {}, ...assets.filter((a) => weights[a] > 5e-5).map((a) =>
          h("tr", {}, h("td", {}, a), h("td", { class: "num" }, pct(weights[a])))))),
        h("p", { class: "muted" }, "The run trades towards these weights, slice by slice."));
      if (await host.app.confirm("Trade to this portfolio?", what, "Trade to it")) await sendInput(host, n.id, { action: "choose", point: i });
    };
    const series: XYSeries[] = [
      { points: curve, kind: "line", cls: "frontier-line" },
      { points: path, kind: "line", cls: "weight-path" },
      { points: path, kind: "dots", cls: "weight-path-dots", r: 2.5,
        titles: held.map((r) => `held at ${fmt.time(toSeconds(Number(r[r.length - 1])))}: return ${pct(Number(r[0]))}, volatility ${pct(Number(r[1]))}`) },
      { points: curve, kind: "dots", cls: "frontier-dots", r: 3.5, titles: rows.map((r, i) => `point ${i}: return ${pct(Number(r[0]))}, volatility ${pct(Number(r[1]))}, Sharpe ${num(r[2])}`),
        onPick: allowed ? (i) => void choose(i) : undefined },
      { points: singles.map((p) => [p.volatility, p.return]), kind: "dots", cls: "single-assets", r: 3.5, labels: singles.map((p) => p.asset.split("/")[0]) },
      { points: named.map(([, p]) => [p.volatility, p.return]), kind: "dots", cls: "named-portfolios", r: 5, labels: named.map(([name]) => name),
        titles: named.map(([name, p]) => `${name}: return ${pct(p.return)}, volatility ${pct(p.volatility)}, Sharpe ${num(p.sharpe)}`) },
    ];
    if (path.length) series.push({ points: path.slice(-1), kind: "dots", cls: "weight-path-now", r: 5, labels: ["held now"] });
    const plot = xyPlot("volatility (a year)", "return (a year)", series, pct);
    plot.dataset.path = String(path.length);
    fill(el, plot,
      named.length ? h("div", { class: "table-wrap" }, h("table", { class: "grid small" },
        h("thead", {}, h("tr", {}, h("th", {}, "portfolio"), h("th", { class: "num" }, "return"), h("th", { class: "num" }, "volatility"),
          h("th", { class: "num" }, "Sharpe"), ...assets.map((a) => h("th", { class: "num" }, a)))),
        h("tbody", {}, ...named.map(([name, p]) => h("tr", {}, h("td", {}, name), h("td", { class: "num" }, pct(p.return)),
          h("td", { class: "num" }, pct(p.volatility)), h("td", { class: "num" }, num(p.sharpe)),
          ...assets.map((a) => h("td", { class: "num" }, pct(p.weights[a] ?? 0))))))))
        : null,
      h("p", { class: "muted" }, `${rows.length} frontier points` + (path.length ? `, ${path.length} steps of the run's weight path (orange)` : "") +
        (allowed ? ". Click a point to trade to it." : ". Hover a point for its figures.")));
  };
  draw(c);
  return { el, update: draw };
}

// --- inputs ------------------------------------------------------------------------------------------

interface Field { name: string; type?: string; label?: string; min?: number; max?: number; step?: number; value?: unknown; options?: unknown[]; assets?: string[] }
interface Action { name: string; label?: string; confirm?: boolean; fields?: boolean } // fields: false sends the action alone

/** One field's input element(s) and how to read its value (undefined: left empty, not sent). */
function fieldInput(f: Field, id: string): { el: HTMLElement; read: () => unknown } {
  const label = f.label ?? f.name;
  const aria = `${label}`;
  const type = f.type ?? "text";
  if (type === "slider" || type === "range") {
    const min = f.min ?? 0, max = f.max ?? 1, step = f.step ?? (max - min) / 100;
    const start = typeof f.value === "number" ? f.value : min;
    const slider = h("input", { type: "range", min, max, step, value: start, "aria-label": aria, "data-field": f.name });
    const shown = h("input", { inputmode: "decimal", value: String(start), "aria-label": `${label} value`, class: "slider-value" });
    slider.addEventListener("input", () => (shown.value = slider.value));
    shown.addEventListener("input", () => (slider.value = shown.value));
    return { el: h("label", { class: "field slider-field" }, label, h("div", { class: "row" }, slider, shown)), read: () => Number(shown.value) };
  }
  if (type === "weights") return weightSliders(f, label);
  if (type === "bool" || type === "boolean" || type === "checkbox") {
    const box = h("input", { type: "checkbox", "aria-label": aria, "data-field": f.name });
    box.checked = f.value === true;
    return { el: h("label", { class: "check field" }, box, label), read: () => box.checked };
  }
  if (type === "select" && Array.isArray(f.options)) {
    const select = h("select", { "aria-label": aria, "data-field": f.name }, ...f.options.map((o) => h("option", { value: String(o), selected: o === f.value }, String(o))));
    return { el: h("label", { class: "field" }, label, select), read: () => select.value };
  }
  const numeric = /^(int|integer|number|float)$/.test(type);
  const range = numeric && (f.min !== undefined || f.max !== undefined) ? ` (${f.min ?? "…"}–${f.max ?? "…"})` : "";
  const input = h("input", { inputmode: numeric ? "decimal" : "text", "aria-label": aria, "data-field": f.name, id: `${id}-${f.name}`,
    value: f.value === undefined || f.value === null ? "" : String(f.value), placeholder: numeric ? "number" : "" });
  return {
    el: h("label", { class: "field" }, `${label}${range}`, input),
    read: () => (input.value.trim() === "" ? undefined : numeric ? Number(input.value) : input.value),
  };
}

/** A slider per asset, in percent, that always sum to 100%: moving one rescales the others in proportion. */
function weightSliders(f: Field, label: string): { el: HTMLElement; read: () => unknown } {
  const assets = f.assets ?? [];
  const given = f.value && typeof f.value === "object" ? (f.value as Record<string, number>) : null;
  let pcts = assets.map((a) => (given ? Number(given[a] ?? 0) * 100 : 100 / Math.max(1, assets.length)));
  const sliders = assets.map((a) => h("input", { type: "range", min: 0, max: 100, step: 0.1, "aria-label": `${label} ${a}`, "data-weight": a }));
  const shown = assets.map((a) => h("input", { inputmode: "decimal", class: "slider-value", "aria-label": `${label} ${a} percent`, "data-weight-value": a }));
  const total = h("span", { class: "muted", "data-testid": "weights-total" });
  const show = () => {
    pcts.forEach((p, i) => { sliders[i].value = String(p); shown[i].value = p.toFixed(1); });
    total.textContent = `total ${pcts.reduce((x, y) => x + y, 0).toFixed(1)}%`;
  };
  const set = (i: number, v: number) => {
    if (!Number.isFinite(v)) return;
    const value = Math.min(100, Math.max(0, v));
    const others = pcts.reduce((x, y, j) => (j === i ? x : x + y), 0);
    const rest = 100 - value;
    pcts = pcts.map((p, j) => (j === i ? value : others > 0 ? (p * rest) / others : rest / Math.max(1, assets.length - 1)));
    show();
  };
  sliders.forEach((s, i) => s.addEventListener("input", () => set(i, Number(s.value))));
  shown.forEach((s, i) => s.addEventListener("change", () => set(i, Number(s.value))));
  show();
  return {
    el: h("fieldset", { class: "field weights sliders" }, h("legend", {}, `${label} (sliders sum to 100%) `, total),
      ...assets.map((a, i) => h("label", { class: "slider-field" }, a, h("div", { class: "row" }, sliders[i], shown[i], "%")))),
    read: () => Object.fromEntries(assets.map((a, i) => [a, pcts[i] / 100])),
  };
}

/** A form (fields and action buttons), a lone slider or a lone button: each send is confirmed in a modal first. */
function formView(host: Host, c: RunComponent): View {
  const { app, live } = host;
  const spec = c.spec as RunComponent["spec"] & { fields?: Field[]; actions?: Action[]; status?: string; weights?: Record<string, number> | null; single?: boolean; paused?: boolean };
  const allowed = live && app.can("manage", "run");
  const fields = (spec.fields ?? []).map((f) => fieldInput(f, c.id));
  const actions: Action[] = spec.actions?.length ? spec.actions : [{ name: "", label: "Send" }];
  const note = !live ? "The run is not running: its inputs are closed." : !app.can("manage", "run") ? "Your role may look, not change runs." : "";
  const send = async (action: Action) => {
    const value: Record<string, unknown> = action.name ? { action: action.name } : {};
    if (action.fields !== false) fields.forEach((f, i) => {
      const v = f.read();
      if (v !== undefined && !(typeof v === "number" && Number.isNaN(v))) value[spec.fields![i].name] = v;
    });
    const sent: unknown = spec.single ? value.value : value;
    const what = h("div", {}, h("p", {}, `The running strategy gets this input on “${spec.title ?? c.id}”:`), h("pre", { class: "mono" }, JSON.stringify(sent, null, 1)));
    if (await app.confirm(`${action.label ?? action.name ?? "Send"}?`, what, action.label ?? "Send")) await sendInput(host, c.id, sent);
  };
  const buttons = actions.map((a) => h("button", { type: "button", class: a.confirm ? "primary" : "", disabled: !allowed, "data-action": a.name || "send",
    onclick: () => void send(a) }, a.label ?? a.name));
  for (const f of fields) for (const input of f.el.querySelectorAll("input, select")) (input as HTMLInputElement).disabled = !allowed;
  const weights = spec.weights ? h("ul", { class: "chips" }, ...Object.entries(spec.weights).filter(([, w]) => w > 5e-5).map(([a, w]) => h("li", {}, `${a} ${pct(w)}`))) : null;
  const el = h("div", { class: "component-form" },
    spec.status ? h("p", {}, "Status: ", h("span", { class: "badge", "data-testid": `component-status-${c.id}` }, spec.status),
      spec.paused ? h("span", { class: "badge stopped", "data-testid": `component-paused-${c.id}` }, "rebalancing paused") : null) : null,
    weights, h("div", { class: "fields" }, fields.map((f) => f.el)), h("div", { class: "row" }, buttons), note ? h("p", { class: "muted" }, note) : null);
  return { el };
}
