// External accounts: a bot or exchange coinwire does not trade for, tracked from its trades sent to a signed webhook.
// The webhook's secret is shown once, when the account is made or the secret rotated; the server never shows it again.

import type { App } from "../app";
import type { Account } from "../api/types";
import { parseHoldings, secretOf } from "../portfolio";
import { Disposer, fill, h, placeholder } from "../ui/dom";

function hookUrl(id: number): string {
  return `${location.origin}/api/v1/webhooks/${id}`;
}

/** The secret in a box to copy, with how to sign; gone once dismissed or the page is left. */
function secretOnce(id: number, secret: string, close: () => void): HTMLElement {
  const box = h("input", { readonly: true, value: secret, class: "mono", "aria-label": "webhook secret", "data-testid": "webhook-secret" });
  const copied = h("span", { class: "muted", "aria-live": "polite" });
  return h("div", { class: "secret-once", role: "region", "aria-label": "webhook secret, shown once", "data-testid": "secret-once" },
    h("p", { class: "warning" }, "Copy this secret now: it is shown only this once. Rotate it to get a new one."),
    h("div", { class: "row" }, box,
      h("button", { type: "button", class: "ghost", onclick: () => {
        void navigator.clipboard?.writeText(secret).then(() => (copied.textContent = "copied"), () => (copied.textContent = "select it and copy"));
      } }, "Copy"), copied),
    h("p", {}, "Send each trade to ", h("code", { "data-testid": "webhook-url" }, hookUrl(id)),
      " as a JSON body with the header ", h("code", {}, "X-Coinwire-Signature"),
      ": the hex HMAC-SHA256 of the raw body under this secret. Trades in coinwire's shape or the kripto Trade shape ",
      h("code", {}, "id, side, productId, funds, settled, createdAt, fillFees, filledSize, executedValue"),
      " are accepted once per trade id."),
    h("button", { type: "button", onclick: close, "data-testid": "secret-done" }, "I have stored it"));
}

export function externalPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const list = h("div", { "data-testid": "external-list" });
  const shown = h("div", {});
  const reveal = (id: number, answer: Record<string, unknown>) => {
    const secret = secretOf(answer);
    if (!secret) return void app.toast("The server sent no secret.", "error");
    fill(shown, secretOnce(id, secret, () => fill(shown)));
  };
  d.add(() => fill(shown)); // leaving the page forgets the secret

  const draw = (accounts: Account[]) => {
    const mine = accounts.filter((a) => a.kind === "external");
    fill(list, mine.length ? h("div", { class: "table-wrap" }, h("table", { class: "grid stack" },
      h("thead", {}, h("tr", {}, ...["Account", "Tracks", "Webhook", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...mine.map((a) => h("tr", { "data-testid": "external-row", "data-account": a.id },
        h("td", { "data-label": "Account" }, h("a", { href: `/app/portfolio?scope=account&id=${a.id}`, "data-link": true, title: "its portfolio" }, a.name)),
        h("td", { "data-label": "Tracks" }, a.exchange),
        h("td", { "data-label": "Webhook" }, h("code", { class: "wrap" }, hookUrl(a.id))),
        h("td", {}, a.role === "owner" || a.role === "admin" ? h("button", { type: "button", class: "ghost", "data-action": "rotate", onclick: async () => {
          if (!await app.confirm(`Rotate the secret of ${a.name}?`, "The old secret stops working at once: trades it signs are refused until the sender uses the new one.", "Rotate")) return;
          try {
            reveal(a.id, await app.http.post<Record<string, unknown>>(`/api/v1/accounts/${a.id}/webhook-secret`));
          } catch (e) {
            app.toast((e as Error).message, "error");
          }
        } }, "Rotate secret") : null))))))
      : placeholder("empty", "No external account yet: add one below."));
  };
  d.add(app.accounts.list.watch(draw));

  const name = h("input", { name: "name", "aria-label": "account name", placeholder: "e.g. Cryptohopper main", autocomplete: "off" });
  const tracks = h("input", { name: "exchange", "aria-label": "what it tracks", placeholder: "e.g. cryptohopper", autocomplete: "off" });
  const holdings = h("input", { name: "holdings", "aria-label": "opening holdings", placeholder: "e.g. BTC=0.5, USDT=1000", autocomplete: "off" });
  const error = h("p", { class: "error", role: "alert", "data-testid": "external-error" });
  const submit = h("button", { type: "submit", class: "primary" }, "Add external account");
  const form = h("form", { class: "card", "aria-label": "add an external account", "data-testid": "external-form" },
    h("h3", {}, "Add an external account"),
    h("p", { class: "muted" }, "For a bot or exchange coinwire does not trade for: its holdings follow the trades it sends, and it is tracked like any account."),
    h("div", { class: "form-grid" }, h("label", {}, "Name", name), h("label", {}, "Tracks (bot or exchange)", tracks),
      h("label", {}, "What it holds now (optional)", holdings)),
    error, submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (!name.value.trim()) return void (error.textContent = "Give the account a name.");
    if (!tracks.value.trim()) return void (error.textContent = "Say what it tracks, e.g. cryptohopper.");
    const opening = parseHoldings(holdings.value);
    if (typeof opening === "string") return void (error.textContent = opening);
    submit.disabled = true;
    try {
      const made = await app.http.post<Record<string, unknown> & { id: number }>("/api/v1/accounts",
        { exchange: tracks.value.trim(), kind: "external", name: name.value.trim(), ...(Object.keys(opening).length ? { holdings: opening } : {}) });
      reveal(made.id, made);
      name.value = tracks.value = holdings.value = "";
      await app.accounts.refresh();
    } catch (err) {
      error.textContent = (err as Error).message;
    } finally {
      submit.disabled = false;
    }
  });
  return h("div", { class: "page external" },
    h("section", { class: "card" }, h("h3", {}, "External accounts"), shown, list),
    form);
}
