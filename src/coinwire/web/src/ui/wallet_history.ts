// A wallet set's balance history: one small stepped area chart per wallet, from `get_wallet_set_history`.

import { AreaSeries, LineType, type IChartApi, type UTCTimestamp } from "lightweight-charts";
import type { App } from "../app";
import type { Wallet, WalletHistory } from "../api/types";
import * as fmt from "../format";
import { prefs } from "../prefs";
import { cssVar, restyle, timeChart } from "./chart";
import { fill, h, placeholder } from "./dom";

const SAMPLES = 240; // points per chart

/**
 * The balance at evenly spaced instants from the first movement to `now` (each sample is the
 * balance after the last movement at or before it), after one sample of 0 before the first
 * movement (the wallet held nothing in this set until then). The chart's time axis spaces
 * points evenly whatever their times, so movements hours apart and seconds apart would
 * otherwise look alike; on an even grid the steps sit where they happened.
 */
export function resample(points: [number, number][], now: number, samples = SAMPLES): { time: UTCTimestamp; value: number }[] {
  if (!points.length) return [];
  const start = points[0][0], end = Math.max(now, points[points.length - 1][0]);
  const every = Math.max(1, Math.ceil((end - start) / (samples - 2)));
  const out: { time: UTCTimestamp; value: number }[] = [{ time: (start - every) as UTCTimestamp, value: 0 }];
  let i = 0;
  for (let t = start; ; t = Math.min(t + every, end)) {
    while (i + 1 < points.length && points[i + 1][0] <= t) i++;
    out.push({ time: t as UTCTimestamp, value: points[i][1] });
    if (t >= end) break;
  }
  return out;
}

/** The history in a `<details>` block: loaded when opened, loaded again on `refresh()` (a balance changed). */
export class BalanceHistory {
  readonly el: HTMLDetailsElement;
  private body: HTMLElement;
  private charts: IChartApi[] = [];
  private stale = true;
  private loading: Promise<void> | null = null;
  private again = false;
  private balances: string | null = null;
  private unwatch: () => void;
  private disposed = false; // the page was left (or shows another account): a late answer draws nothing

  constructor(private app: App, private setId: number, open: boolean) {
    this.body = h("div", { class: "history-charts", "data-testid": `history-${setId}` }, placeholder("loading", "Loading the balance history…"));
    this.el = h("details", { class: "history", open }, h("summary", {}, "Balance history"), this.body);
    this.el.addEventListener("toggle", () => {
      if (this.el.open && this.stale) this.refresh();
    });
    this.unwatch = prefs.watch(() => this.charts.forEach(restyle));
    if (open) this.refresh();
  }

  /** The set's balances as the page last saw them: a change means a movement, so the history is read again. */
  seen(balances: string): void {
    if (this.balances !== null && balances !== this.balances) this.refresh();
    this.balances = balances;
  }

  refresh(): void {
    this.stale = true;
    if (!this.el.open) return;
    if (this.loading) {
      this.again = true; // a movement while the last answer was on its way: ask once more after it
      return;
    }
    this.loading = this.load().finally(() => {
      this.loading = null;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
  }

  private async load(): Promise<void> {
    try {
      const history = await this.app.rpc.call<WalletHistory>("get_wallet_set_history", { set_id: this.setId });
      if (this.disposed) return;
      this.stale = false;
      this.draw(history);
    } catch (e) {
      if (this.disposed) return;
      this.clear();
      fill(this.body, placeholder("error", (e as Error).message));
    }
  }

  private draw(history: WalletHistory): void {
    this.clear();
    const per = new Map<string, { w: Wallet; points: [number, number][] }>();
    for (const [t, w] of history.data) {
      const key = `${w.exchange}:${w.currency}`;
      if (!per.has(key)) per.set(key, { w, points: [] });
      per.get(key)!.points.push([t, Number(w.balance)]);
    }
    if (!per.size) return fill(this.body, placeholder("empty", "No movements in this set yet."));
    const boxes = [...per.values()].map(({ w, points }) => {
      const box = h("div", { class: "history-chart", "data-wallet": `${w.exchange}:${w.currency}` });
      return { w, points, box, el: h("div", {}, h("div", { class: "history-chart-title" }, `${w.currency} · ${w.exchange}`), box) };
    });
    fill(this.body, ...boxes.map((b) => b.el));
    const colour = cssVar("--accent");
    for (const { w, points, box } of boxes) {
      const chart = timeChart(box, () => prefs.value.tz);
      const series = chart.addSeries(AreaSeries, {
        lineColor: colour, topColor: `${colour}55`, bottomColor: `${colour}08`, lineWidth: 2, lineType: LineType.WithSteps,
        priceFormat: { type: "custom", formatter: (v: number) => fmt.amount(v, w.currency), minMove: 1e-8 },
        // from zero: an area's height is the balance, and a balance that never moved is not a flat axis of equal labels
        autoscaleInfoProvider: (base: () => { priceRange: { minValue: number; maxValue: number } } | null) => {
          const r = base();
          return r && { ...r, priceRange: { minValue: Math.min(0, r.priceRange.minValue), maxValue: Math.max(0, r.priceRange.maxValue) } };
        },
      });
      series.setData(resample(points, Math.floor(history.timestamp)));
      this.charts.push(chart);
      requestAnimationFrame(() => this.charts.includes(chart) && chart.timeScale().fitContent()); // once the box has its width
    }
    this.body.dataset.movements = String(history.data.length);
  }

  private clear(): void {
    for (const c of this.charts.splice(0)) c.remove();
  }

  dispose(): void {
    this.disposed = true;
    this.unwatch();
    this.clear();
  }
}
