// Unit tests of the positions view model and controls (src/coinwire/web/src/positions.ts), run by test_units.py under node:test.

import assert from "node:assert/strict";
import test from "node:test";
import type { FundingEntry, PositionView } from "../../src/coinwire/web/src/api/types";
import { ticketCall, type TicketInput } from "../../src/coinwire/web/src/conditional";
import * as P from "../../src/coinwire/web/src/positions";

function pos(over: Partial<PositionView>): PositionView {
  return { account: 7, exchange: "demo", symbol: "BTC/USDT:USDT", position_side: "both", side: "long", size: "0.010",
    entry_price: "60000", mark_price: "61000", notional: "610", unrealised_pnl: "10", realised_pnl: "0", funding: "-0.061",
    fees: "0.24", leverage: 10, margin_mode: "cross", isolated_margin: null, initial_margin: "61", maintenance_margin: "2.44",
    margin_ratio: "0.0123", liquidation_price: "54321.5", wallet_set_id: null, updated_at: 1, seq: 1, ...over };
}

test("perpetual markets are told from spot ones by kind, else by the settle suffix", () => {
  assert.equal(P.isPerpetual({ symbol: "BTC/USDT:USDT" }), true);
  assert.equal(P.isPerpetual({ symbol: "BTC/USDT" }), false);
  assert.equal(P.isPerpetual({ symbol: "BTC/USDT", kind: "perpetual" }), true);
  assert.equal(P.isPerpetual({ symbol: "BTC/USDT:USDT", kind: "spot" }), false);
});

test("decimal strings are shown exactly, rounded half away from zero, grouped", () => {
  assert.equal(P.fixedText("54321.5", 2), "54,321.50");
  assert.equal(P.fixedText("0.005", 2), "0.01");
  assert.equal(P.fixedText("-0.005", 2), "-0.01");
  assert.equal(P.fixedText("-1234567.891", 1), "-1,234,567.9");
  assert.equal(P.fixedText("12345678901234567890.123456789012345678", 2), "12,345,678,901,234,567,890.12"); // beyond a float
  assert.equal(P.fixedText(null, 2), "–");
  assert.equal(P.fixedText("abc", 2), "–");
  assert.equal(P.signedText("10", 2), "+10.00");
  assert.equal(P.signedText("-0.061", 2), "-0.06");
  assert.equal(P.signedText("0.001", 2), "0.00"); // rounds to zero: no sign
  assert.equal(P.percentText("0.0123"), "1.23%");
  assert.equal(P.percentText("1"), "100.00%");
  assert.equal(P.percentText("0.0001", 4), "0.0100%");
});

test("the margin ratio's risk: calm, then a warning from 50%, danger from 80%", () => {
  assert.equal(P.risk("0.4999"), "ok");
  assert.equal(P.risk("0.5"), "warn");
  assert.equal(P.risk("0.79"), "warn");
  assert.equal(P.risk("0.8"), "danger");
  assert.equal(P.risk("1.2"), "danger");
  assert.equal(P.risk(null), "ok");
});

test("a position's row: side and leverage, signed PnL with its ROE, margin, liquidation price", () => {
  const r = P.positionRow(pos({}), 1);
  assert.equal(r.sideText, "Long 10x");
  assert.equal(r.leg, "one-way");
  assert.equal(r.entry, "60,000.0");
  assert.equal(r.mark, "61,000.0");
  assert.equal(r.upnl, "+10.00");
  assert.equal(r.upnlClass, "pos");
  assert.equal(r.roe, "+16.39%"); // 10 / 61 initial margin
  assert.equal(r.funding, "-0.06");
  assert.equal(r.fundingClass, "neg");
  assert.equal(r.margin, "Cross");
  assert.equal(r.marginRatio, "1.23%");
  assert.equal(r.liquidation, "54,321.5");
  const s = P.positionRow(pos({ side: "short", position_side: "short", unrealised_pnl: "-30.5", margin_mode: "isolated",
    isolated_margin: "61.2", liquidation_price: null, margin_ratio: "0.85" }), 1);
  assert.equal(s.sideText, "Short 10x");
  assert.equal(s.leg, "short leg");
  assert.equal(s.upnl, "-30.50");
  assert.equal(s.upnlClass, "neg");
  assert.equal(s.roe, "-50.00%");
  assert.equal(s.margin, "Isolated 61.20");
  assert.equal(s.liquidation, "–");
  // a loss too small to show is not coloured as one
  const tiny = P.positionRow(pos({ unrealised_pnl: "-0.0001", initial_margin: "61" }), 1);
  assert.equal(tiny.upnl, "0.00");
  assert.equal(tiny.upnlClass, "");
  assert.equal(tiny.roe, "0.00%");
  assert.equal(s.risk, "danger");
});

