// The candlestick chart: lightweight-charts candles + volume, times shown in the chosen time zone,
// the user's fills and rule firings as markers, analyser outputs as overlay lines.

import {
  CandlestickSeries,
  ColorType,
  HistogramSeries,
  LineSeries,
  LineStyle,
  TickMarkType,
  createChart,
  createSeriesMarkers,
  type IChartApi,
  type AutoscaleInfo,
  type IPriceLine,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Candle } from "../api/rpc";
import type { TriggerLine } from "../conditional";
import type { FiringMark } from "../rules";
import * as fmt from "../format";

export interface FillMark {
  time: number; // unix seconds
  side: "buy" | "sell";
  price: string;
  size: string;
}

const UP = "#26a69a";
const FIRING = "#f0a030";
const DOWN = "#ef5350";
const LINE_COLOURS = { "stop": DOWN, "take-profit": UP, "trailing": "#f0a030" } as const;
const MAX_LABELS = 40; // fills beyond this are arrows without their price: the labels would hide the candles

export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/** Axis labels say what changed at the tick (a year, a month, a day, a time); the crosshair label says it all. */
const TICKS: Record<number, Intl.DateTimeFormatOptions> = {
  [TickMarkType.Year]: { year: "numeric" },
  [TickMarkType.Month]: { month: "short" },
  [TickMarkType.DayOfMonth]: { day: "numeric", month: "short" },
};

function format(t: number, tick: TickMarkType | null, tz: string): string {
  const opts: Intl.DateTimeFormatOptions = tick === null
    ? { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false }
    : TICKS[tick] ?? { hour: "2-digit", minute: "2-digit", hour12: false };
  return new Date(t * 1000).toLocaleString("en-GB", { ...opts, timeZone: tz });
}

/** A chart in the app's theme with unix-second times shown in the zone `tz()` answers when a label is drawn. */
export function timeChart(el: HTMLElement, tz: () => string): IChartApi {
  return createChart(el, {
    autoSize: true,
    layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: cssVar("--fg"), attributionLogo: false },
    grid: { vertLines: { color: cssVar("--grid") }, horzLines: { color: cssVar("--grid") } },
    timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: (t: Time, tick: TickMarkType) => format(t as number, tick, tz()) },
    localization: { timeFormatter: (t: Time) => format(t as number, null, tz()) },
    rightPriceScale: { borderVisible: false },
  });
}

/** Show all the data, now and whenever the box changes size (it is measured after the data is set): bars may get thinner than a pixel. */
export function fitAll(chart: IChartApi): void {
  chart.applyOptions({ timeScale: { minBarSpacing: 0.01 } });
  chart.timeScale().fitContent();
  chart.timeScale().subscribeSizeChange(() => chart.timeScale().fitContent());
}

/** Re-read the theme's colours (after a light/dark switch). */
export function restyle(chart: IChartApi): void {
  chart.applyOptions({
    layout: { textColor: cssVar("--fg") },
    grid: { vertLines: { color: cssVar("--grid") }, horzLines: { color: cssVar("--grid") } },
  });
}

export class CandleChart {
  readonly chart: IChartApi;
  private candles: ISeriesApi<"Candlestick">;
  private volume: ISeriesApi<"Histogram">;
  private markers: ISeriesMarkersPluginApi<Time>;
  private times: number[] = [];
  private fills: FillMark[] = [];
  private firings: FiringMark[] = [];
  private lines: IPriceLine[] = [];
  private linePrices: number[] = [];
  private overlays = new Map<string, { series: ISeriesApi<"Line">; label: string; count: number }>();
  private masked = false;
  /** Removed: answers that were on their way when the page was left (a market or account switch) are dropped, not drawn. */
  private gone = false;

