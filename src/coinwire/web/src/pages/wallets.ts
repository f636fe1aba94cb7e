// Wallets: total, allocated and unallocated funds with present value (of the shown account, or all the
// user may read); virtual paper funds; wallet sets with their balance history; a new set by sliders.

import type { App } from "../app";
import type { Wallet, WalletSet } from "../api/types";
import * as fmt from "../format";
import { accountScope } from "../ui/account_switcher";
import { Allocator } from "../ui/alloc";
import { Disposer, fill, h, placeholder } from "../ui/dom";
import { liveSets, type WalletSets } from "../ui/live_wallet_sets";
import { virtualFundsForm } from "../ui/virtual_funds";
import { BalanceHistory } from "../ui/wallet_history";

type Sets = WalletSets;

export function walletsPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const totals = h("div", { "data-testid": "wallet-totals" }, placeholder("loading", "Loading wallets…"));
  const sets = h("div", { "data-testid": "wallet-sets" }, placeholder("loading", "Loading wallet sets…"));
  const create = h("div", {});
  const histories = new Map<string, BalanceHistory>(); // per set, kept across refreshes (charts, open or closed)
  d.add(() => histories.forEach((hist) => hist.dispose()));
  const moved = () => {
    delete create.dataset.drawn; // the new-set form's bounds changed with the unallocated funds
    void load();
  };
  const virtual = app.can("manage", "account") ? virtualFundsForm(app, moved) : null; // owners: their own paper accounts; admins: any
  const scope = app.accounts.scope();
  let all: Sets | null = null; // the latest answer, with pushed sets put in
  const live = liveSets(app, () => all, d);
  const load = async () => {
    try {
      all = await app.rpc.call<Sets>("get_all_wallet_sets", scope);
      drawTotals(app, totals, all);
      virtual?.refresh();
      drawSets(app, sets, all, load, histories);
      live.shown(all);
      if (app.can("manage", "wallet_set")) void drawCreate(app, create, all.unallocated?.wallets ?? [], load);
    } catch (e) {
      fill(totals, placeholder("error", (e as Error).message));
    }
  };
  live.start({
    set: () => all && drawSets(app, sets, all, load, histories),
    totals: async () => {
      // funds moved (a fill, a set's change): the three sums again, not the sets (those are pushed)
      const [total, allocated, unallocated] = await Promise.all(["total", "allocated", "unallocated"].map((kind) =>
        app.rpc.call<WalletSet>(`get_${kind}_wallet_set`, scope)));
      if (!all) return;
      all = { ...all, total, allocated, unallocated };
      drawTotals(app, totals, all);
    },
    reload: load,
  });
  return h("div", { class: "page wallets" },
    h("section", { class: "card" }, h("h3", {}, "Funds by exchange and currency"), accountScope(app), totals),
    virtual?.el ?? null,
    h("section", { class: "card" }, h("h3", {}, "Wallet sets"), sets),
    create);
}

function key(w: Wallet): string {
  return `${w.exchange}:${w.currency}`;
}

function drawTotals(app: App, el: HTMLElement, all: Sets): void {
  const by = (name: string) => new Map((all[name]?.wallets ?? []).map((w) => [key(w), w]));
  const total = by("total"), allocated = by("allocated"), unallocated = by("unallocated");
  if (!total.size) return fill(el, placeholder("empty", "No funds on any exchange."));
  const { rate, currency, note } = app.fx.value;
  fill(el, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ...["Exchange", "Currency", "Total", "Allocated", "Unallocated", "Hold", `Value (${currency})`].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...[...total.values()].map((w) => h("tr", { "data-wallet": key(w) },
      h("td", {}, w.exchange), h("td", {}, w.currency),
      h("td", { class: "num balance" }, fmt.amount(w.balance, w.currency)),
      h("td", { class: "num" }, fmt.amount(allocated.get(key(w))?.balance ?? "0", w.currency)),
      h("td", { class: "num" }, fmt.amount(unallocated.get(key(w))?.balance ?? "0", w.currency)),
      h("td", { class: "num" }, fmt.amount(w.hold, w.currency)),
      h("td", { class: "num" }, fmt.money(w.present_value?.balance_usd, rate, currency)))))),
    note ? h("p", { class: "muted" }, note) : null);
}

