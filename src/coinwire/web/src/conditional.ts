// The order ticket's types and checks, and how open conditional orders are grouped and drawn.
//
// Pure (no DOM, no clock: `now` is passed in), so the rules a trader meets before sending are the
// same ones tests/web checks. The server checks everything again (docs/ORDERS.md); the ticket's
// checks exist so that a stop on the wrong side of the market is refused with the reason, not sent.

import type { BracketLeg, Order } from "./api/types";
import * as D from "./decimal";

export type Side = "buy" | "sell";
export type TicketType =
  | "limit" | "market" | "limit-post-only"
  | "stop-market" | "stop-limit" | "take-profit-market" | "take-profit-limit" | "trailing-stop"
  | "oco";
export type Trigger = "last" | "mark" | "bid_ask";
export type TimeInForce = "GTC" | "IOC" | "FOK" | "GTD";
export type TakeProfitKind = "limit" | "take-profit-market" | "take-profit-limit";

export const TICKET_TYPES: [TicketType, string][] = [
  ["limit", "Limit"],
  ["market", "Market"],
  ["limit-post-only", "Post-only"],
  ["stop-market", "Stop market"],
  ["stop-limit", "Stop limit"],
  ["take-profit-market", "Take-profit market"],
  ["take-profit-limit", "Take-profit limit"],
  ["trailing-stop", "Trailing stop"],
  ["oco", "OCO (limit + stop)"],
];
export const TRIGGERS: [Trigger, string][] = [["last", "Last price"], ["mark", "Mark price"], ["bid_ask", "Bid / ask"]];
export const TIMES_IN_FORCE: [TimeInForce, string][] = [
  ["GTC", "Good till cancelled"], ["IOC", "Immediate or cancel"], ["FOK", "Fill or kill"], ["GTD", "Good till date"]];

/** Which of the ticket's fields a type shows. */
export interface TypeFields {
  limit: boolean; // a limit price (an OCO's limit leg)
  stop: boolean; // a trigger level (an OCO's stop leg)
  stopLimit: boolean; // an OCO stop leg's optional limit
  trailing: boolean; // trailing delta and activation price
  trigger: boolean; // which price fires it
  tif: boolean; // time in force (and the expiry of GTD)
  bracket: boolean; // a take profit and stop loss attached
}

const F = (limit: boolean, stop: boolean, tif: boolean, extra: Partial<TypeFields> = {}): TypeFields =>
  ({ limit, stop, stopLimit: false, trailing: false, trigger: stop, tif, bracket: false, ...extra });

export const FIELDS: Record<TicketType, TypeFields> = {
  "limit": F(true, false, true, { bracket: true }),
  "market": F(false, false, false, { bracket: true }),
  "limit-post-only": F(true, false, false),
  "stop-market": F(false, true, false),
  "stop-limit": F(true, true, true),
  "take-profit-market": F(false, true, false),
  "take-profit-limit": F(true, true, true),
  "trailing-stop": F(false, false, false, { trailing: true, trigger: true }),
  "oco": F(true, true, false, { stopLimit: true, trigger: false }), // make_oco: its stop leg fires on the last price
};

export interface BracketInput {
  tpKind: TakeProfitKind;
  tpPrice: string; // the take profit's limit, or its trigger level
  tpLimit: string; // a take-profit-limit's limit
  slStop: string;
  slLimit: string; // empty: the stop loss is a stop-market
}

export interface TicketInput {
  type: TicketType;
  side: Side;
  size: string;
  limit: string;
  stopPrice: string;
  stopLimit: string;
  trigger: Trigger;
  trailingDelta: string;
  activationPrice: string;
  tif: TimeInForce;
  expireAt: number | null; // epoch ms (null: not set or not a date)
  allowImmediate: boolean;
  bracket: BracketInput | null;
  // a perpetual's (docs/DERIVATIVES.md): absent on a spot market
  reduceOnly?: boolean; // never increases the position; the server cuts one larger than it
  positionSide?: "both" | "long" | "short"; // hedge mode's leg; `both` (one-way) is not sent
}

