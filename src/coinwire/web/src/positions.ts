// Perpetual positions on the dashboard: the table's rows, pushes merged in, and the checks and calls of its controls.
//
// Pure (no DOM, no clock), so what a trader sees and what a control sends are the ones tests/web checks.
// The server checks every change again (leverage brackets, margin, reduce-only): these checks only
// spare a round trip and say what is wrong in words, before anything is sent.

import type { FundingEntry, Market, PositionSide, PositionView } from "./api/types";
import { grouped } from "./conditional";
import * as D from "./decimal";

/** A market the positions controls apply to: a perpetual (CCXT's `BTC/USDT:USDT`), not a spot pair. */
export function isPerpetual(m: Pick<Market, "symbol"> & { kind?: string }): boolean {
  return m.kind ? m.kind === "perpetual" : m.symbol.includes(":");
}

/** One position's identity: account, market, leg (one-way `both`, hedge `long`/`short`) and wallet set. */
export function positionKey(p: Pick<PositionView, "account" | "exchange" | "symbol" | "position_side" | "wallet_set_id">): string {
  return `${p.account}|${p.exchange}|${p.symbol}|${p.position_side}|${p.wallet_set_id ?? ""}`;
}

const isFlat = (p: PositionView) => p.side === "flat" || (D.parse(p.size)?.units ?? 0n) === 0n;

/** Open positions first by market, then long before short, so a hedge pair sits together. */
function byMarket(a: PositionView, b: PositionView): number {
  return a.exchange.localeCompare(b.exchange) || a.symbol.localeCompare(b.symbol) || a.position_side.localeCompare(b.position_side)
    || a.account - b.account || (a.wallet_set_id ?? 0) - (b.wallet_set_id ?? 0);
}

/** The open positions of a list (flat ones dropped), in the table's order. */
export function openPositions(list: PositionView[]): PositionView[] {
  return list.filter((p) => !isFlat(p)).sort(byMarket);
}

/**
 * The table after one `positions_updated` push: the position replaced (or added), gone once flat.
 * A push older than what the table holds (a lower `seq` for the same position, e.g. a replay that
 * crossed a fresh read) is ignored, so the table never steps back.
 */
export function mergePosition(list: PositionView[], update: PositionView): PositionView[] {
  const key = positionKey(update);
  const old = list.find((p) => positionKey(p) === key);
  if (old && old.seq > update.seq) return list;
  const rest = list.filter((p) => positionKey(p) !== key);
  return isFlat(update) ? rest : [...rest, update].sort(byMarket);
}

/** A decimal string at `decimals` places (rounded half away from zero), grouped by thousands; "–" for null or junk. */
export function fixedText(text: string | null | undefined, decimals: number): string {
  const d = text === null || text === undefined ? null : D.parse(text);
  if (!d) return "–";
  const shift = decimals - d.scale;
  let units: bigint;
  if (shift >= 0) units = d.units * 10n ** BigInt(shift);
  else {
    const div = 10n ** BigInt(-shift);
    const neg = d.units < 0n;
    const abs = neg ? -d.units : d.units;
    units = (abs + div / 2n) / div * (neg ? -1n : 1n);
  }
  const digits = (units < 0n ? -units : units).toString().padStart(decimals + 1, "0");
  const whole = decimals ? digits.slice(0, -decimals) : digits;
  const out = grouped(whole) + (decimals ? `.${digits.slice(-decimals)}` : "");
  return units < 0n ? `-${out}` : out;
}

/** A signed amount with its sign always shown ("+12.50", "-3.00", "0.00"). */
export function signedText(text: string | null | undefined, decimals: number): string {
  const t = fixedText(text, decimals);
  if (t === "–" || t.startsWith("-")) return t;
  return /[1-9]/.test(t) ? `+${t}` : t;
}

/** A ratio as the API sends it ("0.0123") in percent ("1.23%"). */
export function percentText(ratio: string | null | undefined, decimals = 2): string {
  const d = ratio === null || ratio === undefined ? null : D.parse(ratio);
  if (!d) return "–";
  return `${fixedText(D.toString({ units: d.units * 100n, scale: d.scale }), decimals)}%`;
}

/** A signed ratio in percent ("+16.39%", "-50.00%", "0.00%"). */
function signedPercent(ratio: string): string {
  const t = percentText(ratio);
  return t.startsWith("-") || !/[1-9]/.test(t) ? t : `+${t}`;
}

/** How close a position is to liquidation by its margin ratio (100% liquidates): calm below 50%, then a warning, danger from 80%. */
export function risk(ratio: string | null | undefined): "ok" | "warn" | "danger" {
  const d = ratio ? D.parse(ratio) : null;
  if (!d) return "ok";
  if (D.cmp(d, { units: 8n, scale: 1 }) >= 0) return "danger";
  return D.cmp(d, { units: 5n, scale: 1 }) >= 0 ? "warn" : "ok";
}

