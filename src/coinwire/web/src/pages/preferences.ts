// Preferences: time zone, currency, decimals for crypto and stablecoins, balance masking (kept on the server), theme (this browser).

import type { App } from "../app";
import { currencies, prefs, setPrefs } from "../prefs";
import { ZONES } from "./markets";
import { Disposer, h } from "../ui/dom";

export function preferencesPage(app: App, _p: Record<string, string>, d: Disposer): HTMLElement {
  const p = prefs.value;
  const known = currencies.value.includes(p.currency) ? currencies.value : [p.currency, ...currencies.value];
  const currency = h("select", { name: "currency" }, ...known.map((c) => h("option", { value: c, selected: c === p.currency }, c)));
  const zones = [...new Set([p.tz, ...ZONES])];
  const tz = h("select", { name: "tz" }, ...zones.map((z) => h("option", { value: z, selected: z === p.tz }, z)));
  const crypto = h("input", { type: "number", name: "crypto", min: 0, max: 12, value: p.cryptoDecimals });
  const stable = h("input", { type: "number", name: "stable", min: 0, max: 12, value: p.stableDecimals });
  const mask = h("input", { type: "checkbox", name: "mask", checked: p.mask });
  const theme = h("select", { name: "theme" }, h("option", { value: "dark", selected: p.theme === "dark" }, "Dark"), h("option", { value: "light", selected: p.theme === "light" }, "Light"));
  const note = h("p", { class: "muted", "data-testid": "fx-note" });
  d.add(app.fx.watch((fx) => (note.textContent = fx.note)));
  const clamp = (v: string, hi: number) => Math.max(0, Math.min(hi, Math.round(Number(v) || 0)));
  currency.addEventListener("change", () => setPrefs({ currency: currency.value }));
  tz.addEventListener("change", () => setPrefs({ tz: tz.value }));
  crypto.addEventListener("change", () => setPrefs({ cryptoDecimals: clamp(crypto.value, 12) }));
  stable.addEventListener("change", () => setPrefs({ stableDecimals: clamp(stable.value, 12) }));
  mask.addEventListener("change", () => setPrefs({ mask: mask.checked }));
  theme.addEventListener("change", () => setPrefs({ theme: theme.value as "dark" | "light" }));
  d.add(prefs.watch((now) => {
    mask.checked = now.mask; theme.value = now.theme; currency.value = now.currency; tz.value = now.tz;
    crypto.value = String(now.cryptoDecimals); stable.value = String(now.stableDecimals);
  }));
  return h("div", { class: "page" }, h("form", { class: "card prefs", "aria-label": "preferences" },
    h("h3", {}, "Preferences"),
    h("p", { class: "muted" }, "Saved on the server for your account: every browser you sign in from shows the same."),
    h("label", {}, "Show values in", currency), note,
    h("label", {}, "Time zone", tz),
    h("label", {}, "Decimals for crypto amounts", crypto),
    h("label", {}, "Decimals for stablecoins and fiat", stable),
    h("label", { class: "check" }, mask, "Mask sizes and balances (for sharing screenshots)"),
    h("label", {}, "Theme", theme)));
}