/** The market's prices as the page knows them now (strings as the API sends them). */
export interface MarketNow {
  last: string | null;
  bid: string | null;
  ask: string | null;
}

/** The instrument rules the ticket needs. */
export interface Rules {
  tick: string;
  quote: string;
}

/** "62000" -> "62,000", "61500.50" -> "61,500.50": a price as typed, grouped for reading. */
export function grouped(text: string): string {
  const t = text.trim();
  const m = /^(-?)(\d+)(\.\d*)?$/.exec(t);
  if (!m) return t;
  return `${m[1]}${m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${m[3] ?? ""}`;
}

const isConditional = (t: TicketType) => t.startsWith("stop-") || t.startsWith("take-profit-") || t === "trailing-stop";
const isTakeProfit = (t: TicketType) => t.startsWith("take-profit-");

/** A price field's problem (null: none): required, positive, on the tick. */
function priceProblem(text: string, what: string, rules: Rules, required = true): string | null {
  if (!text.trim()) return required ? `Enter ${what}.` : null;
  const p = D.parse(text);
  if (!p || p.units <= 0n) return `${cap(what)} must be a positive number.`;
  if (!D.isMultiple(p, D.parse(rules.tick)!)) return `${cap(what)} must be a multiple of ${rules.tick} ${rules.quote}.`;
  return null;
}

function cap(what: string): string {
  const s = what.replace(/^(a|an|the) /, "the ");
  return s[0].toUpperCase() + s.slice(1);
}

/** The price a conditional order's trigger is compared with now, and its name in a sentence (null: unknown here). */
export function referencePrice(trigger: Trigger, side: Side, now: MarketNow): { price: D.Dec; name: string } | null {
  if (trigger === "mark") return null; // the dashboard has no mark price: the server checks it
  const [text, name] = trigger === "bid_ask" ? (side === "sell" ? [now.bid, "the bid"] : [now.ask, "the ask"]) : [now.last, "the last price"];
  const price = text ? D.parse(text) : null;
  return price && price.units > 0n ? { price, name } : null;
}

/**
 * Would a stop (or take-profit) at `stop` fire at once? A sell stop fires at or below its level and a
 * buy stop at or above; a take-profit is the mirror image. The sentence says why, or null.
 */
export function wouldTrigger(kind: "stop" | "take-profit", side: Side, stop: D.Dec, ref: { price: D.Dec; name: string }): string | null {
  const c = D.cmp(ref.price, stop);
  const fires = kind === "stop" ? (side === "sell" ? c <= 0 : c >= 0) : (side === "sell" ? c >= 0 : c <= 0);
  if (!fires) return null;
  return `A ${side} ${kind} at ${grouped(D.toString(stop))} would trigger now: ${ref.name} is ${grouped(D.toString(ref.price))}.`;
}

/** A trailing delta's problem: "1.5%" (above 0, below 100) or a positive price distance on the tick. */
export function trailingProblem(text: string, rules: Rules): string | null {
  const t = text.trim();
  if (!t) return "Enter a trailing delta: a percentage such as 1.5% or a price distance.";
  if (t.endsWith("%")) {
    const p = D.parse(t.slice(0, -1));
    if (!p || p.units <= 0n || D.cmp(p, { units: 100n, scale: 0 }) >= 0) return "A trailing delta in percent must be above 0% and below 100%.";
    return null;
  }
  const d = D.parse(t);
  if (!d || d.units <= 0n) return "The trailing delta must be a percentage such as 1.5% or a positive price distance.";
  if (!D.isMultiple(d, D.parse(rules.tick)!)) return `A trailing delta as a price distance must be a multiple of ${rules.tick} ${rules.quote}.`;
  return null;
}

