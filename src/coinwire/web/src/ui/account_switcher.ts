// The header's account switcher (accounts grouped by exchange, "All accounts" first) and the line each page shows its account in.

import type { App } from "../app";
import type { Account } from "../api/types";
import { Disposer, fill, h } from "./dom";

const ALL = "";

/** A select of "All accounts" and the user's accounts by exchange; choosing one redraws the page for it (main.ts). */
export function accountSwitcher(app: App, d: Disposer): HTMLElement {
  const select = h("select", { "aria-label": "account", "data-testid": "account-select", title: "the account the pages show" });
  const draw = (list: Account[]) => {
    const byExchange = new Map<string, Account[]>();
    for (const a of list) byExchange.set(a.exchange, [...(byExchange.get(a.exchange) ?? []), a]);
    const chosen = app.accounts.chosen.value?.id;
    fill(select,
      h("option", { value: ALL, selected: chosen === undefined }, `All accounts (${list.length})`),
      ...[...byExchange.entries()].sort(([x], [y]) => x.localeCompare(y)).map(([exchange, accounts]) =>
        h("optgroup", { label: exchange }, ...accounts.map((a) =>
          h("option", { value: String(a.id), selected: a.id === chosen }, `${app.accounts.label(a)}${a.active ? "" : " (closed)"}`)))));
  };
  d.add(app.accounts.list.watch(draw));
  d.add(app.accounts.chosen.watch((a) => { select.value = a ? String(a.id) : ALL; }));
  select.addEventListener("change", () => app.accounts.choose(select.value === ALL ? null : Number(select.value)));
  return h("label", { class: "account-switch" }, h("span", { class: "sr-only" }, "Account"), select);
}

/** "Account: name · kind · exchange" (or "All accounts"), at the top of a page or panel that shows funds or orders. */
export function accountScope(app: App): HTMLElement | null {
  if (!app.can("read", "account")) return null;
  const a = app.accounts.chosen.value;
  if (!a) {
    // what the API answers without an account: for a user, their own and granted accounts; admins choose one to see another user's
    const n = app.accounts.list.value.length;
    const whose = app.abilities.value?.user.role === "admin" ? "" : n === 1 ? " · your account" : ` · your ${n} accounts`;
    return h("p", { class: "scope muted", "data-testid": "account-scope" }, `All accounts${whose}`);
  }
  return h("p", { class: "scope", "data-testid": "account-scope" }, "Account ", h("strong", {}, app.accounts.label(a)), ` · ${a.exchange}`);
}
