// Unit tests of the portfolio pages' pure helpers (src/coinwire/web/src/portfolio.ts), run by test_units.py under node:test.

import assert from "node:assert/strict";
import test from "node:test";
import * as P from "../../src/coinwire/web/src/portfolio";

const prog = (over: Partial<P.ImportProgress>): P.ImportProgress =>
  ({ account_id: 3, import_id: 1, step: "trades", done: 0, total: 0, eta_s: null, state: "running", ...over });

test("a scope picker's value reads back as the scope and id it names, and nothing else does", () => {
  for (const s of [{ scope: "user", id: "7" }, { scope: "account", id: "3" }, { scope: "wallet_set", id: "12" },
    { scope: "run", id: "paper-ema:2026-12-06" }] as P.ScopeRef[]) {
    assert.deepEqual(P.parseScopeKey(P.scopeKey(s)), s); // a run id may hold a colon: only the first one splits
  }
  assert.equal(P.parseScopeKey("wallet:3"), null);
  assert.equal(P.parseScopeKey("account:"), null);
  assert.equal(P.parseScopeKey(":3"), null);
  assert.equal(P.parseScopeKey(""), null);
  assert.equal(P.parseScopeKey(null), null);
});

test("candles from exact decimal strings become numbers; a row with a bad value is dropped, not drawn at 0", () => {
  assert.deepEqual(P.toCandles([[1700000100, "100.5", "101", "99.25", "100.75", "12.5"], [1700001000, 1, 2, 0.5, 1.5, 0]]),
    [[1700000100, 100.5, 101, 99.25, 100.75, 12.5], [1700001000, 1, 2, 0.5, 1.5, 0]]);
  assert.deepEqual(P.toCandles([[1700000100, "x", "1", "1", "1", "0"], [1700000200, "1", "1"]]), []);
});

test("the period's change runs from the first open to the last close", () => {
  assert.equal(P.change([]), null);
  assert.deepEqual(P.change([[0, 100, 110, 90, 105, 0], [900, 105, 130, 100, 125, 3]]), { amount: 25, fraction: 0.25 });
  assert.deepEqual(P.change([[0, 0, 5, 0, 5, 0]]), { amount: 5, fraction: null });
});

test("import progress in words: step, done of total, time left; failed says how to go on; done is full", () => {
  assert.deepEqual(P.progressOf(prog({ done: 40, total: 160, eta_s: 150 })), { fraction: 0.25, text: "trades · 40 of 160 · about 3 min left" });
  assert.deepEqual(P.progressOf(prog({ step: "balances" })), { fraction: 0, text: "balances" });
  assert.equal(P.progressOf(prog({ done: 170, total: 160 })).fraction, 1);
  const failed = P.progressOf(prog({ state: "failed", done: 5, total: 10, error: "binance: 503" }));
  assert.equal(failed.fraction, 0.5);
  assert.match(failed.text, /^Stopped at trades · 5 of 10: binance: 503\. Resume/);
  assert.deepEqual(P.progressOf(prog({ state: "done", done: 3, total: 10 })), { fraction: 1, text: "Finished: your history is in." });
});

test("time left reads at a glance and says nothing when unknown", () => {
  assert.equal(P.etaText(null), "");
  assert.equal(P.etaText(-1), "");
  assert.equal(P.etaText(Number.NaN), "");
  assert.equal(P.etaText(20), "less than a minute left");
  assert.equal(P.etaText(600), "about 10 min left");
  assert.equal(P.etaText(3600), "about 1 h left");
  assert.equal(P.etaText(5400), "about 1 h 30 min left");
});

test("daily stats show only the columns the server sends, in the fixed order", () => {
  const cols = P.dailyColumns([{ trades: 3, day: "2026-12-05", closing: "10.5", pnl: "0.5" }, { day: "2026-12-06", win_rate: "0.5" }]);
  assert.deepEqual(cols.map(([k]) => k), ["day", "closing", "pnl", "trades", "win_rate"]);
  assert.deepEqual(P.dailyColumns([]), []);
});

test("market-cap balance: over and under weight, the furthest off first, within the tolerance even", () => {
  const rows = P.balanceRows([
    { asset: "ETH", weight: "0.30", cap_weight: "0.20", value: "300" },
    { asset: "BTC", weight: "0.50", cap_weight: "0.70", value: "500" },
    { asset: "SOL", weight: "0.198", cap_weight: "0.2", value: null },
    { asset: "PEPE", weight: "0.002", cap_weight: null },
  ]);
  assert.deepEqual(rows.map((r) => [r.asset, r.verdict]), [["BTC", "under"], ["ETH", "over"], ["SOL", "even"], ["PEPE", "even"]]);
  assert.ok(Math.abs(rows[0].deviation + 0.2) < 1e-12);
  assert.equal(rows[0].value, 500);
  assert.equal(rows[2].value, null);
  assert.equal(P.balanceRows([{ asset: "DOGE", weight: "0.1", cap_weight: null }])[0].verdict, "over"); // held, not in the top N
  // the server's exact difference and stance win over the tolerance worked out here
  const served = P.balanceRows([{ asset: "SOL", weight: "0.201", cap_weight: "0.2", difference: "0.001", stance: "over" }]);
  assert.deepEqual([served[0].verdict, served[0].deviation], ["over", 0.001]);
});

test("the once-shown secret is read from the answer's field; an answer without one has none", () => {
  assert.equal(P.secretOf({ id: 3, webhook_secret: "s3cret" }), "s3cret");
  assert.equal(P.secretOf({ id: 3, secret: "other" }), "other");
  assert.equal(P.secretOf({ id: 3, secret: "" }), null);
  assert.equal(P.secretOf({ id: 3 }), null);
});

test("opening holdings are read exactly as typed, and a bad one is refused in words", () => {
  assert.deepEqual(P.parseHoldings(""), {});
  assert.deepEqual(P.parseHoldings("btc=0.5, USDT = 1000\nETH:2.000000000000000001"),
    { BTC: "0.5", USDT: "1000", ETH: "2.000000000000000001" });
  assert.equal(P.parseHoldings("BTC=0.5, btc=1"), "BTC is named twice.");
  assert.equal(P.parseHoldings("BTC=0"), "BTC: the amount must be above zero.");
  assert.match(P.parseHoldings("BTC=-1") as string, /^"BTC=-1": write each holding as CURRENCY=amount/);
  assert.match(P.parseHoldings("half a bitcoin") as string, /write each holding/);
});