test("pushes replace a position, add a new one, drop a flat one, and never step back", () => {
  const a = pos({ seq: 5 });
  const b = pos({ symbol: "ETH/USDT:USDT", seq: 6 });
  let list = P.mergePosition([], a);
  list = P.mergePosition(list, b);
  assert.deepEqual(list.map((p) => p.symbol), ["BTC/USDT:USDT", "ETH/USDT:USDT"]);
  list = P.mergePosition(list, pos({ seq: 7, mark_price: "62000" }));
  assert.equal(list.find((p) => p.symbol === "BTC/USDT:USDT")!.mark_price, "62000");
  assert.equal(list.length, 2);
  const stale = P.mergePosition(list, pos({ seq: 4, mark_price: "1" }));
  assert.equal(stale, list); // an older push changes nothing
  list = P.mergePosition(list, pos({ seq: 8, side: "flat", size: "0" }));
  assert.deepEqual(list.map((p) => p.symbol), ["ETH/USDT:USDT"]);
  // another account's or another leg's position is another row
  list = P.mergePosition(list, pos({ account: 8, seq: 1 }));
  list = P.mergePosition(list, pos({ position_side: "short", side: "short", seq: 1 }));
  assert.equal(list.length, 3);
  assert.deepEqual(P.openPositions([pos({ side: "flat", size: "0" }), b]).map((p) => p.symbol), ["ETH/USDT:USDT"]);
});

test("leverage: a whole number from 1 to the market's maximum", () => {
  assert.equal(P.leverageProblem("", 125), "Enter a leverage.");
  assert.equal(P.leverageProblem("2.5", 125), "The leverage must be a whole number such as 5.");
  assert.equal(P.leverageProblem("-3", 125), "The leverage must be a whole number such as 5.");
  assert.equal(P.leverageProblem("0", 125), "The leverage must be at least 1.");
  assert.equal(P.leverageProblem("126", 125), "The maximum leverage on this market is 125x.");
  assert.equal(P.leverageProblem("125", 125), null);
  assert.equal(P.leverageProblem("500", null), null); // the maximum unknown here: the server checks its brackets
});

test("reduce: positive, on the step, at most the position", () => {
  const p = pos({ size: "0.010" });
  assert.equal(P.reduceProblem("", p, "0.001", "BTC"), "Enter the amount to reduce by.");
  assert.equal(P.reduceProblem("0", p, "0.001", "BTC"), "The amount must be a positive number.");
  assert.equal(P.reduceProblem("0.0005", p, "0.001", "BTC"), "The amount must be a multiple of 0.001 BTC.");
  assert.equal(P.reduceProblem("0.011", p, "0.001", "BTC"), "The position is 0.010 BTC: reduce by at most that, or close it.");
  assert.equal(P.reduceProblem("0.004", p, "0.001", "BTC"), null);
  assert.equal(P.reduceProblem("0.01", p, "0.001", "BTC"), null);
});

test("isolated margin: added or removed, never more removed than there is", () => {
  const iso = pos({ margin_mode: "isolated", isolated_margin: "61" });
  assert.equal(P.marginProblem("5", pos({}), "USDT"), "Only an isolated position's margin can be added or removed.");
  assert.equal(P.marginProblem("0", iso, "USDT"), "The amount must be a non-zero number of USDT (negative removes).");
  assert.equal(P.marginProblem("-61.01", iso, "USDT"), "At most 61 USDT can be removed: the position's isolated margin.");
  assert.equal(P.marginProblem("-61", iso, "USDT"), null);
  assert.equal(P.marginProblem("25.5", iso, "USDT"), null);
});

