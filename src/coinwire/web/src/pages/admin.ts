// Admin: the runtime settings (self-registration and the role it gives) and the users, admins only.

import type { App } from "../app";
import type { SiteSettings, User } from "../api/types";
import { time } from "../format";
import { Disposer, fill, h, placeholder } from "../ui/dom";

const PATH = "/api/v1/admin/settings";

export function adminPage(app: App, _p: Record<string, string>, _d: Disposer): HTMLElement {
  const users = h("section", { class: "card", "data-testid": "users" }, h("h3", {}, "Users"), placeholder("loading", "Loading users…"));
  const loadUsers = (): void => {
    app.http.get<User[]>("/api/v1/users").then(
      (list) => fill(users, h("h3", {}, `Users (${list.length})`), usersTable(list)),
      (e: Error) => fill(users, h("h3", {}, "Users"), placeholder("error", `Users could not be read: ${e.message}`)),
    );
  };
  loadUsers();
  return h("div", { class: "page admin" }, registrationCard(app, loadUsers), users);
}

function registrationCard(app: App, changed: () => void): HTMLElement {
  const open = h("input", { type: "checkbox", name: "self_registration", "data-testid": "self-registration", disabled: true });
  const role = h("select", { name: "registration_role", "data-testid": "registration-role", disabled: true },
    h("option", { value: "viewer" }, "Viewer: looks at markets, nothing more"),
    h("option", { value: "trader" }, "Trader: places orders and runs strategies"));
  const state = h("p", { class: "state", "data-testid": "registration-state" });
  const warning = h("p", { class: "warning", role: "note" });
  let current: SiteSettings | null = null;

  const show = (s: SiteSettings): void => {
    current = s;
    open.checked = s.self_registration;
    role.value = s.registration_role;
    open.disabled = role.disabled = false;
    state.textContent = s.self_registration
      ? `Open: the sign-in page offers “Create an account”; new accounts are ${s.registration_role}s on the free plan.`
      : "Closed: only admins create accounts (here with POST /api/v1/users, or coinwire user add).";
    state.className = `state ${s.self_registration ? "open" : "closed"}`;
    warning.textContent = s.registration_role !== "trader" ? ""
      : "Traders get their own paper accounts and start strategies (a live account only through your grant): give this role to strangers only on a server meant for it.";
  };
  const load = (): void => void app.http.get<SiteSettings>(PATH).then(show, (e: Error) => fill(state, `Settings could not be read: ${e.message}`));

  const send = async (change: Partial<SiteSettings>): Promise<void> => {
    const next = { ...current!, ...change };
    if (next.self_registration && (change.self_registration || change.registration_role === "trader")) {
      const body = h("div", {}, h("p", {}, `Anyone who can reach this server will be able to create a ${next.registration_role} account.`),
        h("p", { class: "muted" }, "Sign-ups are limited per address and audit-logged; you can close it again at any time."));
      if (!(await app.confirm("Open self-registration?", body, "Open"))) return show(current!);
    }
    open.disabled = role.disabled = true;
    try {
      show(await app.http.put<SiteSettings>(PATH, change));
      app.toast(next.self_registration ? "Self-registration is open." : "Self-registration is closed.");
      changed();
    } catch (e) {
      app.toast((e as Error).message, "error");
      load();
    }
  };
  open.addEventListener("change", () => void send({ self_registration: open.checked }));
  role.addEventListener("change", () => void send({ registration_role: role.value as SiteSettings["registration_role"] }));
  load();
  return h("section", { class: "card settings", "aria-label": "self-registration" },
    h("h3", {}, "Self-registration"),
    h("label", { class: "check" }, open, "Anyone who reaches this server may create an account"),
    h("label", {}, "Role of new accounts", role),
    state, warning);
}

function usersTable(list: User[]): HTMLElement {
  if (!list.length) return placeholder("empty", "No users.");
  return h("div", { class: "table-wrap" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ...["User", "Role", "Plan", "Status", "Created"].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...list.map((u) => h("tr", { "data-testid": "user-row" },
      h("td", {}, u.username), h("td", {}, u.role), h("td", {}, u.plan),
      h("td", {}, h("span", { class: `badge ${u.disabled ? "stopped" : "ready"}` }, u.disabled ? "disabled" : "active")),
      h("td", {}, time(u.created_at)))))));
}
