// Virtual deposits and withdrawals on paper exchanges (admins: `add_virtual_wallet_tx`), confirmed in the modal.

import type { App } from "../app";
import type { Wallet } from "../api/types";
import * as D from "../decimal";
import * as fmt from "../format";
import { fill, h, placeholder } from "./dom";

type Kind = "deposit" | "withdraw";

/**
 * The form: paper exchange, currency, amount, deposit or withdraw. Money moves in and out of the
 * exchange's unallocated funds; the server refuses a withdrawal above what is available there,
 * and its words are shown as they come. `unallocated()` is the page's latest view of those funds.
 */
export function virtualFundsForm(app: App, unallocated: () => Wallet[], done: () => void): { el: HTMLElement; refresh: () => void } {
  const paper = app.exchanges.value.filter((e) => e.mode === "paper");
  const card = h("section", { class: "card", "data-testid": "virtual-funds" }, h("h3", {}, "Virtual deposit or withdrawal (paper exchanges)"));
  if (!paper.length) {
    card.append(placeholder("empty", "No paper exchange: virtual funds exist only on paper exchanges."));
    return { el: card, refresh: () => undefined };
  }
  const exchange = h("select", { name: "exchange" }, ...paper.map((e) => h("option", { value: e.exchange }, e.exchange)));
  const currency = h("select", { name: "currency" });
  const amount = h("input", { name: "amount", inputmode: "decimal", placeholder: "0.0", autocomplete: "off" });
  const hint = h("span", { class: "muted", "data-testid": "virtual-available" });
  const error = h("p", { class: "error", role: "alert", "data-testid": "virtual-error" });
  let kind: Kind = "deposit";
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "virtual-submit" }, "Deposit");
  const kinds = (["deposit", "withdraw"] as Kind[]).map((k) =>
    h("button", { type: "button", "data-kind": k, "aria-pressed": k === kind, class: k === kind ? "on" : "",
      onclick: () => { kind = k; update(); } }, k === "deposit" ? "Deposit" : "Withdraw"));
  const update = () => {
    for (const b of kinds) {
      const on = b.dataset.kind === kind;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", String(on));
    }
    submit.textContent = kind === "deposit" ? "Deposit" : "Withdraw";
    const w = unallocated().find((u) => u.exchange === exchange.value && u.currency === currency.value);
    hint.textContent = `unallocated: ${fmt.amount(w?.available ?? "0", currency.value)} ${currency.value} available`;
  };
  const currencies = () => {
    const ex = paper.find((e) => e.exchange === exchange.value) ?? paper[0];
    const keep = currency.value;
    fill(currency, ...ex.currencies.map((c) => h("option", { value: c, selected: c === keep }, c)));
    update();
  };
  exchange.addEventListener("change", currencies);
  currency.addEventListener("change", update);
  currencies();

  const form = h("form", { "aria-label": "virtual deposit or withdrawal" },
    h("div", { class: "virtual-tx" },
      h("label", {}, "Exchange", exchange),
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
    const [ex, cur, verb] = [exchange.value, currency.value, kind === "deposit" ? "Deposit" : "Withdraw"];
    const body = kind === "deposit"
      ? `${text} ${cur} is credited to the unallocated funds of paper exchange ${ex}, out of thin air.`
      : `${text} ${cur} is taken out of the unallocated funds of paper exchange ${ex}.`;
    if (!(await app.confirm(`${verb} ${text} ${cur} on ${ex}?`, body, verb))) return;
    try {
      await app.rpc.call("add_virtual_wallet_tx", { exchange: ex, currency: cur, movement: kind === "deposit" ? text : `-${text}` });
      app.toast(`${kind === "deposit" ? "Deposited" : "Withdrew"} ${text} ${cur} on ${ex}.`);
      amount.value = "";
      done();
    } catch (err) {
      error.textContent = (err as Error).message;
    }
  });
  card.append(form);
  return { el: card, refresh: update };
}
