// A tiny element builder and observable value: the dashboard needs no framework.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

/** h("button", {class: "x", onclick: fn}, "label"): an element with attributes, listeners and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("aria-") && typeof value === "boolean") {
      el.setAttribute(key, String(value)); // aria states are the words "true" / "false"
      continue;
    }
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value as EventListener);
    else if (key === "style") el.style.cssText = String(value); // CSSOM: allowed by the strict CSP, unlike the attribute
    else if (key === "value" && "value" in el) (el as HTMLInputElement).value = String(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children.flat());
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replace an element's children. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children.flat());
}

/** A value that tells its watchers when it changes. */
export class Signal<T> {
  private watchers = new Set<(v: T) => void>();
  constructor(private current: T) {}
  get value(): T {
    return this.current;
  }
  set(v: T): void {
    this.current = v;
    for (const w of [...this.watchers]) w(v);
  }
  /** Call `fn` now and on every change; returns the function that stops watching. */
  watch(fn: (v: T) => void): () => void {
    this.watchers.add(fn);
    fn(this.current);
    return () => this.watchers.delete(fn);
  }
}

/** Collects what a page must undo when it is left (timers, subscriptions, listeners). */
export class Disposer {
  private fns: (() => void)[] = [];
  add(fn: () => unknown): void {
    this.fns.push(() => void fn());
  }
  every(ms: number, fn: () => void): void {
    const id = window.setInterval(fn, ms);
    this.add(() => window.clearInterval(id));
  }
  dispose(): void {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        fn();
      } catch (err) {
        console.warn("dispose failed", err);
      }
    }
  }
}

/** The loading / empty / error placeholder every panel shows before its data. */
export function placeholder(kind: "loading" | "empty" | "error", text: string): HTMLElement {
  return h("div", { class: `placeholder ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** `root` drawn from scratch by `draw` now and whenever it calls its `redraw`, each time with a fresh disposer. */
export function redrawable(root: HTMLElement, d: Disposer, draw: (inner: Disposer, redraw: () => void) => void): HTMLElement {
  let inner = new Disposer();
  d.add(() => inner.dispose());
  const redraw = () => {
    inner.dispose();
    inner = new Disposer();
    draw(inner, redraw);
  };
  redraw();
  return root;
}