/** Everything wrong with the ticket's prices, triggers and times (sizes and funds are the ticket's own checks). */
export function ticketProblems(x: TicketInput, rules: Rules, now: MarketNow, nowMs: number): string[] {
  const out: string[] = [];
  const f = FIELDS[x.type];
  const push = (p: string | null) => { if (p) out.push(p); };
  if (f.limit) push(priceProblem(x.limit, "a limit price", rules));
  if (f.stop) push(priceProblem(x.stopPrice, "a stop price", rules));
  if (f.stopLimit) push(priceProblem(x.stopLimit, "the stop leg's limit", rules, false));
  if (f.trailing) {
    push(trailingProblem(x.trailingDelta, rules));
    push(priceProblem(x.activationPrice, "the activation price", rules, false));
  }
  if (f.tif && x.tif === "GTD") {
    if (x.expireAt === null) out.push("Good till date needs an expiry date and time.");
    else if (x.expireAt <= nowMs) out.push("The expiry must be in the future.");
  }
  const stop = D.parse(x.stopPrice), limit = D.parse(x.limit);
  if (isConditional(x.type) && x.type !== "trailing-stop" && stop && stop.units > 0n && !x.allowImmediate) {
    const ref = referencePrice(x.trigger, x.side, now);
    if (ref) push(wouldTrigger(isTakeProfit(x.type) ? "take-profit" : "stop", x.side, stop, ref));
  }
  if (x.type === "oco") {
    const ref = referencePrice("last", x.side, now);
    if (ref && limit && limit.units > 0n && stop && stop.units > 0n) {
      const r = grouped(D.toString(ref.price));
      const above = x.side === "sell"; // a sell OCO takes profit above the market and stops out below it
      if (above ? D.cmp(limit, ref.price) <= 0 : D.cmp(limit, ref.price) >= 0)
        out.push(`A ${x.side} OCO's limit must be ${above ? "above" : "below"} the market: the last price is ${r}.`);
      push(wouldTrigger("stop", x.side, stop, ref)); // the stop leg: below a sell's market, above a buy's
    }
  }
  if (f.bracket && x.bracket) out.push(...bracketProblems(x, rules, now));
  return out;
}

/** A bracket's checks: a long's stop loss below its entry and its take profit above; a short's the mirror. */
function bracketProblems(x: TicketInput, rules: Rules, now: MarketNow): string[] {
  const b = x.bracket!;
  const out: string[] = [];
  const push = (p: string | null) => { if (p) out.push(p); };
  push(priceProblem(b.tpPrice, b.tpKind === "limit" ? "the take profit's price" : "the take profit's trigger", rules));
  if (b.tpKind === "take-profit-limit") push(priceProblem(b.tpLimit, "the take profit's limit", rules));
  push(priceProblem(b.slStop, "the stop loss's trigger", rules));
  push(priceProblem(b.slLimit, "the stop loss's limit", rules, false));
  const entry = x.type === "market" ? (x.side === "buy" ? now.ask ?? now.last : now.bid ?? now.last) : x.limit;
  const e = entry ? D.parse(entry) : null;
  if (!e || e.units <= 0n) return out;
  const long = x.side === "buy";
  const who = long ? "A long" : "A short";
  const tp = D.parse(b.tpPrice), sl = D.parse(b.slStop);
  const at = `its entry (${grouped(D.toString(e))})`;
  if (sl && sl.units > 0n && (long ? D.cmp(sl, e) >= 0 : D.cmp(sl, e) <= 0))
    out.push(`${who}'s stop loss must be ${long ? "below" : "above"} ${at}.`);
  if (tp && tp.units > 0n && (long ? D.cmp(tp, e) <= 0 : D.cmp(tp, e) >= 0))
    out.push(`${who}'s take profit must be ${long ? "above" : "below"} ${at}.`);
  return out;
}

/**
 * The price an order's value and funds are reckoned at: its limit (for a buy OCO the dearer leg), else
 * its trigger level, else the activation price or the market (a trailing stop), else the touch (market).
 */
