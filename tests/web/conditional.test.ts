// Unit tests of the order ticket's rules (src/coinwire/web/src/conditional.ts), run by test_units.py under node:test.

import assert from "node:assert/strict";
import test from "node:test";
import type { Order } from "../../src/coinwire/web/src/api/types";
import {
  FIELDS, type TicketInput, groupOrders, grouped, ticketCall, ticketProblems, triggerLines, valuePrice,
} from "../../src/coinwire/web/src/conditional";

const RULES = { tick: "0.5", quote: "USDT" };
const NOW = { last: "61500", bid: "61499.5", ask: "61500.5" };
const T0 = 1_800_000_000_000;

function ticket(over: Partial<TicketInput>): TicketInput {
  return { type: "limit", side: "buy", size: "0.01", limit: "", stopPrice: "", stopLimit: "", trigger: "last", trailingDelta: "",
    activationPrice: "", tif: "GTC", expireAt: null, allowImmediate: false, bracket: null, ...over };
}

function order(over: Partial<Order>): Order {
  return { id: 1, created_at: "2027-01-01T00:00:00+00:00", wallet_set_id: null, exchange: "demo", client_order_id: "", run_id: null,
    type: "limit", pair: "BTC_USDT", symbol: "BTC/USDT", size: "0.01", side: "sell", limit: "0", status: "open", done_reason: null,
    done_at: null, filled_size: "0", avg_price: "0", fee: "0", fee_currency: "USDT", ...over };
}

test("grouped prices read as the issue words them", () => {
  assert.equal(grouped("62000"), "62,000");
  assert.equal(grouped("61500.50"), "61,500.50");
  assert.equal(grouped("950"), "950");
});

test("a sell stop above the market is refused with the reason, below it passes", () => {
  const above = ticketProblems(ticket({ type: "stop-limit", side: "sell", stopPrice: "62000", limit: "61900" }), RULES, NOW, T0);
  assert.deepEqual(above, ["A sell stop at 62,000 would trigger now: the last price is 61,500."]);
  assert.deepEqual(ticketProblems(ticket({ type: "stop-limit", side: "sell", stopPrice: "61000", limit: "60900" }), RULES, NOW, T0), []);
  // at the price itself it fires (at or below), and allow_immediate lets it through
  assert.equal(ticketProblems(ticket({ type: "stop-market", side: "sell", stopPrice: "61500" }), RULES, NOW, T0).length, 1);
  assert.deepEqual(ticketProblems(ticket({ type: "stop-market", side: "sell", stopPrice: "62000", allowImmediate: true }), RULES, NOW, T0), []);
});

test("buy stops, take-profits and the bid/ask trigger", () => {
  const p = (over: Partial<TicketInput>) => ticketProblems(ticket(over), RULES, NOW, T0);
  assert.deepEqual(p({ type: "stop-market", side: "buy", stopPrice: "61000" }), ["A buy stop at 61,000 would trigger now: the last price is 61,500."]);
  assert.deepEqual(p({ type: "stop-market", side: "buy", stopPrice: "62000" }), []);
  assert.deepEqual(p({ type: "take-profit-market", side: "sell", stopPrice: "61000" }), ["A sell take-profit at 61,000 would trigger now: the last price is 61,500."]);
  assert.deepEqual(p({ type: "take-profit-market", side: "sell", stopPrice: "62000" }), []);
  assert.deepEqual(p({ type: "take-profit-market", side: "buy", stopPrice: "62000" }), ["A buy take-profit at 62,000 would trigger now: the last price is 61,500."]);
  assert.deepEqual(p({ type: "stop-market", side: "sell", stopPrice: "61499.5", trigger: "bid_ask" }), ["A sell stop at 61,499.5 would trigger now: the bid is 61,499.5."]);
  assert.deepEqual(p({ type: "stop-market", side: "sell", stopPrice: "61499.5", trigger: "last" }), []); // the last price is above it
  assert.deepEqual(p({ type: "stop-market", side: "sell", stopPrice: "70000", trigger: "mark" }), []); // no mark price here: the server decides
});