test("the calls the controls send, on the position's own account and leg", () => {
  assert.deepEqual(P.reduceCall(pos({}), " 0.004 "), { method: "make_order", params: { exchange: "demo", symbol: "BTC/USDT:USDT",
    type: "market", side: "sell", size: "0.004", reduce_only: true, account: 7 } });
  assert.deepEqual(P.reduceCall(pos({ side: "short", position_side: "short" }), "0.004").params,
    { exchange: "demo", symbol: "BTC/USDT:USDT", type: "market", side: "buy", size: "0.004", reduce_only: true, position_side: "short", account: 7 });
  assert.deepEqual(P.closeCall(pos({})), { method: "close_position", params: { exchange: "demo", pair: "BTC_USDT:USDT", account: 7 } });
  assert.deepEqual(P.closeCall(pos({ position_side: "long" })).params, { exchange: "demo", pair: "BTC_USDT:USDT", position_side: "long", account: 7 });
  assert.deepEqual(P.marginCall(pos({ margin_mode: "isolated" }), "-5"), { method: "adjust_margin", params: { exchange: "demo", pair: "BTC_USDT:USDT", amount: "-5", account: 7 } });
  assert.deepEqual(P.leverageCall("demo", "BTC/USDT:USDT", " 20 ", 7), { method: "set_leverage", params: { exchange: "demo", pair: "BTC_USDT:USDT", leverage: 20, account: 7 } });
  assert.deepEqual(P.leverageCall("demo", "BTC/USDT:USDT", "20", null).params, { exchange: "demo", pair: "BTC_USDT:USDT", leverage: 20 });
  assert.deepEqual(P.marginModeCall("demo", "BTC/USDT:USDT", "isolated", 7).params, { exchange: "demo", pair: "BTC_USDT:USDT", mode: "isolated", account: 7 });
});

test("the ticket sends reduce_only and a hedge leg, and nothing new on a spot order", () => {
  const base: TicketInput = { type: "market", side: "sell", size: "0.01", limit: "", stopPrice: "", stopLimit: "", trigger: "last",
    trailingDelta: "", activationPrice: "", tif: "GTC", expireAt: null, allowImmediate: false, bracket: null };
  const m = { exchange: "demo", symbol: "BTC/USDT:USDT" };
  assert.deepEqual(ticketCall(base, m, 7).params, { exchange: "demo", side: "sell", size: "0.01", account: 7, symbol: "BTC/USDT:USDT", type: "market" });
  assert.deepEqual(ticketCall({ ...base, reduceOnly: true, positionSide: "both" }, m, 7).params,
    { exchange: "demo", side: "sell", size: "0.01", account: 7, symbol: "BTC/USDT:USDT", type: "market", reduce_only: true });
  assert.deepEqual(ticketCall({ ...base, reduceOnly: false, positionSide: "short" }, m, 7).params,
    { exchange: "demo", side: "sell", size: "0.01", account: 7, symbol: "BTC/USDT:USDT", type: "market", position_side: "short" });
});

test("reduce-only on the ticket must face a position it reduces", () => {
  const at = { exchange: "demo", symbol: "BTC/USDT:USDT", account: 7 };
  const long = [pos({})];
  assert.equal(P.reduceOnlyProblem("sell", "both", long, at), null);
  assert.equal(P.reduceOnlyProblem("buy", "both", long, at), "Reduce-only: there is no short position on BTC/USDT:USDT for this buy to reduce.");
  assert.equal(P.reduceOnlyProblem("sell", "both", [], at), "Reduce-only: there is no long position on BTC/USDT:USDT for this sell to reduce.");
  assert.equal(P.reduceOnlyProblem("sell", "both", [pos({ account: 8 })], at), "Reduce-only: there is no long position on BTC/USDT:USDT for this sell to reduce.");
  assert.equal(P.reduceOnlyProblem("sell", "both", null, at), null); // positions unknown: the server decides
  const hedge = [pos({ position_side: "long" }), pos({ position_side: "short", side: "short" })];
  assert.equal(P.reduceOnlyProblem("buy", "short", hedge, at), null);
  assert.equal(P.reduceOnlyProblem("buy", "long", hedge, at), "A reduce-only buy reduces a short position: choose the short side, or untick reduce-only.");
  assert.equal(P.hedgeModeOf(hedge, 7, "demo"), true);
  assert.equal(P.hedgeModeOf(long, 7, "demo"), false);
  assert.equal(P.hedgeModeOf(hedge, 8, "demo"), false);
});

test("funding rows: the rate in percent, the amount signed", () => {
  const f: FundingEntry = { id: 3, account: 7, wallet_set_id: null, size: "0.010", currency: "USDT", exchange: "demo", symbol: "BTC/USDT:USDT", position_side: "both", rate: "0.0001",
    mark_price: "61000", amount: "-0.061", time: 1_800_000_000_000_000_000 };
  const r = P.fundingRow(f, 1);
  assert.deepEqual(r, { time: f.time, market: "BTC/USDT:USDT · demo", leg: "one-way", size: "0.010", rate: "0.0100%", mark: "61,000.0",
    amount: "-0.06 USDT", amountClass: "neg" });
  assert.equal(P.fundingRow({ ...f, amount: "0.061" }, 1).amount, "+0.06 USDT");
  assert.equal(P.fundingRow({ ...f, amount: "-0.001" }, 1).amountClass, ""); // shown as 0.00: no colour
});
