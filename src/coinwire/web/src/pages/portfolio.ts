// Portfolio: a portfolio's value as live 15-minute candles rolled up to any timeframe and zone (scope picker: the user's
// total, an account, a wallet set, a run) with its rule sets' firings flagged, its daily stats, and for the user's total
// the market-cap balance; an Indicators control overlays the analyser's peak, SMA n and drawdown on the chart.

import type { App } from "../app";
import { analysisStream } from "../api/analysis";
import { portfolioGet, portfolioStream } from "../api/portfolio";
import { addPoint, analysable, barOpen, overlaySpecs, parseChoice, portfolioSeries, drawdownText, SMA_MAX, SMA_MIN, type OverlayChoice } from "../analysis";
import { channels } from "../api/rpc";
import { firingsOnScope } from "../api/rules";
import type { Candle } from "../api/rpc";
import type { RunSummary, WalletSet } from "../api/types";
import * as fmt from "../format";
import { ZONES } from "./markets";
import {
  PORTFOLIO_TIMEFRAMES, balanceRows, change, dailyColumns, parseScopeKey, scopeKey,
  type BalanceAsset, type ScopeRef,
} from "../portfolio";
import { prefs } from "../prefs";
import { CandleChart } from "../ui/chart";
import { Disposer, fill, h, placeholder, redrawable } from "../ui/dom";

const TF_KEY = "coinwire.portfolio.timeframe"; // this browser's last portfolio timeframe (a view, like the market's)
const OVERLAY_KEY = "coinwire.portfolio.indicators"; // this browser's chosen overlays (a view, like the timeframe)
const OVERLAY_COLOURS: Record<string, string> = { peak: "#7e57c2", sma: "#2196f3" };
let zone: string | null = null; // a zone chosen on the page for this visit; the user's own otherwise

function timeframe(): string {
  const saved = localStorage.getItem(TF_KEY) ?? "";
  return (PORTFOLIO_TIMEFRAMES as readonly string[]).includes(saved) ? saved : "15m";
}

/** The user's own total: scope `user` with the id `GET /api/v1/me` reports. */
export function userScope(app: App): ScopeRef {
  return { scope: "user", id: String(app.abilities.value?.user.id ?? "") };
}

/**
 * A card with a portfolio's candles (value) and volume bars (traded notional), the timeframe and
 * zone switch, the latest value and the period's change; live from `subscribe_portfolio_ohlcv`.
 * Masking hides the value axis, the labels and the volume; switching draws the card again.
 */
export function portfolioChartCard(app: App, d: Disposer, ref: ScopeRef, title: string): HTMLElement {
  const card = h("section", { class: "card chart-card portfolio-chart", "aria-label": `portfolio value: ${title}` });
  return redrawable(card, d, (inner, redraw) => fill(card, chartView(app, inner, redraw, ref, title)));
}

