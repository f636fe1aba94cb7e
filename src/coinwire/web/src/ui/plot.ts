// An x-y plot as inline SVG (scatter clouds, frontier curves): for data whose x axis is not time.

const NS = "http://www.w3.org/2000/svg";
const W = 640, H = 320, L = 56, R = 16, T = 12, B = 40;
const CHAR = 7, LINE = 12; // about the width of a character and the height of a line of 11 px text, in viewBox units

type Box = [number, number, number, number]; // x0, y0, x1, y1

/** Where a point's label goes: right and above it, else the first of right-below, left-above, left-below that overlaps
 *  no label placed before and stays inside the plot, else stacked above; so two labels at one point do not print over
 *  each other (a named portfolio that is a single asset). */
function placeLabel(x: number, y: number, text: string, placed: Box[]): { x: number; y: number; anchor: string } {
  const w = text.length * CHAR;
  const free = (b: Box) => b[0] >= 0 && b[2] <= W && b[1] >= 0 && !placed.some((o) => b[0] < o[2] && o[0] < b[2] && b[1] < o[3] && o[1] < b[3]);
  const spots: [number, number, string][] = [[6, -6, "start"], [6, 14, "start"], [-6, -6, "end"], [-6, 14, "end"]];
  for (let k = 1; k <= 4; k++) spots.push([6, -6 - k * LINE, "start"]);
  for (const [dx, dy, anchor] of spots) {
    const lx = x + dx, ly = y + dy;
    const box: Box = anchor === "start" ? [lx, ly - LINE + 3, lx + w, ly + 3] : [lx - w, ly - LINE + 3, lx, ly + 3];
    if (free(box)) {
      placed.push(box);
      return { x: lx, y: ly, anchor };
    }
  }
  return { x: x + 6, y: y - 6, anchor: "start" };
}

export interface XYSeries {
  points: [number, number][];
  kind: "dots" | "line";
  cls: string; // styled in style.css (colours follow the theme)
  r?: number;
  fills?: string[]; // a colour per point (overrides the class's fill)
  titles?: string[]; // a tooltip per point
  labels?: string[]; // text drawn next to each point
  onPick?: (i: number) => void; // a click (or Enter / Space on a focused point) picks point i
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Axes with ticks, then each series; `fmt` writes tick labels (e.g. as percentages). */
export function xyPlot(x: string, y: string, series: XYSeries[], fmt: (v: number) => string = (v) => String(v)): SVGSVGElement {
  const all = series.flatMap((s) => s.points).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (!all.length) [x0, x1, y0, y1] = [0, 1, 0, 1];
  const padX = (x1 - x0) * 0.04 || 1e-3, padY = (y1 - y0) * 0.06 || 1e-3;
  [x0, x1, y0, y1] = [x0 - padX, x1 + padX, y0 - padY, y1 + padY];
  const yTicks = ticks(y0, y1);
  const left = Math.max(L, 24 + CHAR * Math.max(...yTicks.map((v) => fmt(v).length))); // the widest tick label clears the axis name
  const sx = (v: number) => left + ((v - x0) / (x1 - x0)) * (W - left - R);
  const sy = (v: number) => H - B - ((v - y0) / (y1 - y0)) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "xy", role: "img", "aria-label": `${y} against ${x}`, "data-points": all.length });
  const axes = svg("g", { class: "axes" });
  for (const v of ticks(x0, x1)) axes.append(svg("line", { x1: sx(v), x2: sx(v), y1: T, y2: H - B, class: "gridline" }),
    svg("text", { x: sx(v), y: H - B + 14, "text-anchor": "middle" }, fmt(v)));
  for (const v of yTicks) axes.append(svg("line", { x1: left, x2: W - R, y1: sy(v), y2: sy(v), class: "gridline" }),
    svg("text", { x: left - 4, y: sy(v) + 4, "text-anchor": "end" }, fmt(v)));
  axes.append(svg("text", { x: (left + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "axis-name" }, x),
    svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", class: "axis-name", transform: `rotate(-90 12 ${(T + H - B) / 2})` }, y));
  root.append(axes);
  const placed: Box[] = [];
  for (const s of series) {
    const pts = s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    if (s.kind === "line") {
      root.append(svg("polyline", { class: s.cls, fill: "none", points: pts.map(([a, b]) => `${sx(a).toFixed(1)},${sy(b).toFixed(1)}`).join(" ") }));
      continue;
    }
    const g = svg("g", { class: s.cls });
    pts.forEach(([a, b], i) => {
      const dot = svg("circle", { cx: sx(a).toFixed(1), cy: sy(b).toFixed(1), r: s.r ?? 2.5 }, ...(s.titles?.[i] ? [svg("title", {}, s.titles[i])] : []));
      if (s.fills?.[i]) dot.setAttribute("fill", s.fills[i]);
      if (s.onPick) {
        const pick = s.onPick;
        for (const [k, v] of Object.entries({ class: "pick", tabindex: 0, role: "button", "data-point": i, "aria-label": s.titles?.[i] ?? `point ${i}` })) dot.setAttribute(k, String(v));
        dot.addEventListener("click", () => pick(i));
        dot.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(i); } });
      }
      g.append(dot);
      const label = s.labels?.[i];
      if (label) {
        const at = placeLabel(sx(a), sy(b), label, placed);
        g.append(svg("text", { x: at.x, y: at.y, "text-anchor": at.anchor, class: "point-label" }, label));
      }
    });
    root.append(g);
  }
  return root;
}
