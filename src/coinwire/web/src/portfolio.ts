// Pure helpers of the portfolio pages: scopes, candles from the API's rows, import progress, daily stats and market-cap balance rows.

import type { Candle } from "./api/rpc";

/** What a portfolio is of: the user's total, one account, one wallet set, one run (the API's scope names). */
export const SCOPES = ["user", "account", "wallet_set", "run"] as const;
export type Scope = (typeof SCOPES)[number];

/** Portfolio candles are captured every 15 minutes, so no shorter timeframe exists. */
export const PORTFOLIO_TIMEFRAMES = ["15m", "1h", "4h", "1d", "1w", "1M"] as const;

export interface ScopeRef {
  scope: Scope;
  id: string;
}

/** "account:3" <-> {scope: "account", id: "3"}: the picker's option value; null for anything else. */
export function scopeKey(s: ScopeRef): string {
  return `${s.scope}:${s.id}`;
}

export function parseScopeKey(key: string | null | undefined): ScopeRef | null {
  if (!key) return null;
  const at = key.indexOf(":");
  const scope = key.slice(0, at) as Scope;
  const id = key.slice(at + 1);
  return at > 0 && id && (SCOPES as readonly string[]).includes(scope) ? { scope, id } : null;
}

/** `[t, o, h, l, c, v]` rows whose values are decimal strings (portfolio values are exact) or numbers, as chart candles. */
export function toCandles(rows: readonly (readonly (string | number)[])[]): Candle[] {
  const out: Candle[] = [];
  for (const r of rows) {
    const c = r.slice(0, 6).map(Number);
    if (c.length === 6 && c.every(Number.isFinite)) out.push(c as Candle);
  }
  return out;
}

/** The change of the shown period: first open to last close, as an amount and a fraction (null without candles or from 0). */
export function change(candles: readonly Candle[]): { amount: number; fraction: number | null } | null {
  if (!candles.length) return null;
  const first = candles[0][1];
  const last = candles[candles.length - 1][4];
  return { amount: last - first, fraction: first ? (last - first) / first : null };
}

// --- import progress ------------------------------------------------------------------------

/** One `import_progress` push, or the state `GET /api/v1/accounts/{id}/import` answers. */
export interface ImportProgress {
  account_id: number;
  import_id: number | string;
  step: string;
  done: number;
  total: number;
  eta_s: number | null;
  state: "running" | "done" | "failed" | string;
  error?: string | null;
}

/** How long is left, in words a person reads at a glance ("about 3 min left"); empty when unknown. */
export function etaText(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return "less than a minute left";
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`;
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return `about ${h} h${m ? ` ${m} min` : ""} left`;
}

/** The bar's fill (0..1) and its words: the step, done of total, the ETA; a finished import is full. */
export function progressOf(p: ImportProgress): { fraction: number; text: string } {
  if (p.state === "done") return { fraction: 1, text: "Finished: your history is in." };
  const fraction = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
  const counted = p.total > 0 ? ` · ${p.done} of ${p.total}` : "";
  if (p.state === "failed") return { fraction, text: `Stopped at ${p.step}${counted}: ${p.error ?? "the venue failed"}. Resume to go on from there.` };
  const eta = etaText(p.eta_s);
  return { fraction, text: `${p.step}${counted}${eta ? ` · ${eta}` : ""}` };
}

// --- daily stats ----------------------------------------------------------------------------

/** The daily stats' columns in the order shown: [field, heading, kind]. `money` is masked, `count` and `ratio` are not
 * (shares and counts say nothing of the amounts). `status` is "recorded", or "missing" when no value was captured. */
export const DAILY_COLUMNS: readonly [string, string, "date" | "money" | "count" | "ratio" | "text"][] = [
  ["day", "Day", "date"],
  ["status", "", "text"],
  ["closing", "Close", "money"],
  ["pnl", "PnL", "money"],
  ["realised", "Realised", "money"],
  ["unrealised", "Unrealised", "money"],
  ["fees", "Fees", "money"],
  ["funding", "Funding", "money"],
  ["trades", "Trades", "count"],
  ["win_rate", "Win rate", "ratio"],
  ["exposure", "Exposure", "ratio"],
  ["peak", "Peak", "money"],
  ["drawdown", "Drawdown", "ratio"],
  ["deposits", "Deposits", "money"],
  ["withdrawals", "Withdrawals", "money"],
];

/** The columns the answer actually holds (a field the server does not send is not shown as a row of dashes). */
export function dailyColumns(rows: readonly Record<string, unknown>[]): typeof DAILY_COLUMNS {
  const present = new Set(rows.flatMap((r) => Object.keys(r)));
  return DAILY_COLUMNS.filter(([key]) => present.has(key));
}

// --- balanced by market cap -----------------------------------------------------------------

export interface BalanceAsset {
  asset: string;
  amount?: string | number | null;
  value?: string | number | null; // in the display currency
  weight: string | number; // of the user's coins, 0..1
  cap_weight: string | number | null; // among the top N by market cap, 0..1 (0 or null: not among them)
  difference?: string | number; // weight - cap_weight, as the server worked it out exactly
  stance?: string; // the server's "over" | "under" | "even"
}

export interface BalanceRow {
  asset: string;
  weight: number;
  capWeight: number;
  deviation: number; // weight - capWeight: over (+) or under (-) weight
  verdict: "over" | "under" | "even";
  value: number | null;
}

/** Each asset's weight against its market-cap weight, the furthest off first. The server's exact difference and stance
 * are used as they are; without them (an older server) they are worked out here, within `tolerance` counting as even. */
export function balanceRows(assets: readonly BalanceAsset[], tolerance = 0.005): BalanceRow[] {
  return assets
    .map((a) => {
      const weight = Number(a.weight);
      const capWeight = a.cap_weight === null || a.cap_weight === undefined ? 0 : Number(a.cap_weight);
      const deviation = a.difference === undefined ? weight - capWeight : Number(a.difference);
      const verdict: BalanceRow["verdict"] = a.stance === "over" || a.stance === "under" || a.stance === "even" ? a.stance
        : Math.abs(deviation) <= tolerance ? "even" : deviation > 0 ? "over" : "under";
      return { asset: a.asset, weight, capWeight, deviation, verdict, value: a.value === null || a.value === undefined ? null : Number(a.value) };
    })
    .sort((a, b) => Math.abs(b.deviation) - Math.abs(a.deviation) || a.asset.localeCompare(b.asset));
}

/** The secret an external account's creation or rotation answers (shown once): whichever field the answer names it. */
export function secretOf(answer: Record<string, unknown>): string | null {
  for (const key of ["webhook_secret", "secret"]) {
    const v = answer[key];
    if (typeof v === "string" && v) return v;
  }
  return null;
}

/** An external account's opening holdings typed as "BTC=0.5, USDT=1000": currency -> the exact decimal string, or the
 * words saying what is wrong. Empty text: none. The server checks again (`invalid_holdings`). */
export function parseHoldings(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const part of text.split(/[,\n]/).map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9]{1,16})\s*[=:]\s*(\d+(?:\.\d+)?)$/.exec(part);
    if (!m) return `"${part}": write each holding as CURRENCY=amount, e.g. BTC=0.5.`;
    const code = m[1].toUpperCase();
    if (code in out) return `${code} is named twice.`;
    if (!/[1-9]/.test(m[2])) return `${code}: the amount must be above zero.`;
    out[code] = m[2];
  }
  return out;
}