  /** `priceDecimals`: the market's precision, for the price axis and the fill markers' labels alike. */
  constructor(private el: HTMLElement, private tz: string, private priceDecimals: number) {
    this.chart = timeChart(el, () => this.tz);
    this.chart.applyOptions({ timeScale: { rightOffset: 12 } }); // room right of the newest bar: its fill label is not cut off
    const minMove = 10 ** -priceDecimals;
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP, downColor: DOWN, wickUpColor: UP, wickDownColor: DOWN, borderVisible: false,
      priceFormat: { type: "price", precision: priceDecimals, minMove },
      // the price axis reaches the trigger lines too: a stop 5% away is seen, not drawn off the chart
      autoscaleInfoProvider: (base: () => AutoscaleInfo | null) => {
        const info = base();
        if (!info?.priceRange || !this.linePrices.length) return info;
        const { minValue, maxValue } = info.priceRange;
        return { ...info, priceRange: { minValue: Math.min(minValue, ...this.linePrices), maxValue: Math.max(maxValue, ...this.linePrices) } };
      },
    });
    this.volume = this.chart.addSeries(HistogramSeries, { priceScaleId: "vol", priceFormat: { type: "volume" } });
    this.chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.markers = createSeriesMarkers(this.candles, []);
  }

  /** Re-read the theme's colours (after a light/dark switch). */
  restyle(): void {
    if (this.gone) return;
    restyle(this.chart);
  }

  setTimeZone(tz: string): void {
    if (this.gone) return;
    this.tz = tz;
    this.chart.applyOptions({}); // redraw labels with the new formatter zone
  }

  setHistory(candles: Candle[]): void {
    if (this.gone) return;
    this.times = candles.map((c) => c[0]);
    this.candles.setData(candles.map((c) => ({ time: c[0] as UTCTimestamp, open: c[1], high: c[2], low: c[3], close: c[4] })));
    this.volume.setData(candles.map((c) => ({ time: c[0] as UTCTimestamp, value: c[5], color: c[4] >= c[1] ? `${UP}80` : `${DOWN}80` })));
    this.drawFills();
    this.chart.timeScale().scrollToRealTime();
  }

  update(c: Candle): void {
    if (this.gone) return;
    const last = this.times[this.times.length - 1];
    if (last !== undefined && c[0] < last) return; // an older bucket than the chart's last: ignore
    if (last !== c[0]) this.times.push(c[0]);
    this.candles.update({ time: c[0] as UTCTimestamp, open: c[1], high: c[2], low: c[3], close: c[4] });
    this.volume.update({ time: c[0] as UTCTimestamp, value: c[5], color: c[4] >= c[1] ? `${UP}80` : `${DOWN}80` });
    if ((this.fills.length || this.firings.length) && last !== c[0]) this.drawFills();
  }

  /** No label or line for the newest volume bar: on a chart of value its figure would sit on the value axis among the values. */
  quietVolume(): void {
    if (this.gone) return;
    this.volume.applyOptions({ lastValueVisible: false, priceLineVisible: false });
  }

  /** Masking (a portfolio's value is private): the value axis, the last-value labels, the crosshair's value and the
   * volume bars are hidden; the candles' shape stays, with no scale to read it by. The box says so in `data-masked`. */
  setMasked(masked: boolean): void {
    if (this.gone) return;
    this.chart.applyOptions({
      rightPriceScale: { visible: !masked },
      crosshair: { horzLine: { labelVisible: !masked } },
      localization: { priceFormatter: masked ? () => fmt.MASK : (p: number) => fmt.fixed(p, this.priceDecimals) },
    });
    this.candles.applyOptions({ lastValueVisible: !masked, priceLineVisible: !masked });
    this.volume.applyOptions({ visible: !masked });
    this.masked = masked;
    for (const o of this.overlays.values()) o.series.applyOptions({ lastValueVisible: !masked });
    this.el.dataset.masked = String(masked);
  }

  get candleCount(): number {
    return this.times.length;
  }

  setFills(fills: FillMark[]): void {
    if (this.gone) return;
    this.fills = fills;
    this.drawFills();
  }

  /** Rule firings (a portfolio's rule sets): a flag above the bar whose bucket holds the firing's time. */
  setFirings(firings: FiringMark[]): void {
    if (this.gone) return;
    this.firings = firings;
    this.drawFills();
  }

  /** The user's untriggered orders' trigger levels as labelled horizontal lines (the set replaces the last one).
   * Their labels are also on the box's `data-trigger-lines`, one per line, for the same reason as the markers'. */
  setTriggerLines(lines: TriggerLine[]): void {
    if (this.gone) return;
    for (const l of this.lines) this.candles.removePriceLine(l);
    this.linePrices = lines.map((l) => Number(l.price));
    this.lines = lines.map((l) => this.candles.createPriceLine({
      price: Number(l.price), color: LINE_COLOURS[l.kind], lineWidth: 1, lineStyle: LineStyle.Dashed, axisLabelVisible: true, title: l.label }));
    this.el.dataset.triggerLines = lines.map((l) => `${l.label} @ ${fmt.price(l.price, this.priceDecimals)}`).join("\n");
  }

  /** An analyser output drawn as a line over the candles on their value axis (`id` names it; the set replaces its points).
   * Each line's label and point count are on the box's `data-overlays` ("Peak:12", one per line): the canvas is not readable text. */
  setOverlay(id: string, label: string, colour: string, points: readonly [number, number][]): void {
    if (this.gone) return;
    let o = this.overlays.get(id);
    if (!o) {
      const series = this.chart.addSeries(LineSeries, {
        color: colour, lineWidth: 2, title: label, priceLineVisible: false, lastValueVisible: !this.masked,
        crosshairMarkerVisible: false, priceFormat: { type: "price", precision: this.priceDecimals, minMove: 10 ** -this.priceDecimals },
      });
      o = { series, label, count: 0 };
      this.overlays.set(id, o);
    }
    o.series.setData(points.map(([t, v]) => ({ time: t as UTCTimestamp, value: v })));
    o.count = points.length;
    this.describeOverlays();
  }

  /** A new value of an overlay line: a newer time extends it, the same time moves its last point. */
  updateOverlay(id: string, point: [number, number], count: number): void {
    const o = this.overlays.get(id);
    if (this.gone || !o) return;
    o.series.update({ time: point[0] as UTCTimestamp, value: point[1] });
    o.count = count;
    this.describeOverlays();
  }

  private describeOverlays(): void {
    this.el.dataset.overlays = [...this.overlays.values()].map((o) => `${o.label}:${o.count}`).join("\n");
  }

  /** The bar whose bucket holds `time` (unix seconds), or null before the chart's history. */
  private barOf(time: number): number | null {
    let i = this.times.length - 1;
    while (i > 0 && this.times[i] > time) i--;
    return this.times[i] > time ? null : this.times[i];
  }

  /** Each fill marked on the bar whose bucket holds its time, labelled with its price at the market's precision
   * (an order's average price has many more decimals), and each rule firing flagged above its bar. The labels are
   * also on the box's `data-marker-labels` (fills) and `data-firing-labels` (firings), one per line: the canvas is
   * not readable text. */
  private drawFills(): void {
    if (!this.times.length) return;
    const marks: SeriesMarker<Time>[] = [];
    const flagged: string[] = [];
    for (const f of this.firings) {
      const bar = this.barOf(f.time);
      if (bar === null) continue;
      marks.push({ time: bar as UTCTimestamp, position: "aboveBar", color: FIRING, shape: "square", text: f.label });
      flagged.push(f.label);
    }
    for (const f of this.fills) {
      const bar = this.barOf(f.time);
      if (bar === null) continue; // before the chart's history
      marks.push({
        time: bar as UTCTimestamp,
        position: f.side === "buy" ? "belowBar" : "aboveBar",
        color: f.side === "buy" ? UP : DOWN,
        shape: f.side === "buy" ? "arrowUp" : "arrowDown",
        text: this.fills.length > MAX_LABELS ? undefined : `${f.side === "buy" ? "B" : "S"} ${fmt.price(f.price, this.priceDecimals)}`,
      });
    }
    marks.sort((a, b) => (a.time as number) - (b.time as number));
    this.markers.setMarkers(marks);
    this.el.dataset.markerLabels = marks.filter((m) => m.shape !== "square").map((m) => m.text ?? "").join("\n");
    this.el.dataset.firingLabels = flagged.join("\n");
  }

  dispose(): void {
    this.gone = true;
    this.chart.remove();
  }
}
