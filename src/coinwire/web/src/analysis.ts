// Pure helpers of the analyser overlays: a portfolio's series name, the indicators the chart offers, and their values as points.

import type { ScopeRef } from "./portfolio";

/** The analyser's name of a portfolio's value series (core/analysis.parse_series): `portfolio:<scope>:<id>:<timeframe>`. */
export function portfolioSeries(ref: ScopeRef, timeframe: string): string {
  return `portfolio:${ref.scope}:${ref.id}:${timeframe}`;
}

/** The analyser rolls portfolio candles up from whole 15 minutes in UTC buckets: weeks and months are not among them. */
export const ANALYSED_TIMEFRAMES = ["15m", "1h", "4h", "1d"] as const;

export function analysable(timeframe: string): boolean {
  return (ANALYSED_TIMEFRAMES as readonly string[]).includes(timeframe);
}

const TF_SECONDS: Record<string, number> = { "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400 };

/** The analyser times a bar's value at the bar's close; the chart draws a candle at its open. The open of the bar a
 * value belongs to, so the line's point sits on its own candle (the time as it is for a timeframe it does not know). */
export function barOpen(closeTime: number, timeframe: string): number {
  return closeTime - (TF_SECONDS[timeframe] ?? 0);
}

/** What the Indicators control can show: lines drawn over the value (`peak`, `sma`) or a figure in the legend (`drawdown`). */
export interface OverlayChoice {
  peak: boolean;
  drawdown: boolean;
  sma: number | null; // n of the SMA, null: not shown
}

export const NO_OVERLAYS: OverlayChoice = { peak: false, drawdown: false, sma: null };

/** One indicator to subscribe to: its analyser name and parameters, how it is shown, and its label. */
export interface OverlaySpec {
  id: "peak" | "drawdown" | "sma";
  indicator: string;
  params: number[];
  kind: "line" | "figure";
  label: string;
}

export const SMA_MIN = 2;
export const SMA_MAX = 500;

/** The subscriptions a choice needs, in a stable order (an SMA whose n is out of range is left out). */
export function overlaySpecs(c: OverlayChoice): OverlaySpec[] {
  const out: OverlaySpec[] = [];
  if (c.peak) out.push({ id: "peak", indicator: "peak", params: [], kind: "line", label: "Peak" });
  if (c.sma !== null && Number.isInteger(c.sma) && c.sma >= SMA_MIN && c.sma <= SMA_MAX) {
    out.push({ id: "sma", indicator: "sma", params: [c.sma], kind: "line", label: `SMA ${c.sma}` });
  }
  if (c.drawdown) out.push({ id: "drawdown", indicator: "drawdown", params: [], kind: "figure", label: "Drawdown" });
  return out;
}

/** A choice kept as text (this browser's last one) read back; anything malformed is no overlay. */
export function parseChoice(text: string | null | undefined): OverlayChoice {
  try {
    const o = JSON.parse(text ?? "") as Record<string, unknown>;
    const sma = typeof o.sma === "number" && Number.isInteger(o.sma) && o.sma >= SMA_MIN && o.sma <= SMA_MAX ? o.sma : null;
    return { peak: o.peak === true, drawdown: o.drawdown === true, sma };
  } catch {
    return { ...NO_OVERLAYS };
  }
}

export type Point = [number, number]; // [unix seconds, value]

/** The analyser's `values: [[time, value], ...]` as points ascending by time, one per time (the last wins), non-numbers dropped. */
export function toPoints(rows: readonly (readonly unknown[])[]): Point[] {
  const byTime = new Map<number, number>();
  for (const r of rows) {
    const t = Number(r[0]);
    const v = r[1] === null || r[1] === undefined ? NaN : Number(r[1]);
    if (Number.isFinite(t) && Number.isFinite(v)) byTime.set(t, v);
  }
  return [...byTime.entries()].sort((a, b) => a[0] - b[0]);
}

/** A live value added to the points: a newer time appends, the same time replaces, an older one is ignored (false). */
export function addPoint(points: Point[], p: Point): boolean {
  if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) return false;
  const last = points[points.length - 1];
  if (last && p[0] < last[0]) return false;
  if (last && p[0] === last[0]) last[1] = p[1];
  else points.push([p[0], p[1]]);
  return true;
}

/** The drawdown figure for the legend: "−3.25%" below the peak, "at peak" at 0, "–" without a value. */
export function drawdownText(points: readonly Point[]): string {
  const last = points[points.length - 1];
  if (!last) return "–";
  if (last[1] <= 0) return "at peak";
  return `−${last[1].toFixed(2)}%`;
}