export function valuePrice(x: TicketInput, touch: string | null): D.Dec | null {
  const pos = (t: string | null | undefined) => { const d = t ? D.parse(t) : null; return d && d.units > 0n ? d : null; };
  const f = FIELDS[x.type];
  if (x.type === "oco") {
    const a = pos(x.limit), b = pos(x.stopLimit) ?? pos(x.stopPrice);
    return a && b ? (D.cmp(a, b) >= 0 ? a : b) : a ?? b;
  }
  if (f.limit) return pos(x.limit);
  if (f.stop) return pos(x.stopPrice);
  if (f.trailing) return pos(x.activationPrice) ?? pos(touch);
  return pos(touch);
}

export interface Call {
  method: "make_order" | "make_oco";
  params: Record<string, unknown>;
}

/** The JSON-RPC call a valid ticket sends (make_order's params, or make_oco's; docs/ORDERS.md "API"). */
export function ticketCall(x: TicketInput, market: { exchange: string; symbol: string }, account: number | null): Call {
  const size = x.size.trim();
  const base: Record<string, unknown> = { exchange: market.exchange, side: x.side, size };
  if (account !== null) base.account = account;
  if (x.type === "oco") {
    const params: Record<string, unknown> = { ...base, pair: market.symbol.replace("/", "_"), limit: x.limit.trim(), stop_price: x.stopPrice.trim() };
    if (x.stopLimit.trim()) params.stop_limit = x.stopLimit.trim();
    return { method: "make_oco", params };
  }
  const f = FIELDS[x.type];
  let type: string = x.type;
  const params: Record<string, unknown> = { ...base, symbol: market.symbol };
  if (f.limit) params.limit = x.limit.trim();
  if (f.tif && x.tif !== "GTC") {
    if (x.type === "limit" && x.tif !== "GTD") type = x.tif === "IOC" ? "limit-immediate-cancel" : "limit-fill-kill";
    else params.time_in_force = x.tif;
    if (x.tif === "GTD" && x.expireAt !== null) params.expire_at = x.expireAt;
  }
  params.type = type;
  if (f.stop) params.stop_price = x.stopPrice.trim();
  if (f.trailing) {
    params.trailing_delta = x.trailingDelta.trim();
    if (x.activationPrice.trim()) params.activation_price = x.activationPrice.trim();
  }
  if (f.trigger) params.trigger = x.trigger;
  if (isConditional(x.type) && x.allowImmediate) params.allow_immediate = true;
  if (x.reduceOnly) params.reduce_only = true;
  if (x.positionSide && x.positionSide !== "both") params.position_side = x.positionSide;
  if (f.bracket && x.bracket) {
    const b = x.bracket;
    params.take_profit = b.tpKind === "limit" ? { limit: b.tpPrice.trim() }
      : b.tpKind === "take-profit-market" ? { stop_price: b.tpPrice.trim(), type: b.tpKind }
      : { stop_price: b.tpPrice.trim(), limit: b.tpLimit.trim(), type: b.tpKind };
    params.stop_loss = b.slLimit.trim() ? { stop_price: b.slStop.trim(), limit: b.slLimit.trim() } : { stop_price: b.slStop.trim() };
  }
  return { method: "make_order", params };
}

/** What a conditional order waits for, in a word (null: a plain order). */
export function triggerKind(type: string): "stop" | "take-profit" | "trailing" | null {
  if (type === "trailing-stop") return "trailing";
  if (type.startsWith("stop-")) return "stop";
  if (type.startsWith("take-profit-")) return "take-profit";
  return null;
}

export interface TriggerLine {
  order: number;
  price: string;
  kind: "stop" | "take-profit" | "trailing";
  label: string;
}

const LINE_NAMES = { "stop": "Stop", "take-profit": "TP", "trailing": "Trail" } as const;

/**
 * The horizontal lines of a market's untriggered orders: each at its trigger level (a trailing stop's
 * current one, or its activation price before it activates). A triggered order has become its child
 * (a limit is on the book, a market order is gone), so it draws no line.
 */
