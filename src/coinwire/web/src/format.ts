// How numbers, amounts, values and times are shown: the user's decimals, currency and masking.

import { prefs } from "./prefs";

const STABLE = new Set(["USD", "USDT", "USDC", "BUSD", "DAI", "TUSD", "FDUSD", "EUR", "GBP", "CHF", "JPY"]);
export const MASK = "•••••";

export function isStable(currency: string): boolean {
  return STABLE.has(currency.toUpperCase());
}

function num(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined || value === "") return null;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

export function fixed(value: string | number | null | undefined, decimals: number): string {
  const n = num(value);
  if (n === null) return "–";
  return n.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** An amount of `currency` (a size or balance): the user's decimals, hidden when masking. */
export function amount(value: string | number | null | undefined, currency: string): string {
  if (prefs.value.mask) return MASK;
  const p = prefs.value;
  return fixed(value, isStable(currency) ? p.stableDecimals : p.cryptoDecimals);
}

/** A price: shown as the exchange sends it (never masked: prices are public). */
export function price(value: string | number | null | undefined, decimals = 2): string {
  return fixed(value, decimals);
}

/** A value in USD shown in the user's currency (`rate` USD -> currency), hidden when masking. */
export function money(usd: string | number | null | undefined, rate: number, currency: string): string {
  if (prefs.value.mask) return MASK;
  const n = num(usd);
  if (n === null) return "–";
  return `${fixed(n * rate, prefs.value.stableDecimals)} ${currency}`;
}

export function time(iso: string | number | null | undefined, tz = prefs.value.tz): string {
  if (iso === null || iso === undefined) return "–";
  const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return d.toLocaleString("en-GB", { timeZone: tz, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function percent(x: number | null | undefined, decimals = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : `${(x * 100).toFixed(decimals)}%`;
}
