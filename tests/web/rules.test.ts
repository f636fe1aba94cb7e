// Unit tests of the Rules page's pure helpers (src/coinwire/web/src/rules.ts), run by test_units.py under node:test.

import assert from "node:assert/strict";
import test from "node:test";
import type { RuleSet } from "../../src/coinwire/web/src/api/types";
import * as R from "../../src/coinwire/web/src/rules";

const spec = (kinds: R.KindSpec[], kind: string): R.KindSpec => R.kindSpec(kinds, kind)!;
const TRAIL = spec(R.RULE_KINDS, "portfolio_trailing_stop");

test("the trailing stop preset is the rule with both percentages, exact, and a close-everything", () => {
  assert.deepEqual(R.trailingStopPreset("10", "5"), {
    rules: [{ kind: "portfolio_trailing_stop", arm_pct: "10", trail_pct: "5" }], actions: [{ kind: "close_all" }] });
  assert.deepEqual(R.trailingStopPreset(" 0 ", "0.0001"), {
    rules: [{ kind: "portfolio_trailing_stop", arm_pct: "0", trail_pct: "0.0001" }], actions: [{ kind: "close_all" }] });
});

test("a trail outside 0..100 (exclusive), a negative arm, or a word is refused before it is sent", () => {
  for (const [arm, trail] of [["10", "0"], ["10", "100"], ["10", "150"], ["-1", "5"], ["ten", "5"], ["10", ""]]) {
    assert.equal(typeof R.partFromFields(TRAIL, { arm_pct: arm, trail_pct: trail }), "string", `${arm} / ${trail}`);
  }
  assert.match(R.partFromFields(TRAIL, { arm_pct: "10", trail_pct: "100" }) as string, /below 100/);
  assert.deepEqual(R.partFromFields(TRAIL, { arm_pct: "0", trail_pct: "99.99" }), { kind: "portfolio_trailing_stop", arm_pct: "0", trail_pct: "99.99" });
});

test("a stop takes an absolute level or a percentage, exactly one of them", () => {
  const stop = spec(R.RULE_KINDS, "portfolio_stop");
  assert.deepEqual(R.partFromFields(stop, { value: "9000", pct: "" }), { kind: "portfolio_stop", value: "9000" });
  assert.deepEqual(R.partFromFields(stop, { value: "", pct: "10" }), { kind: "portfolio_stop", pct: "10" });
  assert.match(R.partFromFields(stop, { value: "9000", pct: "10" }) as string, /not both/);
  assert.match(R.partFromFields(stop, { value: "", pct: "" }) as string, /not neither/);
});

test("an indicator rule reads its parameters as numbers and a time window its days; wrong ones are named", () => {
  const ind = spec(R.RULE_KINDS, "indicator");
  assert.deepEqual(R.partFromFields(ind, { series: "market:binance:BTC-USDT:1h", indicator: "rsi", params: "14", op: "above", threshold: "80", other: "" }),
    { kind: "indicator", series: "market:binance:BTC-USDT:1h", indicator: "rsi", params: [14], op: "above", threshold: "80" });
  assert.match(R.partFromFields(ind, { series: "portfolio", indicator: "sma", params: "20, x", op: "above", threshold: "1" }) as string, /numbers/);
  const tw = spec(R.RULE_KINDS, "time_window");
  assert.deepEqual(R.partFromFields(tw, { start: "09:00", end: "17:30", days: "Mon, tue", tz: "" }),
    { kind: "time_window", start: "09:00", end: "17:30", days: ["mon", "tue"] });
  assert.match(R.partFromFields(tw, { days: "monday" }) as string, /"monday" is not a day/);
});

