// Client-side routes under /app/ (the server answers index.html for every /app/... path).

import type { App } from "./app";
import { Disposer } from "./ui/dom";

export type PageFn = (app: App, params: Record<string, string>, d: Disposer) => HTMLElement;

export interface Route {
  path: string; // "/app/runs/:id"
  title: string;
  page: PageFn;
  nav?: boolean; // shown in the navigation bar
  needs?: [string, string]; // an ability (action, subject) the page needs
}

export function match(routes: Route[], pathname: string): { route: Route; params: Record<string, string> } | null {
  const parts = pathname.replace(/\/+$/, "").split("/");
  for (const route of routes) {
    const want = route.path.split("/");
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    if (want.every((w, i) => (w.startsWith(":") ? ((params[w.slice(1)] = decodeURIComponent(parts[i])), true) : w === parts[i]))) {
      return { route, params };
    }
  }
  return null;
}

export function navigate(path: string): void {
  if (location.pathname + location.search === path) return;
  history.pushState(null, "", path);
  window.dispatchEvent(new Event("popstate"));
}

/** Links with data-link navigate without reloading. */
export function interceptLinks(): void {
  document.addEventListener("click", (e) => {
    const a = (e.target as Element).closest?.("a[data-link]") as HTMLAnchorElement | null;
    if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(a.getAttribute("href")!);
  });
}