function chartView(app: App, d: Disposer, redraw: () => void, ref: ScopeRef, title: string): HTMLElement[] {
  const tf = timeframe();
  const tz = zone ?? prefs.value.tz;
  const tfButtons = h("div", { class: "seg", role: "group", "aria-label": "portfolio timeframe" },
    ...PORTFOLIO_TIMEFRAMES.map((t) => h("button", { type: "button", class: t === tf ? "on" : "", "aria-pressed": t === tf, "data-tf": t,
      onclick: () => { localStorage.setItem(TF_KEY, t); redraw(); } }, t)));
  const zoneSelect = h("select", { "aria-label": "portfolio time zone", "data-testid": "portfolio-tz" },
    ...[...new Set([prefs.value.tz, tz, ...ZONES])].map((z) => h("option", { value: z, selected: z === tz }, z)));
  zoneSelect.addEventListener("change", () => { zone = zoneSelect.value; redraw(); });
  const value = h("span", { class: "last", "data-testid": "portfolio-value" }, "–");
  const delta = h("span", { class: "muted", "data-testid": "portfolio-change" });
  const status = h("span", { class: "muted", "data-testid": "portfolio-status" }, "loading…");
  const box = h("div", { class: "chart", "data-testid": "portfolio-chart" });
  const chosen = parseChoice(localStorage.getItem(OVERLAY_KEY));
  const { control, legend } = indicatorControl(chosen, tf, (next) => { localStorage.setItem(OVERLAY_KEY, JSON.stringify(next)); redraw(); });
  let candles: Candle[] = [];
  let currency = "";
  const decimals = () => prefs.value.stableDecimals;
  const describe = () => {
    const last = candles[candles.length - 1];
    value.textContent = last ? (prefs.value.mask ? fmt.MASK : `${fmt.fixed(last[4], decimals())} ${currency}`.trim()) : "–";
    const c = change(candles);
    delta.className = c && c.amount < 0 ? "sell" : c && c.amount > 0 ? "buy" : "muted";
    delta.textContent = !c ? "" : prefs.value.mask ? fmt.percent(c.fraction) : `${c.amount >= 0 ? "+" : ""}${fmt.fixed(c.amount, decimals())} (${fmt.percent(c.fraction)})`;
  };
  requestAnimationFrame(() => {
    if (!box.isConnected) return;
    const chart = new CandleChart(box, tz, decimals());
    chart.quietVolume();
    d.add(() => chart.dispose());
    // the rule sets on this portfolio: each firing flagged on its bar, read again when one fires
    const firings = () => void firingsOnScope(app.http, ref, ref.scope === "user" ? Number(ref.id) : undefined)
      .then((marks) => chart.setFirings(marks), () => undefined);
    if (app.can("read", "rule_set")) {
      firings();
      if (app.abilities.value?.channels.includes("rule_fired")) {
        d.add(app.rpc.keep(channels(["rule_fired"])));
        d.add(app.rpc.on("rule_fired", () => firings()));
      }
    }
    d.add(prefs.watch((p) => { chart.restyle(); chart.setMasked(p.mask); describe(); }));
    if (analysable(tf)) overlays(app, d, chart, legend, ref, tf, chosen);
    d.add(portfolioStream(app.rpc, { ...ref, timeframe: tf, tz },
      (snap) => {
        candles = snap.candles;
        currency = snap.currency ?? currency;
        chart.setHistory(candles);
        status.textContent = candles.length ? `${candles.length} candle${candles.length === 1 ? "" : "s"} · ${tf} · ${tz}` : "no candles yet: the first closes at the next quarter hour";
        box.dataset.candles = String(chart.candleCount);
        describe();
      },
      (c) => {
        const i = candles.findIndex((x) => x[0] === c[0]);
        if (i >= 0) candles[i] = c;
        else if (!candles.length || c[0] > candles[candles.length - 1][0]) candles.push(c);
        chart.update(c);
        status.textContent = "live";
        box.dataset.candles = String(chart.candleCount);
        box.dataset.updates = String(Number(box.dataset.updates ?? 0) + 1);
        box.dataset.close = String(c[4]);
        box.dataset.volume = String(c[5]); // the canvas is not readable text: the forming candle's figures for tests
        describe();
      },
      (e) => { status.textContent = e.message; status.className = "error"; }));
  });
  return [
    h("div", { class: "toolbar" }, h("h3", {}, title), tfButtons, zoneSelect, value, delta, status),
    h("div", { class: "toolbar indicators" }, control, legend),
    box,
  ];
}

/** The Indicators control: peak and SMA n as lines over the value, drawdown from the peak as a legend figure.
 * A change calls `changed` (the card is drawn again, so every stream of the old choice is unsubscribed). */
function indicatorControl(c: OverlayChoice, tf: string, changed: (next: OverlayChoice) => void): { control: HTMLElement; legend: HTMLElement } {
  const box = (name: string, on: boolean) => h("input", { type: "checkbox", checked: on, "data-indicator": name });
  const peak = box("peak", c.peak) as HTMLInputElement;
  const sma = box("sma", c.sma !== null) as HTMLInputElement;
  const n = h("input", { type: "number", min: SMA_MIN, max: SMA_MAX, step: 1, value: String(c.sma ?? 20), class: "narrow",
    "aria-label": "SMA length", "data-testid": "sma-n" }) as HTMLInputElement;
  const dd = box("drawdown", c.drawdown) as HTMLInputElement;
  const apply = () => {
    const len = Number(n.value);
    const ok = Number.isInteger(len) && len >= SMA_MIN && len <= SMA_MAX;
    n.setCustomValidity(ok ? "" : `a whole number from ${SMA_MIN} to ${SMA_MAX}`);
    if (sma.checked && !ok) return void n.reportValidity();
    changed({ peak: peak.checked, drawdown: dd.checked, sma: sma.checked ? len : null });
  };
  for (const el of [peak, sma, dd]) el.addEventListener("change", apply);
  n.addEventListener("change", () => { if (sma.checked) apply(); }); // a length typed before ticking SMA waits for the tick
  const legend = h("span", { class: "muted", "data-testid": "indicator-legend" },
    analysable(tf) ? "" : "indicators are computed on 15m to 1d candles only");
  const control = h("span", { class: "indicator-set", role: "group", "aria-label": "indicators", "data-testid": "indicators" },
    h("strong", {}, "Indicators "),
    h("label", {}, peak, " Peak "),
    h("label", {}, sma, " SMA "), n,
    h("label", {}, dd, " Drawdown"));
  return { control, legend };
}

