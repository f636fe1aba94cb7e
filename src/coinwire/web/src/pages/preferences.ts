// Preferences: currency, decimals for crypto and stablecoins, balance masking, theme (kept in this browser).

import type { App } from "../app";
import { prefs, setPrefs } from "../prefs";
import { Disposer, h } from "../ui/dom";

export function preferencesPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const p = prefs.value;
  const currency = h("select", { name: "currency" }, ...["USD", "EUR", "GBP", "CHF", "JPY"].map((c) => h("option", { value: c, selected: c === p.currency }, c)));
  const crypto = h("input", { type: "number", name: "crypto", min: 0, max: 12, value: p.cryptoDecimals });
  const stable = h("input", { type: "number", name: "stable", min: 0, max: 8, value: p.stableDecimals });
  const mask = h("input", { type: "checkbox", name: "mask", checked: p.mask });
  const theme = h("select", { name: "theme" }, h("option", { value: "dark", selected: p.theme === "dark" }, "Dark"), h("option", { value: "light", selected: p.theme === "light" }, "Light"));
  const note = h("p", { class: "muted", "data-testid": "fx-note" });
  d.add(app.fx.watch((fx) => (note.textContent = fx.note)));
  const clamp = (v: string, hi: number) => Math.max(0, Math.min(hi, Math.round(Number(v) || 0)));
  currency.addEventListener("change", () => setPrefs({ currency: currency.value }));
  crypto.addEventListener("change", () => setPrefs({ cryptoDecimals: clamp(crypto.value, 12) }));
  stable.addEventListener("change", () => setPrefs({ stableDecimals: clamp(stable.value, 8) }));
  mask.addEventListener("change", () => setPrefs({ mask: mask.checked }));
  theme.addEventListener("change", () => setPrefs({ theme: theme.value as "dark" | "light" }));
  d.add(prefs.watch((now) => { mask.checked = now.mask; theme.value = now.theme; }));
  return h("div", { class: "page" }, h("form", { class: "card prefs", "aria-label": "preferences" },
    h("h3", {}, "Preferences"),
    h("label", {}, "Show values in", currency), note,
    h("label", {}, "Decimals for crypto amounts", crypto),
    h("label", {}, "Decimals for stablecoins and fiat", stable),
    h("label", { class: "check" }, mask, "Mask sizes and balances (for sharing screenshots)"),
    h("label", {}, "Theme", theme)));
}
