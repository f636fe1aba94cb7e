// Entry point: the shell (navigation, connection state, user), sign-in gate and page switching.

import "./style.css";
import { App } from "./app";
import { interceptLinks, match, navigate, type Route } from "./router";
import { Disposer, fill, h, placeholder } from "./ui/dom";
import { loginPage } from "./pages/login";
import { marketsPage } from "./pages/markets";
import { tradePage } from "./pages/trade";
import { positionsPage } from "./pages/positions";
import { walletsPage } from "./pages/wallets";
import { runsPage, runPage } from "./pages/runs";
import { overviewPage } from "./pages/overview";
import { exchangesPage } from "./pages/exchanges";
import { preferencesPage } from "./pages/preferences";
import { logsPage } from "./pages/logs";
import { adminPage } from "./pages/admin";
import { schedulesPage } from "./pages/schedules";
import { rulesPage } from "./pages/rules";
import { notificationsPage } from "./pages/notifications";
import { portfolioPage } from "./pages/portfolio";
import { importingPage } from "./pages/importing";
import { externalPage } from "./pages/external";
import { prefs, setPrefs } from "./prefs";
import { accountSwitcher } from "./ui/account_switcher";

const routes: Route[] = [
  { path: "/app/overview", title: "Overview", page: overviewPage, nav: true },
  { path: "/app/portfolio", title: "Portfolio", page: portfolioPage, nav: true },
  { path: "/app/importing", title: "Import", page: importingPage, needs: ["read", "account"] },
  { path: "/app/importing/:id", title: "Import", page: importingPage, needs: ["read", "account"] },
  { path: "/app/external", title: "External", page: externalPage, needs: ["read", "account"] },
  { path: "/app/markets", title: "Markets", page: marketsPage, nav: true, needs: ["read", "market"] },
  { path: "/app/trade", title: "Trade", page: tradePage, nav: true, needs: ["read", "order"] },
  { path: "/app/positions", title: "Positions", page: positionsPage, nav: true, needs: ["read", "order"] },
  { path: "/app/wallets", title: "Wallets", page: walletsPage, nav: true, needs: ["read", "wallet_set"] },
  { path: "/app/runs", title: "Runs", page: runsPage, nav: true, needs: ["read", "run"] },
  { path: "/app/runs/:id", title: "Run", page: runPage, needs: ["read", "run"] },
  { path: "/app/exchanges", title: "Exchanges", page: exchangesPage, nav: true, needs: ["read", "market"] },
  { path: "/app/rules", title: "Rules", page: rulesPage, nav: true, needs: ["read", "rule_set"] },
  { path: "/app/schedules", title: "Schedules", page: schedulesPage, nav: true },
  { path: "/app/notifications", title: "Notifications", page: notificationsPage, nav: true },
  { path: "/app/logs", title: "Logs", page: logsPage, nav: true, needs: ["read", "self"] },
  { path: "/app/preferences", title: "Preferences", page: preferencesPage, nav: true },
  { path: "/app/admin", title: "Admin", page: adminPage, nav: true, needs: ["admin", "settings"] },
];

const app = new App();
const root = document.getElementById("app")!;
let current = new Disposer();
let started = false;