/** The colour of a shown amount: by its text as rounded for display, so "-0.00" never reads as a loss. */
const sign = (shown: string): "pos" | "neg" | "" => (!/[1-9]/.test(shown) ? "" : shown.startsWith("-") ? "neg" : "pos");

/** What a position's row shows, as text (prices at the market's decimals, money at `moneyDecimals`). */
export interface PositionRow {
  key: string;
  market: string;
  leg: string; // "one-way", or the hedge leg "long leg" / "short leg"
  side: "long" | "short";
  sideText: string; // "Long 10x"
  size: string;
  entry: string;
  mark: string;
  notional: string;
  upnl: string;
  upnlClass: "pos" | "neg" | "";
  roe: string; // uPnL over the initial margin, in percent
  realised: string;
  funding: string;
  fundingClass: "pos" | "neg" | "";
  margin: string; // "Cross" or "Isolated 12.50"
  marginRatio: string;
  risk: "ok" | "warn" | "danger";
  liquidation: string;
}

export function positionRow(p: PositionView, priceDecimals: number, moneyDecimals = 2): PositionRow {
  const side = p.side === "short" ? "short" : "long";
  const im = D.parse(p.initial_margin), upnl = D.parse(p.unrealised_pnl);
  const roe = im && im.units > 0n && upnl ? D.toString(D.divFloor(upnl, im, 6)) : null;
  const upnlText = signedText(p.unrealised_pnl, moneyDecimals), fundingText = signedText(p.funding, moneyDecimals);
  return {
    key: positionKey(p),
    market: `${p.symbol} · ${p.exchange}`,
    leg: p.position_side === "both" ? "one-way" : `${p.position_side} leg`,
    side,
    sideText: `${side === "long" ? "Long" : "Short"} ${p.leverage}x`,
    size: p.size,
    entry: fixedText(p.entry_price, priceDecimals),
    mark: fixedText(p.mark_price, priceDecimals),
    notional: fixedText(p.notional, moneyDecimals),
    upnl: upnlText,
    upnlClass: sign(upnlText),
    roe: roe === null ? "–" : signedPercent(roe),
    realised: signedText(p.realised_pnl, moneyDecimals),
    funding: fundingText,
    fundingClass: sign(fundingText),
    margin: p.margin_mode === "isolated" ? `Isolated ${fixedText(p.isolated_margin, moneyDecimals)}` : "Cross",
    marginRatio: percentText(p.margin_ratio),
    risk: risk(p.margin_ratio),
    liquidation: p.liquidation_price === null ? "–" : fixedText(p.liquidation_price, priceDecimals),
  };
}

/** A leverage as typed: a whole number from 1 to the market's maximum (when the dashboard knows it). */
export function leverageProblem(text: string, max?: number | null): string | null {
  const t = text.trim();
  if (!t) return "Enter a leverage.";
  if (!/^\d+$/.test(t)) return "The leverage must be a whole number such as 5.";
  const n = Number(t);
  if (n < 1) return "The leverage must be at least 1.";
  if (max && n > max) return `The maximum leverage on this market is ${max}x.`;
  return null;
}

/** A reduce amount: positive, on the market's step, and not above the position (closing all of it is Close's job). */
export function reduceProblem(text: string, p: Pick<PositionView, "size">, step: string, base: string): string | null {
  const t = text.trim();
  if (!t) return "Enter the amount to reduce by.";
  const a = D.parse(t);
  if (!a || a.units <= 0n) return "The amount must be a positive number.";
  if (!D.isMultiple(a, D.parse(step)!)) return `The amount must be a multiple of ${step} ${base}.`;
  if (D.cmp(a, D.parse(p.size)!) > 0) return `The position is ${p.size} ${base}: reduce by at most that, or close it.`;
  return null;
}

/** An isolated margin change: "+" adds, "-" removes (not more than the position's isolated margin), never zero. */
export function marginProblem(text: string, p: Pick<PositionView, "margin_mode" | "isolated_margin">, settle: string): string | null {
  if (p.margin_mode !== "isolated") return "Only an isolated position's margin can be added or removed.";
  const t = text.trim();
  if (!t) return `Enter an amount of ${settle} to add, or a negative one to remove.`;
  const a = D.parse(t);
  if (!a || a.units === 0n) return `The amount must be a non-zero number of ${settle} (negative removes).`;
  const have = D.parse(p.isolated_margin ?? "0")!;
  if (a.units < 0n && D.cmp({ units: -a.units, scale: a.scale }, have) > 0)
    return `At most ${p.isolated_margin ?? "0"} ${settle} can be removed: the position's isolated margin.`;
  return null;
}