test("prices on the tick, required fields per type", () => {
  const p = (over: Partial<TicketInput>) => ticketProblems(ticket(over), RULES, NOW, T0);
  assert.deepEqual(p({ type: "stop-limit", side: "sell", stopPrice: "61000.3", limit: "61000" }), ["The stop price must be a multiple of 0.5 USDT."]);
  assert.deepEqual(p({ type: "stop-limit", side: "sell", stopPrice: "61000" }), ["Enter a limit price."]);
  assert.deepEqual(p({ type: "stop-market", side: "sell" }), ["Enter a stop price."]);
  assert.deepEqual(p({ type: "take-profit-limit", side: "sell", stopPrice: "62000", limit: "-1" }), ["The limit price must be a positive number."]);
});

test("a trailing delta is above 0 and below 100%, or a positive distance on the tick", () => {
  const p = (d: string, a = "") => ticketProblems(ticket({ type: "trailing-stop", side: "sell", trailingDelta: d, activationPrice: a }), RULES, NOW, T0);
  assert.deepEqual(p("1.5%"), []);
  assert.deepEqual(p("25.5"), []);
  for (const bad of ["0%", "100%", "150%", "-1%"]) assert.deepEqual(p(bad), ["A trailing delta in percent must be above 0% and below 100%."], bad);
  assert.deepEqual(p("0"), ["The trailing delta must be a percentage such as 1.5% or a positive price distance."]);
  assert.deepEqual(p("25.3"), ["A trailing delta as a price distance must be a multiple of 0.5 USDT."]);
  assert.deepEqual(p(""), ["Enter a trailing delta: a percentage such as 1.5% or a price distance."]);
  assert.deepEqual(p("1%", "63000.1"), ["The activation price must be a multiple of 0.5 USDT."]);
});

test("good till date needs an expiry in the future", () => {
  const p = (expireAt: number | null) => ticketProblems(ticket({ type: "limit", limit: "60000", tif: "GTD", expireAt }), RULES, NOW, T0);
  assert.deepEqual(p(null), ["Good till date needs an expiry date and time."]);
  assert.deepEqual(p(T0), ["The expiry must be in the future."]);
  assert.deepEqual(p(T0 + 60_000), []);
});

test("an OCO's legs sit on either side of the market", () => {
  const p = (over: Partial<TicketInput>) => ticketProblems(ticket({ type: "oco", ...over }), RULES, NOW, T0);
  assert.deepEqual(p({ side: "sell", limit: "65000", stopPrice: "60000" }), []);
  assert.deepEqual(p({ side: "sell", limit: "61000", stopPrice: "60000" }), ["A sell OCO's limit must be above the market: the last price is 61,500."]);
  assert.deepEqual(p({ side: "sell", limit: "65000", stopPrice: "62000" }), ["A sell stop at 62,000 would trigger now: the last price is 61,500."]);
  assert.deepEqual(p({ side: "buy", limit: "60000", stopPrice: "63000" }), []);
  assert.deepEqual(p({ side: "buy", limit: "62000", stopPrice: "61000" }).length, 2);
});

test("a bracket's stop loss and take profit on the right sides of the entry", () => {
  const b = { tpKind: "limit" as const, tpPrice: "65000", tpLimit: "", slStop: "58000", slLimit: "" };
  const p = (over: Partial<TicketInput>) => ticketProblems(ticket({ type: "limit", limit: "60000", ...over }), RULES, NOW, T0);
  assert.deepEqual(p({ bracket: b }), []);
  assert.deepEqual(p({ bracket: { ...b, slStop: "60000" } }), ["A long's stop loss must be below its entry (60,000)."]);
  assert.deepEqual(p({ side: "sell", bracket: b }), ["A short's stop loss must be above its entry (60,000).", "A short's take profit must be below its entry (60,000)."]);
  assert.deepEqual(p({ type: "market", bracket: { ...b, tpPrice: "61000" } }), ["A long's take profit must be above its entry (61,500.5)."]);
  assert.deepEqual(p({ bracket: { ...b, tpKind: "take-profit-limit" } }), ["Enter the take profit's limit."]);
  assert.ok(!FIELDS["stop-limit"].bracket); // brackets ride on limit and market orders only
  assert.ok(!FIELDS.oco.trigger && FIELDS.oco.stop && FIELDS["stop-market"].trigger);
  assert.deepEqual(p({ type: "stop-limit", side: "sell", stopPrice: "61000", bracket: { ...b, slStop: "70000" } }), []);
});

