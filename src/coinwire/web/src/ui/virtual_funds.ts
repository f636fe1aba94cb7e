// Virtual deposits and withdrawals on paper accounts (`add_virtual_wallet_tx`), confirmed in the modal.

import type { App } from "../app";
import type { Account, Wallet } from "../api/types";
import * as D from "../decimal";
import * as fmt from "../format";
import { fill, h, placeholder } from "./dom";

type Kind = "deposit" | "withdraw";

/**
 * The paper accounts virtual funds may go to: the shown account, else the user's own ones.
 * (Admins may mint on anyone's: they choose that account in the header first, so the form
 * never lists every user's accounts.)
 */
function paperAccounts(app: App): Account[] {
  const chosen = app.accounts.chosen.value;
  const paper = (a: Account) => a.active && a.kind === "paper" && app.exchanges.value.some((e) => e.exchange === a.exchange && e.mode === "paper");
  if (chosen) return paper(chosen) && (chosen.role === "owner" || chosen.role === "admin") ? [chosen] : [];
  return app.accounts.list.value.filter((a) => paper(a) && a.role === "owner");
}

/**
 * The form: paper account, currency, amount, deposit or withdraw. Money moves in and out of the
 * account's unallocated funds; the server refuses a withdrawal above what is available there,
 * and its words are shown as they come. `refresh()`: funds may have moved, read them again.
 */
export function virtualFundsForm(app: App, done: () => void): { el: HTMLElement; refresh: () => void } {
  const accounts = paperAccounts(app);
  const card = h("section", { class: "card", "data-testid": "virtual-funds" }, h("h3", {}, "Virtual deposit or withdrawal (paper accounts)"));
  if (!accounts.length) {
    const chosen = app.accounts.chosen.value;
    card.append(placeholder("empty", chosen ? `Account ${chosen.name} is not a paper account of yours: virtual funds exist only on paper accounts.`
      : "No paper account: virtual funds exist only on paper accounts."));
    return { el: card, refresh: () => undefined };
  }
  const account = h("select", { name: "account" }, ...accounts.map((a) =>
    h("option", { value: String(a.id) }, `${app.accounts.label(a)} · ${a.exchange}`)));
  const currency = h("select", { name: "currency" });
  const amount = h("input", { name: "amount", inputmode: "decimal", placeholder: "0.0", autocomplete: "off" });
  const hint = h("span", { class: "muted", "data-testid": "virtual-available" });
  const error = h("p", { class: "error", role: "alert", "data-testid": "virtual-error" });
  let kind: Kind = "deposit";
  let unallocated: { account: number; wallets: Wallet[] } | null = null; // the chosen account's, as last read
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "virtual-submit" }, "Deposit");
  const kinds = (["deposit", "withdraw"] as Kind[]).map((k) =>
    h("button", { type: "button", "data-kind": k, "aria-pressed": k === kind, class: k === kind ? "on" : "",
      onclick: () => { kind = k; update(); } }, k === "deposit" ? "Deposit" : "Withdraw"));
  const picked = () => accounts.find((a) => String(a.id) === account.value) ?? accounts[0];
  const update = () => {
    for (const b of kinds) {
      const on = b.dataset.kind === kind;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", String(on));
    }
    submit.textContent = kind === "deposit" ? "Deposit" : "Withdraw";
    const a = picked();
    if (unallocated?.account !== a.id) return void (hint.textContent = "unallocated: …");
    const w = unallocated.wallets.find((u) => u.currency === currency.value);
    hint.textContent = `unallocated: ${fmt.amount(w?.available ?? "0", currency.value)} ${currency.value} available`;
  };
  let reads = 0;
  const read = async () => {
    const a = picked(), mine = ++reads;
    try {
      const per = await app.rpc.call<Record<string, Wallet[]>>("get_unallocated_per_exchange", { account: a.id });
      if (mine === reads) unallocated = { account: a.id, wallets: per[a.exchange] ?? [] };
    } catch (e) {
      if (mine === reads) hint.textContent = `unallocated: ${(e as Error).message}`;
      return;
    }
    if (mine === reads) update();
  };
  const currencies = () => {
    const a = picked();
    const ex = app.exchanges.value.find((e) => e.exchange === a.exchange);
    const keep = currency.value;
    fill(currency, ...(ex?.currencies ?? []).map((c) => h("option", { value: c, selected: c === keep }, c)));
    update();
    void read();
  };
  account.addEventListener("change", currencies);
  currency.addEventListener("change", update);
  currencies();

  const form = h("form", { "aria-label": "virtual deposit or withdrawal" },
    h("div", { class: "virtual-tx" },
      h("label", {}, "Account", account),
      h("label", {}, "Currency", currency),
      h("label", {}, "Amount", amount),
      h("div", { class: "seg", role: "group", "aria-label": "deposit or withdraw" }, ...kinds)),
    h("div", { class: "row" }, submit, hint), error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const text = amount.value.trim();
    const value = D.parse(text);
    if (!value || value.units <= 0n) return void (error.textContent = "Enter an amount greater than 0, e.g. 1000 or 0.5.");
    const a = picked();
    const [cur, verb, where] = [currency.value, kind === "deposit" ? "Deposit" : "Withdraw", a.name === a.exchange ? a.exchange : `${a.name} (${a.exchange})`];
    const body = kind === "deposit"
      ? `${text} ${cur} is credited to the unallocated funds of paper account ${where}, out of thin air.`
      : `${text} ${cur} is taken out of the unallocated funds of paper account ${where}.`;
    if (!(await app.confirm(`${verb} ${text} ${cur} on ${where}?`, body, verb))) return;
    try {
      await app.rpc.call("add_virtual_wallet_tx", { exchange: a.exchange, account: a.id, currency: cur, movement: kind === "deposit" ? text : `-${text}` });
      app.toast(`${kind === "deposit" ? "Deposited" : "Withdrew"} ${text} ${cur} on ${where}.`);
      amount.value = "";
      done();
    } catch (err) {
      error.textContent = (err as Error).message;
    }
  });
  card.append(form);
  return { el: card, refresh: () => void read() };
}