function shell(): { main: HTMLElement } {
  const user = app.abilities.value!.user;
  const status = h("span", { class: "conn", "data-testid": "conn", title: "live connection" });
  current.add(app.rpc.state.watch((s) => {
    status.className = `conn ${s}`;
    status.textContent = s === "open" ? "live" : s === "connecting" ? "reconnecting…" : "offline";
  }));
  const links = routes
    .filter((r) => r.nav && (!r.needs || app.can(...r.needs)))
    .map((r) => h("a", { href: r.path, "data-link": true, class: location.pathname.startsWith(r.path) ? "active" : "" }, r.title));
  const menu = h("button", { type: "button", class: "menu ghost", "aria-label": "menu", onclick: () => nav.classList.toggle("open") }, "☰");
  const nav = h("nav", { "aria-label": "pages" }, ...links);
  const main = h("main", { id: "page" });
  const maskBtn = h("button", { type: "button", class: "ghost", "data-testid": "mask-toggle", title: "hide sizes and balances", onclick: () => toggle("mask") });
  const themeBtn = h("button", { type: "button", class: "ghost", "data-testid": "theme-toggle", title: "light / dark", onclick: () => toggle("theme") });
  current.add(prefs.watch((p) => {
    maskBtn.textContent = p.mask ? "◉ masked" : "◎ mask";
    themeBtn.textContent = p.theme === "dark" ? "☾" : "☀";
  }));
  const header = h(
    "header",
    {},
    menu,
    h("a", { href: "/app/overview", "data-link": true, class: "brand" }, "coinwire"),
    nav,
    app.can("read", "account") ? accountSwitcher(app, current) : null,
    h("div", { class: "who" }, status, maskBtn, themeBtn,
      h("span", { class: "user", "data-testid": "user" }, `${user.username} · ${user.role}`),
      h("button", { type: "button", class: "ghost", "data-testid": "sign-out", onclick: () => void app.session.logout() }, "Sign out")),
  );
  fill(root, header, main);
  return { main };
}

function toggle(which: "mask" | "theme"): void {
  if (which === "mask") setPrefs({ mask: !prefs.value.mask });
  else setPrefs({ theme: prefs.value.theme === "dark" ? "light" : "dark" });
}

function render(): void {
  current.dispose();
  current = new Disposer();
  if (!app.session.signedIn) {
    if (started) {
      app.end();
      started = false;
    }
    if (location.pathname !== "/app/login") history.replaceState(null, "", "/app/login?next=" + encodeURIComponent(location.pathname));
    document.title = "Sign in · coinwire";
    fill(root, loginPage(app, current));
    return;
  }
  if (!started) {
    started = true;
    fill(root, placeholder("loading", "Loading…"));
    app.begin().then(render, (e: Error) => {
      started = false;
      if (!app.session.signedIn) return render(); // the server ended the session: sign in, with its reason
      fill(root, placeholder("error", `Cannot load the dashboard: ${e.message}`),
        h("button", { type: "button", onclick: () => render() }, "Retry"));
    });
    return;
  }
  if (!app.abilities.value) return;
  if (location.pathname === "/" || location.pathname === "/app/" || location.pathname === "/app/login") {
    const next = new URLSearchParams(location.search).get("next");
    history.replaceState(null, "", next && next.startsWith("/app/") && next !== "/app/login" ? next : "/app/overview");
  }
  const { main } = shell();
  const found = match(routes, location.pathname);
  if (!found) {
    fill(main, placeholder("empty", `No page at ${location.pathname}.`), h("a", { href: "/app/overview", "data-link": true }, "Go to the overview"));
    return;
  }
  document.title = `${found.route.title} · coinwire`;
  if (found.route.needs && !app.can(...found.route.needs)) {
    fill(main, placeholder("error", `Your role (${app.abilities.value.user.role}) may not see ${found.route.title}.`));
    return;
  }
  try {
    fill(main, found.route.page(app, found.params, current));
  } catch (e) {
    console.error(e);
    fill(main, placeholder("error", `This page failed: ${(e as Error).message}`));
  }
}

interceptLinks();
window.addEventListener("popstate", render);
let wasSignedIn = app.session.signedIn;
app.session.tokens.watch((t) => {
  const now = t !== null;
  if (now !== wasSignedIn) {
    wasSignedIn = now;
    render();
  }
});
// another account chosen: the page is drawn again for it (every page reads its account when it is drawn)
let shown = app.accounts.chosen.value?.id;
app.accounts.chosen.watch((a) => {
  if (a?.id === shown) return;
  shown = a?.id;
  if (app.abilities.value) render();
});
render();
export { navigate };