test("the calls a ticket sends", () => {
  const m = { exchange: "demo", symbol: "BTC/USDT" };
  assert.deepEqual(ticketCall(ticket({ type: "stop-limit", side: "sell", stopPrice: "61000", limit: "60900", tif: "GTD", expireAt: T0 }), m, 7),
    { method: "make_order", params: { exchange: "demo", symbol: "BTC/USDT", side: "sell", size: "0.01", account: 7, type: "stop-limit",
      limit: "60900", stop_price: "61000", trigger: "last", time_in_force: "GTD", expire_at: T0 } });
  assert.equal(ticketCall(ticket({ type: "limit", limit: "60000", tif: "IOC" }), m, null).params.type, "limit-immediate-cancel");
  assert.equal(ticketCall(ticket({ type: "limit", limit: "60000", tif: "FOK" }), m, null).params.type, "limit-fill-kill");
  assert.deepEqual(ticketCall(ticket({ type: "trailing-stop", side: "sell", trailingDelta: "1.5%", trigger: "bid_ask" }), m, null).params,
    { exchange: "demo", symbol: "BTC/USDT", side: "sell", size: "0.01", type: "trailing-stop", trailing_delta: "1.5%", trigger: "bid_ask" });
  assert.deepEqual(ticketCall(ticket({ type: "oco", side: "sell", limit: "65000", stopPrice: "60000", stopLimit: "59900" }), m, 3),
    { method: "make_oco", params: { exchange: "demo", pair: "BTC_USDT", side: "sell", size: "0.01", account: 3, limit: "65000", stop_price: "60000", stop_limit: "59900" } });
  const br = ticketCall(ticket({ type: "market", bracket: { tpKind: "take-profit-limit", tpPrice: "65000", tpLimit: "64900", slStop: "58000", slLimit: "" } }), m, null);
  assert.deepEqual([br.params.take_profit, br.params.stop_loss],
    [{ stop_price: "65000", limit: "64900", type: "take-profit-limit" }, { stop_price: "58000" }]);
  assert.equal(ticketCall(ticket({ type: "stop-market", side: "sell", stopPrice: "62000", allowImmediate: true }), m, null).params.allow_immediate, true);
});

test("value price: the limit, the dearer OCO leg, the trigger, else the touch", () => {
  assert.equal(valuePrice(ticket({ type: "stop-market", stopPrice: "62000" }), "61500")?.units, 62000n);
  assert.equal(valuePrice(ticket({ type: "oco", limit: "60000", stopPrice: "63000" }), "61500")?.units, 63000n);
  assert.equal(valuePrice(ticket({ type: "trailing-stop" }), "61500")?.units, 61500n);
  assert.equal(valuePrice(ticket({ type: "market" }), null), null);
});

test("trigger lines: untriggered orders of the market, a trailing stop at its current level", () => {
  const orders = [
    order({ id: 1, type: "stop-limit", status: "untriggered", stop_price: "60000" }),
    order({ id: 2, type: "take-profit-market", status: "untriggered", stop_price: "65000" }),
    order({ id: 3, type: "trailing-stop", status: "untriggered", stop_price: "60500", trailing_delta: "1%" }),
    order({ id: 4, type: "trailing-stop", status: "untriggered", stop_price: null, activation_price: "66000" }),
    order({ id: 5, type: "stop-limit", status: "triggered", stop_price: "60000" }),
    order({ id: 6, type: "stop-market", status: "untriggered", stop_price: "60000", symbol: "ETH/USDT" }),
    order({ id: 7, type: "limit", status: "open", limit: "64000" }),
  ];
  assert.deepEqual(triggerLines([...orders].reverse(), "demo", "BTC/USDT").map((l) => [l.order, l.price, l.kind, l.label]), [
    [1, "60000", "stop", "Stop sell 0.01 #1"],
    [2, "65000", "take-profit", "TP sell 0.01 #2"],
    [3, "60500", "trailing", "Trail sell 0.01 #3"],
    [4, "66000", "trailing", "Trail from sell 0.01 #4"],
  ]);
});