export function triggerLines(orders: Order[], exchange: string, symbol: string): TriggerLine[] {
  const out: TriggerLine[] = [];
  for (const o of orders) {
    const kind = triggerKind(o.type);
    if (!kind || o.status !== "untriggered" || o.exchange !== exchange || o.symbol !== symbol) continue;
    const price = o.stop_price ?? (kind === "trailing" ? o.activation_price : null);
    if (!price) continue;
    const name = kind === "trailing" && !o.stop_price ? "Trail from" : LINE_NAMES[kind];
    out.push({ order: o.id, price, kind, label: `${name} ${o.side} ${o.size} #${o.id}` });
  }
  return out.sort((a, b) => a.order - b.order); // oldest first, however the list came
}

export interface OrderGroup {
  key: string;
  kind: "order" | "oco" | "bracket";
  /** The bracket's parent when it is still open, else null; a plain order's own. */
  head: Order | null;
  /** An OCO's legs or a bracket's children (a plain order: itself). */
  orders: Order[];
  /** A bracket parent's take profit and stop loss while none of its children is listed: placed once it fills. */
  pending: PendingChild[];
  id: number; // the OCO's list id, the bracket parent's id, or the order's
}

/** A bracket child not placed yet, as its parent's `bracket` describes it: it sells what a buy bought, and so on. */
export interface PendingChild {
  role: "take-profit" | "stop-loss";
  side: "buy" | "sell";
  type: string;
  stop_price: string | null;
  limit: string | null;
  percent: string | null; // the level in percent of the parent's fill (its price comes with the fill)
  trailing_delta: string | null; // a trailing stop-loss's distance (it follows from the fill)
  trigger: string | null; // null: a plain limit, nothing to trigger
}

/** The children a bracket parent will place, take profit first (none for an order without a bracket). */
export function pendingChildren(parent: Order): PendingChild[] {
  const b = parent.bracket;
  if (!b) return [];
  const side = parent.side === "buy" ? "sell" : "buy";
  const child = (role: PendingChild["role"], leg: BracketLeg): PendingChild =>
    ({ role, side, type: leg.type, stop_price: leg.stop_price ?? null, limit: leg.limit ?? null, percent: leg.percent ?? null,
       trailing_delta: leg.trailing_delta ?? null,
       trigger: leg.type === "limit" ? null : b.trigger });
  const children: PendingChild[] = [];
  if (b.take_profit) children.push(child("take-profit", b.take_profit));
  if (b.stop_loss) children.push(child("stop-loss", b.stop_loss));
  return children;
}

/**
 * Open orders as the table shows them: a bracket's children under their parent, an OCO's legs
 * together (a bracket's children are themselves an OCO: they group under the parent), every other
 * order alone; in the order the first member came. A bracket parent whose children are not listed
 * yet heads a group of its pending ones.
 */
export function groupOrders(orders: Order[]): OrderGroup[] {
  const groups = new Map<string, OrderGroup>();
  const parents = new Set(orders.filter((o) => o.parent_id).map((o) => o.parent_id!));
  for (const o of orders) {
    let key: string, kind: OrderGroup["kind"], id: number;
    if (o.parent_id) [key, kind, id] = [`bracket:${o.parent_id}`, "bracket", o.parent_id];
    else if (parents.has(o.id) || o.bracket) [key, kind, id] = [`bracket:${o.id}`, "bracket", o.id];
    else if (o.oco_id) [key, kind, id] = [`oco:${o.oco_id}`, "oco", o.oco_id];
    else [key, kind, id] = [`order:${o.id}`, "order", o.id];
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { key, kind, id, head: null, orders: [], pending: [] }));
    if (kind === "bracket" && o.id === id) g.head = o;
    else g.orders.push(o);
    if (kind === "order") g.head = o;
  }
  for (const g of groups.values()) if (g.head && !g.orders.length) g.pending = pendingChildren(g.head);
  return [...groups.values()];
}
