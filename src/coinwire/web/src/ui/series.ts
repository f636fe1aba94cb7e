// Line and area charts of time series (a run's equity and drawdown, a strategy's chart components) on lightweight-charts.

import { AreaSeries, LineSeries, type AutoscaleInfo, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import { cssVar, fitAll, restyle, timeChart } from "./chart";

export interface Line {
  name: string;
  points: [number, number][]; // [unix seconds, value]
  color?: string; // a CSS colour, or a custom property name such as "--accent"
  area?: boolean;
  max?: number; // the scale never goes above this (a drawdown: 0)
}

const PALETTE = ["--accent", "--buy", "--warn", "--sell", "#a371f7", "#3fb8af", "#e3b341", "#db61a2"];

/** Seconds from whatever a strategy put in its time column (seconds, milliseconds or nanoseconds). */
export function toSeconds(t: number): number {
  return t > 1e14 ? t / 1e9 : t > 1e11 ? t / 1e3 : t;
}

/** Strictly ascending times, the last value kept for a repeated time (the chart refuses anything else). */
function ascending(points: [number, number][]): { time: UTCTimestamp; value: number }[] {
  const sorted = points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v)).sort((a, b) => a[0] - b[0]);
  const out: { time: UTCTimestamp; value: number }[] = [];
  for (const [t, value] of sorted) {
    const time = Math.floor(t) as UTCTimestamp;
    if (out.length && out[out.length - 1].time === time) out[out.length - 1].value = value;
    else out.push({ time, value });
  }
  return out;
}

function colour(c: string): string {
  return c.startsWith("--") ? cssVar(c) : c;
}

/** A chart of one or more lines over time; `format` writes the price scale's labels. */
export class LineChart {
  readonly chart: IChartApi;
  private series: ISeriesApi<"Area" | "Line">[] = [];

  constructor(private el: HTMLElement, tz: () => string, private format: (v: number) => string = (v) => v.toLocaleString("en-US")) {
    this.chart = timeChart(el, tz);
    fitAll(this.chart);
  }

  /** Replace the lines; answers how many points are drawn (also in the box's `data-points`). */
  set(lines: Line[]): number {
    for (const s of this.series.splice(0)) this.chart.removeSeries(s);
    let points = 0;
    lines.forEach((line, i) => {
      const c = colour(line.color ?? PALETTE[i % PALETTE.length]);
      const common = {
        priceFormat: { type: "custom" as const, formatter: this.format, minMove: 1e-8 },
        title: lines.length > 1 ? line.name : "",
        autoscaleInfoProvider: line.max === undefined ? undefined : (original: () => AutoscaleInfo | null) => {
          const r = original();
          if (r?.priceRange) r.priceRange.maxValue = Math.min(r.priceRange.maxValue, line.max!);
          return r;
        },
      };
      const s = line.area
        ? this.chart.addSeries(AreaSeries, { lineColor: c, topColor: `${c}55`, bottomColor: `${c}08`, lineWidth: 2, ...common })
        : this.chart.addSeries(LineSeries, { color: c, lineWidth: 2, ...common });
      const data = ascending(line.points);
      s.setData(data);
      points += data.length;
      this.series.push(s);
    });
    if (lines.some((l) => l.max !== undefined)) this.chart.priceScale("right").applyOptions({ scaleMargins: { top: 0.04, bottom: 0.08 } });
    this.chart.timeScale().fitContent();
    this.el.dataset.points = String(points);
    return points;
  }

  restyle(): void {
    restyle(this.chart);
  }

  dispose(): void {
    this.chart.remove();
  }
}
