// A virtualised table: only the rows in view are in the document, so thousands stay smooth;
// sorting by any column, a text filter and grouping by a column.

import { Disposer, fill, h, placeholder } from "./dom";

export interface Column<T> {
  key: string;
  title: string;
  value: (row: T) => string | number; // what sorting, filtering and grouping read
  render?: (row: T) => Node | string; // what the cell shows (default: value)
  num?: boolean;
}

const ROW = 30; // px, fixed so the window of rows is arithmetic

export class VirtualTable<T> {
  readonly el: HTMLElement;
  private viewport: HTMLElement;
  private spacer: HTMLElement;
  private body: HTMLElement;
  private rows: T[] = [];
  private view: ({ group: string; count: number } | T)[] = [];
  private sortKey: string;
  private sortDir = -1;
  private filter = "";
  private groupBy = "";
  private countEl = h("span", { class: "muted", "data-testid": "vt-count" });

  constructor(private columns: Column<T>[], d: Disposer, private rowActions?: (row: T) => Node | null, defaultSort?: string) {
    this.sortKey = defaultSort ?? columns[0].key;
    const search = h("input", { type: "search", placeholder: "Filter…", "aria-label": "filter rows", "data-testid": "vt-filter" });
    search.addEventListener("input", () => { this.filter = search.value.trim().toLowerCase(); this.viewport.scrollTop = 0; this.refresh(); });
    const group = h("select", { "aria-label": "group by", "data-testid": "vt-group" }, h("option", { value: "" }, "No grouping"),
      ...columns.map((c) => h("option", { value: c.key }, `Group by ${c.title.toLowerCase()}`)));
    group.addEventListener("change", () => { this.groupBy = group.value; this.viewport.scrollTop = 0; this.refresh(); });
    const cols = this.template();
    const head = h("div", { class: "vt-head", role: "row", style: `grid-template-columns:${cols}` },
      ...columns.map((c) => h("button", { type: "button", role: "columnheader", class: c.num ? "num" : "", "data-key": c.key,
        onclick: () => { this.sortDir = this.sortKey === c.key ? -this.sortDir : -1; this.sortKey = c.key; this.refresh(); } }, c.title)),
      rowActions ? h("span", {}) : null);
    this.spacer = h("div", { class: "vt-spacer" });
    this.body = h("div", { class: "vt-rows", role: "rowgroup" });
    this.viewport = h("div", { class: "vt-viewport", tabindex: 0, "data-testid": "vt-viewport" }, this.spacer, this.body);
    this.viewport.addEventListener("scroll", () => this.paint(), { passive: true });
    const ro = new ResizeObserver(() => this.paint());
    ro.observe(this.viewport);
    d.add(() => ro.disconnect());
    this.el = h("div", { class: "vtable", role: "table" }, h("div", { class: "toolbar" }, search, group, this.countEl), head, this.viewport);
  }

  private template(): string {
    return this.columns.map((c) => (c.num ? "minmax(80px,1fr)" : "minmax(90px,1.2fr)")).join(" ") + (this.rowActions ? " 90px" : "");
  }

  setRows(rows: T[]): void {
    this.rows = rows;
    this.refresh();
  }

  private refresh(): void {
    const col = this.columns.find((c) => c.key === this.sortKey) ?? this.columns[0];
    let rows = this.filter
      ? this.rows.filter((r) => this.columns.some((c) => String(c.value(r)).toLowerCase().includes(this.filter)))
      : [...this.rows];
    const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
    rows.sort((a, b) => this.sortDir * cmp(col.value(a), col.value(b)));
    const g = this.columns.find((c) => c.key === this.groupBy);
    if (g) {
      const groups = new Map<string, T[]>();
      for (const r of rows) {
        const k = String(g.value(r));
        groups.set(k, [...(groups.get(k) ?? []), r]);
      }
      this.view = [...groups.entries()].sort(([a], [b]) => cmp(a, b)).flatMap(([k, rs]) => [{ group: `${g.title}: ${k}`, count: rs.length }, ...rs]);
    } else this.view = rows;
    this.countEl.textContent = `${rows.length} of ${this.rows.length} rows`;
    for (const b of this.el.querySelectorAll<HTMLElement>(".vt-head button")) {
      b.dataset.sort = b.dataset.key === this.sortKey ? (this.sortDir > 0 ? "asc" : "desc") : "";
    }
    this.spacer.style.height = `${this.view.length * ROW}px`;
    this.paint();
  }

  private paint(): void {
    if (!this.view.length) {
      fill(this.body, placeholder("empty", this.rows.length ? "No row matches the filter." : "Nothing yet."));
      this.body.style.transform = "";
      return;
    }
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / ROW) - 5);
    const count = Math.ceil((this.viewport.clientHeight || 400) / ROW) + 10;
    const cols = this.template();
    const slice = this.view.slice(first, first + count);
    this.body.style.transform = `translateY(${first * ROW}px)`;
    fill(this.body, ...slice.map((r) => {
      if (typeof r === "object" && r !== null && "group" in r && "count" in r && !Array.isArray(r)) {
        const g = r as { group: string; count: number };
        return h("div", { class: "vt-group", role: "row" }, `${g.group} (${g.count})`);
      }
      const row = r as T;
      return h("div", { class: "vt-row", role: "row", style: `grid-template-columns:${cols}` },
        ...this.columns.map((c) => h("span", { role: "cell", class: c.num ? "num" : "" }, c.render ? c.render(row) : String(c.value(row)))),
        this.rowActions ? h("span", { role: "cell" }, this.rowActions(row)) : null);
    }));
  }
}