test("actions: a scale factor is above 0 and at most 10; close-everything's pause is a boolean", () => {
  const scale = spec(R.ACTION_KINDS, "scale_orders");
  assert.deepEqual(R.partFromFields(scale, { factor: "10" }), { kind: "scale_orders", factor: "10" });
  assert.equal(typeof R.partFromFields(scale, { factor: "10.5" }), "string");
  assert.equal(typeof R.partFromFields(scale, { factor: "0" }), "string");
  assert.deepEqual(R.partFromFields(spec(R.ACTION_KINDS, "close_all"), { currency: "", pause: "false" }), { kind: "close_all", pause: false });
});

test("a rule set's body names its scope id except for the whole portfolio, and needs rules, actions and a cooldown to re-arm", () => {
  const base: R.RuleSetDraft = { name: " guard ", scope: { scope: "account", id: "3" }, mode: "live", after: "once", cooldown: "", enabled: true,
    rules: [{ kind: "portfolio_stop", pct: "5" }], actions: [{ kind: "notify" }] };
  assert.deepEqual(R.ruleSetBody(base), { name: "guard", scope: "account", scope_id: "3", mode: "live", after: "once", enabled: true,
    rules: base.rules, actions: base.actions });
  assert.equal((R.ruleSetBody({ ...base, scope: { scope: "user", id: "7" } }) as Record<string, unknown>).scope_id, undefined);
  assert.equal((R.ruleSetBody({ ...base, after: "rearm", cooldown: "1h" }) as Record<string, unknown>).cooldown, "1h");
  assert.match(R.ruleSetBody({ ...base, after: "rearm" }) as string, /cooldown/);
  assert.match(R.ruleSetBody({ ...base, rules: [] }) as string, /rule/);
  assert.match(R.ruleSetBody({ ...base, actions: [] }) as string, /action/);
  assert.match(R.ruleSetBody({ ...base, name: "  " }) as string, /name/);
});

test("only a live rule set that closes everything asks for confirmation", () => {
  assert.equal(R.needsConfirm({ mode: "live", actions: [{ kind: "notify" }, { kind: "close_all" }] }), true);
  assert.equal(R.needsConfirm({ mode: "dry_run", actions: [{ kind: "close_all" }] }), false);
  assert.equal(R.needsConfirm({ mode: "live", actions: [{ kind: "cancel_orders" }, { kind: "notify" }] }), false);
});

const rs = (over: Partial<RuleSet>): RuleSet => ({ id: 1, owner_id: 7, name: "t", scope: "account", scope_id: "3", mode: "live", after: "once",
  cooldown: null, enabled: true, rules: [{ kind: "portfolio_trailing_stop", arm_pct: "10", trail_pct: "5" }], actions: [{ kind: "close_all" }], ...over });

test("the live state reads the server's per-rule status, under `rules` or as a list; the distance is worked out when not given", () => {
  const one = { kind: "portfolio_trailing_stop", holds: false, armed: true, reference: "100", value: "120", peak: "125", trigger: "118.75",
    arm_level: "110" };
  for (const status of [{ rules: [one], done: false }, [one]]) {
    const [s] = R.ruleStates(rs({ status }));
    assert.equal(s.armed, true);
    assert.equal(s.peak, "125");
    assert.equal(s.trigger, "118.75");
    assert.equal(s.armLevel, "110");
    assert.ok(Math.abs(s.distancePct! - ((120 - 118.75) / 120) * 100) < 1e-9);
  }
  assert.equal(R.ruleStates(rs({ status: { rules: [{ ...one, distance_pct: "2.5" }] } }))[0].distancePct, 2.5);
  assert.deepEqual(R.ruleStates(rs({ status: null })).map((s) => [s.kind, s.armed, s.peak]), [["portfolio_trailing_stop", null, null]]);
});

test("the state word: disabled, fired (done), armed, watching, or waiting for the first sample", () => {
  const armed = { rules: [{ armed: true, reference: "1", value: "1" }], done: false };
  assert.equal(R.stateWord(rs({ enabled: false, status: armed })), "disabled");
  assert.equal(R.stateWord(rs({ status: { ...armed, done: true } })), "fired");
  assert.equal(R.stateWord(rs({ status: armed })), "armed");
  assert.equal(R.stateWord(rs({ status: { rules: [{ armed: false, reference: "1", value: "1" }] } })), "watching");
  assert.equal(R.stateWord(rs({ status: { rules: [{ armed: false, holds: false, value: null }] } })), "waiting");
  assert.equal(R.stateWord(rs({ status: undefined })), "waiting");
});