/** One `subscribe_analysis` stream per chosen indicator on this portfolio's series; lines on the chart, drawdown in the
 * legend. Each stream ends with the card (`d`): a scope, timeframe or choice change, or leaving the page. */
function overlays(app: App, d: Disposer, chart: CandleChart, legend: HTMLElement, ref: ScopeRef, tf: string, c: OverlayChoice): void {
  const series = portfolioSeries(ref, tf);
  const onBar = (p: [number, number]): [number, number] => [barOpen(p[0], tf), p[1]];
  const figures = new Map<string, string>();
  const show = () => { legend.textContent = [...figures.entries()].map(([k, v]) => `${k} ${v}`).join(" · "); };
  for (const spec of overlaySpecs(c)) {
    let points: [number, number][] = [];
    const drawn = () => {
      if (spec.kind === "line") chart.setOverlay(spec.id, spec.label, OVERLAY_COLOURS[spec.id] ?? "#888", points);
      else { figures.set(spec.label, drawdownText(points)); show(); }
    };
    d.add(analysisStream(app.rpc, { series, indicator: spec.indicator, params: spec.params },
      (history) => { points = history.map(onBar); drawn(); },
      (p) => {
        if (!addPoint(points, onBar(p))) return;
        if (spec.kind === "line") chart.updateOverlay(spec.id, points[points.length - 1], points.length);
        else drawn();
      },
      (e) => { figures.set(spec.label, `unavailable (${e.message})`); show(); }));
  }
}

export interface Choice {
  ref: ScopeRef;
  label: string;
  group: string;
}

/** Every portfolio the user may watch: their total, each account, each wallet set, each run (as the lists answer them).
 * `trading`: only the accounts the user may trade (a rule set acts on its scope; the server checks again). */
export async function choices(app: App, trading = false): Promise<Choice[]> {
  const out: Choice[] = [{ ref: userScope(app), label: "All my holdings (total)", group: "Total" }];
  for (const a of app.accounts.list.value) {
    if (trading && a.role === "view") continue;
    out.push({ ref: { scope: "account", id: String(a.id) }, label: `${a.name} · ${a.kind} · ${a.exchange}`, group: "Accounts" });
  }
  const [sets, runs] = await Promise.all([
    app.can("read", "wallet_set") ? app.rpc.call<Record<string, WalletSet>>("get_all_wallet_sets", {}).catch(() => ({})) : Promise.resolve({}),
    app.can("read", "run") ? app.http.get<RunSummary[]>("/runs").catch(() => [] as RunSummary[]) : Promise.resolve([] as RunSummary[]),
  ]);
  for (const s of app.accounts.sets(sets as Record<string, WalletSet>)) {
    out.push({ ref: { scope: "wallet_set", id: String(s.id) }, label: `#${s.id} ${s.description}`, group: "Wallet sets" });
  }
  for (const r of runs) {
    out.push({ ref: { scope: "run", id: r.run_id }, label: `${r.run_id} · ${r.strategy ?? ""} · ${r.mode ?? ""} · ${r.status}`, group: "Runs" });
  }
  return out;
}

function chosenRef(app: App): ScopeRef {
  const q = new URLSearchParams(location.search);
  return parseScopeKey(q.get("scope") && q.get("id") ? `${q.get("scope")}:${q.get("id")}` : null) ?? userScope(app);
}

