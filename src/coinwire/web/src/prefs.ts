// The user's display preferences, kept in this browser: currency, decimals, balance masking, theme.

import { Signal } from "./ui/dom";

export interface Prefs {
  currency: string; // what values are shown in (USD, EUR, ...), converted through /api/v1/convert
  cryptoDecimals: number;
  stableDecimals: number;
  mask: boolean; // sizes and balances hidden, for sharing screenshots
  theme: "dark" | "light";
  exchange: string; // the market last looked at
  symbol: string;
  timeframe: string;
  tz: string;
}

const KEY = "coinwire.prefs";
const DEFAULTS: Prefs = {
  currency: "USD",
  cryptoDecimals: 6,
  stableDecimals: 2,
  mask: false,
  theme: "dark",
  exchange: "",
  symbol: "",
  timeframe: "1m",
  tz: "UTC",
};

function load(): Prefs {
  try {
    return { ...DEFAULTS, ...(JSON.parse(localStorage.getItem(KEY) ?? "{}") as Partial<Prefs>) };
  } catch {
    return { ...DEFAULTS };
  }
}

export const prefs = new Signal<Prefs>(load());

export function setPrefs(change: Partial<Prefs>): void {
  const next = { ...prefs.value, ...change };
  localStorage.setItem(KEY, JSON.stringify(next));
  prefs.set(next);
}

prefs.watch((p) => {
  document.documentElement.dataset.theme = p.theme;
  document.documentElement.classList.toggle("masked", p.mask);
});