function drawSets(app: App, el: HTMLElement, all: Sets, reload: () => void, histories: Map<string, BalanceHistory>): void {
  const sets = app.accounts.sets(all);
  for (const [id, hist] of histories) {
    if (!sets.some((s) => String(s.id) === id)) {
      hist.dispose();
      histories.delete(id);
    }
  }
  if (!sets.length) return fill(el, placeholder("empty", "No wallet sets yet: create one below to give a run part of the funds."));
  const manage = app.can("manage", "wallet_set");
  const historyOf = (s: WalletSet, i: number): HTMLElement => {
    let hist = histories.get(String(s.id));
    if (!hist) histories.set(String(s.id), (hist = new BalanceHistory(app, Number(s.id), i < 4))); // the first few open
    hist.seen(s.wallets.map((w) => `${key(w)}=${w.balance}`).join(","));
    return hist.el;
  };
  fill(el, ...sets.map((s, i) => h("div", { class: "wallet-set", "data-set": s.id },
    h("div", { class: "row" }, h("strong", {}, `#${s.id} ${s.description}`), s.run_id ? h("span", { class: "muted" }, `run ${s.run_id}`) : null,
      manage ? h("button", { type: "button", class: "ghost danger", onclick: async () => {
        if (!(await app.confirm(`Deactivate wallet set #${s.id}?`, "Its open orders are cancelled and its funds go back to unallocated.", "Deactivate"))) return;
        try {
          await app.rpc.call("deactivate_wallet_set", { set_id: s.id });
          app.toast(`Wallet set #${s.id} deactivated.`);
        } catch (e) {
          app.toast((e as Error).message, "error");
        }
        reload();
      } }, "Deactivate") : null),
    h("ul", { class: "chips" }, ...s.wallets.map((w) => h("li", {}, `${w.currency} ${fmt.amount(w.balance, w.currency)} · ${w.exchange}`))),
    historyOf(s, i))));
}

/**
 * What a new wallet set may take: the unallocated funds of each account the user may trade
 * (the shown one, or all of them), each wallet naming its account, since a set is funded from
 * accounts and the aggregate of several accounts is more than any one of them holds. Without
 * accounts (the user may not list them), the unallocated funds the page read (`fallback`).
 */
async function fundsToAllocate(app: App, fallback: Wallet[]): Promise<{ wallets: Wallet[]; group: ((w: Wallet) => string) | null }> {
  if (!app.can("read", "account")) return { wallets: fallback, group: null };
  const accounts = app.accounts.tradable();
  const per = await Promise.all(accounts.map((a) =>
    app.rpc.call<Record<string, Wallet[]>>("get_unallocated_per_exchange", { account: a.id })
      .then((answer) => (answer[a.exchange] ?? []).map((w) => ({ ...w, account: a.id })))));
  const named = (w: Wallet) => { const a = app.accounts.byId(w.account); return a ? app.accounts.label(a) : app.accounts.short(w.account); };
  return { wallets: per.flat(), group: accounts.length > 1 ? named : null };
}

let drawings = 0; // each drawing of the new-set form; only the latest one is shown

async function drawCreate(app: App, el: HTMLElement, unallocated: Wallet[], reload: () => void): Promise<void> {
  if (el.dataset.drawn) return; // keep the user's slider positions while the page refreshes
  const mine = (el.dataset.drawn = String(++drawings));
  let funds: Awaited<ReturnType<typeof fundsToAllocate>>;
  try {
    funds = await fundsToAllocate(app, unallocated);
  } catch (e) {
    if (el.dataset.drawn !== mine) return;
    delete el.dataset.drawn; // tried again with the page's next refresh
    return fill(el, h("section", { class: "card" }, h("h3", {}, "New wallet set"), placeholder("error", (e as Error).message)));
  }
  if (el.dataset.drawn !== mine) return; // funds moved meanwhile: a later drawing has the new bounds
  const alloc = new Allocator(funds.wallets, undefined, funds.group);
  const description = h("input", { name: "description", placeholder: "what this set is for", "aria-label": "description" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card", "aria-label": "new wallet set", "data-testid": "new-wallet-set" },
    h("h3", {}, "New wallet set"),
    alloc.el,
    h("label", {}, "Description", description), error,
    h("button", { type: "submit", class: "primary" }, "Create wallet set"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const wallets = alloc.chosen();
    const bad = alloc.problem();
    if (bad) return void (error.textContent = bad);
    if (!wallets.length) return void (error.textContent = "Allocate something: move a slider or type an amount.");
    const from = (w: { account?: number }) => (w.account !== undefined && app.accounts.list.value.length > 1 ? `, from ${app.accounts.short(w.account)}` : "");
    const summary = h("ul", {}, ...wallets.map((w) => h("li", {}, `${w.allocation} ${w.currency} on ${w.exchange}${from(w)}`)));
    if (!(await app.confirm("Create this wallet set?", summary, "Create"))) return;
    try {
      const made = await app.rpc.call<{ id: number }>("create_wallet_set", { wallets, description: description.value.trim() || undefined });
      app.toast(`Wallet set #${made.id} created.`);
      delete el.dataset.drawn;
      reload();
    } catch (err) {
      error.textContent = (err as Error).message;
    }
  });
  fill(el, form);
}