export function portfolioPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const root = h("div", { class: "page portfolio" });
  return redrawable(root, d, (inner, redraw) => {
    const ref = chosenRef(app);
    const picker = h("select", { "aria-label": "portfolio", "data-testid": "scope-picker" },
      h("option", { value: scopeKey(ref), selected: true }, "loading…"));
    picker.addEventListener("change", () => {
      const next = parseScopeKey(picker.value);
      if (!next) return;
      history.replaceState(null, "", `/app/portfolio?scope=${encodeURIComponent(next.scope)}&id=${encodeURIComponent(next.id)}`);
      redraw();
    });
    let title = ref.scope === "user" ? "All my holdings" : `${ref.scope.replace("_", " ")} ${ref.id}`;
    void choices(app).then((all) => {
      const groups = [...new Set(all.map((c) => c.group))];
      if (!all.some((c) => scopeKey(c.ref) === scopeKey(ref))) all.push({ ref, label: title, group: "Other" }), groups.push("Other");
      fill(picker, ...groups.map((g) => h("optgroup", { label: g },
        ...all.filter((c) => c.group === g).map((c) => h("option", { value: scopeKey(c.ref), selected: scopeKey(c.ref) === scopeKey(ref) }, c.label)))));
      title = all.find((c) => scopeKey(c.ref) === scopeKey(ref))?.label ?? title;
    });
    fill(root,
      h("section", { class: "card toolbar scope-bar" }, h("label", {}, "Portfolio ", picker),
        h("a", { href: "/app/importing", "data-link": true }, "Import history"),
        h("a", { href: "/app/external", "data-link": true }, "External accounts and webhooks")),
      portfolioChartCard(app, inner, ref, ref.scope === "user" ? "All my holdings" : title),
      dailyCard(app, inner, ref),
      ref.scope === "user" ? balanceCard(app, inner, ref) : null);
  });
}

// --- daily stats ----------------------------------------------------------------------------

type DailyRow = Record<string, string | number | null>;

function dailyCard(app: App, d: Disposer, ref: ScopeRef): HTMLElement {
  const body = h("div", { "data-testid": "daily-stats" }, placeholder("loading", "Loading daily stats…"));
  const card = h("section", { class: "card" }, h("h3", {}, "Daily stats"),
    h("p", { class: "muted" }, `Recorded at midnight in your time zone (${prefs.value.tz}); deposits and withdrawals are kept apart from performance.`), body);
  let rows: DailyRow[] | null = null;
  const draw = () => {
    if (rows === null) return;
    if (!rows.length) return fill(body, placeholder("empty", "No day has closed yet: the first row lands at your next midnight."));
    fill(body, dailyChart(rows), dailyTable(rows));
  };
  const load = async () => {
    try {
      rows = await portfolioGet<DailyRow[]>(app.http, ref, "daily");
      draw();
    } catch (e) {
      fill(body, placeholder("error", `Daily stats could not be read: ${(e as Error).message}`));
    }
  };
  void load();
  d.every(60_000, () => void load());
  d.add(prefs.watch(() => draw()));
  return card;
}

function cell(row: DailyRow, key: string, kind: string): string {
  const v = row[key];
  if (v === null || v === undefined) return "–";
  if (kind === "date" || kind === "count") return String(v);
  if (kind === "text") return v === "recorded" ? "" : String(v);
  if (kind === "ratio") return fmt.percent(Number(v));
  return prefs.value.mask ? fmt.MASK : fmt.fixed(v, prefs.value.stableDecimals);
}

function dailyTable(rows: DailyRow[]): HTMLElement {
  const cols = dailyColumns(rows);
  return h("div", { class: "table-wrap" }, h("table", { class: "grid stack" },
    h("thead", {}, h("tr", {}, ...cols.map(([, t, kind]) => h("th", { class: kind === "date" ? "" : "num" }, t)))),
    h("tbody", {}, ...[...rows].reverse().map((r) => h("tr", { "data-testid": "daily-row" },
      ...cols.map(([key, t, kind]) => h("td", { class: kind === "date" ? "" : "num", "data-label": t }, cell(r, key, kind))))))));
}

