// The user's display preferences: time zone, currency, decimals and masking from the server, theme and last market in this browser.

import type { Http } from "./api/http";
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

/** What `GET/PUT /api/v1/me/preferences` holds: the user's on every device (and for the server's own reports). */
interface ServerPrefs {
  time_zone: string;
  currency: string;
  crypto_decimals: number;
  stable_decimals: number;
  mask: boolean;
  currencies?: string[];
}

const SERVER_FIELDS = ["currency", "cryptoDecimals", "stableDecimals", "mask", "tz"] as const;
const PATH = "/api/v1/me/preferences";
const KEY = "coinwire.prefs"; // this browser's own: theme and the last market, never the server's fields
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
    const local = JSON.parse(localStorage.getItem(KEY) ?? "{}") as Partial<Prefs>;
    for (const f of SERVER_FIELDS) delete local[f]; // signed out (or before the server answers): the defaults
    return { ...DEFAULTS, ...local };
  } catch {
    return { ...DEFAULTS };
  }
}

function local(p: Prefs): Partial<Prefs> {
  const out: Partial<Prefs> = { ...p };
  for (const f of SERVER_FIELDS) delete out[f];
  return out;
}

function fromServer(s: ServerPrefs): Partial<Prefs> {
  return { tz: s.time_zone, currency: s.currency, cryptoDecimals: s.crypto_decimals, stableDecimals: s.stable_decimals, mask: s.mask };
}

export const prefs = new Signal<Prefs>(load());
/** The display currencies the server accepts (USD, pegs and its FX source's), known once signed in. */
export const currencies = new Signal<string[]>(["USD"]);

let server: Http | null = null;
let sent = 0; // PUTs sent: only the latest one's answer is adopted, so an earlier answer never undoes a later change
let onRefused: (message: string) => void = () => {};

/** Signed in: read the user's preferences from the server; changes are written there from now on. */
export async function attachServer(http: Http, refused: (message: string) => void): Promise<void> {
  server = http;
  onRefused = refused;
  adopt(await http.get<ServerPrefs>(PATH));
}

/** Signed out: back to the defaults (nobody's preferences stay on screen). */
export function detachServer(): void {
  server = null;
  prefs.set({ ...prefs.value, ...Object.fromEntries(SERVER_FIELDS.map((f) => [f, DEFAULTS[f]])) });
}

function adopt(s: ServerPrefs): void {
  if (s.currencies) currencies.set(s.currencies);
  prefs.set({ ...prefs.value, ...fromServer(s) });
}

export function setPrefs(change: Partial<Prefs>): void {
  const next = { ...prefs.value, ...change };
  localStorage.setItem(KEY, JSON.stringify(local(next)));
  prefs.set(next);
  const body: Partial<ServerPrefs> = {};
  if (change.tz !== undefined) body.time_zone = change.tz;
  if (change.currency !== undefined) body.currency = change.currency;
  if (change.cryptoDecimals !== undefined) body.crypto_decimals = change.cryptoDecimals;
  if (change.stableDecimals !== undefined) body.stable_decimals = change.stableDecimals;
  if (change.mask !== undefined) body.mask = change.mask;
  const http = server;
  if (!http || !Object.keys(body).length) return;
  // the server checks the change whole; a refusal puts back what it holds, and says why
  const mine = ++sent;
  http.put<ServerPrefs>(PATH, body).then((s) => { if (mine === sent && server === http) adopt(s); }, (e: Error) => {
    onRefused(e.message);
    if (server === http) http.get<ServerPrefs>(PATH).then((s) => { if (mine === sent) adopt(s); }, () => {});
  });
}

prefs.watch((p) => {
  document.documentElement.dataset.theme = p.theme;
  document.documentElement.classList.toggle("masked", p.mask);
});