test("a rule set is on a portfolio when its scope and id match; one on the whole portfolio may leave its id out", () => {
  assert.equal(R.onScope({ scope: "account", scope_id: "3" }, { scope: "account", id: "3" }), true);
  assert.equal(R.onScope({ scope: "account", scope_id: "3" }, { scope: "account", id: "4" }), false);
  assert.equal(R.onScope({ scope: "wallet_set", scope_id: "3" }, { scope: "account", id: "3" }), false);
  assert.equal(R.onScope({ scope: "user", scope_id: null }, { scope: "user", id: "7" }), true);
  assert.equal(R.onScope({ scope: "user", scope_id: "7" }, { scope: "user", id: "8" }), false);
});

test("firings become chart marks in time order, a dry run said so; list answers are read bare or under their key", () => {
  const f = (id: number, time: number, mode = "live") => ({ id, rule_set_id: 1, time, values: {}, mode, actions: [] });
  assert.deepEqual(R.firingMarks("stop", [f(2, 2000, "dry_run"), f(1, 1000)]),
    [{ time: 1000, label: "⚑ stop" }, { time: 2000, label: "⚑ stop (dry run)" }]);
  assert.deepEqual(R.listOf([1, 2], "firings"), [1, 2]);
  assert.deepEqual(R.listOf({ firings: [3] }, "firings"), [3]);
  assert.deepEqual(R.listOf({ other: [3] }, "firings"), []);
});

test("a rule or action reads as one line", () => {
  assert.equal(R.describe({ kind: "portfolio_trailing_stop", arm_pct: "10", trail_pct: "5" }), "Trailing stop: arm at +10%, trail 5%");
  assert.equal(R.describe({ kind: "portfolio_take_profit", pct: "20" }), "Take profit at +20%");
  assert.equal(R.describe({ kind: "indicator", series: "portfolio", indicator: "sma", params: [20], op: "cross_below", other: "portfolio:sma(50)" }),
    "sma(20) of portfolio cross below portfolio:sma(50)");
  assert.equal(R.describe({ kind: "close_all" }), "Close everything");
  assert.equal(R.describe({ kind: "pause_entries" }), "Pause the run's entries");
});

test("an indicator rule's live state is the analyser's current value of its key and what it is compared with", () => {
  const rule = { kind: "indicator", series: "market:binance:BTC/USDT:1h", indicator: "rsi", params: [14], op: "above", threshold: "80" };
  const status = { rules: [{ kind: "indicator", holds: false, value: "71.23456789", indicator: "market.binance.BTC-USDT.1h:rsi(14)",
    indicator_value: "71.23456789", compared_to: "80" }] };
  const [s] = R.ruleStates(rs({ rules: [rule], status }));
  assert.deepEqual([s.indicator, s.indicatorValue, s.comparedTo, s.holds], ["market.binance.BTC-USDT.1h:rsi(14)", "71.23456789", "80", false]);
  assert.equal(R.analysisFigure(s.indicatorValue!), "71.2346");
  assert.equal(R.analysisFigure("12345.678"), "12345.68");
  assert.equal(R.analysisFigure("20"), "20");
  const [none] = R.ruleStates(rs({ rules: [rule], status: { rules: [{ kind: "indicator", holds: false, value: null, indicator_value: "" }] } }));
  assert.equal(none.indicatorValue, null); // no value yet: the key has none
  assert.equal(R.privateKey("portfolio.account.7.1h:sma(20)"), true);
  assert.equal(R.privateKey("balance.3.USDT:value()"), true);
  assert.equal(R.privateKey("market.binance.BTC-USDT.1h:rsi(14)"), false);
});