test("groups: an OCO's legs together, a bracket's children under their parent, the rest alone", () => {
  const rows = groupOrders([
    order({ id: 9 }),
    order({ id: 11, type: "limit", oco_id: 11 }),
    order({ id: 12, type: "stop-limit", status: "untriggered", oco_id: 11 }),
    order({ id: 21, type: "limit", oco_id: 21, parent_id: 20 }),
    order({ id: 22, type: "stop-market", status: "untriggered", oco_id: 21, parent_id: 20 }),
    order({ id: 20, side: "buy", status: "open", filled_size: "0.005" }),
  ]);
  assert.deepEqual(rows.map((r) => [r.kind, r.id, r.head?.id ?? null, r.orders.map((o) => o.id)]), [
    ["order", 9, 9, [9]],
    ["oco", 11, null, [11, 12]],
    ["bracket", 20, 20, [21, 22]],
  ]);
  assert.ok(rows.every((r) => r.pending.length === 0)); // no bracket spec on these, and placed children are the real ones
});

const BRACKET = { take_profit: { type: "take-profit-limit", stop_price: "72000", limit: "71900" },
  stop_loss: { type: "stop-market", stop_price: "50000", limit: null }, trigger: "bid_ask" };

test("a bracket parent before its fill heads its pending children, on the other side, the trigger on triggered legs only", () => {
  const [g] = groupOrders([order({ id: 30, side: "buy", limit: "60000", bracket: BRACKET })]);
  assert.deepEqual([g.kind, g.id, g.head?.id, g.orders], ["bracket", 30, 30, []]);
  assert.deepEqual(g.pending, [
    { role: "take-profit", side: "sell", type: "take-profit-limit", stop_price: "72000", limit: "71900", percent: null, trailing_delta: null, trigger: "bid_ask" },
    { role: "stop-loss", side: "sell", type: "stop-market", stop_price: "50000", limit: null, percent: null, trailing_delta: null,
      trigger: "bid_ask" },
  ]);
  // one leg in percent of the fill: a lone stop loss, its price still unknown
  const [lone] = groupOrders([order({ id: 32, side: "buy", type: "market",
    bracket: { ...BRACKET, take_profit: null, stop_loss: { type: "stop-market", percent: "3" } } })]);
  assert.deepEqual(lone.pending.map((c) => [c.role, c.side, c.stop_price, c.percent, c.trigger]), [
    ["stop-loss", "sell", null, "3", "bid_ask"],
  ]);
  // a trailing stop loss follows from the fill: its distance, no level yet
  const [trailing] = groupOrders([order({ id: 33, side: "buy", type: "market",
    bracket: { ...BRACKET, take_profit: null, stop_loss: { type: "trailing-stop", trailing_delta: "2%" } } })]);
  assert.deepEqual(trailing.pending.map((c) => [c.type, c.stop_price, c.trailing_delta]), [["trailing-stop", null, "2%"]]);
  // a short's take profit as a plain limit: a buy, nothing to trigger
  const [short] = groupOrders([order({ id: 31, side: "sell", type: "market",
    bracket: { ...BRACKET, take_profit: { type: "limit", limit: "50000" }, stop_loss: { type: "stop-limit", stop_price: "70000", limit: "70100" } } })]);
  assert.deepEqual(short.pending.map((c) => [c.role, c.side, c.type, c.stop_price, c.limit, c.trigger]), [
    ["take-profit", "buy", "limit", null, "50000", null],
    ["stop-loss", "buy", "stop-limit", "70000", "70100", "bid_ask"],
  ]);
});

test("once a bracket's children are listed they replace its pending ones", () => {
  const [g] = groupOrders([
    order({ id: 40, side: "buy", status: "open", filled_size: "0.005", bracket: BRACKET }),
    order({ id: 41, type: "take-profit-limit", status: "untriggered", oco_id: 41, parent_id: 40 }),
    order({ id: 42, type: "stop-market", status: "untriggered", oco_id: 41, parent_id: 40 }),
  ]);
  assert.deepEqual([g.head?.id, g.orders.map((o) => o.id), g.pending], [40, [41, 42], []]);
});