/** Each day's PnL as a bar (green up, red down) around a zero line; no value axis, so masking leaves nothing to read. */
function dailyChart(rows: DailyRow[]): SVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const w = 600, hgt = 120, mid = hgt / 2;
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("class", "daily-chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "daily PnL");
  const pnl = rows.map((r) => Number(r.pnl ?? 0)).map((x) => (Number.isFinite(x) ? x : 0));
  const max = Math.max(...pnl.map(Math.abs), 1e-12);
  const bw = w / Math.max(pnl.length, 1);
  const axis = document.createElementNS(ns, "line");
  for (const [k, v] of [["x1", 0], ["x2", w], ["y1", mid], ["y2", mid]] as const) axis.setAttribute(k, String(v));
  axis.setAttribute("class", "zero");
  svg.append(axis);
  pnl.forEach((x, i) => {
    const bar = document.createElementNS(ns, "rect");
    const size = (Math.abs(x) / max) * (mid - 4);
    bar.setAttribute("x", String(i * bw + bw * 0.15));
    bar.setAttribute("width", String(Math.max(bw * 0.7, 1)));
    bar.setAttribute("y", String(x >= 0 ? mid - size : mid));
    bar.setAttribute("height", String(Math.max(size, 0.5)));
    bar.setAttribute("class", x >= 0 ? "up" : "down");
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${rows[i].day ?? ""}: ${prefs.value.mask ? fmt.MASK : fmt.fixed(x, prefs.value.stableDecimals)}`;
    bar.append(tip);
    svg.append(bar);
  });
  return svg;
}

// --- balanced by market cap -----------------------------------------------------------------

interface BalanceAnswer {
  currency?: string;
  top?: number;
  assets: BalanceAsset[];
  unpriced?: string[];
}

function balanceCard(app: App, d: Disposer, ref: ScopeRef): HTMLElement {
  const body = h("div", { "data-testid": "balance" }, placeholder("loading", "Loading…"));
  const card = h("section", { class: "card" }, h("h3", {}, "Balanced by market cap?"), body);
  let answer: BalanceAnswer | null = null;
  const draw = () => {
    if (!answer) return;
    const all = balanceRows(answer.assets);
    if (!all.length) return fill(body, placeholder("empty", "Nothing held yet to compare."));
    // coins neither held nor weighing anything at this precision are counted, not listed
    const rows = all.filter((r) => r.weight >= 0.0005 || r.capWeight >= 0.0005);
    const rest = all.length - rows.length;
    fill(body,
      h("p", { class: "muted" }, `Each asset's share of your holdings against its share among the top ${answer.top ?? "N"} coins by market cap (cash and stablecoins left out).`),
      answer.unpriced?.length ? h("p", { class: "muted" }, `No price for ${answer.unpriced.join(", ")}: left out.`) : null,
      h("div", { class: "table-wrap" }, h("table", { class: "grid stack balance" },
        h("thead", {}, h("tr", {}, ...["Asset", "Value", "Your weight", "Market-cap weight", "Off by", ""].map((t) => h("th", { class: t === "Asset" || !t ? "" : "num" }, t)))),
        h("tbody", {}, ...rows.map((r) => h("tr", { "data-testid": "balance-row", "data-asset": r.asset, "data-verdict": r.verdict },
          h("td", { "data-label": "Asset" }, r.asset),
          h("td", { class: "num", "data-label": "Value" }, r.value === null ? "–" : prefs.value.mask ? fmt.MASK : `${fmt.fixed(r.value, prefs.value.stableDecimals)} ${answer?.currency ?? ""}`),
          h("td", { class: "num", "data-label": "Your weight" }, fmt.percent(r.weight, 1)),
          h("td", { class: "num", "data-label": "Market-cap weight" }, fmt.percent(r.capWeight, 1)),
          h("td", { class: `num ${r.verdict === "over" ? "sell" : r.verdict === "under" ? "buy" : ""}`, "data-label": "Off by" },
            `${r.deviation >= 0.0005 ? "+" : ""}${Math.abs(r.deviation) < 0.0005 ? "0.0" : (r.deviation * 100).toFixed(1)} pts`),
          h("td", { "data-label": "" }, h("span", { class: `badge ${r.verdict}` }, r.verdict === "even" ? "in line" : `${r.verdict}weight`))))))),
      rest ? h("p", { class: "muted", "data-testid": "balance-rest" }, `${rest} more coin${rest === 1 ? "" : "s"} of the top, neither held nor above 0.05% of the caps.`) : null);
  };
  const load = async () => {
    try {
      answer = await portfolioGet<BalanceAnswer>(app.http, ref, "balance");
      draw();
    } catch (e) {
      fill(body, placeholder("error", `The balance could not be read: ${(e as Error).message}`));
    }
  };
  void load();
  d.every(60_000, () => void load());
  d.add(prefs.watch(() => draw()));
  return card;
}