/** The pair as URLs and the JSON-RPC `pair` parameter spell it (`BTC/USDT:USDT` -> `BTC_USDT:USDT`). */
export function pairOf(symbol: string): string {
  return symbol.replace("/", "_");
}

type Params = Record<string, unknown>;

const scoped = (p: Pick<PositionView, "account">, params: Params): Params => ({ ...params, account: p.account });

/** Reduce: a reduce-only market order on the other side for part of the position (its leg named in hedge mode). */
export function reduceCall(p: PositionView, amount: string): { method: "make_order"; params: Params } {
  const params: Params = { exchange: p.exchange, symbol: p.symbol, type: "market", side: p.side === "short" ? "buy" : "sell",
    size: amount.trim(), reduce_only: true };
  if (p.position_side !== "both") params.position_side = p.position_side;
  return { method: "make_order", params: scoped(p, params) };
}

/** Close: the whole position by the server's `close_position` (a reduce-only market order for all of it). */
export function closeCall(p: PositionView): { method: "close_position"; params: Params } {
  const params: Params = { exchange: p.exchange, pair: pairOf(p.symbol) };
  if (p.position_side !== "both") params.position_side = p.position_side;
  return { method: "close_position", params: scoped(p, params) };
}

export function marginCall(p: PositionView, amount: string): { method: "adjust_margin"; params: Params } {
  const params: Params = { exchange: p.exchange, pair: pairOf(p.symbol), amount: amount.trim() };
  if (p.position_side !== "both") params.position_side = p.position_side;
  return { method: "adjust_margin", params: scoped(p, params) };
}

export function leverageCall(exchange: string, symbol: string, leverage: string, account: number | null): { method: "set_leverage"; params: Params } {
  const params: Params = { exchange, pair: pairOf(symbol), leverage: Number(leverage.trim()) };
  if (account !== null) params.account = account;
  return { method: "set_leverage", params };
}

export function marginModeCall(exchange: string, symbol: string, mode: "isolated" | "cross", account: number | null): { method: "set_margin_mode"; params: Params } {
  const params: Params = { exchange, pair: pairOf(symbol), mode };
  if (account !== null) params.account = account;
  return { method: "set_margin_mode", params };
}

/** Is the account in hedge mode on this exchange, as far as its positions tell (a `long` or `short` leg)? */
export function hedgeModeOf(list: PositionView[], account: number | null, exchange: string): boolean {
  return list.some((p) => p.exchange === exchange && (account === null || p.account === account) && p.position_side !== "both");
}

/**
 * The order ticket's perpetual check: a reduce-only order must face a position it can reduce (a sell
 * reduces a long, a buy a short; in hedge mode the leg named). Null when it may be sent, or when the
 * dashboard does not know the positions (the server checks).
 */
export function reduceOnlyProblem(side: "buy" | "sell", positionSide: PositionSide, positions: PositionView[] | null,
  at: { exchange: string; symbol: string; account: number | null }): string | null {
  if (positions === null) return null;
  const mine = openPositions(positions).filter((p) => p.exchange === at.exchange && p.symbol === at.symbol
    && (at.account === null || p.account === at.account));
  const wanted = side === "sell" ? "long" : "short";
  const leg = positionSide === "both" ? mine.filter((p) => p.position_side === "both") : mine.filter((p) => p.position_side === positionSide);
  if (positionSide !== "both" && positionSide !== wanted)
    return `A reduce-only ${side} reduces a ${wanted} position: choose the ${wanted} side, or untick reduce-only.`;
  if (!leg.some((p) => p.side === wanted))
    return `Reduce-only: there is no ${wanted} position on ${at.symbol} for this ${side} to reduce.`;
  return null;
}

/** A funding payment's row: when, which position, the rate in percent, and the amount received (+) or paid (-). */
export interface FundingRow {
  time: number; // ns
  market: string;
  leg: string;
  size: string;
  rate: string;
  mark: string;
  amount: string;
  amountClass: "pos" | "neg" | "";
}

export function fundingRow(f: FundingEntry, priceDecimals: number, moneyDecimals = 2): FundingRow {
  return {
    time: f.time,
    market: `${f.symbol} · ${f.exchange}`,
    leg: f.position_side === "both" ? "one-way" : `${f.position_side} leg`,
    size: f.size,
    rate: percentText(f.rate, 4),
    mark: fixedText(f.mark_price, priceDecimals),
    amount: `${signedText(f.amount, moneyDecimals)} ${f.currency}`,
    amountClass: sign(signedText(f.amount, moneyDecimals)),
  };
}
